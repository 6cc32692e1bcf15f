"""kind -> adapter class. ``voice`` and ``in_person`` have no provider and so no adapter."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .api import ApiAdapter
from .base import AdapterConfig, ChannelAdapter
from .email import EmailAdapter
from .instagram import InstagramAdapter
from .line import LineAdapter
from .messenger import MessengerAdapter
from .telegram import TelegramAdapter
from .twilio_sms import TwilioAdapter
from .webchat import WebchatAdapter
from .whatsapp import WhatsAppAdapter

ADAPTERS: dict[str, type] = {
    cls.kind: cls
    for cls in (WhatsAppAdapter, MessengerAdapter, InstagramAdapter, TelegramAdapter, LineAdapter, TwilioAdapter,
                EmailAdapter, WebchatAdapter, ApiAdapter)
}
KINDS_WITHOUT_PROVIDER = ("voice", "in_person")


def adapter_class(kind: str) -> type:
    """Raises KeyError for kinds without an adapter."""
    return ADAPTERS[kind]


def config_class(kind: str) -> type[AdapterConfig]:
    return adapter_class(kind).config_class


def get_adapter(kind: str, config: AdapterConfig | Mapping[str, Any]) -> ChannelAdapter:
    """An adapter bound to one inbox's validated config (a dict is validated here)."""
    cls = adapter_class(kind)
    if not isinstance(config, AdapterConfig):
        config = cls.config_class.from_dict(config)
    elif not isinstance(config, cls.config_class):
        raise TypeError(f"{type(config).__name__} is not a config for {kind}")
    return cls(config)
