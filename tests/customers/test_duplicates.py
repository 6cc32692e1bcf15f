from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from customers.models import MergeSuggestion
from customers.tasks import duplicates_suggest_task
from tests.customers.factories import CustomerFactory, IdentityFactory

pytestmark = pytest.mark.django_db


def test_finder_records_similar_names_sharing_a_phone_tail_as_a_suggestion():
    one = CustomerFactory(display_name="Dewi Lestari")
    IdentityFactory(customer=one, kind="phone", value="+6281234567890")
    two = CustomerFactory(display_name="Dewi  Lestari.")
    IdentityFactory(customer=two, kind="phone", value="+6221234567890")  # landline, same last 8 digits
    CustomerFactory(display_name="Dewi Lestari")  # same name, nothing shared

    recorded = duplicates_suggest_task()

    suggestion = MergeSuggestion.objects.get()
    assert recorded == 1
    assert (suggestion.a_id, suggestion.b_id) == (one.pk, two.pk)
    assert [e["reason"] for e in suggestion.evidence] == ["similar_name", "phone_last_digits"]


def test_finder_command_reports_the_count():
    one = CustomerFactory(display_name="Agus Pratama")
    IdentityFactory(customer=one, kind="email", value="agus.p@mail.co.id")
    two = CustomerFactory(display_name="Agus Pratama")
    IdentityFactory(customer=two, kind="email", value="agus.p@kantor.co.id")
    out = io.StringIO()

    call_command("customers_find_duplicates", stdout=out)

    assert out.getvalue().strip() == "1 open merge suggestion(s) recorded or strengthened."
