"""Privacy: export everything about a customer, or erase it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import AuditEntry, User
from accounts.services import audit_record
from customers import events
from customers.models import (
    Customer,
    CustomerConsent,
    CustomerMerge,
    CustomerNote,
    Identity,
    MergeSuggestion,
    TimelineEntry,
)

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
