"""cxplatform.db.bulk_set writes exactly the named fields of exactly the given rows (on
PostgreSQL as one UPDATE … FROM VALUES, elsewhere through bulk_update)."""
from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from customers.models import Customer
from cxplatform.db import bulk_set

pytestmark = pytest.mark.django_db


def test_bulk_set_writes_the_named_fields_of_the_given_rows_only():
    t = timezone.now().replace(microsecond=0)
    a, b, c = (Customer.objects.create(display_name=name) for name in ("A", "B", "C"))
    a.last_seen_at, a.display_name = t, "not written"
    b.last_seen_at = t - dt.timedelta(days=1)
    c.last_seen_at = t  # not passed: must stay as stored

    with CaptureQueriesContext(connection) as ctx:
        assert bulk_set(Customer, [a, b], ["last_seen_at"]) == 2

    assert len([q for q in ctx.captured_queries if q["sql"].startswith("UPDATE")]) == 1
    stored = {row.pk: row for row in Customer.objects.all()}
    assert stored[a.pk].last_seen_at == t and stored[a.pk].display_name == "A"
    assert stored[b.pk].last_seen_at == t - dt.timedelta(days=1)
    assert stored[c.pk].last_seen_at is None
    assert bulk_set(Customer, [], ["last_seen_at"]) == 0


def test_bulk_set_writes_nulls_and_several_fields():
    t = timezone.now().replace(microsecond=0)
    a = Customer.objects.create(display_name="A", last_seen_at=t)
    a.last_seen_at, a.updated_at = None, t - dt.timedelta(hours=2)
    bulk_set(Customer, [a], ["last_seen_at", "updated_at"])
    a.refresh_from_db()
    assert a.last_seen_at is None and a.updated_at == t - dt.timedelta(hours=2)
