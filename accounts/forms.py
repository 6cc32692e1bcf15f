from __future__ import annotations

import zoneinfo

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.models import Availability, User

COMMON_TIME_ZONES = [
    "Asia/Jakarta", "Asia/Makassar", "Asia/Jayapura", "Asia/Singapore", "Asia/Kuala_Lumpur",
    "Asia/Bangkok", "Asia/Manila", "Asia/Tokyo", "Australia/Sydney", "Europe/London", "UTC",
]


class PreferencesForm(forms.ModelForm):
    time_zone = forms.ChoiceField(
        label=_("Time zone"),
        choices=[(tz, tz) for tz in COMMON_TIME_ZONES] + [(tz, tz) for tz in sorted(zoneinfo.available_timezones()) if tz not in COMMON_TIME_ZONES],
    )

    class Meta:
        model = User
        fields = ["full_name", "language", "time_zone"]


class AvailabilityForm(forms.Form):
    availability = forms.ChoiceField(label=_("Availability"), choices=Availability.choices)


class ApiTokenForm(forms.Form):
    name = forms.CharField(label=_("Token name"), max_length=100, help_text=_("What will use it, e.g. 'Shop order sync'."))
    expires_at = forms.DateTimeField(label=_("Expires"), required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
