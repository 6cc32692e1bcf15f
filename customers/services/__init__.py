"""Writes for customers: identity resolution, profile edits, merges, timeline, privacy.

`customer_resolve` is the single entry point channels, the importer and the API use to turn
identities into a customer. It never merges two existing customers; it records a
`MergeSuggestion` instead, and a supervisor decides (`merge_suggestion_accept`).

Other apps import from here (`from customers.services import customer_resolve`); the
modules of this package are an internal split by topic.
"""

from __future__ import annotations

from customers.services.merging import customer_merge, customer_unmerge
from customers.services.privacy import customer_erase, customer_export
from customers.services.profile import (
    UNSET,
    consent_record,
    customer_attributes_clean,
    customer_touch,
    customer_update,
    customers_contacted,
    identity_add,
    identity_remove,
    note_add,
    note_delete,
    tags_for_names,
)
from customers.services.resolution import (
    RESOLVE_ATTEMPTS,
    SEEN_RESOLUTION,
    IdentityInput,
    ResolveResult,
    customer_resolve,
)
from customers.services.segments import SEGMENT_FILTER_KEYS, segment_create, segment_filters_clean
from customers.services.suggestions import merge_suggestion_accept, merge_suggestion_dismiss, merge_suggestion_record
from customers.services.timeline import identity_timeline_record, timeline_entry_build, timeline_record

__all__ = [
    "RESOLVE_ATTEMPTS",
    "SEEN_RESOLUTION",
    "SEGMENT_FILTER_KEYS",
    "UNSET",
    "IdentityInput",
    "ResolveResult",
    "consent_record",
    "customer_attributes_clean",
    "customer_erase",
    "customer_export",
    "customer_merge",
    "customer_resolve",
    "customer_touch",
    "customers_contacted",
    "customer_unmerge",
    "customer_update",
    "identity_add",
    "identity_remove",
    "identity_timeline_record",
    "merge_suggestion_accept",
    "merge_suggestion_dismiss",
    "merge_suggestion_record",
    "note_add",
    "note_delete",
    "segment_create",
    "segment_filters_clean",
    "tags_for_names",
    "timeline_entry_build",
    "timeline_record",
]
