"""Telegram Bot API adapter.

Webhooks: one ``Update`` per POST (``update_id`` plus one of ``message``, ``edited_message``,
``callback_query``...). Telegram does not sign bodies; ``setWebhook(secret_token=...)`` makes it
send ``X-Telegram-Bot-Api-Secret-Token`` on every request, compared here in constant time.
Send: ``POST {base}/bot<token>/sendMessage`` with ``chat_id`` and ``text``.

Telegram ``message_id`` is unique only inside a chat, so our provider message id is
``"<chat_id>:<message_id>"``; an edited message keeps the id of the original.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlencode

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
    SignatureError,
    call_provider,
    constant_time_equals,
    fetch_media_bytes,
    from_unix,
    get_header,
    load_json,
    require_dict,
    response_json,
)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
SEND_METHODS = {"image": ("sendPhoto", "photo"), "video": ("sendVideo", "video"), "audio": ("sendAudio", "audio"),
                "document": ("sendDocument", "document"), "sticker": ("sendSticker", "sticker")}
_BOT_TOKEN_RE = re.compile(r"^\d+:[A-Za-z0-9_-]{20,}$")
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")  # setWebhook: 1-256 chars, A-Z a-z 0-9 _ -


@dataclass(frozen=True)
class TelegramConfig(AdapterConfig):
    bot_token: str
    secret_token: str
    api_base_url: str = ""

    required: ClassVar[tuple[str, ...]] = ("bot_token", "secret_token")
    secrets: ClassVar[tuple[str, ...]] = ("bot_token", "secret_token")
    default_api_base_url: ClassVar[str] = "https://api.telegram.org"
    provider: ClassVar[str] = "telegram"

    def validate(self) -> None:
        if not _BOT_TOKEN_RE.match(self.bot_token):
            raise ConfigError("bot_token must look like '123456:ABC-DEF...' (from @BotFather)")
        if not _SECRET_RE.match(self.secret_token):
            raise ConfigError("secret_token must be 1-256 characters of A-Z, a-z, 0-9, _ and -")


def message_key(chat_id: Any, message_id: Any) -> str:
    return f"{chat_id}:{message_id}"


class TelegramAdapter:
    kind = "telegram"
    config_class = TelegramConfig

    def __init__(self, config: TelegramConfig) -> None:
        self.config = config

    def verify(self, raw_body: bytes, headers: Mapping[str, str], **context: Any) -> None:
        received = get_header(headers, SECRET_HEADER)
        if not received:
            raise SignatureError(f"missing {SECRET_HEADER} header")
        if not constant_time_equals(received, self.config.secret_token):
            raise SignatureError(f"{SECRET_HEADER} does not match")

    def parse(self, raw_body: bytes, headers: Mapping[str, str] | None = None) -> list[InboundEvent]:
        update = require_dict(load_json(raw_body), "update")
        update_id = update.get("update_id")
        if not isinstance(update_id, int):
            raise ParseError("update_id must be an integer")
        if "message" in update:
            event = self._message(require_dict(update["message"], "message"), EventKind.MESSAGE)
        elif "edited_message" in update:
            event = self._message(require_dict(update["edited_message"], "edited_message"), EventKind.EDIT)
        elif "callback_query" in update:
            event = self._callback_query(require_dict(update["callback_query"], "callback_query"))
        elif "message_reaction" in update and isinstance(update["message_reaction"], dict) \
                and update["message_reaction"].get("user"):
            event = self._reaction(update["message_reaction"])
        else:
            event = InboundEvent(kind=EventKind.OTHER, raw=update,
                                 extra={"update_type": next((k for k in update if k != "update_id"), "")})
        event.event_id = str(update_id)
        return [event]

    def _sender(self, user: Any) -> tuple[list[Identity], str, dict[str, Any]]:
        user = require_dict(user, "from")
        if "id" not in user:
            raise ParseError("from.id is missing")
        name = " ".join(str(user[k]) for k in ("first_name", "last_name") if user.get(k))
        extra = {"username": user["username"]} if user.get("username") else {}
        return [Identity("telegram", str(user["id"]), True)], name, extra

    def _message(self, msg: dict[str, Any], kind: str) -> InboundEvent:
        chat = require_dict(msg.get("chat"), "message.chat")
        if "id" not in chat or "message_id" not in msg:
            raise ParseError("message needs chat.id and message_id")
        identities, name, extra = self._sender(msg.get("from") or chat)
        extra.update({"chat_id": str(chat["id"]), "chat_type": chat.get("type", "")})
        event = InboundEvent(
            kind=kind,
            provider_message_id=message_key(chat["id"], msg["message_id"]),
            identities=identities,
            display_name=name,
            text=str(msg.get("text") or msg.get("caption") or ""),
            timestamp=from_unix(msg.get("edit_date") if kind == EventKind.EDIT else msg.get("date")),
            extra=extra,
            raw=msg,
        )
        reply = msg.get("reply_to_message")
        if isinstance(reply, dict) and "message_id" in reply:
            reply_chat = (reply.get("chat") or {}).get("id", chat["id"])
            event.reply_to_id = message_key(reply_chat, reply["message_id"])
        if isinstance(msg.get("photo"), list) and msg["photo"]:
            largest = max(msg["photo"], key=lambda p: (p.get("file_size") or 0, p.get("width", 0) * p.get("height", 0)))
            event.attachments.append(Attachment(kind="image", media_id=str(largest.get("file_id", "")),
                                                size=largest.get("file_size"), mime_type="image/jpeg"))
        for field_name, att_kind in (("document", "document"), ("audio", "audio"), ("voice", "audio"),
                                     ("video", "video"), ("video_note", "video"), ("animation", "video"),
                                     ("sticker", "sticker")):
            media = msg.get(field_name)
            if isinstance(media, dict):
                event.attachments.append(Attachment(
                    kind=att_kind, media_id=str(media.get("file_id", "")), mime_type=str(media.get("mime_type", "")),
                    filename=str(media.get("file_name", "")), size=media.get("file_size")))
                if field_name == "animation":
                    break  # Telegram also sends the same file as "document"
        if isinstance(msg.get("location"), dict):
            loc = msg["location"]
            venue = msg.get("venue") or {}
            event.location = Location(float(loc["latitude"]), float(loc["longitude"]),
                                      str(venue.get("title", "")), str(venue.get("address", "")))
        if isinstance(msg.get("contact"), dict):
            contact = msg["contact"]
            name = " ".join(str(contact[k]) for k in ("first_name", "last_name") if contact.get(k))
            event.contacts.append(ContactCard(name=name, phones=(str(contact.get("phone_number", "")),)))
        return event

    def _callback_query(self, query: dict[str, Any]) -> InboundEvent:
        identities, name, extra = self._sender(query.get("from"))
        if "id" not in query:
            raise ParseError("callback_query.id is missing")
        event = InboundEvent(kind=EventKind.POSTBACK, provider_message_id=f"callback:{query['id']}",
                             identities=identities, display_name=name, payload=str(query.get("data", "")),
                             extra=extra, raw=query)
        message = query.get("message")
        if isinstance(message, dict) and isinstance(message.get("chat"), dict):
            event.reply_to_id = message_key(message["chat"].get("id"), message.get("message_id"))
            event.extra["chat_id"] = str(message["chat"].get("id"))
        if query.get("inline_message_id"):
            event.extra["inline_message_id"] = query["inline_message_id"]
        return event

    def _reaction(self, reaction: dict[str, Any]) -> InboundEvent:
        identities, name, extra = self._sender(reaction.get("user"))
        chat = require_dict(reaction.get("chat"), "message_reaction.chat")
        emojis = [r.get("emoji", "") for r in reaction.get("new_reaction") or []
                  if isinstance(r, dict) and r.get("type") == "emoji"]
        extra["chat_id"] = str(chat.get("id"))
        # An empty new_reaction means the user removed their reaction.
        return InboundEvent(kind=EventKind.REACTION, identities=identities, display_name=name,
                            reply_to_id=message_key(chat.get("id"), reaction.get("message_id")),
                            emoji=str(emojis[0]) if emojis else "", timestamp=from_unix(reaction.get("date")),
                            extra=extra, raw=reaction)

    # --- outbound -------------------------------------------------------------------------

    def send(self, message: OutboundMessage) -> DeliveryResult:
        if not message.to or not (message.text or message.attachment):
            raise AdapterError("sendMessage needs chat_id and text", permanent=True)
        method = "sendMessage"
        payload: dict[str, Any] = {"chat_id": message.to}
        if message.attachment is not None:
            if not message.attachment.url:
                raise AdapterError("Telegram media needs an http URL (or a file_id)", permanent=True)
            method, field_name = SEND_METHODS.get(message.attachment.kind, ("sendDocument", "document"))
            payload[field_name] = message.attachment.url
            if message.text:
                payload["caption"] = message.text
        else:
            payload["text"] = message.text
        if message.reply_to_id:
            reply_id = message.reply_to_id.rsplit(":", 1)[-1]
            if reply_id.isdigit():
                payload["reply_parameters"] = {"message_id": int(reply_id), "allow_sending_without_reply": True}
        url = f"{self.config.base_url}/bot{self.config.bot_token}/{method}"
        response = call_provider("POST", url, json=payload)
        body = response_json(response)
        if not isinstance(body, dict) or body.get("ok") is not True:
            raise self._error(response.status, body)
        result = body.get("result") or {}
        chat_id = (result.get("chat") or {}).get("id", message.to)
        return DeliveryResult(provider_message_id=message_key(chat_id, result.get("message_id")), raw=body)

    def fetch_media(self, attachment: Attachment) -> MediaContent:
        """getFile, then download from /file/bot<token>/<file_path> (links live at least 1 hour)."""
        base, token = self.config.base_url, self.config.bot_token
        response = call_provider("GET", f"{base}/bot{token}/getFile?{urlencode({'file_id': attachment.media_id})}")
        body = response_json(response)
        if not isinstance(body, dict) or body.get("ok") is not True:
            raise self._error(response.status, body)
        file_path = (body.get("result") or {}).get("file_path")
        if not file_path:
            raise AdapterError("getFile returned no file_path (file too big for the Bot API?)", permanent=True)
        media = fetch_media_bytes(f"{base}/file/bot{token}/{file_path}")
        return MediaContent(media.content, attachment.mime_type or media.mime_type)

    @staticmethod
    def _error(status: int, body: Any) -> AdapterError:
        if not isinstance(body, dict):
            retryable = status in (408, 429) or status >= 500
            return AdapterError(f"Telegram HTTP {status}", permanent=not retryable, status=status)
        code = body.get("error_code", status)
        description = str(body.get("description") or f"Telegram HTTP {status}")
        parameters = body.get("parameters") or {}
        retry_after = parameters.get("retry_after")
        retryable = code == 429 or (isinstance(code, int) and code >= 500)
        message = description
        if code == 403:
            message = f"{description} (the user blocked the bot or never started it)"
        return AdapterError(message, permanent=not retryable, code=code, status=status,
                            retry_after=float(retry_after) if retry_after is not None else None)
