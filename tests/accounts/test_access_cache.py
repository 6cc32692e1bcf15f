"""accounts.backends: permissions and role groups come from the cache, and every change to who
holds which group or permission is seen by the next request."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Role, User
from accounts.services import user_role_assign

pytestmark = pytest.mark.django_db

NOTE_PERM = "channels_app.add_message"


def fresh(user: User) -> User:
    """The user as the next request loads it."""
    return User.objects.get(pk=user.pk)


def test_a_warm_entry_answers_permissions_and_role_without_a_query(agent):
    assert fresh(agent).has_perm(NOTE_PERM)  # warms the entry
    user = fresh(agent)
    with CaptureQueriesContext(connection) as queries:
        assert user.has_perm(NOTE_PERM)
        assert not user.has_perm("accounts.add_user")
        assert user.role == Role.AGENT
        assert not user.is_supervisor_or_admin
    assert queries.captured_queries == []


def test_a_role_change_is_seen_by_the_next_request(agent):
    assert fresh(agent).role == Role.AGENT
    assert not fresh(agent).has_perm("accounts.view_auditentry")
    user_role_assign(user=fresh(agent), role=Role.SUPERVISOR)
    user = fresh(agent)
    assert user.role == Role.SUPERVISOR
    assert user.is_supervisor_or_admin
    assert user.has_perm("accounts.view_auditentry")


def test_the_assigning_instance_forgets_its_old_role(agent):
    user = fresh(agent)
    assert user.role == Role.AGENT and not user.has_perm("accounts.view_auditentry")
    user_role_assign(user=user, role=Role.SUPERVISOR)
    assert user.role == Role.SUPERVISOR and user.has_perm("accounts.view_auditentry")


def test_a_permission_taken_from_a_group_is_gone_for_its_members(agent):
    assert fresh(agent).has_perm(NOTE_PERM)
    group = Group.objects.get(name=Role.AGENT)
    group.permissions.remove(Permission.objects.get(content_type__app_label="channels_app", codename="add_message"))
    assert not fresh(agent).has_perm(NOTE_PERM)


def test_a_direct_user_permission_is_seen(agent):
    assert not fresh(agent).has_perm("accounts.add_user")
    agent.user_permissions.add(Permission.objects.get(content_type__app_label="accounts", codename="add_user"))
    assert fresh(agent).has_perm("accounts.add_user")


def test_a_renamed_group_changes_the_role(agent):
    assert fresh(agent).role == Role.AGENT
    group = Group.objects.get(name=Role.AGENT)
    group.name = "former agents"
    group.save()
    assert fresh(agent).role is None


def test_superuser_and_inactive_flags_are_read_from_the_user_row(agent):
    assert not fresh(agent).has_perm("accounts.add_user")
    User.objects.filter(pk=agent.pk).update(is_superuser=True)  # no signal: the key tells them apart
    assert fresh(agent).has_perm("accounts.add_user")
    assert fresh(agent).role == Role.AGENT  # the highest role group still wins over superuser
    User.objects.filter(pk=agent.pk).update(is_superuser=False, is_active=False)
    assert not fresh(agent).has_perm(NOTE_PERM)


def test_a_change_bumps_the_version_again_when_its_transaction_commits(agent, django_capture_on_commit_callbacks):
    from django.core.cache import cache

    from accounts.backends import VERSION_KEY

    fresh(agent).has_perm(NOTE_PERM)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        agent.groups.add(Group.objects.get(name=Role.SUPERVISOR))
        during = cache.get(VERSION_KEY)
        # a request that rebuilt the entry before the commit stored it under `during`
        fresh(agent).has_perm(NOTE_PERM)
    for callback in callbacks:
        callback()
    assert cache.get(VERSION_KEY) != during


def test_a_prefetched_user_list_reads_roles_without_the_cache(agent, supervisor):
    users = list(User.objects.filter(pk__in=[agent.pk, supervisor.pk]).prefetch_related("groups").order_by("pk"))
    with CaptureQueriesContext(connection) as queries:
        roles = [user.role for user in users]
    assert roles == [Role.AGENT, Role.SUPERVISOR]
    assert queries.captured_queries == []
