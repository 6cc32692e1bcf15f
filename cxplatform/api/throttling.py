"""Rate limits: per API token, per signed-in user and per client IP, counted in the Django
cache (Redis when REDIS_URL is set, so every worker shares the counters).

Each limit is a counter per window that starts with the first request (`cxplatform.cache.
window_hit`, one pipelined Redis round trip), not DRF's list of request times, whose cost grew with the
rate allowed. A client may spend its whole allowance at once; it then waits for the window's
end, which `Retry-After` gives.

Rates live in REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] (env: API_RATE_TOKEN, API_RATE_USER,
API_RATE_IP) and are read at request time. A refused request gets 429, a `Retry-After`
header and the common error body (cxplatform.api.errors).
"""
from __future__ import annotations

from django.conf import settings
from rest_framework import throttling

from cxplatform.cache import window_hit


class _SettingsRateMixin:
    def get_rate(self):
        rates = settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {})
        return rates.get(self.scope)


class TokenRateThrottle(_SettingsRateMixin, throttling.SimpleRateThrottle):
    """Per API token (Bearer requests)."""

    scope = "token"

    def __init__(self):
        pass  # rate resolved per request in allow_request (settings may change in tests)

    def allow_request(self, request, view):
        self.rate = self.get_rate()
        if self.rate is None:
            return True
        self.num_requests, self.duration = self.parse_rate(self.rate)
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        hits, self.retry_after = window_hit(self.key, seconds=self.duration)
        return hits <= self.num_requests

    def wait(self):
        return self.retry_after

    def get_cache_key(self, request, view):
        token = request.auth
        if token is None or not hasattr(token, "key_hash"):
            return None
        return self.cache_format % {"scope": self.scope, "ident": token.pk}


class UserRateThrottle(TokenRateThrottle):
    """Per signed-in user on session-authenticated requests."""

    scope = "user"

    def get_cache_key(self, request, view):
        if request.auth is not None or not (request.user and request.user.is_authenticated):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}


class IpRateThrottle(TokenRateThrottle):
    """Per client IP, whoever is calling (also bounds brute-forcing tokens)."""

    scope = "ip"

    def get_ident(self, request):
        # REMOTE_ADDR, as everywhere else in the project (audit log, token last-used IP). DRF's
        # default trusts any X-Forwarded-For when NUM_PROXIES is unset, so a client could
        # dodge the limit by sending a new made-up address with every request.
        return request.META.get("REMOTE_ADDR", "")

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
