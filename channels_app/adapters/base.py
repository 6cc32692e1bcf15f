"""The adapter interface shared by every provider module.

Adapters translate between a provider's wire format and these plain dataclasses. They do
mapping and network I/O only: no ORM, no Django models, no transactions. Errors are raised as
``AdapterError(message, permanent=...)`` so the caller (a Celery task) knows whether to retry.
"""

from __future__ import annotations

import dataclasses
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable
from urllib.parse import urlsplit

from django.http.request import HttpHeaders

if TYPE_CHECKING:
    from channels_app.outbound import HttpResponse

# --- errors ---------------------------------------------------------------------------------


class AdapterError(Exception):
    """A provider interaction failed. ``permanent`` tells the caller not to retry."""

    def __init__(
        self,
        message: str,
        *,
        permanent: bool,
        code: str | int | None = None,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.code = code
        self.status = status
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return not self.permanent


class SignatureError(AdapterError):
    """The request is not authentic (missing/wrong signature or token). Never retryable."""

    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=True)


class ParseError(AdapterError):
    """The body is not what the provider documents. Carries a human-readable reason."""

    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=True)


class ConfigError(ValueError):
    """Per-inbox provider configuration is invalid."""


# --- inbound --------------------------------------------------------------------------------


class EventKind:
    MESSAGE = "message"
    EDIT = "edit"
    STATUS = "status"
    POSTBACK = "postback"  # button / quick-reply / list-reply / callback_query
    REACTION = "reaction"
    FOLLOW = "follow"
    UNFOLLOW = "unfollow"
    UNSEND = "unsend"
    OTHER = "other"  # a documented event we do not act on (kept for the raw log)


class DeliveryStatus:
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"


@dataclass(frozen=True)
class Identity:
    """How the provider identifies the sender. ``verified``: the provider vouches for it."""

    kind: str  # "phone", "email", "messenger", "instagram", "telegram", "line", "webchat", "api"
    value: str
    verified: bool = True


@dataclass(frozen=True)
class Attachment:
    kind: str  # image, audio, video, document, sticker, file, location-less media
    media_id: str = ""  # provider media/file id (download later, in the worker)
    url: str = ""
    mime_type: str = ""
    filename: str = ""
    size: int | None = None
    sha256: str = ""
    caption: str = ""
    content: bytes | None = None  # only for channels that deliver the bytes inline (email)


@dataclass(frozen=True)
class Location:
    latitude: float
    longitude: float
    name: str = ""
    address: str = ""


@dataclass(frozen=True)
class ContactCard:
    name: str
    phones: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()


@dataclass
class InboundEvent:
    """One thing that happened at the provider: a message, a status update, a button press..."""

    kind: str
    provider_message_id: str = ""
    identities: list[Identity] = field(default_factory=list)
    display_name: str = ""
    text: str = ""
    attachments: list[Attachment] = field(default_factory=list)
    location: Location | None = None
    contacts: list[ContactCard] = field(default_factory=list)
    reply_to_id: str = ""
    timestamp: datetime | None = None
    # postback / button reply
    payload: str = ""
    # reaction
    emoji: str = ""
    # status events
    status: str = ""
    error_code: str = ""
    error_title: str = ""
    # provider event id for idempotent processing (LINE webhookEventId, Telegram update_id)
    event_id: str = ""
    is_redelivery: bool = False
    # provider-specific extras (reply token, conversation id, thread headers...)
    extra: dict[str, Any] = field(default_factory=dict)
    raw: Any = None


# --- outbound -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    """A pre-approved provider template (WhatsApp outside the 24-hour window)."""

    name: str
    language: str
    components: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class OutboundMessage:
    to: str  # provider address: wa_id / PSID / chat_id / LINE userId / phone / email
    text: str = ""
    template: Template | None = None
    reply_to_id: str = ""  # provider message id being answered (context / threading)
    reply_token: str = ""  # LINE reply token
    idempotency_key: str = ""  # stable per outbound message (our message uuid)
    subject: str = ""  # email
    references: tuple[str, ...] = ()  # email threading
    metadata: dict[str, Any] = field(default_factory=dict)
    # At most one attachment per outbound message (one provider message each): ``url`` must be
    # fetchable by the provider (e.g. a short-lived signed link); email needs ``content``.
    attachment: Attachment | None = None


def text_not_allowed(provider: str, kind: str) -> AdapterError:
    return AdapterError(f"{provider} cannot send text together with a {kind}: send the text as its own message",
                        permanent=True)


@dataclass(frozen=True)
class MediaContent:
    """Bytes of an inbound attachment downloaded from the provider (in the worker, not the webhook)."""

    content: bytes
    mime_type: str = ""


MAX_MEDIA_BYTES = 25 * 1024 * 1024


def fetch_media_bytes(url: str, *, headers: Mapping[str, str] | None = None,
                      basic_auth: tuple[str, str] | None = None, max_bytes: int = MAX_MEDIA_BYTES) -> MediaContent:
    response = call_provider("GET", url, headers={"Accept": "*/*", **(headers or {})}, basic_auth=basic_auth,
                             max_response_bytes=max_bytes)
    if not response.ok:
        raise http_status_error(response.status, f"media download answered HTTP {response.status}")
    return MediaContent(response.body, response.headers.get("content-type", "").split(";")[0].strip())


@dataclass(frozen=True)
class DeliveryResult:
    provider_message_id: str
    status: str = DeliveryStatus.SENT
    raw: Any = None


# --- config ---------------------------------------------------------------------------------


def _check_base_url(value: str, field_name: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{field_name} must be an absolute http(s) URL, got {value!r}")
    if parts.query or parts.fragment:
        raise ConfigError(f"{field_name} must not contain a query or fragment")
    return value.rstrip("/")


@dataclass(frozen=True)
class AdapterConfig:
    """Base for typed per-inbox config. Subclasses list required and secret fields."""

    required: ClassVar[tuple[str, ...]] = ()
    secrets: ClassVar[tuple[str, ...]] = ()
    default_api_base_url: ClassVar[str] = ""
    provider: ClassVar[str] = ""  # key in settings.CHANNEL_API_BASE_URLS

    def __post_init__(self) -> None:
        for name in self.required:
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"{name} is required")
        base = getattr(self, "api_base_url", "")
        if base:
            object.__setattr__(self, "api_base_url", _check_base_url(base, "api_base_url"))
        self.validate()

    def validate(self) -> None:  # per-provider rules
        return None

    @property
    def base_url(self) -> str:
        """Per-inbox ``api_base_url``, else ``settings.CHANNEL_API_BASE_URLS[provider]`` (e.g. a
        staging proxy for every inbox), else the provider's real API."""
        own = getattr(self, "api_base_url", "")
        if own:
            return own
        from django.conf import settings

        configured = (getattr(settings, "CHANNEL_API_BASE_URLS", None) or {}).get(self.provider, "")
        return _check_base_url(configured, f"CHANNEL_API_BASE_URLS[{self.provider!r}]") if configured \
            else self.default_api_base_url

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AdapterConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"unknown field(s): {', '.join(unknown)}")
        return cls(**dict(data))

    def redacted(self) -> dict[str, Any]:
        """Representation safe to show back: secrets reduced to their last 4 characters."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in self.secrets and value:
                out[f.name] = "…" + str(value)[-4:] if len(str(value)) > 8 else "…"
            else:
                out[f.name] = value
        return out


# --- the interface --------------------------------------------------------------------------


@runtime_checkable
class ChannelAdapter(Protocol):
    kind: str

    def verify(self, raw_body: bytes, headers: Mapping[str, str], **context: Any) -> None: ...

    def parse(self, raw_body: bytes, headers: Mapping[str, str]) -> list[InboundEvent]: ...

    def send(self, message: OutboundMessage) -> DeliveryResult: ...


# --- helpers shared by adapters -------------------------------------------------------------


def get_header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup that works for dicts, Django's HttpHeaders and email.Message."""
    value = headers.get(name)
    if value is not None or isinstance(headers, (Message, HttpHeaders)):
        # Both look up case-insensitively already. Walking an email.Message's items() parses
        # every header through the policy's registry: per missing header, that was a quarter
        # of an e-mail's processing time.
        return value
    lowered = name.lower()
    for key, val in headers.items():
        if key.lower() == lowered:
            return val
    return None


def constant_time_equals(a: str | bytes, b: str | bytes) -> bool:
    if isinstance(a, str):
        a = a.encode()
    if isinstance(b, str):
        b = b.encode()
    return hmac.compare_digest(a, b)


def load_json(raw_body: bytes) -> Any:
    try:
        return json.loads(raw_body.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ParseError(f"body is not UTF-8: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise ParseError(f"body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc


def require_dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ParseError(f"{what} must be a JSON object, got {type(value).__name__}")
    return value


def require_list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise ParseError(f"{what} must be a JSON array, got {type(value).__name__}")
    return value


def from_unix(seconds: Any) -> datetime | None:
    if seconds in (None, ""):
        return None
    try:
        return datetime.fromtimestamp(int(seconds), tz=UTC)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ParseError(f"invalid timestamp {seconds!r}") from exc


def from_unix_ms(millis: Any) -> datetime | None:
    if millis in (None, ""):
        return None
    try:
        return datetime.fromtimestamp(int(millis) / 1000, tz=UTC)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ParseError(f"invalid timestamp {millis!r}") from exc


def http_status_error(status: int, message: str, *, code: str | int | None = None,
                      retry_after: float | None = None) -> AdapterError:
    """Default mapping: 408/429/5xx are retryable, other 4xx permanent."""
    retryable = status in (408, 425, 429) or status >= 500
    return AdapterError(message, permanent=not retryable, code=code, status=status, retry_after=retry_after)


def call_provider(method: str, url: str, **kwargs: Any) -> HttpResponse:
    """outbound.request with network failures mapped to AdapterError (blocked: permanent)."""
    from channels_app import outbound

    try:
        return outbound.request(method, url, **kwargs)
    except outbound.OutboundBlocked as exc:
        raise AdapterError(str(exc), permanent=True) from exc
    except outbound.OutboundError as exc:
        raise AdapterError(str(exc), permanent=False) from exc


def response_json(response: HttpResponse) -> Any:
    """The provider's JSON answer, or None when the body is not JSON."""
    try:
        return response.json()
    except (ValueError, UnicodeDecodeError):
        return None
