from __future__ import annotations

import factory

from accounts.models import Role, Team, TeamMembership, User
from accounts.services import user_role_assign

PASSWORD = "correct-horse-battery"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    full_name = factory.Faker("name")
    password = factory.django.Password(PASSWORD)

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        if create:
            user_role_assign(user=self, role=extracted or Role.AGENT)


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team

    name = factory.Sequence(lambda n: f"Team {n}")


def add_to_team(user: User, team: Team) -> TeamMembership:
    return TeamMembership.objects.create(user=user, team=team)
