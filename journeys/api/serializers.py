"""Journeys API shapes: parsing and output only, no logic."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.utils import timezone
from rest_framework import serializers

from customers.models import LifecycleStage
from cxplatform.api.serializers import ModelSerializer
from journeys.models import CsatResponse, CustomerEvent, StageChange


class EventCustomerSerializer(serializers.Serializer):
    email = serializers.CharField(required=False, allow_blank=True, max_length=254)
    phone = serializers.CharField(required=False, allow_blank=True, max_length=40)
    external_id = serializers.CharField(required=False, allow_blank=True, max_length=200)
    name = serializers.CharField(required=False, allow_blank=True, max_length=200)


class EventCreateSerializer(serializers.Serializer):
    id = serializers.CharField(max_length=200)
    type = serializers.CharField(max_length=100)
    customer = EventCustomerSerializer()
    occurred_at = serializers.DateTimeField()
    properties = serializers.DictField(required=False, default=dict)

    def validate_occurred_at(self, value):
        # Before 1970 time zones like Asia/Jakarta used local mean time offsets (+07:07:12)
        # that are not valid RFC 3339; a business event from then is a typo anyway.
        earliest = datetime(1970, 1, 1, tzinfo=UTC)
        latest = timezone.now() + timedelta(days=1)
        if not earliest <= value <= latest:
            raise serializers.ValidationError("occurred_at must be between 1970-01-01 and tomorrow.")
        return value


class EventSerializer(ModelSerializer):
    id = serializers.CharField(source="external_id")
    customer = serializers.IntegerField(source="customer_id")
    customer_stage = serializers.CharField(source="customer.lifecycle_stage")

    class Meta:
        model = CustomerEvent
        fields = ["id", "type", "meaning", "customer", "customer_created", "customer_stage", "occurred_at", "received_at", "channel", "properties"]


class StageSetSerializer(serializers.Serializer):
    # A plain string (validated by the service): the stage choice set is already published
    # once as the customers API's enum, and a second name for it is a schema warning.
    stage = serializers.CharField(max_length=20, help_text="One of: " + ", ".join(LifecycleStage.values))
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


class StageChangeSerializer(ModelSerializer):
    actor = serializers.EmailField(source="actor.email", default=None, read_only=True)
    from_stage = serializers.CharField(read_only=True, help_text="reach, acquisition, conversion, retention or loyalty")
    to_stage = serializers.CharField(read_only=True, help_text="reach, acquisition, conversion, retention or loyalty")

    class Meta:
        model = StageChange
        fields = [
            "id", "from_stage", "to_stage", "changed_at", "reason", "rule_code", "actor", "note", "channel",
            "first_touch_channel", "last_touch_channel", "event",
        ]


class CsatResponseSerializer(ModelSerializer):
    conversation = serializers.IntegerField(source="survey.conversation_id")
    channel = serializers.CharField(source="survey.inbox.kind", default="")
    inbox = serializers.IntegerField(source="survey.inbox_id", default=None)
    agent = serializers.IntegerField(source="survey.assignee_id", default=None)
    team = serializers.IntegerField(source="survey.team_id", default=None)
    customer = serializers.IntegerField(source="customer_id")

    class Meta:
        model = CsatResponse
        fields = ["id", "survey", "conversation", "customer", "rating", "nps", "comment", "via", "responded_at", "channel", "inbox", "agent", "team"]


class ReportQuerySerializer(serializers.Serializer):
    from_ = serializers.DateField(required=False)
    to = serializers.DateField(required=False)
    group_by = serializers.ChoiceField(choices=["channel", "inbox", "agent", "team", "label", "period", ""], required=False, default="")
    segment = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=1)
    period = serializers.ChoiceField(choices=["day", "week", "month"], required=False, default="month")
    hours = serializers.ChoiceField(choices=["calendar", "business"], required=False, default="calendar")

    def to_internal_value(self, data):
        data = data.copy() if hasattr(data, "copy") else dict(data)
        if "from" in data:
            data["from_"] = data.get("from")
        return super().to_internal_value(data)


class ReportSerializer(serializers.Serializer):
    """A report: `summary` for the whole period, `rows` per group (when grouped)."""

    period_from = serializers.DateTimeField()
    period_to = serializers.DateTimeField()
    group_by = serializers.CharField()
    summary = serializers.DictField()
    rows = serializers.ListField(child=serializers.DictField())


class MaturityScoreInSerializer(serializers.Serializer):
    dimension = serializers.CharField(max_length=20, help_text="strategy, data, technology, process, leadership, roadmap, people, metrics or budget")
    level = serializers.IntegerField(min_value=1, max_value=5)
    target_level = serializers.IntegerField(min_value=1, max_value=5, required=False, allow_null=True, default=None)
    horizon = serializers.CharField(required=False, allow_blank=True, default="", help_text="short, mid or long")
    actions = serializers.CharField(required=False, allow_blank=True, default="", max_length=1000)


class MaturityAssessmentCreateSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200)
    notes = serializers.CharField(required=False, allow_blank=True, default="")
    scores = MaturityScoreInSerializer(many=True, required=False, default=list)


class MaturityScoresSerializer(serializers.Serializer):
    scores = MaturityScoreInSerializer(many=True)


class MaturityDimensionResultSerializer(serializers.Serializer):
    code = serializers.CharField()
    label = serializers.CharField()
    scores = serializers.ListField(child=serializers.IntegerField(allow_null=True))
    median = serializers.FloatField(allow_null=True)
    target = serializers.FloatField(allow_null=True)
    evidence = serializers.ListField(child=serializers.DictField())


class MaturityAssessmentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    created_at = serializers.DateTimeField()
    notes = serializers.CharField()
    evidence = serializers.DictField()
    assessors = serializers.ListField(child=serializers.EmailField())
    dimensions = MaturityDimensionResultSerializer(many=True)
