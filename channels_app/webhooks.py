"""Provider webhook endpoints: verify → store raw → 200; processing runs in the background.

    GET  /webhooks/<kind>/<uuid>/   Meta subscription handshake (echo hub.challenge)
    POST /webhooks/<kind>/<uuid>/   a delivery

Answers: unknown inbox or kind mismatch 404; bad signature 403 (nothing stored); malformed
body 400 with the reason; database unavailable 503 (the provider retries); otherwise 200 once
the raw body is committed.
"""
from __future__ import annotations

import logging

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from channels_app.adapters.base import ParseError, SignatureError
from channels_app.models import META_KINDS
from channels_app.services import webhook_event_store
from channels_app.services.inboxes import webhook_receiver

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 30


def _error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status)


def public_url(request: HttpRequest) -> str:
    """The URL the provider called, as it signed it: PUBLIC_BASE_URL + path (+ query) when
    the deployment sits behind a proxy, else what Django sees."""
    base = (getattr(settings, "PUBLIC_BASE_URL", "") or "").rstrip("/")
    if not base:
        return request.build_absolute_uri()
    query = request.META.get("QUERY_STRING", "")
    return base + request.path + (f"?{query}" if query else "")


@csrf_exempt
@require_http_methods(["GET", "POST"])
def webhook_receive(request: HttpRequest, kind: str, inbox_uuid: str) -> HttpResponse:
    try:
        inbox, adapter = webhook_receiver(kind=kind, inbox_uuid=inbox_uuid)
    except DatabaseError:
        logger.exception("webhook %s/%s: database unavailable", kind, inbox_uuid)
        return _unavailable()
    except Exception:
        logger.exception("webhook %s/%s: provider settings are broken", kind, inbox_uuid)
        return _error(503, "inbox_misconfigured", "This inbox cannot receive webhooks right now.")
    if inbox is None:
        return _error(404, "not_found", "No such inbox.")
    if adapter is None:
        return _error(404, "not_found", "This channel does not receive provider webhooks.")

    if request.method == "GET":
        if kind not in META_KINDS or not hasattr(adapter, "handshake"):
            return _error(405, "method_not_allowed", "Use POST.")
        try:
            challenge = adapter.handshake(request.GET)
        except SignatureError as exc:
            return _error(403, "forbidden", exc.message)
        except ParseError as exc:
            return _error(400, "malformed", exc.message)
        return HttpResponse(challenge, content_type="text/plain")

    body = _read_body(request)
    if body is None:
        return _error(413, "too_large", f"The body exceeds {max_body_bytes()} bytes.")
    headers = request.headers
    try:
        adapter.verify(body, headers, url=public_url(request))
    except SignatureError as exc:
        logger.warning("webhook for inbox %s rejected: %s", inbox.pk, exc.message)
        return _error(403, "invalid_signature", exc.message)
    try:
        # Validate now so a malformed body is refused, not parked. An adapter may check more
        # cheaply than it parses (`check_body`, e-mail: the headers), with the same errors.
        getattr(adapter, "check_body", adapter.parse)(body, headers)
    except ParseError as exc:
        return _error(400, "malformed", exc.message)
    try:
        event = webhook_event_store(inbox=inbox, body=body, headers=headers)
    except DatabaseError:
        logger.exception("webhook for inbox %s: database unavailable, asking the provider to retry", inbox.pk)
        return _unavailable()
    return JsonResponse({"ok": True, "event": event.pk})


def max_body_bytes() -> int:
    # Emails with attachments exceed Django's DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) easily; a
    # refused delivery is a lost message, so webhooks have their own, larger limit.
    return int(getattr(settings, "WEBHOOK_MAX_BODY_BYTES", 40 * 1024 * 1024))


def _read_body(request: HttpRequest) -> bytes | None:
    """The raw body, read from the stream (not `request.body`, which enforces
    DATA_UPLOAD_MAX_MEMORY_SIZE); None when larger than WEBHOOK_MAX_BODY_BYTES."""
    limit = max_body_bytes()
    if hasattr(request, "_body"):
        body = request._body
    else:
        try:
            if int(request.META.get("CONTENT_LENGTH") or 0) > limit:
                return None
        except ValueError:
            return None
        body = request.read(limit + 1)
    return None if len(body) > limit else body


def _unavailable() -> JsonResponse:
    response = _error(503, "unavailable", "Temporarily unavailable, retry later.")
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
