from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from channels_app.adapters.api import ApiAdapter, ApiConfig, signed_headers, verify_signature
from channels_app.adapters.base import (
    AdapterError,
    Attachment,
    ConfigError,
    Identity,
    OutboundMessage,
    ParseError,
    SignatureError,
)

SECRET = "integrator-secret-0123456789"
NOW = 1750039200


def make_adapter(callback_url: str = "https://crm.example.com/cx/callback") -> ApiAdapter:
    return ApiAdapter(ApiConfig(callback_url=callback_url, secret=SECRET))


def test_signature_is_hmac_of_timestamp_dot_body():
    body = b'{"id":"x"}'
    headers = signed_headers(SECRET, body, now=NOW)
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + body, hashlib.sha256).hexdigest()
    assert headers == {"X-Cx-Timestamp": str(NOW), "X-Cx-Signature": f"sha256={expected}"}


def test_verify(own_fixture):
    body = own_fixture("api/inbound_batch.json")
    headers = signed_headers(SECRET, body, now=NOW)
    make_adapter().verify(body, headers, now=NOW + 10)
    with pytest.raises(SignatureError, match="possible replay"):
        make_adapter().verify(body, headers, now=NOW + 301)
    with pytest.raises(SignatureError, match="does not match"):
        make_adapter().verify(body + b" ", headers, now=NOW)
    with pytest.raises(SignatureError, match="required"):
        make_adapter().verify(body, {}, now=NOW)
    with pytest.raises(SignatureError, match="does not match"):
        verify_signature(body, {**headers, "X-Cx-Timestamp": str(NOW + 1)}, SECRET, now=NOW)


def test_parse_batch(own_fixture):
    phone, email, external, status = make_adapter().parse(own_fixture("api/inbound_batch.json"))

    assert (phone.provider_message_id, phone.text, phone.display_name) == (
        "crm-9001", "Saya mau ubah alamat pengiriman", "Sari Wulandari")
    assert phone.identities == [Identity("phone", "+6281234567890", True)]
    assert phone.timestamp == datetime(2025, 6, 16, 9, 0, tzinfo=timezone(timedelta(hours=7)))
    assert phone.extra["metadata"] == {"order": "42"}
    assert email.identities == [Identity("email", "budi@example.co.id", True)]
    assert email.attachments == [Attachment(kind="image", url="https://files.example.com/struk.jpg",
                                            mime_type="image/jpeg", filename="struk.jpg", size=20480)]
    assert (email.reply_to_id, email.timestamp) == ("crm-9000", datetime.fromtimestamp(1750039200, tz=UTC))
    assert external.identities == [Identity("api", "loyalty-77", True)]
    assert (status.kind, status.status, status.provider_message_id, status.error_title) == (
        "status", "failed", "5a4c2a8e-3c1d-4b7e-9f00-000000000001", "Customer app uninstalled")


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        ({"from": {"kind": "phone", "value": "+6281"}, "text": "x"}, "id is required"),
        ({"id": "1", "text": "x"}, "from must be a JSON object"),
        ({"id": "1", "from": {"kind": "fax", "value": "1"}, "text": "x"}, "from.kind must be one of"),
        ({"id": "1", "from": {"kind": "phone", "value": "0812345678"}, "text": "x"}, "E.164"),
        ({"id": "1", "from": {"kind": "email", "value": "nope"}, "text": "x"}, "not an email"),
        ({"id": "1", "from": {"kind": "external", "value": "a"}}, "needs text or attachments"),
        ({"id": "1", "from": {"kind": "external", "value": "a"}, "attachments": [{"url": "file:///etc/passwd"}]},
         "http"),
        ({"id": "1", "from": {"kind": "external", "value": "a"}, "text": "x", "timestamp": "2025-06-16T09:00:00"},
         "time zone"),
        ({"id": "1", "type": "status", "status": "sent"}, "status must be one of"),
    ],
)
def test_malformed(item, reason):
    with pytest.raises(ParseError, match=reason):
        make_adapter().parse(json.dumps(item).encode())


def test_send_signed_callback(provider_server):
    provider_server.respond(202, json_body={"id": "crm-out-1"})
    adapter = make_adapter(provider_server.url + "/cx/callback?tenant=7")
    message = OutboundMessage(to="+6281234567890", text="Alamat sudah diubah", reply_to_id="crm-9001",
                              idempotency_key="5a4c2a8e-3c1d-4b7e-9f00-000000000002", metadata={"conversation": 12})

    result = adapter.send(message)

    assert result.provider_message_id == "crm-out-1"
    request = provider_server.last
    assert (request.method, request.path) == ("POST", "/cx/callback?tenant=7")
    assert request.json() == {"event": "message.created", "id": "5a4c2a8e-3c1d-4b7e-9f00-000000000002",
                              "to": "+6281234567890", "text": "Alamat sudah diubah", "reply_to_id": "crm-9001",
                              "conversation": 12, "attachment": None}
    assert request.headers["idempotency-key"] == "5a4c2a8e-3c1d-4b7e-9f00-000000000002"
    timestamp = request.headers["x-cx-timestamp"]
    expected = hmac.new(SECRET.encode(), timestamp.encode() + b"." + request.body, hashlib.sha256).hexdigest()
    assert request.headers["x-cx-signature"] == f"sha256={expected}"


@pytest.mark.parametrize(("status", "permanent"), [(400, True), (410, True), (429, False), (500, False), (503, False)])
def test_send_errors(provider_server, status, permanent):
    provider_server.respond(status, body=b"", headers={})
    with pytest.raises(AdapterError, match=f"HTTP {status}") as info:
        make_adapter(provider_server.url + "/cb").send(OutboundMessage(to="x", text="y", idempotency_key="k"))
    assert info.value.permanent is permanent


def test_callback_to_internal_address_is_refused(settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = []
    with pytest.raises(AdapterError, match="not a public address") as info:
        make_adapter("http://10.0.0.5/cb").send(OutboundMessage(to="x", text="y", idempotency_key="k"))
    assert info.value.permanent is True


@pytest.mark.parametrize(("overrides", "reason"), [({"callback_url": "ftp://x"}, "callback_url"),
                                                   ({"secret": "short"}, "16 characters")])
def test_config_validation(overrides, reason):
    with pytest.raises(ConfigError, match=reason):
        ApiConfig(**{"callback_url": "https://crm.example.com/cb", "secret": SECRET, **overrides})


def test_send_callback_with_attachment(provider_server):
    provider_server.respond(200, body=b"", headers={})
    attachment = Attachment(kind="document", url="https://cx.example.com/media/signed/abc", mime_type="application/pdf",
                            filename="invoice.pdf", size=1234)

    result = make_adapter(provider_server.url + "/cb").send(
        OutboundMessage(to="x", text="", idempotency_key="k-9", attachment=attachment))

    assert result.provider_message_id == "k-9"  # no id in the answer: our uuid
    assert provider_server.last.json()["attachment"] == {"url": "https://cx.example.com/media/signed/abc",
                                                         "mime_type": "application/pdf", "filename": "invoice.pdf",
                                                         "size": 1234}
