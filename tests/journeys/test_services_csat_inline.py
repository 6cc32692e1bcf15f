"""The widget's inline rating goes through journeys' CSAT service (channels_app never writes a
survey itself)."""
from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from journeys import services
from journeys.models import CsatResponse, CsatSurvey
from tests.journeys import factories as f

pytestmark = pytest.mark.django_db


def _conversation(*, resolved: bool = True):
    inbox = f.inbox("webchat")
    conversation = f.conversation(inbox_=inbox, created_at=timezone.now() - dt.timedelta(hours=1))
    if resolved:
        f.resolve(conversation, timezone.now() - dt.timedelta(minutes=5))
    return conversation


def test_a_rating_opens_the_survey_and_records_the_one_answer():
    conversation = _conversation()

    response = services.csat_inline_response_record(conversation=conversation, rating=5)

    survey = CsatSurvey.objects.get(conversation=conversation)
    assert survey.status == CsatSurvey.Status.ANSWERED
    assert survey.inbox_id == conversation.last_inbox_id
    assert (response.rating, response.via, response.survey_id) == (5, CsatResponse.Via.LINK, survey.pk)
    with pytest.raises(ValidationError):
        services.csat_inline_response_record(conversation=conversation, rating=1)
    assert CsatResponse.objects.count() == 1


def test_a_survey_the_scheduler_created_but_did_not_send_yet_is_used():
    conversation = _conversation()
    services.csat_surveys_schedule()
    scheduled = CsatSurvey.objects.get(conversation=conversation)
    assert scheduled.status == CsatSurvey.Status.SCHEDULED

    services.csat_inline_response_record(conversation=conversation, rating=3)

    assert CsatSurvey.objects.get().pk == scheduled.pk
    assert CsatSurvey.objects.get().status == CsatSurvey.Status.ANSWERED


def test_an_unresolved_conversation_cannot_be_rated():
    conversation = _conversation(resolved=False)

    with pytest.raises(ValidationError):
        services.csat_inline_response_record(conversation=conversation, rating=4)
    assert CsatSurvey.objects.count() == 0
