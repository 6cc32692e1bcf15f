"""The benchmark's baseline endpoint (issue 8): HMAC check + one INSERT + 200, nothing else.

Mounted at /bench/bare/ only when the environment sets CX_BENCH_ENDPOINTS=true (the `make bench`
harness does; deployments never should). It runs inside the same server, settings and
middleware as the real webhook endpoint, so "our ack rate / this rate" measures what the
platform's own ingest costs on top of the bare minimum.
"""
from __future__ import annotations

import hashlib
import hmac

from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

BARE_SECRET = b"bench-bare-secret"
TABLE_SQL = "CREATE TABLE IF NOT EXISTS bench_bare (id bigserial PRIMARY KEY, body text NOT NULL, received_at timestamptz NOT NULL DEFAULT now())"


@csrf_exempt
@require_POST
def bare(request: HttpRequest) -> HttpResponse:
    body = request.body
    expected = "sha256=" + hmac.new(BARE_SECRET, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, request.headers.get("X-Hub-Signature-256", "")):
        return HttpResponse(status=403)
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO bench_bare (body) VALUES (%s)", [body.decode("utf-8", "replace")])
    return HttpResponse("ok")
