"""What a process's first requests would otherwise pay for, done before it takes traffic.

Measured in one process on the benchmark data: the first signed webhook took 467 ms and the
next ones 2 ms. The first request imports every URLconf (and with them every view, form and
serializer: 270 ms), builds the URL reverse tables, loads the translation catalogs, finalizes
the Celery app's task registry (22 ms), and opens the connections to PostgreSQL, the Redis
cache and the broker. Right after a restart under 300 webhooks/s that made an ack p99 of
62-91 ms (docs/performance.md, eighth session).

- `warm_imports()` touches no network: every server process (the WSGI and ASGI modules, each
  Celery worker process) calls it through `gc_tuning.freeze_startup_objects()`, before the
  freeze, so what it loads is frozen too; it is safe before a fork (gunicorn --preload).
- `warm_connections()` opens this process's connections: gunicorn calls it in each worker
  once the application is loaded (gunicorn.conf.py, `post_worker_init`). A server that is
  down is logged and left to the first request, which fails or retries as it always would.
"""
from __future__ import annotations

import logging
import time

logger = logging.getLogger(__name__)


def warm_imports() -> float:
    """Import and build what the first request would; returns the seconds it took."""
    from django.conf import settings
    from django.urls import get_resolver, reverse
    from django.utils import translation

    started = time.perf_counter()
    get_resolver().url_patterns  # noqa: B018  (imports every URLconf and what they import)
    reverse("healthz")  # the reverse lookup tables
    for code, _name in settings.LANGUAGES:
        with translation.override(code):
            translation.gettext("Conversations")  # each language's catalogs
    from cxplatform.celery import app

    app.loader.import_default_modules()  # every app's tasks module, as a worker imports them
    app.finalize(auto=True)  # the task registry the first .delay() would build
    return time.perf_counter() - started


def warm_connections() -> float:
    """Open the database, cache and broker connections of this process (after any fork)."""
    from django.core.cache import cache
    from django.db import connection

    from cxplatform.celery import app

    started = time.perf_counter()
    steps = (
        ("database", connection.ensure_connection),
        ("cache", lambda: cache.get("cx:warm-up")),
        ("broker", lambda: _broker_connect(app)),
    )
    for name, step in steps:
        try:
            step()
        except Exception as exc:  # a server down at start-up is the first request's to handle
            logger.warning("warm-up: could not reach the %s (%s); the first request will try again",
                           name, type(exc).__name__)
    return time.perf_counter() - started


def _broker_connect(app) -> None:
    if app.conf.task_always_eager:
        return
    with app.producer_or_acquire() as producer:
        producer.connection.ensure_connection(max_retries=1)
