"""Messages: record inbound ones exactly once, create and deliver outbound ones, track status."""
from __future__ import annotations

import contextlib
import copy
import datetime as dt
import functools
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import BigIntegerField, CharField, F, Max, Window
from django.db.models.functions import RowNumber
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts.models import User
from channels_app import events, realtime
from channels_app.adapters.base import AdapterError, DeliveryResult, OutboundMessage, Template
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
from channels_app.services.conversations import conversation_audience
from channels_app.services.drains import Drain
from channels_app.services.inboxes import inbox_adapter
from customers.models import Customer, Identity, IdentityKind, TimelineKind
from customers.services import customer_touch, customers_contacted, timeline_record
from cxplatform.db import Compiled, Param, bulk_set

logger = logging.getLogger(__name__)

MAX_CONTENT_LENGTH = 10_000

# Delivery states only move forward; `failed` may replace queued/sent only, and only
# delivered/read replace it (message_status_step).
STATUS_RANK = {
    MessageStatus.QUEUED: 0,
    MessageStatus.SENT: 1,
    MessageStatus.DELIVERED: 2,
    MessageStatus.READ: 3,
}

# Where a reply on an inbox of this kind is addressed: (identity kind, scoped to the inbox?).
RECIPIENT_IDENTITY = {
    InboxKind.WHATSAPP: (IdentityKind.PHONE, False),
    InboxKind.TWILIO_SMS: (IdentityKind.PHONE, False),
    InboxKind.MESSENGER: (IdentityKind.MESSENGER, True),
    InboxKind.INSTAGRAM: (IdentityKind.INSTAGRAM, True),
    InboxKind.TELEGRAM: (IdentityKind.TELEGRAM, True),
    InboxKind.LINE: (IdentityKind.LINE, True),
    InboxKind.EMAIL: (IdentityKind.EMAIL, False),
    InboxKind.WEBCHAT: (IdentityKind.WEB_VISITOR, True),
    InboxKind.API: (IdentityKind.EXTERNAL_ID, False),
}
# Touchpoints without a provider: an outbound message there is a log (a call, a visit).
LOG_ONLY_KINDS = frozenset({InboxKind.VOICE, InboxKind.IN_PERSON})


def max_deliver_attempts() -> int:
    return int(getattr(settings, "MESSAGE_DELIVER_MAX_ATTEMPTS", 6))


def backoff_seconds(attempt: int) -> int:
    """Exponential backoff: 10 s, 20 s, 40 s, ... capped at one hour."""
    return int(min(3600, 10 * 2 ** max(0, attempt - 1)))


def message_payload(message: Message) -> dict[str, Any]:
    return {
        "message": {
            "id": message.pk,
            "uuid": str(message.uuid),
            "conversation": message.conversation_id,
            "inbox": message.inbox_id,
            "direction": message.direction,
            "sender": message.sender,
            "private": message.private,
            "status": message.status,
            "content": message.content[:500],
            "created_at": message.created_at.isoformat(),
        }
    }


def _audience(message: Message, conversation: Conversation) -> set[str]:
    groups = set(conversation_audience(conversation=conversation))
    if message.author_id:
        groups.add(realtime.agent_group(message.author_id))
    return groups


def _publish(event: str, message: Message, conversation: Conversation) -> None:
    realtime.publish(event, message_payload(message), groups=_audience(message, conversation))


def _status_changed(message: Message, previous_status: str) -> None:
    """Domain event (on commit) for a delivery status that moved."""
    if message.status == previous_status:
        return
    events.send_on_commit(
        events.message_status_changed, event=events.MESSAGE_STATUS_CHANGED, message=message,
        conversation=message.conversation, status=message.status, previous_status=previous_status,
        error_code=message.error_code if message.status == MessageStatus.FAILED else "",
        error_title=message.error_title if message.status == MessageStatus.FAILED else "",
    )


def message_build(
    *, conversation: Conversation, inbox: Inbox, direction: str, sender: str, content: str = "",
    provider_message_id: str = "", reply_to_provider_id: str = "", author: User | None = None, private: bool = False,
    attachments: list[dict[str, Any]] | None = None, data: dict[str, Any] | None = None,
    status: str = MessageStatus.RECEIVED, created_at: dt.datetime, webhook_event: WebhookEvent | None = None,
) -> Message:
    """The unsaved row `message_record` stores (and the batch ingest path bulk-inserts)."""
    return Message(
        conversation=conversation,
        inbox=inbox,
        direction=direction,
        sender=sender,
        author=author,
        content=(content or "")[:MAX_CONTENT_LENGTH],
        private=private,
        provider_message_id=provider_message_id[:255],
        reply_to_provider_id=reply_to_provider_id[:255],
        attachments=attachments or [],
        data=data or {},
        status=status,
        created_at=created_at,
        webhook_event=webhook_event,
    )


@functools.lru_cache(maxsize=512)
def _timeline_title(kind: str, direction: str, _language: str | None) -> str:
    """Per channel, direction and active language: translating the channel's label cost more than
    building the rest of the entry (profiled in the ingest drain)."""
    channel = str(dict(InboxKind.choices).get(kind, kind))
    return (_("Message from the customer on %(channel)s") if direction == MessageDirection.INBOUND
            else _("Reply on %(channel)s")) % {"channel": channel}


def message_timeline_values(message: Message, conversation: Conversation) -> dict[str, Any]:
    """The customer's timeline entry for a (non-private) message, as `timeline_record` arguments."""
    inbox = message.inbox
    return {
        "kind": TimelineKind.MESSAGE,
        "occurred_at": message.created_at,
        "channel": inbox.kind,
        "title": _timeline_title(inbox.kind, message.direction, translation.get_language()),
        "body": message.content[:500],
        "ref_type": "channels.message",
        "ref_id": str(message.pk),
        "data": {"conversation": conversation.pk, "inbox": inbox.pk, "direction": message.direction},
    }


def message_conversation_times(conversation: Conversation, message: Message) -> dict[str, Any]:
    """Move the conversation's last message / last inbound times forward for `message` (in memory);
    returns the fields that changed."""
    updates: dict[str, Any] = {}
    if conversation.last_message_at is None or message.created_at > conversation.last_message_at:
        updates["last_message_at"] = conversation.last_message_at = message.created_at
    if message.direction == MessageDirection.INBOUND and (
        conversation.last_inbound_at is None or message.created_at > conversation.last_inbound_at
    ):
        updates["last_inbound_at"] = conversation.last_inbound_at = message.created_at
    return updates


def messages_created_after(messages: list[Message]) -> None:
    """What follows stored messages, whoever stored them (each `message.conversation` set): the
    live pushes (stored with them, one INSERT for all) and the domain events after commit."""
    realtime.publish_many([
        ("channels.message.created", message_payload(message), _audience(message, message.conversation))
        for message in messages
    ])
    for message in messages:
        events.send_on_commit(events.message_created, event=events.MESSAGE_CREATED, message=message,
                              conversation=message.conversation, direction=message.direction,
                              kind=events.message_kind(message))


@transaction.atomic(savepoint=False)  # callers let its errors propagate; the INSERT has its own savepoint
def message_record(
    *,
    conversation: Conversation,
    inbox: Inbox,
    direction: str,
    sender: str,
    content: str = "",
    provider_message_id: str = "",
    reply_to_provider_id: str = "",
    author: User | None = None,
    private: bool = False,
    attachments: list[dict[str, Any]] | None = None,
    data: dict[str, Any] | None = None,
    status: str = MessageStatus.RECEIVED,
    created_at: dt.datetime | None = None,
    webhook_event: WebhookEvent | None = None,
    customer_fresh: bool = False,
) -> tuple[Message, bool]:
    """Store a message; returns (message, created). A provider message id already stored for
    this inbox returns the existing row: the unique constraint decides, inside a savepoint, so
    two concurrent deliveries of the same webhook cannot both insert. `customer_fresh`: see
    `timeline_record`."""
    created_at = created_at or timezone.now()
    message = message_build(
        conversation=conversation, inbox=inbox, direction=direction, sender=sender, author=author, content=content,
        private=private, provider_message_id=provider_message_id, reply_to_provider_id=reply_to_provider_id,
        attachments=attachments, data=data, status=status, created_at=created_at, webhook_event=webhook_event,
    )
    if not provider_message_id:
        message.save()  # nothing to recover from: no savepoint (two round trips per note or reply)
    else:
        try:
            with transaction.atomic():
                message.save()
        except IntegrityError:
            return Message.objects.get(inbox=inbox, provider_message_id=provider_message_id[:255]), False
    updates = message_conversation_times(conversation, message)
    if updates:
        Conversation.objects.filter(pk=conversation.pk).update(**updates)
    if not private:
        timeline_record(customer=conversation.customer, ref_is_new=True, customer_fresh=customer_fresh,
                        **message_timeline_values(message, conversation))
    messages_created_after([message])
    return message, True


# --- outbound -----------------------------------------------------------------------------


def _recipient(scoped: bool) -> Compiled:
    """The value of the customer's best identity of a kind (in the inbox's scope when `scoped`):
    verified first, then the most recently seen. The value alone: whole rows (eleven columns,
    three timestamps) were half this lookup's CPU; built by the ORM on every reply, the other
    half (0.59 ms of the reply's request, compiled once per connection, 0.11 ms)."""
    scope = {"scope": Param("scope", CharField())} if scoped else {}
    return Compiled(lambda: Identity.objects.filter(
        customer_id=Param("customer", BigIntegerField()), kind=Param("kind", CharField()), **scope)
        .order_by("-verified", "-last_seen_at", "-id").values_list("value")[:1])


_RECIPIENT = {scoped: _recipient(scoped) for scoped in (False, True)}


def recipient_for(*, customer: Customer, inbox: Inbox) -> str:
    """The customer's address on this inbox ("" when they are not reachable there)."""
    kind_scope = RECIPIENT_IDENTITY.get(inbox.kind)
    if kind_scope is None:
        return ""
    kind, scoped = kind_scope
    found = _RECIPIENT[scoped].fetch(customer=customer.pk, kind=kind, scope=str(inbox.uuid))  # scope: when scoped
    return found[0][0] if found else ""


def whatsapp_window_open(*, conversation: Conversation, inbox: Inbox, now: dt.datetime | None = None) -> bool:
    """WhatsApp allows free-form replies only within 24 h of the customer's last message there."""
    from channels_app.adapters.whatsapp import customer_service_window_open

    last = Message.objects.filter(
        conversation__customer_id=conversation.customer_id, inbox=inbox, direction=MessageDirection.INBOUND
    ).aggregate(at=Max("created_at"))["at"]
    return customer_service_window_open(last, now=now)


def _template_clean(template: dict[str, Any], inbox: Inbox) -> dict[str, Any]:
    if inbox.kind != InboxKind.WHATSAPP:
        raise ValidationError({"template": [_("Templates are a WhatsApp feature.")]})
    name, language = str(template.get("name") or "").strip(), str(template.get("language") or "").strip()
    components = template.get("components") or []
    if not name or not language:
        raise ValidationError({"template": [_("A template needs its name and language code (e.g. id, en_US).")]})
    if not isinstance(components, list) or not all(isinstance(c, dict) for c in components):
        raise ValidationError({"template": [_("Template components must be a list of objects.")]})
    return {"name": name, "language": language, "components": components}


@transaction.atomic
def message_create_outbound(
    *,
    conversation: Conversation,
    author: User | None,
    content: str,
    private: bool = False,
    inbox: Inbox | None = None,
    template: dict[str, Any] | None = None,
    attachments: list[dict[str, Any]] | None = None,
    conversation_fresh: bool = False,
) -> Message:
    """An agent's reply (status queued, sent after commit by the delivery drain) or a
    private note. The channel defaults to the inbox the customer last wrote from; another inbox
    may be chosen when the customer is reachable there. `template` ({"name", "language",
    "components"}) sends an approved WhatsApp template, the only thing allowed outside the 24-hour
    window; `content` is then the text the agent sees in the thread. `attachments`: files already
    stored by `media.outbound_attachment_store` (one per reply), refused up front when the channel
    cannot deliver them. `conversation_fresh`: the caller has just loaded `conversation` with its
    customer and last inbox (`conversation_get(for_message=True)`), so it is not read again."""
    content = (content or "").strip()
    if template is not None and not content:
        content = f"[template {template.get('name', '')}]"
    if not content and not attachments:
        raise ValidationError({"content": [_("Write a message first.")]})
    if len(content) > MAX_CONTENT_LENGTH:
        raise ValidationError({"content": [_("A message is at most %(n)s characters.") % {"n": MAX_CONTENT_LENGTH}]})
    if not conversation_fresh:
        conversation = Conversation.objects.select_related("customer", "last_inbox").get(pk=conversation.pk)
    inbox = inbox or conversation.last_inbox
    if inbox is None:
        raise ValidationError({"inbox": [_("This conversation has no channel yet: choose one.")]})
    data: dict[str, Any] = {}
    status = MessageStatus.QUEUED
    if private:
        status = MessageStatus.SENT  # a note never leaves the platform
    elif inbox.kind in LOG_ONLY_KINDS:
        status = MessageStatus.SENT
    else:
        if not inbox.is_active:
            raise ValidationError({"inbox": [_("This channel is switched off.")]})
        recipient = recipient_for(customer=conversation.customer, inbox=inbox)
        if not recipient:
            raise ValidationError({"inbox": [_("The customer cannot be reached on %(inbox)s.") % {"inbox": inbox}]})
        if template is not None:
            data["template"] = _template_clean(template, inbox)
        elif inbox.kind == InboxKind.WHATSAPP and not whatsapp_window_open(conversation=conversation, inbox=inbox):
            raise ValidationError({"content": [_(
                "WhatsApp only allows free-form replies within 24 hours of the customer's last message. "
                "Send an approved template, or wait until the customer writes again."
            )]})
        data["to"] = recipient
    if attachments:
        from channels_app.services import media

        media.outbound_attachment_check(inbox_kind=inbox.kind, inbox_label=str(inbox), items=attachments,
                                        has_text=bool(content), private=private)
        if inbox.kind == InboxKind.WEBCHAT and not private:
            # The widget shows text only: the visitor gets a signed link to the file.
            links = "\n".join(f"📎 {item.get('filename', '')}: " + media.signed_media_url(
                item=item, max_age=int(getattr(settings, "CHANNEL_WEBCHAT_MEDIA_URL_MAX_AGE", 30 * 24 * 3600)))
                for item in attachments)
            content = f"{content}\n{links}" if content else links
    message, _created = message_record(
        conversation=conversation,
        inbox=inbox,
        direction=MessageDirection.OUTBOUND,
        sender=MessageSender.AGENT if author else MessageSender.SYSTEM,
        author=author,
        content=content,
        private=private,
        status=status,
        data=data,
        attachments=attachments,
        customer_fresh=True,  # loaded with the conversation in this request, just above or by the caller
    )
    if private:
        _notify_mentions(message=message, conversation=conversation, author=author)
    if status == MessageStatus.QUEUED:
        # robust: the reply is stored; if the broker is down, messages_requeue_stuck sends it later.
        transaction.on_commit(messages_deliver_wake, robust=True)
    return message


MENTION_RE = re.compile(r"(?<![\w@])@([A-Za-z0-9][A-Za-z0-9._+-]{0,63})")


def mentioned_users(*, content: str) -> list[User]:
    """`@budi` mentions the active user whose email is budi@…; `@budi@example.com` the exact one."""
    handles = {h.rstrip(".").lower() for h in MENTION_RE.findall(content)}
    if not handles:
        return []
    users = User.objects.filter(is_active=True).only("pk", "email")
    return [u for u in users.filter(email__iregex=r"^(" + "|".join(re.escape(h) for h in handles) + r")@")]


def _notify_mentions(*, message: Message, conversation: Conversation, author: User | None) -> None:
    """Tell the agents @mentioned in a private note (only those who may see the conversation)."""
    from channels_app.selectors import conversation_can_view

    mentioned = [u for u in mentioned_users(content=message.content)
                 if (author is None or u.pk != author.pk) and conversation_can_view(viewer=u, conversation=conversation)]
    if not mentioned:
        return
    Message.objects.filter(pk=message.pk).update(data={**message.data, "mentions": [u.pk for u in mentioned]})
    realtime.publish("channels.mention", {**message_payload(message), "by": author.pk if author else None},
                     groups=[realtime.agent_group(u.pk) for u in mentioned])


@dataclass
class DeliverOutcome:
    message: Message | None
    retry_in: int | None = None  # seconds; None: nothing more to do


def email_threading(messages: list[Message]) -> dict[int, dict[str, Any]]:
    """Reply in the customer's email thread: In-Reply-To/References and "Re:" the subject of
    their last email on the reply's inbox, for each of `messages` (by id). One query for all."""
    latest: dict[tuple[int, int], Message] = {}
    if messages:
        found = (
            Message.objects.filter(conversation_id__in={m.conversation_id for m in messages},
                                   inbox_id__in={m.inbox_id for m in messages}, direction=MessageDirection.INBOUND)
            .exclude(provider_message_id="")
            .annotate(newest=Window(RowNumber(), partition_by=[F("conversation_id"), F("inbox_id")],
                                    order_by=[F("created_at").desc(), F("id").desc()]))
            .filter(newest=1)
            .only("conversation_id", "inbox_id", "provider_message_id", "data")
        )
        latest = {(m.conversation_id, m.inbox_id): m for m in found}
    headers: dict[int, dict[str, Any]] = {}
    for message in messages:
        last = latest.get((message.conversation_id, message.inbox_id))
        if last is None:
            headers[message.pk] = {"subject": str(message.data.get("subject", ""))}
            continue
        extra = last.data.get("extra", {}) if isinstance(last.data, dict) else {}
        subject = str(message.data.get("subject") or extra.get("subject") or "")
        if subject and not subject.lower().startswith("re:"):
            subject = f"Re: {subject}"
        references = tuple(str(r) for r in extra.get("references", []) if r)
        headers[message.pk] = {"subject": subject, "reply_to_id": last.provider_message_id, "references": references}
    return headers


def message_deliver(*, message_id: int, attempt: int = 1) -> DeliverOutcome:
    """Send a queued message through its inbox's adapter (a retry, or a message the sweeper
    found; first attempts go out in batches, `messages_deliver_batch`). Idempotent: anything not
    queued is left alone, so a redelivered task never sends twice once the result was stored.
    The network call happens outside any transaction; the message uuid is the provider
    idempotency key."""
    with transaction.atomic():
        message = (Message.objects.select_for_update(of=("self",)).select_related("inbox", "conversation__customer")
                   .filter(pk=message_id).first())
        if message is None or message.status != MessageStatus.QUEUED or message.private:
            return DeliverOutcome(message)
        now = timezone.now()
        if _claimed(message, now):
            return DeliverOutcome(message)  # another worker is sending it right now
        # Claim it, so a duplicate task (redelivery, sweeper) does not send concurrently; a claim
        # left by a worker killed mid-send expires after SEND_CLAIM_TTL (at-least-once).
        message.data = {**message.data, "sending_since": now.isoformat()}
        message.save(update_fields=["data"])
    attempt = max(attempt, int(message.data.get("attempts", 0)) + 1)
    result = _send(message, attempt)
    if isinstance(result, DeliverOutcome):
        return result
    return DeliverOutcome(message_sent(message=message, provider_message_id=result.provider_message_id,
                                       raw=result.raw))


def _send(message: Message, attempt: int, thread_headers: dict[str, Any] | None = None,
          adapter_for: Callable[[Inbox], Any] | None = None) -> DeliveryResult | DeliverOutcome:
    """One attempt at sending a claimed message (`message.inbox` loaded; an e-mail's
    `thread_headers` from `email_threading`; `adapter_for(inbox)` gives the adapter): the
    provider's result, or the outcome of a failure (recorded here: retry later, or failed for
    good)."""
    inbox = message.inbox
    to = str(message.data.get("to", ""))
    metadata: dict[str, Any] = {"conversation": message.conversation_id}
    if inbox.kind == InboxKind.LINE:
        metadata["line"] = "push"
    if inbox.kind != InboxKind.EMAIL:
        thread_headers = {}
    elif thread_headers is None:
        thread_headers = email_threading([message])[message.pk]
    template = message.data.get("template")
    if template:
        outbound = OutboundMessage(to=to, idempotency_key=str(message.uuid), metadata=metadata,
                                   template=Template(template["name"], template["language"],
                                                     tuple(template.get("components") or ())))
    else:
        from channels_app.services.media import outbound_attachment

        outbound = OutboundMessage(to=to, text=message.content, idempotency_key=str(message.uuid), metadata=metadata,
                                   attachment=outbound_attachment(message), **thread_headers)
    try:
        adapter = adapter_for(inbox) if adapter_for is not None else inbox_adapter(inbox=inbox)
        if adapter is None:
            raise AdapterError(f"{inbox.get_kind_display()} cannot send messages", permanent=True)
        return adapter.send(outbound)
    except AdapterError as exc:
        if not exc.permanent and attempt < max_deliver_attempts():
            message_deliver_attempt_failed(message=message, error=exc, final=False)
            delay = int(exc.retry_after) if exc.retry_after else backoff_seconds(attempt)
            return DeliverOutcome(message, retry_in=max(1, delay))
        return DeliverOutcome(message_deliver_attempt_failed(message=message, error=exc, final=True))
    except Exception as exc:  # an adapter bug or config problem must not leave it queued silently
        logger.exception("sending message %s failed unexpectedly", message.pk)
        error = AdapterError(f"{type(exc).__name__}: {exc}", permanent=False)
        if attempt < max_deliver_attempts():
            message_deliver_attempt_failed(message=message, error=error, final=False)
            return DeliverOutcome(message, retry_in=backoff_seconds(attempt))
        return DeliverOutcome(message_deliver_attempt_failed(message=message, error=error, final=True))


# --- first attempts, in batches: one drain task works off every new reply ------------------

DELIVER_DRAIN = Drain(wake_key="channels:deliver-drain:wake", task="channels_app.tasks.messages_deliver_drain_task",
                      linger_setting="MESSAGE_DELIVER_LINGER_MS")
DELIVER_BATCH = 20  # sent one by one, recorded together: at most this many resent after a crash
DELIVER_DRAIN_LIMIT = 200


def messages_deliver_wake() -> None:
    """After a reply commits: make sure a drain will send it (one Celery publish per burst)."""
    DELIVER_DRAIN.wake()


def messages_deliver_drain(*, limit: int = DELIVER_DRAIN_LIMIT, linger: float = 0.0) -> int:
    """Send every new queued reply, oldest first (services/drains.py); how many were claimed."""
    return DELIVER_DRAIN.run(messages_deliver_batch, batch_size=DELIVER_BATCH, limit=limit, linger=linger)


def messages_deliver_batch(size: int) -> int:
    """Claim up to `size` queued messages nobody has tried yet, send each, and record the sent
    ones together; a failed one is recorded at once and retried by its own `message_deliver_task`
    with backoff. Returns how many were claimed.

    Per message that saves what `message_deliver` pays each time: a Celery task, the claim's
    locked read and write, and the locked read, write, customer update and live event of the
    record (measured: docs/performance.md, "Ninth session")."""
    from channels_app.tasks import message_deliver_task

    with transaction.atomic():
        batch = list(
            Message.objects.select_for_update(of=("self",), skip_locked=True)
            .select_related("inbox", "conversation__customer")
            .filter(status=MessageStatus.QUEUED, private=False)
            .exclude(data__has_key="sending_since")
            .exclude(data__has_key="attempts")
            .order_by("id")[:size]
        )
        if not batch:
            return 0
        since = timezone.now().isoformat()
        for message in batch:
            message.data = {**message.data, "sending_since": since}
        bulk_set(Message, batch, ["data"])
    threads = email_threading([m for m in batch if m.inbox.kind == InboxKind.EMAIL])
    sent: list[tuple[Message, DeliveryResult]] = []
    with contextlib.ExitStack() as connections:
        adapters: dict[int, Any] = {}

        def adapter_for(inbox: Inbox) -> Any:
            # One adapter per inbox for the batch; one that can keep its connection open does
            # (SMTP: one connection for the batch's e-mails instead of one each).
            if inbox.pk not in adapters:
                adapter = adapters[inbox.pk] = inbox_adapter(inbox=inbox)
                if hasattr(adapter, "connection"):
                    connections.enter_context(adapter.connection())
            return adapters[inbox.pk]

        for message in batch:
            result = _send(message, attempt=1, thread_headers=threads.get(message.pk), adapter_for=adapter_for)
            if isinstance(result, DeliveryResult):
                sent.append((message, result))
            elif result.retry_in is not None:
                message_deliver_task.apply_async((message.pk,), countdown=result.retry_in)
    if sent:
        messages_sent(sent)
    return len(batch)


SEND_CLAIM_TTL = dt.timedelta(minutes=10)


def _claimed(message: Message, now: dt.datetime) -> bool:
    since = message.data.get("sending_since")
    if not since:
        return False
    try:
        return now - dt.datetime.fromisoformat(since) < SEND_CLAIM_TTL
    except (TypeError, ValueError):
        return False


def _unclaimed(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != "sending_since"}


def messages_requeue_stuck(*, now: dt.datetime | None = None, limit: int = 500) -> int:
    """Safety net: queued messages whose delivery task never ran (broker down at commit) or
    whose retry was lost are queued again; the claim keeps a late duplicate from double-sending."""
    from channels_app.tasks import message_deliver_task

    now = now or timezone.now()
    candidates = Message.objects.filter(status=MessageStatus.QUEUED, private=False,
                                        created_at__lt=now - STUCK_AFTER).order_by("id")[:limit]
    count = 0
    for message in candidates:
        if _claimed(message, now):
            continue
        last = message.data.get("last_attempt_at")
        if last and now - dt.datetime.fromisoformat(last) < STUCK_RETRY_AFTER:
            continue  # a retry with backoff is (probably) still scheduled
        message_deliver_task.delay(message.pk)
        count += 1
    return count


STUCK_AFTER = dt.timedelta(minutes=10)
STUCK_RETRY_AFTER = dt.timedelta(hours=2)


SENT_FIELDS = ["status", "status_changed_at", "provider_message_id", "sent_at", "error_code", "error_title", "data"]
# What a status callback or another worker may have changed since the claim: read again under lock.
DELIVERY_STATE_FIELDS = ["status", "status_changed_at", "provider_message_id", "sent_at", "data"]


def message_sent(*, message: Message, provider_message_id: str, raw: Any = None) -> Message:
    """The provider accepted the message: sent, with its id (status webhooks refer to it)."""
    return messages_sent([(message, DeliveryResult(provider_message_id=provider_message_id, raw=raw))])[0]


@transaction.atomic
def messages_sent(sent: list[tuple[Message, DeliveryResult]]) -> list[Message]:
    """`message_sent` for a batch, one statement of each kind for them all: the delivery columns
    are read again under lock (a status callback may have moved one meanwhile; states only move
    forward), then updated, their customers marked contacted and the live events stored
    together. The messages come with their inbox, conversation and customer loaded."""
    results = {message.pk: result for message, result in sent}
    current = {row.pop("pk"): row for row in Message.objects.select_for_update().filter(pk__in=results)
               .order_by("pk").values("pk", *DELIVERY_STATE_FIELDS)}
    rows = sorted((message for message, _result in sent if message.pk in current), key=lambda message: message.pk)
    now = timezone.now()
    previous_status: dict[int, str] = {}
    pushes: list[tuple[str, dict[str, Any], set[str] | list[str]]] = []
    for message in rows:
        for field, value in current[message.pk].items():
            setattr(message, field, value)
        result = results[message.pk]
        previous_status[message.pk] = message.status
        if STATUS_RANK.get(message.status, -1) < STATUS_RANK[MessageStatus.SENT]:
            message.status = MessageStatus.SENT
            message.status_changed_at = now
        if result.provider_message_id and not message.provider_message_id:
            message.provider_message_id = result.provider_message_id[:255]
        message.sent_at = message.sent_at or now
        message.error_code = message.error_title = ""
        message.data = _unclaimed(message.data)
        pushes.append(("channels.message.updated", message_payload(message), _audience(message, message.conversation)))
        if message.inbox.kind == InboxKind.WEBCHAT and message.data.get("to"):
            # The web chat "provider" is us: the reply reaches the visitor over their widget socket.
            pushes.append(("webchat.message", {"message": {"id": str(message.uuid), "text": message.content,
                                                           "created_at": message.created_at.isoformat()}},
                           [realtime.visitor_group(str(message.data["to"]))]))
    bulk_set(Message, rows, SENT_FIELDS)
    customers_contacted(customers=[message.conversation.customer for message in rows], at=now)
    realtime.publish_many(pushes)
    for message in rows:
        _status_changed(message, previous_status[message.pk])
    return rows


@transaction.atomic
def message_deliver_attempt_failed(*, message: Message, error: AdapterError, final: bool) -> Message:
    """Record a failed send: the reason is kept; `final` marks the message failed."""
    message = Message.objects.select_for_update(of=("self",)).select_related("conversation").get(pk=message.pk)
    if message.status != MessageStatus.QUEUED:
        return message
    message.error_code = str(error.code or error.status or "")[:50]
    message.error_title = str(error.message)[:500]
    attempts = int(message.data.get("attempts", 0)) + 1
    message.data = {**_unclaimed(message.data), "attempts": attempts, "last_attempt_at": timezone.now().isoformat()}
    if final:
        message.status = MessageStatus.FAILED
        message.status_changed_at = timezone.now()
    message.save(update_fields=["error_code", "error_title", "data", "status", "status_changed_at"])
    if final:
        _publish("channels.message.updated", message, message.conversation)
        _status_changed(message, MessageStatus.QUEUED)
    return message


@transaction.atomic
def message_status_update(
    *,
    inbox: Inbox,
    provider_message_id: str,
    status: str,
    error_code: str = "",
    error_title: str = "",
    at: dt.datetime | None = None,
) -> Message | None:
    """Apply a provider status callback to our message. States only move forward (a late
    "delivered" never undoes "read"); "failed" records the provider's code and reason. Returns
    the message when it changed, None when unknown or not a step forward."""
    if status not in STATUS_RANK and status != MessageStatus.FAILED:
        return None
    message = (
        Message.objects.select_for_update()
        .select_related("conversation")
        .filter(inbox=inbox, provider_message_id=provider_message_id)
        .first()
    )
    if message is None:
        return None
    message.inbox = inbox  # the same row: the domain event's listeners read it
    previous_status = message_status_step(message, status=status, error_code=error_code, error_title=error_title,
                                          at=at)
    if previous_status is None:
        return None
    message.save()
    _publish("channels.message.updated", message, message.conversation)
    _status_changed(message, previous_status)
    return message


STATUS_FIELDS = ["status", "status_changed_at", "error_code", "error_title"]  # what a status step writes


def message_status_step(message: Message, *, status: str, error_code: str = "", error_title: str = "",
                        at: dt.datetime | None = None) -> str | None:
    """Move the (locked) message to `status` in memory when that is a step forward for an
    outbound message; returns the status it had, or None when nothing moved."""
    if message.direction != MessageDirection.OUTBOUND or (status not in STATUS_RANK and status != MessageStatus.FAILED):
        return None
    if status == MessageStatus.FAILED:
        if message.status not in (MessageStatus.QUEUED, MessageStatus.SENT):
            return None
        message.error_code = str(error_code)[:50]
        message.error_title = str(error_title)[:500]
    elif STATUS_RANK[status] <= STATUS_RANK.get(message.status, -1) or (
            message.status == MessageStatus.FAILED and status == MessageStatus.SENT):
        # After a failure only proof that it reached the customer (delivered, read) moves it on:
        # a "sent" arriving late was sent before the failure, and would hide it.
        return None
    previous_status = message.status
    message.status = status
    message.status_changed_at = at or timezone.now()
    return previous_status


def message_statuses_apply(steps: list[tuple[Message, str, str, str, dt.datetime | None]]) -> int:
    """`message_status_update` for many receipts (the ingest drain's batch), in order: each
    `(message, status, error code, error title, at)` on a locked message, its conversation loaded.
    One UPDATE for the messages that moved and one INSERT for their live events; one domain
    event per step, as one by one. Returns how many steps moved a message."""
    moved: dict[int, Message] = {}
    live = []
    for message, status, error_code, error_title, at in steps:
        previous_status = message_status_step(message, status=status, error_code=error_code, error_title=error_title,
                                              at=at)
        if previous_status is None:
            continue
        moved[message.pk] = message
        live.append(("channels.message.updated", message_payload(message), _audience(message, message.conversation)))
        # the event's listeners (after commit) see the message as this step left it, as one by one
        _status_changed(copy.copy(message), previous_status)
    if moved:
        bulk_set(Message, list(moved.values()), STATUS_FIELDS)
        realtime.publish_many(live)
    return len(live)


@transaction.atomic
def message_status_update_until(
    *, inbox: Inbox, customer: Customer, status: str, watermark: dt.datetime
) -> int:
    """Messenger/Instagram receipts without ids: every outbound message to this customer on this
    inbox sent up to `watermark` reached `status` (only forward)."""
    lower = [s for s, rank in STATUS_RANK.items() if 0 < rank < STATUS_RANK.get(status, 0)]
    moved = list(Message.objects.select_for_update(of=("self",)).select_related("conversation").filter(
        inbox=inbox, direction=MessageDirection.OUTBOUND, conversation__customer=customer,
        status__in=lower, sent_at__lte=watermark,
    ))
    now = timezone.now()
    Message.objects.filter(pk__in=[m.pk for m in moved]).update(status=status, status_changed_at=now)
    for message in moved:
        previous_status, message.status, message.status_changed_at = message.status, status, now
        _status_changed(message, previous_status)
    return len(moved)


@transaction.atomic
def interaction_log(
    *,
    inbox: Inbox,
    customer: Customer,
    direction: str,
    content: str,
    author: User | None,
    details: dict[str, Any] | None = None,
    occurred_at: dt.datetime | None = None,
    external_id: str = "",
) -> Message:
    """Record a call (voice inbox) or a visit (in-person inbox) in the customer's conversation
    and timeline. `details`: for a call direction/number/duration/outcome/recording URL, for a
    visit location/staff. `external_id` (the integration's id) makes a repeated post a no-op."""
    if inbox.kind not in LOG_ONLY_KINDS:
        raise ValidationError({"inbox": [_("Only call center and in-person inboxes take logged interactions.")]})
    if direction not in MessageDirection.values:
        raise ValidationError({"direction": [_("Direction is inbound or outbound.")]})
    if not customer.is_active_profile:
        raise ValidationError({"customer": [_("This profile was merged or erased.")]})
    at = occurred_at or timezone.now()
    if external_id:
        existing = Message.objects.filter(inbox=inbox, provider_message_id=external_id[:255]).first()
        if existing is not None:
            return existing
    from channels_app.services.conversations import conversation_continue

    conversation = conversation_continue(customer=customer, inbox=inbox, at=at).conversation
    key = "call" if inbox.kind == InboxKind.VOICE else "visit"
    message, _created = message_record(
        conversation=conversation,
        inbox=inbox,
        direction=direction,
        sender=MessageSender.CUSTOMER if direction == MessageDirection.INBOUND else MessageSender.AGENT,
        author=author,
        content=content,
        provider_message_id=external_id,
        status=MessageStatus.RECEIVED if direction == MessageDirection.INBOUND else MessageStatus.SENT,
        data={key: details or {}},
        created_at=at,
    )
    if direction == MessageDirection.INBOUND:
        customer_touch(customer=conversation.customer, seen_at=at)
    else:
        customer_touch(customer=conversation.customer, contacted_at=at)
    return message
