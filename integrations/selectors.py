from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import Role, User
from integrations.models import WebhookDelivery, WebhookSubscription


def webhooks_can_manage(*, viewer: User) -> bool:
    """Webhooks send customer data off the platform: only admins manage them."""
    return bool(viewer and viewer.is_authenticated and (viewer.is_superuser or viewer.role == Role.ADMIN))


def webhook_subscription_list(*, viewer: User) -> QuerySet[WebhookSubscription]:
    if not webhooks_can_manage(viewer=viewer):
        return WebhookSubscription.objects.none()
    return WebhookSubscription.objects.all()


def webhook_delivery_list(*, viewer: User, subscription: WebhookSubscription | None = None) -> QuerySet[WebhookDelivery]:
    if not webhooks_can_manage(viewer=viewer):
        return WebhookDelivery.objects.none()
    qs = WebhookDelivery.objects.all()
    if subscription is not None:
        qs = qs.filter(subscription=subscription)
    return qs
