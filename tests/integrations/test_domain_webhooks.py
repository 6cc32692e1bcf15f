"""Every webhook type is emitted by a real action (service or HTTP API), on commit only, with
the documented data; a failing receiver never breaks the business action."""
from __future__ import annotations

import json

import pytest
from django.db import transaction

from accounts.models import Availability, Role
from channels_app import events as channel_events
from channels_app.models import Conversation, Message, MessageStatus
from channels_app.services import (
    conversation_assign,
    conversation_status_set,
    inbox_create,
    message_create_outbound,
    message_record,
    message_status_update,
)
from integrations import events, services
from integrations.models import WebhookDelivery
from tests.accounts.factories import TeamFactory, add_to_team

pytestmark = pytest.mark.django_db

SECRET = "whsec_test-secret-0123456789"
TOKEN = "t" * 32


@pytest.fixture
def subscribed(receiver):
    services.webhook_subscription_create(owner=None, url=receiver.url, events=list(events.WEBHOOK_EVENT_TYPES),
                                         secret=SECRET)
    return receiver


@pytest.fixture
def webchat(db):
    return inbox_create(name="Chat", kind="webchat", config={"allowed_origins": ["https://shop.example.com"]})


def emitted(type_: str) -> list[dict]:
    return [d.payload for d in WebhookDelivery.objects.filter(event_type=type_).order_by("id")]


def visitor_writes(client, inbox, text: str = "Halo, pesanan saya belum datang") -> None:
    """The widget posts; the message is ingested by the task queued on commit."""
    response = client.post(f"/widget/api/{inbox.uuid}/messages/", data=json.dumps({"token": TOKEN, "text": text}),
                           content_type="application/json")
    assert response.status_code == 202


def test_an_inbound_message_sends_conversation_created_then_message_created_after_commit(
    client, subscribed, webchat, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        visitor_writes(client, webchat)
        assert WebhookDelivery.objects.count() == 0  # nothing before the commit

    conversation = Conversation.objects.get()
    message = Message.objects.get()
    [created] = emitted(events.CONVERSATION_CREATED)
    assert created["data"]["conversation"]["id"] == conversation.pk
    assert created["data"]["conversation"]["customer_id"] == conversation.customer_id
    assert created["data"]["conversation"]["status"] == "open"
    assert created["data"]["inbox"] == {"id": webchat.pk, "name": "Chat", "channel": "webchat"}
    [payload] = emitted(events.MESSAGE_CREATED)
    data = payload["data"]["message"]
    assert (data["id"], data["uuid"], data["conversation_id"]) == (message.pk, str(message.uuid), conversation.pk)
    assert (data["direction"], data["kind"], data["channel"], data["inbox_id"]) == ("inbound", "inbound", "webchat",
                                                                                    webchat.pk)
    assert data["customer_id"] == conversation.customer_id
    assert data["content"] == "Halo, pesanan saya belum datang"
    # and it really went out, signed, to the subscriber
    assert {json.loads(r["body"])["type"] for r in subscribed.requests} >= {"conversation.created", "message.created"}


@pytest.mark.parametrize(("private", "kind", "status"), [(False, "outbound", "queued"), (True, "note", "sent")])
def test_a_reply_or_a_note_sends_message_created_with_its_kind(
    client, subscribed, webchat, agent, private, kind, status, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        visitor_writes(client, webchat)
    conversation = Conversation.objects.get()
    WebhookDelivery.objects.all().delete()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        reply = message_create_outbound(conversation=conversation, author=agent, content="Kami cek dulu ya", private=private)
        assert WebhookDelivery.objects.count() == 0
    for callback in callbacks:
        callback()

    created = [p["data"]["message"] for p in emitted(events.MESSAGE_CREATED)]
    assert [(m["id"], m["direction"], m["kind"], m["private"], m["status"], m["author_id"]) for m in created] == [
        (reply.pk, "outbound", kind, private, status, agent.pk)
    ]


def test_delivery_receipts_and_a_failure_send_message_status_changed(subscribed, django_capture_on_commit_callbacks):
    from tests.channels_app.test_api import _conversation

    conversation = _conversation()
    inbox = conversation.last_inbox
    with django_capture_on_commit_callbacks(execute=True):
        sent, _ = message_record(conversation=conversation, inbox=inbox, direction="outbound", sender="agent",
                                 content="Paket dikirim", provider_message_id="wamid.1", status=MessageStatus.SENT)
        other, _ = message_record(conversation=conversation, inbox=inbox, direction="outbound", sender="agent",
                                  content="Resi", provider_message_id="wamid.2", status=MessageStatus.SENT)

    with django_capture_on_commit_callbacks(execute=True):
        message_status_update(inbox=inbox, provider_message_id="wamid.1", status="delivered")
        message_status_update(inbox=inbox, provider_message_id="wamid.1", status="read")
        message_status_update(inbox=inbox, provider_message_id="wamid.1", status="delivered")  # late: ignored
        message_status_update(inbox=inbox, provider_message_id="wamid.2", status="failed",
                              error_code="131047", error_title="Re-engagement message")

    changes = [p["data"] for p in emitted(events.MESSAGE_STATUS_CHANGED)]
    assert [(c["message"]["id"], c["previous_status"], c["status"], c["error"]) for c in changes] == [
        (sent.pk, "sent", "delivered", None),
        (sent.pk, "delivered", "read", None),
        (other.pk, "sent", "failed", {"code": "131047", "title": "Re-engagement message"}),
    ]
    assert changes[0]["message"]["conversation_id"] == conversation.pk
    assert changes[0]["message"]["channel"] == "whatsapp"


def test_assigning_sends_conversation_assigned_with_assignee_team_and_actor(
    subscribed, supervisor, make_user, django_capture_on_commit_callbacks
):
    from tests.channels_app.test_api import _conversation

    team = TeamFactory()
    budi = make_user(Role.AGENT, email="budi@demo.test")
    add_to_team(budi, team)
    conversation = _conversation(team=team)

    with django_capture_on_commit_callbacks(execute=True):
        conversation_assign(conversation=conversation, actor=supervisor, agent=budi)
        assert WebhookDelivery.objects.count() == 0

    [payload] = emitted(events.CONVERSATION_ASSIGNED)
    assert payload["data"]["conversation"]["id"] == conversation.pk
    assert payload["data"]["assignee_id"] == budi.pk
    assert payload["data"]["previous_assignee_id"] is None
    assert payload["data"]["team_id"] == team.pk
    assert payload["data"]["assigned_by_id"] == supervisor.pk


def test_automatic_assignment_of_a_new_conversation_is_sent_too(
    client, subscribed, make_user, django_capture_on_commit_callbacks
):
    team = TeamFactory()
    online = make_user(Role.AGENT, email="online@demo.test", availability=Availability.ONLINE)
    add_to_team(online, team)
    inbox = inbox_create(name="Chat", kind="webchat", config={}, default_team=team)

    with django_capture_on_commit_callbacks(execute=True):
        visitor_writes(client, inbox)

    [payload] = emitted(events.CONVERSATION_ASSIGNED)
    assert (payload["data"]["assignee_id"], payload["data"]["assigned_by_id"]) == (online.pk, None)


def test_resolving_sends_conversation_resolved_and_reopening_does_not(
    subscribed, supervisor, django_capture_on_commit_callbacks
):
    from tests.channels_app.test_api import _conversation

    conversation = _conversation()

    with django_capture_on_commit_callbacks(execute=True):
        conversation_status_set(conversation=conversation, status="resolved", actor=supervisor)
    with django_capture_on_commit_callbacks(execute=True):
        conversation_status_set(conversation=conversation, status="open", actor=supervisor)

    [payload] = emitted(events.CONVERSATION_RESOLVED)
    assert payload["data"]["conversation"]["id"] == conversation.pk
    assert payload["data"]["conversation"]["status"] == "resolved"
    assert payload["data"]["conversation"]["resolved_at"] is not None
    assert payload["data"]["previous_status"] == "open"
    assert payload["data"]["resolved_by_id"] == supervisor.pk


def test_a_widget_rating_sends_csat_submitted(client, subscribed, webchat, supervisor, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        visitor_writes(client, webchat)
    conversation = Conversation.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        conversation_status_set(conversation=conversation, status="resolved", actor=supervisor)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/widget/api/{webchat.uuid}/rating/", data=json.dumps({"token": TOKEN, "rating": 4}),
                               content_type="application/json")
        assert WebhookDelivery.objects.filter(event_type=events.CSAT_SUBMITTED).count() == 0

    assert response.status_code == 200
    [payload] = emitted(events.CSAT_SUBMITTED)
    data = payload["data"]
    assert data["response"]["rating"] == 4
    assert data["response"]["via"] == "link"
    assert (data["conversation_id"], data["customer_id"], data["inbox_id"]) == (
        conversation.pk, conversation.customer_id, webchat.pk)


def test_an_event_posted_to_the_api_sends_event_received_once(client, subscribed, make_user,
                                                              django_capture_on_commit_callbacks):
    client.force_login(make_user(Role.SUPERVISOR, email="shop@demo.test"))
    body = {"id": "order-77", "type": "order.paid", "customer": {"email": "dewi@mail.test"},
            "occurred_at": "2026-03-02T09:00:00Z", "properties": {"total": 250000, "channel": "website"}}

    with django_capture_on_commit_callbacks(execute=True):
        first = client.post("/api/v1/events/", body, content_type="application/json")
    with django_capture_on_commit_callbacks(execute=True):
        replay = client.post("/api/v1/events/", body, content_type="application/json")

    assert (first.status_code, replay.status_code) == (201, 200)
    [payload] = emitted(events.EVENT_RECEIVED)
    data = payload["data"]
    assert data["event"]["id"] == "order-77"
    assert data["event"]["type"] == "order.paid"
    assert data["event"]["properties"] == {"total": 250000, "channel": "website"}
    assert data["event"]["channel"] == "website"
    assert data["customer_created"] is True
    assert data["customer_id"] == first.json()["customer"]


def test_nothing_is_emitted_when_the_action_is_rolled_back(subscribed, agent, django_capture_on_commit_callbacks):
    from tests.channels_app.test_api import _conversation

    conversation = _conversation()

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        with transaction.atomic():
            conversation_status_set(conversation=conversation, status="resolved", actor=agent)
            raise RuntimeError("boom")

    assert WebhookDelivery.objects.count() == 0
    assert Conversation.objects.get().status == "open"


def test_a_failing_receiver_never_breaks_the_business_action(subscribed, agent, monkeypatch,
                                                            django_capture_on_commit_callbacks):
    from tests.channels_app.test_api import _conversation

    conversation = _conversation()

    def broken(**kwargs):
        raise RuntimeError("a receiver bug")

    channel_events.conversation_status_changed.connect(broken, dispatch_uid="test.broken")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            conversation_status_set(conversation=conversation, status="resolved", actor=agent)
    finally:
        channel_events.conversation_status_changed.disconnect(dispatch_uid="test.broken")

    assert Conversation.objects.get().status == "resolved"
    assert len(emitted(events.CONVERSATION_RESOLVED)) == 1  # the other receivers still ran


def test_a_webhook_recording_failure_is_swallowed(subscribed, agent, monkeypatch, django_capture_on_commit_callbacks):
    from integrations import receivers
    from tests.channels_app.test_api import _conversation

    conversation = _conversation()
    monkeypatch.setattr(receivers, "webhook_event_emit", lambda **kwargs: (_ for _ in ()).throw(RuntimeError("db down")))

    with django_capture_on_commit_callbacks(execute=True):
        conversation_status_set(conversation=conversation, status="resolved", actor=agent)

    assert Conversation.objects.get().status == "resolved"
    assert WebhookDelivery.objects.count() == 0


def test_every_public_event_type_is_wired():
    assert sorted(events.WIRED_EVENT_TYPES) == sorted(events.WEBHOOK_EVENT_TYPES)
    assert len(events.WIRED_EVENT_TYPES) == 11
