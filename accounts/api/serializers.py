from __future__ import annotations

from rest_framework import serializers

from accounts.models import Availability, Team, User
from cxplatform.api.serializers import ModelSerializer


class TeamSerializer(ModelSerializer):
    member_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Team
        fields = ["id", "name", "description", "member_count"]


class AgentSerializer(ModelSerializer):
    role = serializers.CharField(read_only=True)
    teams = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["id", "email", "full_name", "role", "teams", "availability", "max_concurrent_conversations", "last_seen_at"]

    def get_teams(self, obj) -> list[int]:
        return [membership.team_id for membership in obj.team_memberships.all()]


class MeSerializer(AgentSerializer):
    class Meta(AgentSerializer.Meta):
        fields = AgentSerializer.Meta.fields + ["language", "time_zone"]
        read_only_fields = ["id", "email", "role", "teams", "max_concurrent_conversations", "last_seen_at"]


class AvailabilitySerializer(serializers.Serializer):
    availability = serializers.ChoiceField(choices=Availability.choices)
