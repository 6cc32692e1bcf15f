"""KPI and funnel definitions (docs/metrics.md) against hand-computed fixtures."""
from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Role
from customers.models import Customer
from journeys import kpis, services
from journeys.facts import kpi_facts_refresh
from tests.accounts.factories import TeamFactory, add_to_team
from tests.journeys import factories as f
from tests.journeys.factories import at

pytestmark = pytest.mark.django_db

MARCH = kpis.period_from_query({"from": "2026-03-01", "to": "2026-03-31"})


@pytest.fixture
def service_fixture(make_user):
    """Four conversations, worked through in docs/metrics.md ("The worked example")."""
    team_a, team_b = TeamFactory(name="Team A"), TeamFactory(name="Team B")
    alice = make_user(Role.AGENT, email="alice@example.com")
    bob = make_user(Role.AGENT, email="bob@example.com")
    add_to_team(alice, team_a)
    add_to_team(bob, team_b)
    wa, web, email = f.inbox("whatsapp"), f.inbox("webchat"), f.inbox("email")

    c1 = f.conversation(inbox_=wa, created_at=at(0), team=team_a, assignee=alice)
    f.message(c1, when=at(0))
    f.message(c1, when=at(1), inbound=False)  # auto-reply: sender system, no author
    f.message(c1, when=at(2), inbound=False, author=alice, private=True)  # private note
    f.message(c1, when=at(10), inbound=False, author=alice)
    f.resolve(c1, at(60))
    services.resolutions_sync()
    f.reopen(c1)
    f.message(c1, when=at(120), inbox_=web)  # reopened, on another channel
    f.message(c1, when=at(130), inbox_=wa)  # and back
    f.resolve(c1, at(150))

    c2 = f.conversation(inbox_=web, created_at=at(5), team=team_b, assignee=bob)
    f.message(c2, when=at(5))
    f.message(c2, when=at(25), inbound=False, author=bob)
    f.resolve(c2, at(245))

    c3 = f.conversation(inbox_=email, created_at=at(30), team=team_a)
    f.message(c3, when=at(30))

    c4 = f.conversation(inbox_=wa, created_at=at(0, days=1), team=team_a, assignee=alice)
    f.message(c4, when=at(0, days=1))
    f.message(c4, when=at(40, days=1), inbound=False, author=alice)
    f.resolve(c4, at(100, days=1))
    services.resolutions_sync()
    return {"alice": alice, "bob": bob, "team_a": team_a, "team_b": team_b, "wa": wa, "web": web, "email": email}


def test_percentiles_use_nearest_rank_and_the_median_averages_the_middle_pair():
    assert kpis.median([3, 1, 2]) == 2
    assert kpis.median([4, 1, 3, 2]) == 2.5
    assert kpis.percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90) == 9
    assert kpis.percentile([600, 1200, 2400], 90) == 2400
    assert kpis.median([]) is None and kpis.percentile([], 90) is None


def test_service_summary_matches_the_worked_example(service_fixture):
    summary = kpis.service_report(window=MARCH)["summary"]

    assert summary["conversations"] == 4
    assert summary["unanswered"] == 1
    assert summary["first_response"] == {"count": 3, "median_seconds": 1200.0, "p90_seconds": 2400.0}
    assert summary["resolutions"] == 4
    assert summary["resolution"] == {"count": 4, "median_seconds": 4800.0, "p90_seconds": 14400.0}
    assert summary["reopened"] == 1 and summary["reopen_rate"] == 0.25
    assert summary["channel_switches"] == {"switches": 2, "conversations": 4, "per_conversation": 0.5}
    volume = {row["channel"]: (row["messages"], row["inbound"], row["outbound"], row["conversations"]) for row in summary["channels"]}
    assert volume == {"whatsapp": (6, 3, 3, 2), "webchat": (3, 2, 1, 2), "email": (1, 1, 0, 1)}


def test_a_reopened_conversation_has_one_cycle_per_resolution(service_fixture):
    cycles = sorted(kpis.resolution_cycles(window=MARCH), key=lambda r: r["resolved_at"])
    first, second = cycles[0], cycles[1]
    assert (first["cycle_started_at"], first["resolved_at"], first["reopened"], first["is_reopen"]) == (at(0), at(60), True, False)
    assert (second["cycle_started_at"], second["resolved_at"], second["reopened"], second["is_reopen"]) == (at(120), at(150), False, True)


def test_grouped_by_agent(service_fixture):
    alice, bob = service_fixture["alice"], service_fixture["bob"]
    rows = {row["key"]: row for row in kpis.service_report(window=MARCH, group_by="agent")["rows"]}
    assert set(rows) == {alice.pk, bob.pk, None}
    assert rows[alice.pk]["label"] == alice.full_name
    assert rows[alice.pk]["first_response"]["median_seconds"] == 1500.0
    assert rows[alice.pk]["resolution"]["median_seconds"] == 3600.0  # cycles 3600, 1800, 6000
    assert rows[bob.pk]["first_response"]["median_seconds"] == 1200.0
    assert rows[bob.pk]["resolution"]["median_seconds"] == 14400.0
    assert rows[None]["unanswered"] == 1 and rows[None]["label"] == "—"


def test_grouped_by_team_and_channel(service_fixture):
    teams = {row["label"]: row for row in kpis.service_report(window=MARCH, group_by="team")["rows"]}
    assert (teams["Team A"]["conversations"], teams["Team A"]["first_response"]["median_seconds"]) == (3, 1500.0)
    assert teams["Team B"]["reopen_rate"] == 0.0
    channels = {row["key"]: row for row in kpis.service_report(window=MARCH, group_by="channel")["rows"]}
    assert channels["whatsapp"]["conversations"] == 2 and channels["email"]["unanswered"] == 1
    # A cycle counts under the channel the conversation was last on when it was resolved.
    assert channels["whatsapp"]["resolutions"] == 3 and channels["webchat"]["resolutions"] == 1


def test_grouped_by_day(service_fixture):
    days = {row["key"]: row["conversations"] for row in kpis.service_report(window=MARCH, group_by="period", period="day")["rows"]}
    assert days == {"2026-03-02": 3, "2026-03-03": 1}  # 09:00 UTC is 16:00 in Jakarta


def test_outside_the_window_nothing_counts(service_fixture):
    april = kpis.period_from_query({"from": "2026-04-01", "to": "2026-04-30"})
    summary = kpis.service_report(window=april)["summary"]
    assert (summary["conversations"], summary["resolutions"], summary["channels"]) == (0, 0, [])


def _queries(callable_) -> int:
    with CaptureQueriesContext(connection) as captured:
        callable_()
    return len(captured)


def test_report_query_count_does_not_grow_with_volume(service_fixture):
    grouped = lambda: kpis.service_report(window=MARCH, group_by="agent")  # noqa: E731
    kpi_facts_refresh()  # the report's own refresh is measured in tests/journeys/test_kpi_facts.py
    before = _queries(grouped)
    csat_before = _queries(lambda: kpis.csat_report(window=MARCH, group_by="channel"))
    funnel_before = _queries(lambda: kpis.funnel_report(window=MARCH, group_by="channel"))
    for n in range(15):
        conv = f.conversation(inbox_=service_fixture["wa"], created_at=at(n, days=2))
        f.message(conv, when=at(n, days=2))
        f.message(conv, when=at(n + 3, days=2), inbound=False, author=service_fixture["bob"])
        f.resolve(conv, at(n + 30, days=2))
        services.customer_event_record(event_id=f"o{n}", event_type="order.paid", occurred_at=at(n, days=2), email=f"c{n}@mail.test")
    services.journeys_sync()
    assert _queries(grouped) == before
    assert _queries(lambda: kpis.csat_report(window=MARCH, group_by="channel")) == csat_before
    assert _queries(lambda: kpis.funnel_report(window=MARCH, group_by="channel")) == funnel_before


# --- funnel -------------------------------------------------------------------------------


def _customer_events(email: str, created: dt.datetime, events: list[tuple[str, str, dt.datetime, str]]) -> Customer:
    for event_id, event_type, when, channel in events:
        services.customer_event_record(event_id=event_id, event_type=event_type, occurred_at=when, email=email,
                                       properties={"channel": channel} if channel else {})
    customer = Customer.objects.get(identities__value=email)
    Customer.objects.filter(pk=customer.pk).update(created_at=created)
    return customer


def day(month: int, d: int) -> dt.datetime:
    return dt.datetime(2026, month, d, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def funnel_fixture():
    _customer_events("c1@mail.test", day(3, 1), [
        ("1a", "lead.created", day(3, 2), "instagram"), ("1b", "order.paid", day(3, 5), ""), ("1c", "order.paid", day(3, 20), "")])
    _customer_events("c2@mail.test", day(3, 3), [("2a", "order.paid", day(3, 10), "whatsapp")])
    _customer_events("c3@mail.test", day(2, 1), [("3a", "lead.created", day(2, 10), ""), ("3b", "order.paid", day(3, 15), "website")])
    Customer.objects.create(display_name="c4", created_at=day(3, 4))


def test_funnel_matches_the_worked_example(funnel_fixture):
    stages = {s["stage"]: s for s in kpis.funnel_report(window=MARCH)["summary"]["stages"]}

    assert {k: s["entered"] for k, s in stages.items()} == {"reach": 3, "acquisition": 1, "conversion": 3, "retention": 1, "loyalty": 0}
    assert {k: s["went_on"] for k, s in stages.items()} == {"reach": 2, "acquisition": 1, "conversion": 1, "retention": 0, "loyalty": 0}
    assert stages["reach"]["conversion_rate"] == pytest.approx(2 / 3)
    assert stages["conversion"]["conversion_rate"] == pytest.approx(1 / 3)
    assert stages["loyalty"]["conversion_rate"] is None
    assert stages["reach"]["median_seconds_to_next"] == 86400
    assert stages["acquisition"]["median_seconds_to_next"] == 3 * 86400
    assert stages["conversion"]["median_seconds_to_next"] == 15 * 86400


def test_cohort_retention_by_month_of_conversion(funnel_fixture):
    _customer_events("c5@mail.test", day(4, 1), [("5a", "order.paid", day(4, 2), ""), ("5b", "order.paid", day(6, 20), "")])
    spring = kpis.period_from_query({"from": "2026-03-01", "to": "2026-04-30"})
    cohorts = kpis.funnel_report(window=spring)["summary"]["cohorts"]
    # March: c1 (retained after 15 days), c2, c3 (not retained). April: c5 retained after 79 days.
    assert cohorts == [
        {"month": "2026-03", "converted": 3, "retained_1m": pytest.approx(1 / 3), "retained_3m": pytest.approx(1 / 3), "retained_6m": pytest.approx(1 / 3)},
        {"month": "2026-04", "converted": 1, "retained_1m": 0.0, "retained_3m": 1.0, "retained_6m": 1.0},
    ]


def test_funnel_by_first_touch_channel(funnel_fixture):
    rows = {row["key"]: row for row in kpis.funnel_report(window=MARCH, group_by="channel")["rows"]}
    assert {k: (r["acquisition"], r["conversion"], r["retention"]) for k, r in rows.items()} == {
        "instagram": (1, 1, 1), "whatsapp": (0, 1, 0), "website": (0, 1, 0)}


# --- CSAT ---------------------------------------------------------------------------------


def test_csat_percent_response_rate_and_distribution():
    from journeys.models import CsatResponse, CsatSurvey

    inbox = f.inbox("whatsapp")
    ratings = [5, 4, 3, 1, None]  # the last survey was never answered
    nps = [10, 9, 6, None, None]  # 2 promoters, 1 detractor among 3 NPS answers
    for n, rating in enumerate(ratings):
        conv = f.conversation(inbox_=inbox)
        survey = CsatSurvey.objects.create(conversation=conv, customer=conv.customer, inbox=inbox, status="sent",
                                           send_after=at(n), sent_at=at(n))
        if rating:
            CsatResponse.objects.create(survey=survey, customer=conv.customer, rating=rating, nps=nps[n], via="link",
                                        responded_at=at(n + 5))
    summary = kpis.csat_report(window=MARCH)["summary"]
    assert summary["responses"] == 4 and summary["satisfied"] == 2
    assert summary["csat_percent"] == 50.0
    assert summary["average_rating"] == 3.25
    assert summary["distribution"] == {"1": 1, "2": 0, "3": 1, "4": 1, "5": 1}
    assert (summary["surveys_sent"], summary["surveys_answered"], summary["response_rate"]) == (5, 4, 0.8)
    assert summary["nps_answers"] == 3 and summary["nps"] == pytest.approx(100 * (2 - 1) / 3)
    by_channel = kpis.csat_report(window=MARCH, group_by="channel")["rows"]
    assert [(r["key"], r["csat_percent"], r["response_rate"]) for r in by_channel] == [("whatsapp", 50.0, 0.8)]


def test_a_move_back_does_not_count_as_entering_a_stage(funnel_fixture, supervisor):
    from journeys.models import StageChange

    c2 = Customer.objects.get(identities__value="c2@mail.test")  # skipped Acquisition
    change = services.stage_set(customer=c2, to_stage="acquisition", actor=supervisor, note="refund")
    StageChange.objects.filter(pk=change.pk).update(changed_at=day(3, 25))

    report = kpis.funnel_report(window=MARCH, group_by="channel")
    stages = {s["stage"]: s["entered"] for s in report["summary"]["stages"]}
    assert stages["acquisition"] == 1  # c1 only: c2 moved back into it, it did not enter it
    assert {r["key"]: r["acquisition"] for r in report["rows"]}["whatsapp"] == 0


def test_csat_response_list_is_scoped_and_flat_in_queries(client, agent, supervisor, django_assert_max_num_queries):
    from journeys.models import CsatResponse, CsatSurvey

    team = TeamFactory(name="Mine")
    add_to_team(agent, team)
    inbox = f.inbox("whatsapp")
    for n in range(6):
        conv = f.conversation(inbox_=inbox, team=team if n % 2 else None)
        survey = CsatSurvey.objects.create(conversation=conv, customer=conv.customer, inbox=inbox, team=conv.team,
                                           status="answered", send_after=at(n), sent_at=at(n))
        CsatResponse.objects.create(survey=survey, customer=conv.customer, rating=5 - n % 5, via="link", responded_at=at(n))
    client.force_login(supervisor)
    with django_assert_max_num_queries(8):
        everything = client.get("/api/v1/csat-responses/?from=2026-03-01&to=2026-03-31").json()
    assert len(everything["results"]) == 6
    client.force_login(agent)
    mine = client.get("/api/v1/csat-responses/?from=2026-03-01&to=2026-03-31").json()["results"]
    assert len(mine) == 3 and {r["team"] for r in mine} == {team.pk}


# --- business hours -----------------------------------------------------------------------


def test_business_seconds_skip_nights_and_weekends():
    hours = kpis.BusinessHours(dt.time(8), dt.time(17), frozenset({0, 1, 2, 3, 4}))
    jakarta = dt.timezone(dt.timedelta(hours=7))
    # Friday 16:00 → Monday 09:00 (Jakarta): 1 h on Friday + 1 h on Monday.
    friday_4pm = dt.datetime(2026, 3, 6, 16, 0, tzinfo=jakarta)
    monday_9am = dt.datetime(2026, 3, 9, 9, 0, tzinfo=jakarta)
    assert hours.seconds_between(friday_4pm, monday_9am) == 2 * 3600
    # Entirely at night: nothing.
    assert hours.seconds_between(dt.datetime(2026, 3, 3, 20, 0, tzinfo=jakarta), dt.datetime(2026, 3, 4, 7, 0, tzinfo=jakarta)) == 0
    assert hours.seconds_between(monday_9am, friday_4pm) == 0


def test_service_report_in_business_hours(service_fixture):
    # T = 09:00 UTC = 16:00 Jakarta on Monday 2 March; business hours 08:00–17:00 Mon–Fri.
    summary = kpis.service_report(window=MARCH, hours="business")["summary"]
    # First responses 10, 20 (T+5→T+25) and 40 min (Tuesday 16:00→16:40): all inside hours.
    assert summary["first_response"]["median_seconds"] == 1200.0
    # Cycles: conv 1 T→T+60 = 16:00→17:00 (60 min in hours); T+120→T+150 = 18:00→18:30 (0);
    # conv 2 16:05→20:05 (55 min); conv 4 Tue 16:00→17:40 (60 min). Sorted 0, 3300, 3600, 3600.
    assert summary["resolution"] == {"count": 4, "median_seconds": 3450.0, "p90_seconds": 3600.0}
