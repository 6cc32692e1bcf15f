"""Every real third-party payload in ../shared/fixtures/channels replayed through the real
webhook URL, signed as the provider would sign it for the inbox (the files are read in place,
never copied). Outcomes are exact: stored and processed (with N messages), or parked with the
reason when customers' identity rules refuse the (anonymised) sender id in the payload."""
from __future__ import annotations

import hashlib
import hmac
import json
from urllib.parse import parse_qsl

import pytest

from channels_app.adapters import twilio_sms
from channels_app.models import Message, WebhookEvent
from channels_app.services import inbox_create
from customers.models import Identity
from tests.channels_app.test_webhooks import (
    instagram_inbox,
    line_inbox,
    line_signature,
    messenger_inbox,
    post_meta,
    post_telegram,
    post_whatsapp,
    telegram_inbox,
    whatsapp_inbox,
)
from tests.channels_app.test_webhooks_providers import EMAIL_SECRET, TWILIO_TOKEN, twilio_inbox

pytestmark = pytest.mark.django_db

# courier's duplicate.json uses wa_id 5678: too short to be any country's number, so it is
# parked with the reason. pywa's anonymised +972987654321 is a *possible* Israeli number that
# libphonenumber's metadata does not list: a wa_id WhatsApp proved, so it is accepted.
PARKED_PHONE = "is not a valid phone number"

# file -> (event status, messages stored, part of last_error)
EXPECTED = {
    "whatsapp_text_message_signed.json": ("processed", 1, ""),
    "whatsapp_text_message.json": ("processed", 1, ""),
    "whatsapp_image_message.json": ("processed", 1, ""),
    "whatsapp_interactive_button_reply.json": ("processed", 1, ""),
    "whatsapp_interactive_list_reply.json": ("processed", 1, ""),
    "whatsapp_template_quick_reply_button.json": ("processed", 1, ""),
    "whatsapp_batch_two_messages.json": ("parked", 0, PARKED_PHONE),
    "whatsapp_status_sent.json": ("processed", 0, ""),
    "whatsapp_status_delivered.json": ("processed", 0, ""),
    "whatsapp_status_read.json": ("processed", 0, ""),
    "whatsapp_status_failed.json": ("processed", 0, ""),
    "messenger_text_message.json": ("processed", 1, ""),
    "messenger_postback.json": ("processed", 1, ""),
    "messenger_postback_with_title_referral.json": ("processed", 1, ""),
    "messenger_delivery.json": ("processed", 0, ""),
    "instagram_text_message.json": ("processed", 1, ""),
    "instagram_image_attachment.json": ("processed", 1, ""),
    "telegram_message_text_private.json": ("processed", 1, ""),  # user id 1111111 is a real platform id
    "telegram_message_reply.json": ("processed", 1, ""),  # user id 1111111 is a real platform id
    "telegram_message_document.json": ("processed", 1, ""),  # user id 1111111 is a real platform id
    "telegram_callback_query.json": ("processed", 1, ""),  # user id 1111111 is a real platform id
    "telegram_edited_message.json": ("processed", 0, ""),  # an edit of a message we never stored
    "telegram_message_photo.json": ("processed", 1, ""),
    "line_message_text_user.json": ("processed", 1, ""),
    "line_message_text_redelivery.json": ("processed", 1, ""),
    "line_message_text_signed.json": ("processed", 1, ""),  # group without userId: the group is the contact
    # The SDK's sample reuses message id 325708 and webhookEventId "testwebhookeventid" for every
    # event, so redelivery protection folds them: text 325708, image 354718705033693861, one postback.
    "line_webhook_all_event_types.json": ("processed", 3, ""),
    "twilio_sms_inbound.txt": ("processed", 1, ""),
    "twilio_sms_status_sent.txt": ("processed", 0, ""),
    "twilio_sms_status_failed.txt": ("processed", 0, ""),
    "twilio_whatsapp_inbound_text.txt": ("processed", 1, ""),
    "twilio_whatsapp_inbound_image.txt": ("processed", 1, ""),
    "twilio_whatsapp_inbound_location.txt": ("processed", 1, ""),
    "twilio_whatsapp_status_sent.txt": ("processed", 0, ""),
    "twilio_whatsapp_status_delivered.txt": ("processed", 0, ""),
    "email_reply_thread_with_attachments.eml": ("processed", 1, ""),
    "email_gmail_reply_quote.eml": ("processed", 1, ""),
    "email_gmail_reply_in_reply_to_quote.eml": ("processed", 1, ""),
    "email_gmail_quote_multiple_attachments.eml": ("processed", 1, ""),
}


def _deliver(client, settings, name: str, body: bytes):
    kind = name.split("_")[0]
    if kind == "whatsapp":
        if name == "whatsapp_text_message_signed.json":
            return post_whatsapp(client, whatsapp_inbox(app_secret="1222e786b144d0e85b9f365372d93676"), body,
                                 secret="1222e786b144d0e85b9f365372d93676")
        return post_whatsapp(client, whatsapp_inbox(), body)
    if kind == "messenger":
        return post_meta(client, messenger_inbox(), body, "fb-app-secret")
    if kind == "instagram":
        return post_meta(client, instagram_inbox(), body, "ig-app-secret")
    if kind == "telegram":
        return post_telegram(client, telegram_inbox(), body)
    if kind == "line":
        inbox = line_inbox()
        return client.post(inbox.webhook_path, data=body, content_type="application/json",
                           HTTP_X_LINE_SIGNATURE=line_signature(body))
    if kind == "email":
        inbox = inbox_create(name="Email", kind="email", config={"address": "halo@tokodemo.test",
                                                                  "inbound_secret": EMAIL_SECRET})
        signature = "sha256=" + hmac.new(EMAIL_SECRET.encode(), body, hashlib.sha256).hexdigest()
        return client.post(inbox.webhook_path, data=body, content_type="message/rfc822",
                           HTTP_X_INBOUND_SIGNATURE=signature)
    settings.PUBLIC_BASE_URL = "https://cx.example.com"
    inbox = twilio_inbox()
    signature = twilio_sms.compute_signature(f"https://cx.example.com{inbox.webhook_path}",
                                             parse_qsl(body.decode(), keep_blank_values=True), TWILIO_TOKEN)
    return client.post(inbox.webhook_path, data=body, content_type="application/x-www-form-urlencoded",
                       HTTP_X_TWILIO_SIGNATURE=signature)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shared_payload_replayed_through_the_webhook_url(client, settings, shared_fixture, name,
                                                         django_capture_on_commit_callbacks):
    body = shared_fixture(name)
    status, count, error = EXPECTED[name]

    with django_capture_on_commit_callbacks(execute=True):
        response = _deliver(client, settings, name, body)

    assert response.status_code == 200, response.content
    event = WebhookEvent.objects.get()
    assert bytes(event.body) == body
    assert event.status == status, event.last_error
    assert error in event.last_error
    assert Message.objects.count() == count


def test_real_line_signature_from_the_sdk_test_is_accepted(client, shared_fixture, django_capture_on_commit_callbacks):
    vector = next(v for v in json.loads(shared_fixture("line_signature_vectors.json"))["vectors"]
                  if v.get("body_file") == "line_message_text_signed.json")
    body = shared_fixture(vector["body_file"])
    inbox = line_inbox(secret=vector["channel_secret"])

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(inbox.webhook_path, data=body, content_type="application/json",
                               HTTP_X_LINE_SIGNATURE=vector["expected_signature"])

    assert response.status_code == 200
    message = Message.objects.get()
    assert message.content == "this is test message.😄😅😢😞😄😅😢😞"
    identity = Identity.objects.get(customer=message.conversation.customer)
    assert (identity.kind, identity.value, identity.scope) == ("line", "test_group_id", str(inbox.uuid))


def test_line_sdk_invalid_json_vector_is_400_after_a_valid_signature(client, shared_fixture):
    vector = next(v for v in json.loads(shared_fixture("line_signature_vectors.json"))["vectors"]
                  if v.get("body") == "i am not jason")
    inbox = line_inbox(secret=vector["channel_secret"])

    response = client.post(inbox.webhook_path, data=vector["body"].encode(), content_type="application/json",
                           HTTP_X_LINE_SIGNATURE=vector["expected_signature"])

    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("body is not valid JSON")
    assert WebhookEvent.objects.count() == 0


def test_line_redelivery_of_an_already_stored_event_stores_nothing_new(client, shared_fixture,
                                                                        django_capture_on_commit_callbacks):
    inbox = line_inbox()
    body = shared_fixture("line_message_text_redelivery.json")
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            client.post(inbox.webhook_path, data=body, content_type="application/json",
                        HTTP_X_LINE_SIGNATURE=line_signature(body))

    assert WebhookEvent.objects.filter(status="processed").count() == 2
    assert Message.objects.count() == 1
