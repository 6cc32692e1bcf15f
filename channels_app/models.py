"""Touchpoints and the conversations that flow through them.

Fields, constraints and indexes only: writes go through `channels_app.services`, reads through
`channels_app.selectors`.
"""
from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from channels_app.models_live import LiveEvent, LiveEventRecipient  # noqa: F401  (the live-event log)


class InboxKind(models.TextChoices):
    WHATSAPP = "whatsapp", _("WhatsApp")
    MESSENGER = "messenger", _("Facebook Messenger")
    INSTAGRAM = "instagram", _("Instagram")
    TELEGRAM = "telegram", _("Telegram")
    LINE = "line", _("LINE")
    TWILIO_SMS = "twilio_sms", _("SMS (Twilio)")
    EMAIL = "email", _("Email")
    WEBCHAT = "webchat", _("Web chat")
    API = "api", _("API")
    VOICE = "voice", _("Call center")
    IN_PERSON = "in_person", _("In person")


# Meta kinds answer the GET hub.challenge subscription handshake.
META_KINDS = frozenset({InboxKind.WHATSAPP, InboxKind.MESSENGER, InboxKind.INSTAGRAM})


class Inbox(models.Model):
    """One configured touchpoint: a WhatsApp number, a Facebook page, a bot, a mailbox, a store.

    `config` holds the provider's non-secret settings; secrets (tokens, app secrets) live only
    in `secrets_encrypted` (Fernet, see `services.inboxes`) and are never shown back in full.
    Both are validated together through the adapter's typed config dataclass.
    """

    uuid = models.UUIDField(_("public id"), default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("channel"), max_length=20, choices=InboxKind.choices)
    config = models.JSONField(_("settings"), default=dict, blank=True)
    secrets_encrypted = models.TextField(_("secrets (encrypted)"), blank=True, editable=False)
    default_team = models.ForeignKey(
        "accounts.Team",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="inboxes",
        verbose_name=_("default team"),
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    # IMAP polling (email inboxes with an IMAP server): what an admin needs to see that it works.
    imap_polled_at = models.DateTimeField(_("last IMAP poll"), null=True, blank=True, editable=False)
    imap_poll_error = models.TextField(_("last IMAP poll error"), blank=True, editable=False,
                                       help_text=_("Empty when the last poll succeeded."))
    imap_poll_locked_until = models.DateTimeField(
        _("IMAP poll lease"), null=True, blank=True, editable=False,
        help_text=_("A worker is polling this mailbox until then; no other worker starts a poll."),
    )

    class Meta:
        verbose_name = _("inbox")
        verbose_name_plural = _("inboxes")
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    @property
    def webhook_path(self) -> str:
        return f"/webhooks/{self.kind}/{self.uuid}/"

    @property
    def webhook_url(self) -> str:
        """Where the provider must deliver webhooks: PUBLIC_BASE_URL + /webhooks/<kind>/<uuid>/."""
        return (getattr(settings, "PUBLIC_BASE_URL", "") or "").rstrip("/") + self.webhook_path


class WebhookEvent(models.Model):
    """One provider delivery, stored verbatim before it is acknowledged so nothing is lost.

    Processing happens in the background (`tasks.webhook_event_process_task`); after the
    configured number of failed attempts the event is parked for an admin to inspect and replay.
    """

    class Status(models.TextChoices):
        RECEIVED = "received", _("Received")
        PROCESSED = "processed", _("Processed")
        FAILED = "failed", _("Failed (will retry)")
        PARKED = "parked", _("Parked (needs attention)")

    inbox = models.ForeignKey(Inbox, on_delete=models.CASCADE, related_name="webhook_events", verbose_name=_("inbox"))
    received_at = models.DateTimeField(_("received"), default=timezone.now)
    body = models.BinaryField(_("raw body"))
    headers = models.JSONField(_("selected headers"), default=dict, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.RECEIVED)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    last_attempt_at = models.DateTimeField(_("last attempt"), null=True, blank=True)
    processed_at = models.DateTimeField(_("processed"), null=True, blank=True)

    class Meta:
        verbose_name = _("webhook event")
        verbose_name_plural = _("webhook events")
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(fields=["status", "received_at"], name="webhook_event_status_idx"),
            # The drain's "oldest delivery still waiting": a few rows among millions processed.
            models.Index(fields=["id"], condition=models.Q(status="received"), name="webhook_event_waiting_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.inbox_id} {self.status}"


class ConversationStatus(models.TextChoices):
    OPEN = "open", _("Open")
    PENDING = "pending", _("Pending")
    SNOOZED = "snoozed", _("Snoozed")
    RESOLVED = "resolved", _("Resolved")


class ConversationPriority(models.TextChoices):
    NONE = "none", _("None")
    LOW = "low", _("Low")
    MEDIUM = "medium", _("Medium")
    HIGH = "high", _("High")
    URGENT = "urgent", _("Urgent")


class Conversation(models.Model):
    """The single thread between the business and one customer, across every channel.

    A customer has at most one conversation that is not resolved (enforced by a partial unique
    constraint); a new message on ANY inbox continues it. `last_inbox` is where the customer last
    wrote from and where replies go by default; `inboxes` records every channel it spans.
    """

    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.CASCADE, related_name="conversations", verbose_name=_("customer")
    )
    status = models.CharField(_("status"), max_length=10, choices=ConversationStatus.choices, default=ConversationStatus.OPEN)
    snoozed_until = models.DateTimeField(_("snoozed until"), null=True, blank=True)
    priority = models.CharField(
        _("priority"), max_length=10, choices=ConversationPriority.choices, default=ConversationPriority.NONE
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_conversations",
        verbose_name=_("assignee"),
    )
    team = models.ForeignKey(
        "accounts.Team",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="conversations",
        verbose_name=_("team"),
    )
    last_inbox = models.ForeignKey(
        Inbox, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("last channel")
    )
    inboxes = models.ManyToManyField(Inbox, blank=True, related_name="conversations", verbose_name=_("channels"))
    assigned_at = models.DateTimeField(_("assigned"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    last_message_at = models.DateTimeField(_("last message"), null=True, blank=True)
    last_inbound_at = models.DateTimeField(_("last customer message"), null=True, blank=True)
    resolved_at = models.DateTimeField(_("resolved"), null=True, blank=True)

    class Meta:
        verbose_name = _("conversation")
        verbose_name_plural = _("conversations")
        ordering = ["-last_message_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer"],
                condition=~models.Q(status="resolved"),
                name="conversation_one_unresolved_per_customer",
            )
        ]
        indexes = [
            models.Index(fields=["status", "-id"], name="conversation_status_idx"),
            models.Index(fields=["assignee", "status"], name="conversation_assignee_idx"),
            # Round-robin: each candidate's last assignment is one probe.
            models.Index(fields=["assignee", "-assigned_at"], name="conversation_last_assigned_idx"),
            models.Index(fields=["team", "status"], name="conversation_team_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} ({self.status})"

    def inbox_list(self) -> list[Inbox]:
        """Its inboxes by id: the list `selectors.conversation_list` prefetched (`inbox_rows`:
        a plain list, no related manager and queryset per row), else from the related manager."""
        rows = self.__dict__.get("inbox_rows")
        return rows if rows is not None else sorted(self.inboxes.all(), key=lambda inbox: inbox.pk)

    def label_list(self) -> list[Label]:
        """Its labels by name, the same way (`label_rows`)."""
        rows = self.__dict__.get("label_rows")
        return rows if rows is not None else sorted(self.labels.all(), key=lambda label: label.name)


class MessageDirection(models.TextChoices):
    INBOUND = "inbound", _("Inbound")
    OUTBOUND = "outbound", _("Outbound")


class MessageSender(models.TextChoices):
    CUSTOMER = "customer", _("Customer")
    AGENT = "agent", _("Agent")
    SYSTEM = "system", _("System")


class MessageStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    SENT = "sent", _("Sent")
    DELIVERED = "delivered", _("Delivered")
    READ = "read", _("Read")
    FAILED = "failed", _("Failed")
    RECEIVED = "received", _("Received")


class Message(models.Model):
    """One message in a conversation, on one inbox (channel), in one direction.

    `(inbox, provider_message_id)` is unique when the provider gave an id, so a redelivered
    webhook can never store the same message twice. Private notes never leave the platform.
    """

    uuid = models.UUIDField(_("public id"), default=uuid.uuid4, unique=True, editable=False)
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages", verbose_name=_("conversation")
    )
    inbox = models.ForeignKey(Inbox, on_delete=models.PROTECT, related_name="messages", verbose_name=_("channel"))
    direction = models.CharField(_("direction"), max_length=10, choices=MessageDirection.choices)
    sender = models.CharField(_("sender"), max_length=10, choices=MessageSender.choices)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="authored_messages",
        verbose_name=_("author"),
    )
    content = models.TextField(_("content"), blank=True)
    private = models.BooleanField(_("private note"), default=False)
    provider_message_id = models.CharField(_("provider message id"), max_length=255, blank=True)
    reply_to_provider_id = models.CharField(_("in reply to"), max_length=255, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=MessageStatus.choices, default=MessageStatus.QUEUED)
    error_code = models.CharField(_("error code"), max_length=50, blank=True)
    error_title = models.CharField(_("error"), max_length=500, blank=True)
    attachments = models.JSONField(_("attachments"), default=list, blank=True)
    data = models.JSONField(_("provider details"), default=dict, blank=True)
    webhook_event = models.ForeignKey(
        WebhookEvent,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="messages",
        verbose_name=_("raw delivery"),
        help_text=_("The stored webhook delivery this inbound message came from."),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    status_changed_at = models.DateTimeField(_("status changed"), null=True, blank=True)

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["inbox", "provider_message_id"],
                condition=~models.Q(provider_message_id=""),
                name="message_inbox_provider_id_unique",
            )
        ]
        indexes = [
            models.Index(fields=["conversation", "created_at", "id"], name="message_conversation_time_idx"),
            # Unread checks (inbox tabs, list badges): the customer messages of a conversation
            # after an agent's read marker, answered from the index alone.
            models.Index(fields=["conversation", "id"], condition=models.Q(direction="inbound"),
                         name="message_inbound_idx"),
            # The delivery drain and the stuck-reply sweeper: the few queued replies among millions.
            models.Index(fields=["id"], condition=models.Q(status="queued"), name="message_queued_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.direction} #{self.pk} in conversation #{self.conversation_id}"


# --- canned responses, labels, office hours -------------------------------------------------


class CannedResponse(models.Model):
    """A reply agents insert by its shortcut (`/thanks`), shared by every channel.

    `body` may use the variables `{{customer.first_name}}`, `{{customer.name}}` and
    `{{agent.first_name}}`; `services.canned_response_render` substitutes them (plain text
    substitution of that fixed set, never a template engine on user-authored text).
    """

    shortcut = models.CharField(
        _("shortcut"), max_length=50, unique=True,
        help_text=_("Lower-case letters, digits, - and _; typed after a slash in the reply box."),
    )
    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("body"))
    language = models.CharField(_("language"), max_length=8, blank=True,
                                help_text=_("Empty: any language."))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("canned response")
        verbose_name_plural = _("canned responses")
        ordering = ["shortcut", "id"]

    def __str__(self) -> str:
        return f"/{self.shortcut}"


class Label(models.Model):
    """A tag agents put on conversations ("vip", "refund") to filter and report on them."""

    name = models.CharField(_("name"), max_length=50, unique=True,
                            help_text=_("Lower-case letters, digits, - and _."))
    colour = models.CharField(_("colour"), max_length=7, default="#6b7280", help_text=_("#RRGGBB"))
    description = models.CharField(_("description"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("label")
        verbose_name_plural = _("labels")
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


Conversation.add_to_class(
    "labels", models.ManyToManyField(Label, blank=True, related_name="conversations", verbose_name=_("labels"))
)


class OfficeHours(models.Model):
    """When an inbox is staffed: a weekly schedule (`OfficeHoursInterval` rows) in a time zone,
    closed on the public holidays of `holiday_country` (the `holidays` package).

    Outside those hours the customer gets the inbox's automatic reply (once per closed period);
    the first message of a new conversation gets the greeting. Both texts are
    `InboxAutomaticMessage` rows, one per language.
    """

    inbox = models.OneToOneField(Inbox, on_delete=models.CASCADE, related_name="office_hours",
                                 verbose_name=_("inbox"))
    time_zone = models.CharField(_("time zone"), max_length=64, default="Asia/Jakarta",
                                 help_text=_("IANA name, e.g. Asia/Jakarta, Asia/Makassar."))
    holiday_country = models.CharField(
        _("public holidays of"), max_length=2, blank=True, default="ID",
        help_text=_("ISO country code whose public holidays are closed days (e.g. ID); empty: none."),
    )
    is_enabled = models.BooleanField(_("office hours apply"), default=True,
                                     help_text=_("Off: the inbox counts as always open."))
    auto_reply_enabled = models.BooleanField(_("automatic reply outside hours"), default=True)
    greeting_enabled = models.BooleanField(_("greeting on first contact"), default=False)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("office hours")
        verbose_name_plural = _("office hours")

    def __str__(self) -> str:
        return f"{self.inbox} ({self.time_zone})"

    def clean(self) -> None:
        import zoneinfo

        import holidays
        from django.core.exceptions import ValidationError

        errors = {}
        try:
            zoneinfo.ZoneInfo(self.time_zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            errors["time_zone"] = _("Unknown time zone: use an IANA name such as Asia/Jakarta.")
        self.holiday_country = (self.holiday_country or "").upper()
        if self.holiday_country:
            try:
                holidays.country_holidays(self.holiday_country)
            except NotImplementedError:
                errors["holiday_country"] = _("No public holiday calendar for this country code.")
        if errors:
            raise ValidationError(errors)


class Weekday(models.IntegerChoices):
    MONDAY = 0, _("Monday")
    TUESDAY = 1, _("Tuesday")
    WEDNESDAY = 2, _("Wednesday")
    THURSDAY = 3, _("Thursday")
    FRIDAY = 4, _("Friday")
    SATURDAY = 5, _("Saturday")
    SUNDAY = 6, _("Sunday")


class OfficeHoursInterval(models.Model):
    """One opening on one weekday, local time; several per day make a lunch break."""

    office_hours = models.ForeignKey(OfficeHours, on_delete=models.CASCADE, related_name="intervals",
                                     verbose_name=_("office hours"))
    weekday = models.PositiveSmallIntegerField(_("day"), choices=Weekday.choices)
    opens_at = models.TimeField(_("opens"))
    closes_at = models.TimeField(_("closes"))

    class Meta:
        verbose_name = _("opening")
        verbose_name_plural = _("weekly schedule")
        ordering = ["weekday", "opens_at", "id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(closes_at__gt=models.F("opens_at")),
                                   name="office_hours_interval_closes_after_opening"),
        ]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.opens_at:%H:%M}–{self.closes_at:%H:%M}"


class AutomaticMessageKind(models.TextChoices):
    OUT_OF_HOURS = "out_of_hours", _("Automatic reply outside office hours")
    GREETING = "greeting", _("Greeting on first contact")


class InboxAutomaticMessage(models.Model):
    """The text of an inbox's greeting or out-of-hours reply in one language (empty: fallback)."""

    office_hours = models.ForeignKey(OfficeHours, on_delete=models.CASCADE, related_name="messages",
                                     verbose_name=_("office hours"))
    kind = models.CharField(_("kind"), max_length=20, choices=AutomaticMessageKind.choices)
    language = models.CharField(_("language"), max_length=8, blank=True, help_text=_("Empty: any other language."))
    body = models.TextField(_("text"))

    class Meta:
        verbose_name = _("automatic message")
        verbose_name_plural = _("automatic messages")
        ordering = ["kind", "language", "id"]
        constraints = [
            models.UniqueConstraint(fields=["office_hours", "kind", "language"],
                                    name="inbox_automatic_message_one_per_language"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} [{self.language or '*'}]"


class AutomaticReplySent(models.Model):
    """Proof an automatic message went to a conversation: the unique key (conversation, kind,
    period) is what limits the out-of-hours reply to once per closed period and the greeting to
    once per conversation, even when two deliveries race."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="+",
                                     verbose_name=_("conversation"))
    kind = models.CharField(_("kind"), max_length=20, choices=AutomaticMessageKind.choices)
    period = models.CharField(_("period"), max_length=40,
                              help_text=_("Start of the closed period (out of hours) or 'conversation'."))
    message = models.ForeignKey(Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
                                verbose_name=_("message"))
    created_at = models.DateTimeField(_("sent"), default=timezone.now)

    class Meta:
        verbose_name = _("automatic reply sent")
        verbose_name_plural = _("automatic replies sent")
        constraints = [
            models.UniqueConstraint(fields=["conversation", "kind", "period"], name="automatic_reply_once_per_period"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.conversation_id} {self.period}"


class ConversationRead(models.Model):
    """How far one agent has read one conversation: customer messages after
    `last_read_message_id` are unread for them (the inbox badge and the views' tab counts)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+",
                             verbose_name=_("agent"))
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="reads",
                                     verbose_name=_("conversation"))
    last_read_message_id = models.BigIntegerField(_("last read message"), default=0)
    read_at = models.DateTimeField(_("read"), default=timezone.now)

    class Meta:
        verbose_name = _("conversation read marker")
        verbose_name_plural = _("conversation read markers")
        constraints = [
            models.UniqueConstraint(fields=["user", "conversation"], name="conversation_read_one_per_agent"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} read #{self.conversation_id} up to {self.last_read_message_id}"
