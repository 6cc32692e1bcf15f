"""Service KPIs, CSAT and the lifecycle funnel, defined in docs/metrics.md.

Counts and averages are SQL aggregates. The funnel is aggregated entirely in the database
(medians with journeys.aggregates.Median: percentile_disc on PostgreSQL, a registered Python
aggregate on SQLite). The service KPIs aggregate the KPI facts (journeys.facts: one row per
conversation, per resolution cycle, per conversation × channel, per channel switch), brought
up to date at the start of each report, business-hours durations included
(journeys.aggregates.BusinessSeconds); on PostgreSQL groups and summary come from one
statement. See docs/metrics.md → Performance.
"""
from __future__ import annotations

import datetime as dt
import functools
import logging
import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.db.models import Avg, Count, Exists, F, Min, OuterRef, Q, Sum, Value
from django.db.models.functions import TruncDay, TruncMonth, TruncWeek
from django.utils import timezone
from django.utils.dateparse import parse_date

from channels_app.models import Conversation, InboxKind, Message, MessageDirection, MessageSender
from customers.models import Customer, LifecycleStage
from journeys.aggregates import BusinessSeconds, Median, PercentileDisc, Seconds
from journeys.models import (
    STAGE_ORDER,
    ChannelSwitch,
    ConversationChannelFact,
    ConversationFact,
    ConversationResolution,
    CsatResponse,
    CsatSurvey,
    HoursBasis,
    StageChange,
)

logger = logging.getLogger(__name__)

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
    """The business calendar of the KPI durations (Journey settings): the same opening hours on
    each business day, no holidays, in the current time zone (the site's, or the signed-in
    user's). SLA policies counted in business hours use it too."""

    day_start: dt.time
    day_end: dt.time
    weekdays: frozenset[int]

    def seconds_between(self, start: dt.datetime, end: dt.datetime, *, tz: dt.tzinfo | None = None) -> float:
        """Seconds of [start, end) that fall inside business hours, in wall-clock time of the
        current time zone (or `tz`). The reference definition: `seconds` computes the same in
        SQL."""
        if end <= start:
            return 0.0
        tz = tz or timezone.get_current_timezone()
        local_start, local_end = start.astimezone(tz), end.astimezone(tz)
        total = dt.timedelta(0)  # exact; one rounding to float at the end
        day = local_start.date()
        while day <= local_end.date():
            if day.weekday() in self.weekdays:
                open_at = dt.datetime.combine(day, self.day_start, tzinfo=tz)
                close_at = dt.datetime.combine(day, self.day_end, tzinfo=tz)
                # Aware datetimes with the same tzinfo subtract and compare as wall-clock times.
                overlap = min(close_at, local_end) - max(open_at, local_start)
                total += max(dt.timedelta(0), overlap)
            day += dt.timedelta(days=1)
        return total.total_seconds()

    def seconds(self, end, start) -> BusinessSeconds:
        """`seconds_between(start, end)` as a database expression, in the current time zone."""
        return BusinessSeconds(end, start, day_start=self.day_start, day_end=self.day_end, weekdays=self.weekdays,
                               tzname=timezone.get_current_timezone_name())


def business_hours() -> BusinessHours:
    from journeys.services import journey_settings

    return _calendar(journey_settings())


def _calendar(config) -> BusinessHours:
    return BusinessHours(config.business_day_start, config.business_day_end, config.weekday_set)


# --- Service KPIs -------------------------------------------------------------------------


def _segment_ids(customers) -> Any:
    return customers.values("pk") if customers is not None else None


def _refresh_facts() -> None:
    from journeys.facts import kpi_facts_refresh

    kpi_facts_refresh()


def _fact_rows(*, window: Window_, customers=None):
    """Conversations whose first customer message is in the window (journeys.facts)."""
    rows = ConversationFact.objects.filter(first_in__gte=window.start, first_in__lt=window.end)
    if customers is not None:
        rows = rows.filter(conversation__customer_id__in=_segment_ids(customers))
    return rows


def _cycle_rows(*, window: Window_, customers=None):
    """Resolution cycles that ended in the window, with their facts (journeys.facts)."""
    rows = ConversationResolution.objects.filter(resolved_at__gte=window.start, resolved_at__lt=window.end)
    if customers is not None:
        rows = rows.filter(conversation__customer_id__in=_segment_ids(customers))
    return rows


# Reopened: the conversation's current resolution is not this one (a flag database triggers
# keep, journeys/migrations/0010, so the report does not join every conversation).
NOT_REOPENED = Q(reopened=False)


def _first_responses(*, window: Window_, customers=None) -> list[dict[str, Any]]:
    rows = _fact_rows(window=window, customers=customers).values_list(
        "conversation_id", "conversation__team_id", "first_in", "first_in_inbox_id", "first_in_channel", "first_reply",
        "first_reply_agent_id", "reply_wait_from", "last_in", "wrote_after_reply",
    )
    names = ("pk", "team_id", "first_in", "first_in_inbox", "first_in_channel", "first_reply", "first_reply_agent",
             "last_in_before_reply", "last_in", "wrote_after_reply")
    return [dict(zip(names, row, strict=True)) for row in rows]


def first_responses(*, window: Window_, customers=None) -> list[dict[str, Any]]:
    """One row per conversation whose first customer message falls in the window: when the
    customer first wrote, when an agent first replied after it (bots, auto-replies, system
    messages and private notes do not count), and the channel/inbox/agent/team.
    `customers` (a Customer queryset, e.g. a segment) limits the conversations."""
    _refresh_facts()
    return _first_responses(window=window, customers=customers)


def _resolution_cycles(*, window: Window_, customers=None) -> list[dict[str, Any]]:
    rows = list(
        _cycle_rows(window=window, customers=customers)
        .annotate(channel=F("inbox__kind"))
        .values(
            "conversation_id", "cycle_started_at", "resolved_at", "inbox_id", "channel", "assignee_id", "team_id",
            "reopened", "is_reopen", "agent_replies", "next_cycle_start", "next_customer_message", "reply_author_id",
        )
    )
    for row in rows:
        row["reply_author"] = row.pop("reply_author_id")
    return rows


def resolution_cycles(*, window: Window_, customers=None) -> list[dict[str, Any]]:
    """One row per resolution (cycle) in the window, with whether the conversation was
    reopened afterwards (its current resolution is not this one), the agent replies inside
    the cycle and when the conversation was reopened (for first contact resolution)."""
    _refresh_facts()
    return _resolution_cycles(window=window, customers=customers)


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
    not reopened within `reopen_days`; else False. (The report computes the same in SQL:
    `_cycle_aggregates`.)"""
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
    reply; None for other channels. (The report computes the same in SQL: `_frt_aggregates`.)"""
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

# The group key of a fact row in SQL (the same keys as `_key` / `_keys` above).
FRT_GROUP = {"channel": "first_in_channel", "inbox": "first_in_inbox_id", "agent": "first_reply_agent_id",
             "team": "conversation__team_id", "label": "conversation__labels", "period": "first_in"}
CYCLE_GROUP = {"channel": "inbox__kind", "inbox": "inbox_id", "agent": "assignee_id", "team": "team_id",
               "label": "conversation__labels", "period": "resolved_at"}


def _group_expression(group_by: str, fields: dict[str, str], period: str):
    if group_by == "period":
        return TRUNC[period](fields["period"])
    return F(fields[group_by])


def _normal_key(value: Any, group_by: str, period: str) -> Any:
    if group_by == "channel":
        return value or ""
    if group_by == "period":
        return _period_key(value, period)
    return value


def _grouped(queryset, *, group_by: str, fields: dict[str, str], period: str, aggregates: dict[str, Any]
             ) -> tuple[dict[str, Any], dict[Any, dict[str, Any]]]:
    """(summary, {group key: values}): the aggregates over all rows and per group.

    PostgreSQL computes both in one statement (`GROUPING SETS`: the rows are read, joined and
    sorted once). Elsewhere (SQLite), when every row falls in exactly one group (any grouping
    but labels), the summary's counts are the sums of the groups' and only the percentiles are
    aggregated again. With labels a row can be in two groups, so the summary is its own query
    on every database."""
    groups: dict[Any, dict[str, Any]] = {}
    if not (group_by and aggregates):
        return (queryset.aggregate(**aggregates) if aggregates else {}), groups
    keyed = queryset.annotate(group_key=_group_expression(group_by, fields, period))
    both = _with_grouping_sets(keyed, aggregates) if connection.vendor == "postgresql" and group_by != "label" else None
    summary, rows = both or (None, keyed.values("group_key").annotate(**aggregates).order_by())
    for row in rows:
        groups[_normal_key(row.pop("group_key"), group_by, period)] = row
    if summary is not None:
        return summary, groups
    if group_by == "label":
        return queryset.aggregate(**aggregates), groups
    percentiles = {name: value for name, value in aggregates.items() if isinstance(value, Median | PercentileDisc)}
    summary = queryset.aggregate(**percentiles) if percentiles else {}
    for name in aggregates:
        if name not in percentiles:
            summary[name] = sum(group.get(name) or 0 for group in groups.values())
    return summary, groups


def _with_grouping_sets(keyed, aggregates: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """PostgreSQL: `keyed` (annotated with `group_key`) aggregated per group and over all rows in
    one statement. Django has no GROUPING SETS, so the ORM's own statement gets its GROUP BY
    replaced: `GROUP BY GROUPING SETS ((group_key, grouped), ())`, where `grouped` is a constant
    TRUE that the total row has as NULL (a group key may itself be NULL). None (and a warning)
    if the ORM's statement is not the shape this expects: the caller then runs two queries."""
    query = keyed.annotate(grouped=Value(True)).values("group_key", "grouped").annotate(**aggregates).order_by()
    compiler = query.query.get_compiler(using=query.db)
    sql, params = compiler.as_sql()
    head, _, group_by = sql.rpartition(" GROUP BY ")
    names = [alias for _expression, _sql, alias in compiler.select[:compiler.col_count]]
    # Positional GROUP BY of the key alone (PostgreSQL lets Django group by select index):
    # anything else means the statement is not the shape this rewrite knows.
    if group_by.strip() != "1" or names[:2] != ["group_key", "grouped"]:
        logger.warning("KPI report: unexpected grouped statement (… GROUP BY %s), not using GROUPING SETS", group_by)
        return None
    with connection.cursor() as cursor:
        cursor.execute(f"{head} GROUP BY GROUPING SETS ((1, 2), ())", params)
        rows = [dict(zip(names, row, strict=True)) for row in compiler.results_iter(results=[cursor.fetchall()])]
    summary = {}
    groups = []
    for row in rows:
        if row.pop("grouped") is None:
            summary = {name: row[name] for name in aggregates}
        else:
            groups.append(row)
    return summary, groups


def _sla_partitions(policies, *, kind: str, inbox: str, team: str) -> list[tuple[Q, Any]]:
    """Disjoint (rows, target) pairs: the rows each active policy applies to (the inbox's,
    else the team's, else the default; docs/metrics.md → SLA breaches) and that policy's
    target of `kind`, for targets that are set."""
    parts: list[tuple[Q, Any]] = []
    inbox_ids = sorted(policies.by_inbox)
    team_ids = sorted(policies.by_team)
    not_inbox = (Q(**{f"{inbox}__isnull": True}) | ~Q(**{f"{inbox}__in": inbox_ids})) if inbox_ids else Q()
    not_team = (Q(**{f"{team}__isnull": True}) | ~Q(**{f"{team}__in": team_ids})) if team_ids else Q()
    for inbox_id in inbox_ids:
        parts.append((Q(**{inbox: inbox_id}), policies.target(inbox_id=inbox_id, team_id=None, kind=kind)))
    for team_id in team_ids:
        parts.append((not_inbox & Q(**{team: team_id}), policies.target(inbox_id=None, team_id=team_id, kind=kind)))
    if policies.default is not None:
        parts.append((not_inbox & not_team, policies.target(inbox_id=None, team_id=None, kind=kind)))
    return [(rows, target) for rows, target in parts if target is not None]


def _any(conditions: list[Q]) -> Q | None:
    combined = None
    for condition in conditions:
        combined = condition if combined is None else combined | condition
    return combined


def _count(condition: Q | None):
    return Count("pk", filter=condition) if condition is not None else None


def _frt_durations(calendar: BusinessHours, now: dt.datetime) -> dict[str, Any]:
    """Durations of a conversation fact, as aliases for `_frt_aggregates`: first response in
    calendar and business seconds (the report's hours and an SLA policy's may differ), the
    web chat visitor's wait, and how long an unanswered conversation has waited so far in
    business seconds (for SLA targets in business hours)."""
    return {
        "frt": Seconds(F("first_reply"), F("first_in")),
        "frt_business": calendar.seconds(F("first_reply"), F("first_in")),
        "waited": Seconds(F("first_reply"), F("reply_wait_from")),
        "waiting_business": calendar.seconds(Value(now), F("first_in")),
    }


def _cycle_durations(calendar: BusinessHours) -> dict[str, Any]:
    """Durations of a resolution cycle, as aliases for `_cycle_aggregates`."""
    return {
        "cycle": Seconds(F("resolved_at"), F("cycle_started_at")),
        "cycle_business": calendar.seconds(F("resolved_at"), F("cycle_started_at")),
        "next_cycle_gap": Seconds(F("next_cycle_start"), F("resolved_at")),
        "next_message_gap": Seconds(F("next_customer_message"), F("resolved_at")),
    }


def _frt_aggregates(*, hours: str, now: dt.datetime, threshold: dt.timedelta, sla: list[tuple[Q, Any]],
                    durations: dict[str, Any]):
    replied = Q(first_reply__isnull=False)
    webchat = Q(first_in_channel=InboxKind.WEBCHAT)
    unanswered_gone = webchat & Q(first_reply__isnull=True, last_in__lt=now - threshold)
    breached, measured = [], []
    for rows, target in sla:
        if target.hours == HoursBasis.BUSINESS:
            late = Q(first_reply__isnull=True, waiting_business__gt=target.seconds)
            too_slow = Q(frt_business__gt=target.seconds)
        else:
            late = Q(first_reply__isnull=True, first_in__lt=now - dt.timedelta(seconds=target.seconds))
            too_slow = Q(frt__gt=target.seconds)
        breached.append(rows & ((replied & too_slow) | late))
        measured.append(rows & (replied | late))
    aggregates = {
        "conversations": Count("pk"),
        "unanswered": Count("pk", filter=~replied),
        "frt_count": Count("pk", filter=replied),
        "webchat": Count("pk", filter=webchat),
        "webchat_decided": Count("pk", filter=webchat & (replied | Q(last_in__lt=now - threshold))),
        "webchat_abandoned": Count("pk", filter=(webchat & replied & Q(wrote_after_reply=False, waited__gt=threshold.total_seconds()))
                                   | unanswered_gone),
        "sla_measured": _count(_any(measured)),
        "sla_breached": _count(_any(breached)),
        "frt_median": Median(durations[_duration("frt", hours)]),
        "frt_p90": PercentileDisc(durations[_duration("frt", hours)], 0.9),
    }
    return {name: value for name, value in aggregates.items() if value is not None}


def _cycle_aggregates(*, hours: str, now: dt.datetime, reopen_days: int, sla: list[tuple[Q, Any]],
                      durations: dict[str, Any]):
    window_seconds = reopen_days * 86400.0
    counted = Q(is_reopen=False, agent_replies__gt=0)
    # Not reopened within N days: not reopened at all, or reopened (next cycle / customer
    # message; a reopen by hand without either counts at the resolution itself) later than N days.
    reopened_later = (
        (Q(next_cycle_start__isnull=False) | Q(next_customer_message__isnull=False))
        & (Q(next_cycle_start__isnull=True) | Q(next_cycle_gap__gt=window_seconds))
        & (Q(next_customer_message__isnull=True) | Q(next_message_gap__gt=window_seconds))
    )
    first_contact = (
        counted & Q(agent_replies=1) & (Q(assignee__isnull=True) | Q(reply_author=F("assignee")))
        & (NOT_REOPENED | reopened_later)
    )
    aggregates = {
        "resolutions": Count("pk"),
        "not_reopened": Count("pk", filter=NOT_REOPENED),
        "fcr_eligible": Count("pk", filter=counted),
        "fcr_yes": Count("pk", filter=first_contact),
        "fcr_provisional": Count("pk", filter=first_contact & Q(resolved_at__gt=now - dt.timedelta(days=reopen_days))),
        "sla_measured": _count(_any([rows for rows, _target in sla])),
        "sla_breached": _count(_any([rows & Q(**{f"{_duration('cycle', target.hours)}__gt": target.seconds})
                                     for rows, target in sla])),
        "cycle_median": Median(durations[_duration("cycle", hours)]),
        "cycle_p90": PercentileDisc(durations[_duration("cycle", hours)], 0.9),
    }
    return {name: value for name, value in aggregates.items() if value is not None}


def _duration(name: str, hours: str) -> str:
    return f"{name}_business" if hours == HoursBasis.BUSINESS else name


def _rate(part: int, whole: int) -> float | None:
    return (part / whole) if whole else None


def _summary(frt: dict[str, Any], cyc: dict[str, Any]) -> dict[str, Any]:
    """The report's numbers of one group from the SQL aggregates (`frt`, `cyc`)."""
    frt_n, cyc_n = frt.get("conversations") or 0, cyc.get("resolutions") or 0
    reopened = cyc_n - (cyc.get("not_reopened") or 0)
    fcr_n, fcr_yes = cyc.get("fcr_eligible") or 0, cyc.get("fcr_yes") or 0
    decided, abandoned = frt.get("webchat_decided") or 0, frt.get("webchat_abandoned") or 0

    def sla(values: dict[str, Any]) -> dict[str, Any]:
        measured, breached_n = values.get("sla_measured") or 0, values.get("sla_breached") or 0
        return {"measured": measured, "breached": breached_n, "breach_rate": _rate(breached_n, measured)}

    return {
        "conversations": frt_n,
        "unanswered": frt.get("unanswered") or 0,
        "first_response": {"count": frt.get("frt_count") or 0, "median_seconds": _float(frt.get("frt_median")),
                           "p90_seconds": _float(frt.get("frt_p90"))},
        "resolution": {"count": cyc_n, "median_seconds": _float(cyc.get("cycle_median")),
                       "p90_seconds": _float(cyc.get("cycle_p90"))},
        "resolutions": cyc_n,
        "reopened": reopened,
        "reopen_rate": _rate(reopened, cyc_n),
        "fcr": {"eligible": fcr_n, "resolved_first_contact": fcr_yes, "rate": _rate(fcr_yes, fcr_n),
                "provisional": cyc.get("fcr_provisional") or 0},
        "webchat_abandonment": {"conversations": frt.get("webchat") or 0, "decided": decided, "abandoned": abandoned,
                                "rate": _rate(abandoned, decided)},
        "sla": {"first_response": sla(frt), "resolution": sla(cyc)},
    }


def _float(value: Any) -> float | None:
    return float(value) if value is not None else None


def service_report(
    *, window: Window_, group_by: str = "", period: str = "month", hours: str = "calendar", customers=None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """First response and resolution time (median, p90), reopen rate, first contact
    resolution, web-chat abandonment, SLA breaches, per-channel volume and channel switches;
    grouped by channel, inbox, agent, team, label or period. `hours="business"` counts only
    the time inside business hours (JourneySettings) for the durations; SLA targets use the
    hours their policy names. `customers` (e.g. a segment's customers) limits everything.

    Brings the KPI facts up to date first (one query when nothing changed), then aggregates
    them in the database, business hours included (`BusinessSeconds`); a fixed number of
    queries whatever the volume and the number of groups."""
    _refresh_facts()
    return _service_report(window=window, group_by=group_by, period=period, hours=hours, customers=customers, now=now)


@_without_jit
def _service_report(*, window: Window_, group_by: str, period: str, hours: str, customers, now) -> dict[str, Any]:
    from journeys.services import journey_settings
    from journeys.sla import SlaPolicies

    now = now or timezone.now()
    config = journey_settings()
    calendar = _calendar(config)
    policies = SlaPolicies.load()
    threshold = dt.timedelta(minutes=config.webchat_abandon_minutes)

    frt_durations = _frt_durations(calendar, now)
    cycle_durations = _cycle_durations(calendar)
    facts = _fact_rows(window=window, customers=customers).alias(**frt_durations)
    cycles = _cycle_rows(window=window, customers=customers).alias(**cycle_durations)
    frt_summary, frt_groups = _grouped(
        facts, group_by=group_by, fields=FRT_GROUP, period=period,
        aggregates=_frt_aggregates(hours=hours, now=now, threshold=threshold, durations=frt_durations, sla=_sla_partitions(
            policies, kind="first_response", inbox="first_in_inbox_id", team="conversation__team_id")),
    )
    cycle_summary, cycle_groups = _grouped(
        cycles, group_by=group_by, fields=CYCLE_GROUP, period=period,
        aggregates=_cycle_aggregates(hours=hours, now=now, reopen_days=config.fcr_reopen_days, durations=cycle_durations,
                                     sla=_sla_partitions(policies, kind="resolution", inbox="inbox_id", team="team_id")),
    )
    body: dict[str, Any] = {
        "period_from": window.start,
        "period_to": window.end,
        "group_by": group_by,
        "hours": hours,
        "summary": _summary(frt_summary, cycle_summary),
        "rows": [],
    }
    body["summary"]["channels"] = _channel_volume(window=window, customers=customers)
    body["summary"]["channel_switches"] = _channel_switches(window=window, customers=customers)
    if group_by:
        keys = sorted(set(frt_groups) | set(cycle_groups), key=lambda k: (k is None, str(k)))
        names = group_labels(group_by=group_by, keys=keys)
        body["rows"] = [
            {"key": key, "label": names.get(key, str(key) if key is not None else "—"),
             **_summary(frt_groups.get(key, {}), cycle_groups.get(key, {}))}
            for key in keys
        ]
    return body


def _ids_subquery(window: Window_, customers=None):
    """Conversations with a first customer message or a resolution in the window."""
    first_in = _fact_rows(window=window, customers=customers).values("conversation_id")
    resolved = _cycle_rows(window=window, customers=customers).values("conversation_id")
    return Conversation.objects.filter(Q(pk__in=first_in) | Q(pk__in=resolved)).values("pk")


def conversations_behind(*, window: Window_, group_by: str, key: str, period: str = "month", limit: int = 500,
                         customers=None) -> list[dict[str, Any]]:
    """The conversations counted in one row of `service_report` (first responses and
    resolution cycles of that group), for drill-down. `key` is the row key as text."""
    _refresh_facts()
    labels = conversation_label_ids(conversation_ids=_ids_subquery(window, customers)) if group_by == "label" else None

    def matches(row, **names) -> bool:
        values = _keys(row, group_by, period=period, labels=labels, **names)
        return any(("" if value is None else str(value)) == key for value in values)

    out: dict[int, dict[str, Any]] = {}
    for row in _first_responses(window=window, customers=customers):
        if matches(row, **FRT_KEYS):
            out[row["pk"]] = {
                "conversation": row["pk"], "first_in": row["first_in"], "first_reply": row["first_reply"],
                "first_response_seconds": (row["first_reply"] - row["first_in"]).total_seconds() if row["first_reply"] else None,
                "resolutions": 0, "resolution_seconds": None, "reopened": False,
            }
    for row in _resolution_cycles(window=window, customers=customers):
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
    with at least one such message in the window."""
    _refresh_facts()
    return _channel_volume(window=window, customers=customers)


def _channel_volume(*, window: Window_, customers=None) -> list[dict[str, Any]]:
    """From the per-(conversation, channel) facts: a pair whose first and last message are
    both in the window counts whole; the few pairs that cross a window edge are counted
    exactly from their messages (three queries, none scanning the message table)."""
    pairs = ConversationChannelFact.objects.filter(first_at__lt=window.end, last_at__gte=window.start)
    if customers is not None:
        pairs = pairs.filter(conversation__customer_id__in=_segment_ids(customers))
    totals: dict[str, dict[str, Any]] = {}

    def add(channel: str, inbound: int, outbound: int, conversations: int) -> None:
        row = totals.setdefault(channel, {"channel": channel, "messages": 0, "inbound": 0, "outbound": 0, "conversations": 0})
        row["inbound"] += inbound
        row["outbound"] += outbound
        row["messages"] += inbound + outbound
        row["conversations"] += conversations

    inside = pairs.filter(first_at__gte=window.start, last_at__lt=window.end)
    for row in inside.values("channel").annotate(n=Count("pk"), inbound_n=Sum("inbound"), outbound_n=Sum("outbound")).order_by():
        add(row["channel"], row["inbound_n"], row["outbound_n"], row["n"])
    crossing = pairs.filter(Q(first_at__lt=window.start) | Q(last_at__gte=window.end))
    crossing_pairs = set(crossing.values_list("conversation_id", "channel"))
    if crossing_pairs:
        exact = (
            Message.objects.filter(
                # The ids themselves, not a subquery: the planner cannot estimate how few pairs
                # cross an edge (first and last message are correlated) and scans every message.
                conversation_id__in=sorted({pk for pk, _channel in crossing_pairs}), private=False,
                created_at__gte=window.start, created_at__lt=window.end,
            )
            .values("conversation_id", channel=F("inbox__kind"))
            .annotate(inbound_n=Count("id", filter=Q(direction=MessageDirection.INBOUND)),
                      outbound_n=Count("id", filter=Q(direction=MessageDirection.OUTBOUND)))
            .order_by()
        )
        for row in exact:
            if (row["conversation_id"], row["channel"]) in crossing_pairs:
                add(row["channel"], row["inbound_n"], row["outbound_n"], 1)
    return sorted(totals.values(), key=lambda row: (-row["messages"], row["channel"]))


def channel_switches(*, window: Window_, customers=None) -> dict[str, Any]:
    """Channel switches: a customer message on a different inbox than the customer's previous
    message in the same conversation (messages in the window). Returns the total, the number
    of conversations and the average per conversation."""
    _refresh_facts()
    return _channel_switches(window=window, customers=customers)


def _channel_switches(*, window: Window_, customers=None) -> dict[str, Any]:
    # Both messages in the window: the switch in it, and the previous one not before its start.
    switches = ChannelSwitch.objects.filter(at__gte=window.start, at__lt=window.end, previous_at__gte=window.start)
    # Conversations with a customer message in the window: first and last customer message
    # inside it, or (crossing an edge) one found in the messages.
    facts = ConversationFact.objects.filter(first_in__lt=window.end, last_in__gte=window.start)
    if customers is not None:
        facts = facts.filter(conversation__customer_id__in=_segment_ids(customers))
        switches = switches.filter(conversation__customer_id__in=_segment_ids(customers))
    in_window = Message.objects.filter(
        conversation=OuterRef("conversation_id"), direction=MessageDirection.INBOUND, sender=MessageSender.CUSTOMER,
        created_at__gte=window.start, created_at__lt=window.end,
    )
    # One pass over the facts for both counts; the message probe only for the few crossing rows.
    counts = facts.aggregate(
        inside=Count("pk", filter=Q(first_in__gte=window.start, last_in__lt=window.end)),
        crossing=Count("pk", filter=(Q(first_in__lt=window.start) | Q(last_in__gte=window.end)) & Q(Exists(in_window))),
    )
    inside, crossing = counts["inside"], counts["crossing"]
    conversations = inside + crossing
    switched = switches.count()
    return {"switches": switched, "conversations": conversations,
            "per_conversation": (switched / conversations) if conversations else None}


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
