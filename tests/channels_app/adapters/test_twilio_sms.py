from __future__ import annotations

import base64
import hashlib
import hmac
import json
from urllib.parse import parse_qsl

import pytest

from channels_app.adapters.base import (
    AdapterError,
    Attachment,
    ConfigError,
    Identity,
    Location,
    OutboundMessage,
    ParseError,
    SignatureError,
)
from channels_app.adapters.twilio_sms import TwilioAdapter, TwilioConfig, compute_signature, verify_request

SID = "AC00000000000000000000000000000001"
TOKEN = "twilio-auth-token"
WEBHOOK_URL = "https://cx.example.com/webhooks/twilio_sms/6f0c1a52-1f0e-4a39-9a8e-3f1d8c0b7e11/"


def make_adapter(base_url: str = "", **overrides) -> TwilioAdapter:
    values = dict(account_sid=SID, auth_token=TOKEN, from_number="+15017122661", api_base_url=base_url)
    values.update(overrides)
    return TwilioAdapter(TwilioConfig(**values))


def independent_signature(url: str, body: bytes, token: str = TOKEN) -> str:
    """Twilio's documented recipe, written out separately from the adapter."""
    data = url + "".join(k + v for k, v in sorted(parse_qsl(body.decode(), keep_blank_values=True)))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


# --- signature vectors from the official SDK ------------------------------------------------


def load_vectors(shared_fixture):
    data = json.loads(shared_fixture("twilio_signature_vectors.json"))
    form = data["vectors"][0]["params"]
    return data["auth_token"], form, {v["name"]: v for v in data["vectors"]}


def test_sdk_vector_form_params(shared_fixture):
    token, form, vectors = load_vectors(shared_fixture)
    vector = vectors["form_params"]
    assert compute_signature(vector["url"], form, token) == vector["expected_signature"] == "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def test_sdk_vector_duplicate_keys(shared_fixture):
    token, _form, vectors = load_vectors(shared_fixture)
    vector = vectors["duplicate_keys_sorted_and_deduplicated"]
    pairs = [tuple(p) for p in vector["params_multi"]]
    assert compute_signature(vector["url"], pairs, token) == vector["expected_signature"]
    body = "&".join(f"{k}={v}" for k, v in pairs).encode()
    verify_request(vector["url"], body, {"X-Twilio-Signature": vector["expected_signature"]}, token)


@pytest.mark.parametrize(
    "name",
    ["form_params", "https_url_with_port_1234_validates_against_form_params_signature",
     "https_url_signed_with_port_443_added", "http_url_signed_with_port_80_added", "http_url_with_port_1234"],
)
def test_sdk_port_vectors_verify(shared_fixture, name):
    token, form, vectors = load_vectors(shared_fixture)
    vector = vectors[name]
    body = "&".join(f"{k}={v}" for k, v in form.items()).replace("+", "%2B").encode()
    verify_request(vector["url"], body, {"X-Twilio-Signature": vector["expected_signature"]}, token)


def test_sdk_json_body_vector(shared_fixture):
    token, _form, vectors = load_vectors(shared_fixture)
    vector = vectors["json_body_with_bodySHA256"]
    body = vector["body"].encode()
    assert hashlib.sha256(body).hexdigest() == vector["body_sha256_hex"]
    verify_request(vector["url"], body, {"X-Twilio-Signature": vector["expected_signature"]}, token)
    with pytest.raises(SignatureError, match="bodySHA256"):
        verify_request(vector["url"], body + b" ", {"X-Twilio-Signature": vector["expected_signature"]}, token)


# --- shared payloads: verify with a signature computed over their exact bytes ----------------

SHARED = ["twilio_sms_inbound.txt", "twilio_sms_status_sent.txt", "twilio_sms_status_failed.txt",
          "twilio_whatsapp_inbound_text.txt", "twilio_whatsapp_inbound_image.txt",
          "twilio_whatsapp_inbound_location.txt", "twilio_whatsapp_status_sent.txt",
          "twilio_whatsapp_status_delivered.txt"]


@pytest.mark.parametrize("name", SHARED)
def test_shared_payloads_verify_and_wrong_url_or_token_fails(shared_fixture, name):
    body = shared_fixture(name)
    assert not body.endswith(b"\n")
    signature = independent_signature(WEBHOOK_URL, body)
    adapter = make_adapter()
    adapter.verify(body, {"X-Twilio-Signature": signature}, url=WEBHOOK_URL)
    with pytest.raises(SignatureError):
        adapter.verify(body, {"X-Twilio-Signature": signature}, url=WEBHOOK_URL.replace("cx.", "evil."))
    with pytest.raises(SignatureError):
        adapter.verify(body, {"X-Twilio-Signature": independent_signature(WEBHOOK_URL, body, "other")}, url=WEBHOOK_URL)
    with pytest.raises(SignatureError, match="missing"):
        adapter.verify(body, {}, url=WEBHOOK_URL)


def test_verify_requires_the_url():
    with pytest.raises(ValueError, match="public URL"):
        make_adapter().verify(b"", {"X-Twilio-Signature": "x"})


def test_parse_real_sms(shared_fixture):
    [event] = make_adapter().parse(shared_fixture("twilio_sms_inbound.txt"))

    assert (event.kind, event.provider_message_id, event.text) == (
        "message", "SM1521fa559fb923c1ed64f56cd1bed8ef", "twilio-go testing!")
    assert event.identities == [Identity("phone", "+19253920364", True)]
    assert event.extra["channel"] == "sms"
    assert event.attachments == []


def test_parse_whatsapp_text(shared_fixture):
    [event] = make_adapter().parse(shared_fixture("twilio_whatsapp_inbound_text.txt"))

    assert (event.text, event.extra["channel"]) == ("test", "whatsapp")
    assert event.identities == [Identity("phone", "+31612345678", True)]


def test_parse_whatsapp_image(shared_fixture):
    [event] = make_adapter().parse(shared_fixture("twilio_whatsapp_inbound_image.txt"))

    assert event.text == ""
    assert event.attachments == [Attachment(
        kind="image", media_id="ME5f0afa2336bd0f73ca553fb5a2e3150bc", mime_type="image/jpeg",
        url="https://api.twilio.com/2010-04-01/Accounts/AC1a03647d811fab342c0ad608e382fab2/Messages/"
            "MM21151abfaadc1fb79b782f8460862a52/Media/ME5f0afa2336bd0f73ca553fb5a2e3150bc")]


def test_parse_whatsapp_location(shared_fixture):
    [event] = make_adapter().parse(shared_fixture("twilio_whatsapp_inbound_location.txt"))

    assert event.location == Location(52.303897857666016, 4.750025749206543, "Microsoft",
                                      "Evert van de Beekstraat 354, Schiphol, North Holland 1118 CZ")


@pytest.mark.parametrize(
    ("name", "sid", "status", "provider_status", "phone", "code", "title"),
    [
        ("twilio_sms_status_sent.txt", "SM0b6e2697aae04182a9f5b5c7a8994c7f", "sent", "sent", "2021", "", ""),
        ("twilio_sms_status_failed.txt", "SMe287d7109a5a925f182f0e07fe5b223b", "failed", "failed", "+12028831111",
         "21610", "Attempt to send to unsubscribed recipient"),
        ("twilio_whatsapp_status_sent.txt", "SM0cec4ed334e74bcbb64eb8b6684e9654", "sent", "sent", "+31612345678", "", ""),
        ("twilio_whatsapp_status_delivered.txt", "SMdf55df64a2ff4920bb0748193cfbb640", "delivered", "delivered",
         "+31612345678", "", ""),
    ],
)
def test_parse_status_callbacks(shared_fixture, name, sid, status, provider_status, phone, code, title):
    [event] = make_adapter().parse(shared_fixture(name))

    assert (event.kind, event.provider_message_id, event.status) == ("status", sid, status)
    assert event.extra["provider_status"] == provider_status
    assert event.identities == [Identity("phone", phone, True)]
    assert (event.error_code, event.error_title) == (code, title)


def test_parse_own_whatsapp_media_and_reply(own_fixture):
    body = own_fixture("twilio/whatsapp_inbound_two_media_reply.txt")
    make_adapter().verify(body, {"X-Twilio-Signature": independent_signature(WEBHOOK_URL, body)}, url=WEBHOOK_URL)
    [event] = make_adapter().parse(body)

    assert (event.text, event.display_name, event.reply_to_id) == (
        "Foto struk", "Sari W", "SM22222222222222222222222222222222")
    assert [(a.kind, a.mime_type, a.media_id) for a in event.attachments] == [
        ("image", "image/jpeg", "ME00000000000000000000000000000001"),
        ("document", "application/pdf", "ME00000000000000000000000000000002")]
    assert event.extra["wa_id"] == "6281234567890"


def test_parse_own_button_and_undelivered(own_fixture):
    [button] = make_adapter().parse(own_fixture("twilio/whatsapp_inbound_button.txt"))
    [undelivered] = make_adapter().parse(own_fixture("twilio/sms_status_undelivered.txt"))

    assert (button.kind, button.payload, button.text) == ("postback", "CONFIRM_ORDER_42", "Ya, konfirmasi")
    assert (undelivered.status, undelivered.error_code, undelivered.error_title) == ("failed", "30008", "Unknown error")


@pytest.mark.parametrize(
    ("body", "reason"),
    [(b"Body=hi", "MessageSid is missing"), (b"MessageSid=SM1&To=%2B1", "unknown Twilio callback"),
     (b"MessageSid=SM1&SmsStatus=received&Body=x", "From is missing"),
     (b"MessageSid=SM1&From=%2B1&Body=x&NumMedia=two", "NumMedia must be an integer"),
     (b"\xff=1", "not UTF-8"), (b"a=1&&&=b;c", "x-www-form-urlencoded")],
)
def test_malformed(body, reason):
    with pytest.raises(ParseError, match=reason):
        make_adapter().parse(body)


# --- send -----------------------------------------------------------------------------------


def test_send_sms(provider_server):
    provider_server.respond(201, json_body={"sid": "SM55555555555555555555555555555555", "status": "queued"})

    result = make_adapter(provider_server.url).send(OutboundMessage(to="+6281234567890", text="Pesanan dikirim & siap"))

    assert (result.provider_message_id, result.status) == ("SM55555555555555555555555555555555", "queued")
    request = provider_server.last
    assert (request.method, request.path) == ("POST", f"/2010-04-01/Accounts/{SID}/Messages.json")
    assert request.headers["authorization"] == "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qsl(request.body.decode()) == [
        ("To", "+6281234567890"), ("From", "+15017122661"), ("Body", "Pesanan dikirim & siap")]


def test_send_whatsapp_via_messaging_service(provider_server):
    provider_server.respond(201, json_body={"sid": "SM6", "status": "accepted"})
    adapter = make_adapter(provider_server.url, from_number="whatsapp:MG00000000000000000000000000000001")

    adapter.send(OutboundMessage(to="+6281234567890", text="Halo"))

    assert parse_qsl(provider_server.last.body.decode()) == [
        ("To", "whatsapp:+6281234567890"), ("MessagingServiceSid", "MG00000000000000000000000000000001"),
        ("Body", "Halo")]


@pytest.mark.parametrize(
    ("status", "body", "permanent", "code", "message"),
    [
        (400, {"code": 21211, "message": "The 'To' number 123 is not a valid phone number.", "status": 400}, True,
         21211, "not a valid phone number"),
        (400, {"code": 21610, "message": "Attempt to send to unsubscribed recipient", "status": 400}, True, 21610,
         "unsubscribed"),
        (401, {"code": 20003, "message": "Authenticate", "status": 401}, True, 20003, "Authenticate"),
        (429, {"code": 20429, "message": "Too Many Requests", "status": 429}, False, 20429, "Too Many Requests"),
        (503, None, False, None, "Twilio HTTP 503"),
    ],
)
def test_send_errors(provider_server, status, body, permanent, code, message):
    if body is None:
        provider_server.respond(status, body=b"", headers={})
    else:
        provider_server.respond(status, json_body=body)
    with pytest.raises(AdapterError, match=message) as info:
        make_adapter(provider_server.url).send(OutboundMessage(to="+6281234567890", text="x"))
    assert (info.value.permanent, info.value.code) == (permanent, code)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [({"account_sid": "AC123"}, "account_sid"), ({"from_number": "0812"}, "from_number"),
     ({"auth_token": " "}, "auth_token is required")],
)
def test_config_validation(overrides, reason):
    with pytest.raises(ConfigError, match=reason):
        make_adapter(**overrides)


def test_fetch_media_with_basic_auth_and_cdn_redirect_without_credentials(provider_server):
    from tests.channels_app.conftest import ProviderServer

    cdn = ProviderServer()
    cdn.thread.start()
    try:
        provider_server.respond(307, body=b"", headers={"Location": cdn.url + "/media/abc.jpg"})
        cdn.respond(200, body=b"\xff\xd8", headers={"Content-Type": "image/jpeg"})
        url = provider_server.url + f"/2010-04-01/Accounts/{SID}/Messages/MM1/Media/ME1"

        media = make_adapter().fetch_media(Attachment(kind="image", url=url, media_id="ME1"))

        assert (media.content, media.mime_type) == (b"\xff\xd8", "image/jpeg")
        assert provider_server.last.headers["authorization"].startswith("Basic ")
        assert "authorization" not in cdn.last.headers
    finally:
        cdn.httpd.shutdown()
        cdn.httpd.server_close()


@pytest.mark.parametrize(("status", "permanent"), [(404, True), (503, False)])
def test_fetch_media_errors(provider_server, status, permanent):
    provider_server.respond(status, body=b"", headers={})
    with pytest.raises(AdapterError, match=f"HTTP {status}") as info:
        make_adapter().fetch_media(Attachment(kind="image", url=provider_server.url + "/m"))
    assert info.value.permanent is permanent


def test_send_media_url(provider_server):
    provider_server.respond(201, json_body={"sid": "MM7", "status": "queued"})

    make_adapter(provider_server.url, from_number="whatsapp:+14155238886").send(OutboundMessage(
        to="+6281234567890", text="Struk", attachment=Attachment(kind="image", url="https://cx.example.com/m/1.jpg")))

    assert parse_qsl(provider_server.last.body.decode()) == [
        ("To", "whatsapp:+6281234567890"), ("From", "whatsapp:+14155238886"), ("Body", "Struk"),
        ("MediaUrl", "https://cx.example.com/m/1.jpg")]
