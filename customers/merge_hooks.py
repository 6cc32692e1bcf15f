"""Which rows follow a customer when profiles are merged (and go back on unmerge).

Every foreign key to `Customer` that belongs to the profile must be registered here, so a
merge repoints it and records the moved primary keys in the merge snapshot. Other apps
register theirs in their AppConfig.ready(), without the customers app knowing them::

    from customers import merge_hooks
    merge_hooks.register("channels_app.Conversation", "customer")

When a bare repoint would break an app's own rule (e.g. "one unresolved conversation per
customer"), the app also registers a *participant*: `prepare(survivor=, merged=)` runs in
the merge transaction before any row moves and returns JSON-able data that is stored in the
merge snapshot; `restore(survivor=, merged=, data=)` runs on unmerge after the rows moved
back, to undo what `prepare` did::

    merge_hooks.register_participant("channels.open_conversations", prepare=fold, restore=unfold)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.db import models


@dataclass(frozen=True)
class MergeHook:
    model_label: str  # "app_label.ModelName"
    field: str

    @property
    def key(self) -> str:
        return f"{self.model_label.lower()}.{self.field}"

    def model(self) -> type[models.Model]:
        return apps.get_model(self.model_label)


_registry: dict[str, MergeHook] = {}


def register(model: str | type[models.Model], field: str) -> MergeHook:
    """Register `model.field` (a ForeignKey to Customer) as moving with merges; idempotent."""
    label = model if isinstance(model, str) else model._meta.label
    hook = MergeHook(model_label=label, field=field)
    _registry[hook.key] = hook
    return hook


def unregister(model: str | type[models.Model], field: str) -> None:
    label = model if isinstance(model, str) else model._meta.label
    _registry.pop(MergeHook(model_label=label, field=field).key, None)


def registered() -> list[MergeHook]:
    return list(_registry.values())


@dataclass(frozen=True)
class MergeParticipant:
    name: str
    prepare: Callable[..., dict | None]
    restore: Callable[..., None] | None = None


_participants: dict[str, MergeParticipant] = {}


def register_participant(
    name: str, *, prepare: Callable[..., dict | None], restore: Callable[..., None] | None = None
) -> MergeParticipant:
    """Register code that runs before rows move on merge, and after they return on unmerge."""
    participant = MergeParticipant(name=name, prepare=prepare, restore=restore)
    _participants[name] = participant
    return participant


def unregister_participant(name: str) -> None:
    _participants.pop(name, None)


def participants() -> list[MergeParticipant]:
    return list(_participants.values())


def participant(name: str) -> MergeParticipant | None:
    return _participants.get(name)


JsonData = dict[str, Any]
