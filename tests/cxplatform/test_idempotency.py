"""Idempotency-Key on API POSTs: replay, conflict, per-user keys, expiry."""
from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.services import api_token_create
from customers.models import Customer
from integrations.models import IdempotencyRecord

pytestmark = pytest.mark.django_db

BODY = {"display_name": "Dewi", "identities": [{"kind": "email", "value": "dewi@mail.test"}]}


def bearer(user) -> APIClient:
    _token, raw = api_token_create(user=user, name="test")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_same_key_same_body_replays_the_original_response_and_creates_nothing(agent):
    client = bearer(agent)

    first = client.post("/api/v1/customers/", BODY, format="json", HTTP_IDEMPOTENCY_KEY="key-1")
    second = client.post("/api/v1/customers/", BODY, format="json", HTTP_IDEMPOTENCY_KEY="key-1")

    assert first.status_code == 201
    assert second.status_code == 201
    assert second.content == first.content
    assert second["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert Customer.objects.count() == 1


def test_same_key_different_body_is_422_in_the_common_error_shape(agent):
    client = bearer(agent)
    client.post("/api/v1/customers/", BODY, format="json", HTTP_IDEMPOTENCY_KEY="key-1")

    response = client.post("/api/v1/customers/", {**BODY, "display_name": "Budi"}, format="json",
                           HTTP_IDEMPOTENCY_KEY="key-1")

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "idempotency_key_reused"
    assert error["fields"] == {}
    assert error["request_id"] == response["X-Request-ID"]
    assert Customer.objects.count() == 1
    assert Customer.objects.get().display_name == "Dewi"


def test_same_key_on_another_path_is_422(agent):
    client = bearer(agent)
    client.post("/api/v1/customers/", BODY, format="json", HTTP_IDEMPOTENCY_KEY="key-1")

    response = client.post("/api/v1/segments/", BODY, format="json", HTTP_IDEMPOTENCY_KEY="key-1")

    assert response.status_code == 422


def test_without_a_key_each_post_acts(agent):
    client = bearer(agent)

    client.post("/api/v1/customers/", {"display_name": "A"}, format="json")
    client.post("/api/v1/customers/", {"display_name": "A"}, format="json")

    assert Customer.objects.count() == 2
    assert not IdempotencyRecord.objects.exists()


def test_keys_are_per_user(agent, supervisor):
    first = bearer(agent).post("/api/v1/customers/", BODY, format="json", HTTP_IDEMPOTENCY_KEY="shared")
    second = bearer(supervisor).post("/api/v1/customers/", {"display_name": "Other"}, format="json",
                                     HTTP_IDEMPOTENCY_KEY="shared")

    assert first.status_code == 201
    assert second.status_code == 201
    assert second.json()["id"] != first.json()["id"]


def test_session_authenticated_posts_are_covered(client, agent):
    client.force_login(agent)

    first = client.post("/api/v1/customers/", BODY, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k")
    second = client.post("/api/v1/customers/", BODY, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k")

    assert first.status_code == 201
    assert second.content == first.content
    assert Customer.objects.count() == 1


def test_validation_errors_are_replayed_too(agent):
    client = bearer(agent)
    bad = {"identities": [{"kind": "email"}]}

    first = client.post("/api/v1/customers/", bad, format="json", HTTP_IDEMPOTENCY_KEY="k")
    second = client.post("/api/v1/customers/", bad, format="json", HTTP_IDEMPOTENCY_KEY="k")

    assert first.status_code == 400
    assert second.status_code == 400
    assert second["Idempotent-Replayed"] == "true"


def test_in_progress_key_is_409(agent):
    client = bearer(agent)
    body = json.dumps(BODY).encode()
    # The first request with this key and body has reserved it and is still running.
    IdempotencyRecord.objects.create(
        user=agent, key="k", request_hash=hashlib.sha256(b"POST\n/api/v1/customers/\n" + body).hexdigest(),
        expires_at=timezone.now() + timedelta(hours=1),
    )

    response = client.post("/api/v1/customers/", body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k")

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"
    assert Customer.objects.count() == 0


def test_a_reservation_left_by_a_crashed_request_is_released_after_five_minutes(agent):
    client = bearer(agent)
    body = json.dumps(BODY).encode()
    IdempotencyRecord.objects.create(
        user=agent, key="k", request_hash=hashlib.sha256(b"POST\n/api/v1/customers/\n" + body).hexdigest(),
        created_at=timezone.now() - timedelta(minutes=6), expires_at=timezone.now() + timedelta(hours=1),
    )

    response = client.post("/api/v1/customers/", body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k")

    assert response.status_code == 201
    assert Customer.objects.count() == 1
    assert IdempotencyRecord.objects.get().status_code == 201


def test_expired_key_acts_again(agent):
    client = bearer(agent)
    client.post("/api/v1/customers/", {"display_name": "A"}, format="json", HTTP_IDEMPOTENCY_KEY="k")
    IdempotencyRecord.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    response = client.post("/api/v1/customers/", {"display_name": "A"}, format="json", HTTP_IDEMPOTENCY_KEY="k")

    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response
    assert Customer.objects.count() == 2


def test_record_expires_after_24_hours(agent):
    before = timezone.now()
    bearer(agent).post("/api/v1/customers/", BODY, format="json", HTTP_IDEMPOTENCY_KEY="k")

    record = IdempotencyRecord.objects.get()
    assert record.status_code == 201
    assert timedelta(hours=24) <= record.expires_at - before < timedelta(hours=24, seconds=30)
