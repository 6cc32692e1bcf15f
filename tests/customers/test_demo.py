from __future__ import annotations

import io

import pytest

from customers.demo import seed_demo_customers
from customers.models import Customer, CustomerNote, Identity, MergeSuggestion, TimelineEntry

pytestmark = pytest.mark.django_db


def counts() -> tuple[int, int, int, int, int]:
    return (
        Customer.objects.count(),
        Identity.objects.count(),
        CustomerNote.objects.count(),
        TimelineEntry.objects.count(),
        MergeSuggestion.objects.filter(status="open").count(),
    )


def test_demo_customers_are_seeded_once():
    out = io.StringIO()

    seed_demo_customers(out)
    first = counts()
    seed_demo_customers(io.StringIO())

    assert counts() == first
    assert first[0] == 31 and first[4] == 1
    assert set(Identity.objects.values_list("kind", flat=True)) == {
        "external_id",
        "phone",
        "email",
        "instagram",
        "telegram",
        "web_visitor",
    }
    assert "30 demo customers" in out.getvalue()
