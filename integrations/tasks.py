from __future__ import annotations

from celery import shared_task

from integrations import services


@shared_task(ignore_result=True)
def webhook_deliver_task(delivery_id: int) -> None:
    """One attempt; a failed one is picked up again by webhook_deliveries_due_task when due."""
    services.webhook_delivery_attempt(delivery_id=delivery_id)


@shared_task(ignore_result=True)
def webhook_deliveries_due_task() -> None:
    for delivery_id in services.webhook_deliveries_due():
        webhook_deliver_task.delay(delivery_id)


@shared_task(ignore_result=True)
def idempotency_records_purge_task() -> None:
    """Hourly housekeeping: expired idempotency records and the old delivery log."""
    services.idempotency_records_purge()
    services.webhook_deliveries_purge()
