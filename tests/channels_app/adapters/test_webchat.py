from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from channels_app.adapters.base import ConfigError, Identity, OutboundMessage, ParseError, SignatureError
from channels_app.adapters.webchat import WebchatAdapter, WebchatConfig, user_hash

ORIGIN = "https://shop.example.co.id"


def make_adapter(**overrides) -> WebchatAdapter:
    values = dict(allowed_origins=[ORIGIN + "/"], identity_secret="widget-identity-secret")
    values.update(overrides)
    return WebchatAdapter(WebchatConfig.from_dict(values))


def visitor_body(own_fixture, user_hash_value: str | None = None) -> bytes:
    data = json.loads(own_fixture("webchat/visitor_message.json"))
    data["user"]["hash"] = user_hash_value or user_hash("widget-identity-secret", "user-1234")
    return json.dumps(data).encode()


def test_user_hash_is_hmac_sha256_hex():
    assert user_hash("secret", "user-1") == hmac.new(b"secret", b"user-1", hashlib.sha256).hexdigest()
    assert user_hash("secret", "user-1") != user_hash("secret", "user-2")


def test_verified_user(own_fixture):
    body = visitor_body(own_fixture)
    make_adapter().verify(body, {"Origin": ORIGIN})

    [event] = make_adapter().parse(body)

    assert (event.provider_message_id, event.text, event.display_name) == (
        "0d7c6f52-9a51-4b8e-8e0f-2b9b7d0e1a11", "Halo, ada promo minggu ini?", "Rina")
    assert event.identities == [Identity("webchat", "vt_3b1f8e0c2d", False), Identity("webchat_user", "user-1234", True),
                                Identity("email", "rina@example.co.id", False)]


@pytest.mark.parametrize(
    ("headers", "hash_value", "reason"),
    [
        ({"Origin": "https://evil.example.com"}, None, "not allowed"),
        ({}, None, "not allowed"),
        ({"Origin": ORIGIN}, "0" * 64, "user hash does not match"),
    ],
)
def test_verify_rejects(own_fixture, headers, hash_value, reason):
    with pytest.raises(SignatureError, match=reason):
        make_adapter().verify(visitor_body(own_fixture, hash_value), headers)


def test_claimed_user_without_identity_secret_is_rejected(own_fixture):
    with pytest.raises(SignatureError, match="no identity secret"):
        make_adapter(identity_secret="").verify(visitor_body(own_fixture), {"Origin": ORIGIN})


def test_anonymous_visitor():
    body = b'{"id":"m1","visitor_token":"vt_1","text":"hai"}'
    make_adapter().verify(body, {"Origin": ORIGIN})
    [event] = make_adapter().parse(body)
    assert event.identities == [Identity("webchat", "vt_1", False)]


@pytest.mark.parametrize(("body", "reason"), [(b'{"visitor_token":"v","text":"x"}', "id and visitor_token"),
                                              (b'{"id":"1","visitor_token":"v","text":"  "}', "text is empty"),
                                              (b"[]", "must be a JSON object")])
def test_malformed(body, reason):
    with pytest.raises(ParseError, match=reason):
        make_adapter().parse(body)


def test_send_has_no_network_and_uses_the_message_uuid():
    assert make_adapter().send(OutboundMessage(to="vt_1", text="x", idempotency_key="uuid-1")).provider_message_id == "uuid-1"


@pytest.mark.parametrize(("overrides", "reason"), [({"allowed_origins": ["shop.example.com"]}, "allowed origin"),
                                                   ({"allowed_origins": ["https://a.com/path"]}, "allowed origin"),
                                                   ({"primary_colour": "blue"}, "primary_colour")])
def test_config_validation(overrides, reason):
    with pytest.raises(ConfigError, match=reason):
        make_adapter(**overrides)
