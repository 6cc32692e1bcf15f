from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import AuditEntry
from tests.accounts.factories import PASSWORD

pytestmark = pytest.mark.django_db


def test_agent_signs_in_with_email_and_password_and_reaches_home(client, agent):
    response = client.post(reverse("account_login"), {"login": agent.email, "password": PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == reverse("home")
    home = client.get(reverse("home"))
    assert home.status_code == 200
    assert agent.get_short_name() in home.content.decode()
    assert AuditEntry.objects.filter(action=AuditEntry.Action.SIGN_IN, actor=agent).count() == 1


def test_wrong_password_is_refused_and_audited(client, agent):
    response = client.post(reverse("account_login"), {"login": agent.email, "password": "wrong-password"})

    assert response.status_code == 200
    assert "_auth_user_id" not in client.session
    entry = AuditEntry.objects.get(action=AuditEntry.Action.SIGN_IN_FAILED)
    assert entry.actor_label == agent.email
    assert "wrong-password" not in str(entry.data)


def test_account_is_locked_after_five_failures_even_with_the_right_password(client, agent):
    for _ in range(5):
        client.post(reverse("account_login"), {"login": agent.email, "password": "wrong-password"})

    response = client.post(reverse("account_login"), {"login": agent.email, "password": PASSWORD})

    assert "_auth_user_id" not in client.session
    assert "Too many failed login attempts" in response.content.decode()


def test_lockout_is_per_account_not_global(client, agent, supervisor):
    for _ in range(5):
        client.post(reverse("account_login"), {"login": agent.email, "password": "wrong-password"})

    response = client.post(reverse("account_login"), {"login": supervisor.email, "password": PASSWORD})

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(supervisor.pk)


def test_self_signup_is_closed(client, roles):
    response = client.post(
        reverse("account_signup"), {"email": "new@example.com", "password1": "a-long-password-1", "password2": "a-long-password-1"}
    )

    assert "Sign Up Closed" in response.content.decode()


def test_password_reset_sends_an_email_with_a_reset_link(client, agent, mailoutbox):
    response = client.post(reverse("account_reset_password"), {"email": agent.email})

    assert response.status_code == 302
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == [agent.email]
    assert "/accounts/password/reset/key/" in mailoutbox[0].body


def test_anonymous_visitor_is_sent_to_sign_in(client, db):
    response = client.get(reverse("home"))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
