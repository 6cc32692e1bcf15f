from __future__ import annotations

import zoneinfo

from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone, translation

from accounts.selectors import mfa_required_for, teams_remembered
from accounts.services import user_seen


class RequestTeamsMiddleware:
    """Each user's teams are read at most once per request (accounts.selectors.team_ids_for_user)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        with teams_remembered():
            return self.get_response(request)


class UserPreferencesMiddleware:
    """Pages speak the signed-in user's language and show times in their time zone."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            translation.activate(user.language)
            request.LANGUAGE_CODE = user.language
            try:
                timezone.activate(zoneinfo.ZoneInfo(user.time_zone))
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                timezone.deactivate()
            user_seen(user=user)
        response = self.get_response(request)
        if user is not None and user.is_authenticated:
            timezone.deactivate()
        return response


class MfaRequiredMiddleware:
    """Members of a role whose policy requires two-factor sign-in must set it up first."""

    ALLOWED_PREFIXES = ("/accounts/", "/static/", "/healthz", "/readyz", "/i18n/", "/api/", "/webhooks/")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and not request.path.startswith(self.ALLOWED_PREFIXES)
            and mfa_required_for(user=user)
        ):
            from allauth.mfa.utils import is_mfa_enabled

            if not is_mfa_enabled(user):
                return redirect(f"{reverse('mfa_activate_totp')}?next={request.path}")
        return self.get_response(request)
