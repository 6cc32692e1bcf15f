"""Twilio Programmable Messaging adapter (SMS, and WhatsApp through Twilio).

Webhooks are ``application/x-www-form-urlencoded``. ``X-Twilio-Signature`` is
``Base64(HMAC-SHA1(auth_token, url + concat(sorted(name + value))))`` where ``url`` is the full
URL Twilio was configured with. The caller passes that URL (``PUBLIC_BASE_URL`` + path, or the
request URL) because behind a proxy the request URL is not what Twilio signed. Like the official
SDK, the URL is tried with and without the default port, and JSON bodies are checked with the
``bodySHA256`` query parameter.
Send: ``POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json`` with HTTP Basic auth.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import parse_qs, parse_qsl, urlsplit, urlunsplit

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
    Location,
    MediaContent,
    OutboundMessage,
    ParseError,
    SignatureError,
    call_provider,
    constant_time_equals,
    fetch_media_bytes,
    get_header,
    response_json,
)

SIGNATURE_HEADER = "X-Twilio-Signature"
INBOUND_STATUSES = {"received", "receiving"}
STATUS_MAP = {
    "accepted": DeliveryStatus.QUEUED,
    "scheduled": DeliveryStatus.QUEUED,
    "queued": DeliveryStatus.QUEUED,
    "sending": DeliveryStatus.QUEUED,
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.READ,
    "undelivered": DeliveryStatus.FAILED,
    "failed": DeliveryStatus.FAILED,
    "canceled": DeliveryStatus.FAILED,
}
# Titles from Twilio's error dictionary for the codes agents meet most often.
ERROR_TITLES = {
    "21211": "Invalid 'To' phone number",
    "21408": "Permission to send an SMS has not been enabled for the region",
    "21610": "Attempt to send to unsubscribed recipient",
    "21614": "'To' number is not a valid mobile number",
    "30003": "Unreachable destination handset",
    "30004": "Message blocked",
    "30005": "Unknown destination handset",
    "30006": "Landline or unreachable carrier",
    "30007": "Message filtered by the carrier",
    "30008": "Unknown error",
    "63016": "Outside the WhatsApp 24-hour window: only a template can be sent",
}
# REST error codes that are worth retrying (rate limits, queue overflow, service trouble).
RETRYABLE_CODES = {20429, 20500, 20503, 30001}
_SID_RE = re.compile(r"^AC[0-9a-fA-F]{32}$")


@dataclass(frozen=True)
class TwilioConfig(AdapterConfig):
    account_sid: str
    auth_token: str
    from_number: str  # "+6281...", "whatsapp:+1415...", or a Messaging Service SID "MG..."
    api_base_url: str = ""

    required: ClassVar[tuple[str, ...]] = ("account_sid", "auth_token", "from_number")
    secrets: ClassVar[tuple[str, ...]] = ("auth_token",)
    default_api_base_url: ClassVar[str] = "https://api.twilio.com"
    provider: ClassVar[str] = "twilio_sms"

    def validate(self) -> None:
        if not _SID_RE.match(self.account_sid):
            raise ConfigError("account_sid must be 'AC' followed by 32 hex characters")
        sender = self.from_number.removeprefix("whatsapp:")
        if not (re.match(r"^\+[1-9]\d{6,14}$", sender) or re.match(r"^MG[0-9a-fA-F]{32}$", sender)):
            raise ConfigError("from_number must be an E.164 number (optionally 'whatsapp:'-prefixed) or an MG... sid")

    @property
    def is_whatsapp(self) -> bool:
        return self.from_number.startswith("whatsapp:")


# --- signature ------------------------------------------------------------------------------


def compute_signature(url: str, params: Iterable[tuple[str, str]] | Mapping[str, str], auth_token: str) -> str:
    grouped: dict[str, set[str]] = {}
    items = params.items() if isinstance(params, Mapping) else params
    for name, value in items:
        grouped.setdefault(name, set()).add(value)
    data = url + "".join(name + value for name in sorted(grouped) for value in sorted(grouped[name]))
    digest = hmac.new(auth_token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def _url_variants(url: str) -> list[str]:
    """The URL as signed may or may not include the port (the official SDKs accept both)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        without = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
        return [url, without]
    default_port = 443 if parts.scheme == "https" else 80
    with_port = urlunsplit((parts.scheme, f"{host}:{default_port}", parts.path, parts.query, parts.fragment))
    return [url, with_port]


def verify_request(url: str, raw_body: bytes, headers: Mapping[str, str], auth_token: str) -> None:
    received = get_header(headers, SIGNATURE_HEADER)
    if not received:
        raise SignatureError(f"missing {SIGNATURE_HEADER} header")
    query = parse_qs(urlsplit(url).query)
    if "bodySHA256" in query:
        # JSON (non-form) webhooks: the URL alone is signed and it carries the body's hash.
        if not constant_time_equals(hashlib.sha256(raw_body).hexdigest(), query["bodySHA256"][0]):
            raise SignatureError("bodySHA256 does not match the body")
        params: list[tuple[str, str]] = []
    else:
        params = form_params(raw_body)
    for candidate in _url_variants(url):
        if constant_time_equals(compute_signature(candidate, params, auth_token), received.strip()):
            return
    raise SignatureError(f"{SIGNATURE_HEADER} does not match (signed URL: {url})")


def form_params(raw_body: bytes) -> list[tuple[str, str]]:
    try:
        text = raw_body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError("form body is not UTF-8") from exc
    try:
        return parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text))
    except ValueError as exc:
        raise ParseError(f"body is not application/x-www-form-urlencoded: {exc}") from exc


def _address(value: str) -> tuple[str, str]:
    """'whatsapp:+316...' -> ('whatsapp', '+316...'); '+1925...' -> ('sms', '+1925...')."""
    if ":" in value:
        channel, _, address = value.partition(":")
        return channel, address
    return "sms", value


class TwilioAdapter:
    kind = "twilio_sms"
    config_class = TwilioConfig

    def __init__(self, config: TwilioConfig) -> None:
        self.config = config

    def verify(self, raw_body: bytes, headers: Mapping[str, str], *, url: str = "", **context: Any) -> None:
        if not url:
            raise ValueError("Twilio verification needs the public URL the webhook was configured with")
        verify_request(url, raw_body, headers, self.config.auth_token)

    def parse(self, raw_body: bytes, headers: Mapping[str, str] | None = None) -> list[InboundEvent]:
        pairs = form_params(raw_body)
        params = dict(pairs)
        sid = params.get("MessageSid") or params.get("SmsMessageSid") or params.get("SmsSid")
        if not sid:
            raise ParseError("MessageSid is missing: not a Twilio messaging webhook")
        status = (params.get("MessageStatus") or params.get("SmsStatus") or "").lower()
        if status in INBOUND_STATUSES or (not status and "Body" in params):
            return [self._inbound(params, sid)]
        if not status:
            raise ParseError("neither MessageStatus nor an inbound Body: unknown Twilio callback")
        return [self._status(params, sid, status)]

    def _inbound(self, params: dict[str, str], sid: str) -> InboundEvent:
        sender = params.get("From", "")
        if not sender:
            raise ParseError("From is missing")
        channel, address = _address(sender)
        event = InboundEvent(
            kind=EventKind.MESSAGE,
            provider_message_id=sid,
            identities=[Identity("phone", address, True)],
            display_name=params.get("ProfileName", ""),
            text=params.get("Body", ""),
            reply_to_id=params.get("OriginalRepliedMessageSid", ""),
            extra={"channel": channel, "to": params.get("To", ""), "account_sid": params.get("AccountSid", "")},
            raw=params,
        )
        if params.get("WaId"):
            event.extra["wa_id"] = params["WaId"]
        try:
            num_media = int(params.get("NumMedia") or 0)
        except ValueError as exc:
            raise ParseError("NumMedia must be an integer") from exc
        for i in range(num_media):
            url = params.get(f"MediaUrl{i}", "")
            mime = params.get(f"MediaContentType{i}", "")
            major = mime.split("/", 1)[0]
            kind = major if major in ("image", "audio", "video") else "document"
            event.attachments.append(Attachment(kind=kind, url=url, mime_type=mime,
                                                media_id=url.rstrip("/").rsplit("/", 1)[-1] if url else ""))
        if params.get("Latitude") and params.get("Longitude"):
            try:
                event.location = Location(float(params["Latitude"]), float(params["Longitude"]),
                                          params.get("Label", ""), params.get("Address", ""))
            except ValueError as exc:
                raise ParseError("Latitude/Longitude must be numbers") from exc
        if params.get("ButtonPayload"):
            event.kind = EventKind.POSTBACK
            event.payload = params["ButtonPayload"]
            event.text = params.get("ButtonText", event.text)
        return event

    def _status(self, params: dict[str, str], sid: str, status: str) -> InboundEvent:
        recipient = params.get("To", "")
        channel, address = _address(recipient) if recipient else ("sms", "")
        code = params.get("ErrorCode", "")
        event = InboundEvent(
            kind=EventKind.STATUS,
            provider_message_id=sid,
            status=STATUS_MAP.get(status, status),
            identities=[Identity("phone", address, True)] if address else [],
            error_code=code,
            error_title=params.get("ErrorMessage") or ERROR_TITLES.get(code, ""),
            extra={"provider_status": status, "channel": params.get("ChannelPrefix", channel)},
            raw=params,
        )
        return event

    # --- outbound -------------------------------------------------------------------------

    def send(self, message: OutboundMessage) -> DeliveryResult:
        if not message.to or not (message.text or message.attachment):
            raise AdapterError("Twilio send needs To and Body or media", permanent=True)
        c = self.config
        to = message.to
        if c.is_whatsapp and not to.startswith("whatsapp:"):
            to = "whatsapp:" + to
        form: list[tuple[str, str]] = [("To", to)]
        sender = c.from_number.removeprefix("whatsapp:")
        if sender.startswith("MG"):
            form.append(("MessagingServiceSid", sender))
        else:
            form.append(("From", c.from_number))
        if message.text:
            form.append(("Body", message.text))
        if message.attachment is not None:
            if not message.attachment.url:
                raise AdapterError("Twilio media needs a public URL", permanent=True)
            form.append(("MediaUrl", message.attachment.url))
        url = f"{c.base_url}/2010-04-01/Accounts/{c.account_sid}/Messages.json"
        response = call_provider("POST", url, form=form, basic_auth=(c.account_sid, c.auth_token))
        body = response_json(response)
        if not response.ok:
            raise self._error(response.status, body)
        if not isinstance(body, dict) or not body.get("sid"):
            raise AdapterError("Twilio accepted the request but returned no sid", permanent=False)
        return DeliveryResult(provider_message_id=str(body["sid"]),
                              status=STATUS_MAP.get(str(body.get("status", "")), DeliveryStatus.QUEUED), raw=body)

    def fetch_media(self, attachment: Attachment) -> MediaContent:
        """MediaUrlN may require HTTP Basic auth; Twilio redirects to its CDN (credentials are
        not forwarded across origins)."""
        return fetch_media_bytes(attachment.url, basic_auth=(self.config.account_sid, self.config.auth_token))

    @staticmethod
    def _error(status: int, body: Any) -> AdapterError:
        code = body.get("code") if isinstance(body, dict) else None
        message = str(body.get("message")) if isinstance(body, dict) and body.get("message") else f"Twilio HTTP {status}"
        retryable = status in (429, 503) or status >= 500 or code in RETRYABLE_CODES
        return AdapterError(f"{message} (code {code})" if code else message,
                            permanent=not retryable, code=code, status=status)


TwilioSmsAdapter = TwilioAdapter  # the name other modules look up for kind "twilio_sms"
