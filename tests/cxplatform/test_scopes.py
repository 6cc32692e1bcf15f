"""Token scopes: <group>:read / <group>:write on top of the user's own permissions."""
from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from accounts.models import ApiToken
from accounts.services import api_token_create
from customers.models import Customer
from cxplatform.api.permissions import scope_allows, scope_group_for_path

pytestmark = pytest.mark.django_db


def bearer(user, scopes=None) -> APIClient:
    _token, raw = api_token_create(user=user, name="test", scopes=scopes)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_read_only_token_cannot_post(agent):
    client = bearer(agent, ["customers:read"])

    listed = client.get("/api/v1/customers/")
    created = client.post("/api/v1/customers/", {"display_name": "Dewi"}, format="json")

    assert listed.status_code == 200
    assert created.status_code == 403
    assert created.json()["error"] == {
        "code": "permission_denied",
        "message": "This API token lacks the scope customers:write.",
        "fields": {},
        "request_id": created["X-Request-ID"],
    }
    assert Customer.objects.count() == 0


def test_write_scope_allows_writing_and_reading(agent):
    client = bearer(agent, ["customers:write"])

    assert client.post("/api/v1/customers/", {"display_name": "Dewi"}, format="json").status_code == 201
    assert client.get("/api/v1/customers/").status_code == 200


def test_token_without_the_group_is_refused_even_for_reads(supervisor):
    client = bearer(supervisor, ["customers:read"])

    response = client.get("/api/v1/reports/funnel/")

    assert response.status_code == 403
    assert response.json()["error"]["message"] == "This API token lacks the scope reports:read."


def test_empty_scopes_mean_all_of_the_users_permissions(agent, supervisor):
    assert bearer(agent).post("/api/v1/customers/", {"display_name": "A"}, format="json").status_code == 201
    assert bearer(supervisor).get("/api/v1/reports/funnel/").status_code == 200


def test_scopes_never_widen_the_users_permissions(agent):
    client = bearer(agent, ["reports:read", "events:write"])

    assert client.get("/api/v1/reports/funnel/").status_code == 403  # agents may not see reports
    assert client.post("/api/v1/events/", {}, format="json").status_code == 403  # nor post events


def test_webhooks_group_on_a_view_that_keeps_the_default_permissions(admin_user):
    client = bearer(admin_user, ["webhooks:read"])

    assert client.get("/api/v1/webhooks/").status_code == 200
    assert client.post("/api/v1/webhooks/", {"url": "https://example.com/", "events": ["customer.created"]},
                       format="json").status_code == 403


@pytest.mark.parametrize(
    ("path", "group"),
    [
        ("/api/v1/customers/", "customers"),
        ("/api/v1/customers/5/merge/", "customers"),
        ("/api/v1/customers/5/stage/", "events"),
        ("/api/v1/customers/5/stage-history/", "events"),
        ("/api/v1/segments/3/customers/", "customers"),
        ("/api/v1/merges/1/undo/", "customers"),
        ("/api/v1/conversations/9/messages/", "conversations"),
        ("/api/v1/inboxes/2/", "inboxes"),
        ("/api/v1/events/", "events"),
        ("/api/v1/csat-responses/", "events"),
        ("/api/v1/reports/kpis/", "reports"),
        ("/api/v1/maturity-assessments/", "reports"),
        ("/api/v1/webhooks/1/deliveries/", "webhooks"),
        ("/api/v1/webhook-deliveries/1/redeliver/", "webhooks"),
        ("/api/v1/me/", "accounts"),
        ("/api/v1/agents/4/availability/", "accounts"),
        ("/api/v1/unknown/", None),
        ("/admin/", None),
    ],
)
def test_path_to_group(path, group):
    assert scope_group_for_path(path) == group


@pytest.mark.parametrize(
    ("scopes", "group", "method", "allowed"),
    [
        ([], None, "POST", True),
        (["customers:read"], "customers", "GET", True),
        (["customers:read"], "customers", "HEAD", True),
        (["customers:read"], "customers", "POST", False),
        (["customers:read"], "customers", "DELETE", False),
        (["customers:write"], "customers", "PATCH", True),
        (["customers:write"], "conversations", "GET", False),
        (["customers:write"], None, "GET", False),
    ],
)
def test_scope_allows(scopes, group, method, allowed):
    assert scope_allows(scopes, group=group, method=method) is allowed


def test_apitoken_command_sets_scopes(agent, capsys):
    call_command("apitoken", agent.email, "--scopes", "customers:read, events:write")

    raw = capsys.readouterr().out.strip()
    token = ApiToken.objects.get(user=agent)
    assert token.scopes == ["customers:read", "events:write"]
    assert raw.startswith(token.prefix)


def test_apitoken_command_refuses_unknown_scopes(agent):
    with pytest.raises(CommandError, match="Unknown scope: customers:admin"):
        call_command("apitoken", agent.email, "--scopes", "customers:admin")

    assert not ApiToken.objects.exists()
