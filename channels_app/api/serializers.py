"""Shapes of the channels API. Parsing and representation only: no writes here."""
from __future__ import annotations

import zoneinfo
from typing import Any

import holidays
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from channels_app.models import (
    AutomaticMessageKind,
    CannedResponse,
    Conversation,
    ConversationPriority,
    ConversationStatus,
    Inbox,
    InboxKind,
    Label,
    Message,
    MessageStatus,
)
from cxplatform.api.serializers import ModelSerializer


def _inline_enum(choices) -> type[serializers.ChoiceField]:
    """A ChoiceField documented by pattern instead of an enum component: "status" and "kind" are
    also names of other choice sets (customers' identity kinds, message statuses), and
    drf-spectacular cannot name the colliding enum components without a settings override."""
    values = [value for value, _label in choices]

    @extend_schema_field({"type": "string", "pattern": "^(" + "|".join(values) + ")$",
                          "description": "One of: " + ", ".join(values)})
    class InlineChoiceField(serializers.ChoiceField):
        pass

    return InlineChoiceField


InboxKindField = _inline_enum(InboxKind.choices)
ConversationStatusField = _inline_enum(ConversationStatus.choices)
MessageStatusField = _inline_enum(MessageStatus.choices)
AutomaticMessageKindField = _inline_enum(AutomaticMessageKind.choices)


class InboxSerializer(ModelSerializer):
    kind = InboxKindField(choices=InboxKind.choices, read_only=True)
    webhook_url = serializers.SerializerMethodField(help_text="Paste into the provider's console.")
    config = serializers.SerializerMethodField(
        help_text="Provider settings; secrets are shown as their last four characters only."
    )

    class Meta:
        model = Inbox
        fields = ["id", "uuid", "name", "kind", "config", "default_team", "is_active", "webhook_url", "created_at",
                  "updated_at", "imap_polled_at", "imap_poll_error"]
        read_only_fields = ["imap_polled_at", "imap_poll_error"]

    def get_webhook_url(self, obj: Inbox) -> str:
        url = obj.webhook_url
        request = self.context.get("request")
        if url.startswith("/") and request is not None:
            return request.build_absolute_uri(url)  # PUBLIC_BASE_URL unset (development)
        return url

    @extend_schema_field(serializers.DictField())
    def get_config(self, obj: Inbox) -> dict[str, Any]:
        redacted = self.context.get("redacted_config", {})
        return redacted.get(obj.pk, {})


class InboxCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    kind = InboxKindField(choices=InboxKind.choices)
    config = serializers.DictField(required=False, default=dict)
    default_team = serializers.IntegerField(required=False, allow_null=True, default=None)
    is_active = serializers.BooleanField(required=False, default=True)


class InboxUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100, required=False)
    config = serializers.DictField(
        required=False,
        help_text="Merged into the current settings. A secret left out, empty or sent back redacted keeps its value.",
    )
    default_team = serializers.IntegerField(required=False, allow_null=True)
    is_active = serializers.BooleanField(required=False)


class ConversationCustomer(serializers.Serializer):
    id = serializers.IntegerField()
    display_name = serializers.CharField()


class AgentRef(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField(source="get_full_name")


class TeamRef(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class InboxRef(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.CharField()


class ConversationSerializer(ModelSerializer):
    status = ConversationStatusField(choices=ConversationStatus.choices, read_only=True)
    customer = ConversationCustomer(read_only=True)
    assignee = AgentRef(read_only=True, allow_null=True)
    team = TeamRef(read_only=True, allow_null=True)
    last_inbox = InboxRef(read_only=True, allow_null=True)
    inboxes = InboxRef(many=True, read_only=True, source="inbox_list")
    labels = serializers.SerializerMethodField()

    class Meta:
        model = Conversation
        fields = ["id", "status", "snoozed_until", "priority", "customer", "assignee", "team", "last_inbox",
                  "inboxes", "labels", "created_at", "last_message_at", "last_inbound_at", "resolved_at"]

    @extend_schema_field(serializers.ListField(child=serializers.CharField(
        help_text=Label._meta.get_field("name").help_text)))
    def get_labels(self, conversation: Conversation) -> list[str]:
        return [label.name for label in conversation.label_list()]


class MessageSerializer(ModelSerializer):
    status = MessageStatusField(choices=MessageStatus.choices, read_only=True)
    author = AgentRef(read_only=True, allow_null=True)
    channel = serializers.CharField(source="inbox.kind", read_only=True)

    class Meta:
        model = Message
        fields = ["id", "uuid", "conversation", "inbox", "channel", "direction", "sender", "author", "content",
                  "private", "status", "error_code", "error_title", "attachments", "provider_message_id",
                  "created_at"]


class TemplateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=512)
    language = serializers.CharField(max_length=15, help_text="e.g. id, en_US")
    components = serializers.ListField(child=serializers.DictField(), required=False, default=list)


class MessageCreateSerializer(serializers.Serializer):
    content = serializers.CharField(max_length=10_000, trim_whitespace=True, required=False, default="",
                                    allow_blank=True)
    template = TemplateSerializer(required=False, allow_null=True, default=None,
                                  help_text="WhatsApp: an approved template (allowed outside the 24-hour window).")
    private = serializers.BooleanField(required=False, default=False)
    inbox = serializers.IntegerField(required=False, allow_null=True, default=None,
                                     help_text="Channel to reply on; default: where the customer last wrote from.")


class AssignSerializer(serializers.Serializer):
    agent = serializers.IntegerField(required=False, allow_null=True)
    team = serializers.IntegerField(required=False, allow_null=True)

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError("Send {\"agent\": id} and/or {\"team\": id} (null unassigns the agent).")
        return attrs


class ConversationUpdateSerializer(serializers.Serializer):
    priority = serializers.ChoiceField(choices=ConversationPriority.choices)


class StatusSerializer(serializers.Serializer):
    status = ConversationStatusField(choices=ConversationStatus.choices)
    snoozed_until = serializers.DateTimeField(required=False, allow_null=True, default=None)


class ConversationListQuerySerializer(serializers.Serializer):
    status = ConversationStatusField(choices=ConversationStatus.choices, required=False)
    inbox = serializers.IntegerField(required=False)
    assignee = serializers.CharField(required=False, help_text="An agent id, \"me\" or \"none\".")
    team = serializers.IntegerField(required=False)
    customer = serializers.IntegerField(required=False)
    label = serializers.CharField(required=False, max_length=50, help_text="A label name.")

    def validate_assignee(self, value: str) -> str:
        if value not in ("me", "none") and not value.isdigit():
            raise serializers.ValidationError("Use an agent id, \"me\" or \"none\".")
        return value


class InteractionLogSerializer(serializers.Serializer):
    """A call (voice inbox) or store visit (in-person inbox) to record in the conversation."""

    customer = serializers.IntegerField()
    direction = serializers.ChoiceField(choices=[("inbound", "inbound"), ("outbound", "outbound")], default="inbound")
    content = serializers.CharField(max_length=10_000, help_text="Notes: what was discussed.")
    details = serializers.DictField(required=False, default=dict, help_text=(
        "Call: number, duration_seconds, outcome, recording_url. Visit: location, staff."))
    occurred_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    external_id = serializers.CharField(max_length=255, required=False, default="", allow_blank=True,
                                        help_text="Your id for this interaction; posting it again is a no-op.")


class InboundAcceptedSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    event = serializers.IntegerField()


class LabelSerializer(ModelSerializer):
    class Meta:
        model = Label
        fields = ["id", "name", "colour", "description", "created_at"]
        read_only_fields = ["id", "created_at"]
        extra_kwargs = {"name": {"validators": []}}  # uniqueness is the service's job


class ConversationLabelsSerializer(serializers.Serializer):
    labels = serializers.ListField(child=serializers.CharField(max_length=50), allow_empty=True, max_length=50,
                                   help_text="Label names; replaces the conversation's labels ([] removes all).")


class ConversationLabelsResultSerializer(serializers.Serializer):
    labels = serializers.ListField(child=serializers.CharField())


class CannedResponseSerializer(ModelSerializer):
    created_by = AgentRef(read_only=True, allow_null=True)

    class Meta:
        model = CannedResponse
        fields = ["id", "shortcut", "title", "body", "language", "created_by", "created_at", "updated_at"]
        read_only_fields = ["id", "created_by", "created_at", "updated_at"]
        extra_kwargs = {"shortcut": {"validators": []}}  # uniqueness is the service's job


class CannedResponseUpdateSerializer(serializers.Serializer):
    shortcut = serializers.CharField(max_length=50, required=False)
    title = serializers.CharField(max_length=200, required=False)
    body = serializers.CharField(required=False, trim_whitespace=False)
    language = serializers.CharField(max_length=8, required=False, allow_blank=True)


class CannedResponseRenderSerializer(serializers.Serializer):
    conversation = serializers.IntegerField()


class CannedResponseRenderedSerializer(serializers.Serializer):
    content = serializers.CharField()


# --- office hours -------------------------------------------------------------------------


class OfficeHoursIntervalSerializer(serializers.Serializer):
    weekday = serializers.IntegerField(min_value=0, max_value=6, help_text="0 = Monday … 6 = Sunday.")
    opens_at = serializers.TimeField(format="%H:%M", help_text="Local time, HH:MM.")
    closes_at = serializers.TimeField(format="%H:%M", help_text="Local time, HH:MM; after opens_at.")

    def validate(self, attrs):
        if attrs["closes_at"] <= attrs["opens_at"]:
            raise serializers.ValidationError({"closes_at": [_("Must be after opens_at.")]})
        return attrs


class AutomaticMessageSerializer(serializers.Serializer):
    kind = AutomaticMessageKindField(choices=AutomaticMessageKind.choices)
    language = serializers.RegexField(r"^([A-Za-z]{2,3}(-[A-Za-z0-9]{2,4})?)?$", max_length=8, required=False, default="",
                                      allow_blank=True, help_text="e.g. id, en, id-id; empty: any other language.")
    body = serializers.CharField(max_length=2000)


class OfficeHoursSerializer(serializers.Serializer):
    """Office hours of one inbox: weekly openings in a time zone, closed on public holidays."""

    id = serializers.IntegerField(read_only=True)
    inbox = serializers.IntegerField(help_text="The inbox (one set of office hours per inbox).")
    time_zone = serializers.CharField(max_length=64, default="Asia/Jakarta",
                                      help_text="IANA name, e.g. Asia/Jakarta, Asia/Makassar, Asia/Jayapura.")
    holiday_country = serializers.CharField(max_length=2, required=False, default="ID", allow_blank=True,
                                            help_text="ISO country whose public holidays are closed days; empty: none.")
    is_enabled = serializers.BooleanField(default=True, help_text="Off: the inbox counts as always open.")
    auto_reply_enabled = serializers.BooleanField(default=True)
    greeting_enabled = serializers.BooleanField(default=False)
    schedule = OfficeHoursIntervalSerializer(many=True, max_length=70,
                                             help_text="Weekly openings; several on one day make a break.")
    automatic_messages = AutomaticMessageSerializer(many=True, required=False, default=list, max_length=40,
                                                    help_text="Out-of-hours reply and greeting, one per language.")
    updated_at = serializers.DateTimeField(read_only=True)

    def to_representation(self, instance):
        return {
            "id": instance.pk,
            "inbox": instance.inbox_id,
            "time_zone": instance.time_zone,
            "holiday_country": instance.holiday_country,
            "is_enabled": instance.is_enabled,
            "auto_reply_enabled": instance.auto_reply_enabled,
            "greeting_enabled": instance.greeting_enabled,
            "schedule": OfficeHoursIntervalSerializer(instance.intervals.all(), many=True).data,
            "automatic_messages": AutomaticMessageSerializer(instance.messages.all(), many=True).data,
            "updated_at": serializers.DateTimeField().to_representation(instance.updated_at),
        }

    def validate_time_zone(self, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise serializers.ValidationError(
                _("Unknown time zone: use an IANA name such as Asia/Jakarta.")) from None
        return value

    def validate_holiday_country(self, value: str) -> str:
        value = value.upper()
        if value:
            try:
                holidays.country_holidays(value)
            except NotImplementedError:
                raise serializers.ValidationError(_("No public holiday calendar for this country code.")) from None
        return value

    def validate_schedule(self, value: list[dict]) -> list[dict]:
        by_day: dict[int, list[dict]] = {}
        for interval in value:
            by_day.setdefault(interval["weekday"], []).append(interval)
        for weekday, intervals in by_day.items():
            intervals.sort(key=lambda i: i["opens_at"])
            for before, after in zip(intervals, intervals[1:], strict=False):
                if after["opens_at"] < before["closes_at"]:
                    raise serializers.ValidationError(
                        _("Day %(day)s: openings %(a)s and %(b)s overlap.") % {
                            "day": weekday, "a": f"{before['opens_at']:%H:%M}–{before['closes_at']:%H:%M}",
                            "b": f"{after['opens_at']:%H:%M}–{after['closes_at']:%H:%M}"})
        return value

    def validate_automatic_messages(self, value: list[dict]) -> list[dict]:
        keys = [(m["kind"], m["language"].lower()) for m in value]
        if len(keys) != len(set(keys)):
            raise serializers.ValidationError(_("At most one text per kind and language."))
        return value


class OfficeHoursUpdateSerializer(OfficeHoursSerializer):
    """PATCH: any subset of the fields; `schedule` and `automatic_messages` replace the lists."""

    inbox = serializers.IntegerField(read_only=True)


class OfficeHoursHolidaySerializer(serializers.Serializer):
    date = serializers.DateField()
    name = serializers.CharField()


class OfficeHoursStatusSerializer(serializers.Serializer):
    is_open = serializers.BooleanField(help_text="Staffed at `at` (always true when office hours are off).")
    at = serializers.DateTimeField(help_text="The moment asked about, in the office hours' time zone.")
    holiday = serializers.CharField(help_text="The public holiday on that local date, or empty.")
    closed_since = serializers.DateTimeField(allow_null=True, help_text="Closed: when the last opening ended.")
    next_opening = serializers.DateTimeField(allow_null=True, help_text="When it opens next (null: open with no "
                                             "later opening known, or office hours off).")
    next_closing = serializers.DateTimeField(allow_null=True, help_text="When the current or next opening ends.")
    upcoming_holidays = OfficeHoursHolidaySerializer(many=True)
