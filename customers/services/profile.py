"""Profile edits: fields, attributes, tags, identities, notes, consent."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Team, User
from customers import events
from customers.identity import (
    IdentityValueError,
    identity_normalise,
    max_identities_per_kind,
)
from customers.models import (
    AttributeDefinition,
    Customer,
    CustomerConsent,
    CustomerNote,
    Identity,
    IdentityOrigin,
    LifecycleStage,
    Tag,
    TimelineEntry,
    TimelineKind,
)
from customers.services.timeline import identity_timeline_record, timeline_record


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


# --- Profile edits -------------------------------------------------------------------------


def _require_live(customer: Customer) -> None:
    if not customer.is_active_profile:
        raise ValidationError(_("This profile was merged or erased and can no longer be edited."))


def _coerce_attribute(definition: AttributeDefinition, value: Any) -> Any:
    kind = AttributeDefinition.Type
    if definition.type == kind.TEXT:
        text = str(value).strip()
        if len(text) > 1000:
            raise ValueError(_("at most 1000 characters"))
        return text
    if definition.type == kind.NUMBER:
        if isinstance(value, bool):
            raise ValueError(_("must be a number"))
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise ValueError(_("must be a number")) from None
        if not number.is_finite():
            raise ValueError(_("must be a number"))
        return int(number) if number == number.to_integral_value() else float(number)
    if definition.type == kind.DATE:
        try:
            return dt.date.fromisoformat(str(value).strip()).isoformat()
        except ValueError:
            raise ValueError(_("must be a date as YYYY-MM-DD")) from None
    if definition.type == kind.BOOLEAN:
        if isinstance(value, bool):
            return value
        lowered = str(value).strip().lower()
        if lowered in {"true", "yes", "1", "ya", "y"}:
            return True
        if lowered in {"false", "no", "0", "tidak", "n"}:
            return False
        raise ValueError(_("must be true or false"))
    if definition.type == kind.CHOICE:
        text = str(value).strip()
        if text not in definition.choices:
            raise ValueError(_("must be one of: %(choices)s") % {"choices": ", ".join(definition.choices)})
        return text
    if definition.type == kind.URL:
        text = str(value).strip()
        try:
            URLValidator(schemes=["http", "https"])(text)
        except ValidationError:
            raise ValueError(_("must be an http(s) URL")) from None
        return text
    raise ValueError(_("has an unknown type"))


def customer_attributes_clean(*, attributes: dict, definitions: dict[str, AttributeDefinition] | None = None) -> dict:
    """Validate and coerce values against the attribute definitions; None removes a key.

    `definitions` (key → definition) may be passed by bulk callers to save a query per row.
    Raises ValidationError({"attributes": [...]}) with one message per bad key.
    """
    if not isinstance(attributes, dict):
        raise ValidationError({"attributes": [_("Attributes must be an object of key: value.")]})
    if definitions is None:
        definitions = {d.key: d for d in AttributeDefinition.objects.filter(key__in=list(attributes))}
    cleaned: dict[str, Any] = {}
    errors: list[str] = []
    for key, value in attributes.items():
        definition = definitions.get(key)
        if definition is None:
            errors.append(_("%(key)s: no such attribute; an admin defines attributes first.") % {"key": key})
            continue
        if value is None or value == "":
            cleaned[key] = None
            continue
        try:
            cleaned[key] = _coerce_attribute(definition, value)
        except ValueError as exc:
            errors.append(f"{key}: {exc}")
    if errors:
        raise ValidationError({"attributes": errors})
    return cleaned


def tag_name_clean(raw: str) -> str:
    """A tag's stored name: whitespace collapsed, at most 50 characters (matched case-insensitively)."""
    return " ".join(str(raw).split())[:50]


def tags_for_names(*, names: list[str]) -> list[Tag]:
    tags = []
    for raw in names:
        name = tag_name_clean(raw)
        if not name:
            continue
        tag = Tag.objects.filter(name__iexact=name).first() or Tag.objects.create(name=name)
        if tag not in tags:
            tags.append(tag)
    return tags


@transaction.atomic
def customer_update(
    *,
    customer: Customer,
    actor: User | None = None,
    display_name: str = UNSET,
    language: str = UNSET,
    time_zone: str = UNSET,
    owner_agent: User | None = UNSET,
    owner_team: Team | None = UNSET,
    lifecycle_stage: str = UNSET,
    attributes: dict = UNSET,
    tags: list[str] = UNSET,
    add_tags: list[str] = UNSET,
    attribute_definitions: dict[str, AttributeDefinition] | None = None,
) -> Customer:
    """Change profile fields. `attributes` are merged key by key (None removes a key);
    `tags` replaces the tag set by names, `add_tags` adds to it. Raises ValidationError
    naming the field."""
    _require_live(customer)
    given = {"display_name": display_name, "language": language, "time_zone": time_zone, "owner_agent": owner_agent,
             "owner_team": owner_team, "lifecycle_stage": lifecycle_stage, "attributes": attributes}
    changed = customer_fields_set(customer=customer, fields={k: v for k, v in given.items() if v is not UNSET},
                                  attribute_definitions=attribute_definitions)
    if changed:
        previous_stage = (
            Customer.objects.filter(pk=customer.pk).values_list("lifecycle_stage", flat=True).first()
            if "lifecycle_stage" in changed
            else None
        )
        customer.full_clean(exclude=["tags"])
        customer.save(update_fields=[*changed, "updated_at"])
        if previous_stage is not None and previous_stage != customer.lifecycle_stage:
            timeline_record(
                customer=customer,
                occurred_at=timezone.now(),
                **stage_timeline_values(customer=customer, previous_stage=previous_stage, actor=actor),
            )
        fields_changed = list(changed)
        transaction.on_commit(
            lambda: events.customer_updated.send(
                sender=Customer, event=events.CUSTOMER_UPDATED, customer=customer, changed=fields_changed, actor=actor
            )
        )
    if tags is not UNSET:
        customer.tags.set(tags_for_names(names=tags))
    if add_tags is not UNSET and add_tags:
        customer.tags.add(*tags_for_names(names=add_tags))
    return customer


_PROFILE_FIELDS = ("display_name", "language", "time_zone", "owner_agent", "owner_team", "lifecycle_stage")


def customer_fields_set(
    *, customer: Customer, fields: dict[str, Any], attribute_definitions: dict[str, AttributeDefinition] | None = None
) -> list[str]:
    """`customer_update`'s edit of the instance, saving nothing (bulk writers such as the import
    save many at once): sets the `fields` given (its keywords), merges `attributes`, checks the
    language; returns the names of the fields set, in `customer_update`'s order. Raises
    ValidationError naming the field; the caller full_cleans and saves."""
    unknown = set(fields) - {*_PROFILE_FIELDS, "attributes"}
    if unknown:
        raise TypeError(f"customer_fields_set: unknown fields {sorted(unknown)}")
    changed: list[str] = []
    for name in _PROFILE_FIELDS:
        if name in fields:
            setattr(customer, name, fields[name])
            changed.append(name)
    if "attributes" in fields:
        changed.append("attributes")
        cleaned = customer_attributes_clean(attributes=fields["attributes"], definitions=attribute_definitions)
        merged = dict(customer.attributes)
        for key, value in cleaned.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        customer.attributes = merged
    if customer.language and customer.language not in _language_codes():
        raise ValidationError({"language": [_("Unknown language code; use an ISO code such as id, en or jv.")]})
    return changed


def stage_timeline_values(*, customer: Customer, previous_stage: str, actor: User | None) -> dict:
    """The timeline entry of a stage change (`timeline_record` / `timeline_entry_build` keywords)."""
    return {
        "kind": TimelineKind.STAGE_CHANGED,
        "title": _("Stage: %(from)s → %(to)s")
        % {"from": LifecycleStage(previous_stage).label, "to": customer.get_lifecycle_stage_display()},
        "data": {"from": previous_stage, "to": customer.lifecycle_stage, "by": actor.pk if actor else None},
    }


def _language_codes() -> set[str]:
    # Customers speak more languages than the agent UI is translated into.
    from django.conf import global_settings, settings

    return {code for code, _name in (*global_settings.LANGUAGES, *settings.LANGUAGES)} | {"jv", "su", "ms"}


def customer_touch(
    *, customer: Customer, seen_at: dt.datetime | None = None, contacted_at: dt.datetime | None = None
) -> None:
    """Move last seen / last contacted forward (never back); one UPDATE."""
    updates = {}
    if seen_at and (customer.last_seen_at is None or seen_at > customer.last_seen_at):
        updates["last_seen_at"] = customer.last_seen_at = seen_at
    if contacted_at and (customer.last_contacted_at is None or contacted_at > customer.last_contacted_at):
        updates["last_contacted_at"] = customer.last_contacted_at = contacted_at
    if updates:
        Customer.objects.filter(pk=customer.pk).update(**updates)


def customers_contacted(*, customers: list[Customer], at: dt.datetime) -> None:
    """`customer_touch(contacted_at=at)` for many customers in one UPDATE (a batch of replies)."""
    moved = {c.pk for c in customers if c.last_contacted_at is None or at > c.last_contacted_at}
    if not moved:
        return
    Customer.objects.filter(pk__in=moved).filter(
        Q(last_contacted_at__isnull=True) | Q(last_contacted_at__lt=at)).update(last_contacted_at=at)
    for customer in customers:
        if customer.pk in moved:
            customer.last_contacted_at = at


@transaction.atomic
def identity_add(
    *, customer: Customer, kind: str, value: str, scope: str = "", verified: bool = False, source: str = "agent"
) -> Identity:
    """An agent or integrator records an identity on a profile (business-asserted)."""
    _require_live(customer)
    try:
        norm = identity_normalise(kind=kind, value=value, scope=scope)
    except IdentityValueError as exc:
        raise ValidationError({"value": exc.messages}) from None
    existing = Identity.objects.filter(kind=norm.kind, scope=norm.scope, value=norm.value).first()
    if existing is not None:
        if existing.customer_id == customer.pk:
            return existing
        raise ValidationError(
            {
                "value": [
                    _("%(value)s already belongs to customer #%(id)s; merge the profiles instead.")
                    % {"value": norm.value, "id": existing.customer_id}
                ]
            }
        )
    if Identity.objects.filter(customer=customer, kind=norm.kind).count() >= max_identities_per_kind():
        raise ValidationError({"kind": [_("This customer already has the maximum number of identities of this kind.")]})
    now = timezone.now()
    identity = Identity.objects.create(
        customer=customer,
        kind=norm.kind,
        scope=norm.scope,
        value=norm.value,
        verified=verified,
        origin=IdentityOrigin.CHANNEL if verified else IdentityOrigin.BUSINESS,
        source=source[:100],
        first_seen_at=now,
        last_seen_at=now,
    )
    identity_timeline_record(identity, occurred_at=now)
    return identity


def identity_remove(*, identity: Identity) -> None:
    identity.delete()


@transaction.atomic
def note_add(*, customer: Customer, author: User | None, body: str) -> CustomerNote:
    _require_live(customer)
    body = (body or "").strip()
    if not body:
        raise ValidationError({"body": [_("Write something first.")]})
    note = CustomerNote(customer=customer, author=author, body=body)
    note.full_clean()
    note.save()
    timeline_record(
        customer=customer,
        kind=TimelineKind.NOTE,
        occurred_at=note.created_at,
        title=_("Note by %(author)s") % {"author": author.get_full_name() if author else _("system")},
        body=body,
        ref_type="customers.note",
        ref_id=str(note.pk),
    )
    return note


@transaction.atomic
def note_delete(*, note: CustomerNote) -> None:
    TimelineEntry.objects.filter(kind=TimelineKind.NOTE, ref_type="customers.note", ref_id=str(note.pk)).delete()
    note.delete()


@transaction.atomic
def consent_record(
    *, customer: Customer, channel: str, opted_in: bool, source: str, at: dt.datetime | None = None
) -> CustomerConsent:
    """Record an opt-in or opt-out for a channel, keeping when and where it happened."""
    channel = (channel or "").strip().lower()
    if not channel:
        raise ValidationError({"channel": [_("Name the channel.")]})
    at = at or timezone.now()
    consent, _created = CustomerConsent.objects.select_for_update().get_or_create(customer=customer, channel=channel)
    if opted_in:
        consent.opted_in_at = at
        consent.opted_out_at = None
    else:
        consent.opted_out_at = at
    consent.source = source[:100]
    consent.save()
    return consent
