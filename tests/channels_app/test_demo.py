from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from channels_app.demo import seed_demo_channels
from channels_app.models import Inbox, InboxKind, Message
from channels_app.services import inbox_adapter
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
