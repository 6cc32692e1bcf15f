"""The viewer's teams are read once per HTTP request (accounts.selectors.team_ids_for_user),
forgotten when a membership changes, and never remembered outside a request (a websocket
consumer keeps its user for hours)."""
from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Role, TeamMembership
from accounts.selectors import team_ids_for_user, teams_remembered
from tests.accounts.factories import TeamFactory, add_to_team

pytestmark = pytest.mark.django_db


def _reads(user) -> tuple[list[int], int]:
    with CaptureQueriesContext(connection) as captured:
        teams = sorted(team_ids_for_user(user=user))
    return teams, len(captured)


def test_outside_a_request_every_call_reads(make_user):
    agent = make_user(Role.AGENT)
    team = TeamFactory()
    assert _reads(agent) == ([], 1)
    add_to_team(agent, team)
    assert _reads(agent) == ([team.pk], 1)


def test_inside_a_request_the_teams_are_read_once_and_forgotten_on_change(make_user):
    agent, other = make_user(Role.AGENT), make_user(Role.AGENT)
    first, second = TeamFactory(), TeamFactory()
    add_to_team(agent, first)
    with teams_remembered():
        assert _reads(agent) == ([first.pk], 1)
        assert _reads(agent) == ([first.pk], 0)
        assert _reads(other) == ([], 1)
        add_to_team(agent, second)  # post_save
        assert _reads(agent) == (sorted([first.pk, second.pk]), 1)
        TeamMembership.objects.filter(user=agent, team=first).delete()  # post_delete
        assert _reads(agent) == ([second.pk], 1)
        second.members.remove(agent)  # m2m_changed
        assert _reads(agent) == ([], 1)
        team_ids_for_user(user=agent).append(999)  # callers get a copy
        assert _reads(agent) == ([], 0)
    assert _reads(agent) == ([], 1)


def test_an_inbox_page_reads_the_teams_once(client, make_user):
    agent = make_user(Role.AGENT)
    add_to_team(agent, TeamFactory())
    client.force_login(agent)
    with CaptureQueriesContext(connection) as captured:
        assert client.get("/inbox/").status_code == 200
    assert sum('"accounts_teammembership"' in q["sql"] and "team_id" in q["sql"] for q in captured.captured_queries) == 1
