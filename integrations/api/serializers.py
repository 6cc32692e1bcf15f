from __future__ import annotations

from rest_framework import serializers

from cxplatform.api.serializers import ModelSerializer
from integrations.events import WEBHOOK_EVENT_TYPES
from integrations.models import WebhookDelivery, WebhookSubscription


class WebhookSubscriptionSerializer(ModelSerializer):
    events = serializers.ListField(child=serializers.ChoiceField(choices=WEBHOOK_EVENT_TYPES))

    class Meta:
        model = WebhookSubscription
        fields = ["id", "url", "events", "active", "disabled_reason", "disabled_at", "created_at", "updated_at"]


class WebhookSubscriptionCreatedSerializer(WebhookSubscriptionSerializer):
    secret = serializers.CharField(help_text="The signing secret. Shown only in this response.")

    class Meta(WebhookSubscriptionSerializer.Meta):
        fields = [*WebhookSubscriptionSerializer.Meta.fields, "secret"]


class WebhookSubscriptionCreateSerializer(serializers.Serializer):
    url = serializers.URLField(max_length=500)
    events = serializers.ListField(child=serializers.ChoiceField(choices=WEBHOOK_EVENT_TYPES), min_length=1)
    secret = serializers.CharField(
        required=False, min_length=16, max_length=200, write_only=True,
        help_text="Optional; generated when omitted. Returned once in the response.",
    )
    active = serializers.BooleanField(default=True)


class WebhookSubscriptionUpdateSerializer(serializers.Serializer):
    url = serializers.URLField(max_length=500, required=False)
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=WEBHOOK_EVENT_TYPES), min_length=1, required=False
    )
    secret = serializers.CharField(required=False, min_length=16, max_length=200, write_only=True)
    active = serializers.BooleanField(required=False)


class WebhookDeliverySerializer(ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = [
            "id", "subscription", "event_id", "event_type", "payload", "status", "attempt", "status_code",
            "latency_ms", "response_excerpt", "error", "next_attempt_at", "redelivery_of", "created_at",
            "last_attempt_at", "delivered_at",
        ]
