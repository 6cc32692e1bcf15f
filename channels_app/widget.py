"""The web chat widget's server side: the visitor's history, sending, contact details, rating.

The widget runs in an iframe served by the platform (so the host page's CSS and scripts cannot
reach it); `Content-Security-Policy: frame-ancestors` limits which sites may embed it to the
inbox's allowed origins. The visitor token (random, kept in the widget's localStorage) is the
visitor's secret: it is the `web_visitor` identity of their customer profile. Messages go
through the same durable ingest as any provider webhook (`webhook_event_store`).
"""
from __future__ import annotations

import json
import re
import uuid as uuidlib
from typing import Any

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from channels_app import selectors
from channels_app.adapters.webchat import user_hash
from channels_app.models import Conversation, Inbox, InboxKind, Message
from channels_app.services.ingest import webhook_event_store

TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
RATE_LIMIT = 20  # messages per visitor per minute
MAX_TEXT = 4000


class RateLimited(Exception):
    pass


def inbox_for_widget(*, inbox_uuid: str) -> Inbox | None:
    return selectors.inbox_for_webhook(kind=InboxKind.WEBCHAT, inbox_uuid=inbox_uuid)


def visitor_token_valid(*, inbox_uuid: str, token: str) -> bool:
    return bool(TOKEN_RE.match(token or "")) and inbox_for_widget(inbox_uuid=inbox_uuid) is not None


def widget_config(inbox: Inbox) -> dict[str, Any]:
    settings = inbox.provider_settings if isinstance(getattr(inbox, "provider_settings", None), dict) else {}
    return settings


def _visitor_conversations(*, inbox: Inbox, token: str) -> QuerySet[Conversation]:
    return Conversation.objects.filter(
        customer__identities__kind="web_visitor", customer__identities__value=token,
        customer__identities__scope=str(inbox.uuid),
    ).distinct()


def verified_user_id(*, inbox: Inbox, user_id: str, user_hash_hex: str) -> str | None:
    """The host site's user id when its HMAC (inbox identity secret) checks out, else None."""
    secret = _identity_secret(inbox)
    if not user_id or not secret or user_hash(secret, str(user_id)) != str(user_hash_hex or "").lower():
        return None
    return str(user_id)


def visitor_history(*, inbox: Inbox, token: str, user_id: str | None = None) -> dict[str, Any]:
    """What the visitor may see: the public messages of their own widget conversations in this
    inbox; a verified user (`user_id` checked by `verified_user_id`) also sees the public messages
    of their customer's conversations on every channel."""
    from django.db.models import Q

    own = Q(conversation__in=_visitor_conversations(inbox=inbox, token=token), inbox=inbox)
    scope = own
    if user_id:
        scope |= Q(conversation__customer__identities__kind="external_id",
                   conversation__customer__identities__value=user_id,
                   conversation__customer__identities__verified=True)
    messages = list(Message.objects.filter(scope, private=False).distinct().order_by("id")[:500])
    latest = _visitor_conversations(inbox=inbox, token=token).order_by("-id").first()
    rated = None
    if latest is not None:
        survey = getattr(latest, "csat_survey", None) if hasattr(latest, "csat_survey") else None
        response = getattr(survey, "response", None) if survey is not None else None
        rated = response.rating if response is not None else None
    return {
        "messages": [{"id": m.pk, "text": m.content, "direction": m.direction, "created_at": m.created_at.isoformat()}
                     for m in messages],
        "status": latest.status if latest else "",
        "conversation": latest.pk if latest else None,
        "rating": rated,
    }


def _rate_check(inbox: Inbox, token: str) -> None:
    key = f"widget-rate:{inbox.pk}:{token}"
    cache.add(key, 0, timeout=60)
    try:
        count = cache.incr(key)
    except ValueError:
        cache.set(key, 1, timeout=60)
        count = 1
    if count > RATE_LIMIT:
        raise RateLimited


def visitor_message_send(*, inbox: Inbox, token: str, text: str, user: dict[str, Any] | None = None,
                         page_url: str = "") -> None:
    """Queue the visitor's message through the durable webhook ingest (as if the widget had
    posted to /webhooks/webchat/<inbox>/)."""
    if not TOKEN_RE.match(token):
        raise ValidationError({"visitor_token": ["Invalid visitor token."]})
    text = (text or "").strip()
    if not text:
        raise ValidationError({"text": ["Write a message first."]})
    if len(text) > MAX_TEXT:
        raise ValidationError({"text": [f"At most {MAX_TEXT} characters."]})
    _rate_check(inbox, token)
    body: dict[str, Any] = {"id": str(uuidlib.uuid4()), "visitor_token": token, "text": text,
                            "page_url": page_url[:500]}
    if user and user.get("id"):
        secret = _identity_secret(inbox)
        if not secret or user_hash(secret, str(user["id"])) != str(user.get("hash", "")).lower():
            raise ValidationError({"user": ["The user hash does not match the user id."]})
        body["user"] = {k: str(user[k]) for k in ("id", "hash", "email", "name") if user.get(k)}
    webhook_event_store(inbox=inbox, body=json.dumps(body).encode(), headers={"Content-Type": "application/json"})


def _identity_secret(inbox: Inbox) -> str:
    from channels_app.services.inboxes import inbox_adapter

    adapter = inbox_adapter(inbox=inbox)
    return getattr(getattr(adapter, "config", None), "identity_secret", "") or ""


def allowed_origins(inbox: Inbox) -> tuple[str, ...]:
    from channels_app.services.inboxes import inbox_adapter

    adapter = inbox_adapter(inbox=inbox)
    return tuple(getattr(getattr(adapter, "config", None), "allowed_origins", ()) or ())


def greeting(inbox: Inbox) -> str:
    from channels_app.services.inboxes import inbox_adapter

    adapter = inbox_adapter(inbox=inbox)
    return getattr(getattr(adapter, "config", None), "greeting", "") or ""


def visitor_contact_leave(*, inbox: Inbox, token: str, email: str = "", phone: str = "") -> None:
    """Email/phone typed by the visitor: unverified identities asserted by the end user (they
    never link the visitor to someone else's profile; a merge suggestion records the evidence)."""
    from customers.services import customer_resolve
    from customers.services.resolution import IdentityInput

    identities = [IdentityInput("web_visitor", token, verified=False, scope=str(inbox.uuid))]
    if email:
        identities.append(IdentityInput("email", email.strip().lower()))
    if phone:
        identities.append(IdentityInput("phone", phone.strip()))
    customer_resolve(identities=identities, source="webchat", asserted_by="end_user", strict=True)


def visitor_rating_record(*, inbox: Inbox, token: str, rating: int) -> None:
    """The inline CSAT prompt: the rating of the visitor's latest conversation, recorded by
    journeys' CSAT service (which owns surveys), then pushed to the agents' side panels."""
    from channels_app import realtime
    from channels_app.services.conversations import conversation_audience
    from journeys.services import csat_inline_response_record

    conversation = _visitor_conversations(inbox=inbox, token=token).order_by("-id").first()
    if conversation is None or conversation.status != "resolved":
        raise ValidationError({"rating": ["There is no resolved conversation to rate."]})
    csat_inline_response_record(conversation=conversation, rating=rating, inbox_id=inbox.pk)
    realtime.publish("channels.conversation.rated", {"conversation": {"id": conversation.pk, "rating": rating}},
                     groups=conversation_audience(conversation=conversation))
