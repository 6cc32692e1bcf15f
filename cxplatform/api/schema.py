"""OpenAPI schema additions that apply to every operation (drf-spectacular postprocessing).

`Idempotency-Key` is handled by a middleware (cxplatform.api.idempotency), not by the views, so
no view's schema mentions it: this hook documents the header and its answers (422 for a key
reused with a different request, 409 while the first request is still running) on every POST.
"""
from __future__ import annotations

from typing import Any

from cxplatform.api.idempotency import HEADER, MAX_KEY_LENGTH

ERROR_COMPONENT = "Error"

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "The one error shape of the API (docs/api.md, Errors).",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "example": "idempotency_key_reused"},
                "message": {"type": "string"},
                "fields": {"type": "object", "additionalProperties": True},
                "request_id": {"type": "string", "nullable": True},
            },
            "required": ["code", "message"],
        }
    },
    "required": ["error"],
}

IDEMPOTENCY_PARAMETER: dict[str, Any] = {
    "in": "header",
    "name": HEADER,
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
    "description": (
        "Optional. A unique key (e.g. a UUID) that makes this POST safe to retry for 24 hours: the same key "
        "with the same request returns the original response (header `Idempotent-Replayed: true`) without "
        "doing anything twice; the same key with a different request is refused with 422."
    ),
    "example": "5d1c2b1e-8f0a-4c47-9a57-1f7e5d3c9b20",
}


def _error_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}}},
    }


def idempotency_key_postprocess(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """Add the optional `Idempotency-Key` header, 422 and 409 to every POST operation."""
    posts = [item["post"] for item in (result.get("paths") or {}).values() if "post" in item]
    if not posts:
        return result
    result.setdefault("components", {}).setdefault("schemas", {}).setdefault(ERROR_COMPONENT, ERROR_SCHEMA)
    for operation in posts:
        parameters = operation.setdefault("parameters", [])
        if not any(p.get("in") == "header" and p.get("name", "").lower() == HEADER.lower() for p in parameters):
            parameters.append(dict(IDEMPOTENCY_PARAMETER))
        responses = operation.setdefault("responses", {})
        responses.setdefault("422", _error_response(
            f"`{HEADER}` already used with a different request (code `idempotency_key_reused`)."))
        responses.setdefault("409", _error_response(
            f"A request with this `{HEADER}` is still being processed: retry shortly (code `conflict`)."))
    return result
