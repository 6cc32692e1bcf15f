"""Domain events the journeys app emits.

The names are recorded on timelines and audit; the signals connect apps that must not know
each other (integrations turns them into outbound webhooks). Both signals are sent on commit
with `send_robust`: a failing receiver never breaks the recording of an event or an answer.
"""
from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.dispatch import Signal

logger = logging.getLogger(__name__)

EVENT_RECORDED = "journeys.event.recorded"
STAGE_CHANGED = "journeys.stage.changed"
CSAT_SENT = "journeys.csat.sent"
CSAT_ANSWERED = "journeys.csat.answered"

# kwargs: event (name), customer_event (journeys.CustomerEvent), customer, customer_created.
customer_event_recorded = Signal()
# kwargs: event, response (journeys.CsatResponse), survey (journeys.CsatSurvey), customer.
csat_answered = Signal()


def send_on_commit(signal: Signal, **kwargs: Any) -> None:
    """Send `signal` once the current transaction commits (at once when there is none)."""

    def send() -> None:
        for receiver, result in signal.send_robust(sender=signal, **kwargs):
            if isinstance(result, Exception):
                logger.error("receiver %r of %s failed", receiver, kwargs.get("event"), exc_info=result)

    transaction.on_commit(send)
