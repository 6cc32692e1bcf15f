"""Canned responses: agents' shared replies, with a fixed set of variables."""
from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from accounts.models import User
from channels_app.models import CannedResponse, Conversation

SHORTCUT_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,49}$")
VARIABLE_RE = re.compile(r"\{\{\s*([a-z_]+\.[a-z_]+)\s*\}\}")


def canned_shortcut_clean(shortcut: str) -> str:
    value = (shortcut or "").strip().lstrip("/").lower()
    if not SHORTCUT_RE.match(value):
        raise ValidationError({"shortcut": [_("Use lower-case letters, digits, - and _ (at most 50).")]})
    return value


@transaction.atomic
def canned_response_create(
    *, shortcut: str, title: str, body: str, language: str = "", created_by: User | None = None
) -> CannedResponse:
    canned = CannedResponse(shortcut=canned_shortcut_clean(shortcut), title=(title or "").strip(), body=body or "",
                            language=(language or "").strip().lower(), created_by=created_by)
    canned.full_clean()
    canned.save()
    return canned


@transaction.atomic
def canned_response_update(
    *, canned: CannedResponse, shortcut: str | None = None, title: str | None = None, body: str | None = None,
    language: str | None = None,
) -> CannedResponse:
    canned = CannedResponse.objects.select_for_update().get(pk=canned.pk)
    if shortcut is not None:
        canned.shortcut = canned_shortcut_clean(shortcut)
    if title is not None:
        canned.title = title.strip()
    if body is not None:
        canned.body = body
    if language is not None:
        canned.language = language.strip().lower()
    canned.full_clean()
    canned.save()
    return canned


@transaction.atomic
def canned_response_delete(*, canned: CannedResponse) -> None:
    CannedResponse.objects.filter(pk=canned.pk).delete()


def _first_name(name: str) -> str:
    return name.split()[0] if name.split() else ""


def canned_variables(*, conversation: Conversation | None, agent: User | None = None) -> dict[str, str]:
    """The values a canned response may use. Only these names are ever substituted."""
    customer = conversation.customer if conversation is not None else None
    customer_name = (customer.display_name or "").strip() if customer is not None else ""
    if agent is None and conversation is not None:
        agent = conversation.assignee
    agent_first = agent.get_short_name() if agent is not None else ""
    return {
        "customer.first_name": _first_name(customer_name),
        "customer.name": customer_name,
        "agent.first_name": agent_first,
    }


def canned_text_render(*, text: str, variables: dict[str, str]) -> str:
    """Replace `{{name}}` for the known names; anything else is left exactly as written. One pass,
    so a value that itself contains `{{...}}` (a customer named "{{agent.first_name}}") stays literal."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        return variables[name] if name in variables else match.group(0)

    return VARIABLE_RE.sub(replace, text)


def canned_response_render(*, canned: CannedResponse, conversation: Conversation, agent: User | None = None) -> str:
    """The canned response's body for this conversation (the agent defaults to its assignee)."""
    return canned_text_render(text=canned.body, variables=canned_variables(conversation=conversation, agent=agent))
