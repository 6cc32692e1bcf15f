"""`Idempotency-Key` on API POSTs: a retried request gets the original response, not a second
side effect.

A middleware limited to POSTs under /api/v1/ (so no app's views change). For a signed-in or
Bearer-token request carrying the header:

- first time: the key is reserved (IdempotencyRecord, unique per user + key), the view runs,
  and its status and body are stored for 24 hours;
- same key, same method, path and body: the stored response is replayed with
  `Idempotent-Replayed: true`;
- same key, different request: 422 in the common error shape;
- same key while the first request is still running: 409 (a reservation older than five
  minutes is taken to be from a crashed worker and released).

5xx and 429 responses are not stored (nothing was done, or we do not know): the reservation is
released so the client can retry with the same key.
"""
from __future__ import annotations

import hashlib
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.http import HttpResponse, JsonResponse
from django.utils import timezone

from cxplatform.api.errors import error_body
from cxplatform.api.permissions import API_PREFIX, bearer_token_for

HEADER = "Idempotency-Key"
TTL = timedelta(hours=24)
MAX_KEY_LENGTH = 255
STALE_AFTER = timedelta(minutes=5)


def _request_hash(request) -> str:
    digest = hashlib.sha256()
    digest.update(request.method.encode() + b"\n" + request.get_full_path().encode() + b"\n")
    digest.update(request.body)
    return digest.hexdigest()


def _user_for(request):
    token = bearer_token_for(request)
    if token is not None:
        return token.user
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and not request.headers.get("Authorization"):
        return user
    return None


class IdempotencyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        key = request.headers.get(HEADER)
        if request.method != "POST" or not key or not request.path.startswith(API_PREFIX):
            return self.get_response(request)
        if len(key) > MAX_KEY_LENGTH:
            return JsonResponse(
                error_body("validation_error", f"{HEADER} is longer than {MAX_KEY_LENGTH} characters."), status=400
            )
        user = _user_for(request)
        if user is None:
            return self.get_response(request)  # the view answers 401

        from integrations.models import IdempotencyRecord

        request_hash = _request_hash(request)
        now = timezone.now()
        IdempotencyRecord.objects.filter(user=user, key=key, expires_at__lte=now).delete()
        # A reservation never completed (the worker died mid-request) must not block the key
        # for 24 hours: after STALE_AFTER it is released.
        IdempotencyRecord.objects.filter(
            user=user, key=key, status_code__isnull=True, created_at__lte=now - STALE_AFTER
        ).delete()
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(
                    user=user, key=key, request_hash=request_hash, created_at=now, expires_at=now + TTL
                )
        except IntegrityError:
            existing = IdempotencyRecord.objects.filter(user=user, key=key).first()
            if existing is None:  # released between our insert and read: let the client retry
                return JsonResponse(error_body("conflict", "A request with this Idempotency-Key is in progress."), status=409)
            if existing.request_hash != request_hash:
                return JsonResponse(
                    error_body(
                        "idempotency_key_reused",
                        "This Idempotency-Key was used with a different request. Use a new key for a new request.",
                    ),
                    status=422,
                )
            if existing.status_code is None:
                return JsonResponse(error_body("conflict", "A request with this Idempotency-Key is in progress."), status=409)
            replay = HttpResponse(bytes(existing.body), status=existing.status_code, content_type=existing.content_type or None)
            replay["Idempotent-Replayed"] = "true"
            return replay

        try:
            response = self.get_response(request)
        except BaseException:
            IdempotencyRecord.objects.filter(pk=record.pk).delete()
            raise
        if response.status_code >= 500 or response.status_code == 429 or getattr(response, "streaming", False):
            IdempotencyRecord.objects.filter(pk=record.pk).delete()
            return response
        IdempotencyRecord.objects.filter(pk=record.pk).update(
            status_code=response.status_code,
            body=bytes(response.content),
            content_type=response.get("Content-Type", ""),
        )
        return response
