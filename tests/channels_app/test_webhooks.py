"""Webhook ingest through the real URL: verify → store raw → 200 → background processing."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from unittest import mock

import pytest
from django.db import OperationalError, connection, transaction
from django.db.models.signals import post_save, pre_save
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from channels_app.models import Conversation, Message, MessageStatus, WebhookEvent
from channels_app.services import inbox_create, webhook_event_store
from customers.models import Identity

pytestmark = pytest.mark.django_db

META_VECTOR = "meta_x_hub_signature_256_vector.json"
WA_APP_SECRET = "wa-app-secret-for-tests"
WA_VERIFY = "wa-verify-token-1"
TG_SECRET = "tg-secret_token-1"
LINE_SECRET = "line-channel-secret-1"


# --- helpers (imported by the other test modules) -----------------------------------------


def whatsapp_inbox(*, app_secret: str = WA_APP_SECRET, api_base_url: str = "", team=None, name="WhatsApp"):
    config = {
        "phone_number_id": "277321005464405",
        "access_token": "EAAtest-access-token-0001",
        "app_secret": app_secret,
        "verify_token": WA_VERIFY,
    }
    if api_base_url:
        config["api_base_url"] = api_base_url
    return inbox_create(name=name, kind="whatsapp", config=config, default_team=team)


def messenger_inbox(*, api_base_url: str = "", team=None):
    config = {"page_id": "1111222233", "page_access_token": "EAApage-token-0001", "app_secret": "fb-app-secret",
              "verify_token": "fb-verify"}
    if api_base_url:
        config["api_base_url"] = api_base_url
    return inbox_create(name="Facebook", kind="messenger", config=config, default_team=team)


def instagram_inbox(*, api_base_url: str = "", team=None):
    config = {"instagram_account_id": "17841400000001", "access_token": "IGQtoken-0001", "app_secret": "ig-app-secret",
              "verify_token": "ig-verify"}
    if api_base_url:
        config["api_base_url"] = api_base_url
    return inbox_create(name="Instagram", kind="instagram", config=config, default_team=team)


def telegram_inbox(*, api_base_url: str = "", team=None):
    config = {"bot_token": "123456789:AAEtestBotTokenABCDEFGHIJ_klmnop", "secret_token": TG_SECRET}
    if api_base_url:
        config["api_base_url"] = api_base_url
    return inbox_create(name="Telegram", kind="telegram", config=config, default_team=team)


def line_inbox(*, team=None, secret: str = LINE_SECRET):
    return inbox_create(name="LINE", kind="line", config={"channel_access_token": "line-access-token-0001",
                                                           "channel_secret": secret}, default_team=team)


def meta_signature(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def line_signature(body: bytes, secret: str = LINE_SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def wa_text(*, wa_id: str = "6281234567890", msg_id: str = "wamid.A1", text: str = "Halo", name: str = "Budi",
            timestamp: int = 1_760_000_000) -> bytes:
    return json.dumps({
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "6281100000000", "phone_number_id": "277321005464405"},
            "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
            "messages": [{"from": wa_id, "id": msg_id, "timestamp": str(timestamp), "type": "text",
                          "text": {"body": text}}],
        }}]}],
    }).encode()


def wa_status(*, msg_id: str, status: str, wa_id: str = "6281234567890", errors=None, timestamp: int = 1_760_000_100) -> bytes:
    item = {"id": msg_id, "status": status, "timestamp": str(timestamp), "recipient_id": wa_id}
    if errors:
        item["errors"] = errors
    return json.dumps({
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "6281100000000", "phone_number_id": "277321005464405"},
            "statuses": [item],
        }}]}],
    }).encode()


def messaging(*, obj: str, sender: str, mid: str, text: str, recipient: str = "1111222233", ts: int = 1_760_000_000_000) -> bytes:
    return json.dumps({"object": obj, "entry": [{"id": recipient, "time": ts, "messaging": [
        {"sender": {"id": sender}, "recipient": {"id": recipient}, "timestamp": ts,
         "message": {"mid": mid, "text": text}}]}]}).encode()


def telegram_update(*, update_id: int, user_id: int, message_id: int, text: str, date: int = 1_760_000_000) -> bytes:
    user = {"id": user_id, "is_bot": False, "first_name": "Budi", "last_name": "Santoso"}
    return json.dumps({"update_id": update_id, "message": {
        "message_id": message_id, "from": user, "chat": {**user, "type": "private"}, "date": date, "text": text}}).encode()


def post_whatsapp(client, inbox, body: bytes, secret: str = WA_APP_SECRET):
    return client.post(inbox.webhook_path, data=body, content_type="application/json",
                       HTTP_X_HUB_SIGNATURE_256=meta_signature(body, secret))


def post_meta(client, inbox, body: bytes, secret: str):
    return post_whatsapp(client, inbox, body, secret)


def post_telegram(client, inbox, body: bytes, secret: str = TG_SECRET):
    return client.post(inbox.webhook_path, data=body, content_type="application/json",
                       HTTP_X_TELEGRAM_BOT_API_SECRET_TOKEN=secret)


# --- the real signed WhatsApp delivery ----------------------------------------------------


def test_real_signed_whatsapp_delivery_is_stored_processed_and_becomes_a_message(
    client, shared_fixture, django_capture_on_commit_callbacks
):
    vector = json.loads(shared_fixture(META_VECTOR))
    body = shared_fixture(vector["body_file"])
    inbox = whatsapp_inbox(app_secret=vector["app_secret"])

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(inbox.webhook_path, data=body, content_type="application/json",
                               HTTP_X_HUB_SIGNATURE_256=vector["expected_header_value"])

    assert response.status_code == 200
    event = WebhookEvent.objects.get()
    assert bytes(event.body) == body
    assert event.status == WebhookEvent.Status.PROCESSED
    assert event.attempts == 1
    assert event.headers["x-hub-signature-256"] == vector["expected_header_value"]
    message = Message.objects.get()
    assert message.content == "Hey there! I am using PyWa."
    assert message.provider_message_id == "wamid.HBgMOTcyNTQ0NDAxMjQzFQIAEhggM0RFQTNCMEEwRTY3QzUwODYzMDc4NjQ4QzM4ODAxM0YA"
    assert (message.direction, message.sender, message.inbox_id) == ("inbound", "customer", inbox.pk)
    customer = message.conversation.customer
    assert customer.display_name == "PyWa Tests"
    identity = Identity.objects.get(customer=customer)
    assert (identity.kind, identity.value, identity.verified) == ("phone", "+972544401243", True)
    assert customer.timeline.filter(kind="message", ref_id=str(message.pk)).count() == 1


def test_wrong_signature_is_403_and_nothing_is_stored(client):
    inbox = whatsapp_inbox()
    body = wa_text()

    response = post_whatsapp(client, inbox, body, secret="not-the-secret")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "invalid_signature"
    assert WebhookEvent.objects.count() == 0
    assert Message.objects.count() == 0


def test_missing_signature_is_403(client):
    inbox = whatsapp_inbox()

    response = client.post(inbox.webhook_path, data=wa_text(), content_type="application/json")

    assert response.status_code == 403
    assert WebhookEvent.objects.count() == 0


@pytest.mark.parametrize("path_kind", ["messenger", "telegram"])
def test_kind_mismatch_is_404(client, path_kind):
    inbox = whatsapp_inbox()
    body = wa_text()

    response = client.post(f"/webhooks/{path_kind}/{inbox.uuid}/", data=body, content_type="application/json",
                           HTTP_X_HUB_SIGNATURE_256=meta_signature(body, WA_APP_SECRET))

    assert response.status_code == 404
    assert WebhookEvent.objects.count() == 0


@pytest.mark.parametrize("suffix", ["00000000-0000-0000-0000-000000000000", "not-a-uuid"])
def test_unknown_inbox_is_404(client, suffix):
    whatsapp_inbox()

    response = client.post(f"/webhooks/whatsapp/{suffix}/", data=b"{}", content_type="application/json")

    assert response.status_code == 404


def test_inactive_inbox_is_404(client):
    inbox = whatsapp_inbox()
    inbox.is_active = False
    inbox.save()

    response = post_whatsapp(client, inbox, wa_text())

    assert response.status_code == 404


def test_malformed_body_is_400_with_the_reason_and_nothing_stored(client):
    inbox = whatsapp_inbox()
    body = b'{"object": "whatsapp_business_account", "entry": "nope"}'

    response = post_whatsapp(client, inbox, body)

    assert response.status_code == 400
    assert response.json() == {"error": {"code": "malformed", "message": "entry must be a JSON array, got str"}}
    assert WebhookEvent.objects.count() == 0


def test_invalid_json_is_400(client):
    inbox = whatsapp_inbox()

    response = post_whatsapp(client, inbox, b"{not json")

    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("body is not valid JSON")


def test_database_failure_while_storing_is_503_so_the_provider_retries(client):
    inbox = whatsapp_inbox()

    with mock.patch("channels_app.webhooks.webhook_event_store", side_effect=OperationalError("database is locked")):
        response = post_whatsapp(client, inbox, wa_text())

    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert response.json()["error"]["code"] == "unavailable"


def test_a_stored_delivery_is_one_insert_of_the_row_the_orm_would_write(django_capture_on_commit_callbacks):
    inbox = whatsapp_inbox()
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": "sha256=ab", "X-Forwarded-For": "10.0.0.1"}
    before = timezone.now()

    with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks() as callbacks:
        event = webhook_event_store(inbox=inbox, body=b'{"entry": []}', headers=headers)

    assert len(queries) == 1 and len(callbacks) == 1  # the INSERT, then the drain's wake after commit
    stored = WebhookEvent.objects.get(pk=event.pk)
    as_python = lambda value: bytes(value) if isinstance(value, memoryview) else value  # noqa: E731
    # Every column the model has, as the returned instance holds it and as the ORM reads it back:
    # the INSERT is built from the model's fields, so a field added later is written with its default.
    assert {f.attname: as_python(getattr(event, f.attname)) for f in WebhookEvent._meta.concrete_fields} == {
        f.attname: as_python(getattr(stored, f.attname)) for f in WebhookEvent._meta.concrete_fields}
    assert (stored.inbox_id, bytes(stored.body), stored.headers, stored.status, stored.attempts, stored.last_error,
            stored.last_attempt_at, stored.processed_at) == (
        inbox.pk, b'{"entry": []}', {"content-type": "application/json", "x-hub-signature-256": "sha256=ab"},
        WebhookEvent.Status.RECEIVED, 0, "", None, None)
    assert before <= stored.received_at <= timezone.now()
    assert event.inbox == inbox and not event._state.adding


def test_webhook_events_have_no_save_signal_receivers():
    """webhook_event_store writes its INSERT without Model.save() (the acknowledgement's cost),
    so it sends no pre_save / post_save: a receiver added for WebhookEvent would never run."""
    assert not pre_save.has_listeners(WebhookEvent)
    assert not post_save.has_listeners(WebhookEvent)


def test_a_delivery_stored_in_a_transaction_that_rolls_back_is_gone_and_wakes_nothing(django_capture_on_commit_callbacks):
    inbox = whatsapp_inbox()

    with django_capture_on_commit_callbacks() as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            webhook_event_store(inbox=inbox, body=b"{}", headers={})
            raise RuntimeError("the caller's work failed")

    assert not WebhookEvent.objects.exists() and not callbacks


def test_database_failure_looking_up_the_inbox_is_503(client):
    inbox = whatsapp_inbox()

    with mock.patch("channels_app.selectors.Inbox.objects.filter", side_effect=OperationalError("gone")):
        response = post_whatsapp(client, inbox, wa_text())

    assert response.status_code == 503


def test_duplicate_delivery_creates_one_message(client, django_capture_on_commit_callbacks):
    inbox = whatsapp_inbox()
    body = wa_text(msg_id="wamid.DUP")

    with django_capture_on_commit_callbacks(execute=True):
        first = post_whatsapp(client, inbox, body)
    with django_capture_on_commit_callbacks(execute=True):
        second = post_whatsapp(client, inbox, body)

    assert (first.status_code, second.status_code) == (200, 200)
    assert WebhookEvent.objects.filter(status="processed").count() == 2
    assert Message.objects.count() == 1
    assert Conversation.objects.count() == 1


def test_shared_batch_with_the_same_message_twice_stores_it_once(client, shared_fixture, django_capture_on_commit_callbacks):
    # courier's de-duplication payload, with its wa_id "5678" (not a phone number, which
    # customer_resolve refuses) replaced by a real Rwandan mobile number; signed by us.
    text = shared_fixture("whatsapp_batch_two_messages.json").decode().replace('"5678"', '"250788123456"')
    inbox = whatsapp_inbox()

    with django_capture_on_commit_callbacks(execute=True):
        response = post_whatsapp(client, inbox, text.encode())

    assert response.status_code == 200
    message = Message.objects.get()
    assert (message.provider_message_id, message.content) == ("external_id", "Hello World")
    assert WebhookEvent.objects.get().status == "processed"


def test_shared_batch_with_an_invalid_wa_id_is_parked_with_the_reason(client, shared_fixture, django_capture_on_commit_callbacks):
    inbox = whatsapp_inbox()

    with django_capture_on_commit_callbacks(execute=True):
        response = post_whatsapp(client, inbox, shared_fixture("whatsapp_batch_two_messages.json"))

    assert response.status_code == 200
    event = WebhookEvent.objects.get()
    assert event.status == "parked"
    assert "is not a valid phone number" in event.last_error


def test_batch_payload_creates_several_messages(client, django_capture_on_commit_callbacks):
    inbox = whatsapp_inbox()
    data = json.loads(wa_text(msg_id="wamid.B1", text="satu"))
    value = data["entry"][0]["changes"][0]["value"]
    value["messages"].append({**value["messages"][0], "id": "wamid.B2", "text": {"body": "dua"}})
    value["contacts"].append({"profile": {"name": "Siti"}, "wa_id": "6281298765432"})
    value["messages"].append({"from": "6281298765432", "id": "wamid.B3", "timestamp": "1760000001",
                              "type": "text", "text": {"body": "tiga"}})
    body = json.dumps(data).encode()

    with django_capture_on_commit_callbacks(execute=True):
        response = post_whatsapp(client, inbox, body)

    assert response.status_code == 200
    assert list(Message.objects.order_by("provider_message_id").values_list("provider_message_id", "content")) == [
        ("wamid.B1", "satu"), ("wamid.B2", "dua"), ("wamid.B3", "tiga")]
    assert Conversation.objects.count() == 2
    assert WebhookEvent.objects.get().status == "processed"


def test_status_update_moves_delivered_to_read_and_never_back(client, django_capture_on_commit_callbacks):
    inbox = whatsapp_inbox()
    with django_capture_on_commit_callbacks(execute=True):
        post_whatsapp(client, inbox, wa_text(msg_id="wamid.IN"))
    conversation = Conversation.objects.get()
    outbound = Message.objects.create(conversation=conversation, inbox=inbox, direction="outbound", sender="agent",
                                      content="Siap", provider_message_id="wamid.OUT", status=MessageStatus.SENT)

    with django_capture_on_commit_callbacks(execute=True):
        post_whatsapp(client, inbox, wa_status(msg_id="wamid.OUT", status="delivered"))
    outbound.refresh_from_db()
    assert outbound.status == "delivered"

    with django_capture_on_commit_callbacks(execute=True):
        post_whatsapp(client, inbox, wa_status(msg_id="wamid.OUT", status="read"))
    with django_capture_on_commit_callbacks(execute=True):
        post_whatsapp(client, inbox, wa_status(msg_id="wamid.OUT", status="delivered"))
    outbound.refresh_from_db()
    assert outbound.status == "read"
    assert WebhookEvent.objects.filter(status="processed").count() == 4


def test_failed_status_records_code_and_title(client, django_capture_on_commit_callbacks):
    inbox = whatsapp_inbox()
    with django_capture_on_commit_callbacks(execute=True):
        post_whatsapp(client, inbox, wa_text(msg_id="wamid.IN"))
    outbound = Message.objects.create(conversation=Conversation.objects.get(), inbox=inbox, direction="outbound",
                                      sender="agent", content="x", provider_message_id="wamid.F", status="sent")
    errors = [{"code": 131047, "title": "Re-engagement message", "message": "Re-engagement message"}]

    with django_capture_on_commit_callbacks(execute=True):
        post_whatsapp(client, inbox, wa_status(msg_id="wamid.F", status="failed", errors=errors))

    outbound.refresh_from_db()
    assert (outbound.status, outbound.error_code, outbound.error_title) == ("failed", "131047", "Re-engagement message")

    # A "sent" that arrives after the failure was sent before it: the message stays failed. A
    # delivery receipt proves it reached the customer after all (the reason stays on record).
    for status, expected in (("sent", "failed"), ("delivered", "delivered")):
        with django_capture_on_commit_callbacks(execute=True):
            post_whatsapp(client, inbox, wa_status(msg_id="wamid.F", status=status))
        outbound.refresh_from_db()
        assert (outbound.status, outbound.error_code) == (expected, "131047")


def test_shared_status_fixtures_apply_to_our_outbound_message(client, shared_fixture, django_capture_on_commit_callbacks):
    inbox = whatsapp_inbox()
    with django_capture_on_commit_callbacks(execute=True):
        post_whatsapp(client, inbox, wa_text(wa_id="972544401243", msg_id="wamid.IN"))
    outbound = Message.objects.create(conversation=Conversation.objects.get(), inbox=inbox, direction="outbound",
                                      sender="agent", content="x", provider_message_id="wamid.xyzxyz", status="sent")

    with django_capture_on_commit_callbacks(execute=True):
        assert post_whatsapp(client, inbox, shared_fixture("whatsapp_status_read.json")).status_code == 200
        assert post_whatsapp(client, inbox, shared_fixture("whatsapp_status_delivered.json")).status_code == 200

    outbound.refresh_from_db()
    assert outbound.status == "read"


def test_meta_handshake_echoes_the_challenge(client):
    inbox = whatsapp_inbox()

    response = client.get(inbox.webhook_path, {"hub.mode": "subscribe", "hub.verify_token": WA_VERIFY,
                                               "hub.challenge": "1158201444"})

    assert response.status_code == 200
    assert response.content == b"1158201444"
    assert response["Content-Type"].startswith("text/plain")


def test_meta_handshake_with_a_wrong_token_is_403(client):
    inbox = whatsapp_inbox()

    response = client.get(inbox.webhook_path, {"hub.mode": "subscribe", "hub.verify_token": "nope",
                                               "hub.challenge": "1158201444"})

    assert response.status_code == 403


def test_get_on_a_non_meta_kind_is_405(client):
    inbox = telegram_inbox()

    response = client.get(inbox.webhook_path)

    assert response.status_code == 405


def test_telegram_update_with_secret_token(client, django_capture_on_commit_callbacks):
    inbox = telegram_inbox()
    body = telegram_update(update_id=5001, user_id=48213377, message_id=7, text="Halo bot")

    with django_capture_on_commit_callbacks(execute=True):
        response = post_telegram(client, inbox, body)

    assert response.status_code == 200
    message = Message.objects.get()
    assert (message.content, message.provider_message_id) == ("Halo bot", "48213377:7")
    identity = Identity.objects.get(customer=message.conversation.customer)
    assert (identity.kind, identity.scope, identity.value) == ("telegram", str(inbox.uuid), "48213377")
    # The shared secret is never kept with the raw event.
    assert "x-telegram-bot-api-secret-token" not in WebhookEvent.objects.get().headers


def test_telegram_wrong_secret_is_403(client):
    inbox = telegram_inbox()

    response = post_telegram(client, inbox, telegram_update(update_id=1, user_id=48213377, message_id=1, text="x"),
                             secret="wrong")

    assert response.status_code == 403
    assert WebhookEvent.objects.count() == 0


def test_shared_telegram_fixture_with_a_repeated_digit_user_id_is_a_real_sender(
    client, shared_fixture, django_capture_on_commit_callbacks
):
    # The docs example's user id 1111111 looks like a placeholder phone number, but Telegram
    # assigned it: platform ids only refuse the placeholder words (null, undefined, ...).
    inbox = telegram_inbox()

    with django_capture_on_commit_callbacks(execute=True):
        response = post_telegram(client, inbox, shared_fixture("telegram_message_text_private.json"))

    assert response.status_code == 200
    assert WebhookEvent.objects.get().status == "processed"
    message = Message.objects.get()
    assert message.conversation.customer.identities.get().value == "1111111"


def test_shared_line_signed_delivery(client, shared_fixture, django_capture_on_commit_callbacks):
    vectors = json.loads(shared_fixture("line_signature_vectors.json"))
    assert vectors  # the file exists; we sign our own body below with the inbox's secret
    body = shared_fixture("line_message_text_user.json")
    inbox = line_inbox()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(inbox.webhook_path, data=body, content_type="application/json",
                               HTTP_X_LINE_SIGNATURE=line_signature(body))

    assert response.status_code == 200
    message = Message.objects.get()
    assert message.inbox_id == inbox.pk
    assert message.direction == "inbound"


def test_shared_instagram_fixture(client, shared_fixture, django_capture_on_commit_callbacks):
    inbox = instagram_inbox()
    body = shared_fixture("instagram_text_message.json")

    with django_capture_on_commit_callbacks(execute=True):
        response = post_meta(client, inbox, body, "ig-app-secret")

    assert response.status_code == 200
    message = Message.objects.get()
    assert (message.content, message.provider_message_id) == ("Hello World", "external_id")
    identity = Identity.objects.get(customer=message.conversation.customer)
    assert (identity.kind, identity.scope, identity.value) == ("instagram", str(inbox.uuid), "5678")


def test_processing_failure_is_retried_then_parked_and_replay_processes_it(client, django_capture_on_commit_callbacks, settings):
    settings.WEBHOOK_PROCESS_MAX_ATTEMPTS = 3
    inbox = whatsapp_inbox()

    # Both ways of starting the conversation fail: the drain's batch (which then hands the
    # delivery on) and the one-by-one path (which records the failure and retries).
    with mock.patch("channels_app.services.ingest.conversation_continue", side_effect=RuntimeError("boom")), \
            mock.patch("channels_app.services.ingest_batch.conversations_open", side_effect=RuntimeError("boom")):
        with django_capture_on_commit_callbacks(execute=True):
            response = post_whatsapp(client, inbox, wa_text())

    assert response.status_code == 200
    event = WebhookEvent.objects.get()
    assert (event.status, event.attempts, event.last_error) == ("parked", 3, "RuntimeError: boom")
    assert Message.objects.count() == 0
    assert Conversation.objects.count() == 0  # every failed attempt rolled back completely

    from channels_app.services import webhook_event_replay

    with django_capture_on_commit_callbacks(execute=True):
        webhook_event_replay(event=event)

    event.refresh_from_db()
    assert (event.status, event.attempts, event.last_error) == ("processed", 4, "")
    assert Message.objects.count() == 1


def test_twilio_style_signature_uses_public_base_url(rf, settings):
    from channels_app.webhooks import public_url

    settings.PUBLIC_BASE_URL = "https://cx.example.com"
    request = rf.post("/webhooks/twilio_sms/abc/?x=1", HTTP_HOST="testserver")

    assert public_url(request) == "https://cx.example.com/webhooks/twilio_sms/abc/?x=1"
    settings.PUBLIC_BASE_URL = ""
    assert public_url(request) == "http://testserver/webhooks/twilio_sms/abc/?x=1"


def test_status_that_overtakes_the_send_result_is_retried_not_dropped(client, django_capture_on_commit_callbacks, settings):
    settings.WEBHOOK_PROCESS_MAX_ATTEMPTS = 2
    inbox = whatsapp_inbox()
    with django_capture_on_commit_callbacks(execute=True):
        post_whatsapp(client, inbox, wa_text(msg_id="wamid.IN"))
    conversation = Conversation.objects.get()
    in_flight = Message.objects.create(conversation=conversation, inbox=inbox, direction="outbound", sender="agent",
                                       content="x", status=MessageStatus.QUEUED)

    with django_capture_on_commit_callbacks(execute=True):
        post_whatsapp(client, inbox, wa_status(msg_id="wamid.LATE", status="delivered"))
    event = WebhookEvent.objects.latest("id")
    assert (event.status, event.attempts) == ("parked", 2)
    assert "arrived before the send was recorded" in event.last_error

    # The send result is stored; replaying the parked receipt now applies it.
    Message.objects.filter(pk=in_flight.pk).update(status="sent", provider_message_id="wamid.LATE")
    from channels_app.services import webhook_event_replay

    with django_capture_on_commit_callbacks(execute=True):
        webhook_event_replay(event=event)
    in_flight.refresh_from_db()
    assert in_flight.status == "delivered"


def test_status_for_a_message_that_is_not_ours_is_ignored(client, django_capture_on_commit_callbacks):
    inbox = whatsapp_inbox()

    with django_capture_on_commit_callbacks(execute=True):
        post_whatsapp(client, inbox, wa_status(msg_id="wamid.SOMEONE-ELSE", status="read"))

    assert WebhookEvent.objects.get().status == "processed"


def test_broker_outage_at_commit_still_acknowledges_and_the_sweeper_processes_later(
    client, django_capture_on_commit_callbacks
):
    import datetime as dt

    from django.utils import timezone

    from channels_app.services.ingest import webhook_events_requeue

    inbox = whatsapp_inbox()
    with mock.patch("channels_app.tasks.webhook_events_drain_task.delay", side_effect=ConnectionError("broker down")):
        with django_capture_on_commit_callbacks(execute=True):
            response = post_whatsapp(client, inbox, wa_text())

    assert response.status_code == 200
    event = WebhookEvent.objects.get()
    assert event.status == "received"
    assert webhook_events_requeue() == 0  # too recent: its task may still be on its way

    assert webhook_events_requeue(now=timezone.now() + dt.timedelta(minutes=6)) == 1

    event.refresh_from_db()
    assert event.status == "processed"
    assert Message.objects.count() == 1


def test_a_burst_of_deliveries_queues_one_drain_that_processes_them_all(client, django_capture_on_commit_callbacks):
    """Acks publish no task per delivery: the first wakes a drain, the others see it is awake."""
    from channels_app.services.ingest import webhook_events_drain

    inbox = whatsapp_inbox()
    with mock.patch("channels_app.tasks.webhook_events_drain_task.delay") as wake:
        with django_capture_on_commit_callbacks(execute=True):
            for n in range(3):
                assert post_whatsapp(client, inbox, wa_text(msg_id=f"wamid.burst{n}")).status_code == 200
        assert wake.call_count == 1
        assert WebhookEvent.objects.filter(status="received").count() == 3

        assert webhook_events_drain() == 3
        assert Message.objects.count() == 3 and not WebhookEvent.objects.exclude(status="processed").exists()

        # The drain cleared the flag before its last look: the next delivery wakes a new one.
        with django_capture_on_commit_callbacks(execute=True):
            post_whatsapp(client, inbox, wa_text(msg_id="wamid.after"))
        assert wake.call_count == 2


def _drain_with_arrivals(client, django_capture_on_commit_callbacks, inbox, arrivals: dict[int, str]) -> int:
    """Run a drain; after its step number N (from 1) a delivery `arrivals[N]` is acknowledged,
    as a provider would while the drain works."""
    from channels_app.services import ingest

    real_step, steps = ingest._drain_step, []

    def step(size):
        claimed = real_step(size)
        steps.append(claimed)
        if len(steps) in arrivals:
            with django_capture_on_commit_callbacks(execute=True):
                assert post_whatsapp(client, inbox, wa_text(msg_id=arrivals[len(steps)])).status_code == 200
        return claimed

    with mock.patch.object(ingest, "_drain_step", side_effect=step):
        return ingest.webhook_events_drain()


def test_a_working_drain_takes_what_arrives_meanwhile_without_queuing_another(
        client, django_capture_on_commit_callbacks):
    """The drain keeps the wake flag while it finds work: a delivery acknowledged meanwhile
    publishes no task and is claimed by the drain's next look."""
    inbox = whatsapp_inbox()
    with mock.patch("channels_app.tasks.webhook_events_drain_task.delay") as wake:
        with django_capture_on_commit_callbacks(execute=True):
            post_whatsapp(client, inbox, wa_text(msg_id="wamid.first"))
        assert wake.call_count == 1

        assert _drain_with_arrivals(client, django_capture_on_commit_callbacks, inbox, {1: "wamid.meanwhile"}) == 2
        assert wake.call_count == 1
        assert not WebhookEvent.objects.exclude(status="processed").exists()


def test_a_delivery_between_the_empty_look_and_the_flag_clear_is_found_by_the_last_look(
        client, django_capture_on_commit_callbacks):
    """The race the protocol exists for: after a look finds nothing, a delivery commits while the
    flag is still set (so it queues nothing); the drain clears the flag and looks once more."""
    inbox = whatsapp_inbox()
    with mock.patch("channels_app.tasks.webhook_events_drain_task.delay") as wake:
        with django_capture_on_commit_callbacks(execute=True):
            post_whatsapp(client, inbox, wa_text(msg_id="wamid.first"))
        # step 1 claims the first, step 2 finds nothing and the delivery lands right after it.
        assert _drain_with_arrivals(client, django_capture_on_commit_callbacks, inbox, {2: "wamid.late"}) == 2
        assert wake.call_count == 1
        assert not WebhookEvent.objects.exclude(status="processed").exists()

        # After the drain ended, the flag is clear: the next delivery queues a drain.
        with django_capture_on_commit_callbacks(execute=True):
            post_whatsapp(client, inbox, wa_text(msg_id="wamid.next"))
        assert wake.call_count == 2


def test_a_backlog_clears_the_flag_so_a_second_drain_shares_it(client, django_capture_on_commit_callbacks):
    """A full batch means more may be waiting: the next delivery queues a second drain (both
    claim with SKIP LOCKED) instead of leaving one drain with the whole backlog."""
    inbox = whatsapp_inbox()
    with mock.patch("channels_app.tasks.webhook_events_drain_task.delay") as wake, \
            mock.patch("channels_app.services.ingest_batch.BATCH_SIZE", 2):
        with django_capture_on_commit_callbacks(execute=True):
            for n in range(3):
                post_whatsapp(client, inbox, wa_text(msg_id=f"wamid.backlog{n}"))
        assert wake.call_count == 1

        # Step 1 claims a full batch (2) and the drain clears the flag; during step 2 a delivery
        # arrives and wakes a second drain. This drain still takes it (nobody else claimed it).
        assert _drain_with_arrivals(client, django_capture_on_commit_callbacks, inbox, {2: "wamid.during"}) == 4
        assert wake.call_count == 2
        assert not WebhookEvent.objects.exclude(status="processed").exists()


def test_a_drain_stops_at_its_limit_and_queues_a_successor(client, django_capture_on_commit_callbacks):
    from channels_app.services.ingest import webhook_events_drain

    inbox = whatsapp_inbox()
    with mock.patch("channels_app.tasks.webhook_events_drain_task.delay") as wake:
        with django_capture_on_commit_callbacks(execute=True):
            for n in range(3):
                post_whatsapp(client, inbox, wa_text(msg_id=f"wamid.limit{n}"))
        assert webhook_events_drain(limit=2) == 2
        assert wake.call_count == 2  # the successor
        assert webhook_events_drain() == 1
