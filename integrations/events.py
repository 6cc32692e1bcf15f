"""The event types integrators can subscribe to (the public names, not internal signal names)."""
from __future__ import annotations

MESSAGE_CREATED = "message.created"
MESSAGE_STATUS_CHANGED = "message.status_changed"
CONVERSATION_CREATED = "conversation.created"
CONVERSATION_ASSIGNED = "conversation.assigned"
CONVERSATION_RESOLVED = "conversation.resolved"
CUSTOMER_CREATED = "customer.created"
CUSTOMER_UPDATED = "customer.updated"
CUSTOMER_MERGED = "customer.merged"
CUSTOMER_STAGE_CHANGED = "customer.stage_changed"
CSAT_SUBMITTED = "csat.submitted"
EVENT_RECEIVED = "event.received"

WEBHOOK_EVENT_TYPES = [
    MESSAGE_CREATED,
    MESSAGE_STATUS_CHANGED,
    CONVERSATION_CREATED,
    CONVERSATION_ASSIGNED,
    CONVERSATION_RESOLVED,
    CUSTOMER_CREATED,
    CUSTOMER_UPDATED,
    CUSTOMER_MERGED,
    CUSTOMER_STAGE_CHANGED,
    CSAT_SUBMITTED,
    EVENT_RECEIVED,
]

# Types with a domain event wired to them (see integrations/receivers.py): all of them.
WIRED_EVENT_TYPES = list(WEBHOOK_EVENT_TYPES)
