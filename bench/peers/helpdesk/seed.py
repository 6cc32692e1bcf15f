"""Seed the django-helpdesk peer: the staff user, token and queue, then tickets with follow-ups.

    bench/peers/helpdesk/.venv/bin/python bench/peers/helpdesk/seed.py --tickets 100000

Idempotent: only the tickets missing from the bench queue are added (bulk_create, 3 follow-ups
each). 12 months of history; 60% of tickets open or reopened (what the default staff list shows),
the rest resolved or closed; a third assigned to the staff user; ~40,000 distinct submitters.
"""
import argparse
import datetime as dt
import random
import time

import _peer

_peer.setup()

from django.db import transaction  # noqa: E402
from django.utils import timezone  # noqa: E402
from helpdesk.models import FollowUp, Ticket  # noqa: E402

SUBJECTS = ["Pesanan belum sampai", "Refund request", "Cannot log in", "Wrong item delivered",
            "Change delivery address", "Invoice needed", "Voucher not applied", "Payment failed",
            "Ukuran tidak sesuai", "Where is my order?"]
BODIES = ["Halo kak, pesanan saya belum sampai sejak minggu lalu. Mohon dicek ya.",
          "Hi, I was charged twice for order {n}. Please refund one of the charges.",
          "I cannot log in to my account since yesterday, the reset email never arrives.",
          "Barang yang datang berbeda dengan yang saya pesan (order {n})."]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--followups", type=int, default=3)
    args = parser.parse_args()
    user, _token, queue = _peer.bootstrap()
    have = Ticket.objects.filter(queue=queue).count()
    missing = max(0, args.tickets - have)
    print(f"peer: {have} tickets in queue {queue.slug}, adding {missing}", flush=True)
    rng = random.Random(2026 + have)
    now = timezone.now().replace(microsecond=0)
    started = time.monotonic()
    batch = 5000
    for offset in range(0, missing, batch):
        tickets = []
        for i in range(offset, min(offset + batch, missing)):
            n = have + i
            created = now - dt.timedelta(seconds=rng.randrange(365 * 86400))
            roll = rng.random()
            status = (Ticket.OPEN_STATUS if roll < 0.5 else Ticket.REOPENED_STATUS if roll < 0.6
                      else Ticket.RESOLVED_STATUS if roll < 0.8 else Ticket.CLOSED_STATUS)
            tickets.append(Ticket(
                title=f"{rng.choice(SUBJECTS)} #{n}", queue=queue, created=created,
                modified=created + dt.timedelta(hours=rng.randrange(1, 72)),
                submitter_email=f"customer{rng.randrange(40_000)}@example.test",
                assigned_to=user if rng.random() < 0.33 else None, status=status,
                description=rng.choice(BODIES).format(n=n), priority=rng.choice([1, 2, 3, 3, 3, 4, 5])))
        with transaction.atomic():
            Ticket.objects.bulk_create(tickets)
            followups = []
            for t in tickets:
                for k in range(args.followups):
                    followups.append(FollowUp(
                        ticket=t, date=t.created + dt.timedelta(hours=k + 1), title="Comment",
                        comment=("Terima kasih, kami cek dulu ya." if k % 2 == 0 else "Any update on this?"),
                        public=k % 2 == 0, user=user if k % 2 == 0 else None))
            FollowUp.objects.bulk_create(followups)
        print(f"  {offset + len(tickets)}/{missing} ({time.monotonic() - started:.0f} s)", flush=True)
    if missing:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("VACUUM (ANALYZE)")  # as bench/dataset.py does to ours after its load
    print(f"peer: {Ticket.objects.filter(queue=queue).count()} tickets", flush=True)


if __name__ == "__main__":
    main()
