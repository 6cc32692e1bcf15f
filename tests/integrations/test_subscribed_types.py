"""The "does anyone subscribe to this event type?" answer is cached and forgotten on change."""
from __future__ import annotations

import pytest
from django.core.cache import cache

from integrations import services
from integrations.models import WebhookDelivery, WebhookSubscription

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()


def test_no_subscriber_costs_no_query_once_cached(django_assert_num_queries):
    assert services.webhook_event_emit(type="customer.created", data={}) == []  # fills the cache
    with django_assert_num_queries(0):
        assert services.webhook_event_emit(type="customer.created", data={}) == []


def test_a_new_subscription_is_seen_by_the_next_event(receiver):
    services.webhook_event_emit(type="customer.created", data={})  # caches "nobody"
    services.webhook_subscription_create(owner=None, url=receiver.url, events=["customer.created"])
    deliveries = services.webhook_event_emit(type="customer.created", data={"customer": {"id": 1}})
    assert len(deliveries) == 1
    assert services.webhook_event_emit(type="customer.updated", data={}) == []


def test_changed_event_list_and_deletion_are_seen(receiver):
    subscription, _secret = services.webhook_subscription_create(owner=None, url=receiver.url, events=["customer.created"])
    assert services.subscribed_event_types() == {"customer.created"}
    services.webhook_subscription_update(subscription=subscription, events=["customer.updated"])
    assert services.webhook_event_emit(type="customer.created", data={}) == []
    assert len(services.webhook_event_emit(type="customer.updated", data={})) == 1
    WebhookSubscription.objects.get(pk=subscription.pk).delete()
    assert services.subscribed_event_types() == frozenset()
    assert WebhookDelivery.objects.count() == 0  # cascade: the log went with the subscription
