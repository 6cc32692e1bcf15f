from __future__ import annotations

import pytest
from django.urls import reverse

from customers import services
from customers.models import CustomerMerge, MergeSuggestion
from tests.customers.factories import CustomerFactory, IdentityFactory

pytestmark = pytest.mark.django_db


def test_admin_finds_a_customer_by_any_spelling_of_the_phone(client, admin_user):
    budi = CustomerFactory(display_name="Budi")
    IdentityFactory(customer=budi, kind="phone", value="+6281234567890")
    CustomerFactory(display_name="Siti")
    client.force_login(admin_user)

    response = client.get(reverse("admin:customers_customer_changelist"), {"q": "0812-3456-7890"})

    assert response.status_code == 200
    assert [c.pk for c in response.context["cl"].result_list] == [budi.pk]


def test_admin_filters_by_stage_and_channel(client, admin_user):
    match = CustomerFactory(lifecycle_stage="loyalty")
    IdentityFactory(customer=match, kind="email")
    CustomerFactory(lifecycle_stage="loyalty")
    client.force_login(admin_user)

    response = client.get(
        reverse("admin:customers_customer_changelist"), {"lifecycle_stage__exact": "loyalty", "channel": "email"}
    )

    assert [c.pk for c in response.context["cl"].result_list] == [match.pk]


def test_admin_merge_action_keeps_the_older_customer(client, supervisor):
    older, newer = CustomerFactory(), CustomerFactory()
    client.force_login(supervisor)

    client.post(
        reverse("admin:customers_customer_changelist"),
        {"action": "merge_selected", "_selected_action": [older.pk, newer.pk]},
    )

    merge = CustomerMerge.objects.get()
    assert (merge.survivor_id, merge.merged_id, merge.actor) == (older.pk, newer.pk, supervisor)


def test_admin_accepts_a_merge_suggestion(client, supervisor):
    one, two = CustomerFactory(), CustomerFactory()
    suggestion = services.merge_suggestion_record(first=one, second=two, score=0.8, evidence={"reason": "x"})
    client.force_login(supervisor)

    client.post(
        reverse("admin:customers_mergesuggestion_changelist"), {"action": "accept", "_selected_action": [suggestion.pk]}
    )

    suggestion.refresh_from_db()
    assert suggestion.status == MergeSuggestion.Status.ACCEPTED
    two.refresh_from_db()
    assert two.merged_into_id == one.pk


def test_admin_identity_inline_normalises_and_validates(client, admin_user):
    customer = CustomerFactory(display_name="Budi")
    client.force_login(admin_user)
    url = reverse("admin:customers_customer_change", args=[customer.pk])
    form = {
        "display_name": "Budi",
        "language": "",
        "time_zone": "",
        "lifecycle_stage": "reach",
        "attributes": "{}",
        "identities-TOTAL_FORMS": "1",
        "identities-INITIAL_FORMS": "0",
        "identities-0-kind": "phone",
        "identities-0-value": "0812-3456-7890",
        "identities-0-scope": "",
        "identities-0-source": "admin",
        "consents-TOTAL_FORMS": "0",
        "consents-INITIAL_FORMS": "0",
        "notes-TOTAL_FORMS": "0",
        "notes-INITIAL_FORMS": "0",
    }

    bad = client.post(url, {**form, "identities-0-value": "123"})
    good = client.post(url, form)

    assert bad.status_code == 200
    assert "“123” is not a valid phone number." in bad.content.decode()
    assert good.status_code == 302
    assert list(customer.identities.values_list("kind", "value")) == [("phone", "+6281234567890")]


def test_admin_phone_search_respects_the_active_filters(client, admin_user):
    reach = CustomerFactory(lifecycle_stage="reach")
    IdentityFactory(customer=reach, kind="phone", value="+6281234567890")
    client.force_login(admin_user)

    response = client.get(
        reverse("admin:customers_customer_changelist"), {"q": "0812-3456-7890", "lifecycle_stage__exact": "loyalty"}
    )

    assert list(response.context["cl"].result_list) == []
