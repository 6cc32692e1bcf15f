"""Domain events the customers app emits, and the signals other apps listen on.

Signals connect apps that must not know each other (journeys, channels_app); the
customers app calls its own logic explicitly. Merge/unmerge/create are sent on commit;
erase and export are sent inside the transaction because receivers take part in them.
"""

from __future__ import annotations

from django.dispatch import Signal

CUSTOMER_CREATED = "customers.customer.created"
CUSTOMER_UPDATED = "customers.customer.updated"
CUSTOMER_MERGED = "customers.customer.merged"
CUSTOMER_UNMERGED = "customers.customer.unmerged"
CUSTOMER_ERASED = "customers.customer.erased"
CUSTOMER_EXPORTED = "customers.customer.exported"
MERGE_SUGGESTED = "customers.merge_suggestion.created"

# Sent on commit. kwargs: event (name), customer, and for merges survivor, merged, merge.
customer_created = Signal()
customer_updated = Signal()  # kwargs: customer, changed (field names), actor
customer_merged = Signal()
customer_unmerged = Signal()
merge_suggested = Signal()

# Sent inside the erase transaction: receivers delete their personal data for `customer`
# (message bodies, attachments) and must not do network I/O.
customer_erased = Signal()

# Sent while building a privacy export: each receiver returns (section_name, json_data).
customer_export_collect = Signal()
