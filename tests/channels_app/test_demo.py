from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from channels_app.demo import seed_demo_channels
from channels_app.models import Conversation, Inbox, InboxKind, Message
from channels_app.services import inbox_adapter

pytestmark = pytest.mark.django_db


def test_seed_demo_channels_creates_every_kind_and_cross_channel_conversations_idempotently(roles):
    call_command("seed_demo", stdout=io.StringIO())
    out = io.StringIO()

    seed_demo_channels(out)
    seed_demo_channels(io.StringIO())

    assert sorted(Inbox.objects.values_list("kind", flat=True)) == sorted(InboxKind.values)
    assert Inbox.objects.exclude(default_team=None).count() == len(InboxKind.values)
    rina = Conversation.objects.get(customer__display_name="Rina Wijaya")
    assert list(rina.messages.order_by("created_at").values_list("inbox__kind", flat=True)) == [
        "whatsapp", "whatsapp", "instagram", "telegram"]
    assert rina.last_inbox.kind == "telegram"
    assert rina.messages.get(provider_message_id="demo-wa-out-1").status == "read"
    andi = Conversation.objects.get(customer__display_name="Andi Kurniawan")
    assert andi.status == "resolved"
    maya = Conversation.objects.get(customer__display_name="Maya Sari")
    assert set(maya.inboxes.values_list("kind", flat=True)) == {"voice", "in_person", "line"}
    assert Message.objects.filter(provider_message_id__startswith="demo-").count() == 10
    assert "Rina (WhatsApp → Instagram → Telegram)" in out.getvalue()
    # Every provider inbox has a valid, decryptable config.
    for inbox in Inbox.objects.exclude(kind__in=["voice", "in_person"]):
        assert inbox_adapter(inbox=inbox) is not None
