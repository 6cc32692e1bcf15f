"""Two KPI fact refreshes at the same moment (two reports starting together): both succeed,
one does the work, and the facts equal a full build. PostgreSQL only (row locks); SQLite
serialises writers and the refresh retries there."""
from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from customers.models import Customer
from journeys.facts import kpi_facts_refresh
from journeys.models import ConversationFact
from tests.journeys import factories as f
from tests.journeys.factories import at

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL row locking to race"),
]


def test_two_concurrent_refreshes_do_the_work_once():
    inbox = f.inbox("whatsapp")
    for n in range(30):
        conv = f.conversation(customer=Customer.objects.create(display_name=f"c{n}"), inbox_=inbox, created_at=at(n))
        f.message(conv, when=at(n))
    barrier = threading.Barrier(2)
    results, errors = [], []

    def worker():
        try:
            barrier.wait(timeout=10)
            results.append(kpi_facts_refresh())
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert sorted(results) == [-1, 0]  # one full build; the other found it done
    assert ConversationFact.objects.count() == 30
