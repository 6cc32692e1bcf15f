from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.models import Availability, Role, Team, User
from accounts.services import availability_expire

pytestmark = pytest.mark.django_db


def test_idle_agents_go_offline_and_active_ones_stay(make_user, settings):
    settings.AGENT_IDLE_OFFLINE_MINUTES = 30
    now = timezone.now()
    idle = make_user(availability=Availability.ONLINE, last_seen_at=now - timedelta(minutes=31))
    active = make_user(availability=Availability.ONLINE, last_seen_at=now - timedelta(minutes=5))

    assert availability_expire(now=now) == 1

    idle.refresh_from_db(), active.refresh_from_db()
    assert idle.availability == Availability.OFFLINE
    assert active.availability == Availability.ONLINE


def test_seed_demo_is_idempotent_and_prints_the_sign_ins(capsys, roles):
    call_command("seed_demo")
    first = (User.objects.count(), Team.objects.count())
    call_command("seed_demo")
    output = capsys.readouterr().out

    assert (User.objects.count(), Team.objects.count()) == first == (5, 2)
    assert "admin@demo.cxplatform.test" in output and "cx-demo-2026" in output
    roles_seen = sorted(User.objects.get(email=e).role for e in [
        "admin@demo.cxplatform.test", "supervisor@demo.cxplatform.test", "agent1@demo.cxplatform.test",
    ])
    assert roles_seen == sorted([Role.ADMIN, Role.SUPERVISOR, Role.AGENT])


def test_each_demo_sign_in_reaches_its_home_page(client, roles):
    from accounts.demo import seed_demo_accounts

    seed_demo_accounts()
    for email in ["admin@demo.cxplatform.test", "supervisor@demo.cxplatform.test", "agent1@demo.cxplatform.test"]:
        client.post("/accounts/logout/")
        response = client.post("/accounts/login/", {"login": email, "password": "cx-demo-2026"}, follow=True)
        assert response.status_code == 200
        assert response.request["PATH_INFO"] == "/"
        assert User.objects.get(email=email).get_short_name() in response.content.decode()


def test_pages_speak_the_users_language_and_show_times_in_their_time_zone(client, supervisor, make_user):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    make_user(email="seen@example.com", last_seen_at=datetime(2026, 3, 2, 1, 30, tzinfo=ZoneInfo("UTC")))
    supervisor.language, supervisor.time_zone = "id", "Asia/Jayapura"
    supervisor.save()
    client.force_login(supervisor)

    page = client.get("/").content.decode()

    assert "Status Anda" in page and "Agen yang bertugas" in page
    assert "Waktu ditampilkan dalam Asia/Jayapura." in page
    assert "10.30" in page or "10:30" in page  # 01:30 UTC is 10:30 in Jayapura (UTC+9)


def test_users_with_role_lists_each_admin_once_including_superusers_without_the_group(make_user):
    from django.contrib.auth.models import Group

    from accounts.selectors import users_with_role

    admin = make_user(Role.ADMIN, email="a@example.com", is_superuser=True)
    admin.groups.add(Group.objects.get(name=Role.AGENT))  # a second group row for the same user
    bare_superuser = User.objects.create_superuser(email="root@example.com", password="x-long-password")

    assert sorted(u.email for u in users_with_role(role=Role.ADMIN)) == [admin.email, bare_superuser.email]
