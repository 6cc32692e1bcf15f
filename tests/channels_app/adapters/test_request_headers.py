"""The webhook view passes Django's request.headers / request.body: adapters must accept them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from django.test import RequestFactory

from channels_app.adapters import registry
from channels_app.adapters.twilio_sms import compute_signature


def test_meta_signature_from_django_request(shared_fixture):
    vector = json.loads(shared_fixture("meta_x_hub_signature_256_vector.json"))
    body = shared_fixture(vector["body_file"])
    request = RequestFactory().post("/webhooks/whatsapp/x/", data=body, content_type="application/json",
                                    HTTP_X_HUB_SIGNATURE_256=vector["expected_header_value"])
    adapter = registry.get_adapter("whatsapp", {"phone_number_id": "277321005464405", "access_token": "t",
                                                "app_secret": vector["app_secret"], "verify_token": "v"})

    adapter.verify(request.body, request.headers)
    assert [e.text for e in adapter.parse(request.body, request.headers)] == ["Hey there! I am using PyWa."]


def test_meta_handshake_from_query_dict():
    request = RequestFactory().get("/webhooks/whatsapp/x/", {"hub.mode": "subscribe", "hub.verify_token": "v",
                                                             "hub.challenge": "987654"})
    adapter = registry.get_adapter("whatsapp", {"phone_number_id": "1", "access_token": "t", "app_secret": "s",
                                                "verify_token": "v"})
    assert adapter.handshake(request.GET) == "987654"


def test_twilio_signature_from_django_request(shared_fixture):
    body = shared_fixture("twilio_whatsapp_inbound_image.txt")
    url = "https://cx.example.com/webhooks/twilio_sms/abc/"
    request = RequestFactory().post("/webhooks/twilio_sms/abc/", data=body,
                                    content_type="application/x-www-form-urlencoded")
    signature = compute_signature(url, [(k, v) for k, values in request.POST.lists() for v in values], "tok")
    request.META["HTTP_X_TWILIO_SIGNATURE"] = signature
    adapter = registry.get_adapter("twilio_sms", {"account_sid": "AC" + "0" * 32, "auth_token": "tok",
                                                  "from_number": "whatsapp:+14123456789"})

    adapter.verify(request.body, request.headers, url=url, params=request.POST)
    [event] = adapter.parse(request.body, request.headers)
    assert event.attachments[0].mime_type == "image/jpeg"


def test_line_signature_from_django_request(shared_fixture):
    body = shared_fixture("line_message_text_signed.json")
    signature = base64.b64encode(hmac.new(b"test_channel_secret", body, hashlib.sha256).digest()).decode()
    request = RequestFactory().post("/webhooks/line/x/", data=body, content_type="application/json",
                                    HTTP_X_LINE_SIGNATURE=signature)
    adapter = registry.get_adapter("line", {"channel_access_token": "t", "channel_secret": "test_channel_secret"})

    adapter.verify(request.body, request.headers)
    assert signature == "GzU7H3qOXDzDD6cNcS/9otLzlLFxnYYriz62rNu5BDE="
