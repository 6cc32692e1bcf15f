"""Inbound attachments: download from the provider in the worker, keep them in Django storage.

The webhook only carries media ids (WhatsApp, Telegram, LINE) or provider URLs (Twilio); the
bytes are fetched after commit by `message_media_fetch_task`, outside any transaction, then
stored under ``channels/<inbox uuid>/<message uuid>/`` and served only to agents who may see the
conversation (`views.attachment_download`).
"""
from __future__ import annotations

import logging
import mimetypes
import re
from dataclasses import dataclass, fields
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from channels_app.adapters.base import AdapterError, Attachment, MediaContent
from channels_app.models import Message
from channels_app.services.inboxes import inbox_adapter

logger = logging.getLogger(__name__)

FETCHABLE_KINDS = frozenset({"image", "audio", "video", "document", "file"})
DEFAULT_ALLOWED_TYPES = (
    "image/", "audio/", "video/", "application/pdf", "text/plain", "text/csv",
    "application/msword", "application/vnd.openxmlformats-officedocument.",
    "application/vnd.ms-excel", "application/zip", "application/octet-stream",
)
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def max_attachment_bytes() -> int:
    return int(getattr(settings, "CHANNEL_ATTACHMENT_MAX_BYTES", 25 * 1024 * 1024))


# Types that can run script when opened from our origin, whatever the allow list says.
ACTIVE_CONTENT_TYPES = ("image/svg+xml", "text/html", "application/xhtml+xml", "text/xml", "application/xml",
                        "application/javascript", "text/javascript")


def allowed_type(mime_type: str) -> bool:
    mime_type = mime_type.split(";", 1)[0].strip().lower()
    if mime_type in ACTIVE_CONTENT_TYPES:
        return False
    allowed = tuple(getattr(settings, "CHANNEL_ATTACHMENT_ALLOWED_TYPES", DEFAULT_ALLOWED_TYPES))
    return any(mime_type.startswith(prefix) for prefix in allowed)


def attachments_to_fetch(message: Message) -> list[int]:
    return [
        index for index, item in enumerate(message.attachments)
        if (item.get("inline") or (item.get("kind") in FETCHABLE_KINDS and (item.get("media_id") or item.get("url"))))
        and not item.get("stored") and not item.get("error")
    ]


def schedule_fetch(message: Message) -> None:
    if attachments_to_fetch(message):
        from channels_app.tasks import message_media_fetch_task

        transaction.on_commit(lambda: message_media_fetch_task.delay(message.pk), robust=True)


@dataclass
class FetchOutcome:
    stored: int = 0
    failed: int = 0
    retry: bool = False


def _attachment(item: dict[str, Any]) -> Attachment:
    names = {f.name for f in fields(Attachment)}
    return Attachment(**{k: v for k, v in item.items() if k in names and k != "content"})


def _path(message: Message, index: int, item: dict[str, Any], mime_type: str) -> str:
    name = _SAFE.sub("_", item.get("filename") or "")[:80].strip("._")
    if not name:
        name = f"attachment{mimetypes.guess_extension(mime_type) or ''}"
    return f"channels/{message.inbox.uuid}/{message.uuid}/{index}-{name}"


def message_media_fetch(*, message_id: int, final_attempt: bool = False) -> FetchOutcome:
    """Download every not-yet-stored attachment of an inbound message. Network I/O happens
    outside transactions; each result is saved on its own. Retryable provider errors leave the
    attachment for the next attempt (`retry`), unless this is the final one."""
    outcome = FetchOutcome()
    message = Message.objects.select_related("inbox", "webhook_event").filter(pk=message_id).first()
    if message is None:
        return outcome
    adapter = inbox_adapter(inbox=message.inbox)
    if adapter is None:
        return outcome
    for index in attachments_to_fetch(message):
        item = message.attachments[index]
        if not item.get("inline") and not hasattr(adapter, "fetch_media"):
            continue  # e.g. an integrator's public URL: linked, not copied
        result: dict[str, Any]
        try:
            media = _inline_content(message, adapter, index) if item.get("inline") else adapter.fetch_media(_attachment(item))
        except AdapterError as exc:
            if exc.retryable and not final_attempt:
                outcome.retry = True
                continue
            result = {"error": exc.message[:300]}
        else:
            mime_type = media.mime_type or item.get("mime_type", "") or "application/octet-stream"
            if len(media.content) > max_attachment_bytes():
                result = {"error": f"larger than {max_attachment_bytes()} bytes"}
            elif not allowed_type(mime_type):
                result = {"error": f"type {mime_type} is not accepted"}
            else:
                path = default_storage.save(_path(message, index, item, mime_type), ContentFile(media.content))
                result = {"stored": path, "mime_type": mime_type, "size": len(media.content)}
        _attachment_update(message_id=message.pk, index=index, values=result)
        if "stored" in result:
            outcome.stored += 1
        else:
            outcome.failed += 1
    return outcome


def _inline_content(message: Message, adapter: Any, index: int) -> MediaContent:
    """Bytes delivered inside the webhook itself (email MIME parts): parse the stored raw
    delivery again rather than keeping binary data in the message row."""
    event = message.webhook_event
    if event is None:
        raise AdapterError("the raw delivery holding this attachment is no longer kept", permanent=True)
    for item in adapter.parse(bytes(event.body), event.headers):
        if item.provider_message_id == message.provider_message_id and index < len(item.attachments):
            attachment = item.attachments[index]
            if attachment.content is not None:
                return MediaContent(attachment.content, attachment.mime_type)
    raise AdapterError("the attachment is not in the raw delivery", permanent=True)


@transaction.atomic
def _attachment_update(*, message_id: int, index: int, values: dict[str, Any]) -> None:
    message = Message.objects.select_for_update().get(pk=message_id)
    attachments = list(message.attachments)
    if index < len(attachments):
        attachments[index] = {**attachments[index], **values}
        message.attachments = attachments
        message.save(update_fields=["attachments"])


def attachments_delete(*, attachments: list[dict[str, Any]]) -> int:
    deleted = 0
    for item in attachments:
        path = item.get("stored")
        if path and default_storage.exists(path):
            default_storage.delete(path)
            deleted += 1
    return deleted
