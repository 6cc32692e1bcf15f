from __future__ import annotations

import time

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import SECRET_SESSION_KEY, format_hotp_value, hotp_value
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from accounts.models import AuditEntry, Role
from tests.accounts.factories import PASSWORD

pytestmark = pytest.mark.django_db


def current_code(secret: str) -> str:
    return format_hotp_value(hotp_value(secret, int(time.time()) // 30))


def sign_in(client: Client, email: str):
    return client.post(reverse("account_login"), {"login": email, "password": PASSWORD})


def enrol_totp(client: Client) -> str:
    # allauth asks for the password again before a second factor is added.
    confirm = client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    assert confirm.status_code == 302
    page = client.get(reverse("mfa_activate_totp"))
    assert page.status_code == 200
    secret = client.session[SECRET_SESSION_KEY]
    response = client.post(reverse("mfa_activate_totp"), {"code": current_code(secret)})
    assert response.status_code == 302
    return secret


def test_agent_enrols_totp_and_must_then_give_a_code_at_sign_in(client, agent, django_capture_on_commit_callbacks):
    sign_in(client, agent.email)
    with django_capture_on_commit_callbacks(execute=True):
        secret = enrol_totp(client)
    assert Authenticator.objects.filter(user=agent, type=Authenticator.Type.TOTP).count() == 1
    assert AuditEntry.objects.filter(action=AuditEntry.Action.MFA_ENABLED, actor=agent).exists()

    second = Client()
    response = sign_in(second, agent.email)
    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_authenticate")
    assert "_auth_user_id" not in second.session

    response = second.post(reverse("mfa_authenticate"), {"code": current_code(secret)})
    assert response.status_code == 302
    assert second.session["_auth_user_id"] == str(agent.pk)


def test_wrong_totp_code_does_not_sign_in(client, agent):
    sign_in(client, agent.email)
    secret = enrol_totp(client)
    wrong = f"{(int(current_code(secret)) + 1) % 1_000_000:06d}"

    second = Client()
    sign_in(second, agent.email)
    response = second.post(reverse("mfa_authenticate"), {"code": wrong})

    assert response.status_code == 200
    assert "_auth_user_id" not in second.session


def test_role_policy_forces_enrolment_before_anything_else(client, agent):
    policy = Group.objects.get(name=Role.AGENT).policy
    policy.mfa_required = True
    policy.save()
    sign_in(client, agent.email)

    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("mfa_activate_totp"))

    enrol_totp(client)
    assert client.get(reverse("home")).status_code == 200


def test_role_policy_does_not_affect_other_roles(client, supervisor):
    policy = Group.objects.get(name=Role.AGENT).policy
    policy.mfa_required = True
    policy.save()
    sign_in(client, supervisor.email)

    assert client.get(reverse("home")).status_code == 200
