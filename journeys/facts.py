"""KPI facts: per-conversation and per-resolution-cycle rows the service KPI report aggregates
(docs/metrics.md → Performance).

Every fact is a pure function of one conversation's messages and resolutions. So whenever a
message or a resolution of a conversation appears (or a message of it is deleted), that
conversation's facts are recomputed, set-based, from scratch: `kpi_facts_refresh` finds those
conversations through an id watermark on the messages and resolutions (`KpiFactsState`), plus
`KpiFactsPending` for what ids cannot show. It runs from `journeys_sync` and at the start of
every service report, so a report is exact even if the periodic task has not run; with nothing
new it costs one query.

What the facts do NOT hold, because it changes without a message: the conversation's team,
customer (merges) and labels; the report joins those live. Whether a resolution was reopened
(by hand, without a message) is a flag on the resolution that database triggers keep
(journeys/migrations/0010_resolution_reopened.py).
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.db import OperationalError, connection, transaction
from django.db.models import Count, Exists, F, Max, Min, OuterRef, Q, QuerySet, Subquery, Window
from django.db.models.functions import Coalesce, Lag
from django.utils import timezone

from channels_app.models import Conversation, Message, MessageDirection, MessageSender
from journeys.models import (
    ChannelSwitch,
    ConversationChannelFact,
    ConversationFact,
    ConversationResolution,
    KpiFactsPending,
    KpiFactsState,
)

STATE_ID = 1
CHUNK = 500
# Ids are handed out before the inserting transaction commits, so an id just below the newest
# one may still become visible later. The newest GAP_SCAN ids are checked for holes; a hole is
# remembered (KpiFactsPending) for GAP_AGE, longer than any inserting transaction lasts (a
# rolled-back insert, e.g. a duplicate webhook delivery, never shows up).
GAP_SCAN = 2000
GAP_AGE = dt.timedelta(minutes=15)

Kind = KpiFactsPending.Kind


# --- what changed -------------------------------------------------------------------------


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _check_sql() -> str:
    pending = _table(KpiFactsPending)
    return f"""
        SELECT s.message_id, s.resolution_id,
               (SELECT MAX(id) FROM {_table(Message)}),
               (SELECT MAX(id) FROM {_table(ConversationResolution)}),
               EXISTS (SELECT 1 FROM {pending} p WHERE p.kind = %s
                       OR (p.kind = %s AND EXISTS (SELECT 1 FROM {_table(Message)} m WHERE m.id = p.ref_id))
                       OR (p.kind = %s AND EXISTS (SELECT 1 FROM {_table(ConversationResolution)} r WHERE r.id = p.ref_id)))
        FROM {_table(KpiFactsState)} s WHERE s.id = %s
    """


def kpi_facts_stale() -> bool:
    """One query: is anything newer than the facts?"""
    with connection.cursor() as cursor:
        cursor.execute(_check_sql(), [Kind.CONVERSATION, Kind.MESSAGE_GAP, Kind.RESOLUTION_GAP, STATE_ID])
        row = cursor.fetchone()
    if row is None:
        return True
    message_mark, resolution_mark, message_max, resolution_max, pending = row
    return (message_max or 0) > message_mark or (resolution_max or 0) > resolution_mark or bool(pending)


def kpi_facts_refresh(*, full: bool = False) -> int:
    """Bring the KPI facts up to date; returns the number of conversations recomputed (-1 for a
    full build). Safe to run concurrently: the watermark row is locked for the refresh (on
    PostgreSQL; SQLite has no row locks and refuses the second writer with "database is
    locked" instead, so there the refresh is retried, and finds the other one's work done)."""
    for attempt in range(3):
        try:
            return _refresh(full=full)
        except OperationalError:
            if connection.vendor != "sqlite" or attempt == 2 or connection.in_atomic_block:
                raise
    raise AssertionError("unreachable")


def _refresh(*, full: bool) -> int:
    if not full and not kpi_facts_stale():
        return 0
    with transaction.atomic():
        KpiFactsState.objects.get_or_create(pk=STATE_ID)
        state = KpiFactsState.objects.select_for_update().get(pk=STATE_ID)
        _jit_off()
        message_max = Message.objects.order_by("-id").values_list("id", flat=True).first() or 0
        resolution_max = ConversationResolution.objects.order_by("-id").values_list("id", flat=True).first() or 0
        if full or state.message_id == 0 and state.resolution_id == 0:
            KpiFactsPending.objects.filter(kind=Kind.CONVERSATION).delete()
            _rebuild(None)
            _analyze()
            touched_count = -1
        else:
            touched = _touched(state, message_max, resolution_max)
            _rebuild(sorted(touched))
            touched_count = len(touched)
        _remember_gaps(Message, Kind.MESSAGE_GAP, state.message_id, message_max)
        _remember_gaps(ConversationResolution, Kind.RESOLUTION_GAP, state.resolution_id, resolution_max)
        state.message_id = max(state.message_id, message_max)
        state.resolution_id = max(state.resolution_id, resolution_max)
        state.refreshed_at = timezone.now()
        state.save()
    return touched_count


def _analyze() -> None:
    # Fresh tables have no planner statistics until autovacuum comes by: without them the
    # report's plans assume a handful of rows (index scans over 200k rows).
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            for model in (ConversationFact, ConversationChannelFact, ChannelSwitch, ConversationResolution):
                cursor.execute(f"ANALYZE {_table(model)}")


def _jit_off() -> None:
    # The correlated subqueries below exceed jit_above_cost; compiling them costs seconds.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL jit = off")


def _touched(state: KpiFactsState, message_max: int, resolution_max: int) -> set[int]:
    touched = set(
        Message.objects.filter(id__gt=state.message_id, id__lte=message_max)
        .order_by().values_list("conversation_id", flat=True).distinct()
    )
    touched |= set(
        ConversationResolution.objects.filter(id__gt=state.resolution_id, id__lte=resolution_max)
        .order_by().values_list("conversation_id", flat=True).distinct()
    )
    pending = KpiFactsPending.objects.all()
    conversations = set(pending.filter(kind=Kind.CONVERSATION).values_list("ref_id", flat=True))
    message_gaps = pending.filter(kind=Kind.MESSAGE_GAP)
    seen_messages = Message.objects.filter(id__in=message_gaps.values("ref_id"))
    conversations |= set(seen_messages.values_list("conversation_id", flat=True))
    resolution_gaps = pending.filter(kind=Kind.RESOLUTION_GAP)
    seen_resolutions = ConversationResolution.objects.filter(id__in=resolution_gaps.values("ref_id"))
    conversations |= set(seen_resolutions.values_list("conversation_id", flat=True))
    KpiFactsPending.objects.filter(
        Q(kind=Kind.CONVERSATION, ref_id__in=conversations)
        | Q(kind=Kind.MESSAGE_GAP, ref_id__in=Message.objects.filter(id__in=message_gaps.values("ref_id")).values("id"))
        | Q(kind=Kind.RESOLUTION_GAP, ref_id__in=ConversationResolution.objects.filter(
            id__in=resolution_gaps.values("ref_id")).values("id"))
    ).delete()
    return touched | conversations


def _remember_gaps(model, kind: str, mark: int, newest: int) -> None:
    """Ids in the newest GAP_SCAN ids above the old watermark that are not visible yet."""
    low = max(mark, newest - GAP_SCAN)
    if newest > low:
        present = set(model.objects.filter(id__gt=low, id__lte=newest).values_list("id", flat=True))
        missing = [pk for pk in range(low + 1, newest + 1) if pk not in present]
        if missing:
            KpiFactsPending.objects.bulk_create(
                [KpiFactsPending(kind=kind, ref_id=pk) for pk in missing], ignore_conflicts=True
            )
    KpiFactsPending.objects.filter(kind=kind, noted_at__lt=timezone.now() - GAP_AGE).delete()


def kpi_facts_conversation_touched(*, conversation_ids: Iterable[int]) -> None:
    """Mark conversations for recomputation (e.g. one of their messages was deleted)."""
    KpiFactsPending.objects.bulk_create(
        [KpiFactsPending(kind=Kind.CONVERSATION, ref_id=pk) for pk in set(conversation_ids)], ignore_conflicts=True
    )


def on_message_deleted(sender, instance, **kwargs) -> None:
    """`post_delete` receiver for channels_app.Message (connected in JourneysConfig.ready)."""
    kpi_facts_conversation_touched(conversation_ids=[instance.conversation_id])


# --- set-based recomputation ---------------------------------------------------------------


def _rebuild(conversation_ids: list[int] | None) -> None:
    """Recompute every fact of these conversations (None: of all conversations)."""
    if conversation_ids is None:
        _rebuild_chunk(None)
        return
    for start in range(0, len(conversation_ids), CHUNK):
        _rebuild_chunk(conversation_ids[start:start + CHUNK])


def _rebuild_chunk(ids: list[int] | None) -> None:
    def only(queryset: QuerySet, field: str) -> QuerySet:
        return queryset if ids is None else queryset.filter(**{f"{field}__in": ids})

    only(ConversationFact.objects.all(), "conversation_id").delete()
    only(ConversationChannelFact.objects.all(), "conversation_id").delete()
    only(ChannelSwitch.objects.all(), "conversation_id").delete()
    _insert_select(ConversationFact, only(_conversation_facts(), "pk"))
    _insert_select(ConversationChannelFact, only(_channel_facts(), "conversation_id"))
    _insert_select(ChannelSwitch, only(_switches(), "conversation_id"))
    _update_cycles(only(ConversationResolution.objects.all(), "conversation_id"))


def _insert_select(model, queryset: QuerySet) -> None:
    """INSERT INTO model's table the rows of a `.values(f_<column>…)` queryset, in the
    database. Annotations are named `f_<column>` so the derived table's columns are known."""
    names = list(queryset.query.annotation_select)
    columns = [name.removeprefix("f_") for name in names]
    quote = connection.ops.quote_name
    sql, params = queryset.query.sql_with_params()
    statement = (
        f"INSERT INTO {_table(model)} ({', '.join(quote(model._meta.get_field(c).column) for c in columns)}) "
        f"SELECT {', '.join(quote(n) for n in names)} FROM ({sql}) src"
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def _customer_messages(outer: str = "pk") -> QuerySet:
    return Message.objects.filter(
        conversation=OuterRef(outer), direction=MessageDirection.INBOUND, sender=MessageSender.CUSTOMER
    ).order_by("created_at", "id")


def _agent_replies(outer: str = "pk") -> QuerySet:
    """Replies that count for first response and FCR: outbound, not private, by an agent."""
    return Message.objects.filter(
        conversation=OuterRef(outer), direction=MessageDirection.OUTBOUND, sender=MessageSender.AGENT,
        private=False, author__isnull=False,
    )


def _conversation_facts() -> QuerySet:
    customer_messages = _customer_messages()
    replies = _agent_replies().filter(created_at__gte=OuterRef("f_first_in")).order_by("created_at", "id")
    latest_first = customer_messages.order_by("-created_at", "-id")
    return (
        Conversation.objects.annotate(
            f_conversation=F("pk"),
            f_first_in=Subquery(customer_messages.values("created_at")[:1]),
            f_first_in_inbox=Subquery(customer_messages.values("inbox_id")[:1]),
            f_first_in_channel=Subquery(customer_messages.values("inbox__kind")[:1]),
            f_first_reply=Subquery(replies.values("created_at")[:1]),
            f_first_reply_agent=Subquery(replies.values("author_id")[:1]),
            f_reply_wait_from=Coalesce(
                Subquery(latest_first.filter(created_at__lt=OuterRef("f_first_reply")).values("created_at")[:1]),
                F("f_first_in"),
            ),
            f_last_in=Subquery(latest_first.values("created_at")[:1]),
            f_wrote_after_reply=Exists(customer_messages.filter(created_at__gt=OuterRef("f_first_reply"))),
        )
        .filter(f_first_in__isnull=False)
        .order_by()
        .values("f_conversation", "f_first_in", "f_first_in_inbox", "f_first_in_channel", "f_first_reply",
                "f_first_reply_agent", "f_reply_wait_from", "f_last_in", "f_wrote_after_reply")
    )


def _channel_facts() -> QuerySet:
    return (
        Message.objects.filter(private=False).order_by()
        .annotate(f_conversation=F("conversation_id"), f_channel=F("inbox__kind"))
        .values("f_conversation", "f_channel")
        .annotate(
            f_first_at=Min("created_at"), f_last_at=Max("created_at"),
            f_inbound=Count("id", filter=Q(direction=MessageDirection.INBOUND)),
            f_outbound=Count("id", filter=Q(direction=MessageDirection.OUTBOUND)),
        )
        .values("f_conversation", "f_channel", "f_first_at", "f_last_at", "f_inbound", "f_outbound")
    )


def _switches() -> QuerySet:
    order = [F("created_at").asc(), F("id").asc()]
    return (
        Message.objects.filter(direction=MessageDirection.INBOUND, sender=MessageSender.CUSTOMER)
        .order_by()
        .annotate(
            f_message_id=F("id"), f_conversation=F("conversation_id"), f_at=F("created_at"),
            previous_inbox=Window(Lag("inbox_id"), partition_by=[F("conversation_id")], order_by=order),
            f_previous_at=Window(Lag("created_at"), partition_by=[F("conversation_id")], order_by=order),
        )
        .filter(previous_inbox__isnull=False)
        .exclude(previous_inbox=F("inbox_id"))
        .values("f_message_id", "f_conversation", "f_at", "f_previous_at")
    )


def _update_cycles(resolutions: QuerySet) -> None:
    """Per resolution cycle: agent replies inside it, who wrote the first one, when the next
    cycle started and the first customer message after the resolution."""
    in_cycle = _agent_replies("conversation_id").filter(
        created_at__gte=OuterRef("cycle_started_at"), created_at__lte=OuterRef("resolved_at")
    )
    later = ConversationResolution.objects.filter(
        conversation=OuterRef("conversation_id"), resolved_at__gt=OuterRef("resolved_at")
    ).order_by("resolved_at", "id")
    resolutions.update(
        agent_replies=Coalesce(
            Subquery(in_cycle.order_by().values("conversation_id").annotate(n=Count("id")).values("n")[:1]), 0
        ),
        reply_author=Subquery(in_cycle.order_by("created_at", "id").values("author_id")[:1]),
        next_cycle_start=Subquery(later.values("cycle_started_at")[:1]),
        next_customer_message=Subquery(
            _customer_messages("conversation_id").filter(created_at__gt=OuterRef("resolved_at"))
            .values("created_at")[:1]
        ),
    )
