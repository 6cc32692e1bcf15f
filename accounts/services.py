"""Writes for accounts: roles, teams, availability, API tokens and the audit log."""
from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from django.apps import apps as django_apps
from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.db.models import CharField
from django.utils import timezone

from accounts.backends import access_forget
from accounts.models import ApiToken, AuditEntry, Availability, Role, RolePolicy, Team, TeamMembership, User
from accounts.roles import ROLE_PERMISSIONS
from cxplatform.db import Compiled, Param

TOKEN_PREFIX = "cxp_"


def _client_ip(request) -> str | None:
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def audit_record(
    *,
    action: str,
    actor: User | None = None,
    target=None,
    request=None,
    data: dict | None = None,
    actor_label: str = "",
) -> AuditEntry:
    """Append one audit entry. Never store secrets in `data`."""
    return AuditEntry.objects.create(
        action=action,
        actor=actor if actor is not None and actor.pk else None,
        actor_label=actor_label or (actor.email if actor is not None else ""),
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_label=str(target)[:254] if target is not None else "",
        ip_address=_client_ip(request),
        user_agent=(request.META.get("HTTP_USER_AGENT", "")[:300] if request is not None else ""),
        data=data or {},
    )


def roles_sync() -> dict[str, Group]:
    """Create the role groups and give each exactly the permissions ROLE_PERMISSIONS names."""
    groups = {}
    for role in Role:
        group, _created = Group.objects.get_or_create(name=role.value)
        RolePolicy.objects.get_or_create(group=group)
        if role == Role.ADMIN:
            permissions = Permission.objects.all()
        else:
            wanted = []
            for app_label, models in ROLE_PERMISSIONS[role].items():
                for model_name, actions in models.items():
                    if not django_apps.is_installed(app_label):
                        continue
                    wanted += [f"{action}_{model_name}" for action in actions]
            permissions = Permission.objects.filter(
                content_type__app_label__in=list(ROLE_PERMISSIONS[role]), codename__in=wanted
            )
        group.permissions.set(permissions)
        groups[role.value] = group
    return groups


@transaction.atomic
def user_role_assign(*, user: User, role: str, actor: User | None = None, request=None) -> User:
    """Give the user exactly one role; supervisors and admins may open the admin site."""
    role = Role(role)
    previous = user.role
    role_groups = Group.objects.filter(name__in=Role.values)
    group = Group.objects.get(name=role.value)
    user.groups.remove(*role_groups)
    user.groups.add(group)
    user.is_staff = role in (Role.SUPERVISOR, Role.ADMIN)
    user.save(update_fields=["is_staff"])
    access_forget(user)
    if previous != role.value:
        audit_record(
            action=AuditEntry.Action.ROLE_CHANGED,
            actor=actor,
            target=user,
            request=request,
            data={"from": previous, "to": role.value},
        )
    return user


@transaction.atomic
def user_create(
    *,
    email: str,
    password: str | None,
    full_name: str = "",
    role: str = Role.AGENT,
    teams: list[Team] | None = None,
    actor: User | None = None,
) -> User:
    user = User(email=email, full_name=full_name)
    user.set_password(password) if password else user.set_unusable_password()
    user.full_clean(exclude=["password"])
    user.save()
    user_role_assign(user=user, role=role, actor=actor)
    for team in teams or []:
        TeamMembership.objects.get_or_create(team=team, user=user)
    return user


def user_availability_set(*, user: User, availability: str) -> User:
    availability = Availability(availability)
    if user.availability != availability:
        user.availability = availability
        user.availability_changed_at = timezone.now()
        user.save(update_fields=["availability", "availability_changed_at"])
    return user


def user_seen(*, user: User, now: datetime | None = None) -> None:
    """Record activity at most once a minute (it runs on every request)."""
    now = now or timezone.now()
    if user.last_seen_at is None or now - user.last_seen_at > timedelta(minutes=1):
        User.objects.filter(pk=user.pk).update(last_seen_at=now)
        user.last_seen_at = now


def availability_expire(*, now: datetime | None = None) -> int:
    """Agents who are online or away but have not been seen for a while go offline."""
    now = now or timezone.now()
    cutoff = now - timedelta(minutes=settings.AGENT_IDLE_OFFLINE_MINUTES)
    return (
        User.objects.exclude(availability=Availability.OFFLINE)
        .filter(last_seen_at__lt=cutoff)
        .update(availability=Availability.OFFLINE, availability_changed_at=now)
    )


def _token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@transaction.atomic
def api_token_create(
    *,
    user: User,
    name: str,
    scopes: list[str] | None = None,
    expires_at: datetime | None = None,
    actor: User | None = None,
) -> tuple[ApiToken, str]:
    """Create a token; the raw value is returned once and only its hash is stored."""
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=raw[: len(TOKEN_PREFIX) + 6],
        key_hash=_token_hash(raw),
        scopes=scopes or [],
        expires_at=expires_at,
    )
    audit_record(action=AuditEntry.Action.TOKEN_CREATED, actor=actor or user, target=token, data={"name": name})
    return token, raw


# Every API request looks its token up: compiled once (cxplatform.db.Compiled), building and
# compiling it through the ORM was about a tenth of a small API request's CPU.
_TOKEN_BY_HASH = Compiled(lambda: ApiToken.objects.select_related("user").filter(
    key_hash=Param("key_hash", CharField()), revoked_at__isnull=True)[:1])


def api_token_authenticate(*, raw: str, ip: str | None) -> ApiToken | None:
    token = next(iter(_TOKEN_BY_HASH.fetch(key_hash=_token_hash(raw))), None)
    if token is None or not token.is_usable or not token.user.is_active:
        return None
    now = timezone.now()
    # Throttled write: a busy integration should not turn every read into an UPDATE.
    if token.last_used_at is None or now - token.last_used_at > timedelta(seconds=60) or token.last_used_ip != ip:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now, last_used_ip=ip)
        token.last_used_at, token.last_used_ip = now, ip
    return token


def api_token_revoke(*, token: ApiToken, actor: User | None = None) -> ApiToken:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        audit_record(action=AuditEntry.Action.TOKEN_REVOKED, actor=actor, target=token)
    return token
