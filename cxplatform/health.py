"""Liveness (/healthz) and readiness (/readyz) probes for load balancers and orchestrators."""
from __future__ import annotations

import logging

from django.conf import settings
from django.db import connections
from django.http import JsonResponse
from django.views.decorators.cache import never_cache

logger = logging.getLogger(__name__)
PROBE_TIMEOUT_SECONDS = 2


def _check_database() -> None:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_channel_layer() -> None:
    backend = settings.CHANNEL_LAYERS["default"]["BACKEND"]
    if backend.endswith("InMemoryChannelLayer"):
        return  # lives in this process: reachable by definition
    import redis

    for host in settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"]:
        address = host["address"] if isinstance(host, dict) else host
        client = redis.Redis.from_url(address, socket_connect_timeout=PROBE_TIMEOUT_SECONDS, socket_timeout=PROBE_TIMEOUT_SECONDS)
        try:
            client.ping()
        finally:
            client.close()


def _check_broker() -> None:
    if settings.CELERY_BROKER_URL.startswith("memory://"):
        return  # embedded default without REDIS_URL: tasks run in-process
    from cxplatform.celery import app

    with app.connection_for_write(url=settings.CELERY_BROKER_URL) as connection:
        connection.ensure_connection(max_retries=1, timeout=PROBE_TIMEOUT_SECONDS)


CHECKS = {"database": _check_database, "channel_layer": _check_channel_layer, "task_broker": _check_broker}


@never_cache
def healthz(request):
    return JsonResponse({"status": "ok"})


@never_cache
def readyz(request):
    results, failed = {}, []
    for name, check in CHECKS.items():
        try:
            check()
            results[name] = "ok"
        except Exception as exc:  # any failure means not ready; the reason goes to the log
            logger.warning("readiness check %s failed: %s", name, exc)
            results[name] = "unreachable"
            failed.append(name)
    status = 503 if failed else 200
    return JsonResponse({"status": "unavailable" if failed else "ok", "checks": results, "failed": failed}, status=status)
