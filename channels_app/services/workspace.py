"""Agent workspace writes: conversation controls that tell the other agents live, read markers.

The controls reuse the conversation and label services and then publish
`channels.conversation.updated` to the conversation's audience, so every open page refreshes
its side panel (the page, not the socket, carries the data).
"""
from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from channels_app import realtime
from channels_app.models import Conversation, ConversationRead, Label, Message
from channels_app.services.conversations import _conversation_payload, conversation_audience, conversation_priority_set
from channels_app.services.labels import conversation_labels_set, label_name_clean

UPDATED_EVENT = "channels.conversation.updated"


def _publish_updated(conversation: Conversation, *, change: str, actor: User | None) -> None:
    payload = _conversation_payload(conversation)
    payload["conversation"].update({"priority": conversation.priority, "change": change})
    payload["by"] = actor.pk if actor is not None else None
    realtime.publish(UPDATED_EVENT, payload, groups=conversation_audience(conversation=conversation))


@transaction.atomic
def conversation_priority_change(*, conversation: Conversation, priority: str, actor: User | None) -> Conversation:
    """Set the priority and tell whoever has the conversation open or owns it."""
    conversation = conversation_priority_set(conversation=conversation, priority=priority)
    _publish_updated(conversation, change="priority", actor=actor)
    return conversation


@transaction.atomic
def conversation_label_add(*, conversation: Conversation, name: str, actor: User | None) -> list[Label]:
    """Add one existing label (a typo never invents a new one: the label service refuses it)."""
    current = [label.name for label in conversation.labels.all()]
    labels = conversation_labels_set(conversation=conversation, labels=[*current, name])
    _publish_updated(conversation, change="labels", actor=actor)
    return labels


@transaction.atomic
def conversation_label_remove(*, conversation: Conversation, name: str, actor: User | None) -> list[Label]:
    value = label_name_clean(name)
    current = [label.name for label in conversation.labels.all()]
    if value not in current:
        raise ValidationError({"labels": [_("This conversation has no label %(name)s.") % {"name": value}]})
    labels = conversation_labels_set(conversation=conversation, labels=[n for n in current if n != value])
    _publish_updated(conversation, change="labels", actor=actor)
    return labels


def conversation_mark_read(*, conversation: Conversation, user: User, up_to_message_id: int | None = None) -> int:
    """Everything in the conversation up to `up_to_message_id` (default: its newest message) is
    read by this agent. The marker only moves forward. Returns the marker's message id."""
    newest = Message.objects.filter(conversation=conversation).aggregate(m=Max("pk"))["m"] or 0
    target = newest if up_to_message_id is None else max(0, min(int(up_to_message_id), newest))
    now = timezone.now()
    updated = ConversationRead.objects.filter(
        user=user, conversation=conversation, last_read_message_id__lt=target
    ).update(last_read_message_id=target, read_at=now)
    if not updated:
        try:
            with transaction.atomic():
                ConversationRead.objects.get_or_create(
                    user=user, conversation=conversation,
                    defaults={"last_read_message_id": target, "read_at": now},
                )
        except IntegrityError:  # a concurrent request created it: fine, move it forward
            ConversationRead.objects.filter(user=user, conversation=conversation,
                                            last_read_message_id__lt=target).update(last_read_message_id=target,
                                                                                    read_at=now)
    return target
