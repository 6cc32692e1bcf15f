from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _


class SurveyForm(forms.Form):
    rating = forms.TypedChoiceField(
        label=_("How satisfied are you with the help you got?"),
        choices=[(n, str(n)) for n in range(1, 6)],
        coerce=int,
        widget=forms.RadioSelect,
    )
    comment = forms.CharField(label=_("Anything you want to tell us? (optional)"), required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 4}))


class ReportFilterForm(forms.Form):
    from_ = forms.DateField(label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    to = forms.DateField(label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    group_by = forms.ChoiceField(
        label=_("Group by"),
        required=False,
        choices=[("", _("No grouping")), ("channel", _("Channel")), ("inbox", _("Inbox")), ("agent", _("Agent")), ("team", _("Team")), ("period", _("Period"))],
    )
    period = forms.ChoiceField(label=_("Period"), required=False, choices=[("month", _("Month")), ("week", _("Week")), ("day", _("Day"))])

    def __init__(self, data=None, *args, **kwargs):
        if data is not None:
            data = data.copy()
            if "from" in data:
                data["from_"] = data.get("from")
        super().__init__(data, *args, **kwargs)
