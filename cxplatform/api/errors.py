"""One error shape for the whole API.

    {"error": {"code": "validation_error", "message": "...", "fields": {"email": ["..."]},
               "request_id": "..."}}

4xx responses say what the client can fix; 5xx responses never leak internals and are logged
with the request id that is also returned in the X-Request-ID header.
"""
from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from cxplatform.middleware import request_id_var

logger = logging.getLogger("cxplatform.api")


def _fields(detail) -> dict:
    if isinstance(detail, dict):
        return {key: _flatten(value) for key, value in detail.items()}
    return {}


def _flatten(value):
    if isinstance(value, dict):
        return {key: _flatten(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [str(item) if not isinstance(item, (dict, list)) else _flatten(item) for item in value]
    return [str(value)]


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}, "request_id": request_id_var.get()}}


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages})
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        logger.exception("Unhandled API error", exc_info=exc)
        return Response(
            error_body("server_error", "Something went wrong on our side. Quote the request id when reporting it."),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )

    if isinstance(exc, exceptions.ValidationError):
        fields = _fields(exc.detail)
        non_field = fields.pop("non_field_errors", None)
        if isinstance(exc.detail, list):
            non_field = _flatten(exc.detail)
        message = "; ".join(non_field) if non_field else "The request has invalid fields."
        if non_field and fields:
            fields["non_field_errors"] = non_field
        response.data = error_body("validation_error", message, fields)
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
        code = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
        if isinstance(code, (dict, list)):
            code = "error"
        response.data = error_body(str(code), str(detail))
    return response
