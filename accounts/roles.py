"""What each role may do, as Django permissions on the role's group.

The groups are created (and their permissions refreshed) by `roles_sync()`, which the
post_migrate hook and `seed_demo` call; the list below is the single source of truth.
"""
from __future__ import annotations

from accounts.models import Role

# app_label -> model -> actions. Apps added later extend this map for their own models.
ROLE_PERMISSIONS: dict[str, dict[str, dict[str, tuple[str, ...]]]] = {
    Role.AGENT: {
        "accounts": {"team": ("view",)},
    },
    Role.SUPERVISOR: {
        "accounts": {
            "team": ("view", "add", "change"),
            "teammembership": ("view", "add", "change", "delete"),
            "user": ("view",),
            "auditentry": ("view",),
        },
    },
    # Admins get every permission of every model (see roles_sync).
    Role.ADMIN: {},
}
