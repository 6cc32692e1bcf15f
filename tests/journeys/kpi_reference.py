"""The service KPI report computed row by row in Python: the reference the database path
(`journeys.kpis.service_report`) must equal exactly, JSON for JSON.

Every number comes from the definitions in docs/metrics.md applied to one row at a time — the
KPI facts (`kpis.first_responses`, `kpis.resolution_cycles`), `BusinessHours.seconds_between`,
`sla.breached`, `kpis.fcr_outcome`, `kpis.abandonment_outcome`, `kpis.median`/`percentile` —
and the per-channel volume and channel switches straight from the messages. This is how the
report computed business hours and SLA targets in business hours before they moved to SQL.
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from channels_app.models import Message, MessageDirection, MessageSender
from journeys import kpis
from journeys.services import journey_settings
from journeys.sla import SlaPolicies, breached

ALL = object()


class _Group:
    def __init__(self) -> None:
        self.conversations = self.unanswered = 0
        self.frt: list[float] = []
        self.cycles: list[float] = []
        self.resolutions = self.reopened = 0
        self.fcr_eligible = self.fcr_yes = self.fcr_provisional = 0
        self.webchat = self.webchat_decided = self.webchat_abandoned = 0
        self.sla = {"first_response": [0, 0], "resolution": [0, 0]}

    def sla_add(self, kind: str, flag: bool | None) -> None:
        if flag is not None:
            self.sla[kind][0] += 1
            self.sla[kind][1] += int(flag)

    def body(self) -> dict[str, Any]:
        def rate(part: int, whole: int) -> float | None:
            return part / whole if whole else None

        def stats(values: list[float]) -> dict[str, Any]:
            return {"count": len(values), "median_seconds": kpis.median(values), "p90_seconds": kpis.percentile(values, 90)}

        def sla(kind: str) -> dict[str, Any]:
            measured, breached_n = self.sla[kind]
            return {"measured": measured, "breached": breached_n, "breach_rate": rate(breached_n, measured)}

        return {
            "conversations": self.conversations,
            "unanswered": self.unanswered,
            "first_response": stats(self.frt),
            "resolution": stats(self.cycles),
            "resolutions": self.resolutions,
            "reopened": self.reopened,
            "reopen_rate": rate(self.reopened, self.resolutions),
            "fcr": {"eligible": self.fcr_eligible, "resolved_first_contact": self.fcr_yes,
                    "rate": rate(self.fcr_yes, self.fcr_eligible), "provisional": self.fcr_provisional},
            "webchat_abandonment": {"conversations": self.webchat, "decided": self.webchat_decided,
                                    "abandoned": self.webchat_abandoned, "rate": rate(self.webchat_abandoned, self.webchat_decided)},
            "sla": {"first_response": sla("first_response"), "resolution": sla("resolution")},
        }


def service_report(*, window: kpis.Window_, group_by: str = "", period: str = "month", hours: str = "calendar",
                   customers=None, now: dt.datetime) -> dict[str, Any]:
    config = journey_settings()
    calendar = kpis.business_hours()
    measures = {"calendar": lambda start, end: (end - start).total_seconds(), "business": calendar.seconds_between}
    measure = measures[hours]
    policies = SlaPolicies.load()
    threshold = dt.timedelta(minutes=config.webchat_abandon_minutes)
    reopen_days = config.fcr_reopen_days
    frt_rows = kpis.first_responses(window=window, customers=customers)
    cycle_rows = kpis.resolution_cycles(window=window, customers=customers)
    labels = kpis.conversation_label_ids(conversation_ids=sorted(
        {row["pk"] for row in frt_rows} | {row["conversation_id"] for row in cycle_rows}))
    groups: dict[Any, _Group] = defaultdict(_Group)

    def targets(row: dict[str, Any], names: dict[str, str]) -> list[Any]:
        keys = kpis._keys(row, group_by, period=period, labels=labels, **names) if group_by else []
        return [ALL, *keys]

    for row in frt_rows:
        for key in targets(row, kpis.FRT_KEYS):
            group = groups[key]
            group.conversations += 1
            if row["first_reply"] is None:
                group.unanswered += 1
            else:
                group.frt.append(measure(row["first_in"], row["first_reply"]))
            if row["first_in_channel"] == "webchat":
                group.webchat += 1
                outcome = kpis.abandonment_outcome(row, threshold=threshold, now=now)
                group.webchat_decided += outcome is not None
                group.webchat_abandoned += outcome is True
            target = policies.target(inbox_id=row["first_in_inbox"], team_id=row["team_id"], kind="first_response")
            group.sla_add("first_response", breached(target=target, start=row["first_in"], end=row["first_reply"],
                                                     now=now, measures=measures))
    for row in cycle_rows:
        for key in targets(row, kpis.CYCLE_KEYS):
            group = groups[key]
            group.resolutions += 1
            group.reopened += row["reopened"]
            group.cycles.append(measure(row["cycle_started_at"], row["resolved_at"]))
            outcome = kpis.fcr_outcome(row, reopen_days=reopen_days)
            group.fcr_eligible += outcome is not None
            group.fcr_yes += outcome is True
            group.fcr_provisional += outcome is True and row["resolved_at"] > now - dt.timedelta(days=reopen_days)
            target = policies.target(inbox_id=row["inbox_id"], team_id=row["team_id"], kind="resolution")
            group.sla_add("resolution", breached(target=target, start=row["cycle_started_at"], end=row["resolved_at"],
                                                 now=now, measures=measures))

    summary = groups.pop(ALL, _Group()).body()
    summary["channels"] = channel_volume(window=window, customers=customers)
    summary["channel_switches"] = channel_switches(window=window, customers=customers)
    keys = sorted(groups, key=lambda k: (k is None, str(k)))
    names = kpis.group_labels(group_by=group_by, keys=keys) if group_by else {}
    return {
        "period_from": window.start, "period_to": window.end, "group_by": group_by, "hours": hours, "summary": summary,
        "rows": [{"key": key, "label": names.get(key, str(key) if key is not None else "—"), **groups[key].body()}
                 for key in keys],
    }


def _messages(window: kpis.Window_, customers):
    messages = Message.objects.filter(created_at__gte=window.start, created_at__lt=window.end)
    if customers is not None:
        messages = messages.filter(conversation__customer_id__in=customers.values("pk"))
    return messages


def channel_volume(*, window: kpis.Window_, customers=None) -> list[dict[str, Any]]:
    totals: dict[str, dict[str, Any]] = {}
    conversations: dict[str, set[int]] = defaultdict(set)
    for channel, direction, conversation_id in _messages(window, customers).filter(private=False).values_list(
            "inbox__kind", "direction", "conversation_id"):
        row = totals.setdefault(channel, {"channel": channel, "messages": 0, "inbound": 0, "outbound": 0, "conversations": 0})
        row["messages"] += 1
        row["inbound" if direction == MessageDirection.INBOUND else "outbound"] += 1
        conversations[channel].add(conversation_id)
    for channel, row in totals.items():
        row["conversations"] = len(conversations[channel])
    return sorted(totals.values(), key=lambda row: (-row["messages"], row["channel"]))


def channel_switches(*, window: kpis.Window_, customers=None) -> dict[str, Any]:
    """A customer message on another inbox than the customer's previous message in the same
    conversation, both in the window; per conversation with a customer message in the window."""
    from_customers = Message.objects.filter(direction=MessageDirection.INBOUND, sender=MessageSender.CUSTOMER)
    in_window = _messages(window, customers).filter(direction=MessageDirection.INBOUND, sender=MessageSender.CUSTOMER)
    conversations = set(in_window.values_list("conversation_id", flat=True))
    switches = 0
    previous: dict[int, tuple[int, dt.datetime]] = {}
    for conversation_id, inbox_id, at in from_customers.filter(conversation_id__in=conversations).order_by(
            "conversation_id", "created_at", "id").values_list("conversation_id", "inbox_id", "created_at"):
        before = previous.get(conversation_id)
        if before is not None and before[0] != inbox_id and window.start <= before[1] and window.start <= at < window.end:
            switches += 1
        previous[conversation_id] = (inbox_id, at)
    return {"switches": switches, "conversations": len(conversations),
            "per_conversation": switches / len(conversations) if conversations else None}
