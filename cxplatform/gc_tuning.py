"""Garbage-collector pauses in the server processes (gunicorn, daphne, Celery workers).

A full collection (generation 2) walks every object the collector tracks, and after start-up
that is mostly Django, the URL configuration, the apps' modules and their caches: objects that
live as long as the process and are never garbage. On the live-push benchmark each process
ran such collections every few seconds, 40-140 ms each, collecting next to nothing; they were
the spikes in the push latency's p99 (docs/performance.md).

`freeze_startup_objects()` loads what every process needs anyway (`cxplatform.warmup.warm_imports`:
the URL configuration with every view module, the tasks modules, the translations), collects
once, and moves all of it to the collector's permanent generation (`gc.freeze()`), so later
collections only walk what requests and tasks create. Set CX_GC_FREEZE=false to keep the
default behaviour (the loading still happens).
"""
from __future__ import annotations

import gc

from cxplatform.env import env_bool


def freeze_startup_objects() -> bool:
    from cxplatform.warmup import warm_imports

    warm_imports()  # now, not on the first request; and before the freeze, so it is frozen too
    if not env_bool("CX_GC_FREEZE", True):
        return False
    gc.collect()
    gc.freeze()
    return True
