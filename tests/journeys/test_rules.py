"""Event message rules: "order.shipped → canned response → the customer's channel"."""
from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from channels_app.models import CannedResponse, Message
from customers.models import Customer, Identity, TimelineEntry
from journeys import rules, services
from journeys.models import CustomerEvent, EventMessageDispatch, EventMessageRule
from tests.journeys import factories as f

pytestmark = pytest.mark.django_db

BODY = "Hi {{customer.first_name}}, order {{event.order_id}} is on its way ({{event.courier}}). {{event.unknown}}"


@pytest.fixture
def canned():
    return CannedResponse.objects.create(shortcut="shipped", title="Shipped", body=BODY)


def _whatsapp_customer(*, last_wrote_hours_ago: float):
    customer = Customer.objects.create(display_name="Dewi Lestari")
    Identity.objects.create(customer=customer, kind="phone", value="+6281200000001")
    Identity.objects.create(customer=customer, kind="email", value="dewi@mail.test")
    inbox = f.inbox("whatsapp")
    conv = f.conversation(customer=customer, inbox_=inbox, created_at=timezone.now() - dt.timedelta(hours=last_wrote_hours_ago + 1))
    f.message(conv, when=timezone.now() - dt.timedelta(hours=last_wrote_hours_ago))
    f.resolve(conv, timezone.now() - dt.timedelta(hours=last_wrote_hours_ago) + dt.timedelta(minutes=5))
    return customer, inbox, conv


def _event(event_id: str = "ship-1", event_type: str = "order.shipped") -> CustomerEvent:
    return services.customer_event_record(
        event_id=event_id, event_type=event_type, occurred_at=timezone.now(), email="dewi@mail.test",
        properties={"order_id": "INV-77", "courier": "JNE", "Bad Key": "x"},
    ).event


def test_the_event_sends_the_rendered_canned_response_on_the_channel_the_customer_last_used(canned):
    customer, inbox, conv = _whatsapp_customer(last_wrote_hours_ago=2)
    EventMessageRule.objects.create(name="Shipped", event_type="order.shipped", canned_response=canned)

    [dispatch] = rules.event_rules_apply(event=_event())

    assert (dispatch.status, dispatch.reason, dispatch.inbox, dispatch.used_template) == ("sent", "", inbox, False)
    message = Message.objects.get(pk=dispatch.message_id)
    assert message.content == "Hi Dewi, order INV-77 is on its way (JNE). {{event.unknown}}"
    assert (message.inbox, message.conversation, message.direction, message.sender, message.status) == (
        inbox, conv, "outbound", "system", "queued")
    entry = TimelineEntry.objects.get(customer=customer, ref_type="journeys.event_message")
    assert entry.title == "Automatic message for order.shipped sent" and entry.channel == "whatsapp"


def test_idempotent_per_event(canned):
    _whatsapp_customer(last_wrote_hours_ago=2)
    EventMessageRule.objects.create(name="Shipped", event_type="order.shipped", canned_response=canned)
    event = _event()

    first = rules.event_rules_apply(event=event)
    again = rules.event_rules_apply(event=event)

    assert [d.pk for d in first] == [d.pk for d in again]
    assert Message.objects.filter(direction="outbound").count() == 1
    assert EventMessageDispatch.objects.count() == 1


def test_outside_the_whatsapp_window_without_a_template_it_is_skipped_with_the_reason(canned):
    customer, _inbox, _conv = _whatsapp_customer(last_wrote_hours_ago=30)
    EventMessageRule.objects.create(name="Shipped", event_type="order.shipped", canned_response=canned)

    [dispatch] = rules.event_rules_apply(event=_event())

    assert dispatch.status == "skipped"
    assert dispatch.reason == "The WhatsApp 24-hour window is closed and the rule has no approved template for that case."
    assert not Message.objects.filter(direction="outbound").exists()
    entry = TimelineEntry.objects.get(customer=customer, ref_type="journeys.event_message")
    assert entry.title == "Automatic message for order.shipped not sent" and entry.body == dispatch.reason


def test_outside_the_window_the_rules_template_is_sent_with_variables(canned):
    _whatsapp_customer(last_wrote_hours_ago=30)
    template = {"name": "order_shipped", "language": "id",
                "components": [{"type": "body", "parameters": [{"type": "text", "text": "{{event.order_id}}"}]}]}
    EventMessageRule.objects.create(name="Shipped", event_type="order.shipped", canned_response=canned, whatsapp_template=template)

    [dispatch] = rules.event_rules_apply(event=_event())

    assert (dispatch.status, dispatch.used_template) == ("sent", True)
    message = Message.objects.get(pk=dispatch.message_id)
    assert message.data["template"]["components"][0]["parameters"][0]["text"] == "INV-77"


def test_a_configured_inbox_wins_and_unreachable_is_a_reason(canned):
    customer, _inbox, _conv = _whatsapp_customer(last_wrote_hours_ago=2)
    email = f.inbox("email")
    sms = f.inbox("twilio_sms")
    EventMessageRule.objects.create(name="By email", event_type="order.shipped", canned_response=canned, inbox=email)
    EventMessageRule.objects.create(name="Off", event_type="order.shipped", canned_response=canned, inbox=sms, is_active=False)
    EventMessageRule.objects.create(name="Other type", event_type="order.paid", canned_response=canned)

    dispatches = rules.event_rules_apply(event=_event())

    assert [(d.rule.name, d.status, d.inbox) for d in dispatches] == [("By email", "sent", email)]
    EventMessageRule.objects.create(name="Telegram", event_type="order.delivered", canned_response=canned, inbox=f.inbox("telegram"))
    [again] = rules.event_rules_apply(event=_event("deliver-1", "order.delivered"))
    assert again.status == "skipped" and again.reason == "The customer cannot be reached on telegram inbox (Telegram)."
    assert customer.timeline.filter(ref_type="journeys.event_message").count() == 2


def test_a_customer_who_never_wrote_is_skipped(canned):
    EventMessageRule.objects.create(name="Shipped", event_type="order.shipped", canned_response=canned)
    [dispatch] = rules.event_rules_apply(event=_event())
    assert (dispatch.status, dispatch.reason) == ("skipped", "The customer has never written to us and the rule names no inbox.")


def test_posting_the_event_to_the_api_runs_the_rule_once(client, supervisor, canned, monkeypatch,
                                                          django_capture_on_commit_callbacks):
    from channels_app import tasks as channel_tasks

    monkeypatch.setattr(channel_tasks.messages_deliver_drain_task, "delay", lambda *a, **k: None)  # no provider call
    _whatsapp_customer(last_wrote_hours_ago=2)
    EventMessageRule.objects.create(name="Shipped", event_type="order.shipped", canned_response=canned)
    client.force_login(supervisor)
    body = {"id": "shop-981", "type": "order.shipped", "customer": {"email": "dewi@mail.test"},
            "occurred_at": timezone.now().isoformat(), "properties": {"order_id": "INV-9", "courier": "SiCepat"}}

    with django_capture_on_commit_callbacks(execute=True):
        assert client.post("/api/v1/events/", body, content_type="application/json").status_code == 201
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post("/api/v1/events/", body, content_type="application/json").status_code == 200

    assert EventMessageDispatch.objects.get().status == "sent"
    assert list(Message.objects.filter(direction="outbound").values_list("content", flat=True)) == [
        "Hi Dewi, order INV-9 is on its way (SiCepat). {{event.unknown}}"]
