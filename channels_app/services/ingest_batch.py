"""Set-based processing of a drain's batch of webhook deliveries.

One delivery at a time through `webhook_event_process` costs about 25 SQL statements and
11 ms of CPU: identity lookup, conversation lock, INSERT with its savepoint, timeline entry,
status update, each a round trip with its own ORM compilation. Almost all traffic is the
common case: a customer we know (by a verified identity), or one nobody knows yet, writing
into their open conversation on the channel they last used, reopening it, or starting a new
one. For that case a batch of deliveries is applied with a fixed number of statements for the
whole batch: one claim, one duplicate check, one identity lookup, one conversation lock, the
new customers (`customers_create`), the new conversations (`conversations_open`: the
assignment read once per team) and the reopened ones (`conversations_reopen`), bulk inserts of
the messages and their timeline entries, and bulk updates of what moved (last seen, last
message times, the deliveries' status). Receipts (a provider's sent, delivered, read or failed
for our replies) are the other common case: one lookup of the messages they are about, then
`message_statuses_apply` (one UPDATE, one INSERT of live events).

Everything else in the batch is left to `webhook_event_process`, one by one, right after the
batch commits: an identity to attach or claim, a reopened conversation that is unassigned or
was last used on another channel, a channel switch, a snoozed conversation, watermark receipts,
a receipt that may have overtaken its send, edits, automatic inbound mail, a new conversation
on an inbox that greets, a message on an inbox that is closed and answers out of hours,
anything that fails to parse. So is the whole batch if applying it fails. Both paths give the
same rows, live events and domain events: `tests/channels_app/test_ingest_batch.py` runs the
same deliveries through each and compares what they stored.
"""
from __future__ import annotations

import datetime as dt
import functools
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.db import connections, router, transaction
from django.db.models import DateTimeField, F, Q
from django.utils import timezone

from channels_app.adapters.base import EventKind, InboundEvent
from channels_app.models import (
    Conversation,
    ConversationStatus,
    Inbox,
    Message,
    MessageDirection,
    MessageSender,
    WebhookEvent,
)
from channels_app.services.conversations import (
    conversation_build,
    conversations_open,
    conversations_reopen,
    reopen_window,
)
from channels_app.services.inboxes import inbox_adapter
from channels_app.services.ingest import (
    MESSAGE_KINDS,
    _asserted_by,
    _attachments,
    _content,
    _data,
    _identity_inputs,
    _provider_id,
    message_time,
    receipt_message_ids,
    send_in_flight,
)
from channels_app.services.media import schedule_fetch
from channels_app.services.messages import (
    message_build,
    message_conversation_times,
    message_statuses_apply,
    message_timeline_values,
    messages_created_after,
)
from channels_app.services.office_hours import office_hours_state
from customers.identity import IdentityValueError, identity_normalise, max_identities_per_kind
from customers.models import Customer, Identity, IdentityOrigin, TimelineEntry
from customers.services import timeline_entry_build
from customers.services.resolution import SEEN_RESOLUTION, IdentityInput, customers_create, identity_build
from cxplatform.db import AnyOf, Compiled, Param, bulk_set

logger = logging.getLogger(__name__)

BATCH_SIZE = 100

Key = tuple[str, str, str]  # an identity's (kind, scope, value) as stored


def batch_processing_enabled() -> bool:
    return bool(getattr(settings, "WEBHOOK_BATCH_PROCESSING", True))


@dataclass
class _Candidate:
    """One parsed customer message that may take the set-based path."""

    event: WebhookEvent
    item: InboundEvent
    provider_id: str
    at: dt.datetime
    keys: list[Key]
    verified: list[bool]  # per key: a channel proved it (else the business asserts it: email)
    inputs: list[IdentityInput]  # per key: as the adapter gave it
    customer: Customer | None = None
    identities: list[Identity] = field(default_factory=list)
    conversation: Conversation | None = None
    creates: bool = False  # the message brings `customer` and `identities` (built, not stored yet)
    opens: bool = False  # the message starts `conversation` (built, not stored yet)
    reopens: bool = False  # the message reopens `conversation` (resolved within the reopen window)


@dataclass
class _Receipt:
    """One message a status callback is about (a WhatsApp receipt: sent, delivered, read, failed)."""

    event: WebhookEvent
    item: InboundEvent
    key: tuple[int, str]  # (inbox id, provider message id)
    message: Message | None = None  # ours, locked; None: not a message we know


@dataclass
class _Plan:
    candidates: list[_Candidate] = field(default_factory=list)
    receipts: list[_Receipt] = field(default_factory=list)
    slow: set[int] = field(default_factory=set)  # webhook event ids for webhook_event_process
    parsed: dict[int, list[InboundEvent]] = field(default_factory=dict)  # what the planner parsed, by id
    # The identities of deliveries that go one by one whole (an automatic reply, an echo, an
    # unverified identity...): their senders' other messages in the batch go one by one too,
    # after them, as they came (_slow_together).
    slow_keys: set[Key] = field(default_factory=set)
    owners: dict[Key, int] = field(default_factory=dict)  # the stored identities' customers, by key


def webhook_events_batch_process(*, size: int = BATCH_SIZE) -> tuple[int, list[tuple[int, list[InboundEvent] | None]]]:
    """Claim up to `size` waiting deliveries (oldest first, skipping those another drain holds),
    apply the common case set-based and mark those processed, in one transaction. Returns how
    many were claimed and, in order, the ids that `webhook_event_process` must still handle, each
    with what the planner parsed from its body (None: not parsed, or unreadable), so an e-mail is
    not parsed twice."""
    if not deliveries_waiting():
        return 0, []
    with transaction.atomic():
        events = _claim(size).fetch()
        if not events:
            return 0, []
        slow = {e.pk for e in events}
        parsed: dict[int, list[InboundEvent]] = {}
        try:
            with transaction.atomic():
                plan = _plan(events)
                parsed = plan.parsed
                fast_ids = [e.pk for e in events if e.pk not in plan.slow]
                if fast_ids:
                    _apply([c for c in plan.candidates if c.event.pk not in plan.slow])
                    message_statuses_apply([
                        (r.message, r.item.status, r.item.error_code, r.item.error_title, r.item.timestamp)
                        for r in plan.receipts if r.event.pk not in plan.slow and r.message is not None])
                    now = timezone.now()
                    WebhookEvent.objects.filter(pk__in=fast_ids).update(
                        status=WebhookEvent.Status.PROCESSED, attempts=F("attempts") + 1, last_attempt_at=now,
                        processed_at=now, last_error="")
                slow = plan.slow
        except Exception:
            # Whatever went wrong (a delivery the planner could not read, a concurrent writer, a
            # deadlock), the one-by-one path records it against the right delivery, with its
            # retries: one bad delivery must never hold up the batches behind it.
            logger.warning("batch of %s deliveries failed; processing them one by one", len(events), exc_info=True)
    return len(events), [(e.pk, parsed.get(e.pk)) for e in events if e.pk in slow]


def deliveries_waiting() -> bool:
    """Whether any delivery waits: one indexed statement, outside a transaction, before a claim.
    A drain ends with two looks that find nothing (after its linger, and after it gives up its
    wake flag); as claims (BEGIN, the joined SELECT … FOR UPDATE compiled by the ORM, COMMIT)
    they cost about 2 ms of CPU each, as this look 0.16 ms: a fifth of what one message alone
    in its batch cost the worker (docs/performance.md, twelfth session). A delivery another
    drain holds still counts as waiting; the claim then finds nothing, as before. It asks the
    database the claim writes to: a lagging read replica would answer "nothing" while deliveries
    wait, and the drain would end without them."""
    using = router.db_for_write(WebhookEvent)
    sql, params = _waiting_sql(using)
    with connections[using].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone() is not None


@functools.lru_cache(maxsize=32)
def _claim(size: int) -> Compiled:
    """The oldest `size` waiting deliveries no other drain holds, locked. The inbox's office hours
    come along (one LEFT JOIN): `_check_office_hours` needs them."""
    return Compiled(lambda: WebhookEvent.objects.select_related("inbox__office_hours")
                    .select_for_update(of=("self",), skip_locked=True)
                    .filter(status=WebhookEvent.Status.RECEIVED).order_by("pk")[:size])


# The batch's reads, compiled once (cxplatform.db.Compiled): building and compiling them through
# the ORM on every batch was about a third of a lone delivery's worker CPU.
def _by_provider_id() -> tuple[AnyOf, AnyOf]:
    """Messages of these inboxes with these provider ids (`inboxes`, `provider_ids`: the caller
    keeps the exact (inbox, id) pairs it asked for)."""
    return AnyOf(F("inbox_id"), Param("inboxes")), AnyOf(F("provider_message_id"), Param("provider_ids"))


# Which of the batch's messages are stored already.
_STORED_MESSAGES = Compiled(lambda: Message.objects.filter(*_by_provider_id()).order_by()
                            .values_list("inbox_id", "provider_message_id"))
# The messages the receipts are about, locked, with their conversations (for the live event's
# audience; not locked: a status step does not write them, and fewer locks, fewer deadlocks
# with a drain locking conversations for its customers' messages).
_RECEIPT_MESSAGES = Compiled(lambda: Message.objects.select_related("conversation").select_for_update(of=("self",))
                             .filter(*_by_provider_id()).order_by())
# The senders' identities, locked. Their customers come along (one join; only the identities are
# locked): a separate in_bulk was one more ORM statement per batch, about 1.3 ms of CPU each.
_IDENTITIES = Compiled(lambda: Identity.objects.select_related("customer").select_for_update(of=("self",))
                       .filter(AnyOf(F("value"), Param("values"))))
# The unresolved conversations, and the resolved ones recent enough that one of the batch's
# messages would reopen them (locked as conversation_continue locks them).
_CONVERSATIONS = Compiled(lambda: Conversation.objects.select_for_update().filter(
    Q(resolved_at__gte=Param("since", DateTimeField())) | ~Q(status=ConversationStatus.RESOLVED),
    AnyOf(F("customer_id"), Param("customers"))))


@functools.cache
def _waiting_sql(using: str) -> tuple[str, tuple]:
    """The look's statement, compiled by the ORM once per database."""
    query = WebhookEvent.objects.using(using).filter(status=WebhookEvent.Status.RECEIVED).order_by().values("pk")[:1]
    return query.query.get_compiler(using).as_sql()


def _plan(events: list[WebhookEvent]) -> _Plan:
    """Parse the deliveries and decide, per delivery, whether the set-based path applies."""
    plan = _Plan()
    adapters: dict[int, object] = {}
    for event in events:
        inbox = event.inbox
        if inbox.pk not in adapters:
            adapters[inbox.pk] = inbox_adapter(inbox=inbox)
        if not _candidates(event, adapters[inbox.pk], plan):
            plan.slow.add(event.pk)
            plan.slow_keys.update(_sender_keys(event, plan.parsed.get(event.pk) or []))
    if plan.receipts:
        _find_receipt_messages(plan)
    if plan.candidates:
        _skip_duplicates(plan)
        _resolve_customers(plan)
        _find_conversations(plan)
        _check_office_hours(plan)
    return plan


def _candidates(event: WebhookEvent, adapter, plan: _Plan) -> bool:
    """Add the delivery's customer messages and receipts to the plan; False (nothing added) when
    any part of it needs the one-by-one path (`plan.parsed` keeps what was parsed, for it)."""
    if adapter is None:
        return False
    try:
        items = plan.parsed[event.pk] = list(adapter.parse(bytes(event.body), event.headers))
    except Exception:
        return False  # webhook_event_process records the error (and parks or retries)
    out: list[_Candidate] = []
    receipts: list[_Receipt] = []
    for item in items:
        if item.kind == EventKind.STATUS:
            mids = receipt_message_ids(item)
            if not mids:  # a watermark receipt (Messenger, Instagram): every message sent before it
                return False
            receipts += [_Receipt(event=event, item=item, key=(event.inbox_id, mid)) for mid in mids]
            continue
        provider_id = _provider_id(item)
        if item.kind not in MESSAGE_KINDS or item.extra.get("auto_reply") or not provider_id:
            return False
        inputs = _identity_inputs(event.inbox, item)
        # An identity typed by the end user never links to a stored one (customer_resolve makes a
        # profile and a merge suggestion): only verified ones, or the business-asserted email From.
        if not inputs or not (all(i.verified for i in inputs) or _asserted_by(event.inbox) == IdentityOrigin.BUSINESS):
            return False
        try:
            keys = [_stored_key(i.kind, i.value, i.scope) for i in inputs]
        except IdentityValueError:
            return False
        out.append(_Candidate(event=event, item=item, provider_id=provider_id[:255], at=message_time(item), keys=keys,
                              verified=[i.verified for i in inputs], inputs=inputs))
    plan.candidates += out
    plan.receipts += receipts
    return True


def _sender_keys(event: WebhookEvent, items: list[InboundEvent]) -> set[Key]:
    """The stored keys of every identity the delivery's items name (receipts name none we keep)."""
    keys = set()
    for item in items:
        if item.kind == EventKind.STATUS:
            continue
        for i in _identity_inputs(event.inbox, item):
            try:
                keys.add(_stored_key(i.kind, i.value, i.scope))
            except IdentityValueError:
                continue
    return keys


def _find_receipt_messages(plan: _Plan) -> None:
    """The messages the receipts are about, locked (one statement). A receipt for a message we do
    not know while a reply on its inbox may still be on its way (the receipt overtook the send
    recording the provider's id) is the one-by-one path's: it retries the delivery shortly."""
    found = {
        (message.inbox_id, message.provider_message_id): message
        for message in _RECEIPT_MESSAGES.fetch(inboxes=list({r.key[0] for r in plan.receipts}),
                                               provider_ids=list({r.key[1] for r in plan.receipts}))
    }
    in_flight: dict[int, bool] = {}
    for receipt in plan.receipts:
        receipt.message = found.get(receipt.key)
        if receipt.message is not None:
            receipt.message.inbox = receipt.event.inbox  # the domain event's listeners read it
        else:
            inbox = receipt.event.inbox
            if inbox.pk not in in_flight:
                in_flight[inbox.pk] = send_in_flight(inbox)
            if in_flight[inbox.pk]:
                plan.slow.add(receipt.event.pk)
    _slow_together(plan)


def _stored_key(kind: str, value: str, scope: str) -> Key:
    norm = identity_normalise(kind=kind, value=value, scope=scope)
    return (norm.kind, norm.scope, norm.value)


def _skip_duplicates(plan: _Plan) -> None:
    """Redeliveries (the message is stored already, or earlier in this batch) are no-ops, exactly
    as `webhook_event_process` treats them."""
    stored = set(_STORED_MESSAGES.fetch(inboxes=list({c.event.inbox_id for c in plan.candidates}),
                                        provider_ids=list({c.provider_id for c in plan.candidates})))
    kept = []
    for candidate in plan.candidates:
        key = (candidate.event.inbox_id, candidate.provider_id)
        if key not in stored:
            stored.add(key)
            kept.append(candidate)
    plan.candidates = kept


def _resolve_customers(plan: _Plan) -> None:
    """Every identity of the message must already exist on one live customer who has a name if
    the provider sent one, and a verified one must be stored verified (else it is a claim); or
    none of them may exist, and a new customer is built for them (`_new_customer`). Anything
    else (an identity to attach, one on another customer, a claim) is `customer_resolve`'s."""
    wanted = {key for c in plan.candidates for key in c.keys} | plan.slow_keys
    rows = {
        (row.kind, row.scope, row.value): row
        for row in _IDENTITIES.fetch(values=list({key[2] for key in wanted}))
        if (row.kind, row.scope, row.value) in wanted
    }
    plan.owners = {key: row.customer_id for key, row in rows.items()}
    customers: dict[int, Customer] = {}
    for row in rows.values():  # one instance per customer, whichever of its identities matched
        row.customer = customers.setdefault(row.customer_id, row.customer)
    new: dict[Key, tuple[Customer, dict[Key, Identity]]] = {}  # built new customers, by each of their keys
    for candidate in plan.candidates:
        found = [rows.get(key) for key in candidate.keys]
        if not any(found):
            if not _new_customer(candidate, new):
                plan.slow.add(candidate.event.pk)
            continue
        owners = {row.customer_id for row in found if row is not None}
        if len(owners) == 1:  # known, even when this message goes one by one: _slow_together
            candidate.customer = customers[next(iter(owners))]
        if len(owners) != 1 or None in found or not all(
                row.verified for row, verified in zip(found, candidate.verified, strict=False) if verified):
            plan.slow.add(candidate.event.pk)
            continue
        customer = customers[owners.pop()]
        if customer.merged_into_id is not None or customer.is_erased or (
                candidate.item.display_name and not customer.display_name):
            plan.slow.add(candidate.event.pk)
            continue
        candidate.customer = customer
        candidate.identities = found
    _slow_together(plan)


def _new_customer(candidate: _Candidate, new: dict[Key, tuple[Customer, dict[Key, Identity]]]) -> bool:
    """Nobody has the message's identities: the customer `customer_resolve` would create (built
    here, stored by `customers_create` in `_apply`), or the one an earlier message of the batch
    built for exactly these identities. False when it is `customer_resolve`'s work after all:
    identities shared in part with another new customer, too many of one kind, or what a later
    message would change (a name, a verification)."""
    keys = set(candidate.keys)
    held = {id(new[key][0]) for key in keys if key in new}
    if held:
        if len(held) != 1:
            return False
        customer, identities = next(new[key] for key in keys if key in new)
        candidate.customer = customer  # known, even when this message goes one by one: _slow_together
        if set(identities) != keys or (candidate.item.display_name and not customer.display_name):
            return False
        if not all(identities[key].verified for key, verified in zip(candidate.keys, candidate.verified, strict=True)
                   if verified):
            return False
    else:
        if max(Counter(key[0] for key in keys).values()) > max_identities_per_kind():
            return False
        customer = Customer(display_name=(candidate.item.display_name or "")[:200], last_seen_at=candidate.at)
        source, asserted_by = f"channel:{candidate.event.inbox.kind}", _asserted_by(candidate.event.inbox)
        identities = {}
        for key, item in zip(candidate.keys, candidate.inputs, strict=True):
            if key not in identities or (item.verified and not identities[key].verified):  # as customer_resolve
                identities[key] = identity_build(customer=customer, item=item, key=key, source=source,
                                                 asserted_by=asserted_by, seen_at=candidate.at)
        for key in keys:
            new[key] = (customer, identities)
        candidate.creates = True
    candidate.customer = customer
    candidate.identities = [identities[key] for key in candidate.keys]
    return True


def _find_conversations(plan: _Plan) -> None:
    """The customer's unresolved conversation must be open and last used on this inbox: no
    wake-up, no channel switch (those record timeline entries and domain events). A customer
    without one reopens their conversation resolved within the reopen window, when it is
    assigned and was last used on this inbox (`conversations_reopen` in `_apply`; else it is the
    one-by-one path's), or starts a new one (`conversations_open`). Their later messages in the
    batch continue it."""
    live = [c for c in plan.candidates if c.event.pk not in plan.slow]
    if not live:
        return
    window = reopen_window()
    recent_since = min(c.at for c in live) - window
    conversations: dict[int, Conversation] = {}
    last_resolved: dict[int, Conversation] = {}  # the one conversation_continue would reopen
    known = {c.customer.pk for c in live if c.customer.pk is not None}  # a new customer has none yet
    for conversation in _CONVERSATIONS.fetch(since=recent_since, customers=list(known)) if known else ():
        if conversation.status != ConversationStatus.RESOLVED:
            conversations[conversation.customer_id] = conversation
            continue
        best = last_resolved.get(conversation.customer_id)
        if best is None or (conversation.resolved_at, conversation.pk) > (best.resolved_at, best.pk):
            last_resolved[conversation.customer_id] = conversation
    opened: dict[int, Conversation] = {}  # by id() of the customer instance: a new one has no pk yet
    for candidate in live:
        customer, inbox = candidate.customer, candidate.event.inbox
        conversation = conversations.get(customer.pk)
        if conversation is not None:
            usable = conversation.status == ConversationStatus.OPEN and conversation.last_inbox_id == inbox.pk
        elif id(customer) in opened:  # reopened or started by the customer's earlier message
            conversation = opened[id(customer)]
            usable = conversation.last_inbox_id == inbox.pk
        else:
            recent = last_resolved.get(customer.pk)
            if recent is not None and recent.resolved_at >= candidate.at - window:
                # unassigned (auto-assignment) or last used elsewhere (a channel switch): one by one
                usable = recent.assignee_id is not None and recent.last_inbox_id == inbox.pk
                conversation = opened[id(customer)] = recent
                candidate.reopens = True
            else:
                conversation = opened[id(customer)] = conversation_build(customer=customer, inbox=inbox,
                                                                         at=candidate.at)
                candidate.opens = usable = True
        if not usable:
            plan.slow.add(candidate.event.pk)  # and the customer's other messages: _slow_together
            continue
        conversation.customer = customer
        candidate.conversation = conversation
    _slow_together(plan)


def _check_office_hours(plan: _Plan) -> None:
    """An inbox with a greeting greets a new conversation, and one with an automatic
    out-of-hours reply answers while it is closed: both are the one-by-one path's. While the
    inbox is open (asked once per inbox and batch) its messages stay in the batch: most inboxes
    with an out-of-hours reply are open when most messages come."""
    open_now: dict[int, bool] = {}
    for candidate in plan.candidates:
        inbox = candidate.event.inbox
        try:
            office_hours = inbox.office_hours  # joined by the claim
        except ObjectDoesNotExist:
            continue
        if candidate.opens and office_hours.greeting_enabled:
            plan.slow.add(candidate.event.pk)
        elif office_hours.auto_reply_enabled:
            if inbox.pk not in open_now:
                open_now[inbox.pk] = office_hours_state(office_hours=office_hours)[0]
            if not open_now[inbox.pk]:
                plan.slow.add(candidate.event.pk)
    _slow_together(plan)


def _slow_together(plan: _Plan) -> None:
    """A customer's messages in one batch all take the same path, in order: when one of them
    needs the one-by-one path, so do the others (and so does every message of their deliveries).
    A customer is known by the instance the batch resolved, and by the identities: a message
    going one by one may have none resolved (a delivery that never became a candidate, in
    `plan.slow_keys`; identities on two customers), and a message in the batch would otherwise
    be stored before an earlier one of the same sender. So do the receipts about one message: a
    failure and a later read must apply in order."""
    while True:
        slow = [c for c in plan.candidates if c.event.pk in plan.slow]
        # id(): one instance per customer in a batch, and a new one has no pk yet
        slow_customers = {id(c.customer) for c in slow if c.customer}
        slow_keys = plan.slow_keys.union(*(c.keys for c in slow))
        slow_owners = {plan.owners[key] for key in slow_keys if key in plan.owners}
        slow_messages = {r.key for r in plan.receipts if r.event.pk in plan.slow}
        moved = False
        for candidate in plan.candidates:
            if candidate.event.pk in plan.slow:
                continue
            customer = candidate.customer
            if (customer is not None and (id(customer) in slow_customers or customer.pk in slow_owners)) \
                    or not slow_keys.isdisjoint(candidate.keys):
                plan.slow.add(candidate.event.pk)
                moved = True
        for receipt in plan.receipts:
            if receipt.event.pk not in plan.slow and receipt.key in slow_messages:
                plan.slow.add(receipt.event.pk)
                moved = True
        if not moved:
            return


def _apply(candidates: list[_Candidate]) -> None:
    """Write the batch: what `_inbound_message` writes for each, with bulk statements."""
    created = [(c.customer, list({id(i): i for i in c.identities}.values())) for c in candidates if c.creates]
    if created:
        customers_create(created)
    opened: list[Conversation] = []
    reopened: list[tuple[Conversation, Inbox, dt.datetime]] = []
    reopens_first: list[tuple[int, int]] = []  # a reopen adds to its assignee's load for the openings after it
    for c in candidates:
        if c.opens:
            opened.append(c.conversation)
        elif c.reopens:
            reopened.append((c.conversation, c.event.inbox, c.at))
            reopens_first.append((len(opened), c.conversation.assignee_id))
    if opened:
        conversations_open(opened, reopens=reopens_first)
    if reopened:
        conversations_reopen(reopened)
    now = timezone.now()
    touched_identities: dict[int, Identity] = {}
    seen_customers: dict[int, Customer] = {}
    resaved_customers: dict[int, Customer] = {}
    messages: list[Message] = []
    for candidate in candidates:
        at, customer = candidate.at, candidate.customer
        for identity in candidate.identities:  # customer_resolve's _identity_touch, throttled
            if at - identity.last_seen_at > SEEN_RESOLUTION:
                identity.last_seen_at = at
                touched_identities[identity.pk] = identity
        if any(candidate.verified) and (customer.last_seen_at is None or at - customer.last_seen_at > SEEN_RESOLUTION):
            customer.last_seen_at, customer.updated_at = at, now  # customer_resolve's save
            resaved_customers[customer.pk] = customer
        if customer.last_seen_at is None or at > customer.last_seen_at:  # customer_touch
            customer.last_seen_at = at
            seen_customers[customer.pk] = customer
        item = candidate.item
        messages.append(message_build(
            conversation=candidate.conversation, inbox=candidate.event.inbox, direction=MessageDirection.INBOUND,
            sender=MessageSender.CUSTOMER, content=_content(item), provider_message_id=candidate.provider_id,
            reply_to_provider_id=item.reply_to_id if item.kind != EventKind.REACTION else "",
            attachments=_attachments(item), data=_data(item), created_at=at, webhook_event=candidate.event,
        ))
    Message.objects.bulk_create(messages)
    if touched_identities:
        bulk_set(Identity, list(touched_identities.values()), ["last_seen_at"])
    if resaved_customers:
        bulk_set(Customer, list(resaved_customers.values()), ["last_seen_at", "updated_at"])
    only_seen = [c for pk, c in seen_customers.items() if pk not in resaved_customers]
    if only_seen:
        bulk_set(Customer, only_seen, ["last_seen_at"])
    moved: dict[int, tuple[Conversation, set[str]]] = {}
    for message in messages:
        conversation = message.conversation
        changed = message_conversation_times(conversation, message)
        if changed:
            moved.setdefault(conversation.pk, (conversation, set()))[1].update(changed)
    by_fields: dict[tuple[str, ...], list[Conversation]] = defaultdict(list)
    for conversation, fields in moved.values():
        by_fields[tuple(sorted(fields))].append(conversation)
    for fields, conversations in by_fields.items():
        bulk_set(Conversation, conversations, list(fields))
    TimelineEntry.objects.bulk_create([
        timeline_entry_build(customer=message.conversation.customer, **message_timeline_values(message, message.conversation))
        for message in messages
    ])
    messages_created_after(messages)
    for message in messages:
        schedule_fetch(message)
