"""Maturity assessment: several assessors, medians, measured evidence, API, pages."""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from accounts.models import Role
from channels_app.models import Conversation
from customers.models import Customer, Identity
from journeys import services
from journeys.maturity import maturity_evidence, maturity_history, maturity_result
from journeys.maturity_grid import DIMENSION_CODES
from journeys.models import MaturityScore
from tests.journeys import factories as f

pytestmark = pytest.mark.django_db


@pytest.fixture
def assessors(make_user):
    return [make_user(Role.SUPERVISOR, email=f"assessor{n}@example.com") for n in range(4)]


def test_the_result_shows_each_score_and_the_median(assessors, supervisor):
    assessment = services.maturity_assessment_create(title="Q1 2026", actor=supervisor)
    for assessor, level in zip(assessors[:3], [2, 3, 5], strict=False):
        services.maturity_score_record(assessment=assessment, assessor=assessor, dimension="technology", level=level, target_level=4)
    for assessor, level in zip(assessors, [1, 2, 3, 4], strict=False):
        services.maturity_score_record(assessment=assessment, assessor=assessor, dimension="metrics", level=level)

    rows = {row["code"]: row for row in maturity_result(assessment=assessment)["rows"]}
    assert rows["technology"]["scores"] == [2, 3, 5, None]
    assert rows["technology"]["median"] == 3 and rows["technology"]["target"] == 4
    assert rows["technology"]["median_label"] == "Cross channel"
    assert rows["metrics"]["median"] == 2.5
    assert rows["budget"]["median"] is None
    assert len(rows) == 9 and all(len(row["guidance"]) == 5 for row in rows.values())


def test_a_second_score_by_the_same_assessor_replaces_the_first(assessors, supervisor):
    assessment = services.maturity_assessment_create(title="A", actor=supervisor)
    services.maturity_score_record(assessment=assessment, assessor=assessors[0], dimension="data", level=2)
    services.maturity_score_record(assessment=assessment, assessor=assessors[0], dimension="data", level=4)
    assert list(MaturityScore.objects.values_list("level", flat=True)) == [4]


@pytest.mark.parametrize("kwargs", [{"dimension": "vibes", "level": 3}, {"dimension": "data", "level": 6}, {"dimension": "data", "level": 2, "target_level": 0}])
def test_invalid_scores_are_refused(supervisor, kwargs):
    assessment = services.maturity_assessment_create(title="A", actor=supervisor)
    with pytest.raises(ValidationError):
        services.maturity_score_record(assessment=assessment, assessor=supervisor, **kwargs)


def test_guidance_is_in_bahasa_indonesia_too(supervisor):
    assessment = services.maturity_assessment_create(title="A", actor=supervisor)
    rows = maturity_result(assessment=assessment, language="id")["rows"]
    assert rows[0]["label"] == "Strategi bisnis"
    assert rows[0]["guidance"][0] == "Belum ada strategi omnichannel"


def test_evidence_is_measured():
    wa, ig = f.inbox("whatsapp"), f.inbox("instagram")
    both = Customer.objects.create(display_name="Both")
    Identity.objects.create(customer=both, kind="phone", value="+6281200000009")
    Identity.objects.create(customer=both, kind="instagram", value="1784", scope="x")
    Customer.objects.create(display_name="")  # incomplete, one channel at most
    conv = f.conversation(customer=both, inbox_=wa, created_at=f.now())
    conv.inboxes.add(ig)
    f.message(conv, when=f.now())
    single = f.conversation(inbox_=wa, created_at=f.now())
    f.message(single, when=f.now())
    Customer.objects.filter(pk=single.customer_id).update(display_name="")

    evidence = maturity_evidence()
    assert evidence["customers"] == 3
    assert evidence["reachable_on_two_channels"] == pytest.approx(1 / 3)
    assert evidence["profile_completeness"] == pytest.approx(1 / 3)
    assert evidence["conversations_spanning_channels"] == 0.5 and Conversation.objects.count() == 2
    assert evidence["channels_active"] == ["whatsapp"] and evidence["kpi_channel_coverage"] == 0.0


def test_history_compares_medians_over_time(supervisor, assessors):
    first = services.maturity_assessment_create(title="2025", actor=supervisor)
    second = services.maturity_assessment_create(title="2026", actor=supervisor)
    services.maturity_score_record(assessment=first, assessor=assessors[0], dimension="strategy", level=2)
    services.maturity_score_record(assessment=second, assessor=assessors[0], dimension="strategy", level=3)
    services.maturity_score_record(assessment=second, assessor=assessors[1], dimension="strategy", level=4)
    history = maturity_history()
    assert [(h["assessment"].title, h["medians"][DIMENSION_CODES.index("strategy")]) for h in history] == [("2025", 2), ("2026", 3.5)]


def test_api_create_with_scores_then_another_assessor_adds_theirs(client, supervisor, assessors):
    client.force_login(supervisor)
    created = client.post("/api/v1/maturity-assessments/", {
        "title": "Q2", "scores": [{"dimension": "data", "level": 2, "target_level": 4, "horizon": "short", "actions": "Dashboards"}],
    }, content_type="application/json")
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    client.force_login(assessors[0])
    added = client.post(f"/api/v1/maturity-assessments/{pk}/scores/", {"scores": [{"dimension": "data", "level": 3}]},
                        content_type="application/json")
    assert added.status_code == 200
    data = {d["code"]: d for d in added.json()["dimensions"]}["data"]
    assert data["scores"] == [2, 3] and data["median"] == 2.5 and data["target"] == 4
    assert [a["title"] for a in client.get("/api/v1/maturity-assessments/").json()] == ["Q2"]


def test_api_refuses_agents_and_bad_dimensions(client, agent, supervisor):
    client.force_login(agent)
    assert client.get("/api/v1/maturity-assessments/").status_code == 403
    client.force_login(supervisor)
    response = client.post("/api/v1/maturity-assessments/", {"title": "x", "scores": [{"dimension": "moon", "level": 2}]},
                           content_type="application/json")
    assert response.status_code == 400


def test_pages_start_score_and_show_the_radar(client, supervisor):
    client.force_login(supervisor)
    assert b"No assessment yet" in client.get("/journeys/maturity/").content
    response = client.post("/journeys/maturity/", {"title": "Kickoff"})
    assert response.status_code == 302
    detail_url = response["Location"]
    page = client.get(detail_url)
    assert b"Nobody has scored" in page.content and b"Customers reachable on 2+ channels" in page.content
    saved = client.post(detail_url, {"strategy-level": "3", "strategy-target": "4", "strategy-horizon": "mid", "strategy-actions": "Roadmap"})
    assert saved.status_code == 302
    page = client.get(detail_url)
    assert b'data-chart="radar"' in page.content and b"Roadmap" in page.content
    assert MaturityScore.objects.get().level == 3
    csv_lines = client.get(detail_url + "?format=csv").content.decode().splitlines()
    assert csv_lines[1].startswith("Business strategy,3,3")
