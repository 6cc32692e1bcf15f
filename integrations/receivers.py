"""Domain events of other apps → outbound webhook events.

Signals are the right tool here: customers, channels_app and journeys must not know that
integrators exist. Every signal connected here is sent on commit by its app, so a webhook is
never recorded for a change that was rolled back; `_emit` swallows (and logs) any failure so a
webhook problem never breaks the business action. See ``integrations.events.WIRED_EVENT_TYPES``
and the payloads documented in docs/api.md ("Event payloads").
"""
from __future__ import annotations

import logging

from django.dispatch import receiver

from channels_app import events as channel_events
from customers import events as customer_events
from integrations import events
from integrations.services import webhook_event_emit
from journeys import events as journey_events

logger = logging.getLogger(__name__)


def _customer_data(customer) -> dict:
    return {
        "id": customer.pk,
        "display_name": customer.display_name,
        "lifecycle_stage": customer.lifecycle_stage,
        "language": customer.language,
        "created_at": customer.created_at,
        "updated_at": customer.updated_at,
    }


def _conversation_data(conversation) -> dict:
    return {
        "id": conversation.pk,
        "status": conversation.status,
        "customer_id": conversation.customer_id,
        "inbox_id": conversation.last_inbox_id,
        "assignee_id": conversation.assignee_id,
        "team_id": conversation.team_id,
        "priority": conversation.priority,
        "created_at": conversation.created_at,
        "resolved_at": conversation.resolved_at,
        "snoozed_until": conversation.snoozed_until,
    }


def _message_data(message, conversation, *, kind: str) -> dict:
    return {
        "id": message.pk,
        "uuid": str(message.uuid),
        "conversation_id": conversation.pk,
        "customer_id": conversation.customer_id,
        "inbox_id": message.inbox_id,
        "channel": message.inbox.kind,
        "direction": message.direction,
        "kind": kind,
        "sender": message.sender,
        "author_id": message.author_id,
        "private": message.private,
        "status": message.status,
        "content": message.content,
        "attachments": [
            {key: item.get(key) for key in ("kind", "mime_type", "filename", "size") if item.get(key) is not None}
            for item in (message.attachments or []) if isinstance(item, dict)
        ],
        "provider_message_id": message.provider_message_id,
        "created_at": message.created_at,
    }


def _emit(type: str, data: dict) -> None:
    # A webhook problem must never break the business action that caused the event.
    try:
        webhook_event_emit(type=type, data=data)
    except Exception:
        logger.exception("could not record webhook event %s", type)


# --- customers ----------------------------------------------------------------------------


@receiver(customer_events.customer_created, dispatch_uid="integrations.customer_created")
def on_customer_created(sender, customer, **kwargs):
    _emit(events.CUSTOMER_CREATED, {"customer": _customer_data(customer)})


@receiver(customer_events.customer_updated, dispatch_uid="integrations.customer_updated")
def on_customer_updated(sender, customer, changed=(), **kwargs):
    changed = list(changed or [])
    _emit(events.CUSTOMER_UPDATED, {"customer": _customer_data(customer), "changed": changed})
    if "lifecycle_stage" in changed:
        _emit(events.CUSTOMER_STAGE_CHANGED, {"customer": _customer_data(customer), "stage": customer.lifecycle_stage})


@receiver(customer_events.customer_merged, dispatch_uid="integrations.customer_merged")
def on_customer_merged(sender, survivor, merged, merge=None, **kwargs):
    _emit(
        events.CUSTOMER_MERGED,
        {"survivor": _customer_data(survivor), "merged_id": merged.pk, "merge_id": getattr(merge, "pk", None)},
    )


# --- channels_app -------------------------------------------------------------------------


@receiver(channel_events.message_created, dispatch_uid="integrations.message_created")
def on_message_created(sender, message, conversation, kind, **kwargs):
    _emit(events.MESSAGE_CREATED, {"message": _message_data(message, conversation, kind=kind)})


@receiver(channel_events.message_status_changed, dispatch_uid="integrations.message_status_changed")
def on_message_status_changed(sender, message, conversation, status, previous_status="", error_code="",
                              error_title="", **kwargs):
    _emit(events.MESSAGE_STATUS_CHANGED, {
        "message": _message_data(message, conversation, kind=channel_events.message_kind(message)),
        "status": status,
        "previous_status": previous_status,
        "error": {"code": error_code, "title": error_title} if (error_code or error_title) else None,
    })


@receiver(channel_events.conversation_created, dispatch_uid="integrations.conversation_created")
def on_conversation_created(sender, conversation, inbox=None, **kwargs):
    _emit(events.CONVERSATION_CREATED, {
        "conversation": _conversation_data(conversation),
        "inbox": {"id": inbox.pk, "name": inbox.name, "channel": inbox.kind} if inbox is not None else None,
    })


@receiver(channel_events.conversation_assigned, dispatch_uid="integrations.conversation_assigned")
def on_conversation_assigned(sender, conversation, assignee_id=None, previous_assignee_id=None, team_id=None,
                             actor_id=None, **kwargs):
    _emit(events.CONVERSATION_ASSIGNED, {
        "conversation": _conversation_data(conversation),
        "assignee_id": assignee_id,
        "previous_assignee_id": previous_assignee_id,
        "team_id": team_id,
        "assigned_by_id": actor_id,
    })


@receiver(channel_events.conversation_status_changed, dispatch_uid="integrations.conversation_status_changed")
def on_conversation_status_changed(sender, conversation, change, previous_status="", actor_id=None, **kwargs):
    if change != "resolved":
        return  # reopened/snoozed have no public webhook type (yet)
    _emit(events.CONVERSATION_RESOLVED, {
        "conversation": _conversation_data(conversation),
        "previous_status": previous_status,
        "resolved_by_id": actor_id,
    })


# --- journeys -----------------------------------------------------------------------------


@receiver(journey_events.csat_answered, dispatch_uid="integrations.csat_answered")
def on_csat_answered(sender, response, survey, customer, **kwargs):
    _emit(events.CSAT_SUBMITTED, {
        "response": {
            "id": response.pk,
            "rating": response.rating,
            "nps": response.nps,
            "comment": response.comment,
            "via": response.via,
            "responded_at": response.responded_at,
        },
        "survey_id": survey.pk,
        "conversation_id": survey.conversation_id,
        "customer_id": customer.pk,
        "inbox_id": survey.inbox_id,
        "assignee_id": survey.assignee_id,
        "team_id": survey.team_id,
    })


@receiver(journey_events.customer_event_recorded, dispatch_uid="integrations.customer_event_recorded")
def on_customer_event_recorded(sender, customer_event, customer, customer_created=False, **kwargs):
    _emit(events.EVENT_RECEIVED, {
        "event": {
            "id": customer_event.external_id,
            "type": customer_event.type,
            "meaning": customer_event.meaning,
            "occurred_at": customer_event.occurred_at,
            "received_at": customer_event.received_at,
            "channel": customer_event.channel,
            "properties": customer_event.properties,
        },
        "customer_id": customer.pk,
        "customer_created": customer_created,
    })
