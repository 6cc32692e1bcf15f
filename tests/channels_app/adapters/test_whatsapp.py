from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest

from channels_app.adapters.base import (
    AdapterError,
    Attachment,
    ConfigError,
    ContactCard,
    Identity,
    Location,
    OutboundMessage,
    ParseError,
    SignatureError,
    Template,
)
from channels_app.adapters.whatsapp import (
    WhatsAppAdapter,
    WhatsAppConfig,
    customer_service_window_closes_at,
    customer_service_window_open,
)

SECRET = "test-app-secret"


def make_adapter(base_url: str = "", **overrides) -> WhatsAppAdapter:
    values = dict(phone_number_id="106540352242922", access_token="EAAtoken", app_secret=SECRET,
                  verify_token="verify-me", api_base_url=base_url)
    values.update(overrides)
    return WhatsAppAdapter(WhatsAppConfig(**values))


def sign(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {"X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


# --- signatures -----------------------------------------------------------------------------


def test_real_meta_delivery_verifies_with_published_vector(shared_fixture):
    vector = json.loads(shared_fixture("meta_x_hub_signature_256_vector.json"))
    body = shared_fixture(vector["body_file"])
    adapter = make_adapter(app_secret=vector["app_secret"])

    assert len(body) == vector["body_length_bytes"] == 511
    adapter.verify(body, {"X-Hub-Signature-256": vector["expected_header_value"]})
    adapter.verify(body, {"x-hub-signature-256": vector["expected_header_value"]})  # header case does not matter


def test_real_delivery_fails_when_one_byte_changes(shared_fixture):
    vector = json.loads(shared_fixture("meta_x_hub_signature_256_vector.json"))
    body = shared_fixture(vector["body_file"]) + b"\n"
    with pytest.raises(SignatureError, match="does not match"):
        make_adapter(app_secret=vector["app_secret"]).verify(body, {"X-Hub-Signature-256": vector["expected_header_value"]})


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing X-Hub-Signature-256"),
        ({"X-Hub-Signature-256": "sha1=abc"}, "must start with 'sha256='"),
        ({"X-Hub-Signature-256": "sha256=" + "0" * 64}, "does not match"),
        ({"X-Hub-Signature-256": "sha256="}, "does not match"),
    ],
)
def test_bad_signatures_are_rejected(headers, reason):
    with pytest.raises(SignatureError, match=reason) as info:
        make_adapter().verify(b'{"object":"whatsapp_business_account","entry":[]}', headers)
    assert info.value.permanent is True


def test_signature_with_other_secret_is_rejected():
    body = b'{"object":"whatsapp_business_account","entry":[]}'
    with pytest.raises(SignatureError):
        make_adapter().verify(body, sign(body, "another-secret"))


# --- handshake ------------------------------------------------------------------------------


def test_handshake_echoes_challenge():
    query = {"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "1158201444"}
    assert make_adapter().handshake(query) == "1158201444"


@pytest.mark.parametrize(
    "query",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "wrong", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": "verify-me", "hub.challenge": "1"},
        {"hub.verify_token": "verify-me", "hub.challenge": "1"},
    ],
)
def test_handshake_refuses_wrong_token_or_mode(query):
    with pytest.raises(SignatureError):
        make_adapter().handshake(query)


# --- parse: shared third-party payloads -----------------------------------------------------


def test_parse_real_signed_text_delivery(shared_fixture):
    [event] = make_adapter().parse(shared_fixture("whatsapp_text_message_signed.json"))

    assert event.kind == "message"
    assert event.provider_message_id == "wamid.HBgMOTcyNTQ0NDAxMjQzFQIAEhggM0RFQTNCMEEwRTY3QzUwODYzMDc4NjQ4QzM4ODAxM0YA"
    assert event.identities == [Identity("phone", "+972544401243", True)]
    assert event.display_name == "PyWa Tests"
    assert event.text == "Hey there! I am using PyWa."
    assert event.timestamp == datetime(2024, 10, 29, 19, 58, 23, tzinfo=UTC)
    assert event.extra["phone_number_id"] == "277321005464405"


def test_parse_text_with_business_scoped_user_id(shared_fixture):
    [event] = make_adapter().parse(shared_fixture("whatsapp_text_message.json"))

    assert (event.kind, event.text, event.provider_message_id) == ("message", "Body Text", "wamid.xyzxyz")
    assert event.identities == [Identity("phone", "+972987654321", True)]
    assert event.extra["user_id"] == "US.13491208655302741918"


def test_parse_image(shared_fixture):
    [event] = make_adapter().parse(shared_fixture("whatsapp_image_message.json"))

    assert event.kind == "message"
    assert event.attachments == [Attachment(kind="image", media_id="65463453", mime_type="image/jpeg", sha256="4654+8g=")]
    assert event.text == ""


@pytest.mark.parametrize(
    ("name", "payload", "text", "reply_to", "extra_key"),
    [
        ("whatsapp_interactive_button_reply.json", "callback_data", "title", "wamid.xyzxyz", None),
        ("whatsapp_interactive_list_reply.json", "callback_data", "title", "wamid.xyzxyz", "description"),
        ("whatsapp_template_quick_reply_button.json", "callback_data", "title", "wamid.xyzxyz==", None),
    ],
)
def test_parse_button_and_list_replies(shared_fixture, name, payload, text, reply_to, extra_key):
    [event] = make_adapter().parse(shared_fixture(name))

    assert (event.kind, event.payload, event.text, event.reply_to_id) == ("postback", payload, text, reply_to)
    if extra_key:
        assert event.extra[extra_key] == "description"


@pytest.mark.parametrize(
    ("name", "status", "timestamp"),
    [
        ("whatsapp_status_sent.json", "sent", 1698266945),
        ("whatsapp_status_delivered.json", "delivered", 1698266945),
        ("whatsapp_status_read.json", "read", 1689380458),
    ],
)
def test_parse_status_updates(shared_fixture, name, status, timestamp):
    [event] = make_adapter().parse(shared_fixture(name))

    assert (event.kind, event.status, event.provider_message_id) == ("status", status, "wamid.xyzxyz")
    assert event.timestamp == datetime.fromtimestamp(timestamp, tz=UTC)
    assert event.identities == [Identity("phone", "+972987654321", True)]
    assert event.extra["pricing"]["category"] == "service"
    assert (event.error_code, event.error_title) == ("", "")


def test_parse_failed_status_with_error(shared_fixture):
    [event] = make_adapter().parse(shared_fixture("whatsapp_status_failed.json"))

    assert (event.kind, event.status) == ("status", "failed")
    assert (event.error_code, event.error_title) == ("130472", "User's number is part of an experiment")


def test_parse_batch_keeps_every_item_including_duplicates(shared_fixture):
    """De-duplication is the ingest's job (unique provider id); the parser must not hide items."""
    events = make_adapter().parse(shared_fixture("whatsapp_batch_two_messages.json"))

    assert [(e.provider_message_id, e.text, e.display_name) for e in events] == [
        ("external_id", "Hello World", "Kerry Fisher"),
        ("external_id", "Hello World", "Kerry Fisher"),
    ]
    assert events[0].identities == [Identity("phone", "+5678", True)]


# --- parse: our documentation fixtures ------------------------------------------------------


def test_parse_mixed_batch(own_fixture):
    events = make_adapter().parse(own_fixture("whatsapp/batch_mixed_messages.json"))

    assert [e.kind for e in events] == [
        "message", "message", "message", "message", "reaction", "reaction", "message", "message", "message"]
    text, location, document, contacts, reaction, unreaction, sticker, audio, unsupported = events
    assert (text.text, text.display_name, text.identities) == (
        "Halo, pesanan saya belum sampai", "Sari Wulandari", [Identity("phone", "+6281234567890", True)])
    assert location.location == Location(-6.2, 106.816666, "Monas", "Gambir, Jakarta Pusat")
    assert document.attachments == [Attachment(
        kind="document", media_id="1003383421387256", mime_type="application/pdf",
        sha256="b1946ac92492d2347c6235b4d2611184", filename="invoice-0042.pdf", caption="Invoice")]
    assert document.text == "Invoice"
    assert document.display_name == "Budi"
    assert contacts.contacts == [ContactCard("Dewi Lestari", ("+62 812-0000-1111",), ("dewi@example.com",))]
    assert (reaction.emoji, reaction.reply_to_id) == ("\U0001F44D", "wamid.OUTBOUND1")
    assert (unreaction.emoji, unreaction.reply_to_id) == ("", "wamid.OUTBOUND1")
    assert sticker.attachments[0].kind == "sticker" and sticker.attachments[0].media_id == "788390223310234"
    assert audio.attachments[0].mime_type == "audio/ogg; codecs=opus"
    assert (unsupported.error_code, unsupported.error_title) == ("131051", "Message type unknown")


def test_parse_failed_reengagement_and_read_statuses(own_fixture):
    failed, read = make_adapter().parse(own_fixture("whatsapp/status_failed_reengagement.json"))

    assert (failed.status, failed.error_code, failed.error_title) == ("failed", "131047", "Re-engagement message")
    assert (read.status, read.provider_message_id, read.error_code) == ("read", "wamid.OUTBOUND1", "")


def test_non_message_fields_are_skipped():
    body = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [
        {"field": "message_template_status_update", "value": {"event": "APPROVED"}}]}]}).encode()
    assert make_adapter().parse(body) == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "not valid JSON"),
        (b"[]", "body must be a JSON object"),
        (b'{"object":"page","entry":[]}', "object must be 'whatsapp_business_account'"),
        (b'{"object":"whatsapp_business_account"}', "entry must be a JSON array"),
        (b'{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":'
         b'{"messages":[{"type":"text"}]}}]}]}', "needs 'from' and 'id'"),
        (b'{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":'
         b'{"statuses":[{"id":"x"}]}}]}]}', "needs 'id' and 'status'"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
def test_malformed_bodies_raise_parse_error_with_reason(body, reason):
    with pytest.raises(ParseError, match=reason):
        make_adapter().parse(body)


# --- 24-hour window -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("age", "is_open"),
    [(timedelta(hours=0), True), (timedelta(hours=23, minutes=59), True), (timedelta(hours=24), False),
     (timedelta(days=3), False)],
)
def test_customer_service_window(age, is_open):
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    assert customer_service_window_open(now - age, now=now) is is_open


def test_customer_service_window_without_inbound_is_closed():
    assert customer_service_window_open(None) is False
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert customer_service_window_closes_at(start) == datetime(2026, 1, 2, tzinfo=UTC)


# --- config ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"access_token": ""}, "access_token is required"),
        ({"phone_number_id": "abc"}, "numeric"),
        ({"api_version": "26"}, "api_version"),
        ({"api_base_url": "ftp://graph"}, "api_base_url"),
    ],
)
def test_invalid_config(overrides, reason):
    with pytest.raises(ConfigError, match=reason):
        make_adapter(**overrides)


def test_config_from_dict_rejects_unknown_fields_and_redacts_secrets():
    with pytest.raises(ConfigError, match="unknown field"):
        WhatsAppConfig.from_dict({"phone_number_id": "1", "access_token": "a", "app_secret": "b",
                                  "verify_token": "c", "colour": "red"})
    config = make_adapter().config
    assert config.redacted()["app_secret"] == "…cret"
    assert config.base_url == "https://graph.facebook.com"


# --- send -----------------------------------------------------------------------------------


def test_send_text(provider_server):
    provider_server.respond(200, json_body={
        "messaging_product": "whatsapp", "contacts": [{"input": "6281234567890", "wa_id": "6281234567890"}],
        "messages": [{"id": "wamid.SENT1"}]})

    result = make_adapter(provider_server.url).send(OutboundMessage(to="+6281234567890", text="Sudah dikirim"))

    assert result.provider_message_id == "wamid.SENT1"
    request = provider_server.last
    assert (request.method, request.path) == ("POST", "/v26.0/106540352242922/messages")
    assert request.headers["authorization"] == "Bearer EAAtoken"
    assert request.headers["content-type"] == "application/json"
    assert request.json() == {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "6281234567890",
                              "type": "text", "text": {"preview_url": False, "body": "Sudah dikirim"}}


def test_send_template_as_reply(provider_server):
    provider_server.respond(200, json_body={"messages": [{"id": "wamid.T1", "message_status": "accepted"}]})
    template = Template("order_update", "id", ({"type": "body", "parameters": [{"type": "text", "text": "42"}]},))

    make_adapter(provider_server.url, api_version="v25.0").send(
        OutboundMessage(to="6281234567890", template=template, reply_to_id="wamid.IN1"))

    assert provider_server.last.path == "/v25.0/106540352242922/messages"
    assert provider_server.last.json() == {
        "messaging_product": "whatsapp", "recipient_type": "individual", "to": "6281234567890",
        "context": {"message_id": "wamid.IN1"}, "type": "template",
        "template": {"name": "order_update", "language": {"code": "id"},
                     "components": [{"type": "body", "parameters": [{"type": "text", "text": "42"}]}]}}


def graph_error_body(code: int, message: str, details: str = "") -> dict:
    return {"error": {"message": message, "type": "OAuthException", "code": code,
                      "error_data": {"messaging_product": "whatsapp", "details": details},
                      "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam"}}


@pytest.mark.parametrize(
    ("status", "body", "permanent", "code", "message"),
    [
        (400, graph_error_body(131047, "(#131047) Re-engagement message",
                               "Message failed to send because more than 24 hours have passed"),
         True, 131047, "24-hour customer-service window is closed"),
        (400, graph_error_body(131026, "(#131026) Message Undeliverable"), True, 131026, "could not be delivered"),
        (401, graph_error_body(190, "Invalid OAuth access token"), True, 190, "access token"),
        (400, graph_error_body(100, "(#100) Invalid parameter"), True, 100, "Invalid parameter"),
        (400, graph_error_body(130429, "(#130429) Rate limit hit"), False, 130429, "Rate limit hit"),
        (400, graph_error_body(131056, "(#131056) Pair rate limit hit"), False, 131056, "Pair rate limit"),
        (400, graph_error_body(80007, "Rate limit issues"), False, 80007, "Rate limit"),
        (500, graph_error_body(2, "Service temporarily unavailable"), False, 2, "temporarily"),
        (503, None, False, None, "HTTP 503"),
        (429, None, False, None, "HTTP 429"),
        (404, None, True, None, "HTTP 404"),
    ],
)
def test_send_error_mapping(provider_server, status, body, permanent, code, message):
    if body is None:
        provider_server.respond(status, body=b"<html>error</html>", headers={"Content-Type": "text/html"})
    else:
        provider_server.respond(status, json_body=body)

    with pytest.raises(AdapterError, match=message) as info:
        make_adapter(provider_server.url).send(OutboundMessage(to="6281234567890", text="hi"))

    assert (info.value.permanent, info.value.code, info.value.status) == (permanent, code, status)


def test_send_to_unreachable_host_is_retryable():
    with pytest.raises(AdapterError) as info:
        make_adapter("http://127.0.0.1:9").send(OutboundMessage(to="6281234567890", text="hi"))
    assert info.value.permanent is False


def test_send_to_internal_address_is_permanent(settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = []
    with pytest.raises(AdapterError, match="not a public address") as info:
        make_adapter("http://169.254.169.254").send(OutboundMessage(to="6281234567890", text="hi"))
    assert info.value.permanent is True


@pytest.mark.parametrize("message", [OutboundMessage(to="", text="x"), OutboundMessage(to="628111")])
def test_send_refuses_incomplete_messages_without_network(provider_server, message):
    with pytest.raises(AdapterError) as info:
        make_adapter(provider_server.url).send(message)
    assert info.value.permanent is True
    assert provider_server.requests == []


def test_media_info(provider_server):
    provider_server.respond(200, json_body={"url": "https://lookaside.fbsbx.com/x", "mime_type": "image/jpeg",
                                            "sha256": "abc", "file_size": 303, "id": "65463453",
                                            "messaging_product": "whatsapp"})

    info = make_adapter(provider_server.url).media_info("65463453")

    assert info["url"] == "https://lookaside.fbsbx.com/x"
    assert (provider_server.last.method, provider_server.last.path) == ("GET", "/v26.0/65463453")
    assert provider_server.last.headers["authorization"] == "Bearer EAAtoken"


def test_system_level_webhook_error_is_kept():
    body = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [
        {"field": "messages", "value": {"messaging_product": "whatsapp", "metadata": {
            "display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
            "errors": [{"code": 130429, "title": "Rate limit hit", "message": "Rate limit hit",
                        "error_data": {"details": "Message failed to send because there were too many messages"}}]}}]}]})
    [event] = make_adapter().parse(body.encode())
    assert (event.kind, event.error_code, event.error_title, event.extra["webhook_error"]) == (
        "other", "130429", "Rate limit hit", True)


def test_system_message_is_not_a_customer_message():
    body = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages",
        "value": {"messaging_product": "whatsapp", "metadata": {"phone_number_id": "106540352242922"},
                  "messages": [{"from": "6281234567890", "id": "wamid.SYS", "timestamp": "1750000000", "type": "system",
                                "system": {"body": "User A changed from 6281234567890 to 6289999999999",
                                           "wa_id": "6289999999999", "type": "user_changed_number"}}]}}]}]})
    [event] = make_adapter().parse(body.encode())
    assert (event.kind, event.text, event.extra["system"]["wa_id"]) == (
        "other", "User A changed from 6281234567890 to 6289999999999", "6289999999999")


def test_fetch_media_looks_up_then_downloads_with_token(provider_server):
    provider_server.respond(200, json_body={"url": provider_server.url + "/lookaside/65463453?ext=1",
                                            "mime_type": "image/jpeg", "sha256": "abc", "file_size": 4, "id": "65463453"})
    provider_server.respond(200, body=b"\xff\xd8\xff\xe0", headers={"Content-Type": "application/octet-stream"})

    media = make_adapter(provider_server.url).fetch_media(Attachment(kind="image", media_id="65463453"))

    assert (media.content, media.mime_type) == (b"\xff\xd8\xff\xe0", "image/jpeg")
    assert [(r.path, r.headers["authorization"]) for r in provider_server.requests] == [
        ("/v26.0/65463453", "Bearer EAAtoken"), ("/lookaside/65463453?ext=1", "Bearer EAAtoken")]


def test_fetch_media_expired_id_is_permanent(provider_server):
    provider_server.respond(404, json_body={"error": {"message": "Unsupported get request", "code": 100}})
    with pytest.raises(AdapterError) as info:
        make_adapter(provider_server.url).fetch_media(Attachment(kind="image", media_id="gone"))
    assert info.value.permanent is True


@pytest.mark.parametrize(
    ("attachment", "text", "expected"),
    [
        (Attachment(kind="image", url="https://cx.example.com/m/1.jpg"), "Struk Anda",
         {"type": "image", "image": {"link": "https://cx.example.com/m/1.jpg", "caption": "Struk Anda"}}),
        (Attachment(kind="document", url="https://cx.example.com/m/inv.pdf", filename="invoice.pdf"), "",
         {"type": "document", "document": {"link": "https://cx.example.com/m/inv.pdf", "filename": "invoice.pdf"}}),
        (Attachment(kind="audio", url="https://cx.example.com/m/a.ogg"), "",
         {"type": "audio", "audio": {"link": "https://cx.example.com/m/a.ogg"}}),
    ],
)
def test_send_media_by_link(provider_server, attachment, text, expected):
    provider_server.respond(200, json_body={"messages": [{"id": "wamid.M"}]})

    make_adapter(provider_server.url).send(OutboundMessage(to="6281234567890", text=text, attachment=attachment))

    assert provider_server.last.json() == {"messaging_product": "whatsapp", "recipient_type": "individual",
                                           "to": "6281234567890", **expected}


@pytest.mark.parametrize("attachment", [Attachment(kind="audio", url="https://x/a.ogg"), Attachment(kind="image")])
def test_send_media_refused_before_network(provider_server, attachment):
    with pytest.raises(AdapterError) as info:
        make_adapter(provider_server.url).send(OutboundMessage(to="6281234567890", text="caption", attachment=attachment))
    assert info.value.permanent is True
    assert provider_server.requests == []
