"""The service KPI report (aggregated in the database) equals the row-by-row Python reference
(tests/journeys/kpi_reference.py) exactly, for every grouping, both hours modes, SLA policies in
both hours bases, a segment and a time zone with daylight saving; and its query count depends
neither on the number of rows nor on the number of groups."""
from __future__ import annotations

import datetime as dt
import random
import zoneinfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Role
from channels_app.models import Label
from customers.models import Customer, Segment
from journeys import kpis, services
from journeys.facts import kpi_facts_refresh
from journeys.models import JourneySettings, SlaPolicy
from tests.accounts.factories import TeamFactory, add_to_team
from tests.journeys import factories as f
from tests.journeys import kpi_reference

pytestmark = pytest.mark.django_db

GROUPINGS = ["", "channel", "inbox", "agent", "team", "label", "period"]
START = dt.datetime(2026, 2, 25, 0, 0, tzinfo=dt.UTC)  # the window is March; some rows cross its edges
NOW = dt.datetime(2026, 4, 20, 3, 0, 0, 123456, tzinfo=dt.UTC)


def _window() -> kpis.Window_:
    return kpis.period_from_query({"from": "2026-03-01", "to": "2026-03-31"})


def _moment(rng: random.Random, after: dt.datetime, *, hours: float) -> dt.datetime:
    return after + dt.timedelta(hours=rng.uniform(0, hours), microseconds=rng.randrange(10**6))


def _conversations(rng: random.Random, n: int, *, inboxes, agents, teams, labels) -> None:
    """`n` conversations at random moments (nights, weekends, the DST change of 29 March
    included), with every shape the KPIs distinguish."""
    for i in range(n):
        inbox = rng.choice(inboxes)
        start = _moment(rng, START, hours=24 * 42)
        conversation = f.conversation(inbox_=inbox, created_at=start, team=rng.choice(teams), assignee=rng.choice(agents))
        if i % 7 == 0:  # the segment below
            Customer.objects.filter(pk=conversation.customer_id).update(lifecycle_stage="loyalty")
        conversation.labels.add(*rng.sample(labels, rng.choice([0, 0, 1, 2])))
        at = start
        f.message(conversation, when=at)
        for _ in range(rng.choice([0, 0, 1, 2])):  # the visitor writes again, maybe on another channel
            at = _moment(rng, at, hours=0.5)
            f.message(conversation, when=at, inbox_=rng.choice([inbox, inbox, rng.choice(inboxes)]))
        if rng.random() < 0.3:
            f.message(conversation, when=_moment(rng, at, hours=0.1), inbound=False)  # auto-reply: not an agent
        if rng.random() < 0.2:
            f.message(conversation, when=_moment(rng, at, hours=0.2), inbound=False, author=rng.choice(agents[:-1]),
                      private=True)
        if rng.random() < 0.8:  # answered, after minutes to days
            at = _moment(rng, at, hours=rng.choice([0.2, 1, 4, 72]))
            f.message(conversation, when=at, inbound=False, author=rng.choice(agents[:-1]))
            if rng.random() < 0.3:
                at = _moment(rng, at, hours=0.3)
                f.message(conversation, when=at)  # the visitor was still there
            if rng.random() < 0.3:
                at = _moment(rng, at, hours=1)
                f.message(conversation, when=at, inbound=False, author=rng.choice(agents[:-1]))
        if rng.random() < 0.7:
            at = _moment(rng, at, hours=rng.choice([1, 10, 50]))
            f.resolve(conversation, at)
            services.resolutions_sync()
            shape = rng.random()
            if shape < 0.2:  # reopened by the customer, answered and resolved again
                f.reopen(conversation)
                at = _moment(rng, at, hours=rng.choice([2, 24 * 9]))
                f.message(conversation, when=at, inbox_=rng.choice(inboxes))
                at = _moment(rng, at, hours=2)
                f.message(conversation, when=at, inbound=False, author=rng.choice(agents[:-1]))
                f.resolve(conversation, _moment(rng, at, hours=5))
                services.resolutions_sync()
            elif shape < 0.3:  # reopened by hand, still open
                f.reopen(conversation)


@pytest.fixture
def varied(make_user):
    rng = random.Random(20260301)
    team_a, team_b = TeamFactory(name="Team A"), TeamFactory(name="Team B")
    agents = [make_user(Role.AGENT, email=f"agent{n}@example.com") for n in range(3)]
    add_to_team(agents[0], team_a)
    add_to_team(agents[1], team_b)
    inboxes = [f.inbox("whatsapp", "WA sales"), f.inbox("whatsapp", "WA support"), f.inbox("webchat"), f.inbox("email")]
    labels = [Label.objects.create(name="billing"), Label.objects.create(name="urgent")]
    _conversations(rng, 70, inboxes=inboxes, agents=[*agents, None], teams=[team_a, team_b, None], labels=labels)
    SlaPolicy.objects.create(name="Default", first_response_minutes=30, resolution_minutes=8 * 60)
    SlaPolicy.objects.create(name="Web chat", inbox=inboxes[2], first_response_minutes=20, resolution_minutes=120,
                             hours="business")
    SlaPolicy.objects.create(name="Team B", team=team_b, first_response_minutes=60, hours="business")
    JourneySettings.objects.update_or_create(pk=1, defaults={
        "business_day_start": dt.time(7, 30), "business_day_end": dt.time(19, 15, 30), "business_weekdays": "0,1,2,3,4,5",
        "webchat_abandon_minutes": 15,
    })
    return {"rng": rng, "inboxes": inboxes, "agents": agents, "teams": [team_a, team_b], "labels": labels}


def _both(**kwargs) -> tuple[dict, dict]:
    window = _window()
    return (kpis.service_report(window=window, now=NOW, **kwargs),
            kpi_reference.service_report(window=window, now=NOW, **kwargs))


@pytest.mark.parametrize("hours", ["calendar", "business"])
@pytest.mark.parametrize("group_by", GROUPINGS)
def test_the_report_equals_the_row_by_row_reference(varied, group_by, hours):
    report, reference = _both(group_by=group_by, hours=hours, period="week")

    assert report == reference
    assert report["summary"]["conversations"] > 40 and report["summary"]["sla"]["resolution"]["breached"] > 0
    if group_by:
        assert len(report["rows"]) >= 3


@pytest.mark.parametrize("period", ["day", "month"])
def test_periods_and_a_segment_equal_the_reference(varied, period):
    from customers.selectors import segment_customers

    segment = Segment.objects.create(name="Loyal", filters={"stage": "loyalty"})
    for hours in ("calendar", "business"):
        report, reference = _both(group_by="period", period=period, hours=hours)
        assert report == reference
        for group_by in ("label", "channel", "team"):
            report, reference = _both(group_by=group_by, hours=hours, customers=segment_customers(segment=segment))
            assert report == reference
            assert 0 < report["summary"]["conversations"] < 20


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York"])
def test_a_time_zone_with_daylight_saving_equals_the_reference(varied, zone):
    # A signed-in user's time zone is active during their request (accounts middleware): the
    # windows, periods and business hours follow it.
    with timezone.override(zoneinfo.ZoneInfo(zone)):
        for group_by in ("", "period", "agent"):
            report, reference = _both(group_by=group_by, period="day", hours="business")
            assert report == reference


def _queries(**kwargs) -> int:
    kpi_facts_refresh()  # the refresh's own cost is measured in tests/journeys/test_kpi_facts.py
    with CaptureQueriesContext(connection) as captured:
        kpis.service_report(window=_window(), now=NOW, **kwargs)
    return len(captured)


def test_the_query_count_grows_neither_with_rows_nor_with_groups(varied, make_user):
    cases = [{"group_by": group_by, "hours": hours, "period": "day"}
             for group_by in GROUPINGS for hours in ("calendar", "business")]
    before = [_queries(**case) for case in cases]

    # More rows, and new groups of every kind: inboxes (a new channel too), agents, a team,
    # labels, days.
    team_c = TeamFactory(name="Team C")
    newcomer = make_user(Role.AGENT, email="newcomer@example.com")
    add_to_team(newcomer, team_c)
    inboxes = [*varied["inboxes"], f.inbox("telegram"), f.inbox("webchat", "Second site")]
    labels = [*varied["labels"], Label.objects.create(name="refund"), Label.objects.create(name="vip")]
    _conversations(varied["rng"], 40, inboxes=inboxes, agents=[*varied["agents"], newcomer, None],
                   teams=[*varied["teams"], team_c, None], labels=labels)
    SlaPolicy.objects.create(name="Team C", team=team_c, first_response_minutes=45, resolution_minutes=600)

    after = [_queries(**case) for case in cases]

    # One more SLA policy is one more filtered count in the same statements, not a query.
    assert after == before
    grown = kpis.service_report(window=_window(), now=NOW, group_by="inbox")
    assert len(grown["rows"]) == 6


@pytest.mark.skipif(connection.vendor != "postgresql", reason="GROUPING SETS: PostgreSQL only")
@pytest.mark.parametrize("group_by", ["channel", "inbox", "agent", "team", "period"])
def test_postgresql_aggregates_groups_and_summary_in_one_statement_per_kind_of_fact(varied, group_by):
    kpi_facts_refresh()
    with CaptureQueriesContext(connection) as captured:
        kpis.service_report(window=_window(), now=NOW, group_by=group_by, hours="business")
    statements = [query["sql"] for query in captured if "GROUP BY GROUPING SETS" in query["sql"]]
    assert len(statements) == 2  # conversation facts, resolution cycles
    assert not any("percentile" in query["sql"] and "GROUPING SETS" not in query["sql"] for query in captured)
