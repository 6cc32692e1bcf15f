"""Outbound webhooks and idempotency records: the integrations app's writes.

Network I/O (DNS checks of target URLs, the delivery POST, admin e-mail) never happens inside
a transaction: deliveries are recorded atomically and sent by a task after commit.
"""
from __future__ import annotations

import json
import logging
import random
import secrets
import time
import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Role, User
from channels_app import outbound
from integrations import crypto
from integrations.events import WEBHOOK_EVENT_TYPES
from integrations.models import SUBSCRIBED_TYPES_CACHE_KEY, WebhookDelivery, WebhookSubscription
from integrations.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

logger = logging.getLogger(__name__)

RETRY_WINDOW = timedelta(hours=24)
BACKOFF_BASE_SECONDS = 30
BACKOFF_CAP_SECONDS = 6 * 3600
DELIVERY_TIMEOUT_SECONDS = 10.0
EXCERPT_CHARS = 1000
STUCK_AFTER = timedelta(minutes=5)
SUBSCRIBED_TYPES_CACHE_SECONDS = 60  # bounds the rare miss-vs-create race
ATTEMPT_LEASE = timedelta(minutes=2)
UNSET: Any = object()


# --- subscriptions ------------------------------------------------------------------------


def webhook_url_validate(*, url: str) -> None:
    """Refuse URLs that are not http(s) or whose host resolves to a non-public address
    (unless inside OUTBOUND_ALLOWED_NETWORKS). Does a DNS lookup: call outside transactions."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError({"url": ["Use an http:// or https:// URL with a host."]})
    if parts.username or parts.password:
        raise ValidationError({"url": ["Credentials in the URL are not allowed; verify the signature instead."]})
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        outbound.resolve_allowed(parts.hostname, port, outbound._allowed_networks())
    except outbound.OutboundBlocked:
        raise ValidationError({"url": ["This address is private, loopback or link-local and is not allowed."]}) from None
    except outbound.OutboundError:
        raise ValidationError({"url": ["This host name does not resolve."]}) from None
    except ValueError:
        raise ValidationError({"url": ["Invalid port."]}) from None


def _events_validate(events: list[str]) -> list[str]:
    unknown = sorted(set(events) - set(WEBHOOK_EVENT_TYPES))
    if unknown:
        raise ValidationError({"events": [f"Unknown event type: {name}." for name in unknown]})
    if not events:
        raise ValidationError({"events": ["Name at least one event type."]})
    return [name for name in WEBHOOK_EVENT_TYPES if name in set(events)]


def webhook_subscription_create(
    *, owner: User | None, url: str, events: list[str], secret: str | None = None, active: bool = True
) -> tuple[WebhookSubscription, str]:
    """Create a subscription; returns it with the signing secret (generated when not given)."""
    webhook_url_validate(url=url)
    secret = secret or "whsec_" + secrets.token_urlsafe(32)
    with transaction.atomic():
        subscription = WebhookSubscription(
            owner=owner, url=url, events=_events_validate(events), secret_encrypted=crypto.secret_encrypt(secret),
            active=active,
        )
        subscription.full_clean()
        subscription.save()
    return subscription, secret


def webhook_subscription_update(
    *,
    subscription: WebhookSubscription,
    url: str = UNSET,
    events: list[str] = UNSET,
    secret: str = UNSET,
    active: bool = UNSET,
) -> WebhookSubscription:
    if url is not UNSET and url != subscription.url:
        webhook_url_validate(url=url)
        subscription.url = url
    if events is not UNSET:
        subscription.events = _events_validate(events)
    if secret is not UNSET:
        subscription.secret_encrypted = crypto.secret_encrypt(secret)
    if active is not UNSET:
        subscription.active = active
        if active:
            subscription.disabled_reason, subscription.disabled_at = "", None
    with transaction.atomic():
        subscription.full_clean()
        subscription.save()
    return subscription


@transaction.atomic
def webhook_subscription_delete(*, subscription: WebhookSubscription) -> None:
    subscription.delete()


def webhook_subscription_secret(*, subscription: WebhookSubscription) -> str:
    return crypto.secret_decrypt(subscription.secret_encrypted)


# --- emitting -----------------------------------------------------------------------------


def _enqueue(delivery_ids: list[int]) -> None:
    from integrations.tasks import webhook_deliver_task

    def send() -> None:
        for delivery_id in delivery_ids:
            try:
                webhook_deliver_task.delay(delivery_id)
            except Exception:
                # The business change is committed; never fail it over a webhook. A delivery
                # left pending is picked up by webhook_deliveries_due_task.
                logger.exception("could not enqueue webhook delivery %s", delivery_id)

    transaction.on_commit(send)


SUBSCRIBED_TYPES_LOCAL_SECONDS = 1.0
_subscribed_local: tuple[float, frozenset[str]] | None = None


def subscribed_types_local_forget() -> None:
    global _subscribed_local
    _subscribed_local = None


def subscribed_event_types() -> frozenset[str]:
    """The event types at least one active subscription wants, cached (shared cache, Redis
    in production) until a subscription is saved or deleted. Domain events fire on every
    message and customer change; most deployments subscribe to few types, so the common
    answer "nobody listens" costs one cache read instead of a transaction and a query.

    Each process also keeps the answer for SUBSCRIBED_TYPES_LOCAL_SECONDS (1 s): a drain that
    stores a hundred messages asked Redis a hundred times (0.8 ms each). A subscription saved in
    another process is seen at most that much later; in this process at once."""
    global _subscribed_local
    now = time.monotonic()
    if _subscribed_local is not None and _subscribed_local[0] > now:
        return _subscribed_local[1]
    types = cache.get(SUBSCRIBED_TYPES_CACHE_KEY)
    if types is None:
        found: set[str] = set()
        for events in WebhookSubscription.objects.filter(active=True).values_list("events", flat=True):
            found.update(events or [])
        types = sorted(found)
        cache.set(SUBSCRIBED_TYPES_CACHE_KEY, types, SUBSCRIBED_TYPES_CACHE_SECONDS)
    _subscribed_local = (now + SUBSCRIBED_TYPES_LOCAL_SECONDS, frozenset(types))
    return _subscribed_local[1]


def webhook_event_emit(*, type: str, data: dict[str, Any], occurred_at: datetime | None = None) -> list[WebhookDelivery]:
    """Record one delivery per active subscription to `type` and send them after commit.

    Every subscriber receives the same event id, so an integrator that subscribes twice can
    deduplicate."""
    if type not in WEBHOOK_EVENT_TYPES:
        raise ValueError(f"unknown webhook event type {type!r}")
    if type not in subscribed_event_types():
        return []
    with transaction.atomic():
        return _webhook_event_record(type=type, data=data, occurred_at=occurred_at)


def _webhook_event_record(*, type: str, data: dict[str, Any], occurred_at: datetime | None) -> list[WebhookDelivery]:
    subscriptions = [s for s in WebhookSubscription.objects.filter(active=True) if type in s.events]
    if not subscriptions:
        return []
    event_id = uuid.uuid4()
    payload = {
        "id": str(event_id),
        "type": type,
        "created_at": (occurred_at or timezone.now()).isoformat(),
        "data": json.loads(json.dumps(data, cls=DjangoJSONEncoder)),
    }
    deliveries = WebhookDelivery.objects.bulk_create(
        [WebhookDelivery(subscription=s, event_id=event_id, event_type=type, payload=payload) for s in subscriptions]
    )
    _enqueue([d.pk for d in deliveries])
    return deliveries


@transaction.atomic
def webhook_delivery_redeliver(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send the same event (same id and payload) again as a new delivery; the old log stays."""
    copy = WebhookDelivery.objects.create(
        subscription=delivery.subscription,
        event_id=delivery.event_id,
        event_type=delivery.event_type,
        payload=delivery.payload,
        redelivery_of=delivery,
    )
    _enqueue([copy.pk])
    return copy


# --- delivering ---------------------------------------------------------------------------


def webhook_backoff_seconds(*, attempt: int, rng: random.Random | None = None) -> float:
    """Delay after failed attempt number `attempt` (1-based): exponential, capped, ±50 % jitter."""
    base = min(BACKOFF_BASE_SECONDS * 2 ** (attempt - 1), BACKOFF_CAP_SECONDS)
    return base * (rng or random).uniform(0.5, 1.5)


def webhook_request_build(*, delivery: WebhookDelivery, secret: str, now: float | None = None) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(delivery.payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    timestamp = str(int(now if now is not None else time.time()))
    headers = {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(secret=secret, timestamp=timestamp, body=body),
        "X-Cx-Event": delivery.event_type,
        "X-Cx-Event-Id": str(delivery.event_id),
        "X-Cx-Delivery": str(delivery.pk),
    }
    return body, headers


def webhook_delivery_attempt(*, delivery_id: int) -> WebhookDelivery | None:
    """Make one attempt (no transaction open during the POST), then record the outcome.

    2xx → succeeded. Anything else → retrying with the next attempt time, or failed once the
    24-hour window is spent (or the target is refused by the SSRF guard), which disables the
    subscription and tells the admins. Idempotent: a delivery already finished is left alone."""
    delivery = WebhookDelivery.objects.select_related("subscription").filter(pk=delivery_id).first()
    if delivery is None or delivery.status in (WebhookDelivery.Status.SUCCEEDED, WebhookDelivery.Status.FAILED):
        return delivery
    # Claim this attempt with a short lease, so the due task and a late enqueue of the same
    # delivery never POST it twice at once.
    now = timezone.now()
    claimed = (
        WebhookDelivery.objects.filter(pk=delivery.pk, attempt=delivery.attempt, status=delivery.status)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .update(next_attempt_at=now + ATTEMPT_LEASE)
    )
    if not claimed:
        return delivery
    subscription = delivery.subscription
    if not subscription.active and delivery.redelivery_of_id is None:
        return _finish(delivery, status=WebhookDelivery.Status.FAILED, error="Subscription is disabled.")

    body, headers = webhook_request_build(delivery=delivery, secret=webhook_subscription_secret(subscription=subscription))
    started = time.monotonic()
    status_code, excerpt, error, permanent = None, "", "", False
    try:
        # No redirects: a signed event goes to the URL the integrator registered, nowhere else.
        response = outbound.request(
            "POST", subscription.url, body=body, headers=headers, timeout=DELIVERY_TIMEOUT_SECONDS, max_redirects=0,
            max_response_bytes=64 * 1024,
        )
        status_code = response.status
        excerpt = response.body[:EXCERPT_CHARS].decode("utf-8", errors="replace")
    except outbound.OutboundBlocked as exc:
        if str(exc).startswith("too many redirects"):
            # max_redirects=0: the endpoint answered with a redirect, which is not followed
            # (possibly maintenance): retried like any other failure.
            error = "Redirect not followed; register the final URL."
        else:
            error, permanent = str(exc)[:500], True
    except outbound.OutboundError as exc:
        error = str(exc)[:500]
    latency_ms = int((time.monotonic() - started) * 1000)

    delivery.attempt += 1
    delivery.status_code, delivery.latency_ms, delivery.response_excerpt = status_code, latency_ms, excerpt
    delivery.last_attempt_at = timezone.now()
    if status_code is not None and 200 <= status_code < 300:
        delivery.delivered_at = delivery.last_attempt_at
        return _finish(delivery, status=WebhookDelivery.Status.SUCCEEDED, error="")
    if status_code is not None:
        error = f"HTTP {status_code}"
    next_at = delivery.last_attempt_at + timedelta(seconds=webhook_backoff_seconds(attempt=delivery.attempt))
    if permanent or next_at > delivery.created_at + RETRY_WINDOW:
        return _finish(delivery, status=WebhookDelivery.Status.FAILED, error=error, give_up=True)
    delivery.next_attempt_at = next_at
    return _finish(delivery, status=WebhookDelivery.Status.RETRYING, error=error)


def _finish(delivery: WebhookDelivery, *, status: str, error: str, give_up: bool = False) -> WebhookDelivery:
    delivery.status, delivery.error = status, error
    if status != WebhookDelivery.Status.RETRYING:
        delivery.next_attempt_at = None
    with transaction.atomic():
        delivery.save()
        if give_up and delivery.redelivery_of_id is None:
            _subscription_disable(subscription=delivery.subscription, delivery=delivery)
    return delivery


def _subscription_disable(*, subscription: WebhookSubscription, delivery: WebhookDelivery) -> None:
    updated = WebhookSubscription.objects.filter(pk=subscription.pk, active=True).update(
        active=False,
        disabled_at=timezone.now(),
        disabled_reason=f"Delivery {delivery.pk} failed for 24 hours: {delivery.error}"[:300],
    )
    if updated:
        subscription.refresh_from_db()
        transaction.on_commit(lambda: webhook_disabled_notify(subscription=subscription, delivery=delivery))


def _admin_emails(subscription: WebhookSubscription) -> list[str]:
    emails = {email for _name, email in getattr(settings, "ADMINS", [])}
    admins = User.objects.filter(is_active=True).filter(is_superuser=True) | User.objects.filter(
        is_active=True, groups__name=Role.ADMIN.value
    )
    emails.update(admins.values_list("email", flat=True))
    if subscription.owner is not None and subscription.owner.is_active:
        emails.add(subscription.owner.email)
    return sorted(e for e in emails if e)


def webhook_disabled_notify(*, subscription: WebhookSubscription, delivery: WebhookDelivery) -> None:
    """E-mail the platform admins (superusers, the admin role, settings.ADMINS) and the owner."""
    recipients = _admin_emails(subscription)
    if not recipients:
        logger.warning("webhook subscription %s disabled; no admin e-mail to notify", subscription.pk)
        return
    try:
        send_mail(
            subject=f"[cxplatform] Webhook disabled: {subscription.url}",
            message=(
                f"The webhook subscription {subscription.pk} to {subscription.url} was disabled after "
                f"delivery {delivery.pk} ({delivery.event_type}) kept failing for 24 hours.\n"
                f"Last error: {delivery.error}\n\nFix the endpoint, then re-activate the subscription "
                f"(PATCH /api/v1/webhooks/{subscription.pk}/ with {{\"active\": true}}) and redeliver "
                f"what it missed (POST /api/v1/webhook-deliveries/<id>/redeliver/)."
            ),
            from_email=None,
            recipient_list=recipients,
        )
    except Exception:
        logger.exception("could not e-mail admins about disabled webhook %s", subscription.pk)


def webhook_deliveries_due(*, now: datetime | None = None) -> list[int]:
    """Ids of deliveries to attempt now (the beat task sends them): retries whose time has
    come, and first attempts still pending after STUCK_AFTER (lost enqueue or worker crash)."""
    now = now or timezone.now()
    retries = WebhookDelivery.objects.filter(status=WebhookDelivery.Status.RETRYING, next_attempt_at__lte=now)
    stuck = WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING, created_at__lte=now - STUCK_AFTER).filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    )
    return list((retries | stuck).order_by("created_at", "pk").values_list("pk", flat=True)[:500])


# --- idempotency --------------------------------------------------------------------------


DELIVERY_LOG_RETENTION = timedelta(days=30)


def webhook_deliveries_purge(*, now: datetime | None = None) -> int:
    """Delete finished deliveries older than DELIVERY_LOG_RETENTION (the log would grow forever)."""
    cutoff = (now or timezone.now()) - DELIVERY_LOG_RETENTION
    deleted, _ = WebhookDelivery.objects.filter(
        created_at__lt=cutoff, status__in=[WebhookDelivery.Status.SUCCEEDED, WebhookDelivery.Status.FAILED]
    ).delete()
    return deleted


def idempotency_records_purge(*, now: datetime | None = None) -> int:
    from integrations.models import IdempotencyRecord

    deleted, _ = IdempotencyRecord.objects.filter(expires_at__lte=now or timezone.now()).delete()
    return deleted
