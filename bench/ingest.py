"""Ingest benchmark (issue 8 §2): signed WhatsApp Cloud API webhooks against the production
processes, compared with a bare endpoint of the same server (HMAC check + one INSERT).

    eval $(bench/servers.sh start) && .venv/bin/python bench/ingest.py [--seconds 15]

1. Peak acknowledged/s: wrk, closed loop, 16 connections, unique signed bodies, against
   /bench/bare/ and /webhooks/whatsapp/<uuid>/ — on gunicorn (WSGI) and on daphne (ASGI).
   The webhook is measured twice on the same processes:
   - *alongside*: the Celery worker processes while the burst comes in, both on the same two
     cores (what one small machine does when the burst lasts);
   - *burst*: the worker is held (SIGSTOP) while the burst comes in and goes on after it, as a
     worker on another machine or busy elsewhere would: what the web tier alone acknowledges,
     the webhooks waiting in the table meanwhile (nothing is lost: each is processed after).
   The ratio to the bare endpoint is reported for both.
2. Processed/s end to end: the Celery worker (2 processes) drains what was acknowledged:
   parsed, customer resolved, conversation continued, message + timeline stored, pushed. After
   the *burst* run this is the rate at which the worker works off a backlog on its own.
3. Ack latency at fixed rates (open loop, aiohttp): 100, 300, 600, 1000 webhooks/s.
Every body is a distinct message (unique wamid) from an existing dataset customer. `--chats N`
(default 2,000) draws the senders from N customers spread over the dataset, as a busy number's
traffic is: chats of several messages, the first of which opens (or reopens) the conversation.
`--chats 0` sends every message from a different customer: each one opens a conversation, the
worst case for processing.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import processes  # noqa: E402

common.django_setup()

from django.db import connection  # noqa: E402
from django.db.models import Max, Min  # noqa: E402

from channels_app.models import Inbox, WebhookEvent  # noqa: E402
from cxplatform.bench_endpoint import BARE_SECRET, TABLE_SQL  # noqa: E402

HTTP_PORT = 8101
ASGI_PORT = 8102
_seq = iter(range(10**12))


def whatsapp_payload(wa_id: str, message_id: str, text: str) -> bytes:
    """A WhatsApp Cloud API delivery of one text message, as Meta sends it."""
    payload = {"object": "whatsapp_business_account", "entry": [{"id": "264937493375603", "changes": [{"value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "6281100000001", "phone_number_id": common.WHATSAPP_PHONE_NUMBER_ID},
        "contacts": [{"profile": {"name": "Bench Customer"}, "wa_id": wa_id}],
        "messages": [{"from": wa_id, "id": message_id, "timestamp": str(int(time.time())),
                      "text": {"body": text}, "type": "text"}]},
        "field": "messages"}]}]}
    return json.dumps(payload, separators=(",", ":")).encode()


def whatsapp_body(customer_index: int) -> bytes:
    n = next(_seq)
    return whatsapp_payload(f"62812{customer_index:08d}", f"wamid.bench{time.time_ns()}{n}",
                            f"Halo kak, pesanan saya #{n} sudah dikirim?")


def signed(body: bytes, secret: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


CHATS = 2000


def sender(i: int, customers: int, stride: int = 7919) -> int:
    """The dataset customer who sends message i: one of CHATS customers in ongoing chats (spread
    over the dataset), or with CHATS = 0 a different customer each time."""
    if not CHATS or CHATS >= customers:
        return i * stride % customers
    return (i * stride % CHATS) * (customers // CHATS)


def bodies_file(count: int, secret: bytes, customers: int) -> Path:
    path = Path(tempfile.mkstemp(prefix="cxbench-", suffix=".tsv")[1])
    with path.open("w") as handle:
        for i in range(count):
            body = whatsapp_body(sender(i, customers))
            handle.write(f"{signed(body, secret)}\t{body.decode()}\n")
    return path


def wrk(url: str, bodies: Path, seconds: int, connections: int = 16) -> dict:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(common.ROOT / "bench" / "wrk_bodies.lua"), url],
        capture_output=True, text=True, env={"WRK_BODIES": str(bodies), "WRK_THREADS": "2", "PATH": "/usr/bin:/bin"},
        check=True).stdout

    def ms(label: str) -> float | None:
        match = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)", out, re.M)
        if not match:
            return None
        value, unit = float(match.group(1)), match.group(2)
        return round(value / 1000 if unit == "us" else value * 1000 if unit == "s" else value, 1)

    non_ok = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "requests": int(re.search(r"(\d+) requests in", out).group(1)),
            "p50_ms": ms("50"), "p99_ms": ms("99"), "non_2xx": int(non_ok.group(1)) if non_ok else 0,
            "socket_errors": errors.group(1) if errors else ""}


async def fixed_rate(url: str, rate: int, seconds: int, secret: bytes, customers: int) -> dict:
    """Open loop: send at exactly `rate`/s whatever the latency; measure each ack."""
    import aiohttp

    bodies = [whatsapp_body(sender(i, customers, 104729)) for i in range(rate * seconds)]
    latencies: list[float] = []
    sent_at: list[float] = []
    failures = 0

    async def one(session, body):
        nonlocal failures
        started = time.perf_counter()
        try:
            async with session.post(url, data=body, headers={"Content-Type": "application/json",
                                                             "X-Hub-Signature-256": signed(body, secret)}) as resp:
                await resp.read()
                if resp.status != 200:
                    failures += 1
                    return
        except aiohttp.ClientError:
            failures += 1
            return
        latencies.append(time.perf_counter() - started)
        sent_at.append(started - begin)

    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector) as session:
        tasks = []
        begin = time.perf_counter()
        begin_utc = time.strftime("%H:%M:%S", time.gmtime())
        for i, body in enumerate(bodies):
            delay = begin + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(session, body)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - begin
    return {"rate": rate, "started_utc": begin_utc, "sent": len(bodies), "achieved_per_s": round(len(bodies) / elapsed, 1), "failures": failures,
            **{k: v for k, v in common.summary_ms(latencies).items() if k != "mean_ms"},
            "slowest_seconds": slowest_seconds(sent_at, latencies)}


def slowest_seconds(sent_at: list[float], latencies: list[float], keep: int = 3) -> list[dict]:
    """The seconds of a run whose acks were slowest (by their max): whether a tail is spread over
    the run (CPU contention) or one stall (a lock, a vacuum, a checkpoint) shows here."""
    by_second: dict[int, list[float]] = {}
    for at, latency in zip(sent_at, latencies, strict=True):
        by_second.setdefault(int(at), []).append(latency * 1000)
    worst = sorted(by_second.items(), key=lambda item: -max(item[1]))[:keep]
    return [{"second": second, "max_ms": round(max(values), 1), "over_50ms": sum(v > 50 for v in values),
             "requests": len(values)} for second, values in worst]


def purge_queue() -> None:
    """Drop what the worker did not get to (queued tasks and waiting deliveries, see
    `common.leftovers_park`), so the next measurement does not compete with an old backlog."""
    subprocess.run([str(processes.BIN / "celery"), "-A", "cxplatform", "purge", "-f"], cwd=common.ROOT,
                   env=common.bench_env(), capture_output=True, check=False)
    common.leftovers_park()


def drain(first_id: int, timeout: float = 180) -> dict:
    """Wait until every webhook event after `first_id` is processed; processed/s end to end."""
    deadline = time.monotonic() + timeout
    pending = None
    while time.monotonic() < deadline:
        pending = WebhookEvent.objects.filter(pk__gt=first_id).exclude(
            status__in=[WebhookEvent.Status.PROCESSED, WebhookEvent.Status.PARKED]).count()
        if pending == 0:
            break
        time.sleep(2)
    rows = WebhookEvent.objects.filter(pk__gt=first_id)
    span = rows.aggregate(first=Min("received_at"), last=Max("processed_at"), first_done=Min("processed_at"))
    processed = rows.filter(status=WebhookEvent.Status.PROCESSED).count()
    seconds = (span["last"] - span["first"]).total_seconds() if span["last"] else None
    drain_seconds = (span["last"] - span["first_done"]).total_seconds() if span["last"] else None
    return {"processed": processed, "parked": rows.filter(status=WebhookEvent.Status.PARKED).count(),
            "still_pending": pending, "waited_seconds": timeout if pending else None, "end_to_end_seconds": round(seconds, 1) if seconds else None,
            "processed_per_s": round(processed / drain_seconds, 1) if drain_seconds else None}


def last_event_id() -> int:
    return WebhookEvent.objects.aggregate(m=Max("pk"))["m"] or 0


def main() -> int:
    global CHATS
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rates", default="100,300,600")
    parser.add_argument("--drain-seconds", type=int, default=150,
                        help="how long to wait for the worker to process a run's webhooks before moving on")
    parser.add_argument("--chats", type=int, default=CHATS,
                        help="senders: this many customers in ongoing chats; 0 = a different customer per message")
    parser.add_argument("--fixed-only", action="store_true", help="skip the peak runs (wrk)")
    parser.add_argument("--hold-worker", action="store_true",
                        help="fixed rates: hold the worker while sending (the web tier's ack alone), drain after")
    parser.add_argument("--warmup", type=int, default=5,
                        help="seconds at the first fixed rate, not measured, before the fixed-rate runs")
    args = parser.parse_args()
    CHATS = args.chats
    with connection.cursor() as cursor:
        cursor.execute(TABLE_SQL)
    purge_queue()  # a backlog left by an interrupted run would compete with the measurements
    inbox = Inbox.objects.get(name="Bench whatsapp")
    app_secret = common.WHATSAPP_APP_SECRET.encode()
    from customers.models import Identity

    customers = Identity.objects.filter(kind="phone", value__startswith="+62812").count()
    webhook_path = f"/webhooks/whatsapp/{inbox.uuid}/"
    results: dict = {"peak": {}, "fixed_rate": [], "connections": 16, "chats": CHATS}
    n_bodies = 1200 * args.seconds

    bare_bodies = bodies_file(n_bodies, BARE_SECRET, customers)
    for server, port, start in () if args.fixed_only else (("gunicorn", HTTP_PORT, lambda: processes.gunicorn(HTTP_PORT)),
                                ("daphne", ASGI_PORT, lambda: processes.daphne(ASGI_PORT))):
        with processes.running(start, processes.celery_worker) as procs:
            bare = wrk(f"http://127.0.0.1:{port}/bench/bare/", bare_bodies, args.seconds)
            row: dict = {"bare": bare}
            for mode in ("alongside", "burst"):
                hook_bodies = bodies_file(n_bodies, app_secret, customers)
                first = last_event_id()
                with processes.held(procs[1]) if mode == "burst" else contextlib.nullcontext():
                    ours = wrk(f"http://127.0.0.1:{port}{webhook_path}", hook_bodies, args.seconds)
                ours["end_to_end"] = drain(first, timeout=args.drain_seconds)
                purge_queue()
                hook_bodies.unlink()
                row[f"webhook_{mode}"] = ours
                row[f"ratio_to_bare_{mode}"] = round(ours["requests_per_s"] / bare["requests_per_s"], 2)
            results["peak"][server] = row
            print(server, json.dumps(row), flush=True)
    bare_bodies.unlink()

    rates = [int(r) for r in args.rates.split(",")]
    results["warmup_seconds"] = args.warmup
    with processes.running(lambda: processes.gunicorn(HTTP_PORT), processes.celery_worker) as procs:
        if args.warmup:
            # Freshly started processes open their connections, fill their caches and import
            # lazily on their first requests: measured, the first 300/s run after a start had an
            # ack p99 of 76-362 ms and the next one 14-34 ms. The target is the steady state.
            first = last_event_id()
            asyncio.run(fixed_rate(f"http://127.0.0.1:{HTTP_PORT}{webhook_path}", rates[0], args.warmup,
                                   app_secret, customers))
            drain(first, timeout=args.drain_seconds)
            purge_queue()
        for rate in rates:
            first = last_event_id()
            cpu = processes.cpu_meter(procs)
            before = cpu()
            with processes.held(procs[1]) if args.hold_worker else contextlib.nullcontext():
                row = asyncio.run(fixed_rate(f"http://127.0.0.1:{HTTP_PORT}{webhook_path}", rate, args.seconds,
                                             app_secret, customers))
            row["worker_held"] = args.hold_worker
            row["end_to_end"] = drain(first, timeout=args.drain_seconds)
            # CPU per webhook, acknowledged and processed (the drain included): web, worker, database
            after = cpu()
            row["cpu_ms_per_webhook"] = {name: round((a - b) * 1000 / row["sent"], 2)
                                         for name, b, a in zip(("web", "worker", "database"), before, after, strict=True)}
            purge_queue()
            results["fixed_rate"].append(row)
            print("fixed", json.dumps(row), flush=True)
    common.results_write("ingest", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
