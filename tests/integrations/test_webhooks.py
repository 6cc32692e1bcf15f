"""Outbound webhooks: subscription API, SSRF guard, signed delivery, retries, auto-disable."""
from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.core import mail
from django.utils import timezone

from customers.models import Customer
from customers.services import customer_merge, customer_update
from integrations import services
from integrations.crypto import secret_decrypt
from integrations.models import WebhookDelivery, WebhookSubscription
from integrations.tasks import webhook_deliver_task, webhook_deliveries_due_task
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db

DOCS = Path(__file__).resolve().parents[2] / "docs" / "api.md"
SECRET = "whsec_test-secret-0123456789"


def documented_verifier():
    """The verification snippet exactly as docs/api.md shows it to integrators."""
    text = DOCS.read_text()
    block = re.search(r"```python\n(.*?def verify_cx_signature.*?)```", text, re.S)
    assert block is not None, "docs/api.md lost the webhook verification snippet"
    namespace: dict = {}
    exec(block.group(1), namespace)  # noqa: S102 - our own documentation
    return namespace["verify_cx_signature"]


def subscribe(url: str, events=("customer.created",), secret: str = SECRET) -> WebhookSubscription:
    subscription, _secret = services.webhook_subscription_create(owner=None, url=url, events=list(events), secret=secret)
    return subscription


# --- subscription API ---------------------------------------------------------------------


def test_admin_creates_subscription_secret_shown_once_and_encrypted_at_rest(admin_user, api_for, receiver):
    client = api_for(admin_user)

    created = client.post("/api/v1/webhooks/", {"url": receiver.url, "events": ["customer.created", "customer.merged"]},
                          format="json")

    assert created.status_code == 201
    body = created.json()
    assert body["url"] == receiver.url
    assert body["events"] == ["customer.created", "customer.merged"]
    assert body["active"] is True
    assert body["secret"].startswith("whsec_")
    stored = WebhookSubscription.objects.get(pk=body["id"])
    assert body["secret"] not in stored.secret_encrypted
    assert secret_decrypt(stored.secret_encrypted) == body["secret"]
    detail = client.get(f"/api/v1/webhooks/{body['id']}/").json()
    assert "secret" not in detail
    assert [row["id"] for row in client.get("/api/v1/webhooks/").json()["results"]] == [body["id"]]


def test_subscription_patch_and_delete(admin_user, api_for, receiver):
    client = api_for(admin_user)
    subscription = subscribe(receiver.url)

    patched = client.patch(f"/api/v1/webhooks/{subscription.pk}/", {"events": ["customer.updated"], "active": False},
                           format="json")
    deleted = client.delete(f"/api/v1/webhooks/{subscription.pk}/")

    assert patched.status_code == 200
    assert patched.json()["events"] == ["customer.updated"]
    assert patched.json()["active"] is False
    assert deleted.status_code == 204
    assert not WebhookSubscription.objects.exists()


def test_unknown_event_type_is_a_validation_error(admin_user, api_for, receiver):
    response = api_for(admin_user).post("/api/v1/webhooks/", {"url": receiver.url, "events": ["order.shipped"]},
                                        format="json")

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["events"]


@pytest.mark.parametrize("role_fixture", ["agent", "supervisor"])
def test_only_admins_manage_webhooks(request, api_for, role_fixture, receiver):
    user = request.getfixturevalue(role_fixture)

    response = api_for(user).post("/api/v1/webhooks/", {"url": receiver.url, "events": ["customer.created"]},
                                  format="json")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert not WebhookSubscription.objects.exists()


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/hook",
        "http://127.0.0.1:8000/hook",
        "http://[::1]/hook",
        "http://[::ffff:10.0.0.1]/hook",
        "http://192.168.1.10/hook",
    ],
)
def test_ssrf_targets_are_refused_at_subscription_time(admin_user, api_for, settings, url):
    settings.OUTBOUND_ALLOWED_NETWORKS = []

    response = api_for(admin_user).post("/api/v1/webhooks/", {"url": url, "events": ["customer.created"]},
                                        format="json")

    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "url": ["This address is private, loopback or link-local and is not allowed."]
    }
    assert not WebhookSubscription.objects.exists()


def test_non_http_scheme_is_refused(admin_user, api_for):
    response = api_for(admin_user).post("/api/v1/webhooks/", {"url": "ftp://example.com/x", "events": ["customer.created"]},
                                        format="json")

    assert response.status_code == 400
    assert list(response.json()["error"]["fields"]) == ["url"]


# --- delivery -----------------------------------------------------------------------------


def test_event_is_delivered_signed_and_the_documented_snippet_verifies_it(receiver, django_capture_on_commit_callbacks):
    subscribe(receiver.url)
    other = subscribe(receiver.url, events=["customer.merged"])

    with django_capture_on_commit_callbacks(execute=True):
        deliveries = services.webhook_event_emit(type="customer.created", data={"customer": {"id": 7}})

    assert len(deliveries) == 1 and deliveries[0].subscription_id != other.pk
    assert len(receiver.requests) == 1
    sent = receiver.requests[0]
    payload = json.loads(sent["body"])
    assert set(payload) == {"id", "type", "created_at", "data"}
    assert payload["type"] == "customer.created"
    assert payload["data"] == {"customer": {"id": 7}}
    assert payload["id"] == str(deliveries[0].event_id)
    verify = documented_verifier()
    assert verify(SECRET, sent["headers"]["X-Cx-Timestamp"], sent["headers"]["X-Cx-Signature"], sent["body"]) is True
    assert verify("wrong-secret", sent["headers"]["X-Cx-Timestamp"], sent["headers"]["X-Cx-Signature"], sent["body"]) is False
    assert verify(SECRET, sent["headers"]["X-Cx-Timestamp"], sent["headers"]["X-Cx-Signature"], sent["body"] + b" ") is False
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == WebhookDelivery.Status.SUCCEEDED
    assert delivery.attempt == 1
    assert delivery.status_code == 200
    assert delivery.latency_ms is not None
    assert delivery.response_excerpt == '{"received": true, "status": 200}'
    assert delivery.next_attempt_at is None


def test_nothing_is_sent_when_the_transaction_rolls_back(receiver, django_capture_on_commit_callbacks):
    subscribe(receiver.url)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.webhook_event_emit(type="customer.created", data={})

    assert len(callbacks) == 1  # sending waits for the commit
    assert receiver.requests == []


def test_a_500_is_retried_later_with_backoff_then_succeeds(receiver, django_capture_on_commit_callbacks):
    subscribe(receiver.url)
    receiver.statuses = [500]

    with django_capture_on_commit_callbacks(execute=True):
        services.webhook_event_emit(type="customer.created", data={"n": 1})

    delivery = WebhookDelivery.objects.get()
    assert delivery.status == WebhookDelivery.Status.RETRYING
    assert delivery.attempt == 1
    assert delivery.status_code == 500
    assert delivery.error == "HTTP 500"
    wait = (delivery.next_attempt_at - delivery.last_attempt_at).total_seconds()
    assert 15 <= wait <= 45  # 30 s ± 50 % jitter
    assert services.webhook_deliveries_due(now=delivery.next_attempt_at - timedelta(seconds=1)) == []
    assert services.webhook_deliveries_due(now=delivery.next_attempt_at) == [delivery.pk]

    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    webhook_deliveries_due_task()

    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.SUCCEEDED
    assert delivery.attempt == 2
    assert len(receiver.requests) == 2
    assert json.loads(receiver.requests[0]["body"]) == json.loads(receiver.requests[1]["body"])


class _Bounds:
    def __init__(self, pick: str):
        self.pick = pick

    def uniform(self, low, high):
        return low if self.pick == "low" else high


@pytest.mark.parametrize(
    ("attempt", "low", "high"),
    [(1, 15, 45), (2, 30, 90), (5, 240, 720), (10, 7680, 23040), (11, 10800, 32400), (30, 10800, 32400)],
)
def test_backoff_is_exponential_with_jitter_and_capped(attempt, low, high):
    assert services.webhook_backoff_seconds(attempt=attempt, rng=_Bounds("low")) == low
    assert services.webhook_backoff_seconds(attempt=attempt, rng=_Bounds("high")) == high


def test_persistent_failure_for_24_hours_disables_the_subscription_and_emails_admins(
    receiver, admin_user, django_capture_on_commit_callbacks
):
    subscription = subscribe(receiver.url)
    receiver.default_status = 503
    delivery = WebhookDelivery.objects.create(
        subscription=subscription, event_type="customer.created", payload={"id": "x", "type": "customer.created"},
        created_at=timezone.now() - timedelta(hours=23, minutes=59, seconds=50), attempt=13,
        status=WebhookDelivery.Status.RETRYING,
    )

    with django_capture_on_commit_callbacks(execute=True):
        webhook_deliver_task(delivery.pk)

    delivery.refresh_from_db()
    subscription.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.FAILED
    assert delivery.attempt == 14
    assert delivery.next_attempt_at is None
    assert subscription.active is False
    assert subscription.disabled_reason == f"Delivery {delivery.pk} failed for 24 hours: HTTP 503"
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [admin_user.email]
    assert mail.outbox[0].subject == f"[cxplatform] Webhook disabled: {receiver.url}"
    # A disabled subscription receives nothing more.
    assert services.webhook_event_emit(type="customer.created", data={}) == []


def test_redirects_are_not_followed(receiver, django_capture_on_commit_callbacks):
    subscribe(receiver.url)
    receiver.statuses = [302]
    receiver.redirect_to = "http://169.254.169.254/latest/meta-data/"

    with django_capture_on_commit_callbacks(execute=True):
        services.webhook_event_emit(type="customer.created", data={})

    delivery = WebhookDelivery.objects.get()
    assert len(receiver.requests) == 1
    assert delivery.status == WebhookDelivery.Status.RETRYING
    assert delivery.error == "Redirect not followed; register the final URL."


def test_target_refused_at_delivery_time_fails_at_once(receiver, settings, django_capture_on_commit_callbacks):
    subscription = subscribe(receiver.url)
    settings.OUTBOUND_ALLOWED_NETWORKS = []  # the allow-list shrank after the subscription was made

    with django_capture_on_commit_callbacks(execute=True):
        services.webhook_event_emit(type="customer.created", data={})

    delivery = WebhookDelivery.objects.get()
    subscription.refresh_from_db()
    assert receiver.requests == []
    assert delivery.status == WebhookDelivery.Status.FAILED
    assert delivery.error.startswith("refusing to connect to 127.0.0.1")
    assert subscription.active is False


def test_manual_redelivery_sends_the_same_event_again_and_both_are_logged(
    admin_user, api_for, receiver, django_capture_on_commit_callbacks
):
    subscription = subscribe(receiver.url)
    client = api_for(admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        services.webhook_event_emit(type="customer.created", data={"customer": {"id": 1}})
    original = WebhookDelivery.objects.get()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/v1/webhook-deliveries/{original.pk}/redeliver/")

    assert response.status_code == 202
    assert response.json()["redelivery_of"] == original.pk
    assert response.json()["event_id"] == str(original.event_id)
    assert len(receiver.requests) == 2
    assert json.loads(receiver.requests[1]["body"])["id"] == str(original.event_id)
    log = client.get(f"/api/v1/webhooks/{subscription.pk}/deliveries/").json()["results"]
    assert [(row["id"], row["status"]) for row in log] == [
        (response.json()["id"], "succeeded"),
        (original.pk, "succeeded"),
    ]


# --- domain events → webhooks ------------------------------------------------------------


def test_customer_created_through_the_api_is_sent(agent, api_for, receiver, django_capture_on_commit_callbacks):
    subscribe(receiver.url, events=["customer.created"])

    with django_capture_on_commit_callbacks(execute=True):
        response = api_for(agent).post(
            "/api/v1/customers/", {"display_name": "Budi", "identities": [{"kind": "email", "value": "budi@mail.test"}]},
            format="json",
        )

    assert response.status_code == 201
    assert len(receiver.requests) == 1
    payload = json.loads(receiver.requests[0]["body"])
    assert payload["type"] == "customer.created"
    assert payload["data"]["customer"]["id"] == response.json()["id"]
    assert payload["data"]["customer"]["display_name"] == "Budi"


def test_customer_merge_is_sent(receiver, supervisor, django_capture_on_commit_callbacks):
    subscribe(receiver.url, events=["customer.merged"])
    survivor, merged = CustomerFactory(), CustomerFactory()

    with django_capture_on_commit_callbacks(execute=True):
        merge = customer_merge(survivor=survivor, merged=merged, actor=supervisor)

    payload = json.loads(receiver.requests[-1]["body"])
    assert payload["type"] == "customer.merged"
    assert payload["data"]["survivor"]["id"] == survivor.pk
    assert payload["data"]["merged_id"] == merged.pk
    assert payload["data"]["merge_id"] == merge.pk
    assert Customer.objects.filter(pk=survivor.pk).exists()


def test_stage_change_sends_customer_updated_and_customer_stage_changed(receiver, django_capture_on_commit_callbacks):
    subscribe(receiver.url, events=["customer.updated", "customer.stage_changed"])
    customer = CustomerFactory()

    with django_capture_on_commit_callbacks(execute=True):
        customer_update(customer=customer, lifecycle_stage="acquisition")

    payloads = sorted((json.loads(r["body"]) for r in receiver.requests), key=lambda p: p["type"])
    assert [p["type"] for p in payloads] == ["customer.stage_changed", "customer.updated"]
    assert payloads[0]["data"]["stage"] == "acquisition"
    assert payloads[0]["data"]["customer"]["id"] == customer.pk
    assert "lifecycle_stage" in payloads[1]["data"]["changed"]


def test_a_profile_edit_without_stage_change_sends_only_customer_updated(receiver, django_capture_on_commit_callbacks):
    subscribe(receiver.url, events=["customer.updated", "customer.stage_changed"])
    customer = CustomerFactory()

    with django_capture_on_commit_callbacks(execute=True):
        customer_update(customer=customer, display_name="Dewi S.")

    assert [json.loads(r["body"])["type"] for r in receiver.requests] == ["customer.updated"]
    assert json.loads(receiver.requests[0]["body"])["data"]["changed"] == ["display_name"]


def test_a_delivery_whose_enqueue_was_lost_is_picked_up_by_the_due_task(receiver):
    subscription = subscribe(receiver.url)
    fresh = WebhookDelivery.objects.create(subscription=subscription, event_type="customer.created", payload={})
    lost = WebhookDelivery.objects.create(
        subscription=subscription, event_type="customer.created", payload={},
        created_at=timezone.now() - timedelta(minutes=6),
    )

    assert services.webhook_deliveries_due() == [lost.pk]
    webhook_deliveries_due_task()

    lost.refresh_from_db()
    fresh.refresh_from_db()
    assert lost.status == WebhookDelivery.Status.SUCCEEDED
    assert fresh.status == WebhookDelivery.Status.PENDING
    assert len(receiver.requests) == 1


def test_an_enqueue_failure_does_not_fail_the_committed_change(receiver, monkeypatch, django_capture_on_commit_callbacks):
    subscribe(receiver.url)

    def broker_down(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(webhook_deliver_task, "delay", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        services.webhook_event_emit(type="customer.created", data={})

    assert WebhookDelivery.objects.get().status == WebhookDelivery.Status.PENDING
    assert receiver.requests == []


def test_an_attempt_in_progress_or_not_yet_due_is_not_made_twice(receiver):
    subscription = subscribe(receiver.url)
    delivery = WebhookDelivery.objects.create(
        subscription=subscription, event_type="customer.created", payload={}, status=WebhookDelivery.Status.RETRYING,
        attempt=1, next_attempt_at=timezone.now() + timedelta(minutes=1),
    )

    webhook_deliver_task(delivery.pk)

    delivery.refresh_from_db()
    assert receiver.requests == []
    assert delivery.attempt == 1
    assert delivery.status == WebhookDelivery.Status.RETRYING


def test_housekeeping_drops_expired_idempotency_records_and_old_finished_deliveries(receiver, agent):
    from integrations.models import IdempotencyRecord
    from integrations.tasks import idempotency_records_purge_task

    subscription = subscribe(receiver.url)
    now = timezone.now()
    old_done = WebhookDelivery.objects.create(subscription=subscription, event_type="customer.created", payload={},
                                              status="succeeded", created_at=now - timedelta(days=31))
    old_retrying = WebhookDelivery.objects.create(subscription=subscription, event_type="customer.created", payload={},
                                                  status="retrying", created_at=now - timedelta(days=31))
    recent = WebhookDelivery.objects.create(subscription=subscription, event_type="customer.created", payload={},
                                            status="failed", created_at=now - timedelta(days=29))
    IdempotencyRecord.objects.create(user=agent, key="old", request_hash="x", expires_at=now - timedelta(seconds=1))
    IdempotencyRecord.objects.create(user=agent, key="live", request_hash="x", expires_at=now + timedelta(hours=1))

    idempotency_records_purge_task()

    assert set(WebhookDelivery.objects.values_list("pk", flat=True)) == {old_retrying.pk, recent.pk}
    assert old_done.pk not in set(WebhookDelivery.objects.values_list("pk", flat=True))
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["live"]


def test_delivery_log_query_count_does_not_grow(admin_user, api_for, receiver, django_assert_max_num_queries):
    subscription = subscribe(receiver.url)
    for _ in range(20):
        WebhookDelivery.objects.create(subscription=subscription, event_type="customer.created", payload={})
    client = api_for(admin_user)

    with django_assert_max_num_queries(8):
        deliveries = client.get(f"/api/v1/webhooks/{subscription.pk}/deliveries/")
    with django_assert_max_num_queries(8):
        subscriptions = client.get("/api/v1/webhooks/")

    assert len(deliveries.json()["results"]) == 20
    assert len(subscriptions.json()["results"]) == 1
