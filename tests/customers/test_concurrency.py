"""Real concurrency: two workers resolve the same new phone at the same moment.

Runs on PostgreSQL only (DATABASE_URL set): SQLite serialises writers, so the race this
guards against cannot happen there; the retry path itself is covered on SQLite by
test_services_resolve.test_concurrent_resolve_of_same_new_phone_retries_and_finds_the_winner.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from customers.models import Customer, Identity
from customers.services import IdentityInput, customer_resolve

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL row locking to race"),
]


def test_two_concurrent_resolves_of_one_new_phone_create_one_customer():
    barrier = threading.Barrier(2)
    results, errors = [], []

    def worker():
        try:
            barrier.wait(timeout=10)
            results.append(
                customer_resolve(identities=[IdentityInput("whatsapp", "6281234567890", verified=True)], source="race")
            )
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert errors == []
    assert Customer.objects.count() == 1
    assert Identity.objects.count() == 1
    assert {r.customer.pk for r in results} == {Customer.objects.get().pk}
    assert sorted(r.created for r in results) == [False, True]
