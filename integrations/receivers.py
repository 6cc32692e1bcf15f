"""Domain events of other apps → outbound webhook events.

Signals are the right tool here: customers (and later channels_app, journeys) must not know
that integrators exist. Only events that have a domain signal are wired; see
``integrations.events.WIRED_EVENT_TYPES``.
"""
from __future__ import annotations

import logging

from django.dispatch import receiver

from customers import events as customer_events
from integrations import events
from integrations.services import webhook_event_emit

logger = logging.getLogger(__name__)


def _customer_data(customer) -> dict:
    return {
        "id": customer.pk,
        "display_name": customer.display_name,
        "lifecycle_stage": customer.lifecycle_stage,
        "language": customer.language,
        "created_at": customer.created_at,
        "updated_at": customer.updated_at,
    }


def _emit(type: str, data: dict) -> None:
    # A webhook problem must never break the business action that caused the event.
    try:
        webhook_event_emit(type=type, data=data)
    except Exception:
        logger.exception("could not record webhook event %s", type)


@receiver(customer_events.customer_created, dispatch_uid="integrations.customer_created")
def on_customer_created(sender, customer, **kwargs):
    _emit(events.CUSTOMER_CREATED, {"customer": _customer_data(customer)})


@receiver(customer_events.customer_updated, dispatch_uid="integrations.customer_updated")
def on_customer_updated(sender, customer, changed=(), **kwargs):
    changed = list(changed or [])
    _emit(events.CUSTOMER_UPDATED, {"customer": _customer_data(customer), "changed": changed})
    if "lifecycle_stage" in changed:
        _emit(events.CUSTOMER_STAGE_CHANGED, {"customer": _customer_data(customer), "stage": customer.lifecycle_stage})


@receiver(customer_events.customer_merged, dispatch_uid="integrations.customer_merged")
def on_customer_merged(sender, survivor, merged, merge=None, **kwargs):
    _emit(
        events.CUSTOMER_MERGED,
        {"survivor": _customer_data(survivor), "merged_id": merged.pk, "merge_id": getattr(merge, "pk", None)},
    )
