"""CSAT: scheduled once per resolved conversation, sent on the last channel, answered by link
or by a single-digit reply, expiry, and promoters moving to Loyalty."""
from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from channels_app.models import Message
from customers.models import Customer, Identity, TimelineEntry
from journeys import services
from journeys.models import CsatResponse, CsatSurvey, JourneySettings, StageChange
from tests.journeys import factories as f

pytestmark = pytest.mark.django_db


def _resolved_conversation(kind: str = "webchat", *, minutes_ago: float = 30, stage: str = "reach"):
    now = timezone.now()
    customer = Customer.objects.create(display_name="Ayu", lifecycle_stage=stage)
    inbox = f.inbox(kind)
    if kind == "webchat":
        Identity.objects.create(customer=customer, kind="web_visitor", value="visitor-1", scope=str(inbox.uuid))
    else:
        Identity.objects.create(customer=customer, kind="phone", value="+6281200000001")
    conv = f.conversation(customer=customer, inbox_=inbox, created_at=now - dt.timedelta(minutes=minutes_ago + 20))
    f.message(conv, when=now - dt.timedelta(minutes=minutes_ago + 20))
    f.resolve(conv, now - dt.timedelta(minutes=minutes_ago))
    return conv


def test_a_survey_is_scheduled_once_per_resolved_conversation_after_the_delay():
    conv = _resolved_conversation(minutes_ago=5)
    JourneySettings.objects.filter(pk=1).update(csat_delay_minutes=10)

    assert services.csat_surveys_schedule() == 1
    assert services.csat_surveys_schedule() == 0
    survey = CsatSurvey.objects.get()
    conv.refresh_from_db()
    assert survey.send_after == conv.resolved_at + dt.timedelta(minutes=10)
    assert services.csat_survey_send(survey_id=survey.pk).status == "scheduled"  # not due yet


def test_the_survey_goes_out_once_on_the_conversations_last_channel_with_a_signed_link(settings):
    settings.PUBLIC_BASE_URL = "https://cx.example.com"
    conv = _resolved_conversation()
    other = f.inbox("email")
    conv.inboxes.add(other)  # spans email too, but the customer last wrote on web chat

    first = services.journeys_sync()
    second = services.journeys_sync()

    assert (first["surveys_scheduled"], first["surveys_sent"], second["surveys_sent"]) == (1, 1, 0)
    survey = CsatSurvey.objects.get()
    assert survey.status == "sent" and survey.inbox == conv.last_inbox
    sent = Message.objects.filter(conversation=conv, direction="outbound")
    assert sent.count() == 1
    message = sent.get()
    assert message.inbox == conv.last_inbox and message.sender == "system" and message.author is None
    assert message.pk == survey.message_id
    assert f"https://cx.example.com/survey/{services.survey_token(survey=survey)}/" in message.content


def test_a_survey_the_channel_cannot_deliver_is_skipped_with_the_reason():
    conv = _resolved_conversation("webchat")
    Identity.objects.filter(customer=conv.customer).delete()
    services.journeys_sync()
    survey = CsatSurvey.objects.get()
    assert survey.status == "skipped" and "cannot be reached" in survey.skip_reason
    assert not Message.objects.filter(direction="outbound").exists()


def test_no_survey_when_switched_off():
    _resolved_conversation()
    JourneySettings.objects.filter(pk=1).update(csat_enabled=False)
    services.journeys_sync()
    assert CsatSurvey.objects.count() == 0


def test_the_public_link_records_one_answer_without_login(client):
    _resolved_conversation()
    services.journeys_sync()
    survey = CsatSurvey.objects.get()
    url = f"/survey/{services.survey_token(survey=survey)}/"

    page = client.get(url)
    answer = client.post(url, {"rating": "4", "comment": "Cepat, terima kasih"})
    again = client.post(url, {"rating": "1"})

    assert page.status_code == 200 and b'name="rating"' in page.content
    assert answer.status_code == 200 and b"Thank you" in answer.content
    assert again.status_code == 200 and b"already answered" in again.content
    response = CsatResponse.objects.get()
    assert (response.rating, response.comment, response.via) == (4, "Cepat, terima kasih", "link")
    survey.refresh_from_db()
    assert survey.status == "answered"
    assert TimelineEntry.objects.filter(kind="csat", customer=survey.customer).count() == 1


def test_a_tampered_token_is_not_found(client):
    _resolved_conversation()
    services.journeys_sync()
    token = services.survey_token(survey=CsatSurvey.objects.get())
    assert client.get(f"/survey/{token[:-2]}xx/").status_code == 404


def test_a_whatsapp_digit_reply_is_recorded(monkeypatch):
    sent_ids: list[int] = []
    monkeypatch.setattr("channels_app.tasks.messages_deliver_drain_task.delay", lambda: sent_ids.append(1))
    conv = _resolved_conversation("whatsapp", minutes_ago=15)
    services.journeys_sync()
    survey = CsatSurvey.objects.get()
    assert survey.status == "sent" and survey.inbox.kind == "whatsapp"
    f.message(conv, when=timezone.now(), content=" 5 ")

    assert services.csat_replies_sync() == 1
    assert services.csat_replies_sync() == 0
    response = CsatResponse.objects.get()
    assert (response.rating, response.via) == (5, "reply")


@pytest.mark.parametrize("reply", ["thanks!", "6", "55", "4 stars but slow"])
def test_a_reply_that_is_not_a_single_digit_1_to_5_is_not_an_answer(reply):
    conv = _resolved_conversation()
    services.journeys_sync()
    f.message(conv, when=timezone.now(), content=reply)
    assert services.csat_replies_sync() == 0
    assert CsatResponse.objects.count() == 0


def test_an_expired_survey_takes_no_answer():
    _resolved_conversation()
    services.journeys_sync()
    survey = CsatSurvey.objects.get()
    CsatSurvey.objects.filter(pk=survey.pk).update(expires_at=timezone.now() - dt.timedelta(minutes=1))
    with pytest.raises(ValidationError):
        services.csat_response_record(survey=survey, rating=5, via="link")
    assert services.csat_surveys_expire() == 1
    assert CsatSurvey.objects.get().status == "expired"


def test_a_promoter_who_is_retained_becomes_loyal():
    _resolved_conversation(stage="retention")
    services.journeys_sync()
    services.csat_response_record(survey=CsatSurvey.objects.get(), rating=5, via="link")
    change = StageChange.objects.get()
    assert (change.from_stage, change.to_stage, change.rule_code, change.channel) == ("retention", "loyalty", "loyalty_promoter", "webchat")


def test_a_promoter_not_yet_retained_stays_where_they_are():
    _resolved_conversation(stage="conversion")
    services.journeys_sync()
    services.csat_response_record(survey=CsatSurvey.objects.get(), rating=5, via="link")
    assert not StageChange.objects.exclude(to_stage="acquisition").exists()


def test_an_nps_promoter_who_is_retained_becomes_loyal_even_with_csat_4(client):
    _resolved_conversation(stage="retention")
    services.journeys_sync()
    url = f"/survey/{services.survey_token(survey=CsatSurvey.objects.get())}/"
    assert b'name="nps"' in client.get(url).content
    client.post(url, {"rating": "4", "nps": "9"})
    response = CsatResponse.objects.get()
    assert (response.rating, response.nps) == (4, 9)
    assert StageChange.objects.get().to_stage == "loyalty"


def test_the_nps_question_can_be_switched_off(client):
    _resolved_conversation()
    services.journeys_sync()
    JourneySettings.objects.filter(pk=1).update(nps_enabled=False)
    url = f"/survey/{services.survey_token(survey=CsatSurvey.objects.get())}/"
    assert b'name="nps"' not in client.get(url).content


def test_no_survey_to_a_customer_who_opted_out_of_the_channel():
    from customers.models import CustomerConsent

    conv = _resolved_conversation("webchat")
    CustomerConsent.objects.create(customer=conv.customer, channel="webchat", opted_out_at=timezone.now())
    services.journeys_sync()
    survey = CsatSurvey.objects.get()
    assert survey.status == "skipped" and "opted out" in survey.skip_reason
    assert not Message.objects.filter(direction="outbound").exists()
