"""SLA policies: which targets apply to a conversation, and whether a duration breached them.

Policies are loaded once per report (one query) and looked up in memory, so the number of
queries does not depend on the number of conversations.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from journeys.models import HoursBasis, SlaPolicy


@dataclass(frozen=True)
class Target:
    policy_id: int
    seconds: float
    hours: str


class SlaPolicies:
    """Active policies indexed by inbox, team and default; the most specific one applies."""

    def __init__(self, policies: list[SlaPolicy]):
        self.by_inbox = {p.inbox_id: p for p in policies if p.inbox_id}
        self.by_team = {p.team_id: p for p in policies if p.team_id}
        defaults = [p for p in policies if not p.inbox_id and not p.team_id]
        self.default = defaults[0] if defaults else None

    @classmethod
    def load(cls) -> SlaPolicies:
        return cls(list(SlaPolicy.objects.filter(is_active=True).order_by("id")))

    def policy_for(self, *, inbox_id: int | None, team_id: int | None) -> SlaPolicy | None:
        return self.by_inbox.get(inbox_id) or self.by_team.get(team_id) or self.default

    def target(self, *, inbox_id: int | None, team_id: int | None, kind: str) -> Target | None:
        policy = self.policy_for(inbox_id=inbox_id, team_id=team_id)
        if policy is None:
            return None
        minutes = policy.first_response_minutes if kind == "first_response" else policy.resolution_minutes
        if minutes is None:
            return None
        return Target(policy.pk, minutes * 60.0, policy.hours)


def breached(
    *,
    target: Target | None,
    start: dt.datetime | None,
    end: dt.datetime | None,
    now: dt.datetime,
    measures: dict[str, Callable[[dt.datetime, dt.datetime], float]],
) -> bool | None:
    """True/False once decided; None when no target applies or the clock is still running
    inside the target (not answered yet and not late yet)."""
    if target is None or start is None:
        return None
    measure = measures[target.hours if target.hours in measures else HoursBasis.CALENDAR]
    if end is not None:
        return measure(start, end) > target.seconds
    return True if measure(start, now) > target.seconds else None


def breach_summary(flags: list[bool | None]) -> dict[str, Any]:
    decided = [flag for flag in flags if flag is not None]
    breaches = sum(1 for flag in decided if flag)
    return {"measured": len(decided), "breached": breaches, "breach_rate": (breaches / len(decided)) if decided else None}
