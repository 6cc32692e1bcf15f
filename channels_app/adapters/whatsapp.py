"""WhatsApp Business Cloud API adapter.

Webhooks: ``entry[].changes[].value`` with ``field == "messages"`` carrying ``messages[]``
(customer messages) and ``statuses[]`` (sent / delivered / read / failed for our messages),
several per POST. Signed with X-Hub-Signature-256 (see meta.py).
Send: ``POST {base}/{version}/{phone_number_id}/messages`` with a Bearer token.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from . import meta
from .base import (
    AdapterConfig,
    AdapterError,
    Attachment,
    ConfigError,
    ContactCard,
    DeliveryResult,
    EventKind,
    Identity,
    InboundEvent,
    Location,
    MediaContent,
    OutboundMessage,
    ParseError,
    call_provider,
    fetch_media_bytes,
    from_unix,
    load_json,
    require_dict,
    require_list,
    text_not_allowed,
)

CUSTOMER_SERVICE_WINDOW = timedelta(hours=24)
MEDIA_TYPES = ("image", "audio", "video", "document", "sticker")


@dataclass(frozen=True)
class WhatsAppConfig(AdapterConfig):
    phone_number_id: str
    access_token: str
    app_secret: str
    verify_token: str
    api_base_url: str = ""
    api_version: str = meta.DEFAULT_GRAPH_VERSION

    required: ClassVar[tuple[str, ...]] = ("phone_number_id", "access_token", "app_secret", "verify_token")
    secrets: ClassVar[tuple[str, ...]] = ("access_token", "app_secret", "verify_token")
    default_api_base_url: ClassVar[str] = meta.DEFAULT_GRAPH_BASE_URL
    provider: ClassVar[str] = "whatsapp"

    def validate(self) -> None:
        if not self.phone_number_id.isdigit():
            raise ConfigError("phone_number_id must be the numeric id from WhatsApp Manager")
        if not meta.valid_graph_version(self.api_version):
            raise ConfigError(f"api_version must look like 'v26.0', got {self.api_version!r}")


def customer_service_window_open(last_inbound_at: datetime | None, *, now: datetime | None = None) -> bool:
    """Free-form messages are allowed only within 24 h of the customer's last message."""
    if last_inbound_at is None:
        return False
    now = now or datetime.now(UTC)
    return now - last_inbound_at < CUSTOMER_SERVICE_WINDOW


def customer_service_window_closes_at(last_inbound_at: datetime) -> datetime:
    return last_inbound_at + CUSTOMER_SERVICE_WINDOW


def phone_from_wa_id(wa_id: str) -> str:
    """wa_id is the E.164 number without '+'."""
    digits = re.sub(r"\D", "", wa_id)
    if not digits:
        raise ParseError(f"wa_id {wa_id!r} is not a phone number")
    return "+" + digits


class WhatsAppAdapter:
    """WhatsApp Cloud API: verify / parse / send."""

    kind = "whatsapp"
    config_class = WhatsAppConfig

    def __init__(self, config: WhatsAppConfig) -> None:
        self.config = config

    # --- inbound --------------------------------------------------------------------------

    def verify(self, raw_body: bytes, headers: Mapping[str, str], **context: Any) -> None:
        meta.verify_signature(raw_body, headers, self.config.app_secret)

    def handshake(self, query: Mapping[str, str]) -> str:
        return meta.handshake(query, self.config.verify_token)

    def parse(self, raw_body: bytes, headers: Mapping[str, str] | None = None) -> list[InboundEvent]:
        data = require_dict(load_json(raw_body), "body")
        if data.get("object") != "whatsapp_business_account":
            raise ParseError(f"object must be 'whatsapp_business_account', got {data.get('object')!r}")
        events: list[InboundEvent] = []
        for entry in require_list(data.get("entry"), "entry"):
            for change in require_list(require_dict(entry, "entry[]").get("changes"), "entry[].changes"):
                change = require_dict(change, "entry[].changes[]")
                if change.get("field") != "messages":
                    continue  # template status, account updates...: not conversation events
                value = require_dict(change.get("value"), "changes[].value")
                events.extend(self._parse_value(value))
        return events

    def _parse_value(self, value: dict[str, Any]) -> list[InboundEvent]:
        phone_number_id = str((value.get("metadata") or {}).get("phone_number_id", ""))
        profiles: dict[str, dict[str, Any]] = {}
        for contact in value.get("contacts") or []:
            if isinstance(contact, dict) and contact.get("wa_id"):
                profiles[str(contact["wa_id"])] = contact
        events = []
        for message in require_list(value.get("messages", []), "value.messages"):
            events.append(self._message(require_dict(message, "value.messages[]"), profiles, phone_number_id))
        for status in require_list(value.get("statuses", []), "value.statuses"):
            events.append(self._status(require_dict(status, "value.statuses[]"), phone_number_id))
        for error in require_list(value.get("errors", []), "value.errors"):
            # System-level errors (not tied to one message), e.g. 130429 throughput reached.
            error = require_dict(error, "value.errors[]")
            events.append(InboundEvent(kind=EventKind.OTHER, error_code=str(error.get("code", "")),
                                       error_title=str(error.get("title") or error.get("message") or ""),
                                       extra={"phone_number_id": phone_number_id, "webhook_error": True}, raw=error))
        return events

    def _message(self, msg: dict[str, Any], profiles: dict[str, dict[str, Any]], phone_number_id: str) -> InboundEvent:
        sender = msg.get("from")
        msg_id = msg.get("id")
        if not sender or not msg_id:
            raise ParseError("messages[] item needs 'from' and 'id'")
        profile = profiles.get(str(sender), {})
        extra: dict[str, Any] = {"phone_number_id": phone_number_id, "type": msg.get("type", "")}
        if profile.get("user_id"):
            extra["user_id"] = profile["user_id"]
        context = msg.get("context") or {}
        if context.get("forwarded") or context.get("frequently_forwarded"):
            extra["forwarded"] = True
        event = InboundEvent(
            kind=EventKind.MESSAGE,
            provider_message_id=str(msg_id),
            identities=[Identity("phone", phone_from_wa_id(str(sender)), True)],
            display_name=str((profile.get("profile") or {}).get("name", "")),
            timestamp=from_unix(msg.get("timestamp")),
            reply_to_id=str(context.get("id", "")),
            extra=extra,
            raw=msg,
        )
        kind = msg.get("type")
        body = msg.get(kind) if isinstance(kind, str) else None
        if kind == "text":
            event.text = str(require_dict(body, "text").get("body", ""))
        elif kind in MEDIA_TYPES:
            media = require_dict(body, kind)
            event.attachments = [Attachment(
                kind=kind, media_id=str(media.get("id", "")), mime_type=str(media.get("mime_type", "")),
                sha256=str(media.get("sha256", "")), filename=str(media.get("filename", "")),
                caption=str(media.get("caption", "")),
            )]
            event.text = str(media.get("caption", ""))
        elif kind == "location":
            loc = require_dict(body, "location")
            try:
                event.location = Location(float(loc["latitude"]), float(loc["longitude"]),
                                          str(loc.get("name", "")), str(loc.get("address", "")))
            except (KeyError, TypeError, ValueError) as exc:
                raise ParseError("location needs numeric latitude and longitude") from exc
        elif kind == "contacts":
            for card in require_list(body, "contacts"):
                card = require_dict(card, "contacts[]")
                name = card.get("name") or {}
                event.contacts.append(ContactCard(
                    name=str(name.get("formatted_name") or name.get("first_name") or ""),
                    phones=tuple(str(p.get("phone", "")) for p in card.get("phones") or [] if isinstance(p, dict)),
                    emails=tuple(str(e.get("email", "")) for e in card.get("emails") or [] if isinstance(e, dict)),
                ))
        elif kind == "interactive":
            interactive = require_dict(body, "interactive")
            reply_type = interactive.get("type")
            reply = interactive.get(reply_type) if isinstance(reply_type, str) else None
            if reply_type in ("button_reply", "list_reply") and isinstance(reply, dict):
                event.kind = EventKind.POSTBACK
                event.payload = str(reply.get("id", ""))
                event.text = str(reply.get("title", ""))
                if reply.get("description"):
                    event.extra["description"] = reply["description"]
            elif reply_type == "nfm_reply" and isinstance(reply, dict):
                event.kind = EventKind.POSTBACK
                event.payload = str(reply.get("response_json", ""))
                event.text = str(reply.get("body", ""))
        elif kind == "button":
            button = require_dict(body, "button")
            event.kind = EventKind.POSTBACK
            event.payload = str(button.get("payload", ""))
            event.text = str(button.get("text", ""))
        elif kind == "reaction":
            reaction = require_dict(body, "reaction")
            event.kind = EventKind.REACTION
            event.reply_to_id = str(reaction.get("message_id", ""))
            event.emoji = str(reaction.get("emoji", ""))  # absent: the reaction was removed
        elif kind == "system":
            # e.g. the customer changed number: not a message to show, but ingest may act on it.
            system = require_dict(body, "system")
            event.kind = EventKind.OTHER
            event.text = str(system.get("body", ""))
            event.extra["system"] = system
        else:
            # unsupported / unknown / order...: kept so an agent sees something arrived.
            errors = msg.get("errors") or []
            if errors and isinstance(errors[0], dict):
                event.error_code = str(errors[0].get("code", ""))
                event.error_title = str(errors[0].get("title", ""))
        return event

    def _status(self, status: dict[str, Any], phone_number_id: str) -> InboundEvent:
        if not status.get("id") or not status.get("status"):
            raise ParseError("statuses[] item needs 'id' and 'status'")
        event = InboundEvent(
            kind=EventKind.STATUS,
            provider_message_id=str(status["id"]),
            status=str(status["status"]),
            timestamp=from_unix(status.get("timestamp")),
            extra={"phone_number_id": phone_number_id},
            raw=status,
        )
        if status.get("recipient_id"):
            event.identities = [Identity("phone", phone_from_wa_id(str(status["recipient_id"])), True)]
        for key in ("conversation", "pricing"):
            if key in status:
                event.extra[key] = status[key]
        errors = status.get("errors") or []
        if errors and isinstance(errors[0], dict):
            event.error_code = str(errors[0].get("code", ""))
            event.error_title = str(errors[0].get("title") or errors[0].get("message") or "")
        return event

    # --- outbound -------------------------------------------------------------------------

    def messages_url(self) -> str:
        c = self.config
        return f"{c.base_url}/{c.api_version}/{c.phone_number_id}/messages"

    def build_payload(self, message: OutboundMessage) -> dict[str, Any]:
        to = re.sub(r"\D", "", message.to)
        if not to:
            raise AdapterError(f"recipient {message.to!r} is not a phone number", permanent=True)
        payload: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to}
        if message.reply_to_id:
            payload["context"] = {"message_id": message.reply_to_id}
        if message.template is not None:
            template: dict[str, Any] = {"name": message.template.name,
                                        "language": {"code": message.template.language}}
            if message.template.components:
                template["components"] = list(message.template.components)
            payload.update({"type": "template", "template": template})
        elif message.attachment is not None:
            att = message.attachment
            kind = att.kind if att.kind in MEDIA_TYPES else "document"
            if not att.url:
                raise AdapterError("WhatsApp media needs a public https link", permanent=True)
            media: dict[str, Any] = {"link": att.url}
            if message.text:
                if kind in ("audio", "sticker"):
                    raise text_not_allowed("WhatsApp", kind)
                media["caption"] = message.text
            if kind == "document" and att.filename:
                media["filename"] = att.filename
            payload.update({"type": kind, kind: media})
        elif message.text:
            payload.update({"type": "text", "text": {"preview_url": False, "body": message.text}})
        else:
            raise AdapterError("nothing to send: neither text nor template", permanent=True)
        return payload

    def send(self, message: OutboundMessage) -> DeliveryResult:
        response = call_provider(
            "POST", self.messages_url(), json=self.build_payload(message),
            headers={"Authorization": f"Bearer {self.config.access_token}"},
        )
        body = meta.raise_for_graph_response(response)
        try:
            message_id = body["messages"][0]["id"]
        except (KeyError, IndexError, TypeError) as exc:
            raise AdapterError("WhatsApp accepted the request but returned no message id", permanent=False) from exc
        return DeliveryResult(provider_message_id=str(message_id), raw=body)

    def media_info(self, media_id: str) -> dict[str, Any]:
        """GET /{version}/{media_id}: a short-lived download URL plus mime_type, sha256, file_size."""
        c = self.config
        response = call_provider("GET", f"{c.base_url}/{c.api_version}/{media_id}",
                                 headers={"Authorization": f"Bearer {c.access_token}"})
        return meta.raise_for_graph_response(response)

    def fetch_media(self, attachment: Attachment) -> MediaContent:
        """Look the media id up, then download it; both calls need the access token."""
        info = self.media_info(attachment.media_id)
        if not info.get("url"):
            raise AdapterError(f"media {attachment.media_id} has no download URL", permanent=True)
        media = fetch_media_bytes(str(info["url"]), headers={"Authorization": f"Bearer {self.config.access_token}"})
        return MediaContent(media.content, str(info.get("mime_type") or media.mime_type))
