"""Merge and unmerge: everything moves, and everything can go back."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import AuditEntry, User
from accounts.services import audit_record
from customers import events, merge_hooks
from customers.models import (
    Customer,
    CustomerConsent,
    CustomerMerge,
    MergeSuggestion,
    TimelineKind,
)
from customers.services.timeline import timeline_record

# --- Merge and unmerge --------------------------------------------------------------------

_FILLABLE_FIELDS = ("display_name", "language", "time_zone", "owner_agent_id", "owner_team_id")
_LATEST_FIELDS = ("last_seen_at", "last_contacted_at")


def _json_pk(pk: Any) -> Any:
    return pk if isinstance(pk, int) else str(pk)


def _json_value(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return value


def _from_json_value(name: str, value: Any) -> Any:
    if name in _LATEST_FIELDS and isinstance(value, str):
        return dt.datetime.fromisoformat(value)
    return value


@transaction.atomic
def customer_merge(
    *, survivor: Customer, merged: Customer, actor: User | None, reason: str = "", request=None
) -> CustomerMerge:
    """Merge `merged` into `survivor`: identities, notes, timeline, consents, tags,
    attributes and every registered foreign key (conversations, events, CSAT…) move over.

    The survivor wins conflicts; conflicts and everything moved are kept in the merge
    snapshot so `customer_unmerge` restores both profiles. Audited; emits
    `customers.customer.merged` on commit.
    """
    if survivor.pk == merged.pk:
        raise ValidationError({"source": [_("A customer cannot be merged into itself.")]})
    callers = (survivor, merged)
    locked = {c.pk: c for c in Customer.objects.select_for_update().filter(pk__in=[survivor.pk, merged.pk])}
    survivor, merged = locked[survivor.pk], locked[merged.pk]
    for customer, name in ((survivor, "target"), (merged, "source")):
        if customer.merged_into_id is not None:
            raise ValidationError(
                {name: [_("Customer #%(id)s was already merged into another profile.") % {"id": customer.pk}]}
            )
        if customer.is_erased:
            raise ValidationError({name: [_("Customer #%(id)s was erased.") % {"id": customer.pk}]})

    snapshot: dict[str, Any] = {
        "version": 1,
        "survivor_before": {name: _json_value(getattr(survivor, name)) for name in _FILLABLE_FIELDS + _LATEST_FIELDS},
        "filled": {},
        "attributes_added": {},
        "attribute_conflicts": {},
        "tags_added": [],
        "consent_conflicts": [],
        "moved": [],
    }
    update_fields = []
    for name in _FILLABLE_FIELDS:
        mine, theirs = getattr(survivor, name), getattr(merged, name)
        if not mine and theirs:
            setattr(survivor, name, theirs)
            snapshot["filled"][name] = theirs
            update_fields.append(name)
    for name in _LATEST_FIELDS:
        mine, theirs = getattr(survivor, name), getattr(merged, name)
        if theirs and (mine is None or theirs > mine):
            setattr(survivor, name, theirs)
            snapshot["filled"][name] = theirs.isoformat()
            update_fields.append(name)
    attributes = dict(survivor.attributes)
    for key, value in merged.attributes.items():
        if key not in attributes:
            attributes[key] = value
            snapshot["attributes_added"][key] = value
        elif attributes[key] != value:
            snapshot["attribute_conflicts"][key] = {"survivor": attributes[key], "merged": value}
    if attributes != survivor.attributes:
        survivor.attributes = attributes
        update_fields.append("attributes")
    if survivor.lifecycle_stage != merged.lifecycle_stage:
        snapshot["attribute_conflicts"]["lifecycle_stage"] = {
            "survivor": survivor.lifecycle_stage,
            "merged": merged.lifecycle_stage,
        }
    if update_fields:
        survivor.save(update_fields=[*update_fields, "updated_at"])

    survivor_tags = set(survivor.tags.values_list("pk", flat=True))
    added_tags = [pk for pk in merged.tags.values_list("pk", flat=True) if pk not in survivor_tags]
    survivor.tags.add(*added_tags)
    snapshot["tags_added"] = sorted(added_tags)

    survivor_channels = set(survivor.consents.values_list("channel", flat=True))
    movable_consents = []
    for consent in merged.consents.all():
        if consent.channel in survivor_channels:
            snapshot["consent_conflicts"].append({"channel": consent.channel, "merged_consent_id": consent.pk})
        else:
            movable_consents.append(consent.pk)
    CustomerConsent.objects.filter(pk__in=movable_consents).update(customer=survivor)
    snapshot["moved"].append({"model": "customers.CustomerConsent", "field": "customer", "ids": movable_consents})

    snapshot["participants"] = {}
    for participant in merge_hooks.participants():
        data = participant.prepare(survivor=survivor, merged=merged)
        snapshot["participants"][participant.name] = data or {}

    for hook in merge_hooks.registered():
        model = hook.model()
        rows = model._default_manager.filter(**{hook.field: merged})
        ids = [_json_pk(pk) for pk in rows.values_list("pk", flat=True)]
        if ids:
            model._default_manager.filter(pk__in=ids).update(**{hook.field: survivor})
        snapshot["moved"].append({"model": hook.model_label, "field": hook.field, "ids": ids})

    merged.merged_into = survivor
    merged.save(update_fields=["merged_into", "updated_at"])
    merge = CustomerMerge.objects.create(
        survivor=survivor, merged=merged, actor=actor, reason=reason[:500], snapshot=snapshot
    )
    callers[1].merged_into_id = survivor.pk  # the caller's instance should not look live any more

    a_id, b_id = sorted((survivor.pk, merged.pk))
    MergeSuggestion.objects.filter(a_id=a_id, b_id=b_id, status=MergeSuggestion.Status.OPEN).update(
        status=MergeSuggestion.Status.ACCEPTED, decided_by=actor, decided_at=timezone.now()
    )
    timeline_record(
        customer=survivor,
        kind=TimelineKind.MERGE,
        occurred_at=merge.created_at,
        title=_("Merged with customer #%(id)s") % {"id": merged.pk},
        ref_type="customers.merge",
        ref_id=str(merge.pk),
        data={"merged": merged.pk, "reason": reason[:500]},
    )
    audit_record(
        action=AuditEntry.Action.CUSTOMER_MERGED,
        actor=actor,
        target=survivor,
        request=request,
        data={"merge": merge.pk, "survivor": survivor.pk, "merged": merged.pk, "reason": reason[:500]},
    )
    transaction.on_commit(
        lambda: events.customer_merged.send(
            sender=Customer, event=events.CUSTOMER_MERGED, survivor=survivor, merged=merged, merge=merge
        )
    )
    return merge


@transaction.atomic
def customer_unmerge(*, merge: CustomerMerge, actor: User | None, request=None) -> CustomerMerge:
    """Undo a merge: every moved row goes back, fields and tags the merge added to the
    survivor are removed (unless changed since), and the merged profile is live again."""
    merge = CustomerMerge.objects.select_for_update().get(pk=merge.pk)
    if merge.undone_at is not None:
        raise ValidationError(_("This merge was already undone."))
    if merge.snapshot.get("erased"):
        raise ValidationError(_("A profile in this merge was erased; it cannot be undone."))
    locked = {c.pk: c for c in Customer.objects.select_for_update().filter(pk__in=[merge.survivor_id, merge.merged_id])}
    survivor, merged = locked[merge.survivor_id], locked[merge.merged_id]
    if survivor.merged_into_id is not None:
        raise ValidationError(_("The surviving profile was merged again later; undo that merge first."))
    if merged.merged_into_id != survivor.pk:
        raise ValidationError(_("The merged profile is no longer part of the survivor."))
    snapshot = merge.snapshot

    for moved in snapshot.get("moved", []):
        from django.apps import apps

        model = apps.get_model(moved["model"])
        if moved["ids"]:
            model._default_manager.filter(pk__in=moved["ids"], **{moved["field"]: survivor}).update(
                **{moved["field"]: merged}
            )

    for name, data in snapshot.get("participants", {}).items():
        participant = merge_hooks.participant(name)
        if participant is not None and participant.restore is not None:
            participant.restore(survivor=survivor, merged=merged, data=data)

    update_fields = []
    before = snapshot.get("survivor_before", {})
    for name, value in snapshot.get("filled", {}).items():
        current = _json_value(getattr(survivor, name))
        if current == value:
            setattr(survivor, name, _from_json_value(name, before.get(name)))
            update_fields.append(name)
    attributes = dict(survivor.attributes)
    for key, value in snapshot.get("attributes_added", {}).items():
        if attributes.get(key) == value:
            attributes.pop(key)
    if attributes != survivor.attributes:
        survivor.attributes = attributes
        update_fields.append("attributes")
    if update_fields:
        survivor.save(update_fields=[*update_fields, "updated_at"])
    if snapshot.get("tags_added"):
        survivor.tags.remove(*snapshot["tags_added"])

    merged.merged_into = None
    merged.save(update_fields=["merged_into", "updated_at"])
    merge.undone_at = timezone.now()
    merge.undone_by = actor
    merge.save(update_fields=["undone_at", "undone_by"])
    a_id, b_id = sorted((survivor.pk, merged.pk))
    MergeSuggestion.objects.filter(a_id=a_id, b_id=b_id, status=MergeSuggestion.Status.ACCEPTED).update(
        status=MergeSuggestion.Status.DISMISSED, decided_by=actor, decided_at=merge.undone_at
    )
    for customer, other in ((survivor, merged), (merged, survivor)):
        timeline_record(
            customer=customer,
            kind=TimelineKind.UNMERGE,
            occurred_at=merge.undone_at,
            title=_("Separated from customer #%(id)s") % {"id": other.pk},
            ref_type=f"customers.unmerge.{customer.pk}",
            ref_id=str(merge.pk),
        )
    audit_record(
        action=AuditEntry.Action.CUSTOMER_UNMERGED,
        actor=actor,
        target=survivor,
        request=request,
        data={"merge": merge.pk, "survivor": survivor.pk, "merged": merged.pk},
    )
    transaction.on_commit(
        lambda: events.customer_unmerged.send(
            sender=Customer, event=events.CUSTOMER_UNMERGED, survivor=survivor, merged=merged, merge=merge
        )
    )
    return merge
