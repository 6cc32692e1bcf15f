from __future__ import annotations

import datetime as dt

import factory
from django.utils import timezone

from customers.models import (
    AttributeDefinition,
    Customer,
    CustomerNote,
    Identity,
    IdentityKind,
    IdentityOrigin,
    Tag,
    TimelineEntry,
    TimelineKind,
)


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    display_name = factory.Sequence(lambda n: f"Customer {n}")


class IdentityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Identity

    customer = factory.SubFactory(CustomerFactory)
    kind = IdentityKind.EMAIL
    value = factory.Sequence(lambda n: f"person{n}@mail.test")
    verified = True
    origin = IdentityOrigin.CHANNEL
    source = "factory"


class TagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tag
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"tag{n}")


class AttributeDefinitionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AttributeDefinition
        django_get_or_create = ("key",)

    key = factory.Sequence(lambda n: f"attr{n}")
    label = factory.LazyAttribute(lambda o: o.key.title())
    type = AttributeDefinition.Type.TEXT


class CustomerNoteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CustomerNote

    customer = factory.SubFactory(CustomerFactory)
    body = factory.Sequence(lambda n: f"Note {n}")


BASE_TIME = dt.datetime(2026, 1, 1, 9, 0, tzinfo=dt.UTC)


class TimelineEntryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TimelineEntry

    customer = factory.SubFactory(CustomerFactory)
    kind = TimelineKind.MESSAGE
    channel = "whatsapp"
    occurred_at = factory.Sequence(lambda n: BASE_TIME + dt.timedelta(minutes=n))
    title = factory.Sequence(lambda n: f"Entry {n}")


def now() -> dt.datetime:
    return timezone.now()
