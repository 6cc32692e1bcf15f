from __future__ import annotations

import pytest
from django.test import override_settings

pytestmark = pytest.mark.django_db

UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


def test_healthz_answers_without_touching_dependencies(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_ok_when_everything_is_reachable(client):
    response = client.get("/readyz")

    assert response.status_code == 200, response.json()
    assert response.json()["checks"] == {"database": "ok", "channel_layer": "ok", "task_broker": "ok"}


def test_readyz_is_503_and_names_redis_backed_parts_when_redis_is_unreachable(client):
    layers = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": UNREACHABLE_REDIS}]},
        }
    }
    with override_settings(CHANNEL_LAYERS=layers, CELERY_BROKER_URL=UNREACHABLE_REDIS):
        response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["failed"] == ["channel_layer", "task_broker"]
    assert body["checks"]["database"] == "ok"


def test_every_response_carries_a_request_id(client):
    response = client.get("/healthz", HTTP_X_REQUEST_ID="abc12345-req")

    assert response["X-Request-ID"] == "abc12345-req"
    assert len(client.get("/healthz", HTTP_X_REQUEST_ID="bad id!")["X-Request-ID"]) == 32
