"""Writes for customers: identity resolution, profile edits, merges, timeline, privacy.

`customer_resolve` is the single entry point channels, the importer and the API use to turn
identities into a customer. It never merges two existing customers; it records a
`MergeSuggestion` instead, and a supervisor decides (`merge_suggestion_accept`).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import AuditEntry, Team, User
from accounts.services import audit_record
from customers import events, merge_hooks
from customers.identity import (
    PLACEHOLDER,
    IdentityValueError,
    NormalisedIdentity,
    identity_normalise,
    max_identities_per_kind,
)
from customers.models import (
    AttributeDefinition,
    Customer,
    CustomerConsent,
    CustomerMerge,
    CustomerNote,
    Identity,
    IdentityOrigin,
    LifecycleStage,
    MergeSuggestion,
    Segment,
    Tag,
    TimelineEntry,
    TimelineKind,
)

logger = logging.getLogger(__name__)

RESOLVE_ATTEMPTS = 3
SEEN_RESOLUTION = dt.timedelta(minutes=1)


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


# --- Identity resolution ------------------------------------------------------------------


@dataclass(frozen=True)
class IdentityInput:
    """One identity as a caller knows it. `verified`: a channel proved control of it."""

    kind: str
    value: str
    verified: bool = False
    scope: str = ""
    source_ref: str = ""


@dataclass
class ResolveResult:
    customer: Customer
    created: bool
    attached: list[Identity] = field(default_factory=list)
    matched: list[Identity] = field(default_factory=list)
    suggestions: list[MergeSuggestion] = field(default_factory=list)
    rejected: list[tuple[IdentityInput, str]] = field(default_factory=list)


def _key(norm: NormalisedIdentity) -> tuple[str, str, str]:
    return (norm.kind, norm.scope, norm.value)


def _identity_lookup(keys: list[tuple[str, str, str]]) -> dict[tuple[str, str, str], Identity]:
    if not keys:
        return {}
    wanted = set(keys)
    # One indexed IN on value, exact (kind, scope) checked here: far cheaper to build than
    # an OR of per-key conditions, and the few extra rows (same value, other kind) are rare.
    rows = [
        row
        for row in Identity.objects.select_for_update().filter(value__in={key[2] for key in keys})
        if (row.kind, row.scope, row.value) in wanted
    ]
    if rows:  # most rows of an import or a first contact match nothing: no join needed
        customers = Customer.objects.in_bulk({row.customer_id for row in rows})
        for row in rows:
            row.customer = customers[row.customer_id]
    return {(row.kind, row.scope, row.value): row for row in rows}


def customer_resolve(
    *,
    identities: list[IdentityInput],
    source: str,
    display_name: str = "",
    asserted_by: str = IdentityOrigin.END_USER,
    strict: bool = False,
    seen_at: dt.datetime | None = None,
) -> ResolveResult:
    """Find or create the customer these identities belong to, and attach the new ones.

    - Verified identities anchor first, then identities asserted by the business
      (`asserted_by="business"`: agents, imports, the API).
    - An unverified identity typed by the end user (`asserted_by="end_user"`, the default)
      never links the caller to an existing customer: the caller keeps (or gets) their own
      profile and a merge suggestion records the evidence.
    - A verified identity wins over the same value merely typed by someone on another
      profile: it moves to the prover's profile, with a suggestion.
    - Identities pointing at two existing customers never merge them: a suggestion is made.
    - Invalid or placeholder values are skipped and listed in `rejected`; with `strict`,
      invalid values (not placeholders such as "null") raise a ValidationError naming
      `identities`, and so does exceeding the per-kind limit.

    Two concurrent resolves of the same new identity create one customer: the unique
    constraint on (kind, scope, value) fails the loser, which retries and finds the winner.
    """
    if asserted_by not in (IdentityOrigin.END_USER, IdentityOrigin.BUSINESS):
        raise ValueError("asserted_by must be 'end_user' or 'business'")
    for attempt in range(RESOLVE_ATTEMPTS):
        try:
            with transaction.atomic():
                return _resolve_once(
                    identities=identities,
                    source=source,
                    display_name=display_name,
                    asserted_by=asserted_by,
                    strict=strict,
                    seen_at=seen_at or timezone.now(),
                )
        except IntegrityError:
            if attempt == RESOLVE_ATTEMPTS - 1:
                raise
            logger.info("customer_resolve lost a race on a new identity; retrying (attempt %s)", attempt + 1)
    raise AssertionError("unreachable")


def _resolve_once(
    *, identities, source: str, display_name: str, asserted_by: str, strict: bool, seen_at: dt.datetime
) -> ResolveResult:
    rejected: list[tuple[IdentityInput, str]] = []
    invalid: list[str] = []
    wanted: dict[tuple[str, str, str], tuple[IdentityInput, NormalisedIdentity]] = {}
    for item in identities:
        try:
            norm = identity_normalise(kind=item.kind, value=item.value, scope=item.scope)
        except IdentityValueError as exc:
            rejected.append((item, "; ".join(exc.messages)))
            if exc.code != PLACEHOLDER:
                invalid += exc.messages
            continue
        previous = wanted.get(_key(norm))
        if previous is None or (item.verified and not previous[0].verified):
            wanted[_key(norm)] = (item, norm)
    if strict and invalid:
        raise ValidationError({"identities": invalid})

    existing = _identity_lookup(list(wanted))
    strong: list[tuple[IdentityInput, Identity]] = []
    weak: list[tuple[IdentityInput, Identity]] = []
    claims: list[tuple[IdentityInput, Identity]] = []
    for key, (item, _norm) in wanted.items():
        identity = existing.get(key)
        if identity is None:
            continue
        if item.verified and not identity.verified and identity.origin == IdentityOrigin.END_USER:
            claims.append((item, identity))
        elif item.verified or asserted_by == IdentityOrigin.BUSINESS:
            strong.append((item, identity))
        else:
            weak.append((item, identity))

    # Verified evidence first; among equals the identity that is itself verified.
    strong.sort(key=lambda pair: (not pair[0].verified, not pair[1].verified))
    anchor = strong[0][1].customer if strong else None
    created = False
    if anchor is None:
        anchor = Customer.objects.create(display_name=display_name[:200])
        created = True
    elif display_name and not anchor.display_name:
        anchor.display_name = display_name[:200]
        anchor.save(update_fields=["display_name", "updated_at"])

    result = ResolveResult(customer=anchor, created=created, rejected=rejected)
    any_verified = any(item.verified for item, _norm in wanted.values())

    for item, identity in strong:
        if identity.customer_id == anchor.pk:
            _identity_touch(identity, item=item, seen_at=seen_at)
            result.matched.append(identity)
        else:
            both = item.verified and identity.verified
            _add_suggestion(
                result,
                merge_suggestion_record(
                    first=anchor,
                    second=identity.customer,
                    score=0.9 if both else 0.75,
                    evidence={
                        "reason": "identity_on_other_profile",
                        "kind": identity.kind,
                        "value": identity.value,
                        "verified": identity.verified,
                        "source": source,
                    },
                ),
            )
    for item, identity in weak:
        if identity.customer_id == anchor.pk:
            _identity_touch(identity, item=item, seen_at=seen_at)
            result.matched.append(identity)
            continue
        _add_suggestion(
            result,
            merge_suggestion_record(
                first=anchor,
                second=identity.customer,
                score=0.6,
                evidence={
                    "reason": "unverified_identity_matches",
                    "kind": identity.kind,
                    "value": identity.value,
                    "verified": False,
                    "source": source,
                },
            ),
        )
    for item, identity in claims:
        previous_owner = identity.customer
        identity.customer = anchor
        identity.verified = True
        identity.origin = IdentityOrigin.CHANNEL
        identity.source = source[:100]
        identity.source_ref = item.source_ref[:255] or identity.source_ref
        identity.last_seen_at = seen_at
        identity.save()
        result.matched.append(identity)
        if previous_owner.pk != anchor.pk:
            _add_suggestion(
                result,
                merge_suggestion_record(
                    first=anchor,
                    second=previous_owner,
                    score=0.7,
                    evidence={
                        "reason": "verified_identity_claimed_elsewhere",
                        "kind": identity.kind,
                        "value": identity.value,
                        "verified": True,
                        "source": source,
                    },
                ),
            )

    new_items = [(item, norm) for key, (item, norm) in wanted.items() if key not in existing]
    if new_items:
        per_kind = (
            Counter() if created else Counter(Identity.objects.filter(customer=anchor).values_list("kind", flat=True))
        )
        limit = max_identities_per_kind()
        to_create = []
        over_limit: list[str] = []
        for item, norm in new_items:
            if per_kind[norm.kind] >= limit:
                reason = _("This customer already has %(n)s identities of this kind.") % {"n": limit}
                rejected.append((item, reason))
                over_limit.append(f"{norm.value}: {reason}")
                continue
            per_kind[norm.kind] += 1
            to_create.append(
                Identity(
                    customer=anchor,
                    kind=norm.kind,
                    scope=norm.scope,
                    value=norm.value,
                    verified=item.verified,
                    origin=IdentityOrigin.CHANNEL if item.verified else asserted_by,
                    source=source[:100],
                    source_ref=item.source_ref[:255],
                    first_seen_at=seen_at,
                    last_seen_at=seen_at,
                )
            )
        result.attached = Identity.objects.bulk_create(to_create)
        if not created:
            for identity in result.attached:
                _identity_timeline(identity, occurred_at=seen_at)
        if strict and over_limit:
            raise ValidationError({"identities": over_limit})

    if any_verified and (anchor.last_seen_at is None or seen_at - anchor.last_seen_at > SEEN_RESOLUTION):
        anchor.last_seen_at = seen_at
        anchor.save(update_fields=["last_seen_at", "updated_at"])
    if created:
        transaction.on_commit(
            lambda: events.customer_created.send(sender=Customer, event=events.CUSTOMER_CREATED, customer=anchor)
        )
    return result


def _identity_timeline(identity: Identity, *, occurred_at: dt.datetime) -> None:
    """A new way to reach an existing customer is worth a line in their timeline."""
    timeline_record(
        customer=identity.customer,
        kind=TimelineKind.IDENTITY,
        occurred_at=occurred_at,
        title=_("%(kind)s %(value)s added") % {"kind": identity.get_kind_display(), "value": identity.value},
        ref_type="customers.identity",
        ref_id=str(identity.pk),
        data={"kind": identity.kind, "verified": identity.verified, "source": identity.source},
    )


def _add_suggestion(result: ResolveResult, suggestion: MergeSuggestion | None) -> None:
    if suggestion is not None and suggestion not in result.suggestions:
        result.suggestions.append(suggestion)


def _identity_touch(identity: Identity, *, item: IdentityInput, seen_at: dt.datetime) -> None:
    fields = []
    # Throttled: a busy chat resolves on every message; last-seen to the minute is enough.
    if seen_at - identity.last_seen_at > SEEN_RESOLUTION:
        identity.last_seen_at = seen_at
        fields.append("last_seen_at")
    if item.verified and not identity.verified:
        identity.verified = True
        identity.origin = IdentityOrigin.CHANNEL
        fields += ["verified", "origin"]
    if fields:
        identity.save(update_fields=fields)


# --- Merge suggestions --------------------------------------------------------------------


def merge_suggestion_record(
    *, first: Customer, second: Customer, score: float, evidence: dict
) -> MergeSuggestion | None:
    """Record (or strengthen) the open suggestion for this pair; a dismissed pair stays quiet."""
    if first.pk == second.pk:
        return None
    a_id, b_id = sorted((first.pk, second.pk))
    if MergeSuggestion.objects.filter(a_id=a_id, b_id=b_id, status=MergeSuggestion.Status.DISMISSED).exists():
        return None
    suggestion = (
        MergeSuggestion.objects.select_for_update()
        .filter(a_id=a_id, b_id=b_id, status=MergeSuggestion.Status.OPEN)
        .first()
    )
    if suggestion is None:
        suggestion = MergeSuggestion.objects.create(a_id=a_id, b_id=b_id, score=round(score, 3), evidence=[evidence])
        transaction.on_commit(
            lambda: events.merge_suggested.send(
                sender=MergeSuggestion, event=events.MERGE_SUGGESTED, suggestion=suggestion
            )
        )
        return suggestion
    if evidence not in suggestion.evidence:
        suggestion.evidence = [*suggestion.evidence, evidence]
    # Independent pieces of evidence add up, but never to certainty.
    suggestion.score = round(min(0.99, max(suggestion.score, score) + (0.05 if len(suggestion.evidence) > 1 else 0)), 3)
    suggestion.save(update_fields=["evidence", "score"])
    return suggestion


@transaction.atomic
def merge_suggestion_dismiss(*, suggestion: MergeSuggestion, actor: User) -> MergeSuggestion:
    if suggestion.status != MergeSuggestion.Status.OPEN:
        raise ValidationError(_("This suggestion has already been decided."))
    suggestion.status = MergeSuggestion.Status.DISMISSED
    suggestion.decided_by = actor
    suggestion.decided_at = timezone.now()
    suggestion.save(update_fields=["status", "decided_by", "decided_at"])
    return suggestion


@transaction.atomic
def merge_suggestion_accept(
    *, suggestion: MergeSuggestion, actor: User, survivor: Customer | None = None, request=None
) -> CustomerMerge:
    """Merge the pair; the older profile survives unless the supervisor picked one."""
    if suggestion.status != MergeSuggestion.Status.OPEN:
        raise ValidationError(_("This suggestion has already been decided."))
    survivor = survivor or suggestion.a
    if survivor.pk not in (suggestion.a_id, suggestion.b_id):
        raise ValidationError(_("The survivor must be one of the two customers."))
    merged = suggestion.b if survivor.pk == suggestion.a_id else suggestion.a
    return customer_merge(
        survivor=survivor, merged=merged, actor=actor, reason=_("Accepted merge suggestion"), request=request
    )


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


def tags_for_names(*, names: list[str]) -> list[Tag]:
    tags = []
    for raw in names:
        name = " ".join(str(raw).split())[:50]
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
    changed: list[str] = []
    for name, value in (
        ("display_name", display_name),
        ("language", language),
        ("time_zone", time_zone),
        ("owner_agent", owner_agent),
        ("owner_team", owner_team),
        ("lifecycle_stage", lifecycle_stage),
    ):
        if value is not UNSET:
            setattr(customer, name, value)
            changed.append(name)
    if attributes is not UNSET:
        changed.append("attributes")
        cleaned = customer_attributes_clean(attributes=attributes, definitions=attribute_definitions)
        merged = dict(customer.attributes)
        for key, value in cleaned.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        customer.attributes = merged
    if customer.language and customer.language not in _language_codes():
        raise ValidationError({"language": [_("Unknown language code; use an ISO code such as id, en or jv.")]})
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
                kind=TimelineKind.STAGE_CHANGED,
                occurred_at=timezone.now(),
                title=_("Stage: %(from)s → %(to)s")
                % {"from": LifecycleStage(previous_stage).label, "to": customer.get_lifecycle_stage_display()},
                data={"from": previous_stage, "to": customer.lifecycle_stage, "by": actor.pk if actor else None},
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
    _identity_timeline(identity, occurred_at=now)
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


# --- Timeline -----------------------------------------------------------------------------


def _live_customer(customer: Customer) -> Customer:
    """Follow merges from the database (the caller's instance may predate a merge or erase)."""
    current = Customer.objects.only("pk", "merged_into_id", "is_erased").get(pk=customer.pk)
    seen = set()
    while current.merged_into_id is not None and current.pk not in seen:
        seen.add(current.pk)
        current = Customer.objects.only("pk", "merged_into_id", "is_erased").get(pk=current.merged_into_id)
    if current.pk == customer.pk:
        customer.is_erased = current.is_erased
        return customer
    return current


def timeline_record(
    *,
    customer: Customer,
    kind: str,
    occurred_at: dt.datetime,
    channel: str = "",
    title: str = "",
    body: str = "",
    ref_type: str = "",
    ref_id: str = "",
    data: dict | None = None,
) -> TimelineEntry:
    """Add one item to a customer's timeline (other apps call this). Idempotent per
    (kind, ref_type, ref_id); writes for a merged-away profile land on its survivor."""
    customer = _live_customer(customer)
    if customer.is_erased:
        title, body, data = "", "", {}
    if ref_type:
        existing = TimelineEntry.objects.filter(kind=kind, ref_type=ref_type, ref_id=str(ref_id)).first()
        if existing is not None:
            return existing
    entry = TimelineEntry(
        customer=customer,
        kind=kind,
        occurred_at=occurred_at,
        channel=channel[:30],
        title=title[:200],
        body=(body or "")[:500],
        ref_type=ref_type[:64],
        ref_id=str(ref_id)[:64],
        data=data or {},
    )
    try:
        with transaction.atomic():
            entry.save()
    except IntegrityError:
        # A concurrent writer recorded the same referenced item first.
        return TimelineEntry.objects.get(kind=kind, ref_type=ref_type, ref_id=str(ref_id))
    return entry


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


# --- Privacy ------------------------------------------------------------------------------


def _dt(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def customer_export(*, customer: Customer, actor: User | None, request=None) -> dict:
    """Everything stored about one customer, as JSON-ready data; audited.

    Other apps add their sections (conversations, messages, CSAT) by answering the
    `customer_export_collect` signal with (section_name, data).
    """
    profiles = [customer, *Customer.objects.filter(merged_into=customer)]
    data: dict[str, Any] = {
        "format": "cxplatform.customer-export.v1",
        "exported_at": timezone.now().isoformat(),
        "customer": {
            "id": customer.pk,
            "display_name": customer.display_name,
            "language": customer.language,
            "time_zone": customer.time_zone,
            "lifecycle_stage": customer.lifecycle_stage,
            "attributes": customer.attributes,
            "tags": list(customer.tags.values_list("name", flat=True)),
            "owner_agent": customer.owner_agent.email if customer.owner_agent else None,
            "owner_team": customer.owner_team.name if customer.owner_team else None,
            "created_at": _dt(customer.created_at),
            "last_seen_at": _dt(customer.last_seen_at),
            "last_contacted_at": _dt(customer.last_contacted_at),
            "is_erased": customer.is_erased,
        },
        "merged_profiles": [
            {"id": p.pk, "display_name": p.display_name, "attributes": p.attributes} for p in profiles[1:]
        ],
        "identities": [
            {
                "kind": i.kind,
                "value": i.value,
                "scope": i.scope,
                "verified": i.verified,
                "source": i.source,
                "first_seen_at": _dt(i.first_seen_at),
                "last_seen_at": _dt(i.last_seen_at),
            }
            for i in customer.identities.order_by("kind", "value")
        ],
        "consents": [
            {
                "channel": c.channel,
                "opted_in_at": _dt(c.opted_in_at),
                "opted_out_at": _dt(c.opted_out_at),
                "source": c.source,
            }
            for c in CustomerConsent.objects.filter(customer__in=profiles)
        ],
        "notes": [
            {"created_at": _dt(n.created_at), "author": n.author.email if n.author else None, "body": n.body}
            for n in customer.notes.select_related("author").order_by("created_at", "id")
        ],
        "timeline": [
            {
                "occurred_at": _dt(t.occurred_at),
                "kind": t.kind,
                "channel": t.channel,
                "title": t.title,
                "body": t.body,
                "data": t.data,
            }
            for t in customer.timeline.order_by("occurred_at", "id")
        ],
    }
    for _receiver, section in events.customer_export_collect.send(sender=Customer, customer=customer):
        if section:
            name, payload = section
            data[name] = payload
    audit_record(
        action=AuditEntry.Action.DATA_EXPORTED,
        actor=actor,
        target=customer,
        request=request,
        data={"customer": customer.pk},
    )
    return data


@transaction.atomic
def customer_erase(*, customer: Customer, actor: User | None, request=None) -> Customer:
    """Anonymise a customer (and the profiles merged into it): identities, notes, consents
    and merge suggestions are deleted, timeline bodies blanked, the row kept for aggregates.
    Other apps delete message bodies and attachments on `customer_erased`. Audited."""
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    if customer.merged_into_id is not None:
        raise ValidationError(
            _("Erase the profile this one was merged into (customer #%(id)s).") % {"id": customer.merged_into_id}
        )
    ids = [customer.pk]
    frontier = [customer.pk]
    while frontier:
        frontier = list(Customer.objects.filter(merged_into_id__in=frontier).values_list("pk", flat=True))
        ids += frontier
    counts = {
        "identities": Identity.objects.filter(customer_id__in=ids).delete()[0],
        "notes": CustomerNote.objects.filter(customer_id__in=ids).delete()[0],
        "consents": CustomerConsent.objects.filter(customer_id__in=ids).delete()[0],
        "timeline": TimelineEntry.objects.filter(customer_id__in=ids).update(title="", body="", data={}),
    }
    MergeSuggestion.objects.filter(Q(a_id__in=ids) | Q(b_id__in=ids)).delete()
    CustomerMerge.objects.filter(Q(survivor_id__in=ids) | Q(merged_id__in=ids)).update(
        snapshot={"erased": True}, reason=""
    )
    now = timezone.now()
    for profile in Customer.objects.filter(pk__in=ids):
        profile.tags.clear()
    Customer.objects.filter(pk__in=ids).update(
        display_name="", attributes={}, is_erased=True, erased_at=now, updated_at=now
    )
    events.customer_erased.send(sender=Customer, event=events.CUSTOMER_ERASED, customer=customer, customer_ids=ids)
    audit_record(
        action=AuditEntry.Action.DATA_ERASED,
        actor=actor,
        target=customer,
        request=request,
        data={"customer": customer.pk, "profiles": ids, **counts},
    )
    customer.refresh_from_db()
    return customer


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
