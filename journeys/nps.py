"""NPS campaigns: a 0–10 "would you recommend us" survey sent to the customers of a segment.

`nps_campaign_create` stores the campaign and queues `nps_campaign_send_task` after commit;
`nps_campaign_send` walks the segment in batches, sending each customer one message with a
signed link to `/survey/<token>/` on the channel they last wrote from (through the channels
app's outbound service, so the WhatsApp window and reachability are enforced there) and
updating the progress counters after each batch. Re-running it skips customers already
handled, so a crashed or repeated task never sends twice (unique campaign + customer).
"""
from __future__ import annotations

import datetime as dt
import logging

from django.core import signing
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from customers.models import Customer, LifecycleStage, Segment, TimelineKind
from customers.services import timeline_record
from journeys.models import NpsCampaign, NpsSurvey, StageRule

logger = logging.getLogger(__name__)

NPS_SALT = "journeys.nps.survey"
BATCH = 50


def nps_token(*, survey: NpsSurvey) -> str:
    return signing.Signer(salt=NPS_SALT).sign(f"n{survey.pk}")


def nps_survey_from_token(*, token: str) -> NpsSurvey | None:
    try:
        value = signing.Signer(salt=NPS_SALT).unsign(token)
    except signing.BadSignature:
        return None
    if not (value.startswith("n") and value[1:].isdigit()):
        return None
    return NpsSurvey.objects.select_related("campaign").filter(pk=int(value[1:])).first()


def nps_survey_url(*, survey: NpsSurvey) -> str:
    from django.conf import settings
    from django.urls import reverse

    path = reverse("survey", args=[nps_token(survey=survey)])
    return (getattr(settings, "PUBLIC_BASE_URL", "") or "").rstrip("/") + path


def nps_campaign_create(*, name: str, segment: Segment, actor: User | None, question: str = "",
                        expiry_hours: int = 168) -> NpsCampaign:
    """Store a campaign and queue its send job (after commit)."""
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": [_("Give the campaign a name.")]})
    campaign = NpsCampaign(name=name[:200], segment=segment, created_by=actor, expiry_hours=expiry_hours)
    if question and question.strip():
        campaign.question = question.strip()[:300]
    with transaction.atomic():
        campaign.full_clean()
        campaign.save()

        from journeys.tasks import nps_campaign_send_task

        transaction.on_commit(lambda: nps_campaign_send_task.delay(campaign.pk), robust=True)
    return campaign


def nps_campaign_send(*, campaign_id: int, now: dt.datetime | None = None, batch: int = BATCH) -> NpsCampaign:
    """Send the campaign to every customer of its segment not yet handled; progress counters
    are saved after each batch so the page can show how far the job is."""
    from customers.selectors import segment_customers

    now = now or timezone.now()
    campaign = NpsCampaign.objects.select_related("segment").get(pk=campaign_id)
    if campaign.status == NpsCampaign.Status.DONE:
        return campaign
    audience = segment_customers(segment=campaign.segment)
    NpsCampaign.objects.filter(pk=campaign.pk).update(status=NpsCampaign.Status.SENDING, total=audience.count())
    while True:
        handled = NpsSurvey.objects.filter(campaign=campaign).values("customer_id")
        pending = list(audience.exclude(pk__in=handled).order_by("pk")[:batch])
        if not pending:
            break
        sent = skipped = 0
        for customer in pending:
            survey = nps_survey_send(campaign=campaign, customer=customer, now=now)
            if survey is None:
                continue
            if survey.status == NpsSurvey.Status.SENT:
                sent += 1
            else:
                skipped += 1
        NpsCampaign.objects.filter(pk=campaign.pk).update(
            processed=F("processed") + sent + skipped, sent=F("sent") + sent, skipped=F("skipped") + skipped
        )
    NpsCampaign.objects.filter(pk=campaign.pk).update(status=NpsCampaign.Status.DONE, finished_at=timezone.now())
    campaign.refresh_from_db()
    return campaign


def nps_survey_send(*, campaign: NpsCampaign, customer: Customer, now: dt.datetime) -> NpsSurvey | None:
    """One customer's survey: sent on the channel they last wrote from, or skipped with the
    reason. None when another run already handled this customer."""
    from channels_app.services import message_create_outbound
    from journeys.rules import outbound_conversation, preferred_inbox
    from journeys.services import _opted_out

    try:
        with transaction.atomic():
            survey = NpsSurvey.objects.create(campaign=campaign, customer=customer, status=NpsSurvey.Status.SKIPPED)
            inbox = preferred_inbox(customer=customer)
            conversation = outbound_conversation(customer=customer)
            if inbox is None or conversation is None:
                return _skip(survey, _("The customer has never written to us."))
            survey.inbox = inbox
            if _opted_out(customer_id=customer.pk, inbox_kind=inbox.kind):
                return _skip(survey, _("The customer opted out of messages on this channel."))
            text = f"{campaign.question}\n{nps_survey_url(survey=survey)}"
            try:
                with transaction.atomic():
                    message = message_create_outbound(conversation=conversation, author=None, content=text, inbox=inbox)
            except ValidationError as exc:
                return _skip(survey, "; ".join(exc.messages)[:300])
            survey.status = NpsSurvey.Status.SENT
            survey.sent_at = now
            survey.expires_at = now + dt.timedelta(hours=campaign.expiry_hours)
            survey.message_id = message.pk
            survey.save(update_fields=["status", "inbox", "sent_at", "expires_at", "message_id"])
            return survey
    except IntegrityError:
        return None


def _skip(survey: NpsSurvey, reason: str) -> NpsSurvey:
    survey.status = NpsSurvey.Status.SKIPPED
    survey.skip_reason = reason[:300]
    survey.save(update_fields=["status", "skip_reason", "inbox"])
    return survey


@transaction.atomic
def nps_response_record(*, survey: NpsSurvey, score: int, comment: str = "", at: dt.datetime | None = None) -> NpsSurvey:
    """Record the one answer (0–10); a retained promoter (9–10) moves to Loyalty."""
    from journeys.services import _live_customer, _rule, stage_advance

    at = at or timezone.now()
    survey = NpsSurvey.objects.select_for_update(of=("self",)).select_related("inbox").get(pk=survey.pk)
    if not isinstance(score, int) or not 0 <= score <= 10:
        raise ValidationError({"score": [_("Choose a number from 0 to 10.")]})
    if survey.status == NpsSurvey.Status.ANSWERED:
        raise ValidationError({"survey": [_("This survey was already answered. Thank you!")]})
    if survey.status != NpsSurvey.Status.SENT or (survey.expires_at and survey.expires_at <= at):
        raise ValidationError({"survey": [_("This survey is no longer open.")]})
    survey.score = score
    survey.comment = (comment or "")[:2000]
    survey.answered_at = at
    survey.status = NpsSurvey.Status.ANSWERED
    survey.save(update_fields=["score", "comment", "answered_at", "status"])
    customer = _live_customer(survey.customer)
    channel = survey.inbox.kind if survey.inbox_id else ""
    timeline_record(
        customer=customer, kind=TimelineKind.CSAT, occurred_at=at, channel=channel,
        title=_("Would recommend us: %(score)s/10") % {"score": score}, body=survey.comment[:500],
        ref_type="journeys.nps", ref_id=str(survey.pk), data={"nps_survey": survey.pk, "campaign": survey.campaign_id, "score": score},
    )
    if score >= 9 and customer.lifecycle_stage == LifecycleStage.RETENTION:
        rule = _rule(StageRule.Code.LOYALTY_PROMOTER)
        if rule is not None:
            stage_advance(customer=customer, to_stage=LifecycleStage.LOYALTY, rule=rule, at=at, channel=channel)
    return survey


def nps_summary(surveys) -> dict:
    """NPS of answered campaign surveys: % promoters (9–10) − % detractors (0–6)."""
    from django.db.models import Count, Q

    values = surveys.filter(score__isnull=False).aggregate(
        answers=Count("id"), promoters=Count("id", filter=Q(score__gte=9)), detractors=Count("id", filter=Q(score__lte=6)),
    )
    answers = values["answers"] or 0
    return {
        "answers": answers, "promoters": values["promoters"] or 0, "detractors": values["detractors"] or 0,
        "passives": answers - (values["promoters"] or 0) - (values["detractors"] or 0),
        "nps": (100.0 * (values["promoters"] - values["detractors"]) / answers) if answers else None,
    }
