from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

SUBSCRIBED_TYPES_CACHE_KEY = "integrations:subscribed-event-types"


def _forget_subscribed_types() -> None:
    from django.core.cache import cache
    from django.db import transaction

    from integrations import services

    def forget() -> None:
        cache.delete(SUBSCRIBED_TYPES_CACHE_KEY)
        services.subscribed_types_local_forget()

    forget()
    transaction.on_commit(forget)


class WebhookSubscription(models.Model):
    """An integrator's endpoint that receives signed POSTs for the event types it names.

    The signing secret must be usable to sign, so it is stored Fernet-encrypted
    (``integrations.crypto``), never hashed, and never shown back after creation."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name=_("created by"),
    )
    url = models.URLField(_("target URL"), max_length=500)
    events = models.JSONField(_("event types"), default=list)
    secret_encrypted = models.TextField(_("secret (encrypted)"))
    active = models.BooleanField(_("active"), default=True)
    disabled_reason = models.CharField(_("disabled because"), max_length=300, blank=True)
    disabled_at = models.DateTimeField(_("disabled at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("webhook subscription")
        verbose_name_plural = _("webhook subscriptions")
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.url

    # Every domain event asks "does anyone subscribe to this type?" (integrations.services.
    # subscribed_event_types, cached): any saved or deleted subscription forgets the answer,
    # now and again after commit so no process caches a half-written state.
    def save(self, *args, **kwargs):
        super().save(*args, **kwargs)
        _forget_subscribed_types()

    def delete(self, *args, **kwargs):
        result = super().delete(*args, **kwargs)
        _forget_subscribed_types()
        return result


class WebhookDelivery(models.Model):
    """One event sent (or to be sent) to one subscription, with the outcome of its last attempt."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        RETRYING = "retrying", _("Retrying")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")

    subscription = models.ForeignKey(WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries")
    event_id = models.UUIDField(_("event id"), default=uuid.uuid4, db_index=True)
    event_type = models.CharField(_("event type"), max_length=50)
    payload = models.JSONField(_("payload"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    attempt = models.PositiveIntegerField(_("attempts made"), default=0)
    status_code = models.PositiveIntegerField(_("last HTTP status"), null=True, blank=True)
    latency_ms = models.PositiveIntegerField(_("last latency (ms)"), null=True, blank=True)
    response_excerpt = models.TextField(_("response excerpt"), blank=True)
    error = models.CharField(_("last error"), max_length=500, blank=True)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True, db_index=True)
    redelivery_of = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("redelivery of")
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    last_attempt_at = models.DateTimeField(_("last attempt"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-id"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="webhook_delivery_due_idx")]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.subscription_id} ({self.status})"


class IdempotencyRecord(models.Model):
    """The stored response of a POST made with an Idempotency-Key, replayed for 24 hours."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(_("key"), max_length=255)
    request_hash = models.CharField(_("request hash"), max_length=64)
    status_code = models.PositiveIntegerField(_("status"), null=True, blank=True, help_text=_("Empty while in progress."))
    body = models.BinaryField(_("body"), default=b"")
    content_type = models.CharField(_("content type"), max_length=100, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires"), db_index=True)

    class Meta:
        verbose_name = _("idempotency record")
        verbose_name_plural = _("idempotency records")
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_user_key_unique")]

    def __str__(self) -> str:
        return f"{self.key} ({self.status_code or 'in progress'})"
