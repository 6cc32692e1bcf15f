"""Domain events the channels app emits, and the signals other apps listen on.

Signals connect apps that must not know each other (integrations turns them into outbound
webhooks; journeys may observe them). channels_app calls its own logic explicitly. Every
signal here is sent on commit (`send_on_commit`): a receiver never sees a change that was
rolled back, and a failing receiver never breaks the service that caused the event
(`send_robust`; failures are logged).
"""
from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.dispatch import Signal

logger = logging.getLogger(__name__)

MESSAGE_CREATED = "channels.message.created"
MESSAGE_STATUS_CHANGED = "channels.message.status_changed"
CONVERSATION_CREATED = "channels.conversation.created"
CONVERSATION_ASSIGNED = "channels.conversation.assigned"
CONVERSATION_STATUS_CHANGED = "channels.conversation.status_changed"

# kwargs: event (name), message, conversation, direction ("inbound"/"outbound"),
# kind ("inbound" | "outbound" | "note").
message_created = Signal()
# kwargs: event, message, conversation, status (queued/sent/delivered/read/failed),
# previous_status, error_code, error_title (both "" unless failed).
message_status_changed = Signal()
# kwargs: event, conversation, inbox (where it started).
conversation_created = Signal()
# kwargs: event, conversation, assignee_id, previous_assignee_id, team_id, actor_id (None: automatic).
conversation_assigned = Signal()
# kwargs: event, conversation, status, previous_status, change ("resolved" | "reopened" |
# "snoozed" | "status"), actor_id.
conversation_status_changed = Signal()


def message_kind(message: Any) -> str:
    """What a message is, for receivers that filter: a customer message, a reply, a private note."""
    if message.private:
        return "note"
    return "inbound" if message.direction == "inbound" else "outbound"


def send_on_commit(signal: Signal, **kwargs: Any) -> None:
    """Send `signal` once the current transaction commits (at once when there is none)."""

    def send() -> None:
        for receiver, result in signal.send_robust(sender=signal, **kwargs):
            if isinstance(result, Exception):
                logger.error("receiver %r of %s failed", receiver, kwargs.get("event"), exc_info=result)

    transaction.on_commit(send)
