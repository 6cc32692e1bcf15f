"""The import's bulk path: new, independent rows are created with multi-row INSERTs, with the
same outcome as the row-by-row path and a statement count that does not grow with the rows."""
from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from customers import events
from customers.importer import import_job_create, import_job_start
from customers.models import Customer, Identity, IdentityOrigin
from tests.customers.factories import AttributeDefinitionFactory
from tests.customers.test_importer import MAPPING, upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def city(db):
    return AttributeDefinitionFactory(key="city", label="City")


def csv_of(n: int, start: int = 0) -> str:
    lines = ["Name,Phone,Email,City,Tags"]
    lines += [f"Customer {i},0812{i:08d},c{i}@mail.co.id,Bandung,{'vip' if i % 2 else ''}" for i in range(start, start + n)]
    return "\n".join(lines) + "\n"


def import_counting(text: str, agent, capture) -> tuple[int, object]:
    job = import_job_create(file=upload(text), actor=agent)
    with CaptureQueriesContext(connection) as queries, capture(execute=True):
        import_job_start(job=job, mapping=MAPPING, dry_run=False)
    job.refresh_from_db()
    return len(queries), job


def test_statements_do_not_grow_with_new_rows(agent, city, django_capture_on_commit_callbacks):
    small, job_small = import_counting(csv_of(20), agent, django_capture_on_commit_callbacks)
    large, job_large = import_counting(csv_of(400, start=1000), agent, django_capture_on_commit_callbacks)
    assert (job_small.created_rows, job_large.created_rows) == (20, 400)
    # Multi-row INSERTs are split by the database's parameter limit, so a few more statements
    # for 20× the rows; the row-by-row path needed about 9 a row (3,400 more here).
    assert large - small < 380 / 20, (small, large)


def test_bulk_rows_look_like_resolved_ones(agent, city, django_capture_on_commit_callbacks):
    created = []

    def listener(sender, customer, **kwargs):
        created.append(customer.pk)

    events.customer_created.connect(listener)
    try:
        _n, job = import_counting(csv_of(3), agent, django_capture_on_commit_callbacks)
    finally:
        events.customer_created.disconnect(listener)
    customer = Identity.objects.get(value="+6281200000001").customer
    assert customer.display_name == "Customer 1"
    assert customer.attributes == {"city": "Bandung"}
    assert list(customer.tags.values_list("name", flat=True)) == ["vip"]
    assert sorted(customer.identities.values_list("kind", "verified", "origin", "source")) == [
        ("email", False, IdentityOrigin.BUSINESS, f"import:{job.pk}"),
        ("phone", False, IdentityOrigin.BUSINESS, f"import:{job.pk}"),
    ]
    assert sorted(created) == sorted(Customer.objects.values_list("pk", flat=True))  # one event each, after commit


def test_rows_sharing_an_identity_in_one_batch_resolve_to_one_customer(agent, city, django_capture_on_commit_callbacks):
    text = "Name,Phone,Email,City,Tags\nBudi,0812-1111-2222,,Medan,\nBudi B,+62 812 1111 2222,b@mail.co.id,Medan,\nSiti,0813-1,,Medan,\n"
    _n, job = import_counting(text, agent, django_capture_on_commit_callbacks)
    assert (job.created_rows, job.updated_rows, job.failed_rows) == (1, 1, 1)
    budi = Identity.objects.get(value="+6281211112222").customer
    assert set(budi.identities.values_list("value", flat=True)) == {"+6281211112222", "b@mail.co.id"}
    assert Customer.objects.count() == 1
