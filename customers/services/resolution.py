"""customer_resolve: identities in, one customer out (never a silent merge)."""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from customers import events
from customers.identity import (
    PLACEHOLDER,
    IdentityValueError,
    NormalisedIdentity,
    identity_normalise,
    max_identities_per_kind,
)
from customers.models import (
    Customer,
    Identity,
    IdentityOrigin,
    MergeSuggestion,
)
from customers.services.suggestions import merge_suggestion_record
from customers.services.timeline import identity_timeline_record

logger = logging.getLogger(__name__)


RESOLVE_ATTEMPTS = 3
SEEN_RESOLUTION = dt.timedelta(minutes=1)


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
            to_create.append(identity_build(customer=anchor, item=item, key=_key(norm), source=source,
                                            asserted_by=asserted_by, seen_at=seen_at))
        result.attached = Identity.objects.bulk_create(to_create)
        if not created:
            for identity in result.attached:
                identity_timeline_record(identity, occurred_at=seen_at)
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


def identity_build(*, customer: Customer, item: IdentityInput, key: tuple[str, str, str], source: str,
                   asserted_by: str, seen_at: dt.datetime) -> Identity:
    """The unsaved identity `customer_resolve` attaches for `item` (normalised to `key`)."""
    kind, scope, value = key
    return Identity(
        customer=customer, kind=kind, scope=scope, value=value, verified=item.verified,
        origin=IdentityOrigin.CHANNEL if item.verified else asserted_by, source=source[:100],
        source_ref=item.source_ref[:255], first_seen_at=seen_at, last_seen_at=seen_at,
    )


def customers_create(created: list[tuple[Customer, list[Identity]]]) -> None:
    """Store new customers with their identities (built with `identity_build`), as
    `customer_resolve` does for identities nobody has, for many at once: one INSERT for the
    customers and one for the identities, `customer_created` after commit. An identity another
    writer stored meanwhile fails the INSERT (the unique constraint), and the caller's
    transaction with it: the caller then resolves one by one, as `customer_resolve` retries."""
    Customer.objects.bulk_create([customer for customer, _identities in created])
    Identity.objects.bulk_create([identity for _customer, identities in created for identity in identities])
    for customer, _identities in created:
        transaction.on_commit(
            lambda c=customer: events.customer_created.send(sender=Customer, event=events.CUSTOMER_CREATED, customer=c))


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
