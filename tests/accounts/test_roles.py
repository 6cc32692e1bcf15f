from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import AuditEntry, Role
from accounts.services import user_role_assign

pytestmark = pytest.mark.django_db


def test_agent_cannot_reach_the_admin_site(client, agent):
    client.force_login(agent)

    assert client.get(reverse("admin:index")).status_code == 302
    response = client.get(reverse("admin:accounts_user_changelist"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_supervisor_sees_users_and_audit_log_but_cannot_create_users(client, supervisor):
    client.force_login(supervisor)

    assert client.get(reverse("admin:index")).status_code == 200
    assert client.get(reverse("admin:accounts_user_changelist")).status_code == 200
    assert client.get(reverse("admin:accounts_auditentry_changelist")).status_code == 200
    assert client.get(reverse("admin:accounts_user_add")).status_code == 403
    assert client.get(reverse("admin:accounts_rolepolicy_changelist")).status_code == 403


def test_admin_manages_users_teams_and_role_policies(client, admin_user):
    client.force_login(admin_user)

    for name in ["admin:accounts_user_add", "admin:accounts_team_add", "admin:accounts_rolepolicy_changelist"]:
        assert client.get(reverse(name)).status_code == 200


def test_admin_creates_a_supervisor_through_the_admin_site(client, admin_user):
    from accounts.models import User

    client.force_login(admin_user)
    response = client.post(
        reverse("admin:accounts_user_add"),
        {
            "email": "new.supervisor@example.com",
            "full_name": "New Supervisor",
            "role": Role.SUPERVISOR,
            "password1": "a-strong-pass-2026",
            "password2": "a-strong-pass-2026",
            "usable_password": "true",
            "team_memberships-TOTAL_FORMS": "0",
            "team_memberships-INITIAL_FORMS": "0",
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    created = User.objects.get(email="new.supervisor@example.com")
    assert created.role == Role.SUPERVISOR
    assert created.is_staff is True
    entry = AuditEntry.objects.get(action=AuditEntry.Action.ROLE_CHANGED, target_id=str(created.pk))
    assert entry.actor == admin_user
    assert entry.data == {"from": None, "to": Role.SUPERVISOR.value}


def test_role_change_is_audited_and_updates_admin_access(agent, admin_user):
    user_role_assign(user=agent, role=Role.SUPERVISOR, actor=admin_user)
    agent.refresh_from_db()

    assert agent.role == Role.SUPERVISOR
    assert agent.is_staff is True
    assert list(agent.groups.values_list("name", flat=True)) == [Role.SUPERVISOR.value]
    entry = AuditEntry.objects.get(action=AuditEntry.Action.ROLE_CHANGED, actor=admin_user)
    assert entry.data == {"from": Role.AGENT.value, "to": Role.SUPERVISOR.value}

    user_role_assign(user=agent, role=Role.AGENT, actor=admin_user)
    agent.refresh_from_db()
    assert agent.is_staff is False


def test_supervisor_home_lists_agents_and_agent_home_does_not(client, agent, supervisor):
    client.force_login(supervisor)
    assert agent.email in client.get(reverse("home")).content.decode()

    client.force_login(agent)
    assert supervisor.email not in client.get(reverse("home")).content.decode()
