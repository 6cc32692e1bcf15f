"""The single customer profile and everything hanging off it.

Writes go through `customers.services`; reads through `customers.selectors`. Models hold
fields, constraints and indexes only.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import validate_time_zone


class LifecycleStage(models.TextChoices):
    REACH = "reach", _("Reach")
    ACQUISITION = "acquisition", _("Acquisition")
    CONVERSION = "conversion", _("Conversion")
    RETENTION = "retention", _("Retention")
    LOYALTY = "loyalty", _("Loyalty")


class IdentityKind(models.TextChoices):
    PHONE = "phone", _("Phone")
    EMAIL = "email", _("Email")
    WHATSAPP = "whatsapp", _("WhatsApp user id")
    MESSENGER = "messenger", _("Messenger PSID")
    INSTAGRAM = "instagram", _("Instagram IGSID")
    TELEGRAM = "telegram", _("Telegram user id")
    LINE = "line", _("LINE user id")
    WEB_VISITOR = "web_visitor", _("Web visitor")
    EXTERNAL_ID = "external_id", _("External id")


# Platform-scoped ids mean nothing outside the inbox (page, bot, widget) that issued them.
SCOPED_KINDS = frozenset(
    {
        IdentityKind.WHATSAPP,
        IdentityKind.MESSENGER,
        IdentityKind.INSTAGRAM,
        IdentityKind.TELEGRAM,
        IdentityKind.LINE,
        IdentityKind.WEB_VISITOR,
    }
)


class IdentityOrigin(models.TextChoices):
    CHANNEL = "channel", _("Proved by a channel")
    BUSINESS = "business", _("Entered by staff, import or API")
    END_USER = "end_user", _("Typed by the customer")


class Tag(models.Model):
    """A label agents put on customers (e.g. "vip", "reseller"); names are case-insensitive."""

    name = models.CharField(_("name"), max_length=50)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("tag")
        verbose_name_plural = _("tags")
        ordering = ["name"]
        constraints = [models.UniqueConstraint(Lower("name"), name="customers_tag_name_ci_unique")]

    def __str__(self) -> str:
        return self.name


class AttributeDefinition(models.Model):
    """A custom attribute admins define; customer attribute values are validated against it."""

    class Type(models.TextChoices):
        TEXT = "text", _("Text")
        NUMBER = "number", _("Number")
        DATE = "date", _("Date")
        BOOLEAN = "boolean", _("Yes / no")
        CHOICE = "choice", _("Choice")
        URL = "url", _("URL")

    key = models.SlugField(_("key"), max_length=50, unique=True)
    label = models.CharField(_("label"), max_length=100)
    type = models.CharField(_("type"), max_length=10, choices=Type.choices, default=Type.TEXT)
    choices = models.JSONField(
        _("choices"), default=list, blank=True, help_text=_("Allowed values for a choice attribute.")
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("attribute definition")
        verbose_name_plural = _("attribute definitions")
        ordering = ["label"]

    def __str__(self) -> str:
        return f"{self.label} ({self.key})"

    def clean(self):
        from django.core.exceptions import ValidationError

        if self.type == self.Type.CHOICE and not self.choices:
            raise ValidationError({"choices": _("A choice attribute needs at least one choice.")})
        if not isinstance(self.choices, list) or not all(isinstance(c, str) for c in self.choices):
            raise ValidationError({"choices": _("Choices must be a list of strings.")})


class Customer(models.Model):
    """One person (or business) the company serves, whatever channels they use.

    A merged-away profile keeps its row with `merged_into` set so the merge can be undone; an
    erased profile keeps an anonymous row so aggregates (counts, CSAT, funnel) stay right.
    """

    display_name = models.CharField(_("name"), max_length=200, blank=True)
    language = models.CharField(_("language"), max_length=8, blank=True)
    time_zone = models.CharField(_("time zone"), max_length=64, blank=True, validators=[validate_time_zone])
    owner_agent = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="owned_customers",
        verbose_name=_("owner (agent)"),
    )
    owner_team = models.ForeignKey(
        "accounts.Team",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="owned_customers",
        verbose_name=_("owner (team)"),
    )
    tags = models.ManyToManyField(Tag, blank=True, related_name="customers", verbose_name=_("tags"))
    attributes = models.JSONField(_("attributes"), default=dict, blank=True)
    lifecycle_stage = models.CharField(
        _("lifecycle stage"), max_length=20, choices=LifecycleStage.choices, default=LifecycleStage.REACH
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    last_seen_at = models.DateTimeField(_("last seen"), null=True, blank=True)
    last_contacted_at = models.DateTimeField(_("last contacted"), null=True, blank=True, db_index=True)
    merged_into = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="merged_from",
        verbose_name=_("merged into"),
    )
    is_erased = models.BooleanField(_("erased"), default=False)
    erased_at = models.DateTimeField(_("erased at"), null=True, blank=True)

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["lifecycle_stage"], name="customer_stage_idx"),
            models.Index(fields=["display_name"], name="customer_name_idx"),
        ]

    def __str__(self) -> str:
        return self.display_name or _("Customer #%(id)s") % {"id": self.pk}

    @property
    def is_active_profile(self) -> bool:
        return self.merged_into_id is None and not self.is_erased


class Identity(models.Model):
    """A way to reach or recognise a customer: a phone number, an email, a platform user id.

    `value` is normalised (E.164 phones, lower-case emails). Platform-scoped ids carry the
    inbox they belong to in `scope`; global kinds have an empty scope. `verified` means a
    channel proved control of it (a WhatsApp message proves the phone); `origin` says who
    asserted it, which decides whether it may link a caller to an existing profile.
    """

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="identities", verbose_name=_("customer")
    )
    kind = models.CharField(_("kind"), max_length=20, choices=IdentityKind.choices)
    value = models.CharField(_("value"), max_length=255)
    scope = models.CharField(_("scope"), max_length=64, blank=True, help_text=_("Inbox id for platform-scoped ids."))
    verified = models.BooleanField(_("verified"), default=False)
    origin = models.CharField(
        _("origin"), max_length=10, choices=IdentityOrigin.choices, default=IdentityOrigin.BUSINESS
    )
    source = models.CharField(_("source"), max_length=100, blank=True)
    source_ref = models.CharField(_("source reference"), max_length=255, blank=True)
    first_seen_at = models.DateTimeField(_("first seen"), default=timezone.now)
    last_seen_at = models.DateTimeField(_("last seen"), default=timezone.now)

    class Meta:
        verbose_name = _("identity")
        verbose_name_plural = _("identities")
        ordering = ["kind", "value"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "scope", "value"], name="identity_kind_scope_value_unique")
        ]
        indexes = [
            models.Index(fields=["customer", "kind"], name="identity_customer_kind_idx"),
            models.Index(fields=["value"], name="identity_value_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.value}"


class CustomerConsent(models.Model):
    """Marketing consent for one channel: when and where the customer opted in or out."""

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="consents", verbose_name=_("customer")
    )
    channel = models.CharField(_("channel"), max_length=30)
    opted_in_at = models.DateTimeField(_("opted in"), null=True, blank=True)
    opted_out_at = models.DateTimeField(_("opted out"), null=True, blank=True)
    source = models.CharField(_("source"), max_length=100, blank=True)

    class Meta:
        verbose_name = _("consent")
        verbose_name_plural = _("consents")
        ordering = ["channel"]
        constraints = [models.UniqueConstraint(fields=["customer", "channel"], name="consent_customer_channel_unique")]

    def __str__(self) -> str:
        return f"{self.customer_id} · {self.channel}"

    @property
    def is_opted_in(self) -> bool:
        if self.opted_in_at is None:
            return False
        return self.opted_out_at is None or self.opted_out_at < self.opted_in_at


class CustomerNote(models.Model):
    """A free-text note an agent keeps on a customer."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="notes", verbose_name=_("customer"))
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("author"),
    )
    body = models.TextField(_("note"), max_length=5000)
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("note")
        verbose_name_plural = _("notes")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.body[:60]


class MergeSuggestion(models.Model):
    """Evidence that two profiles may be one person; a supervisor accepts or dismisses it.

    The pair is stored ordered (`a_id < b_id`) so one pair has at most one open suggestion.
    """

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        ACCEPTED = "accepted", _("Accepted")
        DISMISSED = "dismissed", _("Dismissed")

    a = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+", verbose_name=_("customer A"))
    b = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+", verbose_name=_("customer B"))
    score = models.FloatField(_("score"), default=0.0)
    evidence = models.JSONField(_("evidence"), default=list, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("decided by"),
    )
    decided_at = models.DateTimeField(_("decided"), null=True, blank=True)

    class Meta:
        verbose_name = _("merge suggestion")
        verbose_name_plural = _("merge suggestions")
        ordering = ["-score", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["a", "b"], condition=models.Q(status="open"), name="merge_suggestion_open_pair_unique"
            ),
            models.CheckConstraint(condition=models.Q(a__lt=models.F("b")), name="merge_suggestion_ordered_pair"),
        ]

    def __str__(self) -> str:
        return f"{self.a_id} ~ {self.b_id} ({self.score:.2f})"


class CustomerMerge(models.Model):
    """One merge of `merged` into `survivor`, with a snapshot of everything that moved.

    The snapshot lets `customer_unmerge` put every moved row back and undo every field the
    merge filled in on the survivor, so both profiles are as they were.
    """

    survivor = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="merges_survived", verbose_name=_("survivor")
    )
    merged = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="merges_absorbed", verbose_name=_("merged")
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("merged by"),
    )
    reason = models.CharField(_("reason"), max_length=500, blank=True)
    snapshot = models.JSONField(_("snapshot"), default=dict)
    created_at = models.DateTimeField(_("merged at"), default=timezone.now)
    undone_at = models.DateTimeField(_("undone at"), null=True, blank=True)
    undone_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("undone by"),
    )

    class Meta:
        verbose_name = _("customer merge")
        verbose_name_plural = _("customer merges")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"#{self.merged_id} → #{self.survivor_id}"


class TimelineKind(models.TextChoices):
    MESSAGE = "message", _("Message")
    CONVERSATION_OPENED = "conversation_opened", _("Conversation opened")
    CONVERSATION_ASSIGNED = "conversation_assigned", _("Conversation assigned")
    CONVERSATION_RESOLVED = "conversation_resolved", _("Conversation resolved")
    CHANNEL_SWITCHED = "channel_switched", _("Channel switched")
    STAGE_CHANGED = "stage_changed", _("Lifecycle stage changed")
    CSAT = "csat", _("CSAT answer")
    EVENT = "event", _("Event")
    NOTE = "note", _("Note")
    MERGE = "merge", _("Merged")
    UNMERGE = "unmerge", _("Unmerged")
    IDENTITY = "identity", _("Identity added")


class TimelineEntry(models.Model):
    """One item in a customer's 360° timeline: a read model other apps write to.

    Written only through `customers.services.timeline_record`; `ref_type`/`ref_id` point at
    the source row (e.g. a message) and make repeated writes of the same item idempotent.
    """

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="timeline", verbose_name=_("customer")
    )
    occurred_at = models.DateTimeField(_("when"))
    kind = models.CharField(_("kind"), max_length=40, choices=TimelineKind.choices)
    channel = models.CharField(_("channel"), max_length=30, blank=True)
    title = models.CharField(_("title"), max_length=200, blank=True)
    body = models.CharField(_("excerpt"), max_length=500, blank=True)
    ref_type = models.CharField(_("reference type"), max_length=64, blank=True)
    ref_id = models.CharField(_("reference id"), max_length=64, blank=True)
    data = models.JSONField(_("data"), default=dict, blank=True)

    class Meta:
        verbose_name = _("timeline entry")
        verbose_name_plural = _("timeline entries")
        ordering = ["-occurred_at", "-id"]
        indexes = [models.Index(fields=["customer", "occurred_at", "id"], name="timeline_customer_time_idx")]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "ref_type", "ref_id"],
                condition=~models.Q(ref_type=""),
                name="timeline_ref_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.occurred_at:%Y-%m-%d %H:%M} {self.kind} {self.title}"


class Segment(models.Model):
    """A saved filter over customers (stage, tags, channel presence, attributes, last contact)."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    description = models.CharField(_("description"), max_length=300, blank=True)
    filters = models.JSONField(_("filters"), default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("segment")
        verbose_name_plural = _("segments")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ImportJob(models.Model):
    """A CSV import of customers: mapping, progress counters and per-row errors."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    file = models.FileField(_("file"), upload_to="imports/customers/")
    original_name = models.CharField(_("file name"), max_length=255, blank=True)
    mapping = models.JSONField(_("column mapping"), default=dict, blank=True)
    dry_run = models.BooleanField(_("dry run"), default=False)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PENDING)
    total_rows = models.PositiveIntegerField(_("rows"), default=0)
    processed_rows = models.PositiveIntegerField(_("processed"), default=0)
    created_rows = models.PositiveIntegerField(_("created"), default=0)
    updated_rows = models.PositiveIntegerField(_("updated"), default=0)
    failed_rows = models.PositiveIntegerField(_("failed"), default=0)
    errors = models.JSONField(_("errors"), default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("import job")
        verbose_name_plural = _("import jobs")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.original_name or self.file.name} ({self.get_status_display()})"

    @property
    def percent(self) -> int:
        if not self.total_rows:
            return 100 if self.status == self.Status.DONE else 0
        return min(100, int(self.processed_rows * 100 / self.total_rows))
