"""Peer side by side (issue 8 §8): cxplatform against django-helpdesk 2.6.1 on the closest
equivalent operations, reported as ratios (ours / peer).

    eval $(bench/servers.sh start)
    bench/peers/helpdesk/setup.sh 100000          # peer venv, database helpdeskbench, 100k tickets
    (our side: cxbench migrated and filled by bench/dataset.py, as `make bench` does)
    .venv/bin/python bench/peer_helpdesk.py [--seconds 30] [--emails 2000] [--reads 30]

Method
------
Both products run on the same machine and the same PostgreSQL server (their own databases:
`cxbench`, `helpdeskbench`), as production deployments would: DEBUG off, gunicorn sync with 2
workers and persistent database connections. The peer runs alone while it is measured; ours runs
alone with one Celery worker (2 processes) beside it. The load generator (aiohttp, closed loop)
is the same code and the same settings for both. Beside rates and latencies, each load run reports
the servers' CPU per request or per e-mail (user + system time of the server process trees from
psutil — gunicorn workers, and our Celery worker; the peer's ingest process), PostgreSQL and Redis
reported apart (`db_cpu_ms`: what each side's statements and commands cost the shared servers):
that number holds up when the machine is busy, req/s does not. Replies an earlier run left queued
are marked failed before ours are measured (our delivery drain sends the oldest first).

1. **Follow-ups / messages through the API**: 8 concurrent clients for N seconds, each request on
   a random ticket / conversation, token auth on both sides.
   - *note*: peer `POST /api/followups/` with `public: false` (an internal comment) vs ours
     `POST /api/v1/conversations/{id}/messages/` with `private: true` (a private note);
   - *reply*: peer `public: true` (the follow-up the customer sees; helpdesk renders its
     notification e-mail and sends it inside the request) vs ours an agent's reply on e-mail
     conversations (stored as queued and answered; a Celery task sends it after commit). Both
     send by SMTP to the same local server (bench/smtp_sink.py, which accepts and discards), so
     both do the whole work of a reply. Ours is then waited for until every reply is sent.
   Reported: requests/s, p50/p99 ms; ratio = our requests/s ÷ peer requests/s. For the reply
   also the e-mails sent per second end to end (ours: from the first request to the last reply
   sent; the peer's are sent before it answers) and the servers' CPU per reply sent, worker
   included. Then the reply once more with our worker held (SIGSTOP) while the clients post,
   as with a worker on another machine: what our web tier alone answers, and after it the rate
   at which the worker alone sends the queued replies.
2. **Ingesting a folder of .eml files**: the same generated folder (realistic multipart mails,
   plain + HTML, 10% with a small PDF attachment, a quarter of them replies with In-Reply-To /
   References, ~500 senders; fresh Message-IDs every run). The peer ingests it with its own code
   for a queue with `email_box_type = "local"` (`helpdesk.email.process_email()`, which is what
   `manage.py get_email` runs; timed in-process, Django start-up excluded): one process, serial,
   ticket or follow-up per mail, notification e-mails rendered. Ours: each raw message POSTed
   (8 concurrent) to the e-mail inbound endpoint (`/webhooks/email/<uuid>/`, raw format, HMAC
   signature) and processed by the Celery worker (customer resolved by address, conversation
   continued or opened, message + attachments + timeline stored, pushed live); the clock runs from
   the first POST received to the last WebhookEvent processed. Reported: e-mails/s end to end;
   ratio = ours ÷ peer.
3. **Listing an inbox of 100k tickets**: logged-in sessions (made programmatically), 30
   sequential requests after 3 warm-ups, p50/p95. Peer: the staff ticket list page
   (`/tickets/`) and the DataTables data request it makes for page 1 (`/datatables_ticket_list/
   <query>`, 25 rows, default filter open + reopened, sorted by created) — the page is useless
   without it, so the user-visible cost is the sum. Ours: the agent conversation list page 1
   (`/inbox/`, server-rendered with its 25 rows) and `GET /api/v1/conversations/?page_size=25`.
   The peer's staff user is a superuser and ours the bench admin: both see every ticket /
   conversation. Ratio = our p50 ÷ peer p50 (below 1 = faster): our page vs the peer's page +
   data request, and our API vs the peer's data request.

What is comparable and what is not
----------------------------------
- The peer is a ticket tracker; we are an omnichannel inbox. A follow-up is the closest thing to a
  message, a ticket to a conversation, but the work behind each differs: our message write also
  updates the conversation (counters, last activity), the customer timeline and publishes a live
  event (stored LiveEvent + Redis push); helpdesk writes the follow-up, ticket changes and sends
  notification e-mails synchronously. We compare what a user or integrator waits for.
- Our API runs its throttles (token/user/IP rates, one Redis round trip each) with the rates
  raised so they never refuse; the peer has none. Our token is hashed (SHA-256 lookup); DRF's is
  a plain key lookup.
- E-mail ingest: ours is asynchronous with 2 worker processes plus the web process acknowledging;
  the peer's is one serial process. That is how each product ingests mail, so it is the fair
  comparison of throughput, but not of per-mail CPU. Neither side talks to a real mail server
  (the peer reads a local folder; ours is pushed by a relay/IMAP poller, not measured here).
- The list pages render different HTML (our page includes views, counts and unread markers; the
  peer's page is a shell filled by the data request). Dataset shapes differ too: the peer has
  100,000 tickets with 3 follow-ups each; ours 200,000 conversations and 1,000,000 messages at
  full scale (bench/dataset.py), so our side is the larger database.
- The load generator shares the 2 cores with the servers, PostgreSQL and Redis, equally for both.
- SQL queries per request are not counted here (the peer runs with DEBUG off); see the reads
  benchmark for ours and reference/performance-baselines.md for the peer's (76 on its data request).
"""
from __future__ import annotations

import argparse
import asyncio
import atexit
import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import os
import random
import shutil
import subprocess
import sys
import time
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from urllib.parse import urlparse, urlunparse

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import processes  # noqa: E402

common.django_setup()  # our API throttles stay on but never refuse (common.bench_env)

from django.db.models import Max, Min  # noqa: E402
from django.test import Client  # noqa: E402

PEER_DIR = common.ROOT / "bench" / "peers" / "helpdesk"
PEER_PY = PEER_DIR / ".venv" / "bin" / "python"
PEER_PORT = 8201
OUR_PORT = 8202
SMTP_PORT = 8225
SMTP_COUNT = common.ROOT / "var" / "bench" / "smtp-sink-count"
EML_DIR = common.ROOT / "var" / "bench" / "peer-eml"
CONCURRENCY = 8
INBOUND_SECRET = b"bench-inbound-secret"  # the "Bench email" inbox of bench/dataset.py


# --- the peer ----------------------------------------------------------------------------------

def peer_env() -> dict[str, str]:
    env = dict(os.environ)
    url = urlparse(env["DATABASE_URL"])
    env["PEER_DATABASE_URL"] = urlunparse(url._replace(path="/helpdeskbench"))
    env["PEER_SMTP_PORT"] = str(SMTP_PORT)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return env


def peerctl(*args: str) -> dict:
    out = subprocess.run([str(PEER_PY), str(PEER_DIR / "peerctl.py"), *args], env=peer_env(), check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def peer_gunicorn() -> subprocess.Popen:
    processes.LOGS.mkdir(parents=True, exist_ok=True)
    log = (processes.LOGS / "peer-helpdesk.log").open("ab")
    proc = subprocess.Popen(
        [str(PEER_DIR / ".venv" / "bin" / "gunicorn"), "hdsite.wsgi:application", "-b", f"127.0.0.1:{PEER_PORT}",
         "-w", "2", "--worker-class", "sync", "--backlog", "2048", "--log-level", "warning"],
        cwd=PEER_DIR / "site", env=peer_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    processes.wait_for_port(PEER_PORT)
    return proc


# --- ours --------------------------------------------------------------------------------------

def ours_prepare() -> dict:
    from accounts.models import User
    from accounts.services import api_token_create
    from channels_app.models import Conversation, Inbox

    admin = User.objects.get(email=common.BENCH_ADMIN_EMAIL)
    _token, raw = api_token_create(user=admin, name=f"bench peer {time.strftime('%Y%m%d-%H%M%S')}")
    client = Client()
    client.force_login(admin)
    from django.conf import settings

    ids = list(Conversation.objects.order_by("?").values_list("id", flat=True)[:5000])
    email_inbox = Inbox.objects.get(name="Bench email")
    if email_inbox.config.get("smtp_host") != "127.0.0.1" or email_inbox.config.get("smtp_port") != SMTP_PORT:
        from channels_app.services.inboxes import inbox_update

        email_inbox = inbox_update(inbox=email_inbox, config={"smtp_host": "127.0.0.1", "smtp_port": SMTP_PORT,
                                                              "smtp_security": "none"})
    email_ids = list(Conversation.objects.filter(last_inbox=email_inbox).order_by("?").values_list("id", flat=True)[:5000])
    return {"token": raw, "session_cookie": settings.SESSION_COOKIE_NAME,
            "session_key": client.cookies[settings.SESSION_COOKIE_NAME].value, "conversation_ids": ids,
            "email_conversation_ids": email_ids, "email_inbox": email_inbox,
            "conversations": Conversation.objects.count()}


def ensure_static_manifest() -> None:
    """Production settings use a manifest static storage: pages need `collectstatic` once."""
    if (common.ROOT / "staticfiles" / "staticfiles.json").exists():
        return
    if subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=common.ROOT,
                      env=common.bench_env(), capture_output=True).returncode == 0:
        return
    # Workaround (reported to the lead): the vendored Chart.js names a source map that is not
    # vendored, and the manifest storage's post-processing refuses it. Collect without rewriting
    # `sourceMappingURL` comments (CSS url() rewriting stays).
    script = ("import django; django.setup()\n"
              "from django.contrib.staticfiles.storage import HashedFilesMixin\n"
              "HashedFilesMixin.patterns = tuple((ext, tuple(p for p in pats if 'sourceMappingURL' not in str(p)))"
              " for ext, pats in HashedFilesMixin.patterns)\n"
              "from django.core.management import call_command\n"
              "call_command('collectstatic', interactive=False, verbosity=0)\n")
    subprocess.run([sys.executable, "-c", script], cwd=common.ROOT, env=common.bench_env(), check=True)


# --- load --------------------------------------------------------------------------------------

async def closed_loop(url_of, body_of, headers: dict[str, str], seconds: float, cpu, concurrency: int = CONCURRENCY,
                      warmup: int = 16) -> dict:
    """`concurrency` clients, each POSTing back to back for `seconds`; 2xx latencies only."""
    import aiohttp

    latencies: list[float] = []
    failures: dict[int | str, int] = {}
    first_error: list[str] = []
    rng = random.Random(8)

    async def one(session, record: bool) -> None:
        url, body = url_of(rng), body_of(rng)
        started = time.perf_counter()
        try:
            async with session.post(url, json=body, headers=headers) as resp:
                text = await resp.read()
                ok = 200 <= resp.status < 300
                key: int | str = resp.status
        except aiohttp.ClientError as exc:
            ok, key, text = False, type(exc).__name__, b""
        if not record:
            return
        if ok:
            latencies.append(time.perf_counter() - started)
        else:
            failures[key] = failures.get(key, 0) + 1
            if not first_error:
                first_error.append(f"{key}: {text[:300]!r}")

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency * 2)) as session:
        await asyncio.gather(*(one(session, False) for _ in range(warmup)))
        cpu0 = cpu()
        deadline = time.perf_counter() + seconds
        begin = time.perf_counter()

        async def client():
            while time.perf_counter() < deadline:
                await one(session, True)

        await asyncio.gather(*(client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - begin
        cpu1 = cpu()
    summary = common.summary_ms(latencies)
    return {"requests_per_s": round(len(latencies) / elapsed, 1), "ok": len(latencies), "failures": failures,
            "p50_ms": summary["p50_ms"], "p99_ms": summary["p99_ms"],
            **{f"{k}_per_request": v for k, v in processes.cpu_per(cpu0, cpu1, len(latencies)).items()},
            **({"first_error": first_error[0]} if first_error else {})}


async def sequential_gets(url: str, cookie: str, n: int, warmup: int = 3) -> dict:
    import aiohttp

    latencies: list[float] = []
    sizes = []
    async with aiohttp.ClientSession(headers={"Cookie": cookie}) as session:
        for i in range(warmup + n):
            started = time.perf_counter()
            async with session.get(url, allow_redirects=False) as resp:
                body = await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"GET {url} → {resp.status} {resp.headers.get('Location', '')} {body[:300]!r}")
            if i >= warmup:
                latencies.append(time.perf_counter() - started)
                sizes.append(len(body))
    summary = common.summary_ms(latencies)
    return {"n": n, "p50_ms": summary["p50_ms"], "p95_ms": summary["p95_ms"], "bytes": sizes[-1]}


# --- e-mails -----------------------------------------------------------------------------------

FIRST = ["Budi", "Siti", "Andi", "Dewi", "Rina", "Agus", "Putri", "Rizky", "Maya", "Joko", "Ayu", "Hendra"]
SUBJECTS = ["Pesanan #{n} belum sampai", "Refund for order {n}", "Tidak bisa login", "Wrong size delivered ({n})",
            "Invoice request for order {n}", "Voucher tidak bisa dipakai", "Change of delivery address"]
LINES = ["Halo kak,\n\nPesanan saya dengan nomor {n} belum sampai sampai hari ini. Mohon dibantu cek ya.",
         "Hi team,\n\nI was charged twice for order {n}. Could you please refund one of the payments?",
         "Selamat siang,\n\nSaya tidak bisa login ke akun saya sejak kemarin. Email reset tidak pernah masuk.",
         "Hello,\n\nThe shoes I received are size 42 but I ordered 41 (order {n}). How do I exchange them?"]


def generate_emails(count: int, senders: int = 500) -> Path:
    """`count` realistic .eml files in var/bench/peer-eml/ (fresh Message-IDs every run)."""
    rng = random.Random(2026)
    nonce = f"{time.time_ns():x}"
    if EML_DIR.exists():
        shutil.rmtree(EML_DIR)
    EML_DIR.mkdir(parents=True)
    sent: list[tuple[str, str, str]] = []  # (message-id, subject, sender)
    pdf = b"%PDF-1.4\n" + bytes(rng.randrange(256) for _ in range(20_000)) + b"\n%%EOF\n"
    start = time.time() - 3600
    for i in range(count):
        msg = EmailMessage()
        if sent and rng.random() < 0.25:
            parent_id, parent_subject, sender = rng.choice(sent)
            subject = "Re: " + parent_subject.removeprefix("Re: ")
            msg["In-Reply-To"] = parent_id
            msg["References"] = parent_id
            text = "Sudah saya cek lagi, masih belum ada kabar. Tolong dibantu ya.\n\n> previous message"
        else:
            k = rng.randrange(senders)
            sender = f"{FIRST[k % len(FIRST)]} Pelanggan{k} <pelanggan{k}.{nonce[-6:]}@example.test>"
            subject = rng.choice(SUBJECTS).format(n=100000 + i)
            text = rng.choice(LINES).format(n=100000 + i)
        message_id = make_msgid(idstring=f"{nonce}.{i}", domain="mail.example.test")
        msg["From"] = sender
        msg["To"] = "Bench Support <support@bench.test>"
        msg["Subject"] = subject
        msg["Date"] = format_datetime(dt.datetime.fromtimestamp(start + i, tz=dt.UTC))
        msg["Message-ID"] = message_id
        body = f"{text}\n\nTerima kasih,\n{sender.split('<')[0].strip()}\n-- \nSent from my phone"
        msg.set_content(body)
        msg.add_alternative("<html><body>" + "".join(f"<p>{line}</p>" for line in body.split("\n") if line)
                            + "</body></html>", subtype="html")
        if rng.random() < 0.10:
            msg.add_attachment(pdf, maintype="application", subtype="pdf", filename=f"invoice-{i}.pdf")
        (EML_DIR / f"{i:06d}.eml").write_bytes(bytes(msg))
        sent.append((message_id, subject, sender))
    return EML_DIR


async def post_raw_emails(url: str, secret: bytes, files: list[Path], concurrency: int = CONCURRENCY) -> dict:
    import aiohttp

    queue = list(reversed(files))
    failures = 0
    first_error: list[str] = []

    async def client(session):
        nonlocal failures
        while queue:
            raw = queue.pop().read_bytes()
            signature = "sha256=" + hmac.new(secret, raw, hashlib.sha256).hexdigest()
            async with session.post(url, data=raw, headers={"Content-Type": "message/rfc822",
                                                            "X-Inbound-Signature": signature}) as resp:
                text = await resp.read()
                if resp.status >= 300:
                    failures += 1
                    if not first_error:
                        first_error.append(f"{resp.status}: {text[:300]!r}")

    begin = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
    elapsed = time.perf_counter() - begin
    return {"posted": len(files), "failures": failures, "ack_per_s": round(len(files) / elapsed, 1),
            **({"first_error": first_error[0]} if first_error else {})}


def drain(inbox, first_id: int, timeout: float = 1800) -> dict:
    from channels_app.models import WebhookEvent

    done = [WebhookEvent.Status.PROCESSED, WebhookEvent.Status.PARKED]
    deadline = time.monotonic() + timeout
    pending = None
    while time.monotonic() < deadline:
        pending = WebhookEvent.objects.filter(inbox=inbox, pk__gt=first_id).exclude(status__in=done).count()
        if pending == 0:
            break
        time.sleep(1)
    rows = WebhookEvent.objects.filter(inbox=inbox, pk__gt=first_id)
    span = rows.aggregate(first=Min("received_at"), last=Max("processed_at"))
    processed = rows.filter(status=WebhookEvent.Status.PROCESSED).count()
    seconds = (span["last"] - span["first"]).total_seconds() if span["last"] else None
    return {"processed": processed, "parked": rows.filter(status=WebhookEvent.Status.PARKED).count(),
            "still_pending": pending, "seconds": round(seconds, 2) if seconds else None,
            "emails_per_s": round(processed / seconds, 1) if seconds else None}


def smtp_sink() -> subprocess.Popen:
    SMTP_COUNT.parent.mkdir(parents=True, exist_ok=True)
    proc = processes._start("smtp-sink", [sys.executable, str(common.ROOT / "bench" / "smtp_sink.py"),
                                          str(SMTP_PORT), str(SMTP_COUNT)])
    atexit.register(processes.stop, proc)
    processes.wait_for_port(SMTP_PORT)
    return proc


def mails_received() -> int:
    return int(SMTP_COUNT.read_text() or 0)


def replies_sent(inbox, first_id: int, cpu, cpu_start: list[float], mails_before: int, timeout: float = 600) -> dict:
    """Wait until our replies (messages after `first_id` on the e-mail inbox) have all left the
    queue; e-mails sent per second from the first reply stored to the last one sent, and the
    servers' CPU (web and worker) per reply sent over that whole span."""
    from channels_app.models import Message, MessageStatus

    replies = Message.objects.filter(inbox=inbox, pk__gt=first_id, direction="outbound", private=False)
    deadline = time.monotonic() + timeout
    while replies.filter(status=MessageStatus.QUEUED).exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    cpu_end = cpu()
    span = replies.aggregate(first=Min("created_at"), last=Max("sent_at"), first_sent=Min("sent_at"))
    sent = replies.exclude(sent_at=None).count()
    seconds = (span["last"] - span["first"]).total_seconds() if span["last"] else None
    sending = (span["last"] - span["first_sent"]).total_seconds() if span["last"] else None
    return {"replies": replies.count(), "sent": sent, "failed": replies.filter(status=MessageStatus.FAILED).count(),
            "still_queued": replies.filter(status=MessageStatus.QUEUED).count(),
            "mails_received_by_the_sink": mails_received() - mails_before,
            "seconds": round(seconds, 2) if seconds else None,
            "emails_per_s": round(sent / seconds, 1) if seconds else None,
            "sending_emails_per_s": round(sent / sending, 1) if sending else None,  # first sent to last
            **{f"{k}_per_reply_sent": v for k, v in processes.cpu_per(cpu_start, cpu_end, sent).items()}}


# --- the run -----------------------------------------------------------------------------------

def ratio(ours: float | None, peer: float | None) -> float | None:
    return round(ours / peer, 2) if ours and peer else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30, help="duration of each API load run")
    parser.add_argument("--emails", type=int, default=2000)
    parser.add_argument("--reads", type=int, default=30)
    parser.add_argument("--only", default="api,email,list", help="comma-separated subset of api,email,list")
    args = parser.parse_args()
    only = set(args.only.split(","))
    if not PEER_PY.exists():
        raise SystemExit("The peer is not set up: run bench/peers/helpdesk/setup.sh first.")

    ensure_static_manifest()
    peer = peerctl("info")
    ours = ours_prepare()
    print(f"peer: {peer['tickets']} tickets; ours: {ours['conversations']} conversations", flush=True)
    results: dict = {"peer": "django-helpdesk 2.6.1", "peer_tickets": peer["tickets"],
                     "our_conversations": ours["conversations"], "concurrency": CONCURRENCY,
                     "seconds": args.seconds, "emails": args.emails, "reads": args.reads}
    peer_api_headers = {"Authorization": f"Token {peer['token']}"}
    our_api_headers = {"Authorization": f"Bearer {ours['token']}"}
    peer_cookie = f"{peer['session_cookie']}={peer['session_key']}"
    our_cookie = f"{ours['session_cookie']}={ours['session_key']}"
    peer_ticket = lambda rng: rng.randint(peer["ticket_min"], peer["ticket_max"])  # noqa: E731
    peer_base = f"http://127.0.0.1:{PEER_PORT}"
    our_base = f"http://127.0.0.1:{OUR_PORT}"
    datatables_query = base64.b64encode(json.dumps({"filtering": {"status__in": [1, 2]}, "sorting": "created",
                                                    "search_string": "", "sortreverse": False}).encode()).decode()
    datatables_url = (f"{peer_base}/datatables_ticket_list/{datatables_query}"
                      "?draw=1&start=0&length=25&order%5B0%5D%5Bcolumn%5D=5&order%5B0%5D%5Bdir%5D=asc")

    sink = smtp_sink()
    # 1. The peer alone.
    peer_res: dict = {}
    with processes.running(peer_gunicorn) as procs:
        cpu = processes.cpu_meter(procs)
        if "api" in only:
            for kind, public in (("note", False), ("reply", True)):
                mails_before = mails_received()
                peer_res[f"api_{kind}"] = asyncio.run(closed_loop(
                    lambda rng: f"{peer_base}/api/followups/",
                    lambda rng, public=public: {"ticket": peer_ticket(rng), "title": "Bench follow-up",
                                                "comment": "Terima kasih, kami cek dulu ya kak.", "public": public},
                    peer_api_headers, args.seconds, cpu))
                peer_res[f"api_{kind}"]["mails_received_by_the_sink"] = mails_received() - mails_before
                print("peer", kind, json.dumps(peer_res[f"api_{kind}"]), flush=True)
        if "list" in only:
            peer_res["list_page"] = asyncio.run(sequential_gets(f"{peer_base}/tickets/", peer_cookie, args.reads))
            peer_res["list_data"] = asyncio.run(sequential_gets(datatables_url, peer_cookie, args.reads))
            print("peer list", json.dumps(peer_res["list_page"]), json.dumps(peer_res["list_data"]), flush=True)
    if "email" in only:
        source = generate_emails(args.emails)
        peer_res["email"] = peerctl("ingest", str(source))
        print("peer email", json.dumps(peer_res["email"]), flush=True)

    # 2. Ours alone (web + Celery worker).
    our_res: dict = {}
    with processes.running(lambda: processes.gunicorn(OUR_PORT), processes.celery_worker) as procs:
        cpu = processes.cpu_meter(procs)
        if "api" in only:
            from channels_app.models import Message

            common.replies_left_fail()
            for kind, private, ids in (("note", True, ours["conversation_ids"]),
                                       ("reply", False, ours["email_conversation_ids"]),
                                       ("reply_worker_held", False, ours["email_conversation_ids"])):
                first_message = Message.objects.aggregate(m=Max("pk"))["m"] or 0
                cpu_start, mails_before = cpu(), mails_received()
                # reply_worker_held: the web tier alone, as with a worker on another machine; the
                # replies wait in the queue and are sent once the worker goes on (its own rate).
                with processes.held(procs[1]) if kind == "reply_worker_held" else contextlib.nullcontext():
                    our_res[f"api_{kind}"] = asyncio.run(closed_loop(
                        lambda rng, ids=ids: f"{our_base}/api/v1/conversations/{rng.choice(ids)}/messages/",
                        lambda rng, private=private: {"content": "Terima kasih, kami cek dulu ya kak.",
                                                      "private": private},
                        our_api_headers, args.seconds, cpu))
                if kind != "note":
                    our_res[f"api_{kind}"]["delivery"] = replies_sent(ours["email_inbox"], first_message, cpu,
                                                                      cpu_start, mails_before)
                print("ours", kind, json.dumps(our_res[f"api_{kind}"]), flush=True)
        if "list" in only:
            our_res["list_page"] = asyncio.run(sequential_gets(f"{our_base}/inbox/", our_cookie, args.reads))
            our_res["list_api"] = asyncio.run(sequential_gets(f"{our_base}/api/v1/conversations/?page_size=25",
                                                              our_cookie, args.reads))
            print("ours list", json.dumps(our_res["list_page"]), json.dumps(our_res["list_api"]), flush=True)
        if "email" in only:
            from channels_app.models import WebhookEvent

            inbox = ours["email_inbox"]
            common.leftovers_park()
            first = WebhookEvent.objects.aggregate(m=Max("pk"))["m"] or 0
            files = sorted(EML_DIR.glob("*.eml"))
            cpu0 = cpu()
            ack = asyncio.run(post_raw_emails(f"{our_base}/webhooks/email/{inbox.uuid}/",
                                              INBOUND_SECRET, files))
            our_res["email"] = {**ack, **drain(inbox, first)}
            if our_res["email"]["processed"]:
                our_res["email"].update({f"{k}_per_email": v for k, v in
                                         processes.cpu_per(cpu0, cpu(), our_res["email"]["processed"]).items()})
            print("ours email", json.dumps(our_res["email"]), flush=True)

    processes.stop(sink)

    # 3. Ratios.
    ratios: dict = {}
    for kind in ("note", "reply"):
        if f"api_{kind}" in peer_res:
            p, o = peer_res[f"api_{kind}"], our_res[f"api_{kind}"]
            ratios[f"api_{kind}_throughput"] = ratio(o["requests_per_s"], p["requests_per_s"])
            ratios[f"api_{kind}_p99"] = ratio(o["p99_ms"], p["p99_ms"])
            ratios[f"api_{kind}_cpu_per_request"] = ratio(o.get("server_cpu_ms_per_request"),
                                                           p.get("server_cpu_ms_per_request"))
    if "api_reply" in peer_res and "api_reply_worker_held" in our_res:
        held = our_res["api_reply_worker_held"]
        ratios["api_reply_worker_held_throughput"] = ratio(held["requests_per_s"], peer_res["api_reply"]["requests_per_s"])
        ratios["api_reply_worker_held_web_cpu_per_request"] = ratio(held.get("web_cpu_ms_per_request"),
                                                                     peer_res["api_reply"].get("server_cpu_ms_per_request"))
    if "api_reply" in peer_res and "delivery" in our_res.get("api_reply", {}):
        # The peer's replies are sent before it answers: its requests/s are its e-mails sent/s.
        delivery = our_res["api_reply"]["delivery"]
        ratios["api_reply_sent_throughput"] = ratio(delivery["emails_per_s"], peer_res["api_reply"]["requests_per_s"])
        ratios["api_reply_cpu_per_reply_sent"] = ratio(delivery.get("server_cpu_ms_per_reply_sent"),
                                                        peer_res["api_reply"].get("server_cpu_ms_per_request"))
    if "email" in peer_res:
        ratios["email_ingest_throughput"] = ratio(our_res["email"]["emails_per_s"], peer_res["email"]["emails_per_s"])
        ratios["email_cpu_per_email"] = ratio(our_res["email"].get("server_cpu_ms_per_email"),
                                              peer_res["email"]["cpu_ms_per_email"])
    if "list_page" in peer_res:
        peer_total = (peer_res["list_page"]["p50_ms"] or 0) + (peer_res["list_data"]["p50_ms"] or 0)
        ratios["list_page_p50"] = ratio(our_res["list_page"]["p50_ms"], peer_total)
        ratios["list_api_p50"] = ratio(our_res["list_api"]["p50_ms"], peer_res["list_data"]["p50_ms"])
        ratios["list_page_p95"] = ratio(our_res["list_page"]["p95_ms"],
                                        (peer_res["list_page"]["p95_ms"] or 0) + (peer_res["list_data"]["p95_ms"] or 0))
    results.update(peer_results=peer_res, our_results=our_res, ratios_ours_over_peer=ratios,
                   ratio_notes="*_throughput: ours/peer, above 1 = ours ahead; *_p50/_p95/_p99 (latency) and "
                               "*_cpu_per_*: ours/peer, below 1 = ours ahead")
    path = common.results_write("peer", results)
    print_table(peer_res, our_res, ratios)
    print(f"results: {path}")
    return 0


def print_table(peer: dict, ours: dict, ratios: dict) -> None:
    rows = []
    for kind, label in (("note", "API: private note / internal follow-up"), ("reply", "API: reply / public follow-up")):
        if f"api_{kind}" in peer:
            p, o = peer[f"api_{kind}"], ours[f"api_{kind}"]
            rows.append((label + f" (c={CONCURRENCY})",
                         f"{p['requests_per_s']} req/s, p50 {p['p50_ms']} / p99 {p['p99_ms']} ms, "
                         f"{p.get('server_cpu_ms_per_request')} CPU ms/req",
                         f"{o['requests_per_s']} req/s, p50 {o['p50_ms']} / p99 {o['p99_ms']} ms, "
                         f"{o.get('server_cpu_ms_per_request')} CPU ms/req (web {o.get('web_cpu_ms_per_request')})",
                         f"{ratios[f'api_{kind}_throughput']}× throughput, "
                         f"{ratios[f'api_{kind}_cpu_per_request']}× CPU"))
    if "api_reply" in peer and "delivery" in ours.get("api_reply", {}):
        d = ours["api_reply"]["delivery"]
        rows.append(("replies sent by SMTP, end to end", f"{peer['api_reply']['requests_per_s']} e-mails/s "
                     f"({peer['api_reply'].get('mails_received_by_the_sink')} received)",
                     f"{d['emails_per_s']} e-mails/s ({d['sent']} sent, {d['failed']} failed, "
                     f"{d['mails_received_by_the_sink']} received), {d.get('server_cpu_ms_per_reply_sent')} CPU ms/reply",
                     f"{ratios.get('api_reply_sent_throughput')}× throughput, "
                     f"{ratios.get('api_reply_cpu_per_reply_sent')}× CPU"))
    if "api_reply" in peer and "api_reply_worker_held" in ours:
        h = ours["api_reply_worker_held"]
        rows.append(("reply, our worker held (web tier alone; sent after)",
                     f"{peer['api_reply']['requests_per_s']} req/s, {peer['api_reply'].get('server_cpu_ms_per_request')} CPU ms/req",
                     f"{h['requests_per_s']} req/s, p50 {h['p50_ms']} / p99 {h['p99_ms']} ms, "
                     f"{h.get('web_cpu_ms_per_request')} CPU ms/req; then sent at "
                     f"{h.get('delivery', {}).get('sending_emails_per_s')}/s by the worker alone",
                     f"{ratios.get('api_reply_worker_held_throughput')}× throughput, "
                     f"{ratios.get('api_reply_worker_held_web_cpu_per_request')}× CPU"))
    if "email" in peer:
        rows.append((".eml folder ingest", f"{peer['email']['emails_per_s']} emails/s, "
                     f"{peer['email']['cpu_ms_per_email']} CPU ms/email",
                     f"{ours['email']['emails_per_s']} emails/s (ack {ours['email']['ack_per_s']}/s), "
                     f"{ours['email'].get('server_cpu_ms_per_email')} CPU ms/email "
                     f"(web {ours['email'].get('web_cpu_ms_per_email')})",
                     f"{ratios['email_ingest_throughput']}× throughput, {ratios['email_cpu_per_email']}× CPU"))
    if "list_page" in peer:
        rows.append(("inbox list page 1 (peer: page + data request)",
                     f"p50 {peer['list_page']['p50_ms']} + {peer['list_data']['p50_ms']} ms",
                     f"p50 {ours['list_page']['p50_ms']} ms / p95 {ours['list_page']['p95_ms']} ms",
                     f"{ratios['list_page_p50']}× p50 time"))
        rows.append(("list data (peer DataTables vs our API)",
                     f"p50 {peer['list_data']['p50_ms']} / p95 {peer['list_data']['p95_ms']} ms",
                     f"p50 {ours['list_api']['p50_ms']} / p95 {ours['list_api']['p95_ms']} ms",
                     f"{ratios['list_api_p50']}× p50 time"))
    widths = [max(len(str(r[i])) for r in rows + [("operation", "django-helpdesk", "cxplatform", "ours / peer")])
              for i in range(4)]
    for r in [("operation", "django-helpdesk", "cxplatform", "ours / peer"), *rows]:
        print(" | ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=False)))


if __name__ == "__main__":
    sys.exit(main())
