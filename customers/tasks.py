"""Celery tasks for customers: load by id, call a service, nothing else."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="customers.tasks.customer_import_task")
def customer_import_task(job_id: int) -> dict:
    from customers.importer import import_job_run

    job = import_job_run(job_id=job_id)
    return {"job": job.pk, "status": job.status, "processed": job.processed_rows, "failed": job.failed_rows}


@shared_task(name="customers.tasks.duplicates_suggest_task")
def duplicates_suggest_task() -> int:
    """Periodic duplicate finder (schedule: CELERY_BEAT_SCHEDULE, e.g. nightly)."""
    from customers.duplicates import duplicates_suggest

    return duplicates_suggest()
