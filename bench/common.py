"""Shared plumbing of the benchmarks: the production settings environment, Django set-up,
percentiles, and the results file.

Every benchmark runs against PostgreSQL + Redis with `cxplatform.settings.production`, the
settings real deployments use (psycopg pool, Redis cache/channel layer/broker). The URLs come
from the environment (`bench/servers.sh start` prints them).
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
# Fixed, public benchmark secrets: the benchmark database is disposable and loopback-only.
BENCH_SECRET_KEY = "bench-" + "k3y" * 20
WHATSAPP_APP_SECRET = "bench-whatsapp-app-secret"
WHATSAPP_PHONE_NUMBER_ID = "100000000000001"
BENCH_ADMIN_EMAIL = "bench-admin@bench.cxplatform.test"
BENCH_PASSWORD = "bench-password-2026"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def bench_env(**extra: str) -> dict[str, str]:
    """The environment the platform's processes run with during a benchmark."""
    env = dict(os.environ)
    for name in ("DATABASE_URL", "REDIS_URL"):
        if not env.get(name):
            raise SystemExit(f"{name} is not set: run `eval $(bench/servers.sh start)` first (or `make bench`).")
    # The API throttles stay on (their cost is real: a Redis round trip each) but must never
    # refuse during a run: one benchmark's requests would otherwise throttle the next one's.
    for name in ("API_RATE_TOKEN", "API_RATE_USER", "API_RATE_IP"):
        env.setdefault(name, "1000000/min")
    env.update(
        DJANGO_SETTINGS_MODULE="cxplatform.settings.production",
        SECRET_KEY=env.get("BENCH_SECRET_KEY", BENCH_SECRET_KEY),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="false",
        PUBLIC_BASE_URL="http://127.0.0.1:8000",
        OUTBOUND_ALLOWED_NETWORKS="127.0.0.0/8",
        CX_BENCH_ENDPOINTS="true",
    )
    env.update(extra)
    return env


def django_setup() -> None:
    os.environ.update(bench_env())
    import django

    django.setup()


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    low = int(k)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def summary_ms(seconds: list[float]) -> dict[str, Any]:
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 50), 1) if ms else None,
        "p95_ms": round(percentile(ms, 95), 1) if ms else None,
        "p99_ms": round(percentile(ms, 99), 1) if ms else None,
        "mean_ms": round(statistics.fmean(ms), 1) if ms else None,
    }


def machine() -> dict[str, Any]:
    import django

    def version(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip().splitlines()[0]
        except Exception:
            return "?"

    return {
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "cpus": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "django": django.get_version(),
        "postgresql": version(["psql", "--version"]),
        "redis": version(["redis-server", "--version"]),
        "git": version(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]),
    }


def results_write(name: str, data: dict[str, Any]) -> Path:
    """Merge `data` under `name` into bench/results/latest.json (one file per run of make bench)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "latest.json"
    current = json.loads(path.read_text()) if path.exists() else {}
    current[name] = data
    current["machine"] = machine()
    path.write_text(json.dumps(current, indent=2, default=str) + "\n")
    return path


def leftovers_park() -> int:
    """Park the deliveries an earlier measurement left unprocessed (with the reason, where an
    admin would replay them) and clear the drain's wake flag: a drain processes the oldest
    deliveries first, so an old backlog would be processed before the ones being measured."""
    from django.core.cache import cache

    from channels_app.models import WebhookEvent
    from channels_app.services.ingest import DRAIN_WAKE_KEY

    cache.delete(DRAIN_WAKE_KEY)
    left = WebhookEvent.objects.filter(status__in=[WebhookEvent.Status.RECEIVED, WebhookEvent.Status.FAILED]).update(
        status=WebhookEvent.Status.PARKED, last_error="left unprocessed by a benchmark run")
    if left:
        print(f"parked {left} deliveries an earlier measurement left unprocessed", flush=True)
    return left


def replies_left_fail() -> int:
    """Mark failed the replies an earlier measurement or profiling run left queued (and clear
    the delivery drain's wake flag): the drain sends the oldest queued replies first, so an old
    backlog would be sent inside the run being measured."""
    from django.core.cache import cache

    from channels_app.models import Message, MessageStatus
    from channels_app.services.messages import DELIVER_DRAIN

    cache.delete(DELIVER_DRAIN.wake_key)
    left = Message.objects.filter(status=MessageStatus.QUEUED).update(
        status=MessageStatus.FAILED, error_title="left unsent by a benchmark run")
    if left:
        print(f"marked failed {left} replies an earlier measurement left queued", flush=True)
    return left
