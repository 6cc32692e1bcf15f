from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from accounts.models import Availability
from channels_app.models import Conversation, Message, WebhookEvent
from channels_app.services import conversation_status_set
from channels_app.services.conversations import conversations_wake_snoozed
from channels_app.services.privacy import webhook_event_prune
from customers.services import customer_erase, customer_export
from tests.accounts.factories import TeamFactory, add_to_team
from tests.channels_app.test_webhooks import post_whatsapp, wa_text, whatsapp_inbox

pytestmark = pytest.mark.django_db


def test_erasing_a_customer_blanks_their_messages_and_deletes_the_raw_deliveries(
    client, supervisor, django_capture_on_commit_callbacks
):
    inbox = whatsapp_inbox()
    with django_capture_on_commit_callbacks(execute=True):
        post_whatsapp(client, inbox, wa_text(text="Alamat saya Jl. Melati 5"))
        post_whatsapp(client, inbox, wa_text(wa_id="6281298765432", msg_id="wamid.OTHER", text="orang lain"))
    message = Message.objects.get(content="Alamat saya Jl. Melati 5")
    assert message.webhook_event is not None

    customer_erase(customer=message.conversation.customer, actor=supervisor)

    message.refresh_from_db()
    assert (message.content, message.attachments, message.data) == ("", [], {"erased": True})
    assert Conversation.objects.count() == 2  # the anonymous rows stay for the numbers
    assert WebhookEvent.objects.count() == 1
    assert Message.objects.get(provider_message_id="wamid.OTHER").content == "orang lain"


def test_export_includes_conversations_without_private_notes(client, supervisor, django_capture_on_commit_callbacks):
    inbox = whatsapp_inbox()
    with django_capture_on_commit_callbacks(execute=True):
        post_whatsapp(client, inbox, wa_text(text="Halo"))
    conversation = Conversation.objects.get()
    Message.objects.create(conversation=conversation, inbox=inbox, direction="outbound", sender="agent",
                           content="catatan internal", private=True, status="sent")

    data = customer_export(customer=conversation.customer, actor=supervisor)

    assert [m["content"] for m in data["conversations"][0]["messages"]] == ["Halo"]
    assert data["conversations"][0]["messages"][0]["channel"] == "whatsapp"


def test_prune_deletes_only_old_processed_deliveries():
    inbox = whatsapp_inbox()
    old = timezone.now() - dt.timedelta(days=40)
    WebhookEvent.objects.create(inbox=inbox, body=b"{}", status="processed", received_at=old)
    parked = WebhookEvent.objects.create(inbox=inbox, body=b"{}", status="parked", received_at=old)
    recent = WebhookEvent.objects.create(inbox=inbox, body=b"{}", status="processed")

    assert webhook_event_prune() == 1
    assert set(WebhookEvent.objects.values_list("pk", flat=True)) == {parked.pk, recent.pk}


def test_snoozed_conversations_wake_up_when_their_time_comes(make_user):
    team = TeamFactory()
    agent = make_user(availability=Availability.ONLINE)
    add_to_team(agent, team)
    inbox = whatsapp_inbox(team=team)
    from channels_app.services import conversation_continue
    from customers.models import Customer

    conversation = conversation_continue(customer=Customer.objects.create(), inbox=inbox).conversation
    conversation_status_set(conversation=conversation, status="snoozed", actor=agent,
                            snoozed_until=timezone.now() + dt.timedelta(minutes=30))

    assert conversations_wake_snoozed(now=timezone.now() + dt.timedelta(minutes=10)) == 0
    assert conversations_wake_snoozed(now=timezone.now() + dt.timedelta(minutes=31)) == 1
    conversation.refresh_from_db()
    assert (conversation.status, conversation.snoozed_until) == ("open", None)
