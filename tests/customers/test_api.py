from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.models import AuditEntry
from accounts.services import api_token_create
from customers.models import Customer, CustomerMerge, Identity
from tests.customers.factories import AttributeDefinitionFactory, CustomerFactory, IdentityFactory, TimelineEntryFactory

pytestmark = pytest.mark.django_db


def bearer(user) -> APIClient:
    _token, raw = api_token_create(user=user, name="test")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_anonymous_request_is_refused():
    response = APIClient().get("/api/v1/customers/")

    assert response.status_code == 401


def test_create_customer_normalises_identities(agent):
    response = bearer(agent).post(
        "/api/v1/customers/",
        {
            "display_name": "Budi",
            "identities": [{"kind": "phone", "value": "0812-3456-7890"}, {"kind": "email", "value": "Budi@Mail.co.id"}],
            "tags": ["VIP"],
        },
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    assert body["display_name"] == "Budi"
    assert body["tags"] == ["VIP"]
    assert [(i["kind"], i["value"], i["verified"]) for i in body["identities"]] == [
        ("email", "budi@mail.co.id", False),
        ("phone", "+6281234567890", False),
    ]


def test_create_with_known_identity_returns_the_existing_customer(agent):
    customer = CustomerFactory(display_name="Budi")
    IdentityFactory(customer=customer, kind="phone", value="+6281234567890")

    response = bearer(agent).post(
        "/api/v1/customers/", {"identities": [{"kind": "phone", "value": "6281234567890"}]}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["id"] == customer.pk
    assert Customer.objects.count() == 1


def test_invalid_phone_is_a_400_naming_the_field_and_nothing_is_written(agent):
    response = bearer(agent).post(
        "/api/v1/customers/",
        {
            "display_name": "X",
            "identities": [{"kind": "email", "value": "x@mail.co.id"}, {"kind": "phone", "value": "12345"}],
        },
        format="json",
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["fields"]["identities"]["1"]["value"] == ["“12345” is not a valid phone number."]
    assert Customer.objects.count() == 0 and Identity.objects.count() == 0


def test_bad_attribute_is_a_400_and_the_customer_is_not_half_created(agent):
    AttributeDefinitionFactory(key="age", type="number")

    response = bearer(agent).post(
        "/api/v1/customers/",
        {"identities": [{"kind": "email", "value": "x@mail.co.id"}], "attributes": {"age": "old"}},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"attributes": ["age: must be a number"]}
    assert Customer.objects.count() == 0


def test_patch_updates_fields_and_adds_identities(agent):
    AttributeDefinitionFactory(key="city")
    customer = CustomerFactory()

    response = bearer(agent).patch(
        f"/api/v1/customers/{customer.pk}/",
        {
            "display_name": "Siti",
            "attributes": {"city": "Surabaya"},
            "identities": [{"kind": "email", "value": "siti@mail.co.id"}],
        },
        format="json",
    )

    assert response.status_code == 200
    body = response.json()
    assert (body["display_name"], body["attributes"]) == ("Siti", {"city": "Surabaya"})
    assert [i["value"] for i in body["identities"]] == ["siti@mail.co.id"]


def test_patch_with_bad_time_zone_names_the_field(agent):
    customer = CustomerFactory()

    response = bearer(agent).patch(f"/api/v1/customers/{customer.pk}/", {"time_zone": "Mars/Olympus"}, format="json")

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["time_zone"]


def test_lookup_finds_by_any_spelling_of_the_phone(agent):
    customer = CustomerFactory()
    IdentityFactory(customer=customer, kind="phone", value="+6281234567890")

    response = bearer(agent).get("/api/v1/customers/lookup/", {"kind": "phone", "value": "0812-3456-7890"})

    assert response.status_code == 200
    assert response.json()["id"] == customer.pk


def test_lookup_of_unknown_identity_is_404(agent):
    response = bearer(agent).get("/api/v1/customers/lookup/", {"kind": "email", "value": "nobody@mail.co.id"})

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_lookup_of_invalid_value_is_400_on_value(agent):
    response = bearer(agent).get("/api/v1/customers/lookup/", {"kind": "phone", "value": "abc"})

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["value"]


def test_list_searches_and_hides_merged_profiles(agent, supervisor):
    budi = CustomerFactory(display_name="Budi")
    IdentityFactory(customer=budi, kind="phone", value="+6281234567890")
    CustomerFactory(display_name="Siti")

    response = bearer(agent).get("/api/v1/customers/", {"q": "3456"})

    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [budi.pk]


def test_agent_cannot_merge(agent):
    one, two = CustomerFactory(), CustomerFactory()

    response = bearer(agent).post(f"/api/v1/customers/{one.pk}/merge/", {"source": two.pk}, format="json")

    assert response.status_code == 403
    assert CustomerMerge.objects.count() == 0


def test_supervisor_merges_and_undoes(supervisor):
    one, two = CustomerFactory(), CustomerFactory()
    IdentityFactory(customer=two, kind="email", value="two@mail.co.id")
    client = bearer(supervisor)

    merged = client.post(
        f"/api/v1/customers/{one.pk}/merge/", {"source": two.pk, "reason": "same person"}, format="json"
    )
    undone = client.post(f"/api/v1/merges/{merged.json()['merge_id']}/undo/")

    assert merged.status_code == 200
    assert merged.json()["survivor"]["id"] == one.pk
    assert [i["value"] for i in merged.json()["survivor"]["identities"]] == ["two@mail.co.id"]
    assert undone.status_code == 200
    assert undone.json()["restored"]["identities"][0]["value"] == "two@mail.co.id"
    assert undone.json()["survivor"]["identities"] == []


def test_merge_with_unknown_source_is_400_on_source(supervisor):
    one = CustomerFactory()

    response = bearer(supervisor).post(f"/api/v1/customers/{one.pk}/merge/", {"source": 999999}, format="json")

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["source"]


def test_timeline_api_paginates_with_cursor(agent):
    customer = CustomerFactory()
    entries = [TimelineEntryFactory(customer=customer) for _ in range(5)]
    client = bearer(agent)

    first = client.get(f"/api/v1/customers/{customer.pk}/timeline/", {"page_size": 3}).json()
    second = client.get(
        f"/api/v1/customers/{customer.pk}/timeline/", {"page_size": 3, "cursor": first["next_cursor"]}
    ).json()

    assert [e["id"] for e in first["results"] + second["results"]] == [e.pk for e in reversed(entries)]
    assert second["next_cursor"] is None
    assert "cursor=" in first["next"]


def test_timeline_api_bad_cursor_is_400(agent):
    customer = CustomerFactory()

    response = bearer(agent).get(f"/api/v1/customers/{customer.pk}/timeline/", {"cursor": "garbage"})

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["cursor"]


def test_erase_requires_confirmation(supervisor):
    customer = CustomerFactory(display_name="Budi")

    refused = bearer(supervisor).post(f"/api/v1/customers/{customer.pk}/erase/", {}, format="json")
    erased = bearer(supervisor).post(f"/api/v1/customers/{customer.pk}/erase/", {"confirm": True}, format="json")

    assert refused.status_code == 400
    assert list(refused.json()["error"]["fields"]) == ["confirm"]
    assert erased.status_code == 204
    customer.refresh_from_db()
    assert (customer.display_name, customer.is_erased) == ("", True)


def test_agent_cannot_erase_or_export(agent):
    customer = CustomerFactory()
    client = bearer(agent)

    assert client.post(f"/api/v1/customers/{customer.pk}/erase/", {"confirm": True}, format="json").status_code == 403
    assert client.get(f"/api/v1/customers/{customer.pk}/export/").status_code == 403


def test_export_is_audited(supervisor):
    customer = CustomerFactory(display_name="Budi")

    response = bearer(supervisor).get(f"/api/v1/customers/{customer.pk}/export/")

    assert response.status_code == 200
    assert response.json()["customer"]["display_name"] == "Budi"
    assert AuditEntry.objects.filter(action=AuditEntry.Action.DATA_EXPORTED).count() == 1


def test_segments_create_count_and_list_customers(supervisor, agent):
    vip = CustomerFactory(lifecycle_stage="loyalty")
    CustomerFactory(lifecycle_stage="reach")

    created = bearer(supervisor).post(
        "/api/v1/segments/", {"name": "Loyal", "filters": {"stage": "loyalty"}}, format="json"
    )
    listed = bearer(agent).get("/api/v1/segments/")
    members = bearer(agent).get(f"/api/v1/segments/{created.json()['id']}/customers/")

    assert created.status_code == 201
    assert created.json()["customer_count"] == 1
    assert [(s["name"], s["customer_count"]) for s in listed.json()["results"]] == [("Loyal", 1)]
    assert [c["id"] for c in members.json()["results"]] == [vip.pk]


def test_segment_with_unknown_filter_is_400_on_filters(supervisor):
    response = bearer(supervisor).post(
        "/api/v1/segments/", {"name": "Bad", "filters": {"colour": "red"}}, format="json"
    )

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["filters"]


def test_agent_cannot_create_segments(agent):
    response = bearer(agent).post("/api/v1/segments/", {"name": "Mine", "filters": {}}, format="json")

    assert response.status_code == 403


def test_customer_list_query_count_is_flat(agent, django_assert_max_num_queries):
    for i in range(25):
        IdentityFactory(customer=CustomerFactory(), value=f"p{i}@mail.co.id")
    client = bearer(agent)
    client.get("/api/v1/customers/")

    with django_assert_max_num_queries(8):
        response = client.get("/api/v1/customers/")

    assert len(response.json()["results"]) == 25


def test_merged_away_customer_points_at_its_survivor(supervisor):
    one, two = CustomerFactory(), CustomerFactory()
    client = bearer(supervisor)
    client.post(f"/api/v1/customers/{one.pk}/merge/", {"source": two.pk}, format="json")

    response = client.get(f"/api/v1/customers/{two.pk}/")
    patch = client.patch(f"/api/v1/customers/{two.pk}/", {"display_name": "x"}, format="json")

    assert response.status_code == 200
    assert response.json()["merged_into"] == one.pk
    assert patch.status_code == 404


@pytest.mark.parametrize("page_size", [5, 100])
def test_timeline_api_query_count_does_not_grow_with_page_size(page_size, agent, django_assert_max_num_queries):
    customer = CustomerFactory()
    for _ in range(120):
        TimelineEntryFactory(customer=customer)
    client = bearer(agent)
    client.get(f"/api/v1/customers/{customer.pk}/timeline/")  # token, permissions and session warm-up

    # token, 2 × permissions, customer, one page of entries
    with django_assert_max_num_queries(5):
        response = client.get(f"/api/v1/customers/{customer.pk}/timeline/", {"page_size": page_size})

    assert len(response.json()["results"]) == page_size


def test_segment_list_counts_every_segment_in_one_query(supervisor, django_assert_max_num_queries):
    from customers import services as customer_services

    AttributeDefinitionFactory(key="city")
    CustomerFactory(lifecycle_stage="loyalty", attributes={"city": "Bandung"})
    CustomerFactory(lifecycle_stage="reach", attributes={"city": "Bandung"})
    for index, filters in enumerate(
        [{"stage": "loyalty"}, {"attributes": {"city": "Bandung"}}, {"stage": "reach"}, {}]
    ):
        customer_services.segment_create(name=f"S{index}", filters=filters)
    client = bearer(supervisor)
    client.get("/api/v1/segments/")

    # token, 2 × permissions, segments page, the ids for counting, one aggregate
    with django_assert_max_num_queries(6):
        response = client.get("/api/v1/segments/")

    assert [(s["name"], s["customer_count"]) for s in response.json()["results"]] == [
        ("S0", 1),
        ("S1", 2),
        ("S2", 1),
        ("S3", 2),
    ]


def test_segment_attribute_filter_must_name_a_defined_attribute(supervisor):
    response = bearer(supervisor).post(
        "/api/v1/segments/", {"name": "X", "filters": {"attributes": {"city__regex": ".*"}}}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["fields"]["filters"] == ["attributes: unknown attribute city__regex"]


def test_patch_with_an_identity_of_another_customer_is_400_and_changes_nothing(agent):
    owner = CustomerFactory()
    IdentityFactory(customer=owner, kind="email", value="taken@mail.co.id")
    customer = CustomerFactory(display_name="Before")

    response = bearer(agent).patch(
        f"/api/v1/customers/{customer.pk}/",
        {"display_name": "After", "identities": [{"kind": "email", "value": "TAKEN@mail.co.id"}]},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["error"]["fields"]["identities"]["0"]["value"] == [
        f"taken@mail.co.id already belongs to customer #{owner.pk}; merge the profiles instead."
    ]
    customer.refresh_from_db()
    assert customer.display_name == "Before"
