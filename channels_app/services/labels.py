"""Labels on conversations."""
from __future__ import annotations

import re
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from channels_app.models import Conversation, Label

LABEL_NAME_RE = re.compile(r"^[\w][\w-]{0,49}$")
COLOUR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")


def label_name_clean(name: str) -> str:
    value = (name or "").strip().lower()
    if not LABEL_NAME_RE.match(value):
        raise ValidationError({"name": [_("A label is one word: letters, digits, - and _ (at most 50).")]})
    return value


@transaction.atomic
def label_create(*, name: str, colour: str = "#6b7280", description: str = "") -> Label:
    if not COLOUR_RE.match(colour or ""):
        raise ValidationError({"colour": [_("A colour is #RRGGBB.")]})
    label = Label(name=label_name_clean(name), colour=colour.lower(), description=(description or "").strip())
    label.full_clean()
    label.save()
    return label


@transaction.atomic
def conversation_labels_set(*, conversation: Conversation, labels: Iterable[str]) -> list[Label]:
    """Replace the conversation's labels with these names (existing labels only: a typo must not
    quietly invent a new label). Returns the labels now on it, by name."""
    names = sorted({label_name_clean(name) for name in labels})
    found = list(Label.objects.filter(name__in=names).order_by("name"))
    unknown = sorted(set(names) - {label.name for label in found})
    if unknown:
        raise ValidationError({"labels": [_("No such label: %(names)s.") % {"names": ", ".join(unknown)}]})
    conversation.labels.set(found)
    return found
