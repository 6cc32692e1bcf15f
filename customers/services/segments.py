"""Segments: saved, validated filters over customers."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from accounts.models import User
from customers.models import (
    AttributeDefinition,
    LifecycleStage,
    Segment,
)

# --- Segments -----------------------------------------------------------------------------

SEGMENT_FILTER_KEYS = {
    "stage",
    "tags",
    "channel",
    "attributes",
    "last_contacted_within_days",
    "not_contacted_for_days",
    "q",
}


def segment_filters_clean(*, filters: dict) -> dict:
    if not isinstance(filters, dict):
        raise ValidationError({"filters": [_("Filters must be an object.")]})
    unknown = set(filters) - SEGMENT_FILTER_KEYS
    if unknown:
        raise ValidationError({"filters": [_("Unknown filter: %(keys)s") % {"keys": ", ".join(sorted(unknown))}]})
    cleaned = dict(filters)
    if "stage" in cleaned and cleaned["stage"] not in LifecycleStage.values:
        raise ValidationError({"filters": [_("stage: must be one of %(v)s") % {"v": ", ".join(LifecycleStage.values)}]})
    if "tags" in cleaned and not (
        isinstance(cleaned["tags"], list) and all(isinstance(t, str) for t in cleaned["tags"])
    ):
        raise ValidationError({"filters": [_("tags: must be a list of tag names")]})
    for key in ("last_contacted_within_days", "not_contacted_for_days"):
        if key in cleaned and not (isinstance(cleaned[key], int) and cleaned[key] > 0):
            raise ValidationError({"filters": [_("%(key)s: must be a positive whole number") % {"key": key}]})
    if "attributes" in cleaned:
        if not isinstance(cleaned["attributes"], dict):
            raise ValidationError({"filters": [_("attributes: must be an object of key: value")]})
        known = set(
            AttributeDefinition.objects.filter(key__in=list(cleaned["attributes"])).values_list("key", flat=True)
        )
        unknown_keys = sorted(set(cleaned["attributes"]) - known)
        if unknown_keys or any("__" in key for key in cleaned["attributes"]):
            raise ValidationError(
                {"filters": [_("attributes: unknown attribute %(keys)s") % {"keys": ", ".join(unknown_keys)}]}
            )
        if not all(isinstance(v, (str, int, float, bool)) for v in cleaned["attributes"].values()):
            raise ValidationError({"filters": [_("attributes: values must be text, numbers or true/false")]})
    return cleaned


@transaction.atomic
def segment_create(*, name: str, filters: dict, description: str = "", actor: User | None = None) -> Segment:
    segment = Segment(
        name=name.strip(), description=description, filters=segment_filters_clean(filters=filters), created_by=actor
    )
    segment.full_clean()
    segment.save()
    return segment
