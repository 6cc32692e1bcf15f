"""Maturity assessment reads: measured evidence, per-dimension medians, history."""
from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from django.db.models import Count, Q
from django.utils import timezone

from channels_app.models import Conversation, Message, MessageDirection, MessageSender
from customers.models import Customer, Identity, IdentityKind
from journeys import kpis
from journeys.maturity_grid import DIMENSIONS, EVIDENCE_FOR, LEVELS, text
from journeys.models import MaturityAssessment, MaturityScore

EVIDENCE_DAYS = 90
CONTACT_KINDS = [kind for kind in IdentityKind.values if kind != IdentityKind.EXTERNAL_ID]


def _share(part: int, whole: int) -> float | None:
    return (part / whole) if whole else None


def maturity_evidence(*, now: dt.datetime | None = None) -> dict[str, Any]:
    """What the platform measures itself (last 90 days where time matters). Aggregate
    queries only."""
    now = now or timezone.now()
    window = kpis.Window_(now - dt.timedelta(days=EVIDENCE_DAYS), now)
    previous = kpis.Window_(window.start - dt.timedelta(days=EVIDENCE_DAYS), window.start)
    live = Customer.objects.filter(merged_into__isnull=True, is_erased=False)
    customers = live.count()
    reachable = (
        Identity.objects.filter(customer__in=live, kind__in=CONTACT_KINDS)
        .values("customer_id").annotate(kinds=Count("kind", distinct=True)).filter(kinds__gte=2).count()
    )
    complete = live.exclude(display_name="").filter(
        Q(identities__kind=IdentityKind.PHONE) | Q(identities__kind=IdentityKind.EMAIL)
    ).distinct().count()
    recent = Conversation.objects.filter(created_at__gte=window.start, created_at__lt=window.end)
    spanning = recent.annotate(n=Count("inboxes", distinct=True)).filter(n__gte=2).count()
    channels_active = set(
        Message.objects.filter(created_at__gte=window.start, created_at__lt=window.end,
                               direction=MessageDirection.INBOUND, sender=MessageSender.CUSTOMER)
        .values_list("inbox__kind", flat=True).distinct()
    )
    channels_measured = {
        row["first_in_channel"] for row in kpis.first_responses(window=window) if row["first_reply"]
    }
    csat_now = kpis.csat_report(window=window)["summary"]
    csat_before = kpis.csat_report(window=previous)["summary"]
    return {
        "days": EVIDENCE_DAYS,
        "customers": customers,
        "reachable_on_two_channels": _share(reachable, customers),
        "profile_completeness": _share(complete, customers),
        "conversations": recent.count(),
        "conversations_spanning_channels": _share(spanning, recent.count()),
        "channels_active": sorted(channels_active),
        "kpi_channel_coverage": _share(len(channels_active & channels_measured), len(channels_active)),
        "csat_coverage": csat_now["response_rate"],
        "csat_percent": csat_now["csat_percent"],
        "csat_percent_previous": csat_before["csat_percent"],
    }


EVIDENCE_LABELS = {
    "reachable_on_two_channels": ("Customers reachable on 2+ channels", "Pelanggan yang terjangkau di 2+ kanal"),
    "profile_completeness": ("Profiles with a name and a phone or email", "Profil dengan nama dan telepon atau email"),
    "conversations_spanning_channels": ("Conversations that span channels", "Percakapan yang melintasi kanal"),
    "kpi_channel_coverage": ("Active channels with a measured first response", "Kanal aktif dengan waktu respons pertama terukur"),
    "csat_coverage": ("CSAT response rate", "Tingkat respons CSAT"),
    "csat_percent": ("CSAT (share of 4–5)", "CSAT (porsi nilai 4–5)"),
}


def _evidence_display(key: str, value: Any, language: str) -> dict[str, str]:
    en, id_ = EVIDENCE_LABELS[key]
    label = id_ if (language or "").startswith("id") else en
    if value is None:
        shown = "—"
    elif key == "csat_percent":
        shown = f"{value:.1f}%"
    else:
        shown = f"{value * 100:.1f}%"
    return {"key": key, "label": label, "value": shown}


def maturity_result(*, assessment: MaturityAssessment, language: str = "en") -> dict[str, Any]:
    """Per dimension: every assessor's level, the median level and median target, roadmap
    actions, guidance text and the measured evidence that belongs to it."""
    scores = list(assessment.scores.select_related("assessor").order_by("assessor_id"))
    by_dimension: dict[str, list[MaturityScore]] = defaultdict(list)
    for score in scores:
        by_dimension[score.dimension].append(score)
    assessors = sorted({s.assessor for s in scores}, key=lambda u: u.pk)
    rows = []
    for dimension in DIMENSIONS:
        items = by_dimension.get(dimension["code"], [])
        levels = {s.assessor_id: s.level for s in items}
        med = kpis.median([s.level for s in items])
        target = kpis.median([s.target_level for s in items if s.target_level])
        rows.append({
            "code": dimension["code"],
            "label": text(dimension, language),
            "scores": [levels.get(a.pk) for a in assessors],
            "median": med,
            "target": target,
            "median_label": text(LEVELS[int(med + 0.5) - 1], language) if med else "",
            "guidance": [text(level, language) for level in dimension["levels"]],
            "actions": [
                {"assessor": str(s.assessor), "horizon": s.get_horizon_display(), "text": s.actions}
                for s in items if s.actions
            ],
            "evidence": [
                _evidence_display(key, assessment.evidence.get(key), language)
                for key in EVIDENCE_FOR.get(dimension["code"], [])
            ],
        })
    return {"assessors": assessors, "rows": rows}


def maturity_history() -> list[dict[str, Any]]:
    """Median level per dimension for every assessment, oldest first (two queries)."""
    assessments = list(MaturityAssessment.objects.order_by("created_at", "id"))
    levels: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for assessment_id, dimension, level in MaturityScore.objects.values_list("assessment_id", "dimension", "level"):
        levels[assessment_id][dimension].append(level)
    return [
        {"assessment": a, "medians": [kpis.median(levels[a.pk].get(d["code"], [])) for d in DIMENSIONS]}
        for a in assessments
    ]
