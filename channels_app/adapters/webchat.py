"""First-party web chat widget (the widget itself is another issue; this is its adapter).

The widget posts JSON ``{"id", "visitor_token", "text", "user"?}`` from the site it is embedded
in. ``Origin`` must be one of the inbox's allowed origins. A site that knows its signed-in user
may claim it with ``user: {"id", "hash"}`` where ``hash = hex HMAC-SHA256(identity_secret, id)``
(the Intercom / Chatwoot identity-verification scheme); only then is the user id trusted.
Outbound messages are pushed over the visitor's websocket by the realtime layer, so ``send``
does no network I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

from .base import (
    AdapterConfig,
    ConfigError,
    DeliveryResult,
    EventKind,
    Identity,
    InboundEvent,
    OutboundMessage,
    ParseError,
    SignatureError,
    constant_time_equals,
    get_header,
    load_json,
    require_dict,
)

_COLOUR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")


@dataclass(frozen=True)
class WebchatConfig(AdapterConfig):
    allowed_origins: tuple[str, ...] = ()
    identity_secret: str = ""
    greeting: str = ""
    primary_colour: str = "#1f6feb"

    secrets: ClassVar[tuple[str, ...]] = ("identity_secret",)

    def validate(self) -> None:
        origins = tuple(self.allowed_origins)
        for origin in origins:
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") \
                    or parts.query or parts.fragment:
                raise ConfigError(f"allowed origin {origin!r} must look like https://shop.example.com")
        object.__setattr__(self, "allowed_origins", tuple(o.rstrip("/").lower() for o in origins))
        if not _COLOUR_RE.match(self.primary_colour):
            raise ConfigError("primary_colour must be a #rrggbb colour")


def user_hash(identity_secret: str, user_id: str) -> str:
    return hmac.new(identity_secret.encode("utf-8"), user_id.encode("utf-8"), hashlib.sha256).hexdigest()


class WebchatAdapter:
    kind = "webchat"
    config_class = WebchatConfig

    def __init__(self, config: WebchatConfig) -> None:
        self.config = config

    def verify(self, raw_body: bytes, headers: Mapping[str, str], **context: Any) -> None:
        origin = (get_header(headers, "Origin") or "").rstrip("/").lower()
        if not origin or origin not in self.config.allowed_origins:
            raise SignatureError(f"origin {origin or '(none)'} is not allowed for this web chat")
        user = load_json(raw_body).get("user") if raw_body else None
        if isinstance(user, dict) and user.get("id"):
            if not self.config.identity_secret:
                raise SignatureError("this web chat does not accept signed-in users (no identity secret)")
            if not constant_time_equals(user_hash(self.config.identity_secret, str(user["id"])),
                                        str(user.get("hash", "")).lower()):
                raise SignatureError("user hash does not match the user id")

    def parse(self, raw_body: bytes, headers: Mapping[str, str] | None = None) -> list[InboundEvent]:
        data = require_dict(load_json(raw_body), "body")
        message_id = str(data.get("id", "")).strip()
        token = str(data.get("visitor_token", "")).strip()
        if not message_id or not token:
            raise ParseError("id and visitor_token are required")
        text = str(data.get("text", ""))
        if not text.strip():
            raise ParseError("text is empty")
        identities = [Identity("webchat", token, False)]
        user = data.get("user")
        name = ""
        if isinstance(user, dict) and user.get("id"):
            # verify() has checked the hash; the site vouches for its own user id only.
            identities.append(Identity("webchat_user", str(user["id"]), True))
            if user.get("email"):
                identities.append(Identity("email", str(user["email"]).lower(), False))
            name = str(user.get("name", ""))
        return [InboundEvent(kind=EventKind.MESSAGE, provider_message_id=message_id, identities=identities,
                             display_name=name, text=text, extra={"page_url": data.get("page_url", "")}, raw=data)]

    def send(self, message: OutboundMessage) -> DeliveryResult:
        return DeliveryResult(provider_message_id=message.idempotency_key or str(uuid.uuid4()))
