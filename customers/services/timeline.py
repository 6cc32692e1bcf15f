"""The 360° timeline read model: other apps write through timeline_record."""

from __future__ import annotations

import datetime as dt

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from customers.models import (
    Customer,
    Identity,
    TimelineEntry,
    TimelineKind,
)

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


def timeline_entry_build(
    *, customer: Customer, kind: str, occurred_at: dt.datetime, channel: str = "", title: str = "", body: str = "",
    ref_type: str = "", ref_id: str = "", data: dict | None = None,
) -> TimelineEntry:
    """The unsaved entry for a live `customer` (an erased profile keeps the fact, not the text);
    `timeline_record` saves it, batch writers bulk-insert it."""
    if customer.is_erased:
        title, body, data = "", "", {}
    return TimelineEntry(
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
    ref_is_new: bool = False,
    customer_fresh: bool = False,
) -> TimelineEntry:
    """Add one item to a customer's timeline (other apps call this). Idempotent per
    (kind, ref_type, ref_id); writes for a merged-away profile land on its survivor.
    `ref_is_new`: the referenced row was inserted by the caller's open transaction, so no entry
    can refer to it yet — no lookup and no savepoint (three round trips per message).
    `customer_fresh`: the caller read `customer` from the database within this request, so its
    merge and erasure state is not read again (a merge committing in between is as possible
    right after that read as after this one)."""
    if not customer_fresh:
        customer = _live_customer(customer)
    entry = timeline_entry_build(customer=customer, kind=kind, occurred_at=occurred_at, channel=channel, title=title,
                                 body=body, ref_type=ref_type, ref_id=ref_id, data=data)
    if ref_is_new:
        entry.save()
        return entry
    if ref_type:
        existing = TimelineEntry.objects.filter(kind=kind, ref_type=ref_type, ref_id=str(ref_id)).first()
        if existing is not None:
            return existing
    try:
        with transaction.atomic():
            entry.save()
    except IntegrityError:
        # A concurrent writer recorded the same referenced item first.
        return TimelineEntry.objects.get(kind=kind, ref_type=ref_type, ref_id=str(ref_id))
    return entry


def identity_timeline_record(identity: Identity, *, occurred_at: dt.datetime) -> None:
    """A new way to reach an existing customer is worth a line in their timeline."""
    timeline_record(customer=identity.customer, occurred_at=occurred_at, **identity_timeline_values(identity))


def identity_timeline_values(identity: Identity) -> dict:
    """The timeline entry of an identity added to a customer (`timeline_record` /
    `timeline_entry_build` keywords; the import's bulk path builds many at once)."""
    return {
        "kind": TimelineKind.IDENTITY,
        "title": _("%(kind)s %(value)s added") % {"kind": identity.get_kind_display(), "value": identity.value},
        "ref_type": "customers.identity",
        "ref_id": str(identity.pk),
        "data": {"kind": identity.kind, "verified": identity.verified, "source": identity.source},
    }
