"""What WhatsApp Cloud API, Messenger and Instagram messaging share (all Meta Graph API).

- Webhook authenticity: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app_secret, raw body)>``.
- Subscription handshake: ``GET ?hub.mode=subscribe&hub.verify_token=...&hub.challenge=...``;
  answer the challenge only when the token matches the inbox's verify token.
- Graph API error envelope ``{"error": {"message", "type", "code", "error_subcode", ...}}``.
- ``entry[].messaging[]`` events (Messenger and Instagram use the same shape).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any

from .base import (
    AdapterError,
    Attachment,
    DeliveryStatus,
    EventKind,
    Identity,
    InboundEvent,
    Location,
    ParseError,
    SignatureError,
    constant_time_equals,
    from_unix_ms,
    get_header,
    require_dict,
    require_list,
    response_json,
    text_not_allowed,
)

SIGNATURE_HEADER = "X-Hub-Signature-256"
DEFAULT_GRAPH_BASE_URL = "https://graph.facebook.com"
# Latest Graph API version per developers.facebook.com/docs/graph-api/changelog (v26.0, 2026-07-29).
DEFAULT_GRAPH_VERSION = "v26.0"
_VERSION_RE = re.compile(r"^v\d+\.\d+$")


def valid_graph_version(value: str) -> bool:
    return bool(_VERSION_RE.match(value))


def compute_signature(raw_body: bytes, app_secret: str) -> str:
    return "sha256=" + hmac.new(app_secret.encode("utf-8"), raw_body, hashlib.sha256).hexdigest()


def verify_signature(raw_body: bytes, headers: Mapping[str, str], app_secret: str) -> None:
    received = get_header(headers, SIGNATURE_HEADER)
    if not received:
        raise SignatureError(f"missing {SIGNATURE_HEADER} header")
    received = received.strip()
    if not received.startswith("sha256="):
        raise SignatureError(f"{SIGNATURE_HEADER} must start with 'sha256='")
    # Meta sends lower-case hex; normalise case only, never the body.
    expected = compute_signature(raw_body, app_secret)
    if not constant_time_equals(expected, "sha256=" + received[len("sha256="):].lower()):
        raise SignatureError(f"{SIGNATURE_HEADER} does not match the body")


def handshake(query: Mapping[str, str], verify_token: str) -> str:
    """Answer Meta's GET subscription check: returns ``hub.challenge`` to echo as the body."""
    mode = query.get("hub.mode")
    token = query.get("hub.verify_token") or ""
    challenge = query.get("hub.challenge")
    if mode != "subscribe":
        raise SignatureError(f"hub.mode must be 'subscribe', got {mode!r}")
    if not constant_time_equals(token, verify_token):
        raise SignatureError("hub.verify_token does not match")
    if not challenge:
        raise ParseError("hub.challenge is missing")
    return challenge


# --- Graph API errors ---------------------------------------------------------------------

# Retrying later can succeed (throughput / temporary failures).
RETRYABLE_CODES = {
    1,  # API Unknown (possible server error)
    2,  # API Service: temporary downtime or overload
    4,  # application request limit reached
    17,  # user request limit reached
    32,  # page request limit reached
    613,  # calls to this API have exceeded the rate limit
    1200,  # Messenger: temporary send message failure
    80007,  # WhatsApp Business Account rate limit
    130429,  # Cloud API throughput reached
    131000,  # something went wrong
    131016,  # service unavailable
    131048,  # spam rate limit hit
    131056,  # pair rate limit: too many messages to the same user
    133004,  # server temporarily unavailable
}

PERMANENT_MESSAGES = {
    131047: "The WhatsApp 24-hour customer-service window is closed: only an approved template "
    "message can be sent until the customer writes again",
    131026: "The message could not be delivered (the number may not be on WhatsApp, or blocked the business)",
    131030: "The recipient is not in the allowed list of this test phone number",
    131051: "This message type is not supported",
    190: "The access token has expired or is invalid: reconnect the inbox",
    551: "This person is not available right now",
}

# Messenger: code 10 + subcode 2018278 = sent outside the allowed (24 h) window.
OUTSIDE_WINDOW_SUBCODES = {2018278, 2534022}


def graph_error(status: int, body: Any) -> AdapterError:
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        retryable = status in (408, 429) or status >= 500
        return AdapterError(f"Graph API HTTP {status}", permanent=not retryable, status=status)
    code = err.get("code")
    subcode = err.get("error_subcode")
    details = ""
    if isinstance(err.get("error_data"), dict):
        details = str(err["error_data"].get("details") or "")
    provider_message = str(err.get("message") or "")
    if code in RETRYABLE_CODES:
        permanent = False
    elif isinstance(code, int) and code in PERMANENT_MESSAGES:
        permanent = True
    elif code == 10 and subcode in OUTSIDE_WINDOW_SUBCODES:
        permanent = True
    else:
        permanent = not (status in (408, 429) or status >= 500)
    if code == 10 and subcode in OUTSIDE_WINDOW_SUBCODES:
        human = "This message is sent outside of the allowed 24-hour window"
    else:
        human = PERMANENT_MESSAGES.get(code) if isinstance(code, int) else None
    parts = [human or provider_message or f"Graph API HTTP {status}"]
    if details and details not in parts[0]:
        parts.append(details)
    message = f"{' — '.join(parts)} (code {code}{f', subcode {subcode}' if subcode else ''})"
    return AdapterError(message, permanent=permanent, code=code, status=status)


def raise_for_graph_response(response: Any) -> dict[str, Any]:
    body = response_json(response)
    if not response.ok or (isinstance(body, dict) and "error" in body):
        raise graph_error(response.status, body)
    if not isinstance(body, dict):
        raise AdapterError(f"Graph API answered HTTP {response.status} without a JSON object", permanent=False)
    return body


# --- entry[].messaging[] (Messenger and Instagram) ----------------------------------------


def parse_messaging(data: Any, *, expected_object: str, identity_kind: str) -> list[InboundEvent]:
    data = require_dict(data, "body")
    if data.get("object") != expected_object:
        raise ParseError(f"object must be {expected_object!r}, got {data.get('object')!r}")
    events: list[InboundEvent] = []
    for entry in require_list(data.get("entry"), "entry"):
        entry = require_dict(entry, "entry[]")
        for item in require_list(entry.get("messaging", []), "entry[].messaging"):
            item = require_dict(item, "entry[].messaging[]")
            events.extend(_messaging_events(item, identity_kind))
    return events


def _messaging_events(item: dict[str, Any], identity_kind: str) -> list[InboundEvent]:
    event = _messaging_event(item, identity_kind)
    mids = event.extra.get("mids") or []
    if event.kind == EventKind.STATUS and len(mids) > 1:
        # One receipt naming several messages: one status event per message id.
        return [dataclasses.replace(event, provider_message_id=mid) for mid in mids]
    return [event]


def _messaging_event(item: dict[str, Any], identity_kind: str) -> InboundEvent:
    sender = require_dict(item.get("sender"), "messaging[].sender").get("id")
    if not sender:
        raise ParseError("messaging[].sender.id is missing")
    recipient = (item.get("recipient") or {}).get("id", "")
    identities = [Identity(identity_kind, str(sender), True)]
    timestamp = from_unix_ms(item.get("timestamp"))
    common: dict[str, Any] = {"identities": identities, "timestamp": timestamp, "raw": item}
    extra = {"recipient_id": str(recipient)}

    if "message" in item:
        msg = require_dict(item["message"], "messaging[].message")
        if msg.get("is_echo"):
            # Our own outbound message echoed back (sender is the page): not a customer message.
            return InboundEvent(kind=EventKind.OTHER, provider_message_id=str(msg.get("mid", "")),
                                extra={**extra, "echo": True}, **{**common, "identities": []})
        if not msg.get("mid"):
            raise ParseError("messaging[].message.mid is missing")
        if msg.get("is_deleted"):
            # Instagram: the customer unsent this message.
            return InboundEvent(kind=EventKind.UNSEND, reply_to_id=str(msg["mid"]), extra=extra, **common)
        attachments = []
        location = None
        for att in msg.get("attachments") or []:
            att = require_dict(att, "message.attachments[]")
            payload = att.get("payload") or {}
            kind = str(att.get("type", "file"))
            if kind == "location" and isinstance(payload.get("coordinates"), dict):
                coords = payload["coordinates"]
                location = Location(float(coords["lat"]), float(coords["long"]))
                continue
            attachments.append(Attachment(kind=kind, url=str(payload.get("url", "")),
                                          media_id=str(payload.get("attachment_id", ""))))
        quick_reply = msg.get("quick_reply") or {}
        reply_to = (msg.get("reply_to") or {}).get("mid", "")
        return InboundEvent(
            kind=EventKind.POSTBACK if quick_reply else EventKind.MESSAGE,
            provider_message_id=str(msg.get("mid", "")),
            text=str(msg.get("text", "")),
            attachments=attachments,
            location=location,
            payload=str(quick_reply.get("payload", "")),
            reply_to_id=str(reply_to),
            extra={**extra, "seq": msg["seq"]} if "seq" in msg else extra,
            **common,
        )
    if "postback" in item:
        pb = require_dict(item["postback"], "messaging[].postback")
        if pb.get("referral"):
            extra["referral"] = pb["referral"]
        return InboundEvent(kind=EventKind.POSTBACK, provider_message_id=str(pb.get("mid", "")),
                            text=str(pb.get("title", "")), payload=str(pb.get("payload", "")), extra=extra, **common)
    if "delivery" in item:
        delivery = require_dict(item["delivery"], "messaging[].delivery")
        mids = delivery.get("mids") or []
        watermark = from_unix_ms(delivery.get("watermark"))
        extra["watermark"] = watermark
        # A delivery receipt without mids means "everything before the watermark".
        return InboundEvent(kind=EventKind.STATUS, status=DeliveryStatus.DELIVERED,
                            provider_message_id=str(mids[0]) if mids else "",
                            extra={**extra, "mids": [str(m) for m in mids]},
                            **{**common, "timestamp": timestamp or watermark})
    if "read" in item:
        read = require_dict(item["read"], "messaging[].read")
        watermark = from_unix_ms(read.get("watermark"))
        return InboundEvent(kind=EventKind.STATUS, status=DeliveryStatus.READ,
                            provider_message_id=str(read.get("mid", "")),
                            extra={**extra, "watermark": watermark, "mids": []},
                            **{**common, "timestamp": timestamp or watermark})
    if "reaction" in item:
        reaction = require_dict(item["reaction"], "messaging[].reaction")
        emoji = str(reaction.get("emoji", "")) if reaction.get("action", "react") == "react" else ""
        return InboundEvent(kind=EventKind.REACTION, reply_to_id=str(reaction.get("mid", "")),
                            emoji=emoji, extra={**extra, "action": reaction.get("action", "react")}, **common)
    if "message_edit" in item:
        edit = require_dict(item["message_edit"], "messaging[].message_edit")
        return InboundEvent(kind=EventKind.EDIT, provider_message_id=str(edit.get("mid", "")),
                            text=str(edit.get("text", "")), extra=extra, **common)
    return InboundEvent(kind=EventKind.OTHER, extra=extra, **common)


def send_api_body(recipient_id: str, text: str, attachment: Attachment | None = None) -> dict[str, Any]:
    """Messenger / Instagram Send API body for a reply inside the standard messaging window."""
    if attachment is None:
        message: dict[str, Any] = {"text": text}
    else:
        if text:
            raise text_not_allowed("Messenger/Instagram", "attachment")
        if not attachment.url:
            raise AdapterError("Send API attachments need a public https URL", permanent=True)
        kind = attachment.kind if attachment.kind in ("image", "audio", "video") else "file"
        message = {"attachment": {"type": kind, "payload": {"url": attachment.url, "is_reusable": False}}}
    return {"recipient": {"id": recipient_id}, "messaging_type": "RESPONSE", "message": message}
