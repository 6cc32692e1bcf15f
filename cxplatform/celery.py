"""The Celery application: background and scheduled jobs (worker + beat processes)."""
from __future__ import annotations

import os

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cxplatform.settings.base")

app = Celery("cxplatform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def _freeze_startup_objects(**_kwargs) -> None:
    """Each worker process, once Django is set up (cxplatform/gc_tuning.py)."""
    from cxplatform.gc_tuning import freeze_startup_objects

    freeze_startup_objects()
