"""Dashboards: supervisors only, render with and without data, CSV export, labelled controls."""
from __future__ import annotations

import pytest

from tests.journeys.test_kpis import service_fixture  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db

PAGES = ["/journeys/dashboard/", "/journeys/dashboard/funnel/", "/journeys/dashboard/csat/", "/journeys/dashboard/kpis/"]


@pytest.mark.parametrize("path", PAGES)
def test_agents_are_refused_and_anonymous_users_sent_to_sign_in(client, agent, path):
    assert client.get(path).status_code == 302
    client.force_login(agent)
    assert client.get(path).status_code == 403


@pytest.mark.parametrize("path", PAGES)
def test_empty_period_shows_an_empty_state(client, supervisor, path):
    client.force_login(supervisor)
    response = client.get(path + "?from=2020-01-01&to=2020-01-31")
    assert response.status_code == 200
    assert b'class="empty' in response.content or b"class=\"card empty" in response.content
    assert b'<label for="id_from_">' in response.content and b'name="from"' in response.content


def test_kpi_page_and_csv_show_the_numbers(client, supervisor, service_fixture):  # noqa: F811
    client.force_login(supervisor)
    page = client.get("/journeys/dashboard/kpis/?from=2026-03-01&to=2026-03-31&group_by=channel")
    assert page.status_code == 200
    assert b"chart-4.6.1.umd.min.js" in page.content and b'data-chart="bar"' in page.content
    assert b"20.0 min" in page.content  # median first response

    export = client.get("/journeys/dashboard/kpis/?from=2026-03-01&to=2026-03-31&group_by=channel&format=csv")
    assert export["Content-Type"].startswith("text/csv")
    lines = export.content.decode().splitlines()
    assert lines[0].startswith("group,conversations,unanswered,frt_median_s")
    assert any(line.startswith("WhatsApp,2,0,") for line in lines)


def test_overview_shows_live_numbers_and_channel_mix(client, supervisor, service_fixture):  # noqa: F811
    client.force_login(supervisor)
    page = client.get("/journeys/dashboard/?from=2026-03-01&to=2026-03-31")
    assert page.status_code == 200
    assert page.context["live"]["open"] == 1  # conversation 3 is still open
    export = client.get("/journeys/dashboard/?from=2026-03-01&to=2026-03-31&format=csv")
    assert export.content.decode().splitlines()[1] == "whatsapp,6,3,3,2"


def test_csv_cells_cannot_become_formulas():
    from journeys.views import _csv_safe

    assert _csv_safe("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert _csv_safe(None) == "" and _csv_safe(3) == 3


def test_csat_page_shows_nps_and_exports(client, supervisor):
    from journeys.models import CsatResponse, CsatSurvey
    from tests.journeys import factories as f
    from tests.journeys.factories import at

    inbox = f.inbox("whatsapp")
    for n, (rating, nps) in enumerate([(5, 10), (2, 3)]):
        conv = f.conversation(inbox_=inbox)
        survey = CsatSurvey.objects.create(conversation=conv, customer=conv.customer, inbox=inbox, status="answered",
                                           send_after=at(n), sent_at=at(n))
        CsatResponse.objects.create(survey=survey, customer=conv.customer, rating=rating, nps=nps, via="link", responded_at=at(n))
    client.force_login(supervisor)
    page = client.get("/journeys/dashboard/csat/?from=2026-03-01&to=2026-03-31&group_by=channel")
    assert page.status_code == 200 and b"50.0%" in page.content and b"NPS (2 answers)" in page.content
    lines = client.get("/journeys/dashboard/csat/?from=2026-03-01&to=2026-03-31&group_by=channel&format=csv").content.decode().splitlines()
    assert lines[1] == "WhatsApp,2,1,50.0,3.5,2,1.0,0.0"


def test_funnel_page_shows_cohorts_and_exports_them(client, supervisor):
    from journeys.services import customer_event_record
    from tests.journeys.factories import at

    customer_event_record(event_id="1", event_type="order.paid", occurred_at=at(), email="a@mail.test")
    customer_event_record(event_id="2", event_type="order.paid", occurred_at=at(days=10), email="a@mail.test")
    client.force_login(supervisor)
    page = client.get("/journeys/dashboard/funnel/?from=2026-03-01&to=2026-03-31")
    assert b"Retention by month of conversion" in page.content and b"100.0%" in page.content
    lines = client.get("/journeys/dashboard/funnel/?from=2026-03-01&to=2026-03-31&format=csv&table=cohorts").content.decode().splitlines()
    assert lines == ["month,converted,retained_1m,retained_3m,retained_6m", "2026-03,1,1.0,1.0,1.0"]


def test_kpi_rows_drill_down_to_their_conversations(client, supervisor, service_fixture):  # noqa: F811
    client.force_login(supervisor)
    alice = service_fixture["alice"]
    page = client.get("/journeys/dashboard/kpis/?from=2026-03-01&to=2026-03-31&group_by=agent")
    assert f"group_by=agent&amp;period=month&amp;key={alice.pk}".encode() in page.content
    drill = client.get(f"/journeys/dashboard/kpis/conversations/?from=2026-03-01&to=2026-03-31&group_by=agent&key={alice.pk}")
    assert drill.status_code == 200
    rows = drill.context["rows"]
    assert [(r["first_response_seconds"], r["resolutions"], r["resolution_seconds"], r["reopened"]) for r in rows] == [
        (600.0, 2, 5400.0, True), (2400.0, 1, 6000.0, False)]
    lines = client.get(f"/journeys/dashboard/kpis/conversations/?from=2026-03-01&to=2026-03-31&group_by=agent&key={alice.pk}&format=csv").content.decode().splitlines()
    assert len(lines) == 3 and lines[0].startswith("conversation,first_customer_message")
