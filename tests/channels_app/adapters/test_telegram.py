from __future__ import annotations

from datetime import UTC, datetime

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
)
from channels_app.adapters.telegram import TelegramAdapter, TelegramConfig

BOT_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


def make_adapter(base_url: str = "", **overrides) -> TelegramAdapter:
    values = dict(bot_token=BOT_TOKEN, secret_token="s3cr3t_Token-1", api_base_url=base_url)
    values.update(overrides)
    return TelegramAdapter(TelegramConfig(**values))


def test_verify_secret_token_header():
    make_adapter().verify(b"{}", {"X-Telegram-Bot-Api-Secret-Token": "s3cr3t_Token-1"})
    make_adapter().verify(b"{}", {"x-telegram-bot-api-secret-token": "s3cr3t_Token-1"})


@pytest.mark.parametrize(
    ("headers", "reason"),
    [({}, "missing"), ({"X-Telegram-Bot-Api-Secret-Token": "s3cr3t_Token-2"}, "does not match"),
     ({"X-Telegram-Bot-Api-Secret-Token": "s3cr3t_Token-1 "}, "does not match")],
)
def test_verify_rejects(headers, reason):
    with pytest.raises(SignatureError, match=reason):
        make_adapter().verify(b"{}", headers)


def test_parse_text_private(shared_fixture):
    [event] = make_adapter().parse(shared_fixture("telegram_message_text_private.json"))

    assert (event.kind, event.provider_message_id, event.text, event.event_id) == (
        "message", "1111111:1365", "/start", "10000")
    assert event.identities == [Identity("telegram", "1111111", True)]
    assert event.display_name == "Test Firstname Test Lastname"
    assert event.extra == {"username": "Testusername", "chat_id": "1111111", "chat_type": "private"}
    assert event.timestamp == datetime.fromtimestamp(1441645532, tz=UTC)


def test_parse_edited_message_keeps_original_id(shared_fixture):
    [event] = make_adapter().parse(shared_fixture("telegram_edited_message.json"))

    assert (event.kind, event.provider_message_id, event.text) == ("edit", "1111111:1365", "Edited text")
    assert event.timestamp == datetime.fromtimestamp(1441646600, tz=UTC)


def test_parse_reply(shared_fixture):
    [event] = make_adapter().parse(shared_fixture("telegram_message_reply.json"))

    assert (event.text, event.reply_to_id) == ("/start", "1111112:1334")


def test_parse_document(shared_fixture):
    [event] = make_adapter().parse(shared_fixture("telegram_message_document.json"))

    assert event.attachments == [Attachment(kind="document", media_id="AwADBAADbXXXXXXXXXXXGBdhD2l6_XX",
                                            mime_type="application/pdf", filename="Testfile.pdf", size=536392)]


def test_parse_photo_picks_largest_size(shared_fixture):
    [event] = make_adapter().parse(shared_fixture("telegram_message_photo.json"))

    assert event.attachments == [Attachment(kind="image", media_id="AgADAQADtKcxG4LRUUQSQVUjfJIiiF8G6C8ABA9NJzFdXskaincBAAEC",
                                            size=104737, mime_type="image/jpeg")]
    assert event.text == "Photo Caption"
    assert (event.provider_message_id, event.event_id) == ("3527065:85", "900946525")


def test_parse_callback_query(shared_fixture):
    [event] = make_adapter().parse(shared_fixture("telegram_callback_query.json"))

    assert (event.kind, event.provider_message_id, event.payload) == (
        "postback", "callback:4382bfdwdsb323b2d9", "Data from button callback")
    assert event.identities == [Identity("telegram", "1111111", True)]
    assert event.extra["inline_message_id"] == "1234csdbsk4839"
    assert event.reply_to_id == ""


def test_parse_own_fixtures(own_fixture):
    adapter = make_adapter()
    [location] = adapter.parse(own_fixture("telegram/location_update.json"))
    [voice] = adapter.parse(own_fixture("telegram/voice_in_group.json"))
    [contact] = adapter.parse(own_fixture("telegram/contact_update.json"))
    [other] = adapter.parse(own_fixture("telegram/my_chat_member_update.json"))

    assert location.location == Location(-6.914744, 107.60981, "Gedung Sate", "Jl. Diponegoro No.22, Bandung")
    assert voice.attachments == [Attachment(kind="audio", media_id="AwACAgQAAxkBAAIBQmZ", mime_type="audio/ogg", size=9876)]
    assert (voice.provider_message_id, voice.extra["chat_type"]) == ("-1001234567890:7", "supergroup")
    assert voice.identities == [Identity("telegram", "5566778899", True)]
    assert contact.contacts == [ContactCard("Rina Putri", ("+6281234567890",))]
    assert (other.kind, other.extra["update_type"], other.event_id) == ("other", "my_chat_member", "733100004")


@pytest.mark.parametrize(
    ("body", "reason"),
    [(b"nope", "not valid JSON"), (b"{}", "update_id must be an integer"),
     (b'{"update_id":1,"message":{"message_id":1}}', "message.chat must be a JSON object"),
     (b'{"update_id":1,"message":{"chat":{"id":1}}}', "needs chat.id and message_id"),
     (b'{"update_id":1,"callback_query":{"id":"1"}}', "from must be a JSON object")],
)
def test_malformed(body, reason):
    with pytest.raises(ParseError, match=reason):
        make_adapter().parse(body)


def test_send_message(provider_server):
    provider_server.respond(200, json_body={"ok": True, "result": {"message_id": 1366, "chat": {"id": 1111111},
                                                                     "date": 1441645600, "text": "Halo"}})

    result = make_adapter(provider_server.url).send(OutboundMessage(to="1111111", text="Halo", reply_to_id="1111111:1365"))

    assert result.provider_message_id == "1111111:1366"
    assert (provider_server.last.method, provider_server.last.path) == ("POST", f"/bot{BOT_TOKEN}/sendMessage")
    assert provider_server.last.json() == {"chat_id": "1111111", "text": "Halo",
                                           "reply_parameters": {"message_id": 1365, "allow_sending_without_reply": True}}


@pytest.mark.parametrize(
    ("status", "body", "permanent", "retry_after", "message"),
    [
        (403, {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"}, True, None,
         "blocked"),
        (400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}, True, None,
         "chat not found"),
        (429, {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 7",
               "parameters": {"retry_after": 7}}, False, 7.0, "Too Many Requests"),
        (502, None, False, None, "Telegram HTTP 502"),
    ],
)
def test_send_errors(provider_server, status, body, permanent, retry_after, message):
    if body is None:
        provider_server.respond(status, body=b"Bad Gateway", headers={})
    else:
        provider_server.respond(status, json_body=body)
    with pytest.raises(AdapterError, match=message) as info:
        make_adapter(provider_server.url).send(OutboundMessage(to="1", text="x"))
    assert (info.value.permanent, info.value.retry_after) == (permanent, retry_after)


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [({"bot_token": "nope"}, "bot_token"), ({"secret_token": "has space"}, "secret_token"),
     ({"secret_token": "x" * 257}, "secret_token")],
)
def test_config_validation(overrides, reason):
    with pytest.raises(ConfigError, match=reason):
        make_adapter(**overrides)


def test_parse_reaction_and_its_removal(own_fixture):
    [reaction] = make_adapter().parse(own_fixture("telegram/message_reaction_update.json"))

    assert (reaction.kind, reaction.emoji, reaction.reply_to_id, reaction.event_id) == (
        "reaction", "\U0001F44D", "5566778899:44", "733100005")
    assert reaction.identities == [Identity("telegram", "5566778899", True)]

    removed = own_fixture("telegram/message_reaction_update.json").replace(
        b'[{"type": "emoji", "emoji": "\\ud83d\\udc4d"}]', b"[]")
    [event] = make_adapter().parse(removed)
    assert (event.kind, event.emoji) == ("reaction", "")


def test_fetch_media_via_get_file(provider_server):
    provider_server.respond(200, json_body={"ok": True, "result": {"file_id": "AgAD", "file_unique_id": "u",
                                                                     "file_size": 3, "file_path": "photos/file_7.jpg"}})
    provider_server.respond(200, body=b"JPG", headers={"Content-Type": "image/jpeg"})

    media = make_adapter(provider_server.url).fetch_media(Attachment(kind="image", media_id="AgAD/x+y"))

    assert (media.content, media.mime_type) == (b"JPG", "image/jpeg")
    assert [r.path for r in provider_server.requests] == [
        f"/bot{BOT_TOKEN}/getFile?file_id=AgAD%2Fx%2By", f"/file/bot{BOT_TOKEN}/photos/file_7.jpg"]


def test_fetch_media_too_big_for_bot_api(provider_server):
    provider_server.respond(400, json_body={"ok": False, "error_code": 400, "description": "Bad Request: file is too big"})
    with pytest.raises(AdapterError, match="file is too big") as info:
        make_adapter(provider_server.url).fetch_media(Attachment(kind="document", media_id="big"))
    assert info.value.permanent is True


@pytest.mark.parametrize(
    ("kind", "method", "field"),
    [("image", "sendPhoto", "photo"), ("document", "sendDocument", "document"), ("video", "sendVideo", "video"),
     ("audio", "sendAudio", "audio")],
)
def test_send_media_with_caption(provider_server, kind, method, field):
    provider_server.respond(200, json_body={"ok": True, "result": {"message_id": 9, "chat": {"id": 1111111}}})

    result = make_adapter(provider_server.url).send(OutboundMessage(
        to="1111111", text="Struk", attachment=Attachment(kind=kind, url="https://cx.example.com/m/x")))

    assert result.provider_message_id == "1111111:9"
    assert provider_server.last.path == f"/bot{BOT_TOKEN}/{method}"
    assert provider_server.last.json() == {"chat_id": "1111111", field: "https://cx.example.com/m/x", "caption": "Struk"}
