"""Row locks in the processing path lock only their own row. `SELECT … FOR UPDATE` with a join
locks every joined row on PostgreSQL: processing a webhook event locked its inbox, so each new
delivery's INSERT (whose foreign-key check needs a share lock on the inbox, at COMMIT since
Django's foreign keys are deferred) waited for the worker — the ack took 130 ms instead of 4,
and the workers of one inbox ran one at a time (found by bench/ingest.py)."""
from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from channels_app.services import webhook_event_store
from channels_app.services.ingest import webhook_event_process
from tests.channels_app.test_webhooks import meta_signature, wa_text, whatsapp_inbox  # noqa: F401

pytestmark = pytest.mark.django_db


def locking_statements(queries) -> list[str]:
    return [q["sql"] for q in queries if "FOR UPDATE" in q["sql"] or "FOR NO KEY UPDATE" in q["sql"]]


@pytest.mark.skipif(not connection.features.has_select_for_update, reason="SQLite has no row locks")
def test_processing_a_webhook_event_locks_the_event_row_only():
    inbox = whatsapp_inbox()
    event = webhook_event_store(inbox=inbox, body=wa_text(), headers={})
    with CaptureQueriesContext(connection) as ctx:
        webhook_event_process(event_id=event.pk)
    statements = locking_statements(ctx.captured_queries)
    assert statements, "the event row is locked while it is processed"
    for sql in statements:
        joined = re.search(r"\bJOIN\b", sql)
        assert not joined or re.search(r'FOR UPDATE OF "channels_app_(webhookevent|message|conversation)"', sql), sql
