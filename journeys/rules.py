"""Event message rules: "event type → canned message → channel" (docs/journeys.md).

When a customer event arrives (e.g. `order.shipped`), every active rule for its type sends the
customer one message rendered from a canned response, through the channels app's outbound
service (which queues delivery after commit and enforces the WhatsApp 24-hour window). What
happened is stored once per rule and event (`EventMessageDispatch`, unique), so a replayed or
re-processed event never sends twice, and shown on the customer's timeline.
"""
from __future__ import annotations

import logging
import re
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from channels_app.models import (
    Conversation,
    ConversationStatus,
    Inbox,
    InboxKind,
    Message,
    MessageDirection,
    MessageSender,
)
from customers.models import Customer, TimelineKind
from customers.services import timeline_record
from journeys.models import CustomerEvent, EventMessageDispatch, EventMessageRule

logger = logging.getLogger(__name__)

PROPERTY_NAME = re.compile(r"^[a-z_]+$")


def _live(customer: Customer) -> Customer:
    seen = 0
    while customer.merged_into_id is not None and seen < 10:
        customer = Customer.objects.get(pk=customer.merged_into_id)
        seen += 1
    return customer


def preferred_inbox(*, customer: Customer) -> Inbox | None:
    """The channel the customer last wrote to us from (their latest inbound message)."""
    message = (
        Message.objects.filter(conversation__customer=customer, direction=MessageDirection.INBOUND, sender=MessageSender.CUSTOMER)
        .select_related("inbox")
        .order_by("-created_at", "-id")
        .first()
    )
    return message.inbox if message is not None else None


def outbound_conversation(*, customer: Customer) -> Conversation | None:
    """The conversation a proactive message goes into: the customer's unresolved one, else
    their latest. A proactive message never reopens a resolved conversation (it is outbound)."""
    conversations = Conversation.objects.filter(customer=customer)
    return (
        conversations.exclude(status=ConversationStatus.RESOLVED).first()
        or conversations.order_by("-last_message_at", "-created_at", "-id").first()
    )


def event_variables(*, event: CustomerEvent, conversation: Conversation) -> dict[str, str]:
    """The canned-response variables plus `event.type`, `event.id` and `event.<property>` for
    every property whose name is lower-case letters and underscores."""
    from channels_app.services.canned import canned_variables

    variables = canned_variables(conversation=conversation, agent=None)
    variables["event.type"] = event.type
    variables["event.id"] = event.external_id
    for key, value in (event.properties or {}).items():
        if isinstance(key, str) and PROPERTY_NAME.match(key) and isinstance(value, str | int | float):
            variables[f"event.{key}"] = str(value)
    return variables


def _render_template(template: Any, variables: dict[str, str]) -> Any:
    """Substitute variables in every string of a WhatsApp template's components."""
    from channels_app.services.canned import canned_text_render

    if isinstance(template, str):
        return canned_text_render(text=template, variables=variables)
    if isinstance(template, list):
        return [_render_template(item, variables) for item in template]
    if isinstance(template, dict):
        return {key: _render_template(value, variables) for key, value in template.items()}
    return template


def event_rules_apply(*, event: CustomerEvent) -> list[EventMessageDispatch]:
    """Run every active rule for the event's type (each at most once per event)."""
    rules = EventMessageRule.objects.filter(event_type=event.type, is_active=True).select_related("canned_response", "inbox")
    return [event_rule_dispatch(rule=rule, event=event) for rule in rules.order_by("id")]


def event_rule_dispatch(*, rule: EventMessageRule, event: CustomerEvent) -> EventMessageDispatch:
    """Send the rule's message for this event, or record why not. Idempotent: the dispatch row
    is unique per (rule, event) and is inserted first, so a concurrent second run waits for the
    first and then returns its row."""
    from channels_app.services import message_create_outbound
    from channels_app.services.messages import whatsapp_window_open

    existing = EventMessageDispatch.objects.filter(rule=rule, event=event).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            dispatch = EventMessageDispatch.objects.create(rule=rule, event=event, status=EventMessageDispatch.Status.SKIPPED,
                                                           reason="…")
            customer = _live(event.customer)
            inbox = rule.inbox or preferred_inbox(customer=customer)
            conversation = outbound_conversation(customer=customer)
            if inbox is None:
                return _finish(dispatch, customer, reason=_("The customer has never written to us and the rule names no inbox."))
            dispatch.inbox = inbox
            if conversation is None:
                return _finish(dispatch, customer, reason=_("The customer has no conversation yet to send the message in."))
            dispatch.conversation = conversation
            variables = event_variables(event=event, conversation=conversation)
            from channels_app.services.canned import canned_text_render

            text = canned_text_render(text=rule.canned_response.body, variables=variables)
            template = None
            if inbox.kind == InboxKind.WHATSAPP and not whatsapp_window_open(conversation=conversation, inbox=inbox):
                if not rule.whatsapp_template:
                    return _finish(dispatch, customer, reason=_(
                        "The WhatsApp 24-hour window is closed and the rule has no approved template for that case."))
                template = _render_template(rule.whatsapp_template, variables)
            try:
                with transaction.atomic():
                    message = message_create_outbound(conversation=conversation, author=None, content=text, inbox=inbox,
                                                      template=template)
            except ValidationError as exc:
                return _finish(dispatch, customer, reason="; ".join(exc.messages)[:300])
            dispatch.message_id = message.pk
            dispatch.used_template = template is not None
            return _finish(dispatch, customer, sent=True)
    except IntegrityError:
        return EventMessageDispatch.objects.get(rule=rule, event=event)


def _finish(dispatch: EventMessageDispatch, customer: Customer, *, sent: bool = False, reason: str = "") -> EventMessageDispatch:
    dispatch.status = EventMessageDispatch.Status.SENT if sent else EventMessageDispatch.Status.SKIPPED
    dispatch.reason = reason[:300]
    dispatch.save(update_fields=["status", "reason", "inbox", "conversation", "message_id", "used_template"])
    channel = dispatch.inbox.kind if dispatch.inbox_id else ""
    if sent:
        title = _("Automatic message for %(type)s sent") % {"type": dispatch.event.type}
    else:
        title = _("Automatic message for %(type)s not sent") % {"type": dispatch.event.type}
    timeline_record(
        customer=customer,
        kind=TimelineKind.EVENT,
        occurred_at=dispatch.created_at,
        channel=channel,
        title=title[:200],
        body=reason[:500],
        ref_type="journeys.event_message",
        ref_id=str(dispatch.pk),
        data={"event": dispatch.event_id, "rule": dispatch.rule_id, "status": dispatch.status,
              "message": dispatch.message_id, "template": dispatch.used_template},
    )
    return dispatch


def on_customer_event_recorded(sender, *, customer_event: CustomerEvent, **kwargs) -> None:
    """Receiver of `journeys.events.customer_event_recorded` (sent after commit, new events only)."""
    event_rules_apply(event=customer_event)
