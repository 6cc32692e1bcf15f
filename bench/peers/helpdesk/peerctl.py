"""Peer-side helpers for bench/peer_helpdesk.py (run with the peer venv):

    peerctl.py info               → JSON: DRF token, a fresh staff session, queue, ticket ids
    peerctl.py ingest <eml dir>   → copies the .eml files into the queue's local mail directory and
                                    times helpdesk's own ingestion (`process_email()`, what
                                    `manage.py get_email` runs), in-process, without Django start-up
"""
import json
import shutil
import sys
import time
from pathlib import Path

import _peer

_peer.setup()

from django.conf import settings  # noqa: E402
from django.db.models import Max, Min  # noqa: E402
from django.test import Client  # noqa: E402
from helpdesk.models import FollowUp, Ticket  # noqa: E402


def info() -> dict:
    user, token, queue = _peer.bootstrap()
    client = Client()
    client.force_login(user)
    span = Ticket.objects.filter(queue=queue).aggregate(lo=Min("id"), hi=Max("id"))
    return {"token": token.key, "session_cookie": settings.SESSION_COOKIE_NAME,
            "session_key": client.cookies[settings.SESSION_COOKIE_NAME].value, "queue_id": queue.id,
            "ticket_min": span["lo"], "ticket_max": span["hi"], "tickets": Ticket.objects.filter(queue=queue).count()}


def ingest(source: Path) -> dict:
    from helpdesk.email import process_email

    _user, _token, queue = _peer.bootstrap()
    spool = Path(queue.email_box_local_dir)
    for old in spool.iterdir():
        old.unlink()
    files = sorted(source.glob("*.eml"))
    for f in files:
        shutil.copyfile(f, spool / f.name)
    queue.email_box_last_check = None
    queue.save(update_fields=["email_box_last_check"])
    tickets0, followups0 = Ticket.objects.count(), FollowUp.objects.count()
    started, cpu0 = time.perf_counter(), time.process_time()
    process_email(quiet=True)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu0
    left = len(list(spool.iterdir()))
    return {"emails": len(files), "left_unprocessed": left, "seconds": round(seconds, 2),
            "emails_per_s": round((len(files) - left) / seconds, 1) if seconds else None,
            "cpu_ms_per_email": round(cpu * 1000 / (len(files) - left), 2) if len(files) > left else None,
            "tickets_created": Ticket.objects.count() - tickets0,
            "followups_created": FollowUp.objects.count() - followups0}


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "info"
    result = info() if command == "info" else ingest(Path(sys.argv[2]))
    print(json.dumps(result))
