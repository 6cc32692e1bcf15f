"""Push events to agents' sockets, after the database has committed what they describe.

Services call `publish(...)` explicitly with the narrow groups that may see the event
(`agent.<id>`, later `inbox.<id>` / `conversation.<id>`); there is no global group. The channel
layer may drop messages, so every event carries a monotonic `id` and the database stays the
source of truth: a reconnecting client re-reads what changed since the last id it saw.
"""
from __future__ import annotations

import itertools
import logging
import re
import time
from collections.abc import Iterable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

MESSAGE_TYPE = "agent.event"  # handled by AgentConsumer.agent_event

_counter = itertools.count()


def agent_group(user_id: int) -> str:
    return f"agent.{user_id}"


def visitor_group(visitor_token: str) -> str:
    """A web chat visitor's widget sockets (channel-layer group names allow [A-Za-z0-9._-])."""
    return "visitor." + re.sub(r"[^A-Za-z0-9._-]", "_", visitor_token)[:90]


def conversation_group(conversation_id: int) -> str:
    """Sockets that have a conversation open join this after `selectors.conversation_can_view`."""
    return f"conversation.{conversation_id}"


def _next_id() -> int:
    # Microseconds since the epoch, nudged by a process-local counter so two events published
    # in the same microsecond keep their order.
    return time.time_ns() // 1000 * 1000 + next(_counter) % 1000


def publish(event: str, payload: dict[str, Any], *, groups: Iterable[str]) -> None:
    """Send `{"event": event, "id": <monotonic>, **payload}` to `groups` once the current
    transaction commits (immediately when there is none). Never raises into the caller."""
    targets = sorted(set(groups))
    if not targets:
        return
    message = {"type": MESSAGE_TYPE, "payload": {"event": event, "id": _next_id(), **payload}}

    def send() -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        for group in targets:
            try:
                async_to_sync(layer.group_send)(group, message)
            except Exception:  # the channel layer is best effort; the DB has the truth
                logger.warning("realtime publish of %s to %s failed", event, group, exc_info=True)

    transaction.on_commit(send)
