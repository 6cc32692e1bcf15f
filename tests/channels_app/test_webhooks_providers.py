"""Ingest for the form-encoded, MIME and first-party channels through the real webhook URL."""
from __future__ import annotations

import hashlib
import hmac
import json
from urllib.parse import parse_qsl

import pytest

from channels_app.adapters import api as api_adapter
from channels_app.adapters import twilio_sms
from channels_app.models import Conversation, Message, WebhookEvent
from channels_app.services import inbox_create
from customers.models import Customer, Identity

pytestmark = pytest.mark.django_db

TWILIO_TOKEN = "12345678901234567890123456789012"
EMAIL_SECRET = "email-inbound-secret-1"
API_SECRET = "api-secret-at-least-16"


def twilio_inbox():
    return inbox_create(name="SMS", kind="twilio_sms", config={
        "account_sid": "AC58f1e8f2b1c6b88ca90a012a4be0c279", "auth_token": TWILIO_TOKEN, "from_number": "+19253920364"})


def test_twilio_sms_signed_on_the_public_url(client, settings, shared_fixture, django_capture_on_commit_callbacks):
    settings.PUBLIC_BASE_URL = "https://cx.example.com"
    inbox = twilio_inbox()
    body = shared_fixture("twilio_sms_inbound.txt")
    signature = twilio_sms.compute_signature(f"https://cx.example.com{inbox.webhook_path}",
                                             parse_qsl(body.decode(), keep_blank_values=True), TWILIO_TOKEN)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(inbox.webhook_path, data=body, content_type="application/x-www-form-urlencoded",
                               HTTP_X_TWILIO_SIGNATURE=signature)

    assert response.status_code == 200, response.content
    message = Message.objects.get()
    assert (message.content, message.provider_message_id) == ("twilio-go testing!", "SM1521fa559fb923c1ed64f56cd1bed8ef")
    identity = Identity.objects.get(customer=message.conversation.customer)
    assert (identity.kind, identity.value) == ("phone", "+19253920364")


def test_twilio_signature_on_another_url_is_403(client, settings, shared_fixture):
    settings.PUBLIC_BASE_URL = "https://cx.example.com"
    inbox = twilio_inbox()
    body = shared_fixture("twilio_sms_inbound.txt")
    signature = twilio_sms.compute_signature(f"https://evil.example.com{inbox.webhook_path}",
                                             parse_qsl(body.decode(), keep_blank_values=True), TWILIO_TOKEN)

    response = client.post(inbox.webhook_path, data=body, content_type="application/x-www-form-urlencoded",
                           HTTP_X_TWILIO_SIGNATURE=signature)

    assert response.status_code == 403
    assert WebhookEvent.objects.count() == 0


def test_email_raw_mime_with_hmac(client, shared_fixture, django_capture_on_commit_callbacks):
    inbox = inbox_create(name="Email", kind="email", config={"address": "halo@tokodemo.test",
                                                              "inbound_secret": EMAIL_SECRET})
    body = shared_fixture("email_gmail_reply_quote.eml")
    signature = "sha256=" + hmac.new(EMAIL_SECRET.encode(), body, hashlib.sha256).hexdigest()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(inbox.webhook_path, data=body, content_type="message/rfc822",
                               HTTP_X_INBOUND_SIGNATURE=signature)

    assert response.status_code == 200, response.content
    event = WebhookEvent.objects.get()
    assert event.status == "processed", event.last_error
    message = Message.objects.get()
    assert message.inbox_id == inbox.pk
    assert message.provider_message_id
    identity = Identity.objects.get(customer=message.conversation.customer)
    assert identity.kind == "email"


def test_api_channel_signed_batch(client, django_capture_on_commit_callbacks):
    inbox = inbox_create(name="API", kind="api", config={"callback_url": "https://example.com/cb", "secret": API_SECRET})
    body = json.dumps({"messages": [
        {"id": "ext-1", "from": {"kind": "phone", "value": "+6281234567890", "name": "Budi"}, "text": "Pesanan #1"},
        {"id": "ext-2", "from": {"kind": "phone", "value": "+6281234567890"}, "text": "Pesanan #2"},
    ]}).encode()
    headers = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in api_adapter.signed_headers(API_SECRET, body).items()}

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(inbox.webhook_path, data=body, content_type="application/json", **headers)

    assert response.status_code == 200, response.content
    assert list(Message.objects.order_by("id").values_list("provider_message_id", "content")) == [
        ("ext-1", "Pesanan #1"), ("ext-2", "Pesanan #2")]
    assert Conversation.objects.count() == 1


def test_voice_inbox_has_no_webhook(client):
    inbox = inbox_create(name="Calls", kind="voice")

    response = client.post(inbox.webhook_path, data=b"{}", content_type="application/json")

    assert response.status_code == 404


def test_email_reply_keeps_the_customers_thread(client, agent, shared_fixture, django_capture_on_commit_callbacks):
    from unittest import mock

    from channels_app.adapters.base import DeliveryResult
    from channels_app.adapters.email import EmailAdapter
    from channels_app.services import message_create_outbound

    inbox = inbox_create(name="Email", kind="email", config={"address": "halo@tokodemo.test",
                                                              "inbound_secret": EMAIL_SECRET, "smtp_host": "127.0.0.1"})
    body = shared_fixture("email_gmail_reply_in_reply_to_quote.eml")
    signature = "sha256=" + hmac.new(EMAIL_SECRET.encode(), body, hashlib.sha256).hexdigest()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(inbox.webhook_path, data=body, content_type="message/rfc822", HTTP_X_INBOUND_SIGNATURE=signature)
    inbound = Message.objects.get()
    sent = []

    def fake_send(self, message):  # the SMTP conversation itself is the adapter's test
        sent.append(message)
        return DeliveryResult(provider_message_id=message.idempotency_key)

    with mock.patch.object(EmailAdapter, "send", fake_send), django_capture_on_commit_callbacks(execute=True):
        reply = message_create_outbound(conversation=inbound.conversation, author=agent, content="Terima kasih")

    (outbound,) = sent
    subject = inbound.data["extra"]["subject"]
    assert outbound.subject == (subject if subject.lower().startswith("re:") else f"Re: {subject}")
    assert outbound.reply_to_id == inbound.provider_message_id
    assert outbound.references == tuple(inbound.data["extra"]["references"])
    assert outbound.to == Identity.objects.get(customer=inbound.conversation.customer, kind="email").value
    reply.refresh_from_db()
    assert reply.status == "sent"


def test_large_email_beyond_djangos_upload_limit_is_accepted(client, settings, django_capture_on_commit_callbacks):
    import base64

    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024
    inbox = inbox_create(name="Email", kind="email", config={"address": "halo@tokodemo.test",
                                                              "inbound_secret": EMAIL_SECRET})
    pdf = b"%PDF-1.4\n" + b"x" * (2 * 1024 * 1024)
    encoded = base64.encodebytes(pdf).decode()
    body = (
        "From: Budi <budi@example.com>\r\nTo: halo@tokodemo.test\r\nSubject: Faktur\r\n"
        "Message-ID: <big-1@example.com>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
        "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nFaktur terlampir.\r\n"
        '--b1\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename="faktur.pdf"\r\n'
        f"Content-Transfer-Encoding: base64\r\n\r\n{encoded}\r\n--b1--\r\n"
    ).encode()
    signature = "sha256=" + hmac.new(EMAIL_SECRET.encode(), body, hashlib.sha256).hexdigest()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(inbox.webhook_path, data=body, content_type="message/rfc822",
                               HTTP_X_INBOUND_SIGNATURE=signature)

    assert response.status_code == 200, response.content[:300]
    message = Message.objects.get()
    assert message.content == "Faktur terlampir."
    assert message.attachments[0]["size"] == len(pdf)
    assert message.attachments[0]["stored"].endswith("faktur.pdf")


def test_body_over_the_webhook_limit_is_413(client, settings):
    settings.WEBHOOK_MAX_BODY_BYTES = 1000
    inbox = inbox_create(name="Email", kind="email", config={"address": "halo@tokodemo.test",
                                                              "inbound_secret": EMAIL_SECRET})

    response = client.post(inbox.webhook_path, data=b"x" * 2000, content_type="message/rfc822")

    assert response.status_code == 413
    assert WebhookEvent.objects.count() == 0


def test_out_of_office_reply_does_not_reopen_a_resolved_conversation(client, supervisor, django_capture_on_commit_callbacks):
    from channels_app.services import conversation_status_set

    inbox = inbox_create(name="Email", kind="email", config={"address": "halo@tokodemo.test",
                                                              "inbound_secret": EMAIL_SECRET})

    def post(message_id: str, extra_headers: str, text: str):
        body = (f"From: Budi <budi@example.com>\r\nTo: halo@tokodemo.test\r\nSubject: Pesanan\r\n"
                f"Message-ID: <{message_id}@example.com>\r\n{extra_headers}"
                f"Content-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n").encode()
        signature = "sha256=" + hmac.new(EMAIL_SECRET.encode(), body, hashlib.sha256).hexdigest()
        with django_capture_on_commit_callbacks(execute=True):
            assert client.post(inbox.webhook_path, data=body, content_type="message/rfc822",
                               HTTP_X_INBOUND_SIGNATURE=signature).status_code == 200

    post("m1", "", "Pesanan saya belum sampai.")
    conversation = Conversation.objects.get()
    conversation_status_set(conversation=conversation, status="resolved", actor=supervisor)

    post("m2", "Auto-Submitted: auto-replied\r\n", "Saya sedang cuti sampai Senin.")

    conversation.refresh_from_db()
    assert conversation.status == "resolved"
    assert Conversation.objects.count() == 1
    assert Customer.objects.count() == 1  # emails from the same address thread on one profile
    assert conversation.messages.count() == 2
    assert conversation.messages.get(provider_message_id="m2@example.com").data["extra"]["auto_reply"] is True


def test_webchat_visitor_keeps_one_profile_and_conversation(client, django_capture_on_commit_callbacks):
    inbox = inbox_create(name="Chat", kind="webchat", config={"allowed_origins": ["https://toko.example"]})

    for n, text in enumerate(["Halo", "Masih ada stok?"], start=1):
        body = json.dumps({"id": f"w-{n}", "visitor_token": "vt_8f2c1e", "text": text}).encode()
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(inbox.webhook_path, data=body, content_type="application/json",
                                   HTTP_ORIGIN="https://toko.example")
        assert response.status_code == 200, response.content

    assert Customer.objects.count() == 1
    conversation = Conversation.objects.get()
    assert list(conversation.messages.values_list("content", flat=True)) == ["Halo", "Masih ada stok?"]
    identity = Identity.objects.get()
    assert (identity.kind, identity.scope, identity.value) == ("web_visitor", str(inbox.uuid), "vt_8f2c1e")


def test_webchat_from_a_foreign_origin_is_403(client):
    inbox = inbox_create(name="Chat", kind="webchat", config={"allowed_origins": ["https://toko.example"]})
    body = json.dumps({"id": "w-1", "visitor_token": "vt_1", "text": "x"}).encode()

    response = client.post(inbox.webhook_path, data=body, content_type="application/json", HTTP_ORIGIN="https://evil.example")

    assert response.status_code == 403


def test_webchat_reply_is_pushed_to_the_visitors_socket(client, agent, django_capture_on_commit_callbacks):
    import asyncio

    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    from channels_app.services import message_create_outbound

    inbox = inbox_create(name="Chat", kind="webchat", config={"allowed_origins": ["https://toko.example"]})
    body = json.dumps({"id": "w-1", "visitor_token": "vt_8f2c1e", "text": "Halo"}).encode()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(inbox.webhook_path, data=body, content_type="application/json", HTTP_ORIGIN="https://toko.example")
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)("visitor.vt_8f2c1e", channel)

    with django_capture_on_commit_callbacks(execute=True):
        reply = message_create_outbound(conversation=Conversation.objects.get(), author=agent, content="Halo juga!")

    async def receive():
        return await asyncio.wait_for(layer.receive(channel), timeout=1)

    event = async_to_sync(receive)()
    assert event["payload"]["event"] == "webchat.message"
    assert event["payload"]["message"] == {"id": str(reply.uuid), "text": "Halo juga!",
                                           "created_at": reply.created_at.isoformat()}
    reply.refresh_from_db()
    assert reply.status == "sent"
