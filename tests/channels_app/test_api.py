"""Channels API: inboxes, conversations, messages, assignment, status; visibility by team."""
from __future__ import annotations

import datetime as dt
import time

import pytest
from django.utils import timezone

from accounts.models import Role
from channels_app.models import Conversation, Inbox, Message
from channels_app.services import conversation_continue, inbox_create, inbox_settings
from customers.models import Customer
from tests.accounts.factories import TeamFactory, add_to_team
from tests.channels_app.test_webhooks import post_whatsapp, telegram_inbox, wa_text, whatsapp_inbox

pytestmark = pytest.mark.django_db

WA_CONFIG = {
    "phone_number_id": "106540352242922",
    "access_token": "EAAGm0PX4ZCpsBAsecret-token-WXYZ",
    "app_secret": "0123456789abcdef0123456789abcdef",
    "verify_token": "my-verify-token-1234",
}


def _conversation(*, team=None, assignee=None, inbox=None, status="open") -> Conversation:
    inbox = inbox or Inbox.objects.filter(kind="whatsapp").first() or whatsapp_inbox()
    conversation = Conversation.objects.create(customer=Customer.objects.create(display_name="Budi"), team=team,
                                               assignee=assignee, last_inbox=inbox, status=status,
                                               last_message_at=timezone.now())
    conversation.inboxes.add(inbox)
    return conversation


# --- inboxes ------------------------------------------------------------------------------


def test_supervisor_creates_an_inbox_secrets_are_encrypted_and_never_shown_in_full(client, supervisor, settings):
    settings.PUBLIC_BASE_URL = "https://cx.example.com"
    team = TeamFactory()
    client.force_login(supervisor)

    response = client.post("/api/v1/inboxes/", {"name": "WA Jakarta", "kind": "whatsapp", "config": WA_CONFIG,
                                                "default_team": team.pk}, content_type="application/json")

    assert response.status_code == 201, response.json()
    body = response.json()
    inbox = Inbox.objects.get()
    assert body["uuid"] == str(inbox.uuid)
    assert body["webhook_url"] == f"https://cx.example.com/webhooks/whatsapp/{inbox.uuid}/"
    assert body["default_team"] == team.pk
    assert body["config"]["phone_number_id"] == "106540352242922"
    assert body["config"]["access_token"] == "…WXYZ"
    assert body["config"]["app_secret"] == "…cdef"
    assert body["config"]["verify_token"] == "…1234"
    # At rest: non-secret settings in clear JSON, secrets only inside the Fernet token.
    assert "access_token" not in inbox.config
    assert "EAAGm0PX4ZCpsBAsecret" not in inbox.secrets_encrypted
    assert inbox_settings(inbox=inbox)["access_token"] == WA_CONFIG["access_token"]


def test_invalid_config_is_rejected_with_the_reason(client, supervisor):
    client.force_login(supervisor)

    response = client.post("/api/v1/inboxes/", {"name": "WA", "kind": "whatsapp",
                                                "config": {**WA_CONFIG, "phone_number_id": "abc"}},
                           content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"]["fields"]["config"] == ["phone_number_id must be the numeric id from WhatsApp Manager"]
    assert Inbox.objects.count() == 0


def test_missing_required_setting_is_rejected(client, supervisor):
    client.force_login(supervisor)
    config = {k: v for k, v in WA_CONFIG.items() if k != "app_secret"}

    response = client.post("/api/v1/inboxes/", {"name": "WA", "kind": "whatsapp", "config": config},
                           content_type="application/json")

    assert response.status_code == 400
    assert "app_secret" in response.json()["error"]["fields"]["config"][0]


def test_patch_keeps_secrets_sent_back_redacted_and_replaces_new_ones(client, supervisor):
    inbox = inbox_create(name="WA", kind="whatsapp", config=WA_CONFIG)
    client.force_login(supervisor)
    shown = client.get(f"/api/v1/inboxes/{inbox.pk}/").json()["config"]

    response = client.patch(f"/api/v1/inboxes/{inbox.pk}/",
                            {"name": "WA Surabaya", "config": {**shown, "app_secret": "new-app-secret-9999"}},
                            content_type="application/json")

    assert response.status_code == 200, response.json()
    assert response.json()["name"] == "WA Surabaya"
    stored = inbox_settings(inbox=Inbox.objects.get())
    assert stored["access_token"] == WA_CONFIG["access_token"]
    assert stored["verify_token"] == WA_CONFIG["verify_token"]
    assert stored["app_secret"] == "new-app-secret-9999"


def test_agents_may_list_inboxes_but_not_create_or_change_them(client, agent):
    inbox = inbox_create(name="WA", kind="whatsapp", config=WA_CONFIG)
    client.force_login(agent)

    listed = client.get("/api/v1/inboxes/")
    created = client.post("/api/v1/inboxes/", {"name": "x", "kind": "voice"}, content_type="application/json")
    patched = client.patch(f"/api/v1/inboxes/{inbox.pk}/", {"name": "x"}, content_type="application/json")

    assert listed.status_code == 200
    assert [row["name"] for row in listed.json()] == ["WA"]
    assert (created.status_code, patched.status_code) == (403, 403)


def test_voice_and_in_person_inboxes_need_no_provider_settings(client, supervisor):
    client.force_login(supervisor)

    response = client.post("/api/v1/inboxes/", {"name": "Call center", "kind": "voice"}, content_type="application/json")

    assert response.status_code == 201
    assert response.json()["config"] == {}


# --- conversations: visibility ------------------------------------------------------------


def test_agent_of_another_team_cannot_see_the_conversation(client, make_user):
    support, sales = TeamFactory(name="Support"), TeamFactory(name="Sales")
    alice, bob = make_user(), make_user()
    add_to_team(alice, support)
    add_to_team(bob, sales)
    conversation = _conversation(team=support)

    client.force_login(bob)
    detail = client.get(f"/api/v1/conversations/{conversation.pk}/")
    messages = client.get(f"/api/v1/conversations/{conversation.pk}/messages/")
    reply = client.post(f"/api/v1/conversations/{conversation.pk}/messages/", {"content": "hi"},
                        content_type="application/json")
    listed = client.get("/api/v1/conversations/")
    client.force_login(alice)
    seen_by_alice = client.get(f"/api/v1/conversations/{conversation.pk}/")

    assert (detail.status_code, messages.status_code, reply.status_code) == (404, 404, 404)
    assert listed.json()["results"] == []
    assert seen_by_alice.status_code == 200


def test_agent_sees_conversations_assigned_to_them_or_their_teams_supervisor_sees_all(client, make_user, supervisor):
    support, sales = TeamFactory(), TeamFactory()
    alice = make_user()
    add_to_team(alice, support)
    mine = _conversation(assignee=alice, team=sales)
    team_one = _conversation(team=support)
    _conversation(team=sales)
    _conversation()

    client.force_login(alice)
    seen_by_alice = [row["id"] for row in client.get("/api/v1/conversations/").json()["results"]]
    client.force_login(supervisor)
    seen_by_supervisor = client.get("/api/v1/conversations/").json()["results"]

    assert seen_by_alice == [team_one.pk, mine.pk]
    assert len(seen_by_supervisor) == 4


def test_conversation_list_filters(client, supervisor, make_user):
    team = TeamFactory()
    alice = make_user()
    wa = whatsapp_inbox()
    tg = telegram_inbox()
    a = _conversation(team=team, assignee=alice, inbox=wa)
    b = _conversation(inbox=tg, status="pending")
    c = _conversation(inbox=wa, status="resolved")
    client.force_login(supervisor)

    def ids(query: str) -> list[int]:
        response = client.get(f"/api/v1/conversations/?{query}")
        assert response.status_code == 200, response.json()
        return [row["id"] for row in response.json()["results"]]

    assert ids("status=pending") == [b.pk]
    assert ids(f"inbox={wa.pk}") == [c.pk, a.pk]
    assert ids(f"assignee={alice.pk}") == [a.pk]
    assert ids("assignee=none") == [c.pk, b.pk]
    assert ids(f"team={team.pk}") == [a.pk]
    assert ids(f"customer={c.customer_id}") == [c.pk]
    assert client.get("/api/v1/conversations/?status=closed").status_code == 400
    assert client.get("/api/v1/conversations/?assignee=bob").status_code == 400


def test_conversation_list_query_count_is_flat(client, make_user, django_assert_max_num_queries):
    team = TeamFactory()
    alice = make_user()
    add_to_team(alice, team)
    wa, tg = whatsapp_inbox(), telegram_inbox()
    for i in range(25):
        conversation = _conversation(team=team, assignee=alice if i % 2 else None, inbox=wa)
        conversation.inboxes.add(tg)
    client.force_login(alice)

    with django_assert_max_num_queries(10):  # + labels prefetch
        response = client.get("/api/v1/conversations/")

    results = response.json()["results"]
    assert len(results) == 25
    assert [i["kind"] for i in results[0]["inboxes"]] == ["whatsapp", "telegram"]


def test_conversation_list_is_cursor_paginated(client, supervisor):
    for _ in range(3):
        _conversation()
    client.force_login(supervisor)

    first = client.get("/api/v1/conversations/?page_size=2").json()
    second = client.get(first["next"]).json()

    assert len(first["results"]) == 2
    assert len(second["results"]) == 1
    assert second["next"] is None


# --- messages -----------------------------------------------------------------------------


def _team_agent_and_whatsapp_conversation(client, agent, provider_server, capture, text: str) -> Conversation:
    """`agent` in a team whose WhatsApp inbox (sending to `provider_server`) got `text`."""
    team = TeamFactory()
    add_to_team(agent, team)
    wa = whatsapp_inbox(api_base_url=provider_server.url, team=team)
    with capture(execute=True):
        post_whatsapp(client, wa, wa_text(text=text, timestamp=int(time.time()) - 30))
    return Conversation.objects.get()


def test_messages_list_and_reply_through_the_api(client, agent, provider_server, django_capture_on_commit_callbacks):
    conversation = _team_agent_and_whatsapp_conversation(client, agent, provider_server,
                                                         django_capture_on_commit_callbacks, "Halo, stok ada?")
    provider_server.respond(200, json_body={"messages": [{"id": "wamid.API1"}]})
    client.force_login(agent)

    with django_capture_on_commit_callbacks(execute=True):
        created = client.post(f"/api/v1/conversations/{conversation.pk}/messages/", {"content": "Ada, kak"},
                              content_type="application/json")
    listed = client.get(f"/api/v1/conversations/{conversation.pk}/messages/")

    assert created.status_code == 201, created.json()
    assert created.json()["status"] == "queued"  # the representation at creation time
    assert created.json()["channel"] == "whatsapp"
    assert [(m["direction"], m["content"], m["status"]) for m in listed.json()["results"]] == [
        ("outbound", "Ada, kak", "sent"), ("inbound", "Halo, stok ada?", "received")]
    assert provider_server.last.json()["text"]["body"] == "Ada, kak"


def test_reply_refused_by_the_channel_rule_is_400_with_the_reason(client, supervisor, django_capture_on_commit_callbacks):
    wa = whatsapp_inbox()
    with django_capture_on_commit_callbacks(execute=True):
        post_whatsapp(client, wa, wa_text(timestamp=int(time.time()) - 30 * 3600))
    conversation = Conversation.objects.get()
    client.force_login(supervisor)

    response = client.post(f"/api/v1/conversations/{conversation.pk}/messages/", {"content": "Halo"},
                           content_type="application/json")

    assert response.status_code == 400
    assert "24 hours" in response.json()["error"]["fields"]["content"][0]
    assert Message.objects.filter(direction="outbound").count() == 0


def test_private_note_through_the_api(client, supervisor):
    conversation = _conversation()
    client.force_login(supervisor)

    response = client.post(f"/api/v1/conversations/{conversation.pk}/messages/", {"content": "cek stok", "private": True},
                           content_type="application/json")

    assert response.status_code == 201
    assert (response.json()["private"], response.json()["status"]) == (True, "sent")


# --- assignment and status ----------------------------------------------------------------


def test_assign_to_agent_then_transfer_to_team(client, supervisor, make_user):
    support, sales = TeamFactory(), TeamFactory()
    alice = make_user()
    add_to_team(alice, support)
    conversation = _conversation()
    client.force_login(supervisor)

    assigned = client.post(f"/api/v1/conversations/{conversation.pk}/assign/", {"agent": alice.pk},
                           content_type="application/json")
    transferred = client.post(f"/api/v1/conversations/{conversation.pk}/assign/", {"team": sales.pk},
                              content_type="application/json")

    assert assigned.status_code == 200
    assert (assigned.json()["assignee"]["id"], assigned.json()["team"]["id"]) == (alice.pk, support.pk)
    assert transferred.status_code == 200
    assert (transferred.json()["assignee"], transferred.json()["team"]["id"]) == (None, sales.pk)


def test_assign_needs_an_agent_or_a_team(client, supervisor):
    conversation = _conversation()
    client.force_login(supervisor)

    empty = client.post(f"/api/v1/conversations/{conversation.pk}/assign/", {}, content_type="application/json")
    unknown = client.post(f"/api/v1/conversations/{conversation.pk}/assign/", {"agent": 999999},
                          content_type="application/json")

    assert (empty.status_code, unknown.status_code) == (400, 400)
    assert unknown.json()["error"]["fields"]["agent"] == ["No such active agent."]


def test_status_changes(client, supervisor):
    conversation = _conversation()
    client.force_login(supervisor)
    until = (timezone.now() + dt.timedelta(hours=3)).isoformat()

    snoozed = client.post(f"/api/v1/conversations/{conversation.pk}/status/", {"status": "snoozed", "snoozed_until": until},
                          content_type="application/json")
    no_time = client.post(f"/api/v1/conversations/{conversation.pk}/status/", {"status": "snoozed"},
                          content_type="application/json")
    resolved = client.post(f"/api/v1/conversations/{conversation.pk}/status/", {"status": "resolved"},
                           content_type="application/json")

    assert snoozed.status_code == 200
    assert snoozed.json()["status"] == "snoozed"
    assert no_time.status_code == 400
    assert resolved.status_code == 200
    assert resolved.json()["status"] == "resolved"
    assert resolved.json()["resolved_at"] is not None


def test_anonymous_is_401(client, db):
    assert client.get("/api/v1/conversations/").status_code == 401


def test_agent_role_has_the_channels_permissions(agent):
    assert agent.role == Role.AGENT
    assert agent.has_perm("channels_app.view_conversation")
    assert agent.has_perm("channels_app.add_message")
    assert not agent.has_perm("channels_app.add_inbox")


def test_conversation_continue_result_shows_in_the_api(client, supervisor):
    inbox = whatsapp_inbox()
    customer = Customer.objects.create(display_name="Siti")
    conversation = conversation_continue(customer=customer, inbox=inbox).conversation
    client.force_login(supervisor)

    body = client.get(f"/api/v1/conversations/{conversation.pk}/").json()

    assert body["customer"] == {"id": customer.pk, "display_name": "Siti"}
    assert body["last_inbox"] == {"id": inbox.pk, "name": "WhatsApp", "kind": "whatsapp"}
    assert body["status"] == "open"


# --- inbox messages: API channel inbound, call and visit logs ------------------------------


def test_call_log_lands_in_the_customers_conversation_and_timeline(client, agent):
    voice = inbox_create(name="Call center", kind="voice")
    customer = Customer.objects.create(display_name="Maya")
    client.force_login(agent)
    payload = {"customer": customer.pk, "direction": "inbound", "content": "Tanya garansi blender",
               "details": {"number": "+6281234500003", "duration_seconds": 240, "outcome": "answered"},
               "external_id": "call-77"}

    first = client.post(f"/api/v1/inboxes/{voice.pk}/messages/", payload, content_type="application/json")
    again = client.post(f"/api/v1/inboxes/{voice.pk}/messages/", payload, content_type="application/json")

    assert first.status_code == 201, first.json()
    assert again.json()["id"] == first.json()["id"]
    message = Message.objects.get()
    assert (message.inbox_id, message.direction, message.sender, message.author_id) == (voice.pk, "inbound", "customer", agent.pk)
    assert message.data == {"call": {"number": "+6281234500003", "duration_seconds": 240, "outcome": "answered"}}
    assert message.conversation.customer_id == customer.pk
    assert customer.timeline.filter(kind="message", channel="voice").count() == 1


def test_api_inbox_accepts_the_api_channel_format_with_a_token(client, agent, django_capture_on_commit_callbacks):
    from accounts.services import api_token_create

    inbox = inbox_create(name="API", kind="api", config={"callback_url": "https://example.com/cb",
                                                          "secret": "api-secret-at-least-16"})
    _token, raw = api_token_create(user=agent, name="integration")
    body = {"id": "ord-1", "from": {"kind": "phone", "value": "+6281234567890", "name": "Budi"}, "text": "Status pesanan?"}

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/v1/inboxes/{inbox.pk}/messages/", body, content_type="application/json",
                               HTTP_AUTHORIZATION=f"Bearer {raw}")
    bad = client.post(f"/api/v1/inboxes/{inbox.pk}/messages/", {"text": "no id"}, content_type="application/json",
                      HTTP_AUTHORIZATION=f"Bearer {raw}")

    assert response.status_code == 202, response.json()
    assert Message.objects.get().content == "Status pesanan?"
    assert bad.status_code == 400
    assert "id is required" in bad.json()["error"]["message"]


def test_provider_inbox_does_not_take_posted_messages(client, agent):
    inbox = whatsapp_inbox()
    client.force_login(agent)

    response = client.post(f"/api/v1/inboxes/{inbox.pk}/messages/", {"customer": 1, "content": "x"},
                           content_type="application/json")

    assert response.status_code == 400


def test_message_list_query_count_is_flat(client, supervisor, django_assert_max_num_queries):
    conversation = _conversation()
    inbox = conversation.last_inbox
    for i in range(30):
        Message.objects.create(conversation=conversation, inbox=inbox, direction="outbound", sender="agent",
                               author=supervisor, content=f"m{i}", status="sent")
    client.force_login(supervisor)

    with django_assert_max_num_queries(10):
        response = client.get(f"/api/v1/conversations/{conversation.pk}/messages/")

    assert len(response.json()["results"]) == 30


def test_priority_can_be_set(client, supervisor, agent):
    conversation = _conversation()
    client.force_login(supervisor)

    response = client.patch(f"/api/v1/conversations/{conversation.pk}/", {"priority": "urgent"},
                            content_type="application/json")
    bad = client.patch(f"/api/v1/conversations/{conversation.pk}/", {"priority": "asap"}, content_type="application/json")

    assert response.status_code == 200
    assert response.json()["priority"] == "urgent"
    assert bad.status_code == 400


def test_messages_after_an_id_for_catching_up(client, supervisor):
    conversation = _conversation()
    ids = [Message.objects.create(conversation=conversation, inbox=conversation.last_inbox, direction="inbound",
                                  sender="customer", content=f"m{i}", status="received").pk for i in range(4)]
    client.force_login(supervisor)

    response = client.get(f"/api/v1/conversations/{conversation.pk}/messages/?after={ids[1]}")

    assert [m["content"] for m in response.json()["results"]] == ["m3", "m2"]
    assert client.get(f"/api/v1/conversations/{conversation.pk}/messages/?after=x").status_code == 400


def test_webhook_url_is_absolute_even_without_public_base_url(client, supervisor, settings):
    settings.PUBLIC_BASE_URL = ""
    inbox = inbox_create(name="WA", kind="whatsapp", config=WA_CONFIG)
    client.force_login(supervisor)

    body = client.get(f"/api/v1/inboxes/{inbox.pk}/").json()

    assert body["webhook_url"] == f"http://testserver/webhooks/whatsapp/{inbox.uuid}/"


def test_a_reply_reads_its_customer_once(client, agent, provider_server, django_capture_on_commit_callbacks):
    """The customer comes with the conversation; the timeline entry does not read it again."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from customers.models import TimelineEntry

    conversation = _team_agent_and_whatsapp_conversation(client, agent, provider_server,
                                                         django_capture_on_commit_callbacks, "Halo")
    client.force_login(agent)

    with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks(execute=False):
        created = client.post(f"/api/v1/conversations/{conversation.pk}/messages/", {"content": "Ada, kak"},
                              content_type="application/json")

    assert created.status_code == 201, created.json()
    assert not [q["sql"] for q in queries.captured_queries if q["sql"].startswith('SELECT "customers_customer"')]
    entry = TimelineEntry.objects.get(ref_type="channels.message", ref_id=str(created.json()["id"]))
    assert entry.customer_id == conversation.customer_id
