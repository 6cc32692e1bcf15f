"""Garbage-collector pauses in the server processes (gunicorn, daphne, Celery workers).

A full collection (generation 2) walks every object the collector tracks, and after start-up
that is mostly Django, the URL configuration, the apps' modules and their caches: objects that
live as long as the process and are never garbage. On the live-push benchmark each process
ran such collections every few seconds, 40-140 ms each, collecting next to nothing; they were
the spikes in the push latency's p99 (docs/performance.md).

`freeze_startup_objects()` loads what every process needs anyway (settings, apps, the URL
configuration with every view module), collects once, and moves all of it to the collector's
permanent generation (`gc.freeze()`), so later collections only walk what requests and tasks
create. Set CX_GC_FREEZE=false to keep the default behaviour.
"""
from __future__ import annotations

import gc

from cxplatform.env import env_bool


def freeze_startup_objects() -> bool:
    if not env_bool("CX_GC_FREEZE", True):
        return False
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018  (imports every view module now, not on the first request)
    gc.collect()
    gc.freeze()
    return True
