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
    nps = forms.TypedChoiceField(
        label=_("How likely are you to recommend us to a friend? (optional, 0 = not at all, 10 = extremely)"),
        choices=[("", "—"), *[(n, str(n)) for n in range(11)]], coerce=int, required=False, empty_value=None,
    )
    comment = forms.CharField(label=_("Anything you want to tell us? (optional)"), required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 4}))


class ReportFilterForm(forms.Form):
    from_ = forms.DateField(label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    to = forms.DateField(label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    group_by = forms.ChoiceField(
        label=_("Group by"),
        required=False,
        choices=[("", _("No grouping")), ("channel", _("Channel")), ("inbox", _("Inbox")), ("agent", _("Agent")), ("team", _("Team")),
                 ("label", _("Label")), ("period", _("Period"))],
    )
    segment = forms.TypedChoiceField(label=_("Customer segment"), required=False, coerce=int, empty_value=None, choices=[("", _("All customers"))])
    period = forms.ChoiceField(label=_("Period"), required=False, choices=[("month", _("Month")), ("week", _("Week")), ("day", _("Day"))])
    hours = forms.ChoiceField(label=_("Count time in"), required=False, choices=[("calendar", _("Calendar hours")), ("business", _("Business hours"))])

    def __init__(self, data=None, *args, segments: list[tuple[int, str]] | None = None, **kwargs):
        if data is not None:
            data = data.copy()
            if "from" in data:
                data["from_"] = data.get("from")
        super().__init__(data, *args, **kwargs)
        self.fields["segment"].choices = [("", _("All customers")), *(segments or [])]


class MaturityAssessmentForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=200)
    notes = forms.CharField(label=_("Notes"), required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 3}))


class MaturityScoreForm(forms.Form):
    """One row per dimension: level (with each cell's guidance), target, horizon, actions."""

    def __init__(self, *args, language: str = "en", initial_scores=None, **kwargs):
        from journeys.maturity_grid import DIMENSIONS, text

        super().__init__(*args, **kwargs)
        initial_scores = initial_scores or {}
        self.dimension_rows = []
        for dimension in DIMENSIONS:
            code = dimension["code"]
            current = initial_scores.get(code)
            choices = [(n, f"{n} · {text(level, language)}") for n, level in enumerate(dimension["levels"], start=1)]
            self.fields[f"{code}-level"] = forms.TypedChoiceField(
                label=text(dimension, language), choices=choices, coerce=int, required=False, widget=forms.RadioSelect,
                initial=current.level if current else None,
            )
            self.fields[f"{code}-target"] = forms.TypedChoiceField(
                label=_("Target level"), choices=[("", "—"), *[(n, str(n)) for n in range(1, 6)]], coerce=int,
                required=False, empty_value=None, initial=current.target_level if current else None,
            )
            self.fields[f"{code}-horizon"] = forms.ChoiceField(
                label=_("When"), required=False,
                choices=[("", "—"), ("short", _("Short term")), ("mid", _("Mid term")), ("long", _("Long term"))],
                initial=current.horizon if current else "",
            )
            self.fields[f"{code}-actions"] = forms.CharField(
                label=_("Actions"), required=False, max_length=1000, initial=current.actions if current else "",
            )
            self.dimension_rows.append({
                "code": code,
                "level": self[f"{code}-level"], "target": self[f"{code}-target"],
                "horizon": self[f"{code}-horizon"], "actions": self[f"{code}-actions"],
            })

    def scores(self) -> list[dict]:
        out = []
        for row in self.dimension_rows:
            code = row["code"]
            level = self.cleaned_data.get(f"{code}-level")
            if level in (None, ""):
                continue
            out.append({
                "dimension": code, "level": level, "target_level": self.cleaned_data.get(f"{code}-target"),
                "horizon": self.cleaned_data.get(f"{code}-horizon") or "", "actions": self.cleaned_data.get(f"{code}-actions") or "",
            })
        return out


class NpsSurveyForm(forms.Form):
    score = forms.TypedChoiceField(
        label=_("How likely are you to recommend us to a friend or colleague?"),
        choices=[(n, str(n)) for n in range(11)], coerce=int, widget=forms.RadioSelect,
    )
    comment = forms.CharField(label=_("What is the main reason for your score? (optional)"), required=False, max_length=2000,
                              widget=forms.Textarea(attrs={"rows": 4}))


class NpsCampaignForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    segment = forms.TypedChoiceField(label=_("Send to the customers of segment"), coerce=int)
    question = forms.CharField(label=_("Question (optional)"), required=False, max_length=300,
                               help_text=_("Sent with the survey link. Default: “How likely are you to recommend us to a friend? (0–10)”"))

    def __init__(self, *args, segments: list[tuple[int, str]] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["segment"].choices = segments or []
