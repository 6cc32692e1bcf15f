from __future__ import annotations

import datetime as dt
import io
import zoneinfo

import pytest
from django.core.management import call_command

from channels_app.demo import seed_demo_channels
from channels_app.models import (
    CannedResponse,
    Conversation,
    Inbox,
    InboxAutomaticMessage,
    InboxKind,
    Label,
    Message,
    OfficeHours,
    OfficeHoursInterval,
)
from channels_app.services import canned_response_render, conversation_labels_set, inbox_adapter, inbox_is_open
from customers.models import Customer

pytestmark = pytest.mark.django_db


def test_seed_demo_channels_creates_every_kind_and_cross_channel_conversations_idempotently(roles):
    call_command("seed_demo", stdout=io.StringIO())
    out = io.StringIO()

    seed_demo_channels(out)
    seed_demo_channels(io.StringIO())

    assert sorted(Inbox.objects.values_list("kind", flat=True)) == sorted(InboxKind.values)
    assert Inbox.objects.exclude(default_team=None).count() == len(InboxKind.values)
    rina = Message.objects.get(provider_message_id="demo-tg-1").conversation
    assert list(rina.messages.order_by("created_at").values_list("inbox__kind", flat=True)) == [
        "whatsapp", "whatsapp", "instagram", "telegram"]
    assert rina.last_inbox.kind == "telegram"
    assert rina.messages.get(provider_message_id="demo-wa-out-1").status == "read"
    andi = Message.objects.get(provider_message_id="demo-email-1").conversation
    assert andi.status == "resolved"
    maya = Message.objects.get(provider_message_id="demo-line-1").conversation
    assert set(maya.inboxes.values_list("kind", flat=True)) == {"voice", "in_person", "line"}
    assert Message.objects.filter(provider_message_id__regex=r"^demo-(wa|ig|tg|web|email|call|visit|line)").count() == 10
    # The conversations belong to customers.demo's demo customers (found by their phone numbers).
    assert rina.customer.display_name == "Rina Wijaya"
    assert rina.customer.identities.filter(kind="phone", value="+6281200057005").exists()
    assert maya.customer.identities.filter(kind="phone", value="+6281200167016").exists()
    assert Customer.objects.filter(display_name="Rina Wijaya").count() == 1
    # Every provider inbox has a valid, decryptable config.
    for inbox in Inbox.objects.exclude(kind__in=["voice", "in_person"]):
        assert inbox_adapter(inbox=inbox) is not None


def test_seed_demo_adds_canned_responses_labels_and_office_hours_once(roles):
    call_command("seed_demo", stdout=io.StringIO())
    counts = (CannedResponse.objects.count(), Label.objects.count(), OfficeHours.objects.count(),
              OfficeHoursInterval.objects.count(), InboxAutomaticMessage.objects.count(),
              Conversation.labels.through.objects.count())

    seed_demo_channels(io.StringIO())

    assert (CannedResponse.objects.count(), Label.objects.count(), OfficeHours.objects.count(),
            OfficeHoursInterval.objects.count(), InboxAutomaticMessage.objects.count(),
            Conversation.labels.through.objects.count()) == counts
    # canned responses in both languages, with variables filled in for a real conversation
    assert set(CannedResponse.objects.values_list("language", flat=True)) == {"en", "id"}
    rina = Message.objects.get(provider_message_id="demo-wa-1").conversation
    salam = CannedResponse.objects.get(shortcut="salam")
    assert "{{customer.first_name}}" in salam.body
    assert canned_response_render(canned=salam, conversation=rina).startswith("Halo Kak Rina, saya ")
    greeting = CannedResponse.objects.get(shortcut="greeting")
    assert canned_response_render(canned=greeting, conversation=rina).startswith("Hi Rina, this is ")
    # labels on some conversations
    assert sorted(rina.labels.values_list("name", flat=True)) == ["pembayaran", "vip"]
    andi = Message.objects.get(provider_message_id="demo-email-1").conversation
    assert list(andi.labels.values_list("name", flat=True)) == ["retur"]
    assert Conversation.objects.filter(labels__isnull=True).exists()  # only some are labelled
    # office hours: every inbox but the API channel, Mon–Fri 08–17 and Sat 09–13 Jakarta time
    assert sorted(OfficeHours.objects.values_list("inbox__kind", flat=True)) == sorted(
        kind for kind in InboxKind.values if kind != "api")
    whatsapp = OfficeHours.objects.get(inbox__kind="whatsapp")
    assert (whatsapp.time_zone, whatsapp.holiday_country, whatsapp.is_enabled) == ("Asia/Jakarta", "ID", True)
    assert [(i.weekday, f"{i.opens_at:%H:%M}", f"{i.closes_at:%H:%M}") for i in whatsapp.intervals.all()] == [
        (0, "08:00", "17:00"), (1, "08:00", "17:00"), (2, "08:00", "17:00"), (3, "08:00", "17:00"),
        (4, "08:00", "17:00"), (5, "09:00", "13:00")]
    assert set(whatsapp.messages.values_list("kind", "language")) == {("out_of_hours", "id"), ("out_of_hours", "")}
    jakarta = zoneinfo.ZoneInfo("Asia/Jakarta")
    # the public holiday: Independence Day (Monday 17 August 2026) is closed at 10:00, the day after open
    assert not inbox_is_open(inbox=whatsapp.inbox, now=dt.datetime(2026, 8, 17, 10, tzinfo=jakarta))
    assert inbox_is_open(inbox=whatsapp.inbox, now=dt.datetime(2026, 8, 18, 10, tzinfo=jakarta))
    assert inbox_is_open(inbox=whatsapp.inbox, now=dt.datetime(2026, 8, 22, 12, tzinfo=jakarta))  # Saturday
    assert not inbox_is_open(inbox=whatsapp.inbox, now=dt.datetime(2026, 8, 22, 14, tzinfo=jakarta))


def test_seed_demo_keeps_an_admins_changes(roles):
    seed_demo_channels(io.StringIO())
    rina = Message.objects.get(provider_message_id="demo-wa-1").conversation
    conversation_labels_set(conversation=rina, labels=["vip"])
    OfficeHours.objects.filter(inbox__kind="email").update(time_zone="Asia/Makassar")
    CannedResponse.objects.filter(shortcut="salam").update(body="Halo!")

    seed_demo_channels(io.StringIO())

    assert list(rina.labels.values_list("name", flat=True)) == ["vip"]
    assert OfficeHours.objects.get(inbox__kind="email").time_zone == "Asia/Makassar"
    assert CannedResponse.objects.get(shortcut="salam").body == "Halo!"
