"""First-party API channel: integrators post inbound messages as JSON and receive outbound
ones at their callback URL.

Both directions use the same signature scheme, in the style of Stripe/Slack webhooks:
``X-Cx-Timestamp: <unix seconds>`` and
``X-Cx-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + raw body)>``. The timestamp
is inside the MAC, so a captured request cannot be replayed outside the tolerance window.
Outbound callbacks also carry ``Idempotency-Key`` (our message uuid) so the integrator can
de-duplicate a callback we retried after a timeout.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

from .base import (
    AdapterConfig,
    AdapterError,
    Attachment,
    ConfigError,
    DeliveryResult,
    DeliveryStatus,
    EventKind,
    Identity,
    InboundEvent,
    OutboundMessage,
    ParseError,
    SignatureError,
    call_provider,
    constant_time_equals,
    from_unix,
    get_header,
    load_json,
    require_dict,
    require_list,
    response_json,
)

TIMESTAMP_HEADER = "X-Cx-Timestamp"
SIGNATURE_HEADER = "X-Cx-Signature"
TOLERANCE_SECONDS = 300
IDENTITY_KINDS = ("phone", "email", "external")
STATUSES = (DeliveryStatus.DELIVERED, DeliveryStatus.READ, DeliveryStatus.FAILED)


@dataclass(frozen=True)
class ApiConfig(AdapterConfig):
    callback_url: str
    secret: str

    required: ClassVar[tuple[str, ...]] = ("callback_url", "secret")
    secrets: ClassVar[tuple[str, ...]] = ("secret",)

    def validate(self) -> None:
        parts = urlsplit(self.callback_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError("callback_url must be an absolute http(s) URL")
        if len(self.secret) < 16:
            raise ConfigError("secret must be at least 16 characters")


def signature(secret: str, timestamp: str, raw_body: bytes) -> str:
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + raw_body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def signed_headers(secret: str, raw_body: bytes, *, now: float | None = None) -> dict[str, str]:
    timestamp = str(int(time.time() if now is None else now))
    return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: signature(secret, timestamp, raw_body)}


def verify_signature(raw_body: bytes, headers: Mapping[str, str], secret: str, *, now: float | None = None,
                     tolerance: int = TOLERANCE_SECONDS) -> None:
    timestamp = get_header(headers, TIMESTAMP_HEADER) or ""
    received = get_header(headers, SIGNATURE_HEADER) or ""
    if not timestamp or not received:
        raise SignatureError(f"{TIMESTAMP_HEADER} and {SIGNATURE_HEADER} are required")
    if not timestamp.isdigit():
        raise SignatureError(f"{TIMESTAMP_HEADER} must be unix seconds")
    if not constant_time_equals(signature(secret, timestamp, raw_body), received.strip().lower()):
        raise SignatureError(f"{SIGNATURE_HEADER} does not match")
    age = (time.time() if now is None else now) - int(timestamp)
    if abs(age) > tolerance:
        raise SignatureError(f"{TIMESTAMP_HEADER} is {int(age)} s away from now: possible replay")


def _identity(sender: dict[str, Any]) -> Identity:
    kind = sender.get("kind")
    value = str(sender.get("value", "")).strip()
    if kind not in IDENTITY_KINDS or not value:
        raise ParseError(f"from.kind must be one of {', '.join(IDENTITY_KINDS)} and from.value is required")
    if kind == "phone":
        digits = re.sub(r"\D", "", value)
        if not value.startswith("+") or not 7 <= len(digits) <= 15:
            raise ParseError("from.value must be an E.164 phone number like +6281234567890")
        value = "+" + digits
    elif kind == "email":
        if "@" not in value:
            raise ParseError("from.value is not an email address")
        value = value.lower()
    return Identity("api" if kind == "external" else kind, value, True)


def _timestamp(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, (int, float)):
        return from_unix(int(value))
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise ParseError(f"timestamp {value!r} is neither unix seconds nor ISO 8601") from exc
    if parsed.tzinfo is None:
        raise ParseError("timestamp needs a time zone offset")
    return parsed


class ApiAdapter:
    kind = "api"
    config_class = ApiConfig

    def __init__(self, config: ApiConfig) -> None:
        self.config = config

    def verify(self, raw_body: bytes, headers: Mapping[str, str], **context: Any) -> None:
        verify_signature(raw_body, headers, self.config.secret, now=context.get("now"))

    def parse(self, raw_body: bytes, headers: Mapping[str, str] | None = None) -> list[InboundEvent]:
        data = load_json(raw_body)
        items = require_list(data.get("messages"), "messages") if isinstance(data, dict) and "messages" in data else [data]
        return [self._item(require_dict(item, "message")) for item in items]

    def _item(self, item: dict[str, Any]) -> InboundEvent:
        item_id = str(item.get("id", "")).strip()
        if not item_id:
            raise ParseError("id is required (your unique id for this message)")
        if item.get("type", "message") == "status":
            status = item.get("status")
            if status not in STATUSES:
                raise ParseError(f"status must be one of {', '.join(STATUSES)}")
            error = item.get("error") or {}
            return InboundEvent(kind=EventKind.STATUS, provider_message_id=item_id, status=status,
                                error_code=str(error.get("code", "")), error_title=str(error.get("title", "")),
                                timestamp=_timestamp(item.get("timestamp")), raw=item)
        sender = require_dict(item.get("from"), "from")
        text = str(item.get("text", ""))
        attachments = []
        for att in item.get("attachments") or []:
            att = require_dict(att, "attachments[]")
            if not str(att.get("url", "")).startswith(("https://", "http://")):
                raise ParseError("attachments[].url must be an http(s) URL")
            mime = str(att.get("mime_type", ""))
            major = mime.split("/", 1)[0]
            attachments.append(Attachment(kind=major if major in ("image", "audio", "video") else "document",
                                          url=str(att["url"]), mime_type=mime, filename=str(att.get("filename", "")),
                                          size=att.get("size")))
        if not text and not attachments:
            raise ParseError("a message needs text or attachments")
        return InboundEvent(kind=EventKind.MESSAGE, provider_message_id=item_id, identities=[_identity(sender)],
                            display_name=str(sender.get("name", "")), text=text, attachments=attachments,
                            reply_to_id=str(item.get("reply_to_id", "")), timestamp=_timestamp(item.get("timestamp")),
                            extra={"metadata": item.get("metadata") or {}}, raw=item)

    def build_callback(self, message: OutboundMessage) -> dict[str, Any]:
        return {
            "event": "message.created",
            "id": message.idempotency_key,
            "to": message.to,
            "text": message.text,
            "reply_to_id": message.reply_to_id or None,
            "conversation": message.metadata.get("conversation"),
            "attachment": None if message.attachment is None else {
                "url": message.attachment.url, "mime_type": message.attachment.mime_type,
                "filename": message.attachment.filename, "size": message.attachment.size},
        }

    def send(self, message: OutboundMessage) -> DeliveryResult:
        if not message.idempotency_key:
            raise AdapterError("API callbacks need the message uuid as idempotency key", permanent=True)
        body = json.dumps(self.build_callback(message), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        headers = {**signed_headers(self.config.secret, body), "Idempotency-Key": message.idempotency_key,
                   "Content-Type": "application/json"}
        response = call_provider("POST", self.config.callback_url, body=body, headers=headers)
        answer = response_json(response)
        if not response.ok:
            retryable = response.status in (408, 425, 429) or response.status >= 500
            raise AdapterError(f"callback answered HTTP {response.status}", permanent=not retryable,
                               status=response.status, code=response.status)
        provider_id = answer.get("id") if isinstance(answer, dict) and answer.get("id") else message.idempotency_key
        return DeliveryResult(provider_message_id=str(provider_id), raw=answer)
