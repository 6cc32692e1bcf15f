from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.models import ApiToken, AuditEntry, Availability, Role
from accounts.services import api_token_create, api_token_revoke
from tests.accounts.factories import TeamFactory, add_to_team

pytestmark = pytest.mark.django_db


def bearer(raw: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def test_apitoken_command_prints_only_the_token_and_stores_its_hash(agent, capsys):
    call_command("apitoken", agent.email)
    raw = capsys.readouterr().out.strip()

    assert raw.startswith("cxp_") and "\n" not in raw
    token = ApiToken.objects.get(user=agent)
    assert token.key_hash != raw and raw not in token.key_hash
    assert AuditEntry.objects.filter(action=AuditEntry.Action.TOKEN_CREATED, actor=agent).count() == 1


def test_bearer_token_authenticates_and_records_last_use(client, agent):
    token, raw = api_token_create(user=agent, name="shop sync")

    response = client.get("/api/v1/me/", REMOTE_ADDR="203.0.113.7", **bearer(raw))

    assert response.status_code == 200
    assert response.json()["email"] == agent.email
    assert response.json()["role"] == Role.AGENT
    token.refresh_from_db()
    assert token.last_used_ip == "203.0.113.7"
    assert token.last_used_at is not None


@pytest.mark.parametrize("state", ["revoked", "expired", "unknown"])
def test_unusable_tokens_get_401_in_the_common_error_shape(client, agent, state):
    token, raw = api_token_create(user=agent, name="t")
    if state == "revoked":
        api_token_revoke(token=token)
    elif state == "expired":
        ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    else:
        raw = "cxp_not-a-real-token"

    response = client.get("/api/v1/me/", **bearer(raw))

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    error = response.json()["error"]
    assert error["code"] == "authentication_failed"
    assert error["message"] == "Invalid, expired or revoked token."
    assert error["fields"] == {}
    assert error["request_id"] == response["X-Request-ID"]


def test_anonymous_api_request_is_401(client, db):
    response = client.get("/api/v1/me/")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_validation_errors_name_the_field(client, agent):
    _token, raw = api_token_create(user=agent, name="t")

    response = client.patch("/api/v1/me/", {"time_zone": "Mars/Base", "availability": "asleep"}, content_type="application/json", **bearer(raw))

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert set(error["fields"]) == {"time_zone", "availability"}


def test_agent_updates_own_preferences_and_availability(client, agent):
    _token, raw = api_token_create(user=agent, name="t")

    response = client.patch("/api/v1/me/", {"time_zone": "Asia/Makassar", "availability": "away", "language": "id"}, content_type="application/json", **bearer(raw))

    assert response.status_code == 200, response.json()
    agent.refresh_from_db()
    assert (agent.time_zone, agent.availability, agent.language) == ("Asia/Makassar", Availability.AWAY, "id")


def test_agents_see_only_their_teammates_supervisors_see_everyone(client, make_user, supervisor):
    support, sales = TeamFactory(name="Support"), TeamFactory(name="Sales")
    alice, bob, carol = make_user(email="alice@example.com"), make_user(email="bob@example.com"), make_user(email="carol@example.com")
    add_to_team(alice, support), add_to_team(bob, support), add_to_team(carol, sales)

    client.force_login(alice)
    seen_by_alice = {row["email"] for row in client.get("/api/v1/agents/").json()["results"]}
    client.force_login(supervisor)
    seen_by_supervisor = {row["email"] for row in client.get("/api/v1/agents/").json()["results"]}

    assert seen_by_alice == {"alice@example.com", "bob@example.com"}
    assert seen_by_supervisor == {"alice@example.com", "bob@example.com", "carol@example.com", "supervisor@example.com"}


def test_agent_list_query_count_does_not_grow_with_agents(client, supervisor, make_user, django_assert_max_num_queries):
    team = TeamFactory()
    for i in range(30):
        add_to_team(make_user(email=f"a{i}@example.com"), team)
    client.force_login(supervisor)

    with django_assert_max_num_queries(8):
        response = client.get("/api/v1/agents/")

    assert len(response.json()["results"]) == 31


def test_only_supervisors_set_another_agents_availability(client, agent, make_user, supervisor):
    team = TeamFactory()
    other = make_user(email="other@example.com")
    add_to_team(agent, team), add_to_team(other, team)

    client.force_login(agent)
    refused = client.post(f"/api/v1/agents/{other.pk}/availability/", {"availability": "online"}, content_type="application/json")
    client.force_login(supervisor)
    allowed = client.post(f"/api/v1/agents/{other.pk}/availability/", {"availability": "online"}, content_type="application/json")

    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "permission_denied"
    assert allowed.status_code == 200
    other.refresh_from_db()
    assert other.availability == Availability.ONLINE


def test_openapi_schema_and_docs_are_served(client, db):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/v1/me/" in paths and "/api/v1/agents/" in paths
    assert client.get("/api/docs/").status_code == 200
