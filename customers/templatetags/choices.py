"""`{{ obj|choice_label:"field" }}`: what `obj.get_<field>_display` shows, without its cost.

Django's get_FOO_display hashes every (lazily translated) choice on each call — a translation
lookup per choice, per row: a tenth of the inbox list's rendering. (Here, in the app every other
app may depend on, so channels_app's templates can load it too.) The value → label mapping is
built once per field here and only the shown label is translated.
"""
from __future__ import annotations

from functools import cache

from django import template

register = template.Library()


@cache
def _labels(field) -> dict:
    return dict(field.flatchoices)


@register.filter
def choice_label(obj, field_name: str):
    field = obj._meta.get_field(field_name)
    value = getattr(obj, field.attname)
    return _labels(field).get(value, value)
