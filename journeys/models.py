"""Lifecycle stages, customer events, CSAT surveys and the resolution log KPIs are built on.

Fields, constraints and indexes only: writes go through `journeys.services`, reads through
`journeys.selectors` and `journeys.kpis`.
"""
from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from customers.models import LifecycleStage

STAGE_ORDER = {stage: index for index, stage in enumerate(LifecycleStage.values)}


class EventMeaning(models.TextChoices):
    PURCHASE = "purchase", _("Purchase")
    LEAD = "lead", _("Lead")
    REFERRAL = "referral", _("Referral")
    CAMPAIGN_CLICK = "campaign_click", _("Campaign click")
    CHURN_SIGNAL = "churn_signal", _("Churn signal")


class EventTypeMapping(models.Model):
    """What an integrator's free-form event type (e.g. "order.paid") means to the lifecycle."""

    event_type = models.CharField(_("event type"), max_length=100, unique=True)
    meaning = models.CharField(_("meaning"), max_length=20, choices=EventMeaning.choices)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("event type mapping")
        verbose_name_plural = _("event type mappings")
        ordering = ["event_type"]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.get_meaning_display()}"


class CustomerEvent(models.Model):
    """One business event about a customer sent by an integrator (an order, a signup).

    `external_id` is the integrator's id and is unique, so a replayed POST stores nothing new.
    `meaning` is the mapping in force when the event arrived (history does not change when an
    admin later remaps the type).
    """

    external_id = models.CharField(_("event id"), max_length=200, unique=True)
    type = models.CharField(_("type"), max_length=100, db_index=True)
    meaning = models.CharField(_("meaning"), max_length=20, choices=EventMeaning.choices, blank=True)
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.CASCADE, related_name="journey_events", verbose_name=_("customer")
    )
    occurred_at = models.DateTimeField(_("occurred"))
    received_at = models.DateTimeField(_("received"), default=timezone.now)
    channel = models.CharField(_("channel"), max_length=30, blank=True, help_text=_("Touchpoint named in properties.channel."))
    properties = models.JSONField(_("properties"), default=dict, blank=True)
    customer_created = models.BooleanField(_("created the customer"), default=False)

    class Meta:
        verbose_name = _("customer event")
        verbose_name_plural = _("customer events")
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["customer", "meaning", "occurred_at"], name="journey_event_customer_idx"),
            models.Index(fields=["meaning", "occurred_at"], name="journey_event_meaning_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.type} ({self.external_id})"


class StageRule(models.Model):
    """A lifecycle rule admins can switch off or tune; `code` is what the engine evaluates."""

    class Code(models.TextChoices):
        REACH_KNOWN = "reach_known", _("Known but never in two-way contact → Reach")
        ACQUISITION_CONTACT = "acquisition_contact", _("First inbound message or lead event → Acquisition")
        CONVERSION_FIRST_PURCHASE = "conversion_first_purchase", _("First purchase → Conversion")
        RETENTION_REPEAT_PURCHASE = "retention_repeat_purchase", _("Repeat purchase within N days → Retention")
        LOYALTY_PROMOTER = "loyalty_promoter", _("Promoter (CSAT 5 or NPS 9–10) or referral while retained → Loyalty")
        LAPSE = "lapse", _("No purchase for N days: Retention/Loyalty → back to Conversion")

    code = models.CharField(_("rule"), max_length=40, choices=Code.choices, unique=True)
    is_active = models.BooleanField(_("active"), default=True)
    window_days = models.PositiveIntegerField(
        _("window (days)"), null=True, blank=True, help_text=_("Repeat-purchase rule: N days between purchases. Lapse rule: N days without a purchase.")
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("stage rule")
        verbose_name_plural = _("stage rules")
        ordering = ["id"]

    def __str__(self) -> str:
        return self.get_code_display()


class StageChange(models.Model):
    """One move of a customer between lifecycle stages, with why and through which channel.

    `first_touch_channel` is the channel of the customer's first recorded touch (inbound
    message or event naming a channel) and `last_touch_channel` the latest one up to the change.
    """

    class Reason(models.TextChoices):
        RULE = "rule", _("Rule")
        AGENT = "agent", _("Agent")
        API = "api", _("API")

    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.CASCADE, related_name="stage_changes", verbose_name=_("customer")
    )
    from_stage = models.CharField(_("from"), max_length=20, choices=LifecycleStage.choices)
    to_stage = models.CharField(_("to"), max_length=20, choices=LifecycleStage.choices)
    changed_at = models.DateTimeField(_("when"), default=timezone.now)
    reason = models.CharField(_("reason"), max_length=10, choices=Reason.choices)
    rule = models.ForeignKey(StageRule, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("rule"))
    rule_code = models.CharField(_("rule code"), max_length=40, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("by")
    )
    note = models.CharField(_("note"), max_length=500, blank=True)
    channel = models.CharField(_("channel"), max_length=30, blank=True, help_text=_("The channel that caused the change."))
    first_touch_channel = models.CharField(_("first-touch channel"), max_length=30, blank=True)
    last_touch_channel = models.CharField(_("last-touch channel"), max_length=30, blank=True)
    event = models.ForeignKey(CustomerEvent, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("event"))

    class Meta:
        verbose_name = _("stage change")
        verbose_name_plural = _("stage changes")
        ordering = ["-changed_at", "-id"]
        indexes = [
            models.Index(fields=["to_stage", "changed_at"], name="stage_change_to_idx"),
            models.Index(fields=["customer", "changed_at"], name="stage_change_customer_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.customer_id} {self.from_stage} → {self.to_stage}"


class JourneySettings(models.Model):
    """Singleton (pk=1) of lifecycle and survey settings admins edit in the admin site."""

    csat_enabled = models.BooleanField(_("send CSAT surveys"), default=True)
    csat_delay_minutes = models.PositiveIntegerField(_("survey delay after resolution (minutes)"), default=10)
    csat_expiry_hours = models.PositiveIntegerField(_("survey expires after (hours)"), default=72)
    business_day_start = models.TimeField(_("business hours start"), default=dt.time(8, 0))
    business_day_end = models.TimeField(_("business hours end"), default=dt.time(17, 0))
    business_weekdays = models.CharField(
        _("business days"), max_length=20, default="0,1,2,3,4",
        help_text=_("Weekday numbers, Monday = 0 … Sunday = 6, comma-separated. Times are in the site time zone."),
    )
    nps_enabled = models.BooleanField(_("ask the NPS question on the survey page"), default=True)
    csat_question = models.CharField(
        _("survey question"), max_length=300, default="How satisfied are you with our help? Reply 1 (bad) to 5 (great)"
    )
    webchat_abandon_minutes = models.PositiveIntegerField(
        _("web-chat abandonment threshold (minutes)"), default=10,
        help_text=_("A web-chat visitor who got no agent reply within this many minutes of their last message counts as abandoned."),
    )
    fcr_reopen_days = models.PositiveIntegerField(
        _("first contact resolution: reopen window (days)"), default=7,
        help_text=_("A resolution reopened within this many days is not a first contact resolution."),
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("journey settings")
        verbose_name_plural = _("journey settings")

    def __str__(self) -> str:
        return str(_("Journey settings"))

    def clean(self):
        from django.core.exceptions import ValidationError

        try:
            days = {int(part) for part in self.business_weekdays.split(",") if part.strip()}
        except ValueError:
            days = {-1}
        if not days or not days <= set(range(7)):
            raise ValidationError({"business_weekdays": _("Use weekday numbers 0–6 separated by commas.")})
        if self.business_day_end <= self.business_day_start:
            raise ValidationError({"business_day_end": _("Business hours must end after they start.")})

    @property
    def weekday_set(self) -> frozenset[int]:
        return frozenset(int(part) for part in self.business_weekdays.split(",") if part.strip().isdigit())


class ConversationResolution(models.Model):
    """One resolution of a conversation (one resolution cycle ends here), copied from the
    channels app's records so KPIs do not change when a conversation is later edited or reopened.
    """

    conversation = models.ForeignKey(
        "channels_app.Conversation", on_delete=models.CASCADE, related_name="+", verbose_name=_("conversation")
    )
    resolved_at = models.DateTimeField(_("resolved"))
    cycle_started_at = models.DateTimeField(_("cycle started"))
    inbox = models.ForeignKey("channels_app.Inbox", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    team = models.ForeignKey("accounts.Team", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    is_reopen = models.BooleanField(_("after a reopen"), default=False)
    # Facts derived from the conversation's messages and later resolutions, kept current by
    # journeys.facts.kpi_facts_refresh (for first contact resolution, docs/metrics.md).
    agent_replies = models.PositiveIntegerField(_("agent replies in the cycle"), default=0)
    reply_author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name=_("first reply by"),
    )
    next_cycle_start = models.DateTimeField(_("next cycle started"), null=True, blank=True)
    next_customer_message = models.DateTimeField(_("next customer message"), null=True, blank=True)
    # Reopened: the conversation's current resolution is no longer this one (it was reopened,
    # by a message or by hand, or resolved again). Kept by database triggers on both tables
    # (migration 0010), so every writer (save, update(), bulk and raw SQL, merges) keeps it
    # exact and the KPI report reads it without joining every conversation.
    reopened = models.BooleanField(_("reopened since"), default=False, editable=False)

    class Meta:
        verbose_name = _("conversation resolution")
        verbose_name_plural = _("conversation resolutions")
        ordering = ["-resolved_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "resolved_at"], name="journeys_resolution_unique")
        ]
        indexes = [models.Index(fields=["resolved_at"], name="journeys_resolution_time_idx")]

    def __str__(self) -> str:
        return f"#{self.conversation_id} @ {self.resolved_at:%Y-%m-%d %H:%M}"


class CsatSurvey(models.Model):
    """The satisfaction survey of one conversation (at most one per conversation)."""

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", _("Scheduled")
        SENT = "sent", _("Sent")
        ANSWERED = "answered", _("Answered")
        SKIPPED = "skipped", _("Not sent")
        EXPIRED = "expired", _("Expired")

    conversation = models.OneToOneField(
        "channels_app.Conversation", on_delete=models.CASCADE, related_name="csat_survey", verbose_name=_("conversation")
    )
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="csat_surveys", verbose_name=_("customer"))
    inbox = models.ForeignKey("channels_app.Inbox", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("channel"))
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("agent"))
    team = models.ForeignKey("accounts.Team", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("team"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.SCHEDULED)
    skip_reason = models.CharField(_("why not sent"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    send_after = models.DateTimeField(_("send after"))
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    message_id = models.BigIntegerField(_("survey message id"), null=True, blank=True)

    class Meta:
        verbose_name = _("CSAT survey")
        verbose_name_plural = _("CSAT surveys")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "send_after"], name="csat_survey_status_idx"),
            models.Index(fields=["sent_at"], name="csat_survey_sent_idx"),
        ]

    def __str__(self) -> str:
        return f"CSAT #{self.pk} for conversation #{self.conversation_id}"


class CsatResponse(models.Model):
    """A customer's answer to a survey: rating 1–5 and an optional comment (one per survey)."""

    class Via(models.TextChoices):
        LINK = "link", _("Survey link")
        REPLY = "reply", _("Message reply")

    survey = models.OneToOneField(CsatSurvey, on_delete=models.CASCADE, related_name="response", verbose_name=_("survey"))
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="csat_responses", verbose_name=_("customer"))
    rating = models.PositiveSmallIntegerField(_("rating"))
    nps = models.PositiveSmallIntegerField(
        _("likelihood to recommend (0–10)"), null=True, blank=True, help_text=_("Optional NPS question on the survey page.")
    )
    comment = models.TextField(_("comment"), max_length=2000, blank=True)
    via = models.CharField(_("answered via"), max_length=10, choices=Via.choices)
    responded_at = models.DateTimeField(_("answered"), default=timezone.now)

    class Meta:
        verbose_name = _("CSAT response")
        verbose_name_plural = _("CSAT responses")
        ordering = ["-responded_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(rating__gte=1, rating__lte=5), name="csat_rating_1_5"),
            models.CheckConstraint(condition=models.Q(nps__isnull=True) | models.Q(nps__lte=10), name="csat_nps_0_10"),
        ]
        indexes = [models.Index(fields=["responded_at"], name="csat_response_time_idx")]

    def __str__(self) -> str:
        return f"{self.rating}/5 (survey #{self.survey_id})"


class MaturityAssessment(models.Model):
    """One omnichannel maturity assessment; several assessors score it (MaturityScore).

    `evidence` is the snapshot of what the platform measured when the assessment was opened,
    so later history compares like with like.
    """

    title = models.CharField(_("title"), max_length=200)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("opened by"))
    created_at = models.DateTimeField(_("opened"), default=timezone.now)
    notes = models.TextField(_("notes"), blank=True, max_length=5000)
    evidence = models.JSONField(_("measured evidence"), default=dict, blank=True)

    class Meta:
        verbose_name = _("maturity assessment")
        verbose_name_plural = _("maturity assessments")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.title


class MaturityScore(models.Model):
    """One assessor's level (1–5) for one dimension, with an optional target level and
    planned actions (the roadmap)."""

    class Horizon(models.TextChoices):
        SHORT = "short", _("Short term")
        MID = "mid", _("Mid term")
        LONG = "long", _("Long term")

    assessment = models.ForeignKey(MaturityAssessment, on_delete=models.CASCADE, related_name="scores", verbose_name=_("assessment"))
    assessor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", verbose_name=_("assessor"))
    dimension = models.CharField(_("dimension"), max_length=20)
    level = models.PositiveSmallIntegerField(_("level"))
    target_level = models.PositiveSmallIntegerField(_("target level"), null=True, blank=True)
    horizon = models.CharField(_("horizon"), max_length=5, choices=Horizon.choices, blank=True)
    actions = models.CharField(_("actions"), max_length=1000, blank=True)
    scored_at = models.DateTimeField(_("scored"), default=timezone.now)

    class Meta:
        verbose_name = _("maturity score")
        verbose_name_plural = _("maturity scores")
        ordering = ["assessment", "dimension", "assessor"]
        constraints = [
            models.UniqueConstraint(fields=["assessment", "assessor", "dimension"], name="maturity_score_unique"),
            models.CheckConstraint(condition=models.Q(level__gte=1, level__lte=5), name="maturity_level_1_5"),
            models.CheckConstraint(
                condition=models.Q(target_level__isnull=True) | models.Q(target_level__gte=1, target_level__lte=5),
                name="maturity_target_1_5",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.dimension}={self.level}"


class HoursBasis(models.TextChoices):
    CALENDAR = "calendar", _("Calendar hours")
    BUSINESS = "business", _("Business hours")


class SlaPolicy(models.Model):
    """Service level targets admins set for an inbox, a team, or everything else (neither).

    The most specific policy applies: the inbox's, else the team's, else the default one.
    Targets are measured in calendar or business hours (JourneySettings business hours).
    """

    name = models.CharField(_("name"), max_length=100)
    inbox = models.OneToOneField(
        "channels_app.Inbox", on_delete=models.CASCADE, null=True, blank=True, related_name="+", verbose_name=_("inbox")
    )
    team = models.OneToOneField(
        "accounts.Team", on_delete=models.CASCADE, null=True, blank=True, related_name="+", verbose_name=_("team")
    )
    first_response_minutes = models.PositiveIntegerField(_("first response target (minutes)"), null=True, blank=True)
    resolution_minutes = models.PositiveIntegerField(_("resolution target per cycle (minutes)"), null=True, blank=True)
    hours = models.CharField(_("count time in"), max_length=10, choices=HoursBasis.choices, default=HoursBasis.CALENDAR)
    is_active = models.BooleanField(_("active"), default=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("SLA policy")
        verbose_name_plural = _("SLA policies")
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(inbox__isnull=True) | models.Q(team__isnull=True), name="sla_inbox_or_team"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self):
        from django.core.exceptions import ValidationError

        if self.inbox_id and self.team_id:
            raise ValidationError(_("A policy applies to an inbox or to a team, not both."))
        if self.first_response_minutes is None and self.resolution_minutes is None:
            raise ValidationError(_("Set a first response target, a resolution target or both."))
        if self.is_active and not self.inbox_id and not self.team_id:
            others = SlaPolicy.objects.filter(inbox__isnull=True, team__isnull=True, is_active=True).exclude(pk=self.pk)
            if others.exists():
                raise ValidationError(_("There is already an active default policy (no inbox, no team)."))


class EventMessageRule(models.Model):
    """When an event of `event_type` arrives, send the customer the canned response, on the
    configured inbox or else the channel they last wrote from. `whatsapp_template` is the
    approved template used when the WhatsApp 24-hour window is closed."""

    name = models.CharField(_("name"), max_length=100)
    event_type = models.CharField(_("event type"), max_length=100, db_index=True, help_text=_("e.g. order.shipped"))
    canned_response = models.ForeignKey(
        "channels_app.CannedResponse", on_delete=models.PROTECT, related_name="+", verbose_name=_("canned response")
    )
    inbox = models.ForeignKey(
        "channels_app.Inbox", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("inbox"),
        help_text=_("Empty: the channel the customer last wrote from."),
    )
    whatsapp_template = models.JSONField(
        _("WhatsApp template"), default=dict, blank=True,
        help_text=_('Used outside the 24-hour window: {"name": "order_shipped", "language": "id", "components": []}. '
                    'Empty: the message is not sent outside the window.'),
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("event message rule")
        verbose_name_plural = _("event message rules")
        ordering = ["event_type", "id"]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.name}"


class EventMessageDispatch(models.Model):
    """What one rule did for one event (at most one row per rule and event: idempotent)."""

    class Status(models.TextChoices):
        SENT = "sent", _("Sent")
        SKIPPED = "skipped", _("Not sent")

    rule = models.ForeignKey(EventMessageRule, on_delete=models.CASCADE, related_name="dispatches", verbose_name=_("rule"))
    event = models.ForeignKey(CustomerEvent, on_delete=models.CASCADE, related_name="dispatches", verbose_name=_("event"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices)
    reason = models.CharField(_("why not sent"), max_length=300, blank=True)
    inbox = models.ForeignKey("channels_app.Inbox", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    conversation = models.ForeignKey("channels_app.Conversation", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    message_id = models.BigIntegerField(_("message id"), null=True, blank=True)
    used_template = models.BooleanField(_("sent as WhatsApp template"), default=False)
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("event message dispatch")
        verbose_name_plural = _("event message dispatches")
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["rule", "event"], name="journeys_dispatch_once")]

    def __str__(self) -> str:
        return f"{self.rule_id}/{self.event_id}: {self.status}"


class NpsCampaign(models.Model):
    """An NPS survey (0–10) sent to the customers of a segment; progress counters are updated
    by the send task."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        SENDING = "sending", _("Sending")
        DONE = "done", _("Done")

    name = models.CharField(_("name"), max_length=200)
    segment = models.ForeignKey("customers.Segment", on_delete=models.PROTECT, related_name="+", verbose_name=_("segment"))
    question = models.CharField(
        _("question"), max_length=300, default="How likely are you to recommend us to a friend? (0–10)"
    )
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.QUEUED)
    total = models.PositiveIntegerField(_("customers"), default=0)
    processed = models.PositiveIntegerField(_("processed"), default=0)
    sent = models.PositiveIntegerField(_("sent"), default=0)
    skipped = models.PositiveIntegerField(_("not sent"), default=0)
    expiry_hours = models.PositiveIntegerField(_("expires after (hours)"), default=168)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("NPS campaign")
        verbose_name_plural = _("NPS campaigns")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name

    @property
    def progress_percent(self) -> int:
        return 100 if not self.total else round(100 * self.processed / self.total)


class NpsSurvey(models.Model):
    """One customer's NPS survey in a campaign: sent (or skipped, with why) and its answer."""

    class Status(models.TextChoices):
        SENT = "sent", _("Sent")
        ANSWERED = "answered", _("Answered")
        SKIPPED = "skipped", _("Not sent")

    campaign = models.ForeignKey(NpsCampaign, on_delete=models.CASCADE, related_name="surveys", verbose_name=_("campaign"))
    customer = models.ForeignKey("customers.Customer", on_delete=models.CASCADE, related_name="nps_surveys", verbose_name=_("customer"))
    inbox = models.ForeignKey("channels_app.Inbox", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("channel"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices)
    skip_reason = models.CharField(_("why not sent"), max_length=300, blank=True)
    message_id = models.BigIntegerField(_("message id"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    score = models.PositiveSmallIntegerField(_("score (0–10)"), null=True, blank=True)
    comment = models.TextField(_("comment"), max_length=2000, blank=True)
    answered_at = models.DateTimeField(_("answered"), null=True, blank=True)

    class Meta:
        verbose_name = _("NPS survey")
        verbose_name_plural = _("NPS surveys")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "customer"], name="nps_survey_once"),
            models.CheckConstraint(condition=models.Q(score__isnull=True) | models.Q(score__lte=10), name="nps_score_0_10"),
        ]
        indexes = [models.Index(fields=["answered_at"], name="nps_survey_answered_idx")]

    def __str__(self) -> str:
        return f"NPS #{self.pk} ({self.status})"


# --- KPI facts (journeys.facts) ------------------------------------------------------------


class ConversationFact(models.Model):
    """First-response facts of one conversation with at least one customer message, derived
    from its messages by `journeys.facts.kpi_facts_refresh` (never written elsewhere), so the
    KPI report aggregates one small row per conversation instead of probing the messages."""

    conversation = models.OneToOneField(
        "channels_app.Conversation", on_delete=models.CASCADE, primary_key=True, related_name="+",
        verbose_name=_("conversation"),
    )
    first_in = models.DateTimeField(_("first customer message"))
    first_in_inbox = models.ForeignKey("channels_app.Inbox", on_delete=models.CASCADE, related_name="+")
    first_in_channel = models.CharField(_("channel of the first customer message"), max_length=20)
    first_reply = models.DateTimeField(_("first agent reply"), null=True, blank=True)
    first_reply_agent = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Web-chat abandonment: the visitor's last message before the first reply (else the first
    # customer message), their last message at all, and whether they wrote after the reply.
    reply_wait_from = models.DateTimeField(_("waiting since"), null=True, blank=True)
    last_in = models.DateTimeField(_("last customer message"))
    wrote_after_reply = models.BooleanField(_("customer wrote after the reply"), default=False)

    class Meta:
        verbose_name = _("conversation KPI fact")
        verbose_name_plural = _("conversation KPI facts")
        indexes = [models.Index(fields=["first_in"], name="journeys_fact_first_in_idx")]

    def __str__(self) -> str:
        return f"#{self.conversation_id} facts"


class ConversationChannelFact(models.Model):
    """The non-private messages of one conversation on one channel (inbox kind): the first and
    the last, and how many in each direction, for the per-channel volume."""

    conversation = models.ForeignKey("channels_app.Conversation", on_delete=models.CASCADE, related_name="+")
    channel = models.CharField(_("channel"), max_length=20)
    first_at = models.DateTimeField(_("first message"))
    last_at = models.DateTimeField(_("last message"))
    inbound = models.PositiveIntegerField(default=0)
    outbound = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("conversation channel KPI fact")
        verbose_name_plural = _("conversation channel KPI facts")
        constraints = [models.UniqueConstraint(fields=["conversation", "channel"], name="journeys_channelfact_unique")]
        indexes = [
            models.Index(fields=["last_at", "first_at"], name="journeys_channelfact_time_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.conversation_id} {self.channel}"


class ChannelSwitch(models.Model):
    """A customer message on another inbox than the customer's previous message in the same
    conversation (docs/metrics.md → channel switches)."""

    message_id = models.BigIntegerField(_("message"), primary_key=True)
    conversation = models.ForeignKey("channels_app.Conversation", on_delete=models.CASCADE, related_name="+")
    at = models.DateTimeField(_("at"))
    previous_at = models.DateTimeField(_("previous customer message"))

    class Meta:
        verbose_name = _("channel switch")
        verbose_name_plural = _("channel switches")
        indexes = [models.Index(fields=["at"], name="journeys_switch_at_idx")]

    def __str__(self) -> str:
        return f"#{self.conversation_id} message {self.message_id}"


class KpiFactsState(models.Model):
    """The single watermark row of the KPI facts: the highest message and resolution ids whose
    conversations are reflected in the facts. Locked while a refresh runs."""

    message_id = models.BigIntegerField(default=0)
    resolution_id = models.BigIntegerField(default=0)
    refreshed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("KPI facts state")
        verbose_name_plural = _("KPI facts state")

    def __str__(self) -> str:
        return f"messages ≤ {self.message_id}, resolutions ≤ {self.resolution_id}"


class KpiFactsPending(models.Model):
    """Work the id watermark cannot see: a conversation whose messages were deleted, or an id
    below the watermark that was not visible yet when the watermark passed it (a transaction
    still in flight, or rolled back: then it never appears and is dropped after a while)."""

    class Kind(models.TextChoices):
        CONVERSATION = "conversation"
        MESSAGE_GAP = "message_gap"
        RESOLUTION_GAP = "resolution_gap"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    ref_id = models.BigIntegerField()
    noted_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("pending KPI fact refresh")
        verbose_name_plural = _("pending KPI fact refreshes")
        constraints = [models.UniqueConstraint(fields=["kind", "ref_id"], name="journeys_facts_pending_unique")]

    def __str__(self) -> str:
        return f"{self.kind} {self.ref_id}"
