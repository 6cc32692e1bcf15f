"""HTTP side of the web chat widget: loader script, isolated iframe, visitor JSON endpoints, demo."""
from __future__ import annotations

import json

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from channels_app import widget


def _inbox_or_404(inbox_uuid) -> object:
    inbox = widget.inbox_for_widget(inbox_uuid=str(inbox_uuid))
    if inbox is None:
        raise Http404
    return inbox


def _same_origin(request) -> bool:
    """Visitor endpoints are called only by the widget iframe, which the platform serves."""
    origin = request.headers.get("Origin")
    return origin is None or origin.rstrip("/") == f"{request.scheme}://{request.get_host()}"


@require_GET
def embed_js(request):
    response = render(request, "widget/embed.js", content_type="application/javascript")
    response["Cache-Control"] = "public, max-age=300"
    return response


@require_GET
def widget_frame(request, inbox_uuid):
    inbox = _inbox_or_404(inbox_uuid)
    response = render(request, "widget/frame.html", {"inbox": inbox, "greeting": widget.greeting(inbox)})
    ancestors = " ".join(["'self'", *widget.allowed_origins(inbox)])
    response["Content-Security-Policy"] = f"frame-ancestors {ancestors}"
    response.headers.pop("X-Frame-Options", None)
    response.xframe_options_exempt = True
    return response


@require_GET
def widget_demo(request):
    inbox = widget.inbox_for_widget(inbox_uuid=request.GET.get("inbox", ""))
    if inbox is None:
        raise Http404
    return render(request, "widget/demo.html", {"inbox": inbox})


def _json(request) -> dict:
    try:
        data = json.loads(request.body or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


@csrf_exempt
@require_http_methods(["GET", "POST"])
def visitor_messages(request, inbox_uuid):
    inbox = _inbox_or_404(inbox_uuid)
    if not _same_origin(request):
        return JsonResponse({"error": "origin not allowed"}, status=403)
    if request.method == "GET":
        token = request.GET.get("token", "")
        if not widget.TOKEN_RE.match(token):
            return JsonResponse({"error": "invalid token"}, status=400)
        user_id = widget.verified_user_id(inbox=inbox, user_id=request.GET.get("user_id", ""),
                                          user_hash_hex=request.GET.get("user_hash", ""))
        return JsonResponse(widget.visitor_history(inbox=inbox, token=token, user_id=user_id))
    data = _json(request)
    try:
        widget.visitor_message_send(inbox=inbox, token=str(data.get("token", "")), text=str(data.get("text", "")),
                                    user=data.get("user") if isinstance(data.get("user"), dict) else None,
                                    page_url=str(data.get("page_url", "")))
    except widget.RateLimited:
        return JsonResponse({"error": "Too many messages; wait a minute."}, status=429)
    except ValidationError as exc:
        return JsonResponse({"error": " ".join(exc.messages)}, status=400)
    return JsonResponse({"ok": True}, status=202)


@csrf_exempt
@require_POST
def visitor_contact(request, inbox_uuid):
    inbox = _inbox_or_404(inbox_uuid)
    if not _same_origin(request):
        return JsonResponse({"error": "origin not allowed"}, status=403)
    data = _json(request)
    token = str(data.get("token", ""))
    if not widget.TOKEN_RE.match(token):
        return JsonResponse({"error": "invalid token"}, status=400)
    try:
        widget.visitor_contact_leave(inbox=inbox, token=token, email=str(data.get("email", "")),
                                     phone=str(data.get("phone", "")))
    except ValidationError as exc:
        return JsonResponse({"error": " ".join(exc.messages)}, status=400)
    return JsonResponse({"ok": True})


@csrf_exempt
@require_POST
def visitor_rating(request, inbox_uuid):
    inbox = _inbox_or_404(inbox_uuid)
    if not _same_origin(request):
        return JsonResponse({"error": "origin not allowed"}, status=403)
    data = _json(request)
    token = str(data.get("token", ""))
    try:
        rating = int(data.get("rating"))
    except (TypeError, ValueError):
        return JsonResponse({"error": "rating must be 1-5"}, status=400)
    if not widget.TOKEN_RE.match(token):
        return JsonResponse({"error": "invalid token"}, status=400)
    try:
        with transaction.atomic():
            widget.visitor_rating_record(inbox=inbox, token=token, rating=rating)
    except ValidationError as exc:
        return JsonResponse({"error": " ".join(exc.messages)}, status=400)
    return JsonResponse({"ok": True})
