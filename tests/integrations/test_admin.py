from __future__ import annotations

import pytest
from django.contrib.messages import get_messages

from integrations.crypto import secret_decrypt
from integrations.models import WebhookDelivery, WebhookSubscription
from integrations.services import webhook_subscription_create

pytestmark = pytest.mark.django_db


def test_admin_adds_a_subscription_through_the_service_and_sees_the_secret_once(client, admin_user, receiver):
    client.force_login(admin_user)

    response = client.post(
        "/admin/integrations/webhooksubscription/add/",
        {"url": receiver.url, "events": ["customer.created", "customer.merged"], "secret": "", "active": "on"},
    )

    assert response.status_code == 302
    subscription = WebhookSubscription.objects.get()
    assert subscription.owner == admin_user
    assert subscription.events == ["customer.created", "customer.merged"]
    secret = secret_decrypt(subscription.secret_encrypted)
    assert secret.startswith("whsec_")
    assert [str(m) for m in get_messages(response.wsgi_request) if secret in str(m)] == [
        f"Signing secret (shown once): {secret}"
    ]


def test_admin_form_refuses_an_internal_url(client, admin_user, settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = []
    client.force_login(admin_user)

    response = client.post(
        "/admin/integrations/webhooksubscription/add/",
        {"url": "http://169.254.169.254/", "events": ["customer.created"], "secret": "", "active": "on"},
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "url": ["This address is private, loopback or link-local and is not allowed."]
    }
    assert not WebhookSubscription.objects.exists()


def test_admin_reactivates_a_disabled_subscription_keeping_its_secret(client, admin_user, receiver):
    subscription, secret = webhook_subscription_create(owner=None, url=receiver.url, events=["customer.created"])
    WebhookSubscription.objects.filter(pk=subscription.pk).update(active=False, disabled_reason="failed")
    client.force_login(admin_user)

    response = client.post(
        f"/admin/integrations/webhooksubscription/{subscription.pk}/change/",
        {"url": receiver.url, "events": ["customer.created"], "secret": "", "active": "on",
         "deliveries-TOTAL_FORMS": "0", "deliveries-INITIAL_FORMS": "0"},
    )

    assert response.status_code == 302
    subscription.refresh_from_db()
    assert subscription.active is True
    assert subscription.disabled_reason == ""
    assert secret_decrypt(subscription.secret_encrypted) == secret


def test_admin_pages_render(client, admin_user, receiver):
    subscription, _secret = webhook_subscription_create(owner=None, url=receiver.url, events=["customer.created"])
    delivery = WebhookDelivery.objects.create(subscription=subscription, event_type="customer.created", payload={})
    client.force_login(admin_user)

    for url in [
        "/admin/integrations/webhooksubscription/",
        f"/admin/integrations/webhooksubscription/{subscription.pk}/change/",
        "/admin/integrations/webhooksubscription/add/",
        "/admin/integrations/webhookdelivery/",
        f"/admin/integrations/webhookdelivery/{delivery.pk}/change/",
        "/admin/integrations/idempotencyrecord/",
    ]:
        assert client.get(url).status_code == 200, url
