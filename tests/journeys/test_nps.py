"""NPS campaigns to a segment: send job with progress, the 0–10 public link, NPS in the CSAT report."""
from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from channels_app.models import Message
from customers.models import Customer, CustomerConsent, Identity, Segment
from journeys import kpis, nps
from journeys.models import NpsCampaign, NpsSurvey
from tests.journeys import factories as f

pytestmark = pytest.mark.django_db


def _customer(name: str, *, stage: str = "retention", wrote_hours_ago: float | None = 1, kind: str = "whatsapp", phone: str = ""):
    customer = Customer.objects.create(display_name=name, lifecycle_stage=stage)
    if wrote_hours_ago is not None:
        inbox = f.inbox(kind)
        Identity.objects.create(customer=customer, kind="phone", value=phone or f"+62812000{customer.pk:05d}")
        conv = f.conversation(customer=customer, inbox_=inbox, created_at=timezone.now() - dt.timedelta(hours=wrote_hours_ago))
        f.message(conv, when=timezone.now() - dt.timedelta(hours=wrote_hours_ago))
    return customer


@pytest.fixture
def audience():
    reachable = [_customer(f"Retained {n}") for n in range(3)]
    closed_window = _customer("Old WhatsApp", wrote_hours_ago=40)
    never_wrote = _customer("Silent", wrote_hours_ago=None)
    opted_out = _customer("Opted out")
    CustomerConsent.objects.create(customer=opted_out, channel="whatsapp", opted_out_at=timezone.now())
    _customer("Not in segment", stage="conversion")
    segment = Segment.objects.create(name="Retained", filters={"stage": "retention"})
    return {"segment": segment, "reachable": reachable, "closed": closed_window, "silent": never_wrote, "opted_out": opted_out}


def test_the_campaign_goes_to_the_segment_with_progress_and_reasons(audience, supervisor, settings):
    settings.PUBLIC_BASE_URL = "https://cx.example.com"
    campaign = NpsCampaign.objects.create(name="Q1", segment=audience["segment"], created_by=supervisor)

    done = nps.nps_campaign_send(campaign_id=campaign.pk, batch=2)

    assert (done.status, done.total, done.processed, done.sent, done.skipped, done.progress_percent) == ("done", 6, 6, 3, 3, 100)
    reasons = dict(NpsSurvey.objects.filter(status="skipped").values_list("customer__display_name", "skip_reason"))
    assert reasons["Silent"] == "The customer has never written to us."
    assert reasons["Opted out"] == "The customer opted out of messages on this channel."
    assert reasons["Old WhatsApp"].startswith("WhatsApp only allows free-form replies within 24 hours")
    survey = NpsSurvey.objects.get(customer=audience["reachable"][0])
    message = Message.objects.get(pk=survey.message_id)
    assert message.content == f"{campaign.question}\nhttps://cx.example.com/survey/{nps.nps_token(survey=survey)}/"
    assert (message.sender, message.inbox_id) == ("system", survey.inbox_id)
    # Running the job again sends nothing new.
    NpsCampaign.objects.filter(pk=campaign.pk).update(status="queued")
    again = nps.nps_campaign_send(campaign_id=campaign.pk)
    assert (again.sent, NpsSurvey.objects.count(), Message.objects.filter(direction="outbound").count()) == (3, 6, 3)


def test_the_manager_page_creates_the_campaign_and_the_task_sends_it(client, supervisor, audience,
                                                                     django_capture_on_commit_callbacks, monkeypatch):
    from channels_app import tasks as channel_tasks

    monkeypatch.setattr(channel_tasks.messages_deliver_drain_task, "delay", lambda *a, **k: None)
    client.force_login(supervisor)
    assert "Retained" in client.get("/journeys/nps/").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/journeys/nps/", {"name": "Spring", "segment": audience["segment"].pk, "question": ""})
    campaign = NpsCampaign.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/journeys/nps/{campaign.pk}/"
    progress = client.get(f"/journeys/nps/{campaign.pk}/progress/").json()
    assert progress == {"status": "done", "total": 6, "processed": 6, "sent": 3, "skipped": 3, "percent": 100}
    page = client.get(f"/journeys/nps/{campaign.pk}/").content.decode()
    assert "data-nps-progress" in page and "The customer has never written to us." in page


def test_agents_cannot_run_campaigns(client, agent, audience):
    client.force_login(agent)
    assert client.get("/journeys/nps/").status_code == 403
    assert client.post("/journeys/nps/", {"name": "x", "segment": audience["segment"].pk}).status_code == 403


def test_the_public_link_takes_one_0_to_10_answer_and_nps_is_in_the_csat_report(audience, supervisor, client):
    campaign = NpsCampaign.objects.create(name="Q1", segment=audience["segment"])
    nps.nps_campaign_send(campaign_id=campaign.pk)
    surveys = list(NpsSurvey.objects.filter(status="sent").order_by("pk"))
    url = f"/survey/{nps.nps_token(survey=surveys[0])}/"

    page = client.get(url).content.decode()
    assert "Would you recommend us?" in page and 'value="10"' in page and 'value="0"' in page
    assert client.post(url, {"score": "11"}).status_code == 200
    assert NpsSurvey.objects.get(pk=surveys[0].pk).score is None
    assert "Thank you!" in client.post(url, {"score": "10", "comment": "great"}).content.decode()
    assert "already answered" in client.post(url, {"score": "3"}).content.decode()
    assert client.get(f"/survey/{nps.nps_token(survey=surveys[0])[:-2]}xx/").status_code == 404

    nps.nps_response_record(survey=surveys[1], score=9)
    nps.nps_response_record(survey=surveys[2], score=5)
    answered = NpsSurvey.objects.get(pk=surveys[0].pk)
    assert (answered.score, answered.comment, answered.status) == (10, "great", "answered")
    # A retained promoter becomes loyal.
    assert Customer.objects.get(pk=audience["reachable"][0].pk).lifecycle_stage == "loyalty"
    assert Customer.objects.get(pk=audience["reachable"][2].pk).lifecycle_stage == "retention"

    today = kpis.period_from_query({})
    campaign_nps = kpis.csat_report(window=today)["summary"]["campaign_nps"]
    assert campaign_nps == {"answers": 3, "promoters": 2, "detractors": 1, "passives": 0, "nps": pytest.approx(100 / 3)}
    client.force_login(supervisor)
    assert client.get("/api/v1/reports/csat/").json()["summary"]["campaign_nps"]["answers"] == 3
    assert "NPS of campaigns to segments" in client.get("/journeys/dashboard/csat/").content.decode()


def test_an_expired_nps_survey_is_closed(audience, client):
    campaign = NpsCampaign.objects.create(name="Q1", segment=audience["segment"], expiry_hours=1)
    nps.nps_campaign_send(campaign_id=campaign.pk, now=timezone.now() - dt.timedelta(hours=2))
    survey = NpsSurvey.objects.filter(status="sent").first()
    assert "no longer open" in client.get(f"/survey/{nps.nps_token(survey=survey)}/").content.decode()
