"""Writes for channels_app (see DESIGN.md "The two flows"). Import from here."""
from __future__ import annotations

from channels_app.services.canned import (
    canned_response_create,
    canned_response_delete,
    canned_response_render,
    canned_response_update,
)
from channels_app.services.conversations import (
    ContinueResult,
    agent_candidates,
    conversation_assign,
    conversation_assign_waiting,
    conversation_audience,
    conversation_auto_assign,
    conversation_continue,
    conversation_priority_set,
    conversation_status_set,
)
from channels_app.services.inboxes import (
    InboxConfigError,
    adapter_class_for,
    config_class_for,
    inbox_adapter,
    inbox_adapter_config,
    inbox_config_check,
    inbox_config_redacted,
    inbox_create,
    inbox_settings,
    inbox_update,
)
from channels_app.services.ingest import (
    inbound_event_apply,
    webhook_event_process,
    webhook_event_replay,
    webhook_event_store,
)
from channels_app.services.labels import conversation_labels_set, label_create
from channels_app.services.messages import (
    DeliverOutcome,
    interaction_log,
    message_create_outbound,
    message_deliver,
    message_record,
    message_sent,
    message_status_update,
    recipient_for,
)
from channels_app.services.office_hours import inbound_automatic_replies, inbox_is_open, office_hours_set

__all__ = [
    "canned_response_create",
    "canned_response_delete",
    "canned_response_render",
    "canned_response_update",
    "conversation_labels_set",
    "inbound_automatic_replies",
    "inbox_is_open",
    "label_create",
    "office_hours_set",
    "ContinueResult",
    "DeliverOutcome",
    "InboxConfigError",
    "adapter_class_for",
    "agent_candidates",
    "config_class_for",
    "conversation_assign",
    "conversation_assign_waiting",
    "conversation_audience",
    "conversation_auto_assign",
    "conversation_continue",
    "conversation_priority_set",
    "conversation_status_set",
    "inbound_event_apply",
    "interaction_log",
    "inbox_adapter",
    "inbox_adapter_config",
    "inbox_config_check",
    "inbox_config_redacted",
    "inbox_create",
    "inbox_settings",
    "inbox_update",
    "message_create_outbound",
    "message_deliver",
    "message_record",
    "message_sent",
    "message_status_update",
    "recipient_for",
    "webhook_event_process",
    "webhook_event_replay",
    "webhook_event_store",
]
