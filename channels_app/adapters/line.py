"""LINE Messaging API adapter.

Webhooks: ``{"destination": ..., "events": [...]}`` signed with
``X-Line-Signature = Base64(HMAC-SHA256(channel_secret, raw body))``. Each event carries
``webhookEventId`` (stable across redeliveries) and ``deliveryContext.isRedelivery``.
Send: reply API (``replyToken``, free, single use, short-lived) or push API
``POST {base}/v2/bot/message/push`` with ``X-Line-Retry-Key`` (a UUID) so that a retried push
is executed once; LINE answers 409 to a retry of an already accepted request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from .base import (
    AdapterConfig,
    AdapterError,
    Attachment,
    DeliveryResult,
    EventKind,
    Identity,
    InboundEvent,
    Location,
    MediaContent,
    OutboundMessage,
    ParseError,
    SignatureError,
    call_provider,
    constant_time_equals,
    fetch_media_bytes,
    from_unix_ms,
    get_header,
    load_json,
    require_dict,
    require_list,
    response_json,
)

SIGNATURE_HEADER = "X-Line-Signature"
DEFAULT_DATA_BASE_URL = "https://api-data.line.me"  # message content lives on the data API host
RETRY_KEY_HEADER = "X-Line-Retry-Key"
# Namespace for turning our outbound message key into the UUID LINE requires.
RETRY_KEY_NAMESPACE = uuid.UUID("6f1c1a0e-2d4b-5c7e-9a8b-1f2e3d4c5b6a")


@dataclass(frozen=True)
class LineConfig(AdapterConfig):
    channel_access_token: str
    channel_secret: str
    api_base_url: str = ""

    required: ClassVar[tuple[str, ...]] = ("channel_access_token", "channel_secret")
    secrets: ClassVar[tuple[str, ...]] = ("channel_access_token", "channel_secret")
    default_api_base_url: ClassVar[str] = "https://api.line.me"
    provider: ClassVar[str] = "line"


def compute_signature(raw_body: bytes, channel_secret: str) -> str:
    digest = hmac.new(channel_secret.encode("utf-8"), raw_body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def retry_key_for(idempotency_key: str) -> str:
    """LINE wants a hexadecimal UUID; keep a UUID as is, map anything else deterministically."""
    try:
        return str(uuid.UUID(idempotency_key))
    except ValueError:
        return str(uuid.uuid5(RETRY_KEY_NAMESPACE, idempotency_key))


class LineAdapter:
    kind = "line"
    config_class = LineConfig

    def __init__(self, config: LineConfig) -> None:
        self.config = config

    def verify(self, raw_body: bytes, headers: Mapping[str, str], **context: Any) -> None:
        received = get_header(headers, SIGNATURE_HEADER)
        if not received:
            raise SignatureError(f"missing {SIGNATURE_HEADER} header")
        if not constant_time_equals(compute_signature(raw_body, self.config.channel_secret), received.strip()):
            raise SignatureError(f"{SIGNATURE_HEADER} does not match the body")

    def parse(self, raw_body: bytes, headers: Mapping[str, str] | None = None) -> list[InboundEvent]:
        data = require_dict(load_json(raw_body), "body")
        destination = str(data.get("destination", ""))
        # An empty events list is LINE's "Verify" button in the console: valid, nothing to do.
        return [self._event(require_dict(e, "events[]"), destination)
                for e in require_list(data.get("events"), "events")]

    def _event(self, event: dict[str, Any], destination: str) -> InboundEvent:
        etype = event.get("type")
        if not isinstance(etype, str):
            raise ParseError("events[].type is missing")
        source = event.get("source") or {}
        identities = [Identity("line", str(source["userId"]), True)] if source.get("userId") else []
        extra: dict[str, Any] = {"destination": destination, "source_type": source.get("type", ""), "type": etype}
        for key in ("groupId", "roomId"):
            if source.get(key):
                extra[key] = source[key]
        if event.get("replyToken"):
            extra["reply_token"] = event["replyToken"]
        if event.get("mode"):
            extra["mode"] = event["mode"]
        result = InboundEvent(
            kind=EventKind.OTHER,
            identities=identities,
            timestamp=from_unix_ms(event.get("timestamp")),
            event_id=str(event.get("webhookEventId", "")),
            is_redelivery=bool((event.get("deliveryContext") or {}).get("isRedelivery", False)),
            extra=extra,
            raw=event,
        )
        if etype == "message":
            self._message(require_dict(event.get("message"), "events[].message"), result)
        elif etype == "postback":
            postback = require_dict(event.get("postback"), "events[].postback")
            result.kind = EventKind.POSTBACK
            result.payload = str(postback.get("data", ""))
            if postback.get("params"):
                result.extra["params"] = postback["params"]
        elif etype == "follow":
            result.kind = EventKind.FOLLOW
        elif etype == "unfollow":
            result.kind = EventKind.UNFOLLOW
        elif etype == "unsend":
            result.kind = EventKind.UNSEND
            result.reply_to_id = str((event.get("unsend") or {}).get("messageId", ""))
        return result

    def _message(self, message: dict[str, Any], result: InboundEvent) -> None:
        if "id" not in message or "type" not in message:
            raise ParseError("events[].message needs id and type")
        mtype = message["type"]
        result.kind = EventKind.MESSAGE
        result.provider_message_id = str(message["id"])
        result.reply_to_id = str(message.get("quotedMessageId", ""))
        result.extra["message_type"] = mtype
        if mtype == "text":
            result.text = str(message.get("text", ""))
        elif mtype in ("image", "video", "audio", "file"):
            provider = message.get("contentProvider") or {}
            # contentProvider.type == "line": fetch bytes from the content API by message id.
            url = str(provider.get("originalContentUrl", "")) if provider.get("type") == "external" else ""
            result.attachments.append(Attachment(
                kind="document" if mtype == "file" else mtype, media_id=str(message["id"]), url=url,
                filename=str(message.get("fileName", "")), size=message.get("fileSize")))
        elif mtype == "sticker":
            result.attachments.append(Attachment(
                kind="sticker", media_id=f"{message.get('packageId', '')}/{message.get('stickerId', '')}"))
            result.text = str(message.get("text", ""))
            if message.get("keywords"):
                result.extra["keywords"] = list(message["keywords"])
        elif mtype == "location":
            try:
                result.location = Location(float(message["latitude"]), float(message["longitude"]),
                                           str(message.get("title", "")), str(message.get("address", "")))
            except (KeyError, TypeError, ValueError) as exc:
                raise ParseError("location message needs numeric latitude and longitude") from exc

    # --- outbound -------------------------------------------------------------------------

    def send(self, message: OutboundMessage) -> DeliveryResult:
        if not message.text and message.attachment is None:
            raise AdapterError("nothing to send: text is empty", permanent=True)
        messages: list[dict[str, Any]] = []
        if message.attachment is not None:
            att = message.attachment
            if att.kind != "image" or not att.url.startswith("https://"):
                # Video/audio need a preview image or duration we do not have; files are not sendable.
                raise AdapterError("LINE can only send images here, by https URL", permanent=True)
            messages.append({"type": "image", "originalContentUrl": att.url, "previewImageUrl": att.url})
        if message.text:
            messages.append({"type": "text", "text": message.text})  # same request: both or neither
        headers = {"Authorization": f"Bearer {self.config.channel_access_token}"}
        if message.reply_token:
            url = f"{self.config.base_url}/v2/bot/message/reply"
            payload: dict[str, Any] = {"replyToken": message.reply_token, "messages": messages}
        else:
            if not message.to:
                raise AdapterError("push needs a recipient (userId, groupId or roomId)", permanent=True)
            url = f"{self.config.base_url}/v2/bot/message/push"
            payload = {"to": message.to, "messages": messages}
            if message.idempotency_key:
                headers[RETRY_KEY_HEADER] = retry_key_for(message.idempotency_key)
        response = call_provider("POST", url, json=payload, headers=headers)
        body = response_json(response)
        if response.status == 409 and RETRY_KEY_HEADER in headers:
            # The same retry key was already accepted: the message went out on an earlier attempt.
            accepted = response.headers.get("x-line-accepted-request-id", "")
            return DeliveryResult(provider_message_id="", raw={"accepted_request_id": accepted, "body": body})
        if not response.ok:
            raise self._error(response.status, body)
        sent = (body or {}).get("sentMessages") or [{}]
        return DeliveryResult(provider_message_id=str(sent[0].get("id", "")), raw=body)

    def fetch_media(self, attachment: Attachment) -> MediaContent:
        """External content by its URL; content kept by LINE from the data API by message id."""
        if attachment.url:
            return fetch_media_bytes(attachment.url)
        base = self.config.api_base_url or DEFAULT_DATA_BASE_URL
        return fetch_media_bytes(f"{base}/v2/bot/message/{attachment.media_id}/content",
                                 headers={"Authorization": f"Bearer {self.config.channel_access_token}"})

    @staticmethod
    def _error(status: int, body: Any) -> AdapterError:
        message = str(body.get("message")) if isinstance(body, dict) and body.get("message") else f"LINE HTTP {status}"
        details = body.get("details") if isinstance(body, dict) else None
        if details:
            message += ": " + "; ".join(f"{d.get('property', '')} {d.get('message', '')}".strip() for d in details)
        retryable = status >= 500 or (status == 429 and "monthly limit" not in message.lower())
        return AdapterError(message, permanent=not retryable, status=status, code=status)
