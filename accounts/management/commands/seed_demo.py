"""Idempotent demo data: users in every role, teams, customers, inboxes, conversations, journeys."""
from __future__ import annotations

from django.core.management.base import BaseCommand

from accounts.demo import DEMO_PASSWORD, DEMO_USERS, seed_demo_accounts


class Command(BaseCommand):
    help = "Create (or refresh) the demo data of every app. Safe to run again."

    def handle(self, *args, **options):
        # Each app seeds its own demo data through its own module, in dependency order.
        from channels_app.demo import seed_demo_channels
        from customers.demo import seed_demo_customers
        from journeys.demo import seed_demo_journeys

        seed_demo_accounts(self.stdout)
        seed_demo_customers(self.stdout)
        seed_demo_channels(self.stdout)
        seed_demo_journeys(self.stdout)
        self.stdout.write(f"Demo sign-ins (password for all: {DEMO_PASSWORD}):")
        for email, _full_name, role, _teams in DEMO_USERS:
            self.stdout.write(f"  {role.label:<11} {email}")
