"""Helpers that build channel rows directly (test data, not business logic)."""
from __future__ import annotations

import datetime as dt

from django.utils import timezone

from channels_app.models import Conversation, Inbox, Message
from customers.models import Customer

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def at(minutes: float = 0, *, days: float = 0) -> dt.datetime:
    return T0 + dt.timedelta(days=days, minutes=minutes)


def inbox(kind: str = "webchat", name: str | None = None) -> Inbox:
    return Inbox.objects.create(name=name or f"{kind} inbox", kind=kind)


def conversation(*, customer: Customer | None = None, inbox_: Inbox, created_at: dt.datetime = T0, **fields) -> Conversation:
    conv = Conversation.objects.create(
        customer=customer or Customer.objects.create(display_name="Sari"), last_inbox=inbox_, created_at=created_at, **fields
    )
    conv.inboxes.add(inbox_)
    return conv


def message(conv: Conversation, *, when: dt.datetime, inbound: bool = True, inbox_: Inbox | None = None,
            author=None, sender: str | None = None, private: bool = False, content: str = "hi") -> Message:
    return Message.objects.create(
        conversation=conv,
        inbox=inbox_ or conv.last_inbox,
        direction="inbound" if inbound else "outbound",
        sender=sender or ("customer" if inbound else ("agent" if author else "system")),
        author=author,
        private=private,
        content=content,
        status="received" if inbound else "sent",
        created_at=when,
    )


def resolve(conv: Conversation, when: dt.datetime) -> None:
    Conversation.objects.filter(pk=conv.pk).update(status="resolved", resolved_at=when)


def reopen(conv: Conversation) -> None:
    Conversation.objects.filter(pk=conv.pk).update(status="open", resolved_at=None)


def now() -> dt.datetime:
    return timezone.now()
