"""Journeys API: events (idempotent), stage set/history, CSAT responses, report permissions."""
from __future__ import annotations

import pytest

from accounts.models import AuditEntry, Role
from customers.models import Customer
from journeys.models import CustomerEvent, StageChange
from journeys.services import customer_event_record
from tests.journeys.factories import at

pytestmark = pytest.mark.django_db

EVENT = {
    "id": "shop-order-981",
    "type": "order.paid",
    "customer": {"email": "dewi@mail.test", "phone": "+62 812 1111 2222", "external_id": "cust-77"},
    "occurred_at": "2026-03-02T09:00:00Z",
    "properties": {"total": 250000, "channel": "website"},
}


@pytest.fixture
def integrator(make_user):
    return make_user(Role.SUPERVISOR, email="integrator@example.com")


def test_post_event_creates_then_replay_returns_the_original_with_200(client, integrator):
    client.force_login(integrator)

    created = client.post("/api/v1/events/", EVENT, content_type="application/json")
    replay = client.post("/api/v1/events/", {**EVENT, "type": "signup"}, content_type="application/json")

    assert created.status_code == 201, created.content
    body = created.json()
    assert body["id"] == "shop-order-981" and body["meaning"] == "purchase" and body["customer_created"] is True
    assert body["customer_stage"] == "conversion"
    assert replay.status_code == 200
    assert replay.json() == body
    assert CustomerEvent.objects.count() == 1 and Customer.objects.count() == 1 and StageChange.objects.count() == 1


def test_post_event_without_identities_is_a_validation_error(client, integrator):
    client.force_login(integrator)
    response = client.post("/api/v1/events/", {**EVENT, "customer": {}}, content_type="application/json")
    assert response.status_code == 400
    assert "customer" in response.json()["error"]["fields"]
    assert CustomerEvent.objects.count() == 0


def test_agents_may_not_post_events(client, agent):
    client.force_login(agent)
    assert client.post("/api/v1/events/", EVENT, content_type="application/json").status_code == 403


def test_stage_can_be_moved_back_explicitly_and_is_audited(client, supervisor):
    customer_event_record(event_id="1", event_type="order.paid", occurred_at=at(), email="a@mail.test")
    customer = Customer.objects.get()
    client.force_login(supervisor)

    response = client.post(f"/api/v1/customers/{customer.pk}/stage/", {"stage": "acquisition", "reason": "refunded"},
                           content_type="application/json")

    assert response.status_code == 201, response.content
    assert response.json()["from_stage"] == "conversion" and response.json()["to_stage"] == "acquisition"
    customer.refresh_from_db()
    assert customer.lifecycle_stage == "acquisition"
    entry = AuditEntry.objects.get(action="journeys.stage_set")
    assert entry.actor == supervisor and entry.data["note"] == "refunded" and entry.target_id == str(customer.pk)
    history = client.get(f"/api/v1/customers/{customer.pk}/stage-history/").json()
    assert [(h["from_stage"], h["to_stage"], h["reason"], h["rule_code"], h["actor"]) for h in history] == [
        ("reach", "conversion", "rule", "conversion_first_purchase", None),
        ("conversion", "acquisition", "api", "", "supervisor@example.com"),
    ]


@pytest.mark.parametrize("stage", ["nowhere", "reach"])
def test_stage_set_refuses_unknown_or_same_stage(client, supervisor, stage):
    customer = Customer.objects.create(display_name="x")
    client.force_login(supervisor)
    response = client.post(f"/api/v1/customers/{customer.pk}/stage/", {"stage": stage}, content_type="application/json")
    assert response.status_code == 400
    assert StageChange.objects.count() == 0


def test_agents_read_history_but_cannot_set_stage(client, agent):
    customer = Customer.objects.create(display_name="x")
    client.force_login(agent)
    assert client.get(f"/api/v1/customers/{customer.pk}/stage-history/").status_code == 200
    assert client.post(f"/api/v1/customers/{customer.pk}/stage/", {"stage": "loyalty"}, content_type="application/json").status_code == 403


@pytest.mark.parametrize("path", ["/api/v1/reports/funnel/", "/api/v1/reports/kpis/", "/api/v1/reports/csat/"])
def test_reports_are_for_supervisors(client, agent, supervisor, path):
    client.force_login(agent)
    assert client.get(path).status_code == 403
    client.force_login(supervisor)
    response = client.get(path + "?from=2026-03-01&to=2026-03-31&group_by=channel")
    assert response.status_code == 200
    assert response.json()["period_from"].startswith("2026-03-01")


def test_report_with_a_bad_group_by_is_refused(client, supervisor):
    client.force_login(supervisor)
    assert client.get("/api/v1/reports/kpis/?group_by=moon").status_code == 400
