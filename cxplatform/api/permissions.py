"""Token scopes: `<group>:read` / `<group>:write` per resource group.

A token with an empty `scopes` list may do whatever its user may do. A scoped token may only
read (GET/HEAD/OPTIONS) groups it holds `:read` or `:write` for, and write (POST/PUT/PATCH/
DELETE) groups it holds `:write` for; the user's own permissions still apply on top.

The group is the view's `scope_group` attribute when it has one, else derived from the first
path segment under /api/v1/ (so no other app's view needs to change). Paths that map to no
group are refused to scoped tokens.

Most views in the project set their own `permission_classes`, which replace DRF's defaults,
so the same check also runs as `TokenScopeGuard` in DEFAULT_THROTTLE_CLASSES (see there);
`TokenScopePermission` covers views that keep the default permissions.
"""
from __future__ import annotations

from rest_framework import exceptions, permissions, throttling

API_PREFIX = "/api/v1/"
SCOPE_GROUPS = ("customers", "conversations", "inboxes", "events", "reports", "webhooks", "accounts")
READ_METHODS = ("GET", "HEAD", "OPTIONS")

# First path segment under /api/v1/ → resource group.
PATH_GROUPS = {
    "customers": "customers",
    "segments": "customers",
    "merges": "customers",
    "conversations": "conversations",
    "inboxes": "inboxes",
    "office-hours": "inboxes",
    "canned-responses": "conversations",
    "labels": "conversations",
    "events": "events",
    "csat-responses": "events",
    "maturity-assessments": "reports",
    "reports": "reports",
    "webhooks": "webhooks",
    "webhook-deliveries": "webhooks",
    "me": "accounts",
    "teams": "accounts",
    "agents": "accounts",
}
# Sub-resources that belong to another group than their first segment.
SUBPATH_GROUPS = {("customers", "stage"): "events", ("customers", "stage-history"): "events"}

ALL_SCOPES = [f"{group}:{access}" for group in SCOPE_GROUPS for access in ("read", "write")]


def scope_group_for_path(path: str) -> str | None:
    if not path.startswith(API_PREFIX):
        return None
    segments = [s for s in path[len(API_PREFIX):].split("/") if s]
    if not segments:
        return None
    if len(segments) >= 3 and (segments[0], segments[2]) in SUBPATH_GROUPS:
        return SUBPATH_GROUPS[(segments[0], segments[2])]
    return PATH_GROUPS.get(segments[0])


def scope_allows(scopes: list[str] | None, *, group: str | None, method: str) -> bool:
    if not scopes:
        return True
    if group is None:
        return False
    if method.upper() in READ_METHODS:
        return f"{group}:read" in scopes or f"{group}:write" in scopes
    return f"{group}:write" in scopes


def required_scope(*, group: str | None, method: str) -> str:
    return f"{group or '?'}:{'read' if method.upper() in READ_METHODS else 'write'}"


class TokenScopePermission(permissions.BasePermission):
    message = "This API token does not have the scope this request needs."

    def has_permission(self, request, view):
        token = request.auth
        scopes = getattr(token, "scopes", None)
        if not scopes:
            return True
        group = getattr(view, "scope_group", None) or scope_group_for_path(request.path)
        allowed = scope_allows(scopes, group=group, method=request.method)
        if not allowed:
            self.message = f"This API token lacks the scope {required_scope(group=group, method=request.method)}."
        return allowed


def bearer_token_for(request):
    """The ApiToken of a `Authorization: Bearer` request (cached on the request), or None."""
    if hasattr(request, "_cx_api_token"):
        return request._cx_api_token
    token = None
    header = request.headers.get("Authorization", "")
    parts = header.split()
    if len(parts) == 2 and parts[0] == "Bearer":
        from accounts.services import api_token_authenticate

        token = api_token_authenticate(raw=parts[1], ip=request.META.get("REMOTE_ADDR"))
    request._cx_api_token = token
    return token


class TokenScopeGuard(throttling.BaseThrottle):
    """Enforces token scopes on every DRF view, including those with their own
    `permission_classes`.

    It sits in DEFAULT_THROTTLE_CLASSES because the throttle phase is the one per-request DRF
    hook that runs after authentication on every view and that no view in the project
    overrides; it never rate-limits, it raises PermissionDenied (403, common error shape).
    """

    def allow_request(self, request, view):
        if not TokenScopePermission().has_permission(request, view):
            group = getattr(view, "scope_group", None) or scope_group_for_path(request.path)
            raise exceptions.PermissionDenied(
                f"This API token lacks the scope {required_scope(group=group, method=request.method)}."
            )
        return True
