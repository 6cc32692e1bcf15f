"""Reads for accounts, scoped to what the viewer may see."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.db.models import Count, Prefetch, Q, QuerySet

from accounts.models import ApiToken, Role, Team, TeamMembership, User

# The viewer's teams, remembered for one HTTP request (accounts.middleware.RequestTeamsMiddleware):
# an inbox page asked four selectors that each read them. Only inside a request: a websocket
# consumer keeps its user for hours and must see team changes (teams_sync).
_request_teams: ContextVar[dict[int, list[int]] | None] = ContextVar("accounts_request_teams", default=None)


def user_is_supervisor_or_admin(*, user: User) -> bool:
    return bool(user.is_authenticated and user.is_supervisor_or_admin)


def team_ids_for_user(*, user: User) -> list[int]:
    remembered = _request_teams.get()
    if remembered is not None and user.pk in remembered:
        return list(remembered[user.pk])
    teams = list(TeamMembership.objects.filter(user=user).values_list("team_id", flat=True))
    if remembered is not None:
        remembered[user.pk] = teams
    return list(teams)


@contextmanager
def teams_remembered() -> Iterator[None]:
    """Within the block, each user's teams are read once (until a membership changes)."""
    token = _request_teams.set({})
    try:
        yield
    finally:
        _request_teams.reset(token)


def teams_forget(**_kwargs) -> None:
    """A membership changed: what this request remembered is stale (a signal receiver)."""
    remembered = _request_teams.get()
    if remembered is not None:
        remembered.clear()


def team_list(*, viewer: User) -> QuerySet[Team]:
    """Supervisors and admins see every team; agents see the teams they belong to."""
    teams = Team.objects.annotate(member_count=Count("memberships", distinct=True)).order_by("name")
    if user_is_supervisor_or_admin(user=viewer):
        return teams
    return teams.filter(memberships__user=viewer)


def agent_list(*, viewer: User, team_id: int | None = None, availability: str | None = None) -> QuerySet[User]:
    """Agents the viewer may see: supervisors/admins everyone, agents their teammates."""
    users = (
        User.objects.filter(is_active=True)
        .prefetch_related(
            Prefetch("groups"),
            Prefetch("team_memberships", queryset=TeamMembership.objects.select_related("team")),
        )
        .order_by("full_name", "email")
    )
    if not user_is_supervisor_or_admin(user=viewer):
        users = users.filter(
            Q(team_memberships__team_id__in=team_ids_for_user(user=viewer)) | Q(pk=viewer.pk)
        ).distinct()
    if team_id is not None:
        users = users.filter(team_memberships__team_id=team_id)
    if availability:
        users = users.filter(availability=availability)
    return users


def users_with_role(*, role: str) -> QuerySet[User]:
    role = Role(role)
    members = Q(groups__name=role.value)
    if role == Role.ADMIN:
        members |= Q(is_superuser=True)  # superusers act as admins even without the group
    # The OR across the groups join yields one row per group a superuser holds.
    return User.objects.filter(members).distinct()


def api_token_list(*, viewer: User) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=viewer).order_by("-created_at")


def mfa_required_for(*, user: User) -> bool:
    return user.groups.filter(policy__mfa_required=True).exists()
