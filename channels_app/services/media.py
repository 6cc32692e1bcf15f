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


# --- outbound attachments (agents' replies) -----------------------------------------------

MEDIA_URL_SALT = "channels_app.media"


@dataclass(frozen=True)
class OutboundMediaRule:
    """What one provider can send from the composer (see the adapter's `send`)."""

    kinds: frozenset[str]
    text_allowed: bool = True  # the reply's text can travel with the file (caption / same request)
    image_types: tuple[str, ...] = ()  # only these image types go as images; others as documents
    needs_public_url: bool = True  # the provider downloads the file from us


ALL_KINDS = frozenset({"image", "video", "audio", "document"})
OUTBOUND_MEDIA_RULES: dict[str, OutboundMediaRule] = {
    # WhatsApp Cloud API: image (JPEG/PNG), video, audio (no caption), document, by `link`.
    "whatsapp": OutboundMediaRule(ALL_KINDS, image_types=("image/jpeg", "image/png")),
    # Send API: attachment {type, payload.url}; text must be its own message.
    "messenger": OutboundMediaRule(ALL_KINDS, text_allowed=False),
    "instagram": OutboundMediaRule(ALL_KINDS, text_allowed=False),
    # Bot API sendPhoto / sendVideo / sendAudio / sendDocument with a URL and a caption.
    "telegram": OutboundMediaRule(ALL_KINDS, image_types=("image/jpeg", "image/png", "image/webp")),
    # Messaging API image message (originalContentUrl/previewImageUrl, JPEG or PNG over https).
    "line": OutboundMediaRule(frozenset({"image"}), image_types=("image/jpeg", "image/png")),
    # Messages resource MediaUrl (MMS / WhatsApp via Twilio).
    "twilio_sms": OutboundMediaRule(ALL_KINDS),
    # A MIME attachment carrying the bytes.
    "email": OutboundMediaRule(ALL_KINDS, needs_public_url=False),
    # The integrator's callback gets the signed URL.
    "api": OutboundMediaRule(ALL_KINDS),
    # The visitor gets a link in the message.
    "webchat": OutboundMediaRule(ALL_KINDS, needs_public_url=False),
}
# Touchpoints without a provider keep the file with the logged call or visit.
LOG_ONLY_MEDIA_KINDS = frozenset({"voice", "in_person"})


def attachment_kind_for(mime_type: str) -> str:
    major = mime_type.split("/", 1)[0]
    return major if major in ("image", "video", "audio") else "document"


def upload_check(*, filename: str, size: int, mime_type: str) -> str:
    """The clean MIME type of an agent's upload; raises ValidationError with the reason the
    agent can act on (too big, type not accepted)."""
    from django.core.exceptions import ValidationError
    from django.template.defaultfilters import filesizeformat
    from django.utils.translation import gettext as _

    mime_type = (mime_type or mimetypes.guess_type(filename)[0] or "application/octet-stream").split(";")[0].strip().lower()
    if size > max_attachment_bytes():
        raise ValidationError(_("%(name)s is %(size)s: attachments may be at most %(max)s.") % {
            "name": filename, "size": filesizeformat(size), "max": filesizeformat(max_attachment_bytes())})
    if size == 0:
        raise ValidationError(_("%(name)s is empty.") % {"name": filename})
    if not allowed_type(mime_type):
        raise ValidationError(_("Files of type %(type)s cannot be sent.") % {"type": mime_type})
    return mime_type


def outbound_attachment_check(*, inbox_kind: str, inbox_label: str, items: list[dict[str, Any]], has_text: bool,
                              private: bool) -> None:
    """Refuse, before anything is queued, what the chosen channel cannot deliver, naming why."""
    from django.core.exceptions import ValidationError
    from django.utils.translation import gettext as _

    if not items or private or inbox_kind in LOG_ONLY_MEDIA_KINDS:
        return
    if len(items) > 1:
        raise ValidationError({"attachment": [_("Send one file per reply.")]})
    rule = OUTBOUND_MEDIA_RULES.get(inbox_kind)
    if rule is None:
        raise ValidationError({"attachment": [_("%(channel)s cannot send files.") % {"channel": inbox_label}]})
    kind = items[0].get("kind", "document")
    if kind not in rule.kinds:
        raise ValidationError({"attachment": [_("%(channel)s can only send images (JPEG or PNG) from here.")
                                              % {"channel": inbox_label}]})
    if kind == "image" and rule.image_types and items[0].get("mime_type") not in rule.image_types \
            and "document" not in rule.kinds:
        raise ValidationError({"attachment": [_("%(channel)s only accepts JPEG or PNG images.")
                                              % {"channel": inbox_label}]})
    if has_text and not rule.text_allowed:
        raise ValidationError({"attachment": [_(
            "%(channel)s cannot send text together with a file: send the file alone, then the text."
        ) % {"channel": inbox_label}]})
    if rule.needs_public_url and not media_public_base(items[0]).startswith("https://"):
        raise ValidationError({"attachment": [_(
            "%(channel)s downloads files from this platform over https: set PUBLIC_BASE_URL to the "
            "platform's public https address."
        ) % {"channel": inbox_label}]})


def media_public_base(item: dict[str, Any] | None = None) -> str:
    base = (getattr(settings, "PUBLIC_BASE_URL", "") or "").rstrip("/")
    return base or str((item or {}).get("public_base", "")).rstrip("/")


def outbound_attachment_store(*, inbox_uuid: str, filename: str, content: Any, size: int, mime_type: str,
                              public_base: str = "") -> dict[str, Any]:
    """Keep an agent's upload in Django storage (before the message exists: under an outbound
    folder of the inbox); returns the attachment item for `Message.attachments`."""
    import uuid as uuidlib

    mime_type = upload_check(filename=filename, size=size, mime_type=mime_type)
    name = _SAFE.sub("_", filename or "")[:80].strip("._") or f"attachment{mimetypes.guess_extension(mime_type) or ''}"
    path = default_storage.save(f"channels/{inbox_uuid}/outbound/{uuidlib.uuid4().hex}/{name}", content)
    kind = attachment_kind_for(mime_type)
    return {"kind": kind, "stored": path, "mime_type": mime_type, "size": size, "filename": filename[:200] or name,
            "public_base": public_base.rstrip("/")}


def signed_media_url(*, item: dict[str, Any], max_age: int | None = None) -> str:
    """An unguessable, expiring URL a provider (or a web chat visitor) fetches the file from."""
    from django.core import signing
    from django.urls import reverse

    max_age = int(max_age or getattr(settings, "CHANNEL_MEDIA_URL_MAX_AGE", 3600))
    token = signing.dumps({"p": item["stored"], "m": max_age}, salt=MEDIA_URL_SALT, compress=True)
    return media_public_base(item) + reverse("channels_app:media_signed", args=[token])


def signed_media_path(token: str) -> str | None:
    """The stored path a signed URL names, or None when forged or expired."""
    from django.core import signing

    try:
        unverified = signing.loads(token, salt=MEDIA_URL_SALT)  # signature checked; age below
        data = signing.loads(token, salt=MEDIA_URL_SALT, max_age=int(unverified.get("m", 3600)))
    except (signing.BadSignature, AttributeError, TypeError, ValueError):
        return None
    path = data.get("p") if isinstance(data, dict) else None
    return path if isinstance(path, str) and path.startswith("channels/") else None


def outbound_attachment(message: Message) -> Attachment | None:
    """The first stored attachment of an outbound message as the adapter needs it: a signed URL
    for providers that download it, the bytes for email. Never raises: a file that cannot be read
    leaves `content` empty and the adapter reports why."""
    if message.direction != "outbound":
        return None
    item = next((a for a in message.attachments if a.get("stored")), None)
    if item is None:
        return None
    content = None
    if message.inbox.kind == "email":
        try:
            with default_storage.open(item["stored"], "rb") as handle:
                content = handle.read()
        except OSError:
            logger.warning("attachment %s of message %s is missing", item["stored"], message.pk)
    kind = item.get("kind", "document")
    rule = OUTBOUND_MEDIA_RULES.get(message.inbox.kind)
    if kind == "image" and rule is not None and rule.image_types and item.get("mime_type") not in rule.image_types:
        kind = "document"
    url = signed_media_url(item=item) if media_public_base(item) else ""
    return Attachment(kind=kind, url=url, mime_type=item.get("mime_type", ""), filename=item.get("filename", ""),
                      size=item.get("size"), content=content)
