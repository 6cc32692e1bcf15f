"""Privacy and retention: erase/export a customer's conversations, prune raw deliveries.

`customers` announces erase and export with signals (it must not know channels_app); the
receivers below are connected in ChannelsAppConfig.ready() and only call the services here.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from channels_app.models import Conversation, Message, WebhookEvent
from channels_app.services.media import attachments_delete
from customers.models import Customer


@transaction.atomic
def conversations_erase(*, customer_ids: list[int]) -> dict[str, int]:
    """Blank the bodies, attachments and provider details of every message of these customers,
    and delete the raw webhook deliveries they came from (they hold the same personal data).
    Conversation rows stay (anonymous) so counts and service KPIs remain right."""
    messages = Message.objects.filter(conversation__customer_id__in=customer_ids)
    files = 0
    for attachments in messages.exclude(attachments=[]).values_list("attachments", flat=True):
        files += attachments_delete(attachments=attachments)
    event_ids = list(messages.exclude(webhook_event=None).values_list("webhook_event_id", flat=True).distinct())
    erased = messages.update(content="", attachments=[], data={"erased": True}, reply_to_provider_id="",
                             error_title="", webhook_event=None)
    deleted, _ = WebhookEvent.objects.filter(pk__in=event_ids).delete()
    return {"messages_erased": erased, "webhook_events_deleted": deleted, "files_deleted": files}


def conversations_export(*, customer: Customer) -> list[dict[str, Any]]:
    """The customer's conversations and messages (private notes excluded), oldest first."""
    profile_ids = [customer.pk, *Customer.objects.filter(merged_into=customer).values_list("pk", flat=True)]
    conversations = (
        Conversation.objects.filter(customer_id__in=profile_ids)
        .prefetch_related("messages__inbox")
        .order_by("created_at", "id")
    )
    return [
        {
            "id": conversation.pk,
            "status": conversation.status,
            "created_at": conversation.created_at.isoformat(),
            "resolved_at": conversation.resolved_at.isoformat() if conversation.resolved_at else None,
            "messages": [
                {
                    "created_at": message.created_at.isoformat(),
                    "channel": message.inbox.kind,
                    "direction": message.direction,
                    "content": message.content,
                    "attachments": message.attachments,
                    "status": message.status,
                }
                for message in conversation.messages.all()
                if not message.private
            ],
        }
        for conversation in conversations
    ]


def webhook_event_prune(*, older_than: dt.timedelta | None = None) -> int:
    """Delete processed raw deliveries past the retention period (WEBHOOK_EVENT_RETENTION_DAYS,
    default 30). Parked and failed ones are kept until an admin deals with them."""
    if older_than is None:
        older_than = dt.timedelta(days=int(getattr(settings, "WEBHOOK_EVENT_RETENTION_DAYS", 30)))
    cutoff = timezone.now() - older_than
    deleted, _ = WebhookEvent.objects.filter(status=WebhookEvent.Status.PROCESSED, received_at__lt=cutoff).delete()
    return deleted


# --- signal receivers (connected in apps.py) ------------------------------------------------


def on_customer_erased(sender, *, customer_ids: list[int], **kwargs) -> None:
    conversations_erase(customer_ids=customer_ids)


def on_customer_export_collect(sender, *, customer: Customer, **kwargs) -> tuple[str, list[dict[str, Any]]]:
    return "conversations", conversations_export(customer=customer)
