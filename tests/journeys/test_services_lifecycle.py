"""Lifecycle from channel activity: first inbound message → Acquisition; resolutions log;
explicit stage moves; history follows merges."""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from accounts.models import Role
from customers.models import Customer
from customers.services import customer_merge, customer_unmerge
from journeys import services
from journeys.models import ConversationResolution, StageChange
from tests.journeys import factories as f
from tests.journeys.factories import at

pytestmark = pytest.mark.django_db


def test_a_first_inbound_message_moves_a_reach_customer_to_acquisition_dated_at_that_message():
    ig, wa = f.inbox("instagram"), f.inbox("whatsapp")
    conv = f.conversation(inbox_=ig)
    f.message(conv, when=at(30), inbox_=wa)
    f.message(conv, when=at(10), inbox_=ig)
    silent = Customer.objects.create(display_name="never wrote")
    outbound_only = f.conversation(inbox_=wa)
    f.message(outbound_only, when=at(5), inbound=False)

    assert services.lifecycle_sync_from_messages() == 1
    assert services.lifecycle_sync_from_messages() == 0

    change = StageChange.objects.get()
    assert (change.customer_id, change.from_stage, change.to_stage, change.changed_at) == (conv.customer_id, "reach", "acquisition", at(10))
    assert (change.reason, change.rule_code, change.channel, change.first_touch_channel) == ("rule", "acquisition_contact", "instagram", "instagram")
    silent.refresh_from_db()
    assert silent.lifecycle_stage == "reach"


def test_customers_past_reach_are_not_touched_by_the_message_rule():
    conv = f.conversation(inbox_=f.inbox("whatsapp"), customer=Customer.objects.create(lifecycle_stage="conversion"))
    f.message(conv, when=at(0))
    assert services.lifecycle_sync_from_messages() == 0


def test_resolutions_sync_is_idempotent():
    conv = f.conversation(inbox_=f.inbox("whatsapp"))
    f.message(conv, when=at(0))
    f.resolve(conv, at(50))
    assert services.resolutions_sync() == 1
    assert services.resolutions_sync() == 0
    row = ConversationResolution.objects.get()
    assert (row.cycle_started_at, row.resolved_at, row.is_reopen) == (at(0), at(50), False)


def test_stage_set_for_an_agent_is_audited_and_may_go_back(make_user):
    user = make_user(Role.SUPERVISOR)
    customer = Customer.objects.create(lifecycle_stage="loyalty")
    change = services.stage_set(customer=customer, to_stage="retention", actor=user, reason="agent", note="complaint")
    customer.refresh_from_db()
    assert customer.lifecycle_stage == "retention"
    assert (change.reason, change.actor, change.note, change.rule) == ("agent", user, "complaint", None)


def test_stage_set_refuses_a_merged_profile(make_user):
    user = make_user(Role.SUPERVISOR)
    survivor, merged = Customer.objects.create(), Customer.objects.create()
    customer_merge(survivor=survivor, merged=merged, actor=user)
    with pytest.raises(ValidationError):
        services.stage_set(customer=merged, to_stage="loyalty", actor=user)


def test_stage_history_and_events_follow_a_merge_and_go_back_on_unmerge(make_user):
    user = make_user(Role.SUPERVISOR)
    services.customer_event_record(event_id="e1", event_type="signup", occurred_at=at(), email="m@mail.test")
    merged = Customer.objects.get()
    survivor = Customer.objects.create(display_name="survivor")

    merge = customer_merge(survivor=survivor, merged=merged, actor=user)
    assert StageChange.objects.get().customer_id == survivor.pk
    assert survivor.journey_events.count() == 1

    customer_unmerge(merge=merge, actor=user)
    assert StageChange.objects.get().customer_id == merged.pk


def test_rules_do_not_move_a_merged_away_profile():
    survivor = Customer.objects.create()
    merged = Customer.objects.create(merged_into=survivor)
    rule = services._rule("acquisition_contact")
    assert services.stage_advance(customer=merged, to_stage="acquisition", rule=rule, at=at()).customer_id == survivor.pk
    merged.refresh_from_db()
    assert merged.lifecycle_stage == "reach"


def test_a_resolution_reopened_before_the_sync_is_still_logged(make_user):
    from channels_app.services import conversation_status_set

    agent = make_user(Role.AGENT)
    conv = f.conversation(inbox_=f.inbox("whatsapp"), created_at=f.now())
    f.message(conv, when=f.now())
    conversation_status_set(conversation=conv, status="resolved", actor=agent)
    conversation_status_set(conversation=conv, status="open", actor=agent)  # reopened by hand
    conversation_status_set(conversation=conv, status="resolved", actor=agent)

    assert services.resolutions_sync() == 2
    assert services.resolutions_sync() == 0
    first, second = ConversationResolution.objects.order_by("resolved_at")
    assert (first.is_reopen, second.is_reopen) == (False, True)
    assert second.cycle_started_at == first.resolved_at  # no customer message: the cycle starts at the reopen
