from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from channels_app.demo import seed_demo_channels
from customers.demo import seed_demo_customers
from journeys import kpis
from journeys.demo import seed_demo_journeys
from journeys.models import ConversationResolution, CsatResponse, CustomerEvent, StageChange

pytestmark = pytest.mark.django_db


def test_demo_history_is_meaningful_and_idempotent(roles):
    call_command("seed_demo", stdout=io.StringIO())
    seed_demo_customers(io.StringIO())
    seed_demo_channels(io.StringIO())
    out = io.StringIO()
    seed_demo_journeys(out)
    counts = (CustomerEvent.objects.count(), StageChange.objects.count(), ConversationResolution.objects.count(), CsatResponse.objects.count())
    assert all(n > 20 for n in counts), counts
    assert set(StageChange.objects.values_list("to_stage", flat=True)) == {"acquisition", "conversion", "retention", "loyalty"}

    seed_demo_journeys(io.StringIO())
    assert (CustomerEvent.objects.count(), StageChange.objects.count(), ConversationResolution.objects.count(), CsatResponse.objects.count()) == counts

    window = kpis.period_from_query({"from": "2000-01-01"})
    summary = kpis.service_report(window=window)["summary"]
    assert summary["first_response"]["count"] > 20 and summary["resolution"]["count"] > 20
    assert kpis.csat_report(window=window)["summary"]["csat_percent"] is not None


def test_dashboards_render_on_demo_data(client, roles, supervisor):
    call_command("seed_demo", stdout=io.StringIO())
    seed_demo_customers(io.StringIO())
    seed_demo_channels(io.StringIO())
    seed_demo_journeys(io.StringIO())
    client.force_login(supervisor)
    for path in ["/journeys/dashboard/", "/journeys/dashboard/funnel/", "/journeys/dashboard/csat/?group_by=agent",
                 "/journeys/dashboard/kpis/?group_by=team&hours=business", "/journeys/maturity/"]:
        response = client.get(path + ("&" if "?" in path else "?") + "from=2000-01-01")
        assert response.status_code == 200, path
        assert b'class="empty' not in response.content and b"card empty" not in response.content, path
