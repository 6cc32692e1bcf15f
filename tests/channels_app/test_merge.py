"""Conversations follow a customer merge (customers.merge_hooks)."""
from __future__ import annotations

import pytest

from channels_app.models import Conversation
from customers.models import Customer
from customers.services import customer_merge, customer_unmerge
from tests.channels_app.test_webhooks import whatsapp_inbox

pytestmark = pytest.mark.django_db


def test_merge_moves_conversations_to_the_survivor_and_unmerge_moves_them_back():
    inbox = whatsapp_inbox()
    survivor, merged = Customer.objects.create(), Customer.objects.create()
    kept = Conversation.objects.create(customer=survivor, last_inbox=inbox)
    moved = Conversation.objects.create(customer=merged, last_inbox=inbox, status="resolved")

    merge = customer_merge(survivor=survivor, merged=merged, actor=None)
    moved.refresh_from_db()
    assert moved.customer_id == survivor.pk
    assert kept.customer_id == survivor.pk

    customer_unmerge(merge=merge, actor=None)
    moved.refresh_from_db()
    assert moved.customer_id == merged.pk


def test_merging_two_customers_that_both_have_an_open_conversation(make_user):
    inbox = whatsapp_inbox()
    agent = make_user()
    survivor, merged = Customer.objects.create(), Customer.objects.create()
    kept = Conversation.objects.create(customer=survivor, last_inbox=inbox)
    folded = Conversation.objects.create(customer=merged, last_inbox=inbox, assignee=agent, status="pending")

    merge = customer_merge(survivor=survivor, merged=merged, actor=None)

    assert Conversation.objects.filter(customer=survivor).exclude(status="resolved").count() == 1
    folded.refresh_from_db()
    assert (folded.customer_id, folded.status) == (survivor.pk, "resolved")

    customer_unmerge(merge=merge, actor=None)

    folded.refresh_from_db(), kept.refresh_from_db()
    assert (folded.customer_id, folded.status, folded.resolved_at, folded.assignee_id) == (merged.pk, "pending", None, agent.pk)
    assert folded.messages.count() == 0
    assert (kept.customer_id, kept.status, kept.assignee_id) == (survivor.pk, "open", None)


def test_merge_prepare_folds_the_second_open_conversation_so_the_merge_succeeds(make_user):
    from channels_app.services.conversations import conversations_merge_prepare

    inbox = whatsapp_inbox()
    agent = make_user()
    survivor, merged = Customer.objects.create(), Customer.objects.create()
    kept = Conversation.objects.create(customer=survivor, last_inbox=inbox)
    folded = Conversation.objects.create(customer=merged, last_inbox=inbox, assignee=agent)

    assert conversations_merge_prepare(survivor=survivor, merged=merged) == folded
    customer_merge(survivor=survivor, merged=merged, actor=None)

    folded.refresh_from_db()
    kept.refresh_from_db()
    assert (folded.customer_id, folded.status) == (survivor.pk, "resolved")
    assert folded.messages.get().content == f"Profiles merged: this conversation continues in #{kept.pk}."
    assert (kept.status, kept.assignee_id) == ("open", agent.pk)
    assert Conversation.objects.filter(customer=survivor).exclude(status="resolved").count() == 1
