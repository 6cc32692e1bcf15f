from __future__ import annotations

from django.core.management.base import BaseCommand

from customers.duplicates import duplicates_suggest


class Command(BaseCommand):
    help = "Record merge suggestions for likely duplicate customers (similar names plus a shared detail)."

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=500)

    def handle(self, *args, limit: int, **options):
        count = duplicates_suggest(limit=limit)
        self.stdout.write(f"{count} open merge suggestion(s) recorded or strengthened.")
