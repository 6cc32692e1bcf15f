"""Form pieces shared by the apps' HTML forms."""
from __future__ import annotations

from django import forms
from django.forms.models import ModelChoiceIterator


class PlainModelChoiceIterator(ModelChoiceIterator):
    """The options from one ordinary query. Django's iterator reads the queryset with
    `QuerySet.iterator()`, which on PostgreSQL is a server-side cursor (DECLARE, FETCH, CLOSE,
    and a WITH HOLD cursor materialised at commit): three round trips for a handful of teams or
    segments."""

    def __iter__(self):
        if self.field.empty_label is not None:
            yield ("", self.field.empty_label)
        for obj in self.queryset.all():
            yield self.choice(obj)


class PlainModelChoiceField(forms.ModelChoiceField):
    """A ModelChoiceField whose select is rendered from one ordinary query; validation still
    looks the chosen value up in the queryset."""

    iterator = PlainModelChoiceIterator
