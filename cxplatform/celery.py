"""The Celery application: background and scheduled jobs (worker + beat processes)."""
from __future__ import annotations

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cxplatform.settings.base")

app = Celery("cxplatform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def _freeze_startup_objects(**_kwargs) -> None:
    """Each worker process, once Django is set up (cxplatform/gc_tuning.py)."""
    from cxplatform.gc_tuning import freeze_startup_objects

    freeze_startup_objects()


@task_prerun.connect
@task_postrun.connect
def _close_old_connections(sender=None, **_kwargs) -> None:
    """Around each task, what Django does around each request: drop a database connection that
    is broken or older than CONN_MAX_AGE, and health-check the kept one before its next use.
    (Celery's fixup would close every connection instead; see CELERY_DB_REUSE_MAX.) Not for an
    eager task: it runs inside the caller's request or test, whose connection is not ours."""
    if sender is None or getattr(sender.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()
