"""Celery tasks: load by id → call a service; idempotent; no business logic."""
from __future__ import annotations

from celery import shared_task

from journeys import services


@shared_task(acks_late=True)
def journeys_sync_task() -> dict[str, int]:
    """Periodic: resolutions log, first-inbound acquisitions, CSAT schedule/send/replies/expiry."""
    return services.journeys_sync()


@shared_task(acks_late=True)
def csat_survey_send_task(survey_id: int) -> str:
    return services.csat_survey_send(survey_id=survey_id).status


@shared_task(acks_late=True)
def nps_campaign_send_task(campaign_id: int) -> str:
    """Send an NPS campaign to its segment; safe to re-run (customers already handled are skipped)."""
    from journeys import nps

    return nps.nps_campaign_send(campaign_id=campaign_id).status
