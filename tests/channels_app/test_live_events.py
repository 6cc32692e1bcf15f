"""The stored live-event log: a socket that reconnects receives what it missed (only what its
agent may see, once), is told to refresh beyond the cap or the retention, and old rows are
pruned."""
from __future__ import annotations

import datetime as dt

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.db import transaction
from django.utils import timezone

from accounts.models import Role
from channels_app import realtime
from channels_app.models import LiveEvent, LiveEventRecipient
from channels_app.services import conversation_assign, conversation_status_set, message_create_outbound
from cxplatform.asgi import application
from tests.accounts.factories import TeamFactory, add_to_team
from tests.channels_app.test_consumers import session_headers

pytestmark = pytest.mark.django_db(transaction=True)


def _conversation(team):
    from tests.channels_app.test_api import _conversation as make

    return make(team=team)


def reconnect_and_resume(user, *, since: int, open_conversation: int | None = None) -> tuple[dict | None, dict]:
    """A fresh socket (the old one dropped): hello, re-open the conversation, resume."""
    headers = session_headers(user)

    async def scenario():
        socket = WebsocketCommunicator(application, "/ws/agent/", headers=headers)
        await socket.connect()
        await socket.receive_json_from(timeout=5)
        opened = None
        if open_conversation is not None:
            await socket.send_json_to({"type": "conversation.open", "conversation": open_conversation})
            opened = await socket.receive_json_from(timeout=5)
        await socket.send_json_to({"type": "resume", "since": since})
        answer = await socket.receive_json_from(timeout=5)
        await socket.disconnect()
        return opened, answer

    return async_to_sync(scenario)()


def hello_last_id(user) -> int:
    headers = session_headers(user)

    async def scenario():
        socket = WebsocketCommunicator(application, "/ws/agent/", headers=headers)
        await socket.connect()
        hello = await socket.receive_json_from(timeout=5)
        await socket.disconnect()
        return hello["last_id"]

    return async_to_sync(scenario)()


@pytest.fixture
def teams(make_user):
    support, sales = TeamFactory(name="Support"), TeamFactory(name="Sales")
    ayu = make_user(Role.AGENT, email="ayu@demo.test")
    budi = make_user(Role.AGENT, email="budi@demo.test")
    citra = make_user(Role.AGENT, email="citra@demo.test")
    add_to_team(ayu, support)
    add_to_team(citra, support)
    add_to_team(budi, sales)
    return support, sales, ayu, budi, citra


def test_publish_stores_the_event_and_pushes_its_row_id():
    event_id = realtime.publish("test.event", {"n": 1}, groups=["agent.1", "conversation.7", "visitor.secret-token"])

    row = LiveEvent.objects.get()
    assert row.pk == event_id
    assert (row.event, row.payload, row.conversation_id) == ("test.event", {"n": 1}, 7)
    assert row.groups == ["agent.1", "conversation.7"]  # the visitor's token is not stored
    assert list(LiveEventRecipient.objects.values_list("agent_id", flat=True)) == [1]


def test_a_rolled_back_change_leaves_no_event():
    with pytest.raises(RuntimeError), transaction.atomic():
        realtime.publish("test.event", {"n": 1}, groups=["agent.1"])
        raise RuntimeError

    assert LiveEvent.objects.count() == 0


def test_a_reconnecting_agent_receives_exactly_what_they_may_see_in_id_order(teams, supervisor):
    support, sales, ayu, budi, citra = teams
    mine = _conversation(support)
    theirs = _conversation(sales)
    since = realtime.publish("test.before", {}, groups=["agent.999999"])
    assert hello_last_id(ayu) == since

    # ... the socket dropped; meanwhile:
    conversation_assign(conversation=mine, actor=supervisor, agent=ayu)  # to agent.ayu + conversation.mine
    note = message_create_outbound(conversation=mine, author=citra, content="cek resi dulu", private=True)
    conversation_status_set(conversation=theirs, status="resolved", actor=supervisor)  # conversation.theirs only
    conversation_assign(conversation=theirs, actor=supervisor, agent=budi, team=sales)  # agent.budi
    conversation_status_set(conversation=mine, status="resolved", actor=supervisor)

    opened, answer = reconnect_and_resume(ayu, since=since, open_conversation=mine.pk)

    assert opened == {"type": "conversation.opened", "conversation": mine.pk}
    assert answer["type"] == "resume"
    events = answer["events"]
    assert [e["event"] for e in events] == [
        "channels.conversation.assigned", "channels.message.created", "channels.conversation.status_changed",
    ]
    assert [e["id"] for e in events] == sorted({e["id"] for e in events})  # in order, each once
    assert all(e["id"] > since for e in events)
    assert events[1]["message"]["id"] == note.pk
    assert {e.get("conversation", {}).get("id") for e in events if "conversation" in e} == {mine.pk}
    assert answer["last_id"] == events[-1]["id"]


def test_an_agent_of_another_team_receives_none_of_it(teams, supervisor):
    support, sales, ayu, budi, citra = teams
    conversation = _conversation(support)
    since = realtime.publish("test.before", {}, groups=["agent.999999"])
    conversation_assign(conversation=conversation, actor=supervisor, agent=ayu)
    message_create_outbound(conversation=conversation, author=ayu, content="internal", private=True)

    opened, answer = reconnect_and_resume(budi, since=since, open_conversation=conversation.pk)

    assert opened == {"type": "error", "message": "not found", "conversation": conversation.pk}
    assert answer == {"type": "resume", "events": [], "last_id": since}


def test_a_teams_unassigned_conversation_events_are_replayed_to_its_members_only(teams, supervisor):
    support, sales, ayu, budi, citra = teams
    conversation = _conversation(support)  # unassigned: its events go to team.<support>
    since = realtime.publish("test.before", {}, groups=["agent.999999"])
    note = message_create_outbound(conversation=conversation, author=citra, content="siapa yang ambil?", private=True)

    _opened, answer = reconnect_and_resume(ayu, since=since)
    _opened, other = reconnect_and_resume(budi, since=since)

    assert [(e["event"], e["message"]["id"]) for e in answer["events"]] == [("channels.message.created", note.pk)]
    assert LiveEvent.objects.get(pk=answer["events"][0]["id"]).team_id == support.pk
    assert other == {"type": "resume", "events": [], "last_id": since}


def test_a_conversation_that_moved_to_another_team_while_offline_is_not_replayed(teams, supervisor):
    support, sales, ayu, budi, citra = teams
    conversation = _conversation(support)
    since = realtime.publish("test.before", {}, groups=["agent.999999"])
    message_create_outbound(conversation=conversation, author=citra, content="before the transfer", private=True)
    conversation_assign(conversation=conversation, actor=supervisor, team=sales)

    _opened, answer = reconnect_and_resume(ayu, since=since, open_conversation=conversation.pk)

    assert answer == {"type": "resume", "events": [], "last_id": since}


def test_an_event_committed_late_with_a_lower_id_is_replayed_in_the_overlap_window(teams):
    _support, _sales, ayu, _budi, _citra = teams
    old = LiveEvent.objects.create(event="test.old", payload={}, created_at=timezone.now() - dt.timedelta(minutes=10))
    LiveEventRecipient.objects.create(live_event=old, agent=ayu)
    late = realtime.publish("test.late", {"n": 1}, groups=[realtime.agent_group(ayu.pk)])
    seen = realtime.publish("test.seen", {"n": 2}, groups=[realtime.agent_group(ayu.pk)])
    assert old.pk < late < seen

    # The browser saw `seen` pushed (id higher than `late`), then its socket dropped.
    _opened, answer = reconnect_and_resume(ayu, since=seen)

    # `late` comes back (the client drops what it already has, by id); the window is bounded.
    assert [e["event"] for e in answer["events"]] == ["test.late", "test.seen"]
    assert answer["last_id"] == seen


def test_more_than_the_cap_is_a_refresh(teams, settings):
    _support, _sales, ayu, _budi, _citra = teams
    settings.LIVE_EVENT_RESUME_LIMIT = 3
    since = realtime.publish("test.before", {}, groups=[realtime.agent_group(ayu.pk)])
    for n in range(4):
        realtime.publish("test.missed", {"n": n}, groups=[realtime.agent_group(ayu.pk)])

    _opened, answer = reconnect_and_resume(ayu, since=since)

    assert answer == {"type": "refresh", "reason": "too_many", "last_id": LiveEvent.objects.latest("pk").pk}


def test_exactly_the_cap_is_replayed(teams, settings):
    _support, _sales, ayu, _budi, _citra = teams
    settings.LIVE_EVENT_RESUME_LIMIT = 3
    settings.LIVE_EVENT_RESUME_OVERLAP_SECONDS = 0
    LiveEvent.objects.create(event="test.before", payload={}, created_at=timezone.now() - dt.timedelta(seconds=5))
    since = LiveEvent.objects.get().pk
    for n in range(3):
        realtime.publish("test.missed", {"n": n}, groups=[realtime.agent_group(ayu.pk)])

    _opened, answer = reconnect_and_resume(ayu, since=since)

    assert [e["n"] for e in answer["events"]] == [0, 1, 2]


def test_a_cursor_older_than_the_retention_is_a_refresh(teams):
    _support, _sales, ayu, _budi, _citra = teams
    gone = realtime.publish("test.old", {}, groups=[realtime.agent_group(ayu.pk)])
    LiveEvent.objects.filter(pk=gone).update(created_at=timezone.now() - dt.timedelta(hours=25))
    newest = realtime.publish("test.new", {}, groups=[realtime.agent_group(ayu.pk)])

    assert realtime.live_events_prune() == 1

    _opened, answer = reconnect_and_resume(ayu, since=gone)
    assert answer == {"type": "refresh", "reason": "expired", "last_id": newest}


def test_resume_needs_an_integer_cursor(teams):
    _support, _sales, ayu, _budi, _citra = teams

    _opened, answer = reconnect_and_resume(ayu, since="12")  # type: ignore[arg-type]

    assert answer == {"type": "error", "message": "since must be an event id"}


def test_the_prune_task_deletes_only_events_past_the_retention(teams):
    from channels_app.tasks import live_events_prune_task

    _support, _sales, ayu, _budi, _citra = teams
    old = realtime.publish("test.old", {}, groups=[realtime.agent_group(ayu.pk), "conversation.5"])
    kept = realtime.publish("test.kept", {}, groups=[realtime.agent_group(ayu.pk)])
    LiveEvent.objects.filter(pk=old).update(created_at=timezone.now() - dt.timedelta(hours=24, minutes=1))

    assert live_events_prune_task.apply().result == 1

    assert list(LiveEvent.objects.values_list("pk", flat=True)) == [kept]
    assert list(LiveEventRecipient.objects.values_list("live_event_id", flat=True)) == [kept]


def test_the_prune_task_is_scheduled():
    from django.conf import settings

    schedule = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "channels_app.tasks.live_events_prune_task" in schedule


@pytest.mark.parametrize("status", ["resolved", "open"])
def test_a_web_chat_visitor_is_told_when_their_conversation_is_resolved_or_reopened(supervisor, status):
    from channels.db import database_sync_to_async

    from channels_app.models import Conversation
    from channels_app.services import inbox_create
    from customers.models import Customer, Identity

    inbox = inbox_create(name="Chat", kind="webchat", config={"allowed_origins": ["https://shop.example.com"]})
    token, stranger = "v" * 32, "w" * 32
    customer = Customer.objects.create(display_name="Visitor")
    Identity.objects.create(customer=customer, kind="web_visitor", value=token, scope=str(inbox.uuid), verified=True)
    conversation = Conversation.objects.create(customer=customer, last_inbox=inbox,
                                               status="resolved" if status == "open" else "open",
                                               resolved_at=timezone.now() if status == "open" else None)

    async def scenario():
        mine = WebsocketCommunicator(application, f"/ws/widget/{inbox.uuid}/{token}/", headers=[(b"origin", b"http://localhost")])
        other = WebsocketCommunicator(application, f"/ws/widget/{inbox.uuid}/{stranger}/", headers=[(b"origin", b"http://localhost")])
        await mine.connect()
        await other.connect()
        await database_sync_to_async(conversation_status_set)(conversation=conversation, status=status, actor=supervisor)
        pushed = await mine.receive_json_from(timeout=5)
        quiet = await other.receive_nothing(timeout=0.3)
        await mine.disconnect()
        await other.disconnect()
        return pushed, quiet

    pushed, quiet = async_to_sync(scenario)()

    assert pushed["event"] == "webchat.conversation.status"
    assert pushed["conversation"] == {"id": conversation.pk, "status": status}
    assert isinstance(pushed["id"], int)
    assert quiet is True


@pytest.mark.skipif(not __import__("os").environ.get("REDIS_URL"), reason="needs Redis (REDIS_URL): the send loop serves channels-redis only")
def test_pushes_from_sync_code_reuse_one_event_loop_and_arrive(agent):
    """Outside an ASGI server (Celery, gunicorn) pushes go through one event loop per process,
    so channels-redis keeps its connections instead of opening one per push."""
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(realtime.agent_group(agent.pk), channel)
    first = realtime.publish("test.one", {"n": 1}, groups=[realtime.agent_group(agent.pk)])
    loop = realtime._send_loop._loop
    second = realtime.publish("test.two", {"n": 2}, groups=[realtime.agent_group(agent.pk)])

    async def receive_two():
        import asyncio

        return [await asyncio.wait_for(layer.receive(channel), timeout=5) for _ in range(2)]

    received = async_to_sync(receive_two)()
    assert [m["payload"]["id"] for m in received] == [first, second]
    assert loop is not None and realtime._send_loop._loop is loop and loop.is_running()
