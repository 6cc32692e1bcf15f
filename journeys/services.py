"""Writes for journeys: customer events, lifecycle stages, resolutions and CSAT surveys.

journeys observes channels_app's recorded rows (channels_app's domain signals, in
channels_app/events.py, feed the outbound webhooks; journeys keeps its idempotent periodic
pass): `journeys_sync` (run by a periodic task) copies new resolutions, moves customers with
a first inbound message to Acquisition, schedules and sends surveys and records single-digit
survey replies. See docs/journeys.md.
"""
from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from typing import Any

from django.core import signing
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, Max, Min, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from accounts.services import audit_record
from channels_app.models import Conversation, ConversationStatus, Message, MessageDirection, MessageSender
from customers.models import Customer, IdentityKind, IdentityOrigin, LifecycleStage, TimelineKind
from customers.services import IdentityInput, customer_resolve, customer_update, timeline_record
from journeys import events
from journeys.maturity_grid import DIMENSION_CODES
from journeys.models import (
    STAGE_ORDER,
    ConversationResolution,
    CsatResponse,
    CsatSurvey,
    CustomerEvent,
    EventMeaning,
    EventTypeMapping,
    JourneySettings,
    MaturityAssessment,
    MaturityScore,
    StageChange,
    StageRule,
)

logger = logging.getLogger(__name__)

EVENT_SOURCE = "api:events"
SURVEY_SALT = "journeys.csat.survey"
DEFAULT_REPEAT_DAYS = 180


def journey_settings() -> JourneySettings:
    settings_row, _created = JourneySettings.objects.get_or_create(pk=1)
    return settings_row


def _live_customer(customer: Customer) -> Customer:
    seen = 0
    while customer.merged_into_id is not None and seen < 10:
        customer = Customer.objects.get(pk=customer.merged_into_id)
        seen += 1
    return customer


# --- Customer events ----------------------------------------------------------------------


@dataclass
class EventResult:
    event: CustomerEvent
    created: bool


def event_meaning_for(*, event_type: str) -> str:
    return EventTypeMapping.objects.filter(event_type=event_type).values_list("meaning", flat=True).first() or ""


def customer_event_record(
    *,
    event_id: str,
    event_type: str,
    occurred_at: dt.datetime,
    email: str = "",
    phone: str = "",
    external_id: str = "",
    display_name: str = "",
    properties: dict[str, Any] | None = None,
) -> EventResult:
    """Store one integrator event and apply the lifecycle rules to its customer.

    Idempotent on `event_id`: a replay returns the stored event (created=False) and changes
    nothing, even if its body differs. The customer is found or created through identity
    resolution with the identities asserted by the business.
    """
    event_id = (event_id or "").strip()
    if not event_id:
        raise ValidationError({"id": [_("An event needs an id.")]})
    existing = CustomerEvent.objects.filter(external_id=event_id).first()
    if existing is not None:
        return EventResult(existing, created=False)
    event_type = (event_type or "").strip()
    if not event_type:
        raise ValidationError({"type": [_("An event needs a type.")]})
    identities = [
        IdentityInput(kind=kind, value=value.strip(), source_ref=event_id)
        for kind, value in ((IdentityKind.EMAIL, email), (IdentityKind.PHONE, phone), (IdentityKind.EXTERNAL_ID, external_id))
        if value and value.strip()
    ]
    if not identities:
        raise ValidationError({"customer": [_("Give at least one of email, phone or external_id.")]})
    properties = properties or {}
    resolved = customer_resolve(
        identities=identities,
        source=EVENT_SOURCE,
        display_name=display_name,
        asserted_by=IdentityOrigin.BUSINESS,
        strict=True,
        seen_at=occurred_at,
    )
    channel = str(properties.get("channel", ""))[:30] if isinstance(properties, dict) else ""
    try:
        with transaction.atomic():
            event = CustomerEvent.objects.create(
                external_id=event_id[:200],
                type=event_type[:100],
                meaning=event_meaning_for(event_type=event_type),
                customer=resolved.customer,
                occurred_at=occurred_at,
                channel=channel,
                properties=properties,
                customer_created=resolved.created,
            )
            timeline_record(
                customer=resolved.customer,
                kind=TimelineKind.EVENT,
                occurred_at=occurred_at,
                channel=channel,
                title=event_type[:200],
                body=str(properties.get("summary", ""))[:500] if isinstance(properties, dict) else "",
                ref_type="journeys.event",
                ref_id=str(event.pk),
                data={"event": event.pk, "type": event.type, "meaning": event.meaning, "id": event.external_id},
            )
            lifecycle_apply_event(event=event)
            events.send_on_commit(events.customer_event_recorded, event=events.EVENT_RECORDED, customer_event=event,
                                  customer=resolved.customer, customer_created=resolved.created)
    except IntegrityError:
        # A concurrent delivery of the same event id won; return what it stored.
        return EventResult(CustomerEvent.objects.get(external_id=event_id[:200]), created=False)
    return EventResult(event, created=True)


# --- Lifecycle ----------------------------------------------------------------------------


def _rule(code: str) -> StageRule | None:
    return StageRule.objects.filter(code=code, is_active=True).first()


def touch_channels(*, customer: Customer, at: dt.datetime) -> tuple[str, str]:
    """(first-touch, last-touch) channel up to `at`: the customer's inbound messages and the
    events that name a channel."""
    messages = Message.objects.filter(
        conversation__customer=customer, direction=MessageDirection.INBOUND, created_at__lte=at
    )
    events = CustomerEvent.objects.filter(customer=customer, occurred_at__lte=at).exclude(channel="")
    candidates_first = [
        row for row in (
            messages.order_by("created_at", "id").values_list("created_at", "inbox__kind").first(),
            events.order_by("occurred_at", "id").values_list("occurred_at", "channel").first(),
        ) if row
    ]
    candidates_last = [
        row for row in (
            messages.order_by("-created_at", "-id").values_list("created_at", "inbox__kind").first(),
            events.order_by("-occurred_at", "-id").values_list("occurred_at", "channel").first(),
        ) if row
    ]
    first = min(candidates_first)[1] if candidates_first else ""
    last = max(candidates_last)[1] if candidates_last else ""
    return first, last


@transaction.atomic
def stage_advance(
    *,
    customer: Customer,
    to_stage: str,
    rule: StageRule,
    at: dt.datetime | None = None,
    channel: str = "",
    event: CustomerEvent | None = None,
) -> StageChange | None:
    """Move a customer forward by a rule; None when they are already at or past `to_stage`
    (rules never move anyone back)."""
    customer = Customer.objects.select_for_update().get(pk=_live_customer(customer).pk)
    if not customer.is_active_profile or STAGE_ORDER[to_stage] <= STAGE_ORDER[customer.lifecycle_stage]:
        return None
    return _stage_write(
        customer=customer, to_stage=to_stage, at=at or timezone.now(), reason=StageChange.Reason.RULE,
        rule=rule, channel=channel, event=event,
    )


@transaction.atomic
def stage_set(
    *,
    customer: Customer,
    to_stage: str,
    actor: User | None,
    reason: str = StageChange.Reason.API,
    note: str = "",
    request=None,
) -> StageChange:
    """An explicit move by an agent or the API, in either direction; audited."""
    if to_stage not in LifecycleStage.values:
        raise ValidationError({"stage": [_("“%(value)s” is not a lifecycle stage.") % {"value": to_stage}]})
    if reason not in (StageChange.Reason.AGENT, StageChange.Reason.API):
        raise ValueError("reason must be agent or api")
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    if not customer.is_active_profile:
        raise ValidationError({"customer": [_("This profile was merged or erased.")]})
    if customer.lifecycle_stage == to_stage:
        raise ValidationError({"stage": [_("The customer is already at this stage.")]})
    change = _stage_write(
        customer=customer, to_stage=to_stage, at=timezone.now(), reason=reason, actor=actor, note=note[:500]
    )
    audit_record(
        action="journeys.stage_set",
        actor=actor,
        target=customer,
        request=request,
        data={"from": change.from_stage, "to": change.to_stage, "reason": reason, "note": note[:500]},
    )
    return change


def _stage_write(
    *,
    customer: Customer,
    to_stage: str,
    at: dt.datetime,
    reason: str,
    rule: StageRule | None = None,
    actor: User | None = None,
    note: str = "",
    channel: str = "",
    event: CustomerEvent | None = None,
) -> StageChange:
    first_touch, last_touch = touch_channels(customer=customer, at=at)
    change = StageChange(
        customer=customer,
        from_stage=customer.lifecycle_stage,
        to_stage=to_stage,
        changed_at=at,
        reason=reason,
        rule=rule,
        rule_code=rule.code if rule else "",
        actor=actor,
        note=note,
        channel=channel or last_touch,
        first_touch_channel=first_touch or channel,
        last_touch_channel=channel or last_touch,
        event=event,
    )
    change.full_clean()
    change.save()
    customer_update(customer=customer, actor=actor, lifecycle_stage=to_stage)
    return change


def _purchase_target(*, event: CustomerEvent) -> tuple[str, StageRule] | None:
    """Conversion for a first purchase; Retention when a previous purchase lies within N days."""
    repeat = _rule(StageRule.Code.RETENTION_REPEAT_PURCHASE)
    if repeat is not None:
        window = dt.timedelta(days=repeat.window_days or DEFAULT_REPEAT_DAYS)
        earlier = (
            CustomerEvent.objects.filter(
                customer=event.customer,
                meaning=EventMeaning.PURCHASE,
                occurred_at__gte=event.occurred_at - window,
                occurred_at__lte=event.occurred_at,
            )
            .exclude(pk=event.pk)
            .exists()
        )
        if earlier:
            return LifecycleStage.RETENTION, repeat
    first = _rule(StageRule.Code.CONVERSION_FIRST_PURCHASE)
    return (LifecycleStage.CONVERSION, first) if first is not None else None


def lifecycle_apply_event(*, event: CustomerEvent) -> StageChange | None:
    """Apply the stage rules an event can trigger."""
    customer = _live_customer(event.customer)
    target: tuple[str, StageRule] | None = None
    if event.meaning == EventMeaning.LEAD:
        rule = _rule(StageRule.Code.ACQUISITION_CONTACT)
        target = (LifecycleStage.ACQUISITION, rule) if rule else None
    elif event.meaning == EventMeaning.PURCHASE:
        target = _purchase_target(event=event)
    elif event.meaning == EventMeaning.REFERRAL and customer.lifecycle_stage == LifecycleStage.RETENTION:
        rule = _rule(StageRule.Code.LOYALTY_PROMOTER)
        target = (LifecycleStage.LOYALTY, rule) if rule else None
    if target is None:
        return None
    return stage_advance(customer=customer, to_stage=target[0], rule=target[1], at=event.occurred_at,
                         channel=event.channel, event=event)


def lifecycle_sync_from_messages(*, limit: int = 1000) -> int:
    """Customers still in Reach who have written to us move to Acquisition (first inbound
    message), dated at that message and attributed to its channel. One query finds them."""
    rule = _rule(StageRule.Code.ACQUISITION_CONTACT)
    if rule is None:
        return 0
    inbound = Message.objects.filter(
        conversation__customer=OuterRef("pk"), direction=MessageDirection.INBOUND, sender=MessageSender.CUSTOMER
    )
    candidates = list(
        Customer.objects.filter(lifecycle_stage=LifecycleStage.REACH, merged_into__isnull=True, is_erased=False)
        .filter(Exists(inbound))
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    if not candidates:
        return 0
    firsts = {
        row["conversation__customer"]: row
        for row in Message.objects.filter(
            conversation__customer_id__in=candidates, direction=MessageDirection.INBOUND, sender=MessageSender.CUSTOMER
        )
        .values("conversation__customer")
        .annotate(first_at=Min("created_at"))
    }
    moved = 0
    for customer in Customer.objects.filter(pk__in=candidates):
        first_at = firsts[customer.pk]["first_at"]
        kind = (
            Message.objects.filter(conversation__customer=customer, direction=MessageDirection.INBOUND, created_at=first_at)
            .values_list("inbox__kind", flat=True)
            .first()
            or ""
        )
        if stage_advance(customer=customer, to_stage=LifecycleStage.ACQUISITION, rule=rule, at=first_at, channel=kind):
            moved += 1
    return moved


DEFAULT_LAPSE_DAYS = 365


def lifecycle_lapse(*, now: dt.datetime | None = None, limit: int = 1000) -> int:
    """The lapse rule (off by default): retained or loyal customers whose last purchase is
    older than N days move back to Conversion, recorded as a rule change."""
    rule = _rule(StageRule.Code.LAPSE)
    if rule is None:
        return 0
    now = now or timezone.now()
    cutoff = now - dt.timedelta(days=rule.window_days or DEFAULT_LAPSE_DAYS)
    lapsed = list(
        Customer.objects.filter(
            lifecycle_stage__in=[LifecycleStage.RETENTION, LifecycleStage.LOYALTY], merged_into__isnull=True, is_erased=False
        )
        .annotate(last_purchase=Max("journey_events__occurred_at", filter=Q(journey_events__meaning=EventMeaning.PURCHASE)))
        .filter(last_purchase__lt=cutoff)
        .order_by("pk")[:limit]
    )
    moved = 0
    for customer in lapsed:
        with transaction.atomic():
            locked = Customer.objects.select_for_update().get(pk=customer.pk)
            if locked.lifecycle_stage not in (LifecycleStage.RETENTION, LifecycleStage.LOYALTY):
                continue
            _stage_write(customer=locked, to_stage=LifecycleStage.CONVERSION, at=now, reason=StageChange.Reason.RULE,
                         rule=rule, note=_("No purchase since %(date)s") % {"date": customer.last_purchase.date().isoformat()})
            moved += 1
    return moved


# --- Resolutions (the KPI log) -------------------------------------------------------------


TIMELINE_LOOKBACK = dt.timedelta(days=2)


def _resolution_candidates(limit: int) -> list[tuple[int, dt.datetime]]:
    """(conversation id, resolved at) pairs not yet in the log, from two sources:
    conversations that are resolved now, and the customers' timeline entries "conversation
    resolved" of the last two days (they survive a reopen, which clears `resolved_at`)."""
    from customers.models import TimelineEntry

    recorded = ConversationResolution.objects.filter(conversation=OuterRef("pk"), resolved_at=OuterRef("resolved_at"))
    pairs = set(
        Conversation.objects.filter(status=ConversationStatus.RESOLVED, resolved_at__isnull=False)
        .exclude(Exists(recorded))
        .order_by("resolved_at", "pk")
        .values_list("pk", "resolved_at")[:limit]
    )
    entries = list(
        TimelineEntry.objects.filter(kind=TimelineKind.CONVERSATION_RESOLVED,
                                     occurred_at__gte=timezone.now() - TIMELINE_LOOKBACK)
        .values_list("data__conversation", "occurred_at")[:limit]
    )
    from_timeline = {(int(pk), at) for pk, at in entries if isinstance(pk, int)}
    if from_timeline:
        known = set(
            ConversationResolution.objects.filter(conversation_id__in={pk for pk, _at in from_timeline})
            .values_list("conversation_id", "resolved_at")
        )
        existing = set(Conversation.objects.filter(pk__in={pk for pk, _at in from_timeline}).values_list("pk", flat=True))
        pairs |= {pair for pair in from_timeline if pair not in known and pair[0] in existing}
    return sorted(pairs, key=lambda pair: (pair[1], pair[0]))


def resolutions_sync(*, limit: int = 5000) -> int:
    """Copy resolutions of conversations into the resolution log (one row per resolution
    cycle). A cycle starts when the conversation was created, or for a reopened conversation
    at the first customer message after the previous resolution."""
    pending = _resolution_candidates(limit)
    if not pending:
        return 0
    conversations = {
        row["pk"]: row
        for row in Conversation.objects.filter(pk__in={pk for pk, _at in pending})
        .values("pk", "created_at", "last_inbox_id", "assignee_id", "team_id")
    }
    created = 0
    for conversation_id, resolved_at in pending:
        row = conversations[conversation_id]
        previous = (
            ConversationResolution.objects.filter(conversation_id=conversation_id, resolved_at__lt=resolved_at)
            .order_by("-resolved_at")
            .values_list("resolved_at", flat=True)
            .first()
        )
        start = row["created_at"]
        if previous is not None:
            start = (
                Message.objects.filter(
                    conversation_id=conversation_id, direction=MessageDirection.INBOUND, created_at__gt=previous,
                    created_at__lte=resolved_at,
                ).aggregate(at=Min("created_at"))["at"]
                or previous
            )
        try:
            with transaction.atomic():
                ConversationResolution.objects.create(
                    conversation_id=conversation_id,
                    resolved_at=resolved_at,
                    cycle_started_at=min(start, resolved_at),
                    inbox_id=row["last_inbox_id"],
                    assignee_id=row["assignee_id"],
                    team_id=row["team_id"],
                    is_reopen=previous is not None,
                )
        except IntegrityError:
            continue
        created += 1
    return created


# --- CSAT ---------------------------------------------------------------------------------


def survey_token(*, survey: CsatSurvey) -> str:
    """Signed survey id (no timestamp: expiry is the survey's own `expires_at`), so the link
    in the message and any later rendering agree."""
    return signing.Signer(salt=SURVEY_SALT).sign(str(survey.pk))


def survey_from_token(*, token: str) -> CsatSurvey | None:
    try:
        value = signing.Signer(salt=SURVEY_SALT).unsign(token)
    except signing.BadSignature:
        return None
    if not value.isdigit():
        return None
    return CsatSurvey.objects.select_related("conversation", "inbox").filter(pk=int(value)).first()


def survey_url(*, survey: CsatSurvey) -> str:
    from django.conf import settings
    from django.urls import reverse

    path = reverse("survey", args=[survey_token(survey=survey)])
    return (getattr(settings, "PUBLIC_BASE_URL", "") or "").rstrip("/") + path


def csat_surveys_schedule(*, now: dt.datetime | None = None) -> int:
    """A survey for every resolved conversation that has none yet (one per conversation)."""
    config = journey_settings()
    if not config.csat_enabled:
        return 0
    now = now or timezone.now()
    rows = (
        Conversation.objects.filter(status=ConversationStatus.RESOLVED, resolved_at__isnull=False, csat_survey__isnull=True)
        .values("pk", "customer_id", "last_inbox_id", "assignee_id", "team_id", "resolved_at")[:1000]
    )
    created = 0
    for row in rows:
        try:
            with transaction.atomic():
                CsatSurvey.objects.create(
                    conversation_id=row["pk"],
                    customer_id=row["customer_id"],
                    inbox_id=row["last_inbox_id"],
                    assignee_id=row["assignee_id"],
                    team_id=row["team_id"],
                    created_at=now,
                    send_after=row["resolved_at"] + dt.timedelta(minutes=config.csat_delay_minutes),
                )
        except IntegrityError:
            continue
        created += 1
    return created


def csat_survey_send(*, survey_id: int, now: dt.datetime | None = None) -> CsatSurvey:
    """Send one due survey on the conversation's last channel, through the channels app's
    outbound message service (which queues delivery after commit). Sent at most once: a
    survey that is not `scheduled` is left alone; one that cannot be sent is marked skipped."""
    from channels_app.services import message_create_outbound

    now = now or timezone.now()
    config = journey_settings()
    with transaction.atomic():
        survey = CsatSurvey.objects.select_for_update(of=("self",)).select_related("conversation", "inbox").get(pk=survey_id)
        if survey.status != CsatSurvey.Status.SCHEDULED or survey.send_after > now:
            return survey
        if survey.inbox is None:
            return _survey_skip(survey, _("The conversation has no channel."))
        if _opted_out(customer_id=survey.customer_id, inbox_kind=survey.inbox.kind):
            return _survey_skip(survey, _("The customer opted out of messages on this channel."))
        text = f"{config.csat_question}\n{survey_url(survey=survey)}"
        try:
            with transaction.atomic():
                message = message_create_outbound(conversation=survey.conversation, author=None, content=text, inbox=survey.inbox)
        except ValidationError as exc:
            return _survey_skip(survey, "; ".join(exc.messages)[:300])
        survey.status = CsatSurvey.Status.SENT
        survey.sent_at = now
        survey.expires_at = now + dt.timedelta(hours=config.csat_expiry_hours)
        survey.message_id = message.pk
        survey.save(update_fields=["status", "sent_at", "expires_at", "message_id"])
        return survey


CONSENT_NAMES = {"twilio_sms": ("sms", "twilio_sms"), "webchat": ("webchat", "web")}


def _opted_out(*, customer_id: int, inbox_kind: str) -> bool:
    """An explicit opt-out recorded for this channel (customers' consent records) wins."""
    from customers.models import CustomerConsent

    names = CONSENT_NAMES.get(inbox_kind, (inbox_kind,))
    return any(
        consent.opted_out_at is not None and not consent.is_opted_in
        for consent in CustomerConsent.objects.filter(customer_id=customer_id, channel__in=names)
    )


def _survey_skip(survey: CsatSurvey, reason: str) -> CsatSurvey:
    survey.status = CsatSurvey.Status.SKIPPED
    survey.skip_reason = reason
    survey.save(update_fields=["status", "skip_reason"])
    return survey


def csat_surveys_due(*, now: dt.datetime | None = None) -> list[int]:
    now = now or timezone.now()
    return list(
        CsatSurvey.objects.filter(status=CsatSurvey.Status.SCHEDULED, send_after__lte=now).values_list("pk", flat=True)[:500]
    )


def csat_surveys_expire(*, now: dt.datetime | None = None) -> int:
    now = now or timezone.now()
    return CsatSurvey.objects.filter(status=CsatSurvey.Status.SENT, expires_at__lte=now).update(status=CsatSurvey.Status.EXPIRED)


@transaction.atomic
def csat_response_record(
    *, survey: CsatSurvey, rating: int, comment: str = "", via: str, at: dt.datetime | None = None, nps: int | None = None
) -> CsatResponse:
    """Record the one answer to a survey; a promoter (CSAT 5 or NPS 9–10) who is retained
    moves to Loyalty."""
    at = at or timezone.now()
    survey = CsatSurvey.objects.select_for_update().get(pk=survey.pk)
    if not isinstance(rating, int) or not 1 <= rating <= 5:
        raise ValidationError({"rating": [_("Choose a rating from 1 to 5.")]})
    if nps is not None and (not isinstance(nps, int) or not 0 <= nps <= 10):
        raise ValidationError({"nps": [_("Choose a number from 0 to 10.")]})
    if survey.status == CsatSurvey.Status.ANSWERED or CsatResponse.objects.filter(survey=survey).exists():
        raise ValidationError({"survey": [_("This survey was already answered. Thank you!")]})
    if survey.status != CsatSurvey.Status.SENT or (survey.expires_at and survey.expires_at <= at):
        raise ValidationError({"survey": [_("This survey is no longer open.")]})
    customer = _live_customer(survey.customer)
    response = CsatResponse(survey=survey, customer=customer, rating=rating, nps=nps, comment=(comment or "")[:2000],
                            via=via, responded_at=at)
    response.full_clean()
    response.save()
    survey.status = CsatSurvey.Status.ANSWERED
    survey.save(update_fields=["status"])
    timeline_record(
        customer=customer,
        kind=TimelineKind.CSAT,
        occurred_at=at,
        channel=survey.inbox.kind if survey.inbox_id else "",
        title=_("Rated the service %(rating)s/5") % {"rating": rating},
        body=response.comment[:500],
        ref_type="journeys.csat",
        ref_id=str(response.pk),
        data={"survey": survey.pk, "conversation": survey.conversation_id, "rating": rating},
    )
    events.send_on_commit(events.csat_answered, event=events.CSAT_ANSWERED, response=response, survey=survey,
                          customer=customer)
    promoter = rating == 5 or (nps is not None and nps >= 9)
    if promoter and customer.lifecycle_stage == LifecycleStage.RETENTION:
        rule = _rule(StageRule.Code.LOYALTY_PROMOTER)
        if rule is not None:
            stage_advance(customer=customer, to_stage=LifecycleStage.LOYALTY, rule=rule, at=at,
                          channel=survey.inbox.kind if survey.inbox_id else "")
    return response


@transaction.atomic
def csat_inline_response_record(
    *, conversation: Conversation, rating: int, via: str = CsatResponse.Via.LINK, inbox_id: int | None = None,
    at: dt.datetime | None = None,
) -> CsatResponse:
    """A rating given in the channel itself (the web chat widget's stars) for a resolved
    conversation. Its survey (on `inbox_id`, default the conversation's last inbox) is opened now
    when the scheduler has not created or sent it yet (one survey per conversation), then the
    answer goes through `csat_response_record`."""
    at = at or timezone.now()
    conversation = Conversation.objects.get(pk=conversation.pk)
    if conversation.status != ConversationStatus.RESOLVED:
        raise ValidationError({"rating": [_("There is no resolved conversation to rate.")]})
    expires_at = at + dt.timedelta(hours=journey_settings().csat_expiry_hours)
    survey, _created = CsatSurvey.objects.get_or_create(
        conversation=conversation,
        defaults={"customer_id": conversation.customer_id, "inbox_id": inbox_id or conversation.last_inbox_id,
                  "assignee_id": conversation.assignee_id, "team_id": conversation.team_id,
                  "status": CsatSurvey.Status.SENT, "send_after": at, "sent_at": at, "expires_at": expires_at},
    )
    if survey.status == CsatSurvey.Status.SCHEDULED:
        survey.status, survey.sent_at, survey.expires_at = CsatSurvey.Status.SENT, at, expires_at
        survey.save(update_fields=["status", "sent_at", "expires_at"])
    return csat_response_record(survey=survey, rating=rating, via=via, at=at)


DIGIT_REPLY = re.compile(r"^\s*([1-5])\s*[.!]?\s*$")


def csat_replies_sync(*, limit: int = 1000) -> int:
    """A sent survey answered by a single digit 1–5 in a customer message on the same
    conversation after the survey went out (WhatsApp, Telegram, SMS...) is recorded."""
    open_surveys = CsatSurvey.objects.filter(status=CsatSurvey.Status.SENT, sent_at__isnull=False)
    recorded = 0
    for survey in open_surveys.select_related("inbox", "customer").order_by("sent_at")[:limit]:
        reply = (
            Message.objects.filter(
                conversation_id=survey.conversation_id, direction=MessageDirection.INBOUND,
                sender=MessageSender.CUSTOMER, created_at__gte=survey.sent_at,
            )
            .order_by("created_at", "id")
            .values_list("content", "created_at")
            .first()
        )
        if reply is None:
            continue
        match = DIGIT_REPLY.match(reply[0] or "")
        if match is None:
            continue
        try:
            csat_response_record(survey=survey, rating=int(match.group(1)), via=CsatResponse.Via.REPLY, at=reply[1])
        except ValidationError:
            continue
        recorded += 1
    return recorded


def journeys_sync(*, now: dt.datetime | None = None) -> dict[str, int]:
    """The periodic pass (see module docstring): each step is idempotent."""
    now = now or timezone.now()
    result = {
        "resolutions": resolutions_sync(),
        "acquisitions": lifecycle_sync_from_messages(),
        "lapsed": lifecycle_lapse(now=now),
        "surveys_scheduled": csat_surveys_schedule(now=now),
    }
    sent = 0
    for survey_id in csat_surveys_due(now=now):
        if csat_survey_send(survey_id=survey_id, now=now).status == CsatSurvey.Status.SENT:
            sent += 1
    result["surveys_sent"] = sent
    result["replies"] = csat_replies_sync()
    result["expired"] = csat_surveys_expire(now=now)
    # Last, so the facts include the resolutions logged above (reports refresh them too).
    from journeys.facts import kpi_facts_refresh

    result["kpi_facts"] = kpi_facts_refresh()
    return result


# --- Maturity assessment ------------------------------------------------------------------


@transaction.atomic
def maturity_assessment_create(*, title: str, actor: User | None, notes: str = "") -> MaturityAssessment:
    """Open an assessment with a snapshot of the measured evidence."""
    from journeys.maturity import maturity_evidence

    title = (title or "").strip()
    if not title:
        raise ValidationError({"title": [_("Give the assessment a title.")]})
    assessment = MaturityAssessment(title=title[:200], created_by=actor, notes=notes, evidence=maturity_evidence())
    assessment.full_clean()
    assessment.save()
    return assessment


@transaction.atomic
def maturity_score_record(
    *,
    assessment: MaturityAssessment,
    assessor: User,
    dimension: str,
    level: int,
    target_level: int | None = None,
    horizon: str = "",
    actions: str = "",
) -> MaturityScore:
    """Set one assessor's level for one dimension (a second call replaces it)."""

    if dimension not in DIMENSION_CODES:
        raise ValidationError({"dimension": [_("Unknown dimension “%(value)s”.") % {"value": dimension}]})
    for name, value in (("level", level), ("target_level", target_level)):
        if value is not None and (not isinstance(value, int) or not 1 <= value <= 5):
            raise ValidationError({name: [_("Levels go from 1 to 5.")]})
    score, _created = MaturityScore.objects.update_or_create(
        assessment=assessment, assessor=assessor, dimension=dimension,
        defaults={"level": level, "target_level": target_level, "horizon": horizon, "actions": actions[:1000],
                  "scored_at": timezone.now()},
    )
    score.full_clean()
    return score
