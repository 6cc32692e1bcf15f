from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

import pytest

from channels_app.adapters.base import AdapterError, Attachment, Identity, OutboundMessage, ParseError, SignatureError
from channels_app.adapters.messenger import MessengerAdapter, MessengerConfig

SECRET = "messenger-app-secret"


def make_adapter(base_url: str = "") -> MessengerAdapter:
    return MessengerAdapter(MessengerConfig(page_id="104520000000001", page_access_token="PAGE-TOKEN",
                                            app_secret=SECRET, verify_token="vt", api_base_url=base_url))


def sign(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {"X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


SHARED = ["messenger_text_message.json", "messenger_postback.json", "messenger_delivery.json",
          "messenger_postback_with_title_referral.json"]


@pytest.mark.parametrize("name", SHARED)
def test_shared_payloads_verify_with_signature_over_exact_bytes(shared_fixture, name):
    body = shared_fixture(name)
    make_adapter().verify(body, sign(body))
    with pytest.raises(SignatureError):
        make_adapter().verify(body, sign(body, "wrong-secret"))
    with pytest.raises(SignatureError):
        make_adapter().verify(body.replace(b"1", b"2", 1), sign(body))


def test_parse_docs_text_message(shared_fixture):
    [event] = make_adapter().parse(shared_fixture("messenger_text_message.json"))

    assert (event.kind, event.provider_message_id, event.text) == (
        "message", "mid.1457764197618:41d102a3e1ae206a38", "hello, world!")
    assert event.identities == [Identity("messenger", "USER_ID", True)]
    assert event.timestamp == datetime.fromtimestamp(1457764197.627, tz=UTC)
    assert event.extra == {"recipient_id": "PAGE_ID", "seq": 73}


def test_parse_docs_postback(shared_fixture):
    [event] = make_adapter().parse(shared_fixture("messenger_postback.json"))

    assert (event.kind, event.payload, event.text) == ("postback", "USER_DEFINED_PAYLOAD", "")
    assert event.identities == [Identity("messenger", "USER_ID", True)]


def test_parse_postback_with_title_and_referral(shared_fixture):
    [event] = make_adapter().parse(shared_fixture("messenger_postback_with_title_referral.json"))

    assert (event.kind, event.payload, event.text) == ("postback", "postback payload", "postback title")
    assert event.extra["referral"] == {"ref": "postback ref", "source": "postback source", "type": "postback type"}
    assert event.identities == [Identity("messenger", "5678", True)]


def test_parse_delivery_receipt(shared_fixture):
    [event] = make_adapter().parse(shared_fixture("messenger_delivery.json"))

    assert (event.kind, event.status, event.provider_message_id) == (
        "status", "delivered", "mid.1458668856218:ed81099e15d3f4f233")
    assert event.extra["mids"] == ["mid.1458668856218:ed81099e15d3f4f233"]
    assert event.extra["watermark"] == datetime.fromtimestamp(1458668856.253, tz=UTC)


def test_parse_own_batch(own_fixture):
    text, quick_reply, read, reaction, echo = make_adapter().parse(
        own_fixture("messenger/batch_message_read_reaction.json"))

    assert (text.kind, text.text, text.reply_to_id) == ("message", "Apakah toko buka hari Minggu?", "m_OUTBOUND_1")
    assert text.identities == [Identity("messenger", "7012345678901234", True)]
    assert (quick_reply.kind, quick_reply.payload, quick_reply.text) == ("postback", "CONFIRM_YES", "Ya")
    assert (read.kind, read.status, read.provider_message_id) == ("status", "read", "")
    assert read.extra["watermark"] == datetime.fromtimestamp(1750000101.5, tz=UTC)
    assert (reaction.kind, reaction.emoji, reaction.reply_to_id) == ("reaction", "\u2764\ufe0f", "m_OUTBOUND_1")
    assert (echo.kind, echo.extra["echo"], echo.identities) == ("other", True, [])


def test_parse_attachment_and_location():
    body = (b'{"object":"page","entry":[{"id":"1","messaging":[{"sender":{"id":"9"},"recipient":{"id":"1"},'
            b'"timestamp":1,"message":{"mid":"m1","attachments":[{"type":"image","payload":{"url":"https://x/y.png"}},'
            b'{"type":"location","payload":{"coordinates":{"lat":-6.2,"long":106.8}}}]}}]}]}')
    [event] = make_adapter().parse(body)

    assert event.attachments == [Attachment(kind="image", url="https://x/y.png")]
    assert (event.location.latitude, event.location.longitude) == (-6.2, 106.8)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{", "not valid JSON"),
        (b'{"object":"instagram","entry":[]}', "object must be 'page'"),
        (b'{"object":"page","entry":[{"messaging":[{"recipient":{"id":"1"}}]}]}', "sender must be a JSON object"),
        (b'{"object":"page","entry":[{"messaging":[{"sender":{}}]}]}', "sender.id is missing"),
        (b'{"object":"page","entry":"x"}', "entry must be a JSON array"),
        (b'{"object":"page","entry":[{"messaging":[{"sender":{"id":"1"},"message":{"text":"x"}}]}]}',
         "message.mid is missing"),
    ],
)
def test_malformed(body, reason):
    with pytest.raises(ParseError, match=reason):
        make_adapter().parse(body)


def test_send_text(provider_server):
    provider_server.respond(200, json_body={"recipient_id": "7012345678901234", "message_id": "m_SENT"})

    result = make_adapter(provider_server.url).send(OutboundMessage(to="7012345678901234", text="Buka jam 10"))

    assert result.provider_message_id == "m_SENT"
    assert (provider_server.last.method, provider_server.last.path) == ("POST", "/v26.0/me/messages")
    assert provider_server.last.headers["authorization"] == "Bearer PAGE-TOKEN"
    assert provider_server.last.json() == {"recipient": {"id": "7012345678901234"}, "messaging_type": "RESPONSE",
                                           "message": {"text": "Buka jam 10"}}


@pytest.mark.parametrize(
    ("status", "error", "permanent", "message"),
    [
        (400, {"message": "(#10) This message is sent outside of allowed window.", "type": "OAuthException",
               "code": 10, "error_subcode": 2018278}, True, "outside of the allowed 24-hour window"),
        (400, {"message": "(#551) This person isn't available right now.", "code": 551, "error_subcode": 1545041},
         True, "not available"),
        (400, {"message": "(#613) Calls to this api have exceeded the rate limit.", "code": 613}, False, "rate limit"),
        (500, {"message": "(#1200) Temporary send message failure. Please try again later", "code": 1200},
         False, "Temporary send message failure"),
        (400, {"message": "(#100) No matching user found", "code": 100, "error_subcode": 2018001},
         True, "No matching user found"),
    ],
)
def test_send_errors(provider_server, status, error, permanent, message):
    provider_server.respond(status, json_body={"error": {**error, "fbtrace_id": "A1"}})
    with pytest.raises(AdapterError, match=message) as info:
        make_adapter(provider_server.url).send(OutboundMessage(to="1", text="x"))
    assert info.value.permanent is permanent
    assert info.value.code == error["code"]


def test_send_without_message_id_is_retryable(provider_server):
    provider_server.respond(200, json_body={"recipient_id": "1"})
    with pytest.raises(AdapterError, match="no message_id") as info:
        make_adapter(provider_server.url).send(OutboundMessage(to="1", text="x"))
    assert info.value.permanent is False


def test_handshake():
    assert make_adapter().handshake({"hub.mode": "subscribe", "hub.verify_token": "vt", "hub.challenge": "c1"}) == "c1"
    with pytest.raises(SignatureError):
        make_adapter().handshake({"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "c1"})


def test_delivery_with_several_mids_gives_one_status_each():
    body = (b'{"object":"page","entry":[{"id":"1","time":1,"messaging":[{"sender":{"id":"9"},"recipient":{"id":"1"},'
            b'"delivery":{"mids":["m_a","m_b"],"watermark":1750000000000}}]}]}')
    events = make_adapter().parse(body)
    assert [(e.kind, e.status, e.provider_message_id) for e in events] == [
        ("status", "delivered", "m_a"), ("status", "delivered", "m_b")]


def test_delivery_without_mids_is_a_watermark_receipt():
    body = (b'{"object":"page","entry":[{"id":"1","messaging":[{"sender":{"id":"9"},"recipient":{"id":"1"},'
            b'"delivery":{"watermark":1750000000000}}]}]}')
    [event] = make_adapter().parse(body)
    assert (event.provider_message_id, event.extra["mids"]) == ("", [])
    assert event.timestamp == datetime.fromtimestamp(1750000000, tz=UTC)


@pytest.mark.parametrize(("kind", "expected_type"), [("image", "image"), ("document", "file"), ("video", "video")])
def test_send_attachment(provider_server, kind, expected_type):
    provider_server.respond(200, json_body={"recipient_id": "1", "message_id": "m_ATT"})

    make_adapter(provider_server.url).send(OutboundMessage(
        to="7012345678901234", attachment=Attachment(kind=kind, url="https://cx.example.com/m/x")))

    assert provider_server.last.json() == {
        "recipient": {"id": "7012345678901234"}, "messaging_type": "RESPONSE",
        "message": {"attachment": {"type": expected_type,
                                   "payload": {"url": "https://cx.example.com/m/x", "is_reusable": False}}}}


def test_send_attachment_with_text_is_refused(provider_server):
    with pytest.raises(AdapterError, match="as its own message"):
        make_adapter(provider_server.url).send(OutboundMessage(
            to="1", text="hi", attachment=Attachment(kind="image", url="https://cx.example.com/m/x")))
    assert provider_server.requests == []
