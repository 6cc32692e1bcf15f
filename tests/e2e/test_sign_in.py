from __future__ import annotations

import pytest

from accounts.demo import seed_demo_accounts

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def sign_in(page, base_url: str, email: str, password: str = "cx-demo-2026"):
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign In").click()


@pytest.mark.parametrize(
    ("email", "sees_floor", "sees_admin_link"),
    [
        ("agent1@demo.cxplatform.test", False, False),
        ("supervisor@demo.cxplatform.test", True, True),
        ("admin@demo.cxplatform.test", True, True),
    ],
)
def test_each_demo_role_signs_in_and_reaches_its_home(page, live_server, email, sees_floor, sees_admin_link):
    seed_demo_accounts()

    sign_in(page, live_server.url, email)

    page.get_by_role("heading", name="Your status").wait_for()
    assert page.url == f"{live_server.url}/"
    assert page.get_by_role("heading", name="Agents on the floor").count() == (1 if sees_floor else 0)
    assert page.get_by_role("link", name="Admin", exact=True).count() == (1 if sees_admin_link else 0)


def test_agent_switches_to_bahasa_indonesia(page, live_server):
    seed_demo_accounts()
    sign_in(page, live_server.url, "agent1@demo.cxplatform.test")
    page.get_by_role("heading", name="Your status").wait_for()

    page.get_by_role("link", name="Preferences").click()
    page.get_by_label("Language").last.select_option("id")
    page.get_by_role("button", name="Save").click()

    page.get_by_role("link", name="Beranda").click()
    page.get_by_role("heading", name="Status Anda").wait_for()


def test_wrong_password_shows_an_error_and_stays_signed_out(page, live_server):
    seed_demo_accounts()

    sign_in(page, live_server.url, "agent1@demo.cxplatform.test", password="not-the-password")

    assert "not correct" in page.content()
    assert page.url.startswith(f"{live_server.url}/accounts/login/")
