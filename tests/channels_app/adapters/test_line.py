from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from channels_app.adapters.base import (
    AdapterError,
    Attachment,
    Identity,
    Location,
    OutboundMessage,
    ParseError,
    SignatureError,
)
from channels_app.adapters.line import LineAdapter, LineConfig, compute_signature, retry_key_for


def make_adapter(base_url: str = "", secret: str = "test_channel_secret") -> LineAdapter:
    return LineAdapter(LineConfig(channel_access_token="LINE-TOKEN", channel_secret=secret, api_base_url=base_url))


def test_sdk_signature_vectors(shared_fixture):
    vectors = json.loads(shared_fixture("line_signature_vectors.json"))["vectors"]
    assert len(vectors) == 4
    for vector in vectors:
        body = shared_fixture(vector["body_file"]) if "body_file" in vector else vector["body"].encode()
        assert compute_signature(body, vector["channel_secret"]) == vector["expected_signature"]
        make_adapter(secret=vector["channel_secret"]).verify(body, {"X-Line-Signature": vector["expected_signature"]})


def test_signed_delivery_verifies_and_parses(shared_fixture):
    body = shared_fixture("line_message_text_signed.json")
    adapter = make_adapter()
    adapter.verify(body, {"x-line-signature": "GzU7H3qOXDzDD6cNcS/9otLzlLFxnYYriz62rNu5BDE="})

    [event] = adapter.parse(body)

    assert (event.kind, event.provider_message_id, event.text) == (
        "message", "test_event_message_id", "this is test message.😄😅😢😞😄😅😢😞")
    assert event.identities == []  # group source without userId
    assert event.extra["groupId"] == "test_group_id"
    assert event.extra["reply_token"] == "test_reply_token"


@pytest.mark.parametrize(
    "headers",
    [{"X-Line-Signature": "WqJD7WAIZhWcXThMCf8jZnwG3Hmn7EF36plkQGkj48w="}, {}, {"X-Line-Signature": ""}],
)
def test_wrong_or_missing_signature(shared_fixture, headers):
    with pytest.raises(SignatureError):
        make_adapter().verify(shared_fixture("line_message_text_signed.json"), headers)


def test_valid_signature_but_not_json_is_a_parse_error(shared_fixture):
    body = b"i am not jason"
    make_adapter().verify(body, {"X-Line-Signature": "Z8YlPpm0lQOqPipiCHVbiuwIDIzRzD7w5hvHgmwEuEs="})
    with pytest.raises(ParseError, match="not valid JSON"):
        make_adapter().parse(body)


def test_parse_user_text(shared_fixture):
    [event] = make_adapter().parse(shared_fixture("line_message_text_user.json"))

    assert (event.kind, event.provider_message_id, event.text, event.is_redelivery, event.event_id) == (
        "message", "325708", "Hello, world", False, "")
    assert event.identities == [Identity("line", "u206d25c2ea6bd87c17655609a1c37cb8", True)]
    assert event.timestamp == datetime.fromtimestamp(1462629479.859, tz=UTC)


def test_parse_redelivery(shared_fixture):
    [event] = make_adapter().parse(shared_fixture("line_message_text_redelivery.json"))

    assert (event.is_redelivery, event.event_id) == (True, "01G2KZKG2DS765NMRH3GZFD8AP")


def test_parse_all_event_types(shared_fixture):
    events = make_adapter().parse(shared_fixture("line_webhook_all_event_types.json"))

    assert len(events) == 27
    assert [e.kind for e in events] == [
        "message", "message", "message", "message", "message", "message", "follow", "unfollow", "other", "other",
        "postback", "other", "other", "other", "message", "message", "postback", "postback", "postback", "other",
        "other", "message", "unsend", "other", "message", "message", "other"]
    image = events[1]
    assert image.attachments == [Attachment(kind="image", media_id="325708", url="https://example.com")]
    assert image.identities == [] and image.extra["roomId"] == "Ra8dbf4673c4c812cd491258042226c99"
    assert events[3].attachments == [Attachment(kind="audio", media_id="325708", url="https://example.com")]
    assert events[4].location == Location(35.65910807942215, 139.70372892916203, "my location", "Tokyo")
    assert events[5].attachments == [Attachment(kind="sticker", media_id="1/1")]
    assert events[5].text == "Just sticker"
    assert (events[10].payload, events[16].extra["params"]) == (
        "action=buyItem&itemId=123123&color=red", {"date": "2013-04-01"})
    assert events[14].identities == [Identity("line", "U206d25c2ea6bd87c17655609a1c37cb8", True)]
    assert events[21].attachments == [Attachment(kind="document", media_id="325708", filename="file.txt", size=2138)]
    assert (events[22].reply_to_id, events[22].extra["groupId"]) == ("325708", "Ca56f94637cc4347f90a25382909b24b9")
    assert events[24].attachments == [Attachment(kind="image", media_id="354718705033693861")]  # content via API
    assert events[26].extra["type"] == "undefined"
    assert {e.event_id for e in events} == {"testwebhookeventid"}


def test_parse_own_fixture_signed(own_fixture):
    body = own_fixture("line/follow_postback_sticker.json")
    adapter = make_adapter(secret="own-secret")
    adapter.verify(body, {"X-Line-Signature": compute_signature(body, "own-secret")})

    follow, sticker, text = adapter.parse(body)

    assert (follow.kind, follow.event_id) == ("follow", "01HZZZFOLLOW000000000000001")
    assert sticker.attachments == [Attachment(kind="sticker", media_id="446/1988")]
    assert sticker.extra["keywords"] == ["Happy"]
    assert (text.text, text.reply_to_id, text.is_redelivery) == ("Terima kasih", "510000000000000000", True)


def test_empty_events_is_the_console_verify_request():
    assert make_adapter().parse(b'{"destination":"U1","events":[]}') == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [(b'{"destination":"U1"}', "events must be a JSON array"), (b'{"events":[{"source":{}}]}', "type is missing"),
     (b'{"events":[{"type":"message"}]}', "message must be a JSON object"),
     (b'{"events":[{"type":"message","message":{"type":"text"}}]}', "needs id and type")],
)
def test_malformed(body, reason):
    with pytest.raises(ParseError, match=reason):
        make_adapter().parse(body)


def test_push_with_retry_key(provider_server):
    provider_server.respond(200, json_body={"sentMessages": [{"id": "461230966842064897", "quoteToken": "IStG5h1"}]})
    key = "123e4567-e89b-12d3-a456-426614174000"

    result = make_adapter(provider_server.url).send(OutboundMessage(to="U4af4980629", text="Halo", idempotency_key=key))

    assert result.provider_message_id == "461230966842064897"
    request = provider_server.last
    assert (request.method, request.path) == ("POST", "/v2/bot/message/push")
    assert request.headers["authorization"] == "Bearer LINE-TOKEN"
    assert request.headers["x-line-retry-key"] == key
    assert request.json() == {"to": "U4af4980629", "messages": [{"type": "text", "text": "Halo"}]}


def test_retry_key_is_a_stable_uuid_for_any_key():
    key = retry_key_for("message-42")
    assert key == retry_key_for("message-42") != retry_key_for("message-43")
    assert str(uuid.UUID(key)) == key


def test_push_retry_already_accepted_is_success(provider_server):
    provider_server.respond(409, json_body={"message": "The retry key is already accepted"},
                            headers={"Content-Type": "application/json",
                                     "x-line-accepted-request-id": "ad7e0b0a-1111-2222-3333-444455556666"})

    result = make_adapter(provider_server.url).send(OutboundMessage(to="U1", text="x", idempotency_key="m-1"))

    assert result.provider_message_id == ""
    assert result.raw["accepted_request_id"] == "ad7e0b0a-1111-2222-3333-444455556666"


def test_reply_uses_reply_token_without_retry_key(provider_server):
    provider_server.respond(200, json_body={"sentMessages": [{"id": "1", "quoteToken": "q"}]})

    make_adapter(provider_server.url).send(OutboundMessage(to="U1", text="Hai", reply_token="rt-1", idempotency_key="m-1"))

    assert provider_server.last.path == "/v2/bot/message/reply"
    assert "x-line-retry-key" not in provider_server.last.headers
    assert provider_server.last.json() == {"replyToken": "rt-1", "messages": [{"type": "text", "text": "Hai"}]}


@pytest.mark.parametrize(
    ("status", "body", "permanent", "message"),
    [
        (400, {"message": "Invalid reply token"}, True, "Invalid reply token"),
        (400, {"message": "The request body has 1 error(s)",
               "details": [{"message": "May not be empty", "property": "messages[0].text"}]}, True,
         r"messages\[0\].text May not be empty"),
        (401, {"message": "Authentication failed"}, True, "Authentication failed"),
        (429, {"message": "The API rate limit has been exceeded. Try again later."}, False, "rate limit"),
        (429, {"message": "You have reached your monthly limit."}, True, "monthly limit"),
        (500, {"message": "Internal server error"}, False, "Internal"),
        (409, {"message": "Conflict"}, True, "Conflict"),  # no retry key sent: a real conflict
    ],
)
def test_send_errors(provider_server, status, body, permanent, message):
    provider_server.respond(status, json_body=body)
    with pytest.raises(AdapterError, match=message) as info:
        make_adapter(provider_server.url).send(OutboundMessage(to="U1", text="x"))
    assert info.value.permanent is permanent


def test_fetch_media_from_data_api(provider_server):
    provider_server.respond(200, body=b"\x89PNG", headers={"Content-Type": "image/png"})

    media = make_adapter(provider_server.url).fetch_media(Attachment(kind="image", media_id="354718705033693861"))

    assert (media.content, media.mime_type) == (b"\x89PNG", "image/png")
    assert provider_server.last.path == "/v2/bot/message/354718705033693861/content"
    assert provider_server.last.headers["authorization"] == "Bearer LINE-TOKEN"


def test_fetch_external_media_without_token(provider_server):
    provider_server.respond(200, body=b"vid", headers={"Content-Type": "video/mp4"})

    media = make_adapter().fetch_media(Attachment(kind="video", media_id="1", url=provider_server.url + "/v.mp4"))

    assert media.content == b"vid"
    assert "authorization" not in provider_server.last.headers


def test_default_content_host_is_the_data_api():
    from channels_app.adapters.line import DEFAULT_DATA_BASE_URL
    assert DEFAULT_DATA_BASE_URL == "https://api-data.line.me"


def test_push_image_and_text_in_one_request(provider_server):
    provider_server.respond(200, json_body={"sentMessages": [{"id": "img-1"}, {"id": "txt-1"}]})

    result = make_adapter(provider_server.url).send(OutboundMessage(
        to="U1", text="Struk Anda", attachment=Attachment(kind="image", url="https://cx.example.com/m/1.jpg")))

    assert result.provider_message_id == "img-1"
    assert provider_server.last.json() == {"to": "U1", "messages": [
        {"type": "image", "originalContentUrl": "https://cx.example.com/m/1.jpg",
         "previewImageUrl": "https://cx.example.com/m/1.jpg"},
        {"type": "text", "text": "Struk Anda"}]}


@pytest.mark.parametrize("attachment", [Attachment(kind="document", url="https://x/a.pdf"),
                                        Attachment(kind="image", url="http://x/a.jpg")])
def test_unsupported_media_is_refused(provider_server, attachment):
    with pytest.raises(AdapterError, match="only send images") as info:
        make_adapter(provider_server.url).send(OutboundMessage(to="U1", attachment=attachment))
    assert info.value.permanent is True
    assert provider_server.requests == []
