from __future__ import annotations

import pytest

from channels_app.adapters import registry
from channels_app.adapters.base import ChannelAdapter, ConfigError
from channels_app.adapters.twilio_sms import TwilioAdapter, TwilioConfig
from channels_app.adapters.whatsapp import WhatsAppAdapter

VALID = {
    "whatsapp": {"phone_number_id": "1", "access_token": "t", "app_secret": "s", "verify_token": "v"},
    "messenger": {"page_id": "1", "page_access_token": "t", "app_secret": "s", "verify_token": "v"},
    "instagram": {"instagram_account_id": "1", "access_token": "t", "app_secret": "s", "verify_token": "v"},
    "telegram": {"bot_token": "123:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw", "secret_token": "abc"},
    "line": {"channel_access_token": "t", "channel_secret": "s"},
    "twilio_sms": {"account_sid": "AC" + "0" * 32, "auth_token": "t", "from_number": "+15017122661"},
    "email": {"address": "support@cx.example.com", "inbound_secret": "s"},
    "webchat": {"allowed_origins": ["https://shop.example.com"]},
    "api": {"callback_url": "https://crm.example.com/cb", "secret": "0123456789abcdef"},
}


def test_every_provider_kind_is_registered():
    assert sorted(registry.ADAPTERS) == sorted(VALID)


@pytest.mark.parametrize("kind", sorted(VALID))
def test_get_adapter_from_dict(kind):
    adapter = registry.get_adapter(kind, VALID[kind])
    assert adapter.kind == kind
    assert isinstance(adapter, ChannelAdapter)
    assert isinstance(adapter.config, registry.config_class(kind))


@pytest.mark.parametrize("kind", ["voice", "in_person", "fax"])
def test_kinds_without_adapter(kind):
    with pytest.raises(KeyError):
        registry.adapter_class(kind)


def test_invalid_config_and_wrong_config_type():
    with pytest.raises(ConfigError, match="app_secret is required"):
        registry.get_adapter("whatsapp", {**VALID["whatsapp"], "app_secret": ""})
    with pytest.raises(TypeError):
        registry.get_adapter("whatsapp", TwilioConfig(**VALID["twilio_sms"]))
    assert isinstance(registry.get_adapter("twilio_sms", TwilioConfig(**VALID["twilio_sms"])), TwilioAdapter)
    assert registry.adapter_class("whatsapp") is WhatsAppAdapter


@pytest.mark.parametrize(
    ("kind", "default"),
    [("whatsapp", "https://graph.facebook.com"), ("messenger", "https://graph.facebook.com"),
     ("instagram", "https://graph.instagram.com"), ("telegram", "https://api.telegram.org"),
     ("line", "https://api.line.me"), ("twilio_sms", "https://api.twilio.com")],
)
def test_base_url_inbox_then_settings_then_provider_default(settings, kind, default):
    settings.CHANNEL_API_BASE_URLS = {}
    assert registry.get_adapter(kind, VALID[kind]).config.base_url == default
    settings.CHANNEL_API_BASE_URLS = {kind: "http://127.0.0.1:8999/"}
    assert registry.get_adapter(kind, VALID[kind]).config.base_url == "http://127.0.0.1:8999"
    own = {**VALID[kind], "api_base_url": "https://staging.example.com/"}
    assert registry.get_adapter(kind, own).config.base_url == "https://staging.example.com"
