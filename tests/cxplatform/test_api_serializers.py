"""cxplatform.api.serializers.ModelSerializer builds a class's fields once and hands every
instance its own copy."""
from __future__ import annotations

from unittest import mock

from rest_framework import serializers

from accounts.models import Team
from cxplatform.api.serializers import ModelSerializer


class TeamOut(ModelSerializer):
    class Meta:
        model = Team
        fields = ["id", "name"]


class TeamOutWithSlug(TeamOut):
    slug = serializers.SerializerMethodField()

    class Meta(TeamOut.Meta):
        fields = ["id", "name", "slug"]

    def get_slug(self, team) -> str:
        return team.name.lower().replace(" ", "-")


def test_the_model_is_introspected_once_per_class():
    if "_built_fields" in TeamOut.__dict__:
        del TeamOut._built_fields
    with mock.patch.object(serializers.ModelSerializer, "get_fields", autospec=True,
                           side_effect=serializers.ModelSerializer.get_fields) as built:
        for _ in range(5):
            TeamOut(Team(pk=1, name="Support")).data  # noqa: B018
    assert built.call_count == 1


def test_output_is_the_same_as_drfs():
    team = Team(pk=7, name="Sales Jakarta")

    class Plain(serializers.ModelSerializer):
        class Meta:
            model = Team
            fields = ["id", "name"]

    assert TeamOut(team).data == Plain(team).data == {"id": 7, "name": "Sales Jakarta"}
    assert TeamOut(team).data == {"id": 7, "name": "Sales Jakarta"}  # the second, from the built fields


def test_each_instance_gets_its_own_fields():
    first, second = TeamOut(), TeamOut()
    assert first.fields["name"] is not second.fields["name"]
    first.fields.pop("name")
    first.fields["id"].read_only = False
    assert list(TeamOut().fields) == ["id", "name"]
    assert TeamOut().fields["id"].read_only is True


def test_a_subclass_builds_its_own_fields():
    TeamOut().fields  # noqa: B018  (the parent's are built first)
    team = Team(pk=3, name="Key Accounts")
    assert TeamOutWithSlug(team).data == {"id": 3, "name": "Key Accounts", "slug": "key-accounts"}
    assert TeamOut(team).data == {"id": 3, "name": "Key Accounts"}
