"""Authentication backend: Django's ModelBackend with each user's permissions and role groups
kept in the shared cache.

Every API request and page checks a model permission (`user.has_perm`) and the viewer's role
(`user.role`, from their groups). Django answers those with three queries per request (user
permissions, group permissions, groups): on the note API that was a quarter of the request's
statements. Here they cost one cache round trip (`get_many` of the user's entry and the
current version), and the queries run only on a miss.

Invalidation is by version, not by key: any change to who holds which group or permission
(the m2m tables of `User.groups`, `User.user_permissions`, `Group.permissions`, and saving or
deleting a Group or Permission) replaces the version token, so every entry is stale at once.
The token is replaced immediately and again after the transaction commits, so a request that
rebuilt an entry from the not-yet-committed state cannot keep it. A superuser's entry is keyed
apart (their permission set is everything). Entries also expire after `ACCESS_CACHE_SECONDS`.
"""
from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission
from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save

VERSION_KEY = "accounts:access:version"
ENTRY_KEY = "accounts:access:{pk}:{superuser:d}"


def _seconds() -> int:
    return int(getattr(settings, "ACCESS_CACHE_SECONDS", 300))


def _version() -> str:
    version = cache.get(VERSION_KEY)
    if version is None:
        cache.add(VERSION_KEY, uuid.uuid4().hex, timeout=None)
        version = cache.get(VERSION_KEY)
    return version


def _load(user) -> dict[str, Any]:
    """Two queries: the user's groups with their permissions (one LEFT JOIN), and the user's
    own permissions (for a superuser: every permission)."""
    def names(perms) -> set[str]:
        return {f"{app}.{codename}" for app, codename in perms.values_list("content_type__app_label", "codename").order_by()}

    rows = user.groups.values_list("name", "permissions__content_type__app_label", "permissions__codename").order_by()
    groups = sorted({name for name, _app, _codename in rows})
    if user.is_superuser:
        everything = names(Permission.objects.all())
        return {"groups": groups, "user": everything, "group": everything}
    return {"groups": groups, "user": names(user.user_permissions.all()),
            "group": {f"{app}.{codename}" for _name, app, codename in rows if codename}}


def user_access(user) -> dict[str, Any]:
    """{"groups": [names], "user": {perms}, "group": {perms}} for a saved user; kept on the
    instance for the rest of the request."""
    cached = getattr(user, "_access_cache", None)
    if cached is not None:
        return cached
    key = ENTRY_KEY.format(pk=user.pk, superuser=user.is_superuser)
    found = cache.get_many([VERSION_KEY, key])
    version = found.get(VERSION_KEY) or _version()
    entry = found.get(key)
    if entry is None or entry.get("version") != version:
        entry = {"version": version, **_load(user)}
        cache.set(key, entry, timeout=_seconds())
    user._access_cache = entry
    return entry


def access_forget(user) -> None:
    """Drop what this instance remembers of its groups, role and permissions."""
    for attribute in ("_access_cache", "_role_cache", "_perm_cache", "_user_perm_cache", "_group_perm_cache"):
        user.__dict__.pop(attribute, None)


def access_invalidate(**_kwargs: Any) -> None:
    """Every cached entry is stale from now on (and again once the current transaction commits)."""
    def bump() -> None:
        cache.set(VERSION_KEY, uuid.uuid4().hex, timeout=None)

    bump()
    transaction.on_commit(bump, robust=True)


class CachedPermissionsBackend(ModelBackend):
    """Fills the same per-instance attributes ModelBackend caches in (`_user_perm_cache`,
    `_group_perm_cache`), so allauth's backend, a ModelBackend too, asked next for a permission
    this one denied, finds them set and does not query either."""

    def _get_permissions(self, user_obj, obj, from_name):
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        attribute = f"_{from_name}_perm_cache"
        if not hasattr(user_obj, attribute):
            setattr(user_obj, attribute, set(user_access(user_obj)[from_name]))
        return getattr(user_obj, attribute)


def connect_invalidation() -> None:
    from django.contrib.auth import get_user_model

    User = get_user_model()
    for through in (User.groups.through, User.user_permissions.through, Group.permissions.through):
        m2m_changed.connect(access_invalidate, sender=through, dispatch_uid=f"access_invalidate_{through._meta.label}")
    for model in (Group, Permission):
        post_save.connect(access_invalidate, sender=model, dispatch_uid=f"access_invalidate_save_{model._meta.label}")
        post_delete.connect(access_invalidate, sender=model, dispatch_uid=f"access_invalidate_delete_{model._meta.label}")
