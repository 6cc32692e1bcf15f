"""Shapes of the customers API. Parsing and representation only: no writes here."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import Team, User
from customers.identity import IdentityValueError, identity_normalise
from customers.models import (
    Customer,
    CustomerConsent,
    Identity,
    IdentityKind,
    LifecycleStage,
    Segment,
    TimelineEntry,
)
from cxplatform.api.serializers import ModelSerializer


class IdentitySerializer(ModelSerializer):
    class Meta:
        model = Identity
        fields = ["kind", "value", "scope", "verified", "source", "first_seen_at", "last_seen_at"]


class ConsentSerializer(ModelSerializer):
    opted_in = serializers.BooleanField(source="is_opted_in", read_only=True)

    class Meta:
        model = CustomerConsent
        fields = ["channel", "opted_in", "opted_in_at", "opted_out_at", "source"]


class CustomerSerializer(ModelSerializer):
    identities = IdentitySerializer(many=True, read_only=True)
    tags = serializers.SerializerMethodField()
    consents = ConsentSerializer(many=True, read_only=True)

    class Meta:
        model = Customer
        fields = [
            "id",
            "display_name",
            "language",
            "time_zone",
            "lifecycle_stage",
            "owner_agent",
            "owner_team",
            "tags",
            "attributes",
            "identities",
            "consents",
            "created_at",
            "last_seen_at",
            "last_contacted_at",
            "merged_into",
            "is_erased",
        ]

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_tags(self, obj) -> list[str]:
        return [tag.name for tag in obj.tags.all()]


class IdentityInputSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=IdentityKind.choices)
    value = serializers.CharField(max_length=255, allow_blank=True, trim_whitespace=True)
    scope = serializers.CharField(max_length=64, required=False, default="", allow_blank=True)
    verified = serializers.BooleanField(required=False, default=False)

    def validate(self, attrs):
        # Field-level errors name the field: an invalid phone is reported on "value".
        try:
            identity_normalise(kind=attrs["kind"], value=attrs["value"], scope=attrs.get("scope", ""))
        except IdentityValueError as exc:
            field = "scope" if "scope" in " ".join(exc.messages) else "value"
            raise serializers.ValidationError({field: exc.messages}) from None
        return attrs


class CustomerWriteSerializer(serializers.Serializer):
    display_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    language = serializers.CharField(max_length=8, required=False, allow_blank=True)
    time_zone = serializers.CharField(max_length=64, required=False, allow_blank=True)
    lifecycle_stage = serializers.ChoiceField(choices=LifecycleStage.choices, required=False)
    owner_agent = serializers.PrimaryKeyRelatedField(
        queryset=User.objects.filter(is_active=True), required=False, allow_null=True
    )
    owner_team = serializers.PrimaryKeyRelatedField(queryset=Team.objects.all(), required=False, allow_null=True)
    tags = serializers.ListField(child=serializers.CharField(max_length=50), required=False)
    attributes = serializers.DictField(required=False)
    identities = IdentityInputSerializer(many=True, required=False, help_text="On PATCH: identities to add.")


class LookupQuerySerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=IdentityKind.choices)
    value = serializers.CharField(max_length=255)
    scope = serializers.CharField(max_length=64, required=False, default="", allow_blank=True)


class MergeRequestSerializer(serializers.Serializer):
    source = serializers.IntegerField(help_text="Id of the customer merged into this one (it stops being listed).")
    reason = serializers.CharField(max_length=500, required=False, default="", allow_blank=True)


class MergeResultSerializer(serializers.Serializer):
    merge_id = serializers.IntegerField()
    survivor = CustomerSerializer()


class UndoResultSerializer(serializers.Serializer):
    merge_id = serializers.IntegerField()
    survivor = CustomerSerializer()
    restored = CustomerSerializer()


class EraseRequestSerializer(serializers.Serializer):
    confirm = serializers.BooleanField(help_text="Must be true: erasing cannot be undone.")

    def validate_confirm(self, value):
        if value is not True:
            raise serializers.ValidationError('Send "confirm": true to erase this customer; it cannot be undone.')
        return value


class TimelineEntrySerializer(ModelSerializer):
    # Free text: other apps add kinds of their own (see customers.models.TimelineKind).
    kind = serializers.CharField(read_only=True)

    class Meta:
        model = TimelineEntry
        fields = ["id", "occurred_at", "kind", "channel", "title", "body", "ref_type", "ref_id", "data"]


class TimelinePageSerializer(serializers.Serializer):
    results = TimelineEntrySerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True)
    next = serializers.CharField(allow_null=True)


class TimelineQuerySerializer(serializers.Serializer):
    cursor = serializers.CharField(required=False, allow_blank=True)
    channel = serializers.CharField(required=False, allow_blank=True, max_length=30)
    kind = serializers.CharField(required=False, allow_blank=True, max_length=40)
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=200, default=50)


class SegmentSerializer(ModelSerializer):
    customer_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Segment
        fields = ["id", "name", "description", "filters", "customer_count", "created_at"]
        read_only_fields = ["id", "customer_count", "created_at"]
        extra_kwargs = {"name": {"validators": []}}
