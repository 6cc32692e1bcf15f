"""Live numbers for the overview dashboard: open, unassigned, waiting longest, agents online."""
from __future__ import annotations

from typing import Any

from django.db.models import Count, Min, Q

from accounts.models import Availability, User
from channels_app.models import Conversation, ConversationStatus


def live_numbers() -> dict[str, Any]:
    """Two aggregate queries, whatever the volume."""
    unresolved = Conversation.objects.exclude(status=ConversationStatus.RESOLVED)
    numbers = unresolved.aggregate(
        open=Count("id", filter=Q(status=ConversationStatus.OPEN)),
        pending=Count("id", filter=Q(status=ConversationStatus.PENDING)),
        snoozed=Count("id", filter=Q(status=ConversationStatus.SNOOZED)),
        unassigned=Count("id", filter=Q(status=ConversationStatus.OPEN, assignee__isnull=True)),
        oldest_waiting=Min("last_inbound_at", filter=Q(status=ConversationStatus.OPEN)),
    )
    numbers["agents_online"] = User.objects.filter(is_active=True, availability=Availability.ONLINE).count()
    return numbers
