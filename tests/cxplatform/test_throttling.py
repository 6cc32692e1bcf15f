"""Rate limits: per token, per user session, per IP → 429 with Retry-After in the common shape."""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.services import api_token_create

pytestmark = pytest.mark.django_db


def bearer(user) -> APIClient:
    _token, raw = api_token_create(user=user, name="test")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


@pytest.fixture
def rates(settings):
    def set_rates(token="1000/min", user="1000/min", ip="1000/min"):
        settings.REST_FRAMEWORK = {
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {"token": token, "user": user, "ip": ip},
        }

    return set_rates


def test_token_over_its_limit_gets_429_with_retry_after(agent, rates):
    rates(token="3/min")
    client = bearer(agent)

    statuses = [client.get("/api/v1/me/").status_code for _ in range(4)]
    response = client.get("/api/v1/me/")

    assert statuses == [200, 200, 200, 429]
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    error = response.json()["error"]
    assert error["code"] == "throttled"
    assert error["request_id"] == response["X-Request-ID"]


def test_limits_are_per_token(agent, rates):
    rates(token="2/min")
    first, second = bearer(agent), bearer(agent)
    first.get("/api/v1/me/")
    first.get("/api/v1/me/")

    assert first.get("/api/v1/me/").status_code == 429
    assert second.get("/api/v1/me/").status_code == 200


def test_ip_limit_applies_across_tokens(agent, supervisor, rates):
    rates(ip="2/min")
    bearer(agent).get("/api/v1/me/", REMOTE_ADDR="203.0.113.9")
    bearer(supervisor).get("/api/v1/me/", REMOTE_ADDR="203.0.113.9")

    refused = bearer(supervisor).get("/api/v1/me/", REMOTE_ADDR="203.0.113.9")
    other_ip = bearer(supervisor).get("/api/v1/me/", REMOTE_ADDR="203.0.113.10")

    assert refused.status_code == 429
    assert "Retry-After" in refused
    assert other_ip.status_code == 200


def test_session_users_are_limited_per_user(client, agent, rates):
    rates(user="1/min")
    client.force_login(agent)

    assert client.get("/api/v1/me/").status_code == 200
    assert client.get("/api/v1/me/").status_code == 429


def test_a_made_up_x_forwarded_for_does_not_dodge_the_ip_limit(agent, supervisor, rates):
    rates(ip="1/min")
    bearer(agent).get("/api/v1/me/", REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="198.51.100.1")

    response = bearer(supervisor).get("/api/v1/me/", REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="198.51.100.2")

    assert response.status_code == 429


def test_a_limit_is_one_counter_whatever_the_rate(agent, rates):
    """DRF's throttles stored every request time of the window (a list as long as the rate);
    ours store one number, so a generous limit costs what a small one does."""
    from django.core.cache import cache

    from cxplatform.cache import window_hit

    rates(token="100000/min")
    client = bearer(agent)
    for _ in range(3):
        assert client.get("/api/v1/me/").status_code == 200
    token_id = agent.api_tokens.get().pk
    assert cache.get(f"throttle_token_{token_id}") == 3

    hits, remaining = window_hit("tests:window", seconds=60)
    assert (hits, 0 < remaining <= 60) == (1, True)
    assert window_hit("tests:window", seconds=60)[0] == 2
    cache.delete("tests:window")  # the window ended
    assert window_hit("tests:window", seconds=60)[0] == 1


def test_on_redis_a_window_is_one_key_with_an_expiry_set_in_one_round_trip():
    from django.core.cache import caches

    from cxplatform.cache import RedisCache, window_hit

    cache = caches["default"]
    if not isinstance(cache, RedisCache):
        pytest.skip("needs Redis (REDIS_URL): the embedded default counts in local memory")
    assert window_hit("tests:redis-window", seconds=60)[0] == 1
    key = cache.make_and_validate_key("tests:redis-window")
    client = cache._cache.get_client(key)
    assert int(client.get(key)) == 1
    assert 0 < client.pttl(key) <= 60_000
    # Not the local-memory path (which keeps the window's end in a second key).
    assert not client.exists(cache.make_and_validate_key("tests:redis-window:ends"))
