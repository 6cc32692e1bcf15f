"""Service KPIs, CSAT and the lifecycle funnel, defined in docs/metrics.md.

Counts and averages are SQL aggregates. The funnel is aggregated entirely in the database
(medians with journeys.aggregates.Median: percentile_cont on PostgreSQL, a registered Python
aggregate on SQLite). The service KPIs still read one row per conversation and per resolution
cycle (never one per message) and take medians, p90, FCR, abandonment and SLA in Python; see
docs/metrics.md → Performance for what that costs on the benchmark and the planned fix.
"""
from __future__ import annotations

import datetime as dt
import functools
import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.db.models import Avg, Count, Exists, F, Min, OuterRef, Q, Subquery, Window
from django.db.models.functions import Coalesce, Lag, TruncDay, TruncMonth, TruncWeek
from django.utils import timezone
from django.utils.dateparse import parse_date

from channels_app.models import Conversation, InboxKind, Message, MessageDirection, MessageSender
from customers.models import Customer, LifecycleStage
from journeys.aggregates import Median, Seconds
from journeys.models import STAGE_ORDER, ConversationResolution, CsatResponse, CsatSurvey, StageChange

STAGES = list(LifecycleStage.values)
TRUNC = {"day": TruncDay, "week": TruncWeek, "month": TruncMonth}
DEFAULT_DAYS = 30


@dataclass(frozen=True)
class Window_:
    start: dt.datetime
    end: dt.datetime  # exclusive

    @property
    def first_day(self) -> dt.date:
        return timezone.localtime(self.start).date()

    @property
    def last_day(self) -> dt.date:
        return timezone.localtime(self.end).date() - dt.timedelta(days=1)


def period_from_query(params) -> Window_:
    """`from`/`to` ISO dates, both inclusive, in the site time zone; default the last 30 days."""
    tz = timezone.get_current_timezone()
    today = timezone.localdate()
    start_date = _date(params.get("from")) or today - dt.timedelta(days=DEFAULT_DAYS - 1)
    end_date = _date(params.get("to")) or today
    if end_date < start_date:
        start_date, end_date = end_date, start_date
    start = dt.datetime.combine(start_date, dt.time.min, tzinfo=tz)
    end = dt.datetime.combine(end_date + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
    return Window_(start, end)


def _date(value) -> dt.date | None:
    if not value:
        return None
    try:
        return parse_date(str(value))
    except ValueError:
        return None


def median(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile: the smallest value with at least p% of values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def _stats(seconds: list[float]) -> dict[str, Any]:
    return {"count": len(seconds), "median_seconds": median(seconds), "p90_seconds": percentile(seconds, 90)}


def _period_key(value: dt.datetime, period: str) -> str:
    local = timezone.localtime(value)
    if period == "day":
        return local.date().isoformat()
    if period == "week":
        monday = local.date() - dt.timedelta(days=local.weekday())
        return monday.isoformat()
    return local.strftime("%Y-%m")


def _without_jit(report):
    """Run a report with PostgreSQL's JIT compiler off. The per-conversation queries carry
    correlated subqueries whose cost estimates exceed `jit_above_cost`, and compiling them
    took 0.8–1.5 s per query on the 1M-message benchmark while the compiled plans ran no
    faster (EXPLAIN ANALYZE, docs/metrics.md → Performance). `SET LOCAL` ends with the
    transaction, so pooled connections keep the server default."""

    @functools.wraps(report)
    def run(*args, **kwargs):
        if connection.vendor != "postgresql":
            return report(*args, **kwargs)
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL jit = off")
            return report(*args, **kwargs)

    return run


# --- Business hours -----------------------------------------------------------------------


@dataclass(frozen=True)
class BusinessHours:
    day_start: dt.time
    day_end: dt.time
    weekdays: frozenset[int]

    def seconds_between(self, start: dt.datetime, end: dt.datetime) -> float:
        """Seconds of [start, end) that fall inside business hours, in the site time zone."""
        if end <= start:
            return 0.0
        tz = timezone.get_current_timezone()
        local_start, local_end = start.astimezone(tz), end.astimezone(tz)
        total = 0.0
        day = local_start.date()
        while day <= local_end.date():
            if day.weekday() in self.weekdays:
                open_at = dt.datetime.combine(day, self.day_start, tzinfo=tz)
                close_at = dt.datetime.combine(day, self.day_end, tzinfo=tz)
                overlap = (min(close_at, local_end) - max(open_at, local_start)).total_seconds()
                total += max(0.0, overlap)
            day += dt.timedelta(days=1)
        return total


def business_hours() -> BusinessHours:
    from journeys.services import journey_settings

    config = journey_settings()
    return BusinessHours(config.business_day_start, config.business_day_end, config.weekday_set)


def _measure(hours: str):
    if hours == "business":
        calendar = business_hours()
        return calendar.seconds_between
    return lambda start, end: (end - start).total_seconds()


# --- Service KPIs -------------------------------------------------------------------------


def _segment_ids(customers) -> Any:
    return customers.values("pk") if customers is not None else None


def _first_response_queryset(*, window: Window_, customers=None):
    customer_messages = Message.objects.filter(
        conversation=OuterRef("pk"), direction=MessageDirection.INBOUND, sender=MessageSender.CUSTOMER
    ).order_by("created_at", "id")
    replies = Message.objects.filter(
        conversation=OuterRef("pk"), direction=MessageDirection.OUTBOUND, sender=MessageSender.AGENT,
        private=False, author__isnull=False, created_at__gte=OuterRef("first_in"),
    ).order_by("created_at", "id")
    latest_first = customer_messages.order_by("-created_at", "-id")
    # Only conversations that can have their first customer message in the window: active
    # since its start (last_message_at ≥ first_in) and created before its end (a day's slack
    # for provider timestamps older than the row). Without this every conversation ever made
    # ran the subqueries below (6 s of a 90-day report on 200k conversations).
    rows = Conversation.objects.filter(
        Q(last_message_at__gte=window.start) | Q(last_message_at__isnull=True),
        created_at__lt=window.end + dt.timedelta(days=1),
    ).annotate(
        first_in=Subquery(customer_messages.values("created_at")[:1]),
        first_in_inbox=Subquery(customer_messages.values("inbox_id")[:1]),
        first_in_channel=Subquery(customer_messages.values("inbox__kind")[:1]),
        first_reply=Subquery(replies.values("created_at")[:1]),
        first_reply_agent=Subquery(replies.values("author_id")[:1]),
        # For web-chat abandonment: the visitor's last message before the first reply, and
        # their last message at all (when nobody replied).
        last_in_before_reply=Subquery(latest_first.filter(created_at__lt=OuterRef("first_reply")).values("created_at")[:1]),
        last_in=Subquery(latest_first.values("created_at")[:1]),
        wrote_after_reply=Exists(customer_messages.filter(created_at__gt=OuterRef("first_reply"))),
    ).filter(first_in__gte=window.start, first_in__lt=window.end)
    if customers is not None:
        rows = rows.filter(customer_id__in=_segment_ids(customers))
    return rows


def first_responses(*, window: Window_, customers=None) -> list[dict[str, Any]]:
    """One row per conversation whose first customer message falls in the window: when the
    customer first wrote, when an agent first replied after it (bots, auto-replies, system
    messages and private notes do not count), and the channel/inbox/agent/team.
    `customers` (a Customer queryset, e.g. a segment) limits the conversations."""
    return list(
        _first_response_queryset(window=window, customers=customers).values(
            "pk", "team_id", "first_in", "first_in_inbox", "first_in_channel", "first_reply", "first_reply_agent",
            "last_in_before_reply", "last_in", "wrote_after_reply",
        )
    )


def _resolution_queryset(*, window: Window_, customers=None):
    in_cycle_replies = Message.objects.filter(
        conversation=OuterRef("conversation_id"), direction=MessageDirection.OUTBOUND, sender=MessageSender.AGENT,
        private=False, author__isnull=False, created_at__gte=OuterRef("cycle_started_at"), created_at__lte=OuterRef("resolved_at"),
    )
    later_resolutions = ConversationResolution.objects.filter(
        conversation=OuterRef("conversation_id"), resolved_at__gt=OuterRef("resolved_at")
    ).order_by("resolved_at", "id")
    later_customer_messages = Message.objects.filter(
        conversation=OuterRef("conversation_id"), direction=MessageDirection.INBOUND, sender=MessageSender.CUSTOMER,
        created_at__gt=OuterRef("resolved_at"),
    ).order_by("created_at", "id")
    rows = ConversationResolution.objects.filter(resolved_at__gte=window.start, resolved_at__lt=window.end).annotate(
        channel=F("inbox__kind"),
        reopened=~Q(conversation__resolved_at=F("resolved_at")) | Q(conversation__resolved_at__isnull=True),
        agent_replies=Coalesce(
            Subquery(in_cycle_replies.order_by().values("conversation_id").annotate(n=Count("id")).values("n")[:1]), 0
        ),
        reply_author=Subquery(in_cycle_replies.order_by("created_at", "id").values("author_id")[:1]),
        next_cycle_start=Subquery(later_resolutions.values("cycle_started_at")[:1]),
        next_customer_message=Subquery(later_customer_messages.values("created_at")[:1]),
    )
    if customers is not None:
        rows = rows.filter(conversation__customer_id__in=_segment_ids(customers))
    return rows


def resolution_cycles(*, window: Window_, customers=None) -> list[dict[str, Any]]:
    """One row per resolution (cycle) in the window, with whether the conversation was
    reopened afterwards (its current resolution is not this one), the agent replies inside
    the cycle and when the conversation was reopened (for first contact resolution)."""
    return list(
        _resolution_queryset(window=window, customers=customers).values(
            "conversation_id", "cycle_started_at", "resolved_at", "inbox_id", "channel", "assignee_id", "team_id",
            "reopened", "is_reopen", "agent_replies", "reply_author", "next_cycle_start", "next_customer_message",
        )
    )


def reopened_at(row: dict[str, Any]) -> dt.datetime | None:
    """When a resolution was reopened: the start of the next cycle, else the first customer
    message after it; a reopen by hand with neither counts from the resolution itself."""
    if not row["reopened"]:
        return None
    candidates = [v for v in (row.get("next_cycle_start"), row.get("next_customer_message")) if v is not None]
    return min(candidates) if candidates else row["resolved_at"]


def fcr_outcome(row: dict[str, Any], *, reopen_days: int) -> bool | None:
    """First contact resolution of a conversation's FIRST resolution cycle (docs/metrics.md):
    None when not counted (a later cycle, or resolved without any agent reply); True when
    resolved with exactly one agent reply, by the agent it was assigned to at resolution, and
    not reopened within `reopen_days`; else False."""
    if row["is_reopen"] or not row["agent_replies"]:
        return None
    if row["agent_replies"] > 1:
        return False
    if row["assignee_id"] is not None and row["reply_author"] != row["assignee_id"]:
        return False  # transferred: resolved by someone other than the agent who answered
    when = reopened_at(row)
    return not (when is not None and when - row["resolved_at"] <= dt.timedelta(days=reopen_days))


def abandonment_outcome(row: dict[str, Any], *, threshold: dt.timedelta, now: dt.datetime) -> bool | None:
    """Web-chat abandonment of one conversation (docs/metrics.md): True when the visitor's
    last message before the first agent reply went unanswered for longer than `threshold`
    and the visitor never wrote again after that reply (they had left), or when nobody has
    replied for longer than `threshold`; None while still inside the threshold with no
    reply; None for other channels."""
    if row.get("first_in_channel") != InboxKind.WEBCHAT:
        return None
    if row["first_reply"] is not None:
        waited_from = row["last_in_before_reply"] or row["first_in"]
        return row["first_reply"] - waited_from > threshold and not row["wrote_after_reply"]
    last = row["last_in"] or row["first_in"]
    return True if now - last > threshold else None


def _keys(row: dict[str, Any], group_by: str, *, channel: str, inbox: str, agent: str, time: str, period: str,
          labels: dict[int, list[int]] | None = None, conversation: str = "pk") -> list[Any]:
    if group_by == "label":
        return (labels or {}).get(row[conversation]) or [None]
    return [_key(row, group_by, channel=channel, inbox=inbox, agent=agent, time=time, period=period)]


def _key(row: dict[str, Any], group_by: str, *, channel: str, inbox: str, agent: str, time: str, period: str) -> Any:
    if group_by == "channel":
        return row.get(channel) or ""
    if group_by == "inbox":
        return row.get(inbox)
    if group_by == "agent":
        return row.get(agent)
    if group_by == "team":
        return row.get("team_id")
    if group_by == "period":
        return _period_key(row[time], period)
    return "all"


def conversation_label_ids(*, conversation_ids) -> dict[int, list[int]]:
    """Label ids per conversation (current labels), one query; `conversation_ids` may be a
    subquery."""
    through = Conversation.labels.through
    out: dict[int, list[int]] = defaultdict(list)
    for conversation_id, label_id in (
        through.objects.filter(conversation_id__in=conversation_ids).order_by("label_id").values_list("conversation_id", "label_id")
    ):
        out[conversation_id].append(label_id)
    return out


FRT_KEYS = {"channel": "first_in_channel", "inbox": "first_in_inbox", "agent": "first_reply_agent", "time": "first_in"}
CYCLE_KEYS = {"channel": "channel", "inbox": "inbox_id", "agent": "assignee_id", "time": "resolved_at", "conversation": "conversation_id"}


@_without_jit
def service_report(
    *, window: Window_, group_by: str = "", period: str = "month", hours: str = "calendar", customers=None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """First response and resolution time (median, p90), reopen rate, first contact
    resolution, web-chat abandonment, SLA breaches, per-channel volume and channel switches;
    grouped by channel, inbox, agent, team, label or period. `hours="business"` counts only
    the time inside business hours (JourneySettings) for the durations; SLA targets use the
    hours their policy names. `customers` (e.g. a segment's customers) limits everything."""
    from journeys.services import journey_settings
    from journeys.sla import SlaPolicies, breach_summary, breached

    now = now or timezone.now()
    config = journey_settings()
    frt_rows = first_responses(window=window, customers=customers)
    cycles = resolution_cycles(window=window, customers=customers)
    measure = _measure(hours)
    calendar = BusinessHours(config.business_day_start, config.business_day_end, config.weekday_set)
    measures = {"calendar": lambda a, b: (b - a).total_seconds(), "business": calendar.seconds_between}
    policies = SlaPolicies.load()
    threshold = dt.timedelta(minutes=config.webchat_abandon_minutes)
    for row in frt_rows:
        row["abandoned"] = abandonment_outcome(row, threshold=threshold, now=now)
        target = policies.target(inbox_id=row["first_in_inbox"], team_id=row["team_id"], kind="first_response")
        row["frt_breached"] = breached(target=target, start=row["first_in"], end=row["first_reply"], now=now, measures=measures)
    for row in cycles:
        row["fcr"] = fcr_outcome(row, reopen_days=config.fcr_reopen_days)
        target = policies.target(inbox_id=row["inbox_id"], team_id=row["team_id"], kind="resolution")
        row["resolution_breached"] = breached(target=target, start=row["cycle_started_at"], end=row["resolved_at"], now=now, measures=measures)
    fcr_settled_before = now - dt.timedelta(days=config.fcr_reopen_days)

    def frt_seconds(rows):
        return [measure(r["first_in"], r["first_reply"]) for r in rows if r["first_reply"]]

    def cycle_seconds(rows):
        return [measure(r["cycle_started_at"], r["resolved_at"]) for r in rows]

    def summary_for(frt, cyc) -> dict[str, Any]:
        fcr = [r for r in cyc if r["fcr"] is not None]
        fcr_yes = sum(1 for r in fcr if r["fcr"])
        webchat = [r for r in frt if r["first_in_channel"] == InboxKind.WEBCHAT]
        decided = [r for r in webchat if r["abandoned"] is not None]
        abandoned = sum(1 for r in decided if r["abandoned"])
        return {
            "conversations": len(frt),
            "unanswered": sum(1 for r in frt if not r["first_reply"]),
            "first_response": _stats(frt_seconds(frt)),
            "resolution": _stats(cycle_seconds(cyc)),
            "resolutions": len(cyc),
            "reopened": sum(1 for r in cyc if r["reopened"]),
            "reopen_rate": (sum(1 for r in cyc if r["reopened"]) / len(cyc)) if cyc else None,
            "fcr": {
                "eligible": len(fcr), "resolved_first_contact": fcr_yes, "rate": (fcr_yes / len(fcr)) if fcr else None,
                "provisional": sum(1 for r in fcr if r["fcr"] and r["resolved_at"] > fcr_settled_before),
            },
            "webchat_abandonment": {
                "conversations": len(webchat), "decided": len(decided), "abandoned": abandoned,
                "rate": (abandoned / len(decided)) if decided else None,
            },
            "sla": {
                "first_response": breach_summary([r["frt_breached"] for r in frt]),
                "resolution": breach_summary([r["resolution_breached"] for r in cyc]),
            },
        }

    body: dict[str, Any] = {
        "period_from": window.start,
        "period_to": window.end,
        "group_by": group_by,
        "hours": hours,
        "summary": summary_for(frt_rows, cycles),
        "rows": [],
    }
    body["summary"]["channels"] = channel_volume(window=window, customers=customers)
    body["summary"]["channel_switches"] = channel_switches(window=window, customers=customers)
    if group_by:
        labels = None
        if group_by == "label":
            labels = conversation_label_ids(conversation_ids=_ids_subquery(window, customers))
        frt_groups: dict[Any, list] = defaultdict(list)
        cycle_groups: dict[Any, list] = defaultdict(list)
        for row in frt_rows:
            for key in _keys(row, group_by, period=period, labels=labels, **FRT_KEYS):
                frt_groups[key].append(row)
        for row in cycles:
            for key in _keys(row, group_by, period=period, labels=labels, **CYCLE_KEYS):
                cycle_groups[key].append(row)
        keys = sorted(set(frt_groups) | set(cycle_groups), key=lambda k: (k is None, str(k)))
        names = group_labels(group_by=group_by, keys=keys)
        body["rows"] = [
            {"key": key, "label": names.get(key, str(key) if key is not None else "—"), **summary_for(frt_groups[key], cycle_groups[key])}
            for key in keys
        ]
    return body


def _ids_subquery(window: Window_, customers=None) -> Q:
    """Conversations with a first customer message or a resolution in the window."""
    first_in = Message.objects.filter(
        conversation=OuterRef("pk"), direction=MessageDirection.INBOUND, sender=MessageSender.CUSTOMER
    ).order_by("created_at", "id").values("created_at")[:1]
    resolved = ConversationResolution.objects.filter(
        conversation=OuterRef("pk"), resolved_at__gte=window.start, resolved_at__lt=window.end
    )
    rows = Conversation.objects.annotate(first_in=Subquery(first_in)).filter(
        Q(first_in__gte=window.start, first_in__lt=window.end) | Q(Exists(resolved))
    )
    if customers is not None:
        rows = rows.filter(customer_id__in=_segment_ids(customers))
    return rows.values("pk")


@_without_jit
def conversations_behind(*, window: Window_, group_by: str, key: str, period: str = "month", limit: int = 500,
                         customers=None) -> list[dict[str, Any]]:
    """The conversations counted in one row of `service_report` (first responses and
    resolution cycles of that group), for drill-down. `key` is the row key as text."""
    labels = conversation_label_ids(conversation_ids=_ids_subquery(window, customers)) if group_by == "label" else None

    def matches(row, **names) -> bool:
        values = _keys(row, group_by, period=period, labels=labels, **names)
        return any(("" if value is None else str(value)) == key for value in values)

    out: dict[int, dict[str, Any]] = {}
    for row in first_responses(window=window, customers=customers):
        if matches(row, **FRT_KEYS):
            out[row["pk"]] = {
                "conversation": row["pk"], "first_in": row["first_in"], "first_reply": row["first_reply"],
                "first_response_seconds": (row["first_reply"] - row["first_in"]).total_seconds() if row["first_reply"] else None,
                "resolutions": 0, "resolution_seconds": None, "reopened": False,
            }
    for row in resolution_cycles(window=window, customers=customers):
        if matches(row, **CYCLE_KEYS):
            item = out.setdefault(row["conversation_id"], {
                "conversation": row["conversation_id"], "first_in": None, "first_reply": None,
                "first_response_seconds": None, "resolutions": 0, "resolution_seconds": None, "reopened": False,
            })
            item["resolutions"] += 1
            item["resolution_seconds"] = (item["resolution_seconds"] or 0) + (row["resolved_at"] - row["cycle_started_at"]).total_seconds()
            item["reopened"] = item["reopened"] or row["reopened"]
    return sorted(out.values(), key=lambda r: r["conversation"])[:limit]


def group_labels(*, group_by: str, keys: list[Any]) -> dict[Any, str]:
    """Human labels for group keys, one query per report."""
    from accounts.models import Team, User
    from channels_app.models import Inbox, Label

    ids = [k for k in keys if k not in (None, "")]
    if group_by == "channel":
        return {k: str(InboxKind(k).label) if k in InboxKind.values else (k or "—") for k in keys}
    if group_by == "inbox":
        return {pk: str(name) for pk, name in Inbox.objects.filter(pk__in=ids).values_list("pk", "name")}
    if group_by == "agent":
        return {pk: (name or email) for pk, name, email in User.objects.filter(pk__in=ids).values_list("pk", "full_name", "email")}
    if group_by == "team":
        return {pk: name for pk, name in Team.objects.filter(pk__in=ids).values_list("pk", "name")}
    if group_by == "label":
        return {pk: name for pk, name in Label.objects.filter(pk__in=ids).values_list("pk", "name")}
    return {k: str(k) for k in keys}


def channel_volume(*, window: Window_, customers=None) -> list[dict[str, Any]]:
    """Per channel: messages (inbound/outbound, private notes excluded) and conversations
    with at least one such message in the window. One grouped query."""
    messages = Message.objects.filter(created_at__gte=window.start, created_at__lt=window.end, private=False)
    if customers is not None:
        messages = messages.filter(conversation__customer_id__in=_segment_ids(customers))
    rows = (
        messages
        .values(channel=F("inbox__kind"))
        .annotate(
            messages=Count("id"),
            inbound=Count("id", filter=Q(direction=MessageDirection.INBOUND)),
            outbound=Count("id", filter=Q(direction=MessageDirection.OUTBOUND)),
            conversations=Count("conversation_id", distinct=True),
        )
        .order_by("-messages", "channel")
    )
    return list(rows)


def channel_switches(*, window: Window_, customers=None) -> dict[str, Any]:
    """Channel switches: a customer message on a different inbox than the customer's previous
    message in the same conversation (messages in the window). Returns the total, the number
    of conversations and the average per conversation."""
    customer_messages = Message.objects.filter(
        created_at__gte=window.start, created_at__lt=window.end,
        direction=MessageDirection.INBOUND, sender=MessageSender.CUSTOMER,
    )
    if customers is not None:
        customer_messages = customer_messages.filter(conversation__customer_id__in=_segment_ids(customers))
    conversations = customer_messages.values("conversation_id").distinct().count()
    switches = (
        customer_messages.annotate(
            previous_inbox=Window(Lag("inbox_id"), partition_by=[F("conversation_id")], order_by=[F("created_at").asc(), F("id").asc()])
        )
        .filter(previous_inbox__isnull=False)
        .exclude(previous_inbox=F("inbox_id"))
        .count()
    )
    return {
        "switches": switches,
        "conversations": conversations,
        "per_conversation": (switches / conversations) if conversations else None,
    }


# --- CSAT ---------------------------------------------------------------------------------


def csat_report(*, window: Window_, group_by: str = "", period: str = "month", customers=None) -> dict[str, Any]:
    """CSAT % (share of 4–5 among responses answered in the window), average rating, rating
    distribution, response rate (surveys sent in the window that were answered), and NPS
    (% promoters 9–10 − % detractors 0–6 among responses that answered the NPS question)."""
    responses = CsatResponse.objects.filter(responded_at__gte=window.start, responded_at__lt=window.end)
    surveys = CsatSurvey.objects.filter(sent_at__gte=window.start, sent_at__lt=window.end)
    if customers is not None:
        responses = responses.filter(customer_id__in=_segment_ids(customers))
        surveys = surveys.filter(customer_id__in=_segment_ids(customers))
    aggregates = {
        "responses": Count("id"),
        "satisfied": Count("id", filter=Q(rating__gte=4)),
        "average": Avg("rating"),
        "nps_answers": Count("id", filter=Q(nps__isnull=False)),
        "promoters": Count("id", filter=Q(nps__gte=9)),
        "detractors": Count("id", filter=Q(nps__lte=6)),
        **{f"rating_{n}": Count("id", filter=Q(rating=n)) for n in range(1, 6)},
    }
    survey_aggregates = {"sent": Count("id"), "answered": Count("id", filter=Q(response__isnull=False))}

    def finish(values: dict[str, Any], sent: dict[str, Any]) -> dict[str, Any]:
        total = values.get("responses") or 0
        sent_n = sent.get("sent") or 0
        return {
            "responses": total,
            "satisfied": values.get("satisfied") or 0,
            "csat_percent": (100.0 * values["satisfied"] / total) if total else None,
            "average_rating": values.get("average"),
            "distribution": {str(n): values.get(f"rating_{n}") or 0 for n in range(1, 6)},
            "surveys_sent": sent_n,
            "surveys_answered": sent.get("answered") or 0,
            "response_rate": (sent.get("answered", 0) / sent_n) if sent_n else None,
            "nps_answers": values.get("nps_answers") or 0,
            "nps": (100.0 * (values["promoters"] - values["detractors"]) / values["nps_answers"])
            if values.get("nps_answers") else None,
        }

    body: dict[str, Any] = {
        "period_from": window.start,
        "period_to": window.end,
        "group_by": group_by,
        "summary": finish(responses.aggregate(**aggregates), surveys.aggregate(**survey_aggregates)),
        "rows": [],
    }
    body["summary"]["campaign_nps"] = _campaign_nps(window=window, customers=customers)
    if group_by:
        field = {
            "channel": "survey__inbox__kind", "inbox": "survey__inbox_id", "agent": "survey__assignee_id",
            "team": "survey__team_id", "period": "bucket", "label": "survey__conversation__labels",
        }[group_by]
        survey_field = field.replace("survey__", "", 1)
        if group_by == "period":
            responses = responses.annotate(bucket=TRUNC[period]("responded_at"))
            surveys = surveys.annotate(bucket=TRUNC[period]("sent_at"))
        by_key = {row[field]: row for row in responses.values(field).annotate(**aggregates).order_by(field)}
        sent_by_key = {row[survey_field]: row for row in surveys.values(survey_field).annotate(**survey_aggregates).order_by(survey_field)}
        keys = sorted(set(by_key) | set(sent_by_key), key=lambda k: (k is None, str(k)))
        labels = group_labels(group_by=group_by, keys=keys) if group_by != "period" else {}
        rows = []
        for key in keys:
            label = labels.get(key) if group_by != "period" else _period_key(key, period) if key else "—"
            rows.append({"key": key if group_by != "period" else label, "label": label or "—",
                         **finish(by_key.get(key, {}), sent_by_key.get(key, {}))})
        body["rows"] = rows
    return body


def _campaign_nps(*, window: Window_, customers=None) -> dict[str, Any]:
    """NPS of campaign surveys (to a segment) answered in the window."""
    from journeys.models import NpsSurvey
    from journeys.nps import nps_summary

    surveys = NpsSurvey.objects.filter(answered_at__gte=window.start, answered_at__lt=window.end)
    if customers is not None:
        surveys = surveys.filter(customer_id__in=_segment_ids(customers))
    return nps_summary(surveys)


# --- Lifecycle funnel ---------------------------------------------------------------------


COHORT_MONTHS = (1, 3, 6)


def _months(window: Window_) -> list[tuple[str, dt.datetime, dt.datetime]]:
    """(key "YYYY-MM", start, end) of each site-time-zone month the window touches, clipped
    to the window."""
    tz = timezone.get_current_timezone()
    out = []
    first = timezone.localtime(window.start).date().replace(day=1)
    while True:
        month_start = max(dt.datetime.combine(first, dt.time.min, tzinfo=tz), window.start)
        if month_start >= window.end:
            return out
        following = (first + dt.timedelta(days=32)).replace(day=1)
        month_end = min(dt.datetime.combine(following, dt.time.min, tzinfo=tz), window.end)
        out.append((first.strftime("%Y-%m"), month_start, month_end))
        first = following


def _forward_into(stage: str) -> Q:
    """A change into `stage` from an earlier stage (explicit moves back do not "enter" it)."""
    return Q(to_stage=stage, from_stage__in=STAGES[: STAGES.index(stage)])


def _in_window(field: str, window: Window_) -> Q:
    return Q(**{f"{field}__gte": window.start, f"{field}__lt": window.end})


@_without_jit
def funnel_report(*, window: Window_, group_by: str = "", customers=None) -> dict[str, Any]:
    """Customers entering each stage in the window (Reach: profiles created; other stages:
    their first forward stage change to it), the share of those who went on to a later stage
    (by now), and the median time from entering one stage to entering the next.
    `group_by="channel"` splits by first-touch channel of the stage entry.

    One query builds each touched customer's first entry per stage (grouped by customer) and
    the database aggregates over it (counts, medians, cohorts): no per-customer row reaches
    Python."""
    forward = StageChange.objects.filter(customer__merged_into__isnull=True)
    entries = (
        forward.values("customer_id")
        .annotate(
            reach=Min("customer__created_at"),
            **{stage: Min("changed_at", filter=_forward_into(stage)) for stage in STAGES[1:]},
        )
    )
    entered_reach = Customer.objects.filter(merged_into__isnull=True, created_at__gte=window.start, created_at__lt=window.end)
    if customers is not None:
        forward = forward.filter(customer_id__in=_segment_ids(customers))
        entries = entries.filter(customer_id__in=_segment_ids(customers))
        entered_reach = entered_reach.filter(pk__in=_segment_ids(customers))
    # Customers created or changing stage in the window; their entries over all time (a
    # filter on the change rows themselves would hide entries outside the window).
    touched = StageChange.objects.filter(changed_at__gte=window.start, changed_at__lt=window.end).values("customer_id")
    entries = entries.filter(Q(customer_id__in=entered_reach.values("pk")) | Q(customer_id__in=touched))

    aggregates: dict[str, Any] = {}
    for index, stage in enumerate(STAGES):
        entered_in_window = _in_window(stage, window)
        if stage != LifecycleStage.REACH:
            aggregates[f"{stage}__entered"] = Count("customer_id", filter=entered_in_window)
        later = STAGES[index + 1:]
        if not later:
            continue
        any_later = Q()
        for s in later:
            any_later |= Q(**{f"{s}__isnull": False})
        nxt = later[0]
        aggregates[f"{stage}__went_on"] = Count("customer_id", filter=entered_in_window & any_later)
        aggregates[f"{stage}__gap"] = Median(
            Seconds(F(nxt), F(stage)), filter=entered_in_window & Q(**{f"{nxt}__gte": F(stage)})
        )
    conversion, retention = LifecycleStage.CONVERSION, LifecycleStage.RETENTION
    months = _months(window)
    for key, month_start, month_end in months:
        cohort = Q(**{f"{conversion}__gte": month_start, f"{conversion}__lt": month_end})
        aggregates[f"cohort_{key}"] = Count("customer_id", filter=cohort)
        for n in COHORT_MONTHS:
            within = Q(**{f"{retention}__lte": F(conversion) + dt.timedelta(days=30 * n)})
            aggregates[f"cohort_{key}_{n}"] = Count("customer_id", filter=cohort & within)
    totals = entries.aggregate(**aggregates)

    stages_out = []
    for index, stage in enumerate(STAGES):
        entered = entered_reach.count() if stage == LifecycleStage.REACH else totals[f"{stage}__entered"]
        later = STAGES[index + 1:]
        gap = totals.get(f"{stage}__gap")
        stages_out.append({
            "stage": stage,
            "label": str(LifecycleStage(stage).label),
            "entered": entered,
            "went_on": totals.get(f"{stage}__went_on", 0),
            "conversion_rate": (totals[f"{stage}__went_on"] / entered) if (later and entered) else None,
            "median_seconds_to_next": float(gap) if gap is not None else None,
        })
    cohorts = []
    for key, _start, _end in months:
        converted = totals[f"cohort_{key}"]
        if converted:
            cohorts.append({"month": key, "converted": converted,
                            **{f"retained_{n}m": totals[f"cohort_{key}_{n}"] / converted for n in COHORT_MONTHS}})
    body: dict[str, Any] = {
        "period_from": window.start,
        "period_to": window.end,
        "group_by": group_by,
        "summary": {"stages": stages_out, "cohorts": cohorts},
        "rows": [],
    }
    if group_by == "channel":
        forward_any = Q()
        for stage in STAGES[1:]:
            forward_any |= _forward_into(stage)
        rows = (
            forward.filter(changed_at__gte=window.start, changed_at__lt=window.end)
            .filter(forward_any)
            .values("to_stage", "first_touch_channel")
            .annotate(customers=Count("customer_id", distinct=True))
            .order_by("first_touch_channel", "to_stage")
        )
        by_channel: dict[str, dict[str, int]] = defaultdict(lambda: {s: 0 for s in STAGES[1:]})
        for row in rows:
            if STAGE_ORDER.get(row["to_stage"], 0) > 0:
                by_channel[row["first_touch_channel"]][row["to_stage"]] = row["customers"]
        labels = group_labels(group_by="channel", keys=list(by_channel))
        body["rows"] = [{"key": key, "label": labels.get(key) or "—", **counts} for key, counts in sorted(by_channel.items())]
    return body
