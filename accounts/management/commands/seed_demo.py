"""Idempotent demo data: users in every role and two teams. Later apps add their own data."""
from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import Availability, Role, Team, TeamMembership, User
from accounts.services import roles_sync, user_create, user_role_assign

DEMO_PASSWORD = "cx-demo-2026"
DEMO_USERS = [
    ("admin@demo.cxplatform.test", "Ayu Admin", Role.ADMIN, []),
    ("supervisor@demo.cxplatform.test", "Sari Supervisor", Role.SUPERVISOR, ["Sales", "Support"]),
    ("agent1@demo.cxplatform.test", "Budi Santoso", Role.AGENT, ["Support"]),
    ("agent2@demo.cxplatform.test", "Dewi Lestari", Role.AGENT, ["Support"]),
    ("agent3@demo.cxplatform.test", "Rizky Pratama", Role.AGENT, ["Sales"]),
]


class Command(BaseCommand):
    help = "Create (or refresh) the demo users, roles and teams. Safe to run again."

    @transaction.atomic
    def handle(self, *args, **options):
        roles_sync()
        teams = {
            name: Team.objects.get_or_create(name=name, defaults={"description": description})[0]
            for name, description in [("Support", "After-sales help and complaints"), ("Sales", "Pre-sales questions and orders")]
        }
        for email, full_name, role, team_names in DEMO_USERS:
            user = User.objects.filter(email=email).first()
            if user is None:
                user = user_create(email=email, password=DEMO_PASSWORD, full_name=full_name, role=role)
            else:
                user_role_assign(user=user, role=role)
            if role == Role.ADMIN and not user.is_superuser:
                user.is_superuser = True
                user.save(update_fields=["is_superuser"])
            for team_name in team_names:
                TeamMembership.objects.get_or_create(team=teams[team_name], user=user, defaults={"is_lead": role == Role.SUPERVISOR})
            if role == Role.AGENT and user.availability == Availability.OFFLINE:
                user.availability = Availability.ONLINE
                user.save(update_fields=["availability"])
        self.stdout.write("Demo sign-ins (password for all: %s):" % DEMO_PASSWORD)
        for email, full_name, role, _teams in DEMO_USERS:
            self.stdout.write(f"  {role.label:<11} {email}")
