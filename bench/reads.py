"""Reads and reports on the full dataset (issue 8 §5 and §6), through the production HTTP
server (gunicorn), with SQL query counts per request.

    eval $(bench/servers.sh start) && .venv/bin/python bench/reads.py [--requests 50]

Reads, as an agent sees them (signed-in session; the agent's own scope) and as a supervisor
(everything): the inbox list, a conversation page, a customer's timeline page, customer search
(by name and by a phone spelled the local way), and the API equivalents. Reports through the
API: funnel, service KPIs and CSAT over the last 90 days and the last 12 months. Sequential
requests after 3 warm-ups; p50/p95. Query counts come from the same URLs run in-process with
Django's test client (CaptureQueriesContext).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import processes  # noqa: E402

common.django_setup()

import agents as bench_agents  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Count  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from accounts.models import User  # noqa: E402
from accounts.services import api_token_create  # noqa: E402
from channels_app.models import Conversation  # noqa: E402
from channels_app.selectors import conversation_visibility  # noqa: E402
from customers.models import Customer, TimelineEntry  # noqa: E402
from cxplatform.api.permissions import ALL_SCOPES  # noqa: E402

HTTP_PORT = 8131


def targets() -> dict[str, list[tuple[str, str]]]:
    """(name, path) per viewer kind."""
    busiest = (TimelineEntry.objects.values("customer_id").annotate(n=Count("id")).order_by("-n").first())
    customer_id = busiest["customer_id"] if busiest else Customer.objects.first().pk
    # A conversation of that customer the bench agent may see (a 404 would measure nothing).
    agent = User.objects.filter(email__startswith="bench-agent").order_by("id").first()
    scope = conversation_visibility(viewer=agent)
    visible = Conversation.objects.filter(scope) if scope is not None else Conversation.objects.all()
    conversation = (visible.filter(customer_id=customer_id).order_by("-last_message_at").first()
                    or visible.order_by("-last_message_at").first())
    today = timezone.localdate()
    d90 = (today - dt.timedelta(days=89)).isoformat()
    d365 = (today - dt.timedelta(days=364)).isoformat()
    reads = [
        ("inbox list (all, page 1)", "/inbox/?view=all"),
        ("inbox list (open)", "/inbox/?status=open"),
        ("conversation page", f"/inbox/{conversation.pk}/"),
        ("customer timeline page", f"/customers/{customer_id}/"),
        ("customer search: name", "/customers/?q=Budi+Santoso"),
        ("customer search: phone 0812-0000-4321", "/customers/?q=0812-0000-4321"),
        ("API conversations list", "/api/v1/conversations/"),
        ("API customer timeline", f"/api/v1/customers/{customer_id}/timeline/"),
        ("API customer search", "/api/v1/customers/?q=0812-0000-4321"),
    ]
    reports = [
        (f"{name} {span}", f"/api/v1/reports/{name}/?from={start}&to={today.isoformat()}")
        for name in ("funnel", "kpis", "csat") for span, start in (("90 days", d90), ("12 months", d365))
    ]
    return {"reads": reads, "reports": reports}


def http_get(path: str, headers: dict[str, str]) -> tuple[int, float]:
    request = urllib.request.Request(f"http://127.0.0.1:{HTTP_PORT}{path}", headers={
        "Host": "127.0.0.1", "X-Forwarded-Proto": "https", **headers})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    return status, time.perf_counter() - started


def measure(path: str, headers: dict[str, str], n: int, cpu=None) -> dict:
    """Latencies, and with `cpu` (processes.cpu_meter) the CPU each request cost gunicorn
    (`web_cpu_ms`) and PostgreSQL + Redis (`db_cpu_ms`): on a shared machine the latency's tail
    moves with the neighbours' load, the CPU a request costs much less."""
    for _ in range(3):
        http_get(path, headers)
    timings, statuses = [], set()
    before = cpu() if cpu else None
    for _ in range(n):
        status, seconds = http_get(path, headers)
        statuses.add(status)
        timings.append(seconds)
    used = processes.cpu_per(before, cpu(), n) if cpu else {}
    if statuses != {200}:
        # An error page is fast and measures nothing (a run once timed 429s at 3.5 ms).
        raise SystemExit(f"GET {path} answered {sorted(statuses)}, not 200: nothing to measure")
    return {"status": sorted(statuses), **{k: v for k, v in common.summary_ms(timings).items() if k != "p99_ms"},
            **{k: v for k, v in used.items() if k != "server_cpu_ms"}}


def queries(client: Client, path: str, headers: dict[str, str]) -> int:
    with CaptureQueriesContext(connection) as ctx:
        client.get(path, HTTP_HOST="127.0.0.1", HTTP_X_FORWARDED_PROTO="https", **headers)
    return len(ctx.captured_queries)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    admin = User.objects.get(email=common.BENCH_ADMIN_EMAIL)
    agent = User.objects.filter(email__startswith="bench-agent").order_by("id").first()
    _token, raw = api_token_create(user=admin, name="bench reads", scopes=ALL_SCOPES)
    viewers = {"supervisor": admin, "agent": agent}
    paths = targets()
    results: dict = {"dataset": {"customers": Customer.objects.count(), "conversations": Conversation.objects.count()},
                     "reads": [], "reports": []}
    with processes.running(lambda: processes.gunicorn(HTTP_PORT)) as procs:
        cpu = processes.cpu_meter(procs)
        for kind in ("reads", "reports"):
            for name, path in paths[kind]:
                for viewer_name, user in (viewers.items() if kind == "reads" else [("api token", admin)]):
                    if path.startswith("/api/"):
                        if viewer_name == "agent":
                            continue
                        headers = {"Authorization": f"Bearer {raw}"}
                        client_headers = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
                        client = Client()
                    else:
                        cookie = bench_agents.session_cookie(user)
                        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in cookie.items())}
                        client = Client()
                        for key, value in cookie.items():
                            client.cookies[key] = value
                        client_headers = {}
                    row = {"name": name, "viewer": viewer_name, "path": path,
                           **measure(path, headers, args.requests if kind == "reads" else max(5, args.requests // 5), cpu),
                           "queries": queries(client, path, client_headers)}
                    results[kind].append(row)
                    print(json.dumps(row), flush=True)
    common.results_write("reads", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
