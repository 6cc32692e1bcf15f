"""Canned responses: CRUD through the API, rendering with a fixed set of variables."""
from __future__ import annotations

import pytest

from accounts.models import Role
from channels_app.models import CannedResponse, Conversation
from channels_app.services import canned_response_create, canned_response_render
from customers.models import Customer
from tests.channels_app.test_webhooks import whatsapp_inbox

pytestmark = pytest.mark.django_db


def _conversation(*, name: str = "Budi Santoso", assignee=None) -> Conversation:
    inbox = whatsapp_inbox()
    conversation = Conversation.objects.create(customer=Customer.objects.create(display_name=name),
                                               last_inbox=inbox, assignee=assignee)
    conversation.inboxes.add(inbox)
    return conversation


def test_agent_creates_a_canned_response_and_lists_it(client, agent):
    client.force_login(agent)

    response = client.post("/api/v1/canned-responses/", {"shortcut": "/Thanks", "title": "Thank you",
                                                         "body": "Terima kasih, {{customer.first_name}}!",
                                                         "language": "ID"}, content_type="application/json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["shortcut"] == "thanks"
    assert body["language"] == "id"
    assert body["created_by"]["id"] == agent.pk
    canned = CannedResponse.objects.get()
    assert canned.created_by == agent
    listed = client.get("/api/v1/canned-responses/").json()
    assert [c["shortcut"] for c in listed] == ["thanks"]


def test_duplicate_or_malformed_shortcut_is_rejected(client, agent):
    canned_response_create(shortcut="thanks", title="T", body="B")
    client.force_login(agent)

    duplicate = client.post("/api/v1/canned-responses/", {"shortcut": "thanks", "title": "T2", "body": "B2"},
                            content_type="application/json")
    malformed = client.post("/api/v1/canned-responses/", {"shortcut": "two words", "title": "T", "body": "B"},
                            content_type="application/json")

    assert duplicate.status_code == 400
    assert list(duplicate.json()["error"]["fields"]) == ["shortcut"]
    assert malformed.status_code == 400
    assert malformed.json()["error"]["fields"]["shortcut"] == ["Use lower-case letters, digits, - and _ (at most 50)."]
    assert CannedResponse.objects.count() == 1


def test_search_and_language_filter(client, agent):
    canned_response_create(shortcut="thanks", title="Thank you", body="Thanks!", language="en")
    canned_response_create(shortcut="makasih", title="Terima kasih", body="Terima kasih!", language="id")
    canned_response_create(shortcut="hours", title="Opening hours", body="09:00-17:00")
    client.force_login(agent)

    by_language = client.get("/api/v1/canned-responses/?language=id").json()
    by_search = client.get("/api/v1/canned-responses/?search=/thank").json()

    assert [c["shortcut"] for c in by_language] == ["hours", "makasih"]
    assert [c["shortcut"] for c in by_search] == ["thanks"]


def test_supervisor_updates_and_deletes_but_an_agent_may_not(client, agent, supervisor):
    canned = canned_response_create(shortcut="thanks", title="T", body="B")
    client.force_login(agent)
    assert client.patch(f"/api/v1/canned-responses/{canned.pk}/", {"body": "x"},
                        content_type="application/json").status_code == 403
    assert client.delete(f"/api/v1/canned-responses/{canned.pk}/").status_code == 403

    client.force_login(supervisor)
    patched = client.patch(f"/api/v1/canned-responses/{canned.pk}/", {"body": "Hi {{customer.name}}",
                                                                      "shortcut": "hi"},
                           content_type="application/json")
    assert patched.status_code == 200, patched.json()
    assert (patched.json()["shortcut"], patched.json()["body"]) == ("hi", "Hi {{customer.name}}")
    assert client.get(f"/api/v1/canned-responses/{canned.pk}/").json()["title"] == "T"

    assert client.delete(f"/api/v1/canned-responses/{canned.pk}/").status_code == 204
    assert CannedResponse.objects.count() == 0
    assert client.get(f"/api/v1/canned-responses/{canned.pk}/").status_code == 404


def test_anonymous_is_refused(client):
    assert client.get("/api/v1/canned-responses/").status_code in (401, 403)


def test_render_substitutes_the_known_variables(make_user):
    agent = make_user(Role.AGENT, full_name="Sari Wulandari")
    conversation = _conversation(name="Budi Santoso", assignee=agent)
    canned = canned_response_create(
        shortcut="hi", title="Hi",
        body="Halo {{customer.first_name}} ({{ customer.name }}), saya {{agent.first_name}}.")

    assert canned_response_render(canned=canned, conversation=conversation) == (
        "Halo Budi (Budi Santoso), saya Sari.")


def test_render_leaves_unknown_variables_and_template_syntax_alone(make_user):
    agent = make_user(Role.AGENT, full_name="Sari")
    conversation = _conversation(name="{{agent.first_name}} {% debug %}")
    canned = canned_response_create(
        shortcut="x", title="X",
        body="{{customer.first_name}} {{customer.phone}} {{settings.SECRET_KEY}} {% load static %} {{customer.name}}")

    rendered = canned_response_render(canned=canned, conversation=conversation, agent=agent)

    # The customer's name is inserted literally: it is not rendered again as a variable.
    assert rendered == ("{{agent.first_name}} {{customer.phone}} {{settings.SECRET_KEY}} {% load static %} "
                        "{{agent.first_name}} {% debug %}")


def test_render_without_an_agent_or_a_customer_name_gives_empty_values():
    conversation = _conversation(name="")
    canned = canned_response_create(shortcut="x", title="X", body="Hi {{customer.first_name}}|{{agent.first_name}}")

    assert canned_response_render(canned=canned, conversation=conversation) == "Hi |"


def test_render_api_fills_in_the_conversation_and_the_calling_agent(client, make_user):
    supervisor = make_user(Role.SUPERVISOR, full_name="Dewi Lestari")
    conversation = _conversation(name="Budi Santoso")
    canned = canned_response_create(shortcut="hi", title="Hi", body="Halo {{customer.first_name}}, {{agent.first_name}} di sini.")
    client.force_login(supervisor)

    response = client.post(f"/api/v1/canned-responses/{canned.pk}/render/", {"conversation": conversation.pk},
                           content_type="application/json")

    assert response.status_code == 200, response.json()
    assert response.json() == {"content": "Halo Budi, Dewi di sini."}


def test_render_api_is_404_for_a_conversation_the_agent_cannot_see(client, agent):
    conversation = _conversation()
    canned = canned_response_create(shortcut="hi", title="Hi", body="Halo")
    client.force_login(agent)

    response = client.post(f"/api/v1/canned-responses/{canned.pk}/render/", {"conversation": conversation.pk},
                           content_type="application/json")

    assert response.status_code == 404


def test_admin_creates_a_canned_response_through_the_service(client, admin_user):
    client.force_login(admin_user)

    response = client.post("/admin/channels_app/cannedresponse/add/", {
        "shortcut": "/Promo", "title": "Promo", "body": "Halo {{customer.first_name}}", "language": ""})

    assert response.status_code == 302
    canned = CannedResponse.objects.get()
    assert (canned.shortcut, canned.created_by) == ("promo", admin_user)
    assert client.get("/admin/channels_app/cannedresponse/").status_code == 200


def test_admin_refuses_a_shortcut_that_differs_only_by_case_or_slash(client, admin_user):
    canned_response_create(shortcut="promo", title="Promo", body="x")
    client.force_login(admin_user)

    response = client.post("/admin/channels_app/cannedresponse/add/", {
        "shortcut": "/PROMO", "title": "Promo 2", "body": "y", "language": ""})

    assert response.status_code == 200
    assert b"already exists" in response.content
    assert CannedResponse.objects.count() == 1
