"""Conversations follow the customer across channels; replies go out on the last channel."""
from __future__ import annotations

import datetime as dt
import json
import time

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.exceptions import ValidationError
from django.db import IntegrityError
from django.utils import timezone

from accounts.models import Availability
from channels_app.models import Conversation, LiveEvent, Message, WebhookEvent
from channels_app.services import (
    conversation_assign,
    conversation_continue,
    conversation_status_set,
    message_create_outbound,
    webhook_event_process,
)
from customers.models import Customer
from customers.services import identity_add
from tests.accounts.factories import TeamFactory, add_to_team
from tests.channels_app.test_webhooks import (
    instagram_inbox,
    messaging,
    post_meta,
    post_telegram,
    post_whatsapp,
    telegram_inbox,
    telegram_update,
    wa_text,
    whatsapp_inbox,
)

pytestmark = pytest.mark.django_db

WA_ID = "6281234567890"
PHONE = "+6281234567890"


def now_ts() -> int:
    return int(time.time())


def test_customer_on_whatsapp_then_instagram_then_telegram_has_one_conversation_and_reply_goes_to_telegram(
    client, agent, provider_server, django_capture_on_commit_callbacks
):
    team = TeamFactory()
    add_to_team(agent, team)
    wa = whatsapp_inbox(api_base_url=provider_server.url, team=team)
    ig = instagram_inbox(api_base_url=provider_server.url, team=team)
    tg = telegram_inbox(api_base_url=provider_server.url, team=team)

    # 1. WhatsApp: a new customer and a new conversation.
    with django_capture_on_commit_callbacks(execute=True):
        assert post_whatsapp(client, wa, wa_text(wa_id=WA_ID, msg_id="wamid.1", text="Mau pesan", timestamp=now_ts() - 60)).status_code == 200
    customer = Customer.objects.get()
    # An agent records the customer's Instagram and Telegram accounts on the profile.
    identity_add(customer=customer, kind="instagram", value="990011", scope=str(ig.uuid), verified=True)
    identity_add(customer=customer, kind="telegram", value="48213377", scope=str(tg.uuid), verified=True)

    # 2. Instagram DM, 3. Telegram message: same customer, same conversation.
    with django_capture_on_commit_callbacks(execute=True):
        body = messaging(obj="instagram", sender="990011", mid="ig.mid.1", text="Sudah kirim DM",
                         recipient="17841400000001", ts=(now_ts() - 30) * 1000)
        assert post_meta(client, ig, body, "ig-app-secret").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        body = telegram_update(update_id=1, user_id=48213377, message_id=12, text="Ini dari Telegram", date=now_ts() - 10)
        assert post_telegram(client, tg, body).status_code == 200

    conversation = Conversation.objects.get()
    assert Customer.objects.count() == 1
    assert conversation.customer_id == customer.pk
    assert list(conversation.messages.order_by("created_at").values_list("inbox__kind", "content")) == [
        ("whatsapp", "Mau pesan"), ("instagram", "Sudah kirim DM"), ("telegram", "Ini dari Telegram")]
    assert conversation.last_inbox_id == tg.pk
    assert set(conversation.inboxes.values_list("kind", flat=True)) == {"whatsapp", "instagram", "telegram"}
    assert customer.timeline.filter(kind="channel_switched").count() == 2

    # The reply goes out on Telegram, the channel the customer last wrote from.
    provider_server.respond(200, json_body={"ok": True, "result": {"message_id": 13, "chat": {"id": 48213377}}})
    with django_capture_on_commit_callbacks(execute=True):
        reply = message_create_outbound(conversation=conversation, author=agent, content="Baik, kami proses")

    reply.refresh_from_db()
    assert (reply.inbox_id, reply.status, reply.provider_message_id) == (tg.pk, "sent", "48213377:13")
    request = provider_server.last
    assert (request.method, request.path) == ("POST", "/bot123456789:AAEtestBotTokenABCDEFGHIJ_klmnop/sendMessage")
    assert request.json() == {"chat_id": "48213377", "text": "Baik, kami proses"}


def test_agent_may_pick_another_channel_the_customer_is_reachable_on(client, agent, provider_server, django_capture_on_commit_callbacks):
    wa = whatsapp_inbox(api_base_url=provider_server.url)
    tg = telegram_inbox(api_base_url=provider_server.url)
    with django_capture_on_commit_callbacks(execute=True):
        post_whatsapp(client, wa, wa_text(wa_id=WA_ID, msg_id="wamid.1", timestamp=now_ts() - 60))
    customer = Customer.objects.get()
    identity_add(customer=customer, kind="telegram", value="48213377", scope=str(tg.uuid), verified=True)
    with django_capture_on_commit_callbacks(execute=True):
        post_telegram(client, tg, telegram_update(update_id=1, user_id=48213377, message_id=1, text="hi", date=now_ts() - 5))
    conversation = Conversation.objects.get()
    provider_server.respond(200, json_body={"messaging_product": "whatsapp", "contacts": [{"input": WA_ID, "wa_id": WA_ID}],
                                            "messages": [{"id": "wamid.OUT1"}]})

    with django_capture_on_commit_callbacks(execute=True):
        reply = message_create_outbound(conversation=conversation, author=agent, content="Lewat WhatsApp", inbox=wa)

    reply.refresh_from_db()
    assert (reply.inbox_id, reply.status, reply.provider_message_id) == (wa.pk, "sent", "wamid.OUT1")
    request = provider_server.last
    assert request.path == "/v26.0/277321005464405/messages"
    assert request.headers["authorization"] == "Bearer EAAtest-access-token-0001"
    assert request.json() == {"messaging_product": "whatsapp", "recipient_type": "individual", "to": WA_ID,
                              "type": "text", "text": {"preview_url": False, "body": "Lewat WhatsApp"}}


def test_reply_on_a_channel_where_the_customer_is_unknown_is_refused(client, agent, django_capture_on_commit_callbacks):
    wa = whatsapp_inbox()
    ig = instagram_inbox()
    with django_capture_on_commit_callbacks(execute=True):
        post_whatsapp(client, wa, wa_text(timestamp=now_ts()))
    conversation = Conversation.objects.get()

    with pytest.raises(ValidationError) as excinfo:
        message_create_outbound(conversation=conversation, author=agent, content="x", inbox=ig)

    assert "cannot be reached" in excinfo.value.message_dict["inbox"][0]
    assert Message.objects.filter(direction="outbound").count() == 0


def test_whatsapp_reply_outside_the_24_hour_window_is_blocked_with_the_reason(client, agent, django_capture_on_commit_callbacks):
    wa = whatsapp_inbox()
    with django_capture_on_commit_callbacks(execute=True):
        post_whatsapp(client, wa, wa_text(timestamp=now_ts() - 25 * 3600))
    conversation = Conversation.objects.get()

    with pytest.raises(ValidationError) as excinfo:
        message_create_outbound(conversation=conversation, author=agent, content="Halo lagi")

    assert "within 24 hours" in excinfo.value.message_dict["content"][0]


def test_retryable_send_error_is_retried_then_sent(client, agent, provider_server, django_capture_on_commit_callbacks):
    wa = whatsapp_inbox(api_base_url=provider_server.url)
    with django_capture_on_commit_callbacks(execute=True):
        post_whatsapp(client, wa, wa_text(timestamp=now_ts()))
    conversation = Conversation.objects.get()
    provider_server.respond(503, json_body={"error": {"message": "Service unavailable", "code": 131016}})
    provider_server.respond(200, json_body={"messages": [{"id": "wamid.RETRIED"}]})

    with django_capture_on_commit_callbacks(execute=True):
        reply = message_create_outbound(conversation=conversation, author=agent, content="Coba lagi")

    reply.refresh_from_db()
    assert (reply.status, reply.provider_message_id, reply.data["attempts"]) == ("sent", "wamid.RETRIED", 1)
    assert len(provider_server.requests) == 2


def test_permanent_send_error_marks_the_message_failed_with_the_reason(client, agent, provider_server, django_capture_on_commit_callbacks):
    wa = whatsapp_inbox(api_base_url=provider_server.url)
    with django_capture_on_commit_callbacks(execute=True):
        post_whatsapp(client, wa, wa_text(timestamp=now_ts()))
    conversation = Conversation.objects.get()
    provider_server.respond(400, json_body={"error": {"message": "Re-engagement message", "code": 131047,
                                                      "error_data": {"details": "more than 24 hours"}}})

    with django_capture_on_commit_callbacks(execute=True):
        reply = message_create_outbound(conversation=conversation, author=agent, content="x")

    reply.refresh_from_db()
    assert reply.status == "failed"
    assert reply.error_code == "131047"
    assert reply.error_title.startswith("The WhatsApp 24-hour customer-service window is closed")
    assert len(provider_server.requests) == 1


def test_retryable_errors_give_up_after_the_maximum_attempts(client, agent, provider_server, settings, django_capture_on_commit_callbacks):
    settings.MESSAGE_DELIVER_MAX_ATTEMPTS = 3
    wa = whatsapp_inbox(api_base_url=provider_server.url)
    with django_capture_on_commit_callbacks(execute=True):
        post_whatsapp(client, wa, wa_text(timestamp=now_ts()))
    provider_server.default.status = 500
    provider_server.default.body = b'{"error": {"message": "Something went wrong", "code": 131000}}'

    with django_capture_on_commit_callbacks(execute=True):
        reply = message_create_outbound(conversation=Conversation.objects.get(), author=agent, content="x")

    reply.refresh_from_db()
    assert reply.status == "failed"
    assert reply.error_code == "131000"
    assert len(provider_server.requests) == 3


def test_deliver_task_does_not_send_a_message_that_is_no_longer_queued(client, agent, provider_server, django_capture_on_commit_callbacks):
    from channels_app.tasks import message_deliver_task

    wa = whatsapp_inbox(api_base_url=provider_server.url)
    with django_capture_on_commit_callbacks(execute=True):
        post_whatsapp(client, wa, wa_text(timestamp=now_ts()))
    provider_server.respond(200, json_body={"messages": [{"id": "wamid.ONCE"}]})
    with django_capture_on_commit_callbacks(execute=True):
        reply = message_create_outbound(conversation=Conversation.objects.get(), author=agent, content="x")

    message_deliver_task.delay(reply.pk)  # a redelivered task

    assert len(provider_server.requests) == 1
    reply.refresh_from_db()
    assert reply.status == "sent"


def test_line_push_carries_the_message_uuid_as_retry_key(agent, provider_server, django_capture_on_commit_callbacks):
    from channels_app.services import inbox_create

    line = inbox_create(name="LINE", kind="line", config={"channel_access_token": "tok-line-0001",
                                                          "channel_secret": "s3cret-line", "api_base_url": provider_server.url})
    customer = Customer.objects.create(display_name="Ayu")
    identity_add(customer=customer, kind="line", value="U4af4980629", scope=str(line.uuid), verified=True)
    conversation = conversation_continue(customer=customer, inbox=line).conversation
    provider_server.respond(200, json_body={"sentMessages": [{"id": "461230966842064897", "quoteToken": "x"}]})

    with django_capture_on_commit_callbacks(execute=True):
        reply = message_create_outbound(conversation=conversation, author=agent, content="Halo Ayu")

    reply.refresh_from_db()
    assert (reply.status, reply.provider_message_id) == ("sent", "461230966842064897")
    assert provider_server.last.path == "/v2/bot/message/push"
    assert provider_server.last.headers["x-line-retry-key"] == str(reply.uuid)
    assert provider_server.last.json() == {"to": "U4af4980629", "messages": [{"type": "text", "text": "Halo Ayu"}]}


def test_private_note_is_never_sent(client, agent, provider_server, django_capture_on_commit_callbacks):
    wa = whatsapp_inbox(api_base_url=provider_server.url)
    with django_capture_on_commit_callbacks(execute=True):
        post_whatsapp(client, wa, wa_text(timestamp=now_ts()))
    customer = Customer.objects.get()

    with django_capture_on_commit_callbacks(execute=True):
        note = message_create_outbound(conversation=Conversation.objects.get(), author=agent, content="VIP", private=True)

    assert note.private is True
    assert provider_server.requests == []
    assert not customer.timeline.filter(ref_type="channels.message", ref_id=str(note.pk)).exists()


# --- continuity ---------------------------------------------------------------------------


def _customer_and_inbox():
    inbox = whatsapp_inbox()
    return Customer.objects.create(display_name="Budi"), inbox


def test_inbound_continues_the_unresolved_conversation_and_reopens_snoozed():
    customer, inbox = _customer_and_inbox()
    first = conversation_continue(customer=customer, inbox=inbox)
    conversation_status_set(conversation=first.conversation, status="snoozed", actor=None,
                            snoozed_until=timezone.now() + dt.timedelta(hours=2))

    again = conversation_continue(customer=customer, inbox=inbox)

    assert (first.created, again.created, again.conversation.pk) == (True, False, first.conversation.pk)
    again.conversation.refresh_from_db()
    assert (again.conversation.status, again.conversation.snoozed_until) == ("open", None)


def test_resolved_within_the_window_is_reopened(settings):
    settings.CONVERSATION_REOPEN_WINDOW_HOURS = 24
    customer, inbox = _customer_and_inbox()
    conversation = conversation_continue(customer=customer, inbox=inbox).conversation
    conversation_status_set(conversation=conversation, status="resolved", actor=None)

    result = conversation_continue(customer=customer, inbox=inbox, at=timezone.now() + dt.timedelta(hours=23))

    assert (result.reopened, result.created, result.conversation.pk) == (True, False, conversation.pk)
    result.conversation.refresh_from_db()
    assert (result.conversation.status, result.conversation.resolved_at) == ("open", None)


def test_resolved_outside_the_window_starts_a_new_conversation(settings):
    settings.CONVERSATION_REOPEN_WINDOW_HOURS = 2
    customer, inbox = _customer_and_inbox()
    conversation = conversation_continue(customer=customer, inbox=inbox).conversation
    conversation_status_set(conversation=conversation, status="resolved", actor=None)

    result = conversation_continue(customer=customer, inbox=inbox, at=timezone.now() + dt.timedelta(hours=3))

    assert result.created is True
    assert result.conversation.pk != conversation.pk
    assert Conversation.objects.filter(customer=customer).count() == 2


def test_database_allows_only_one_unresolved_conversation_per_customer():
    customer, inbox = _customer_and_inbox()
    Conversation.objects.create(customer=customer, last_inbox=inbox)

    with pytest.raises(IntegrityError):
        Conversation.objects.create(customer=customer, last_inbox=inbox, status="pending")


def test_reopening_a_resolved_conversation_while_another_is_open_is_refused():
    customer, inbox = _customer_and_inbox()
    old = Conversation.objects.create(customer=customer, last_inbox=inbox, status="resolved", resolved_at=timezone.now())
    Conversation.objects.create(customer=customer, last_inbox=inbox)

    with pytest.raises(ValidationError):
        conversation_status_set(conversation=old, status="open", actor=None)


def test_snooze_needs_a_future_time():
    customer, inbox = _customer_and_inbox()
    conversation = conversation_continue(customer=customer, inbox=inbox).conversation

    with pytest.raises(ValidationError):
        conversation_status_set(conversation=conversation, status="snoozed", actor=None)


# --- realtime and assignment --------------------------------------------------------------


def _listen(group: str) -> str:
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(group, channel)
    return channel


def _received(channel: str) -> list[dict]:
    layer = get_channel_layer()
    out = []
    while True:
        try:
            out.append(async_to_sync(_receive_nowait)(layer, channel))
        except TimeoutError:
            return out


async def _receive_nowait(layer, channel):
    import asyncio

    return await asyncio.wait_for(layer.receive(channel), timeout=0.05)


def test_new_message_is_pushed_to_the_online_agent_it_was_auto_assigned_to_only(
    client, make_user, django_capture_on_commit_callbacks
):
    team = TeamFactory()
    online = make_user(availability=Availability.ONLINE)
    offline = make_user(availability=Availability.OFFLINE)
    outsider = make_user(availability=Availability.ONLINE)
    add_to_team(online, team)
    add_to_team(offline, team)
    inbox = whatsapp_inbox(team=team)
    mine, theirs, other = _listen(f"agent.{online.pk}"), _listen(f"agent.{offline.pk}"), _listen(f"agent.{outsider.pk}")

    with django_capture_on_commit_callbacks(execute=True):
        post_whatsapp(client, inbox, wa_text(text="Tolong dibantu"))

    conversation = Conversation.objects.get()
    assert (conversation.assignee_id, conversation.team_id) == (online.pk, team.pk)
    events = _received(mine)
    assert [(e["type"], e["payload"]["event"]) for e in events] == [
        ("agent.event", "channels.conversation.assigned"), ("agent.event", "channels.message.created")]
    assert events[0]["payload"]["id"] < events[1]["payload"]["id"]
    payload = events[1]["payload"]
    assert payload["message"]["content"] == "Tolong dibantu"
    assert payload["message"]["conversation"] == conversation.pk
    assert isinstance(payload["id"], int)
    assert _received(theirs) == []
    assert _received(other) == []


def test_unassigned_conversation_is_pushed_once_to_its_team_group(client, make_user, django_capture_on_commit_callbacks):
    team, other_team = TeamFactory(), TeamFactory()
    full = make_user(availability=Availability.ONLINE, max_concurrent_conversations=1)
    add_to_team(full, team)
    inbox = whatsapp_inbox(team=team)
    Conversation.objects.create(customer=Customer.objects.create(), assignee=full, team=team)  # at capacity
    team_channel, personal, others = _listen(f"team.{team.pk}"), _listen(f"agent.{full.pk}"), _listen(f"team.{other_team.pk}")

    with django_capture_on_commit_callbacks(execute=True):
        post_whatsapp(client, inbox, wa_text())

    conversation = Conversation.objects.exclude(assignee=full).get()
    assert conversation.assignee_id is None
    assert [e["payload"]["event"] for e in _received(team_channel)] == ["channels.message.created"]
    assert _received(personal) == [] and _received(others) == []
    stored = LiveEvent.objects.get(event="channels.message.created")
    assert (stored.team_id, stored.conversation_id) == (team.pk, conversation.pk)


def test_round_robin_gives_the_least_loaded_online_agent_and_respects_capacity(make_user):
    team = TeamFactory()
    a = make_user(availability=Availability.ONLINE, max_concurrent_conversations=2)
    b = make_user(availability=Availability.ONLINE, max_concurrent_conversations=1)
    add_to_team(a, team)
    add_to_team(b, team)
    inbox = whatsapp_inbox(team=team)

    assignees = [conversation_continue(customer=Customer.objects.create(), inbox=inbox).conversation.assignee_id
                 for _ in range(4)]

    assert sorted(assignees[:3]) == sorted([a.pk, a.pk, b.pk])
    assert assignees[0] != assignees[1]  # alternate while loads are equal
    assert assignees[3] is None  # everybody is at capacity: it waits in the team queue


def test_opening_conversations_together_assigns_them_as_one_after_the_other_would(make_user):
    """conversations_open (the ingest drain's batch) chooses assignees in memory: the same agents,
    in the same order, as conversation_continue called for each customer in turn, whatever the
    agents' loads, capacities and last assignments."""
    from channels_app.services.conversations import conversation_build, conversations_open

    now = timezone.now()
    results = []
    for together in (False, True):
        team = TeamFactory()
        agents = []
        # (capacity, unresolved assigned now, minutes since the last assignment or None)
        for capacity, load, last in ((3, 1, 30), (2, 0, None), (4, 1, 90), (1, 1, 5), (3, 0, 10), (2, 0, 10)):
            agent = make_user(availability=Availability.ONLINE, max_concurrent_conversations=capacity)
            add_to_team(agent, team)
            agents.append(agent.pk)
            if last is not None:
                Conversation.objects.create(customer=Customer.objects.create(), team=team, assignee=agent,
                                            assigned_at=now - dt.timedelta(minutes=last),
                                            status="open" if load else "resolved", resolved_at=None if load else now)
        inbox = whatsapp_inbox(team=team)
        customers = [Customer.objects.create() for _ in range(14)]
        if together:
            opened = [conversation_build(customer=c, inbox=inbox, at=now) for c in customers]
            conversations_open(opened)
            chosen = [Conversation.objects.get(pk=c.pk).assignee_id for c in opened]
        else:
            chosen = [conversation_continue(customer=c, inbox=inbox, at=now).conversation.assignee_id for c in customers]
        results.append([agents.index(pk) if pk else None for pk in chosen])

    one_by_one, together = results
    assert together == one_by_one
    assert one_by_one.count(None) == 2  # twelve free places for fourteen conversations
    assert 3 not in one_by_one  # that agent is at capacity


def test_resolving_frees_the_agent_who_gets_the_oldest_waiting_conversation(make_user):
    team = TeamFactory()
    a = make_user(availability=Availability.ONLINE, max_concurrent_conversations=1)
    add_to_team(a, team)
    inbox = whatsapp_inbox(team=team)
    first = conversation_continue(customer=Customer.objects.create(), inbox=inbox).conversation
    waiting_old = conversation_continue(customer=Customer.objects.create(), inbox=inbox).conversation
    conversation_continue(customer=Customer.objects.create(), inbox=inbox)
    assert (first.assignee_id, waiting_old.assignee_id) == (a.pk, None)

    conversation_status_set(conversation=first, status="resolved", actor=a)

    waiting_old.refresh_from_db()
    assert waiting_old.assignee_id == a.pk
    assert Conversation.objects.filter(assignee__isnull=True).count() == 1


def test_manual_assignment_and_transfer_to_a_team(make_user, supervisor):
    team, other_team = TeamFactory(), TeamFactory()
    a = make_user()
    add_to_team(a, team)
    customer, inbox = _customer_and_inbox()
    conversation = conversation_continue(customer=customer, inbox=inbox).conversation

    conversation = conversation_assign(conversation=conversation, actor=supervisor, agent=a)
    assert (conversation.assignee_id, conversation.team_id) == (a.pk, team.pk)

    conversation = conversation_assign(conversation=conversation, actor=supervisor, team=other_team)
    assert (conversation.assignee_id, conversation.team_id) == (None, other_team.pk)
    assert customer.timeline.filter(kind="conversation_assigned").count() == 1


def test_parked_event_does_not_run_again_until_replayed():
    inbox = whatsapp_inbox()
    event = WebhookEvent.objects.create(inbox=inbox, body=json.dumps({"object": "x"}).encode(), status="parked", attempts=5)

    result = webhook_event_process(event_id=event.pk)

    assert (result.status, result.attempts) == ("parked", 5)


def test_backlog_is_assigned_when_an_agent_comes_online(make_user):
    from channels_app.services.conversations import conversations_assign_backlog

    team = TeamFactory()
    a = make_user(availability=Availability.OFFLINE, max_concurrent_conversations=2)
    add_to_team(a, team)
    inbox = whatsapp_inbox(team=team)
    waiting = [conversation_continue(customer=Customer.objects.create(), inbox=inbox).conversation for _ in range(3)]
    assert Conversation.objects.filter(assignee__isnull=True).count() == 3
    a.availability = Availability.ONLINE
    a.save()

    assert conversations_assign_backlog() == 2

    assert list(Conversation.objects.filter(assignee=a).order_by("id").values_list("pk", flat=True)) == [
        waiting[0].pk, waiting[1].pk]


def test_an_agent_may_assign_only_within_their_teams(make_user):
    team, other = TeamFactory(), TeamFactory()
    alice, bob, carol = make_user(), make_user(), make_user()
    add_to_team(alice, team)
    add_to_team(bob, team)
    add_to_team(carol, other)
    customer, inbox = _customer_and_inbox()
    conversation = conversation_continue(customer=customer, inbox=inbox).conversation

    assert conversation_assign(conversation=conversation, actor=alice, agent=bob).assignee_id == bob.pk
    with pytest.raises(ValidationError):
        conversation_assign(conversation=conversation, actor=alice, agent=carol)


def test_mention_in_a_private_note_notifies_the_mentioned_agent_who_can_see_it(make_user, django_capture_on_commit_callbacks):
    team = TeamFactory()
    author = make_user(email="sari@example.com")
    budi = make_user(email="budi@example.com")
    outsider = make_user(email="rizky@example.com")
    add_to_team(author, team)
    add_to_team(budi, team)
    customer, inbox = _customer_and_inbox()
    conversation = conversation_continue(customer=customer, inbox=inbox).conversation
    conversation_assign(conversation=conversation, actor=None, team=team)
    budi_socket, outsider_socket = _listen(f"agent.{budi.pk}"), _listen(f"agent.{outsider.pk}")

    with django_capture_on_commit_callbacks(execute=True):
        note = message_create_outbound(conversation=conversation, author=author, private=True,
                                       content="@budi tolong cek stok, cc @rizky dan email a@b.com")

    note.refresh_from_db()
    assert note.data["mentions"] == [budi.pk]
    events = [e["payload"] for e in _received(budi_socket)]
    assert [e["event"] for e in events if e["event"] == "channels.mention"] == ["channels.mention"]
    assert [e["event"] for e in _received(outsider_socket)] == []


def test_events_also_reach_sockets_that_have_the_conversation_open(client, supervisor, django_capture_on_commit_callbacks):
    inbox = whatsapp_inbox()
    with django_capture_on_commit_callbacks(execute=True):
        post_whatsapp(client, inbox, wa_text(text="pertama", timestamp=now_ts()))
    conversation = Conversation.objects.get()
    watching = _listen(f"conversation.{conversation.pk}")

    with django_capture_on_commit_callbacks(execute=True):
        message_create_outbound(conversation=conversation, author=supervisor, content="catatan", private=True)

    payloads = [e["payload"] for e in _received(watching)]
    assert [(p["event"], p["message"]["content"]) for p in payloads] == [("channels.message.created", "catatan")]


def test_template_may_be_sent_outside_the_whatsapp_window(client, agent, provider_server, django_capture_on_commit_callbacks):
    wa = whatsapp_inbox(api_base_url=provider_server.url)
    with django_capture_on_commit_callbacks(execute=True):
        post_whatsapp(client, wa, wa_text(timestamp=now_ts() - 3 * 24 * 3600))
    conversation = Conversation.objects.get()
    provider_server.respond(200, json_body={"messages": [{"id": "wamid.TPL"}]})
    template = {"name": "order_update", "language": "id",
                "components": [{"type": "body", "parameters": [{"type": "text", "text": "INV-1"}]}]}

    with django_capture_on_commit_callbacks(execute=True):
        message = message_create_outbound(conversation=conversation, author=agent, content="", template=template)

    message.refresh_from_db()
    assert (message.status, message.provider_message_id, message.content) == ("sent", "wamid.TPL", "[template order_update]")
    assert provider_server.last.json() == {
        "messaging_product": "whatsapp", "recipient_type": "individual", "to": WA_ID, "type": "template",
        "template": {"name": "order_update", "language": {"code": "id"}, "components": template["components"]}}


def test_broker_outage_when_replying_keeps_the_reply_and_the_sweeper_sends_it(
    client, agent, provider_server, django_capture_on_commit_callbacks
):
    from unittest import mock

    from channels_app.services.messages import messages_requeue_stuck

    wa = whatsapp_inbox(api_base_url=provider_server.url)
    with django_capture_on_commit_callbacks(execute=True):
        post_whatsapp(client, wa, wa_text(timestamp=now_ts()))
    with mock.patch("channels_app.tasks.messages_deliver_drain_task.delay", side_effect=ConnectionError("broker down")):
        with django_capture_on_commit_callbacks(execute=True):
            reply = message_create_outbound(conversation=Conversation.objects.get(), author=agent, content="Siap")
    reply.refresh_from_db()
    assert reply.status == "queued"
    provider_server.respond(200, json_body={"messages": [{"id": "wamid.SWEPT"}]})

    assert messages_requeue_stuck() == 0  # not stuck yet
    assert messages_requeue_stuck(now=timezone.now() + dt.timedelta(minutes=11)) == 1

    reply.refresh_from_db()
    assert (reply.status, reply.provider_message_id) == ("sent", "wamid.SWEPT")
    assert "sending_since" not in reply.data
    assert len(provider_server.requests) == 1


def test_a_message_being_sent_by_another_worker_is_not_sent_again(client, agent, provider_server,
                                                                    django_capture_on_commit_callbacks):
    from channels_app.services import message_deliver

    wa = whatsapp_inbox(api_base_url=provider_server.url)
    with django_capture_on_commit_callbacks(execute=True):
        post_whatsapp(client, wa, wa_text(timestamp=now_ts()))
    conversation = Conversation.objects.get()
    in_flight = Message.objects.create(conversation=conversation, inbox=wa, direction="outbound", sender="agent",
                                       content="x", status="queued",
                                       data={"to": WA_ID, "sending_since": timezone.now().isoformat()})
    stale = Message.objects.create(conversation=conversation, inbox=wa, direction="outbound", sender="agent",
                                   content="y", status="queued",
                                   data={"to": WA_ID, "sending_since": (timezone.now() - dt.timedelta(minutes=11)).isoformat()})
    provider_server.respond(200, json_body={"messages": [{"id": "wamid.STALE"}]})

    assert message_deliver(message_id=in_flight.pk).message.status == "queued"
    assert message_deliver(message_id=stale.pk).message.status == "sent"
    assert len(provider_server.requests) == 1


def test_recording_a_send_writes_only_what_changed(client, agent, provider_server, django_capture_on_commit_callbacks):
    """The provider's answer updates the message's status columns, not its content or
    attachments, and the customer comes with the message (no query of its own)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from channels_app.services import message_deliver

    wa = whatsapp_inbox(api_base_url=provider_server.url)
    with django_capture_on_commit_callbacks(execute=True):
        post_whatsapp(client, wa, wa_text(timestamp=now_ts()))
    reply = Message.objects.create(conversation=Conversation.objects.get(), inbox=wa, direction="outbound",
                                   sender="agent", content="Pesanan sudah dikirim", status="queued",
                                   data={"to": WA_ID})
    provider_server.respond(200, json_body={"messages": [{"id": "wamid.ONLY"}]})

    with CaptureQueriesContext(connection) as queries:
        assert message_deliver(message_id=reply.pk).message.status == "sent"

    updates = [q["sql"] for q in queries.captured_queries if q["sql"].startswith('UPDATE "channels_app_message"')]
    assert len(updates) == 2  # the claim, then the result
    assert all('"content"' not in sql and '"attachments"' not in sql for sql in updates)
    assert not [q for q in queries.captured_queries if q["sql"].startswith('SELECT "customers_customer"')]
    reply.refresh_from_db()
    assert (reply.status, reply.provider_message_id, reply.content) == ("sent", "wamid.ONLY", "Pesanan sudah dikirim")
    assert reply.sent_at is not None and "sending_since" not in reply.data


def test_a_reply_goes_to_the_verified_then_most_recently_seen_address_scoped_to_the_inbox(db):
    """recipient_for: among the customer's identities of the inbox's kind (and, for page-scoped
    ids, of this inbox's scope) the verified one first, then the most recently seen."""
    import datetime as dt

    from django.utils import timezone

    from channels_app.services.messages import recipient_for
    from customers.models import Customer, Identity
    from tests.channels_app.test_webhooks import messenger_inbox, whatsapp_inbox

    customer = Customer.objects.create(display_name="Budi")
    other = Customer.objects.create(display_name="Siti")
    wa, page = whatsapp_inbox(), messenger_inbox()
    now = timezone.now()
    Identity.objects.create(customer=other, kind="phone", value="+6281100000009", verified=True, last_seen_at=now)
    assert recipient_for(customer=customer, inbox=wa) == ""

    Identity.objects.create(customer=customer, kind="phone", value="+6281100000001", last_seen_at=now - dt.timedelta(days=9))
    Identity.objects.create(customer=customer, kind="phone", value="+6281100000002", last_seen_at=now)
    assert recipient_for(customer=customer, inbox=wa) == "+6281100000002"
    Identity.objects.create(customer=customer, kind="phone", value="+6281100000003", verified=True,
                            last_seen_at=now - dt.timedelta(days=30))
    assert recipient_for(customer=customer, inbox=wa) == "+6281100000003"

    Identity.objects.create(customer=customer, kind="messenger", value="psid-other-page", scope="another-page")
    assert recipient_for(customer=customer, inbox=page) == ""
    Identity.objects.create(customer=customer, kind="messenger", value="psid-1", scope=str(page.uuid))
    assert recipient_for(customer=customer, inbox=page) == "psid-1"
