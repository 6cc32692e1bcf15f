"""Webhook ingest: store the raw delivery durably, then process it in the background
(`webhook_events_drain`: one task drains every waiting delivery; failures retry one by one).

Never lose an acknowledged message: the view answers 200 only after `webhook_event_store`
committed the raw bytes. Never store one twice: `message_record` relies on the unique
(inbox, provider message id) constraint. Processing is idempotent and retried; after
WEBHOOK_PROCESS_MAX_ATTEMPTS (default 5) failures the event is parked for an admin to replay.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any

from django.conf import settings
from django.db import connections, models, router, transaction
from django.utils import timezone

from channels_app.adapters.base import AdapterError, DeliveryStatus, EventKind, InboundEvent
from channels_app.models import (
    Conversation,
    Inbox,
    InboxKind,
    Message,
    MessageDirection,
    MessageSender,
    MessageStatus,
    WebhookEvent,
)
from channels_app.services.conversations import conversation_continue
from channels_app.services.drains import Drain
from channels_app.services.inboxes import inbox_adapter
from channels_app.services.media import schedule_fetch
from channels_app.services.messages import message_record, message_status_update, message_status_update_until
from channels_app.services.office_hours import inbound_automatic_replies
from customers.models import SCOPED_KINDS, Customer, IdentityOrigin
from customers.services import IdentityInput, customer_resolve, customer_touch

logger = logging.getLogger(__name__)

# Headers kept with the raw body: what parsing needs (content type) and what helps an admin
# investigate. Shared secrets sent as headers (Telegram's secret token) are never stored.
STORED_HEADERS = (
    "content-type",
    "user-agent",
    "x-hub-signature-256",
    "x-line-signature",
    "x-twilio-signature",
    "x-request-id",
)

# Adapter identity kinds that customers.IdentityKind spells differently.
IDENTITY_KIND_ALIASES = {"webchat": "web_visitor", "webchat_user": "external_id", "api": "external_id"}

MESSAGE_KINDS = (EventKind.MESSAGE, EventKind.POSTBACK, EventKind.REACTION)


def max_process_attempts() -> int:
    return int(getattr(settings, "WEBHOOK_PROCESS_MAX_ATTEMPTS", 5))


def process_backoff_seconds(attempt: int) -> int:
    return int(min(3600, 15 * 2 ** max(0, attempt - 1)))


def selected_headers(headers: Mapping[str, str]) -> dict[str, str]:
    wanted = set(STORED_HEADERS)
    return {key.lower(): str(value) for key, value in headers.items() if key.lower() in wanted}


def webhook_event_store(*, inbox: Inbox, body: bytes, headers: Mapping[str, str]) -> WebhookEvent:
    """Persist one verified delivery verbatim and schedule its processing after commit.
    One INSERT: outside a transaction it commits by itself (no BEGIN/COMMIT round trips on the
    acknowledgement path) and the task is queued right after; inside one, after its commit."""
    values = {"inbox_id": inbox.pk, "body": bytes(body), "headers": selected_headers(headers)}
    using = router.db_for_write(WebhookEvent)
    insert = _event_insert(using)
    if insert is None:
        event = WebhookEvent.objects.using(using).create(**values)
    else:
        event = insert(values)
        event.inbox = inbox
    # robust: the raw event is already committed, so a broker or cache outage must not turn the
    # provider's delivery into an error; webhook_events_requeue picks up whatever was not queued.
    transaction.on_commit(drain_wake, robust=True, using=using)
    return event


@functools.cache
def _event_insert(using: str) -> Callable[[dict[str, Any]], WebhookEvent] | None:
    """The acknowledgement's INSERT without the ORM's per-call compilation: the statement is built
    once from the model's concrete fields (so it follows every migration), each value is the
    given one or the field's default, prepared by the field itself. Measured in-process
    (webhook_event_store alone, 4 x 3,000 calls, twelfth session's machine): 0.46-0.54 ms of CPU
    with the ORM's create(), 0.27-0.37 ms with this; about a tenth of the acknowledgement's CPU.
    WebhookEvent has no save signals (a test keeps it so: this path sends none). None where the
    database cannot return the new id from the INSERT (the ORM's create() is used)."""
    if not connections[using].features.can_return_columns_from_insert:
        return None
    meta = WebhookEvent._meta
    fields = [field for field in meta.concrete_fields if not field.primary_key]
    names = [field.attname for field in fields]
    quote = connections[using].ops.quote_name
    sql = (f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
           f"VALUES ({', '.join(['%s'] * len(fields))}) RETURNING {quote(meta.pk.column)}")

    def insert(values: dict[str, Any]) -> WebhookEvent:
        conn = connections[using]  # this thread's connection (never cache it)
        row = [values[f.attname] if f.attname in values else f.get_default() for f in fields]
        with transaction.mark_for_rollback_on_error(using), conn.cursor() as cursor:
            cursor.execute(sql, [f.get_db_prep_save(value, conn) for f, value in zip(fields, row, strict=True)])
            loaded = dict(zip(names, row, strict=True), **{meta.pk.attname: cursor.fetchone()[0]})
        return WebhookEvent.from_db(using, None, [loaded[f.attname] for f in meta.concrete_fields])

    return insert


# --- draining: one task processes every waiting delivery ------------------------------------

DRAIN_WAKE_KEY = "channels:webhook-drain:wake"
DRAIN_BATCH = 200
WEBHOOK_DRAIN = Drain(wake_key=DRAIN_WAKE_KEY, task="channels_app.tasks.webhook_events_drain_task",
                      linger_setting="WEBHOOK_DRAIN_LINGER_MS", idle_setting="WEBHOOK_DRAIN_IDLE_MS")


def drain_wake() -> None:
    """Make sure a drain task will see the deliveries committed so far (see services/drains.py:
    publishing a Celery task per delivery was a third of an acknowledgement's cost)."""
    WEBHOOK_DRAIN.wake()


def webhook_events_drain(*, limit: int = DRAIN_BATCH, linger: float = 0.0, idle: float | None = None) -> int:
    """Process waiting deliveries oldest first until none is left (or `limit`, then queue a
    successor so other tasks get the worker too). Returns how many were processed.

    One drain stays on the work while there is some (services/drains.py). Waking a drain per
    delivery cost more (measured: one message per drain ~8 ms of worker CPU, one in a batch of
    100 ~1 ms) and, with two drains on two cores, more latency too (docs/performance.md, "Seventh
    session"). A claimed batch goes through the set-based path (services/ingest_batch.py) and
    what that leaves, one by one. A lingering drain stays WEBHOOK_DRAIN_IDLE_MS after its last
    work (`idle`, default that setting; never without a linger, as when eager)."""
    from channels_app.services.ingest_batch import BATCH_SIZE

    if idle is None:
        idle = WEBHOOK_DRAIN.idle_seconds() if linger else 0.0
    return WEBHOOK_DRAIN.run(_drain_step, batch_size=BATCH_SIZE, limit=limit, linger=linger, idle=idle)


def _drain_step(size: int) -> int:
    """Claim and process up to `size` waiting deliveries; how many were claimed."""
    from channels_app.services.ingest_batch import batch_processing_enabled, webhook_events_batch_process

    if not batch_processing_enabled():
        return int(_process_one(None) is not None)
    claimed, one_by_one = webhook_events_batch_process(size=size)
    for event_id, items in one_by_one:
        _process_one(event_id, items)
    return claimed


def _process_one(event_id: int | None, items: list[InboundEvent] | None = None) -> WebhookEvent | None:
    from channels_app.tasks import webhook_event_process_task

    event = webhook_event_process(event_id=event_id, items=items)
    if event is not None and event.status == WebhookEvent.Status.FAILED:
        webhook_event_process_task.apply_async((event.pk,), countdown=process_backoff_seconds(event.attempts))
    return event


@transaction.atomic
def webhook_event_replay(*, event: WebhookEvent) -> WebhookEvent:
    """An admin retries a parked or failed event (processing is idempotent)."""
    from channels_app.tasks import webhook_event_process_task

    event = WebhookEvent.objects.select_for_update().get(pk=event.pk)
    if event.status == WebhookEvent.Status.PROCESSED:
        return event
    event.status = WebhookEvent.Status.RECEIVED
    event.save(update_fields=["status"])
    transaction.on_commit(lambda: webhook_event_process_task.delay(event.pk), robust=True)
    return event


REQUEUE_RECEIVED_AFTER = dt.timedelta(minutes=5)
REQUEUE_FAILED_AFTER = dt.timedelta(hours=2)  # well past the longest retry backoff


def webhook_events_requeue(*, now: dt.datetime | None = None, limit: int = 1000) -> int:
    """Safety net for tasks that never ran (broker down at commit, a lost retry): queue events
    still `received` a few minutes after arrival, or `failed` long after their last attempt."""
    from channels_app.tasks import webhook_event_process_task

    now = now or timezone.now()
    stale = WebhookEvent.objects.filter(
        models.Q(status=WebhookEvent.Status.RECEIVED, received_at__lt=now - REQUEUE_RECEIVED_AFTER)
        | models.Q(status=WebhookEvent.Status.FAILED, last_attempt_at__lt=now - REQUEUE_FAILED_AFTER)
    ).order_by("received_at", "id").values_list("pk", flat=True)[:limit]
    count = 0
    for event_id in stale:
        webhook_event_process_task.delay(event_id)
        count += 1
    return count


def webhook_event_process(*, event_id: int | None, items: list[InboundEvent] | None = None) -> WebhookEvent | None:
    """Parse the stored delivery and apply every event in it, in one transaction. With
    `event_id=None`, the oldest delivery still `received` that no one else is processing.
    `items`: the delivery's body as the batch planner already parsed it (parsing is pure).

    On failure the work is rolled back, the attempt and error are recorded and the event is
    `failed` (the task retries with backoff) or, after the last attempt or on a permanent error
    (malformed body, broken config), `parked`.
    """
    with transaction.atomic():
        locked = WebhookEvent.objects.select_related("inbox")
        if event_id is None:
            event = (locked.select_for_update(of=("self",), skip_locked=True)
                     .filter(status=WebhookEvent.Status.RECEIVED).order_by("pk").first())
        else:
            event = locked.select_for_update(of=("self",)).filter(pk=event_id).first()
        if event is None or event.status in (WebhookEvent.Status.PROCESSED, WebhookEvent.Status.PARKED):
            return event
        event.attempts += 1
        event.last_attempt_at = timezone.now()
        try:
            with transaction.atomic():
                adapter = inbox_adapter(inbox=event.inbox)
                if adapter is None:
                    raise AdapterError(f"no adapter for {event.inbox.kind}", permanent=True)
                if items is None or event.pk != event_id:
                    items = adapter.parse(bytes(event.body), event.headers)
                for item in items:
                    inbound_event_apply(inbox=event.inbox, item=item, webhook_event=event)
        except Exception as exc:
            permanent = isinstance(exc, AdapterError) and exc.permanent
            logger.warning("webhook event %s failed (attempt %s): %s", event.pk, event.attempts, exc,
                           exc_info=not isinstance(exc, AdapterError))
            event.last_error = f"{type(exc).__name__}: {exc}"[:4000]
            if permanent or event.attempts >= max_process_attempts():
                event.status = WebhookEvent.Status.PARKED
            else:
                event.status = WebhookEvent.Status.FAILED
        else:
            event.status = WebhookEvent.Status.PROCESSED
            event.processed_at = timezone.now()
            event.last_error = ""
        event.save(update_fields=["attempts", "status", "last_error", "last_attempt_at", "processed_at"])
    return event


# --- applying one parsed event ------------------------------------------------------------


def _identity_inputs(inbox: Inbox, item: InboundEvent) -> list[IdentityInput]:
    inputs = []
    for identity in item.identities:
        kind = IDENTITY_KIND_ALIASES.get(identity.kind, identity.kind)
        if kind == "phone" and inbox.kind == InboxKind.WHATSAPP and identity.verified:
            # A wa_id is a number WhatsApp proved exists: customers normalises it as a phone,
            # leniently (libphonenumber's metadata can lag behind newly issued ranges).
            kind = "whatsapp"
        scope = str(inbox.uuid) if kind in SCOPED_KINDS else ""
        # The widget's visitor token is a bearer secret our own widget issued: presenting it proves
        # it is the same browser, which is all a web_visitor identity claims (within its inbox).
        # Left unverified, customer_resolve would open a new profile for every message.
        verified = identity.verified or kind == "web_visitor"
        inputs.append(IdentityInput(kind, identity.value, verified=verified, scope=scope,
                                    source_ref=f"inbox:{inbox.pk}"))
    return inputs


def _attachments(item: InboundEvent) -> list[dict[str, Any]]:
    out = []
    for attachment in item.attachments:
        values = dataclasses.asdict(attachment)
        content = values.pop("content", None)
        values = {k: v for k, v in values.items() if v not in ("", None)}
        if content is not None:
            # Inline bytes (email) stay in the raw delivery; the media task copies them to storage.
            values.update({"inline": True, "size": values.get("size") or len(content)})
        out.append(values)
    if item.location is not None:
        out.append({"kind": "location", **dataclasses.asdict(item.location)})
    for card in item.contacts:
        out.append({"kind": "contact", "name": card.name, "phones": list(card.phones), "emails": list(card.emails)})
    return out


def _content(item: InboundEvent) -> str:
    if item.kind == EventKind.REACTION:
        return item.emoji
    if item.text:
        return item.text
    if item.kind == EventKind.POSTBACK:
        return item.payload
    if item.location is not None:
        loc = item.location
        return " ".join(p for p in (loc.name, loc.address) if p) or f"{loc.latitude},{loc.longitude}"
    return ""


def _data(item: InboundEvent) -> dict[str, Any]:
    data: dict[str, Any] = {"event": item.kind}
    for key in ("payload", "event_id", "error_code", "error_title"):
        value = getattr(item, key)
        if value:
            data[key] = value
    if item.kind == EventKind.REACTION:
        data["reaction_to"] = item.reply_to_id
    extra = {k: v for k, v in item.extra.items() if isinstance(v, (str, int, float, bool, list, dict, type(None)))}
    if extra:
        data["extra"] = extra
    return data


def inbound_event_apply(*, inbox: Inbox, item: InboundEvent, webhook_event: WebhookEvent | None = None) -> Message | None:
    """One parsed provider event: a customer message becomes a Message in the customer's
    conversation (whatever channel it started on); a receipt moves an outbound message forward."""
    if item.kind in MESSAGE_KINDS:
        return _inbound_message(inbox, item, webhook_event)
    if item.kind == EventKind.STATUS:
        _status(inbox, item)
    elif item.kind == EventKind.EDIT and item.provider_message_id:
        _edit(inbox, item)
    elif item.kind == EventKind.UNSEND and item.reply_to_id:
        _unsend(inbox, item)
    return None


def _asserted_by(inbox: Inbox) -> str:
    """Email's From is not proven (the adapter marks it unverified), but it is what the mailbox
    received, not something a visitor typed: treated as end-user typed, every email would start a
    new profile and conversation. Like every helpdesk, email threads on the sender address; the
    receiving provider's SPF/DKIM checks are the guard against spoofing."""
    return IdentityOrigin.BUSINESS if inbox.kind == "email" else IdentityOrigin.END_USER


def _conversation_for_auto_reply(customer: Customer, inbox: Inbox, at: dt.datetime) -> Conversation:
    latest = Conversation.objects.filter(customer=customer).order_by(
        models.Case(models.When(status="resolved", then=1), default=0), "-id").first()
    if latest is not None:
        return latest
    return conversation_continue(customer=customer, inbox=inbox, at=at).conversation


def message_time(item: InboundEvent) -> dt.datetime:
    """When the customer wrote: the provider's timestamp, but never far in the future (a provider
    clock far ahead must not reorder the conversation)."""
    now = timezone.now()
    at = item.timestamp or now
    return now if at > now + dt.timedelta(minutes=5) else at


def _provider_id(item: InboundEvent) -> str:
    """The id that makes a redelivery recognisable: the provider's message id, else its event id
    (a LINE postback has only a webhookEventId)."""
    if item.provider_message_id:
        return item.provider_message_id
    return f"event:{item.event_id}" if item.event_id else ""


def _inbound_message(inbox: Inbox, item: InboundEvent, webhook_event: WebhookEvent | None) -> Message | None:
    provider_id = _provider_id(item)
    if provider_id:
        existing = Message.objects.filter(inbox=inbox, provider_message_id=provider_id).first()
        if existing is not None:
            return existing  # a redelivery: nothing to do (the constraint still guards races)
    identities = _identity_inputs(inbox, item)
    display_name = item.display_name
    if not identities:
        # A LINE group or room whose member has not shared their profile: the group itself is
        # who we talk to (push to a groupId works), so it is the "customer" of the conversation.
        group = (item.extra.get("groupId") or item.extra.get("roomId")) if inbox.kind == "line" else ""
        if not group:
            logger.warning("inbox %s: %s event without a sender identity ignored", inbox.pk, item.kind)
            return None
        identities = [IdentityInput("line", str(group), verified=True, scope=str(inbox.uuid),
                                    source_ref=f"inbox:{inbox.pk}")]
        display_name = display_name or "LINE group"
    at = message_time(item)
    resolved = customer_resolve(identities=identities, source=f"channel:{inbox.kind}",
                                display_name=display_name, seen_at=at, asserted_by=_asserted_by(inbox))
    if resolved.rejected and not (resolved.attached or resolved.matched):
        # Storing it on a fresh anonymous profile would split the customer on every message:
        # fail loudly so the event is parked where an admin can see it.
        reasons = "; ".join(f"{item.kind}={item.value!r}: {reason}" for item, reason in resolved.rejected)
        raise AdapterError(f"sender identity rejected by customer_resolve ({reasons})", permanent=True)
    customer: Customer = resolved.customer
    conversation_created = False
    if item.extra.get("auto_reply"):
        # Out-of-office replies and bounces are kept in the thread but must not reopen a resolved
        # conversation, wake a snoozed one or send it to an agent's queue.
        conversation = _conversation_for_auto_reply(customer, inbox, at)
    else:
        continued = conversation_continue(customer=customer, inbox=inbox, at=at)
        conversation, conversation_created = continued.conversation, continued.created
    message, created = message_record(
        conversation=conversation,
        inbox=inbox,
        direction=MessageDirection.INBOUND,
        sender=MessageSender.CUSTOMER,
        content=_content(item),
        provider_message_id=provider_id,
        reply_to_provider_id=item.reply_to_id if item.kind != EventKind.REACTION else "",
        attachments=_attachments(item),
        data=_data(item),
        created_at=at,
        webhook_event=webhook_event,
    )
    customer_touch(customer=conversation.customer, seen_at=at)
    if created:
        schedule_fetch(message)
        if not item.extra.get("auto_reply"):  # never answer an out-of-office reply or a bounce
            inbound_automatic_replies(message=message, conversation_created=conversation_created)
    return message


def receipt_message_ids(item: InboundEvent) -> list[str]:
    """The provider ids of the messages a status callback is about (none: a watermark receipt)."""
    mids = [str(m) for m in item.extra.get("mids", []) if m]
    if item.provider_message_id and item.provider_message_id not in mids:
        mids.append(item.provider_message_id)
    return mids


def _status(inbox: Inbox, item: InboundEvent) -> None:
    mids = receipt_message_ids(item)
    for mid in mids:
        if not Message.objects.filter(inbox=inbox, provider_message_id=mid).exists() and send_in_flight(inbox):
            # The provider's receipt overtook our send task storing the id it answered with:
            # retry the delivery shortly instead of dropping the status.
            raise AdapterError(f"status {item.status!r} for {mid} arrived before the send was recorded",
                               permanent=False)
        message_status_update(inbox=inbox, provider_message_id=mid, status=item.status,
                              error_code=item.error_code, error_title=item.error_title, at=item.timestamp)
    watermark = item.extra.get("watermark")
    if not mids and isinstance(watermark, dt.datetime) and item.status in (DeliveryStatus.DELIVERED, DeliveryStatus.READ):
        identities = _identity_inputs(inbox, item)
        if not identities:
            return
        from customers.identity import IdentityValueError, identity_normalise
        from customers.models import Identity

        try:
            norm = identity_normalise(kind=identities[0].kind, value=identities[0].value, scope=identities[0].scope)
        except IdentityValueError:
            return
        identity = Identity.objects.select_related("customer").filter(
            kind=norm.kind, scope=norm.scope, value=norm.value).first()
        if identity is not None:
            message_status_update_until(inbox=inbox, customer=identity.customer, status=item.status,
                                        watermark=watermark)


SEND_IN_FLIGHT_WINDOW = dt.timedelta(minutes=10)


def send_in_flight(inbox: Inbox) -> bool:
    """Whether a reply on `inbox` may be on its way to the provider without its id stored yet."""
    return Message.objects.filter(inbox=inbox, direction=MessageDirection.OUTBOUND, status=MessageStatus.QUEUED,
                                  private=False, created_at__gte=timezone.now() - SEND_IN_FLIGHT_WINDOW).exists()


def _edit(inbox: Inbox, item: InboundEvent) -> None:
    message = Message.objects.select_for_update().filter(inbox=inbox, provider_message_id=item.provider_message_id).first()
    if message is None:
        return
    edits = list(message.data.get("edits", []))
    edits.append({"previous": message.content, "at": (item.timestamp or timezone.now()).isoformat()})
    message.data = {**message.data, "edits": edits}
    message.content = item.text
    message.save(update_fields=["content", "data"])


def _unsend(inbox: Inbox, item: InboundEvent) -> None:
    message = Message.objects.select_for_update().filter(inbox=inbox, provider_message_id=item.reply_to_id).first()
    if message is None:
        return
    message.data = {**message.data, "unsent_at": (item.timestamp or timezone.now()).isoformat()}
    message.save(update_fields=["data"])
