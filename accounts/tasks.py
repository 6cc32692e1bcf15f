from __future__ import annotations

from celery import shared_task

from accounts import services


@shared_task
def availability_expire_task() -> int:
    return services.availability_expire()
