from __future__ import annotations

import hashlib
import hmac

import pytest

from channels_app.adapters.base import (
    AdapterError,
    Attachment,
    ConfigError,
    Identity,
    OutboundMessage,
    ParseError,
    SignatureError,
)
from channels_app.adapters.instagram import InstagramAdapter, InstagramConfig

SECRET = "ig-app-secret"


def make_adapter(base_url: str = "", **overrides) -> InstagramAdapter:
    values = dict(instagram_account_id="17841400000000001", access_token="IGAA-token", app_secret=SECRET,
                  verify_token="vt", api_base_url=base_url)
    values.update(overrides)
    return InstagramAdapter(InstagramConfig(**values))


def sign(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {"X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


@pytest.mark.parametrize("name", ["instagram_text_message.json", "instagram_image_attachment.json"])
def test_shared_payloads_verify(shared_fixture, name):
    body = shared_fixture(name)
    make_adapter().verify(body, sign(body))
    with pytest.raises(SignatureError):
        make_adapter().verify(body, sign(body, "other"))


def test_parse_text_dm(shared_fixture):
    [event] = make_adapter().parse(shared_fixture("instagram_text_message.json"))

    assert (event.kind, event.provider_message_id, event.text) == ("message", "external_id", "Hello World")
    assert event.identities == [Identity("instagram", "5678", True)]
    assert event.extra["recipient_id"] == "1234567890"


def test_parse_image_dm(shared_fixture):
    [event] = make_adapter().parse(shared_fixture("instagram_image_attachment.json"))

    assert event.attachments == [Attachment(kind="image", url="https://image-url/foo.png")]
    assert event.text == ""


def test_parse_reply_and_unreact(own_fixture):
    message, unreact = make_adapter().parse(own_fixture("instagram/dm_with_reply_and_unreact.json"))

    assert (message.text, message.reply_to_id) == ("Ukuran M masih ada?", "aWdfOUTBOUND")
    assert (unreact.kind, unreact.emoji, unreact.reply_to_id, unreact.extra["action"]) == (
        "reaction", "", "aWdfOUTBOUND", "unreact")


def test_messenger_payload_is_not_instagram(shared_fixture):
    with pytest.raises(ParseError, match="object must be 'instagram'"):
        make_adapter().parse(shared_fixture("messenger_text_message.json"))


def test_send_text(provider_server):
    provider_server.respond(200, json_body={"recipient_id": "5678", "message_id": "aWdfSENT"})

    result = make_adapter(provider_server.url).send(OutboundMessage(to="5678", text="Masih, kak"))

    assert result.provider_message_id == "aWdfSENT"
    assert provider_server.last.path == "/v26.0/17841400000000001/messages"
    assert provider_server.last.headers["authorization"] == "Bearer IGAA-token"
    assert provider_server.last.json() == {"recipient": {"id": "5678"}, "messaging_type": "RESPONSE",
                                           "message": {"text": "Masih, kak"}}


def test_send_error_is_mapped(provider_server):
    provider_server.respond(400, json_body={"error": {"message": "(#10) outside window", "code": 10,
                                                      "error_subcode": 2534022}})
    with pytest.raises(AdapterError, match="24-hour window") as info:
        make_adapter(provider_server.url).send(OutboundMessage(to="5678", text="x"))
    assert info.value.permanent is True


def test_default_base_url_and_validation():
    assert make_adapter().config.base_url == "https://graph.instagram.com"
    with pytest.raises(ConfigError, match="numeric"):
        make_adapter(instagram_account_id="me")


def test_deleted_message_is_an_unsend():
    body = (b'{"object":"instagram","entry":[{"id":"17841400000000001","time":1,"messaging":[{"sender":{"id":"5678"},'
            b'"recipient":{"id":"17841400000000001"},"timestamp":1750000300000,"message":{"mid":"aWdfGONE","is_deleted":true}}]}]}')
    [event] = make_adapter().parse(body)
    assert (event.kind, event.reply_to_id, event.provider_message_id) == ("unsend", "aWdfGONE", "")
