"""Customer events: identity resolution, idempotency, type meanings, timeline, stage rules."""
from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from customers.models import Customer, Identity, TimelineEntry
from journeys.models import CustomerEvent, EventTypeMapping, StageChange, StageRule
from journeys.services import customer_event_record
from tests.journeys.factories import at

pytestmark = pytest.mark.django_db


def _event(event_id: str, event_type: str, when: dt.datetime, email: str = "rina@mail.test", **props):
    return customer_event_record(event_id=event_id, event_type=event_type, occurred_at=when, email=email, properties=props)


def test_default_mappings_are_seeded_by_the_migration():
    assert dict(EventTypeMapping.objects.values_list("event_type", "meaning")) == {
        "order.paid": "purchase",
        "order.completed": "purchase",
        "lead.created": "lead",
        "signup": "lead",
        "referral.created": "referral",
        "campaign.clicked": "campaign_click",
    }
    assert StageRule.objects.get(code="retention_repeat_purchase").window_days == 180


def test_an_event_creates_the_customer_with_business_asserted_identities_and_a_timeline_entry():
    result = customer_event_record(
        event_id="evt-1", event_type="signup", occurred_at=at(), email="Rina@Mail.test", phone="0812-3456-7890",
        external_id="shop-42", properties={"plan": "basic", "channel": "website"},
    )

    assert result.created is True
    event = result.event
    assert event.meaning == "lead" and event.channel == "website" and event.customer_created is True
    identities = set(Identity.objects.filter(customer=event.customer).values_list("kind", "value", "origin"))
    assert identities == {("email", "rina@mail.test", "business"), ("phone", "+6281234567890", "business"), ("external_id", "shop-42", "business")}
    entry = TimelineEntry.objects.get(customer=event.customer, kind="event")
    assert (entry.title, entry.ref_type, entry.ref_id, entry.channel) == ("signup", "journeys.event", str(event.pk), "website")


def test_a_replayed_event_id_returns_the_original_and_stores_nothing_new():
    first = _event("evt-1", "order.paid", at())
    counts = (CustomerEvent.objects.count(), Customer.objects.count(), TimelineEntry.objects.count(), StageChange.objects.count())

    replay = customer_event_record(event_id="evt-1", event_type="lead.created", occurred_at=at(days=3), email="other@mail.test")

    assert replay.created is False
    assert replay.event.pk == first.event.pk and replay.event.type == "order.paid"
    assert (CustomerEvent.objects.count(), Customer.objects.count(), TimelineEntry.objects.count(), StageChange.objects.count()) == counts


def test_an_event_for_a_known_email_lands_on_that_customer():
    first = _event("a", "signup", at())
    second = _event("b", "order.paid", at(days=1))
    assert second.event.customer_id == first.event.customer_id
    assert second.event.customer_created is False


@pytest.mark.parametrize("kwargs, field", [
    ({"event_id": "", "event_type": "signup", "email": "a@b.test"}, "id"),
    ({"event_id": "x", "event_type": "", "email": "a@b.test"}, "type"),
    ({"event_id": "x", "event_type": "signup"}, "customer"),
])
def test_an_incomplete_event_is_refused(kwargs, field):
    with pytest.raises(ValidationError) as excinfo:
        customer_event_record(occurred_at=at(), **kwargs)
    assert field in excinfo.value.message_dict
    assert CustomerEvent.objects.count() == 0


def test_an_unmapped_type_is_stored_without_meaning_and_moves_nothing():
    result = _event("e", "cart.viewed", at())
    assert result.event.meaning == ""
    assert StageChange.objects.count() == 0
    assert result.event.customer.lifecycle_stage == "reach"


def test_events_drive_a_customer_reach_to_loyalty_with_the_recorded_reasons():
    _event("1", "lead.created", at(), channel="instagram")
    _event("2", "order.paid", at(days=2), channel="whatsapp")
    _event("3", "order.completed", at(days=40))
    _event("4", "referral.created", at(days=50))

    customer = Customer.objects.get()
    assert customer.lifecycle_stage == "loyalty"
    history = list(StageChange.objects.filter(customer=customer).order_by("changed_at").values_list(
        "from_stage", "to_stage", "reason", "rule_code", "changed_at", "channel", "first_touch_channel", "last_touch_channel"))
    assert history == [
        ("reach", "acquisition", "rule", "acquisition_contact", at(), "instagram", "instagram", "instagram"),
        ("acquisition", "conversion", "rule", "conversion_first_purchase", at(days=2), "whatsapp", "instagram", "whatsapp"),
        ("conversion", "retention", "rule", "retention_repeat_purchase", at(days=40), "whatsapp", "instagram", "whatsapp"),
        ("retention", "loyalty", "rule", "loyalty_promoter", at(days=50), "whatsapp", "instagram", "whatsapp"),
    ]
    assert StageChange.objects.get(to_stage="conversion").event.external_id == "2"
    assert TimelineEntry.objects.filter(customer=customer, kind="stage_changed").count() == 4


def test_a_purchase_outside_the_repeat_window_does_not_retain():
    _event("1", "order.paid", at())
    _event("2", "order.paid", at(days=181))
    assert Customer.objects.get().lifecycle_stage == "conversion"


def test_the_repeat_window_is_editable():
    StageRule.objects.filter(code="retention_repeat_purchase").update(window_days=10)
    _event("1", "order.paid", at())
    _event("2", "order.paid", at(days=11))
    assert Customer.objects.get().lifecycle_stage == "conversion"
    _event("3", "order.paid", at(days=20))
    assert Customer.objects.get().lifecycle_stage == "retention"


def test_a_switched_off_rule_does_not_fire():
    StageRule.objects.filter(code="acquisition_contact").update(is_active=False)
    _event("1", "signup", at())
    assert Customer.objects.get().lifecycle_stage == "reach"


def test_rules_never_move_a_customer_back():
    _event("1", "order.paid", at())
    _event("2", "order.paid", at(days=1))
    _event("3", "signup", at(days=2))
    assert Customer.objects.get().lifecycle_stage == "retention"
    assert not StageChange.objects.filter(to_stage="acquisition").exists()


def test_a_referral_before_retention_does_not_make_a_customer_loyal():
    _event("1", "order.paid", at())
    _event("2", "referral.created", at(days=1))
    assert Customer.objects.get().lifecycle_stage == "conversion"


def test_remapping_a_type_applies_to_new_events_only():
    first = _event("1", "trial.started", at())
    EventTypeMapping.objects.create(event_type="trial.started", meaning="lead")
    second = _event("2", "trial.started", at(days=1))
    first.event.refresh_from_db()
    assert (first.event.meaning, second.event.meaning) == ("", "lead")
    assert Customer.objects.get().lifecycle_stage == "acquisition"


def test_the_lapse_rule_is_off_by_default_and_moves_back_when_switched_on():
    from journeys.services import lifecycle_lapse

    _event("1", "order.paid", at())
    _event("2", "order.paid", at(days=10))
    assert Customer.objects.get().lifecycle_stage == "retention"
    later = at(days=400)
    assert lifecycle_lapse(now=later) == 0

    StageRule.objects.filter(code="lapse").update(is_active=True, window_days=365)
    assert lifecycle_lapse(now=at(days=370)) == 0  # last purchase 360 days before
    assert lifecycle_lapse(now=later) == 1
    change = StageChange.objects.order_by("-changed_at").first()
    assert (change.from_stage, change.to_stage, change.reason, change.rule_code) == ("retention", "conversion", "rule", "lapse")
    assert Customer.objects.get().lifecycle_stage == "conversion"
    assert lifecycle_lapse(now=later) == 0
