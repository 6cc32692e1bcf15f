import time

from django.core.management.base import BaseCommand

from journeys.facts import kpi_facts_refresh


class Command(BaseCommand):
    help = (
        "Bring the service-KPI facts up to date (docs/metrics.md → Performance). After an upgrade, run "
        "it once (or let the first report or journeys_sync do it); --full rebuilds every fact from the messages."
    )

    def add_arguments(self, parser):
        parser.add_argument("--full", action="store_true", help="Recompute every conversation, not only the changed ones.")

    def handle(self, *args, full: bool, **options):
        started = time.perf_counter()
        touched = kpi_facts_refresh(full=full)
        what = "all conversations" if touched < 0 else f"{touched} conversation(s)"
        self.stdout.write(f"KPI facts refreshed: {what} in {time.perf_counter() - started:.1f} s.")
