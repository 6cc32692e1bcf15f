from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from accounts.models import Availability
from channels_app.consumers import CLOSE_UNAUTHENTICATED, agent_group
from cxplatform.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)


def session_headers(user) -> list[tuple[bytes, bytes]]:
    client = Client()
    client.force_login(user)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    return [(b"cookie", cookie.encode()), (b"origin", b"http://localhost")]


def test_anonymous_socket_is_closed_with_4401():
    async def scenario():
        communicator = WebsocketCommunicator(application, "/ws/agent/", headers=[(b"origin", b"http://localhost")])
        connected, code = await communicator.connect()
        await communicator.disconnect()
        return connected, code

    assert async_to_sync(scenario)() == (False, CLOSE_UNAUTHENTICATED)


def test_foreign_origin_is_refused(agent):
    headers = [(name, value) for name, value in session_headers(agent) if name != b"origin"] + [(b"origin", b"https://evil.example")]

    async def scenario():
        communicator = WebsocketCommunicator(application, "/ws/agent/", headers=headers)
        connected, _code = await communicator.connect()
        await communicator.disconnect()
        return connected

    assert async_to_sync(scenario)() is False


def test_signed_in_agent_receives_own_events_and_sets_presence(agent):
    headers = session_headers(agent)

    async def scenario():
        communicator = WebsocketCommunicator(application, "/ws/agent/", headers=headers)
        connected, _ = await communicator.connect()
        hello = await communicator.receive_json_from(timeout=5)
        await get_channel_layer().group_send(agent_group(agent.pk), {"type": "agent.event", "payload": {"type": "note", "n": 1}})
        pushed = await communicator.receive_json_from(timeout=5)
        await communicator.send_json_to({"type": "presence.set", "availability": "away"})
        presence = await communicator.receive_json_from(timeout=5)
        await communicator.disconnect()
        return connected, hello, pushed, presence

    connected, hello, pushed, presence = async_to_sync(scenario)()

    assert connected is True
    assert hello == {"type": "hello", "user": agent.pk, "availability": "offline", "last_id": 0}
    assert pushed == {"type": "note", "n": 1}
    assert presence == {"type": "presence", "availability": "away"}
    agent.refresh_from_db()
    assert agent.availability == Availability.AWAY


def test_a_pushed_event_is_forwarded_without_a_hop_into_the_sync_thread(agent, monkeypatch):
    """channels' default dispatch runs `aclose_old_connections()` (a trip through the one
    thread-sensitive executor of the process) before every handler; a push touches no database
    and must not queue there behind every other socket's work (bench/live.py, 500 sockets)."""
    import channels.consumer

    hops = []

    async def counting_close():
        hops.append(1)

    monkeypatch.setattr(channels.consumer, "aclose_old_connections", counting_close)
    headers = session_headers(agent)

    async def scenario():
        communicator = WebsocketCommunicator(application, "/ws/agent/", headers=headers)
        await communicator.connect()
        await communicator.receive_json_from(timeout=5)
        for n in range(3):
            await get_channel_layer().group_send(agent_group(agent.pk), {"type": "agent.event", "payload": {"n": n}})
        pushed = [await communicator.receive_json_from(timeout=5) for _ in range(3)]
        await communicator.disconnect()
        return pushed

    assert async_to_sync(scenario)() == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert hops == []


def test_an_agent_socket_receives_its_teams_events_and_no_other_teams(agent):
    from tests.accounts.factories import TeamFactory, add_to_team

    mine, other = TeamFactory(), TeamFactory()
    add_to_team(agent, mine)
    headers = session_headers(agent)

    async def scenario():
        communicator = WebsocketCommunicator(application, "/ws/agent/", headers=headers)
        await communicator.connect()
        await communicator.receive_json_from(timeout=5)
        await get_channel_layer().group_send(f"team.{other.pk}", {"type": "agent.event", "payload": {"team": "other"}})
        await get_channel_layer().group_send(f"team.{mine.pk}", {"type": "agent.event", "payload": {"team": "mine"}})
        pushed = await communicator.receive_json_from(timeout=5)
        nothing = await communicator.receive_nothing(timeout=0.3)
        await communicator.disconnect()
        return pushed, nothing

    assert async_to_sync(scenario)() == ({"team": "mine"}, True)


def test_an_agent_taken_out_of_a_team_stops_receiving_its_events_without_reconnecting(agent):
    from channels.db import database_sync_to_async

    from accounts.models import TeamMembership
    from tests.accounts.factories import TeamFactory, add_to_team

    old, new = TeamFactory(), TeamFactory()
    add_to_team(agent, old)
    headers = session_headers(agent)

    async def scenario():
        communicator = WebsocketCommunicator(application, "/ws/agent/", headers=headers)
        await communicator.connect()
        await communicator.receive_json_from(timeout=5)
        await database_sync_to_async(TeamMembership.objects.filter(user=agent, team=old).delete)()
        left = await communicator.receive_json_from(timeout=5)
        await database_sync_to_async(add_to_team)(agent, new)
        joined = await communicator.receive_json_from(timeout=5)
        await get_channel_layer().group_send(f"team.{old.pk}", {"type": "agent.event", "payload": {"team": "old"}})
        await get_channel_layer().group_send(f"team.{new.pk}", {"type": "agent.event", "payload": {"team": "new"}})
        pushed = await communicator.receive_json_from(timeout=5)
        nothing = await communicator.receive_nothing(timeout=0.3)
        await communicator.disconnect()
        return left, joined, pushed, nothing

    left, joined, pushed, nothing = async_to_sync(scenario)()

    assert left == {"type": "teams", "teams": []}
    assert joined == {"type": "teams", "teams": [new.pk]}
    assert (pushed, nothing) == ({"team": "new"}, True)


def test_an_agent_never_receives_another_agents_events(agent, supervisor):
    headers = session_headers(agent)

    async def scenario():
        communicator = WebsocketCommunicator(application, "/ws/agent/", headers=headers)
        await communicator.connect()
        await communicator.receive_json_from(timeout=5)
        await get_channel_layer().group_send(agent_group(supervisor.pk), {"type": "agent.event", "payload": {"secret": True}})
        nothing = await communicator.receive_nothing(timeout=0.5)
        await communicator.disconnect()
        return nothing

    assert async_to_sync(scenario)() is True


# --- conversation.<id> and visitor.<token> groups ----------------------------------------------


def _team_conversation(team):
    from tests.channels_app.test_api import _conversation

    return _conversation(team=team)


def _open(headers, conversation_id, then=None):
    async def scenario():
        communicator = WebsocketCommunicator(application, "/ws/agent/", headers=headers)
        await communicator.connect()
        await communicator.receive_json_from(timeout=5)
        await communicator.send_json_to({"type": "conversation.open", "conversation": conversation_id})
        answer = await communicator.receive_json_from(timeout=5)
        await get_channel_layer().group_send(f"conversation.{conversation_id}",
                                             {"type": "agent.event", "payload": {"event": "x", "id": 7}})
        pushed = None
        if not await communicator.receive_nothing(timeout=0.5):
            pushed = await communicator.receive_json_from(timeout=1)
        await communicator.disconnect()
        return answer, pushed

    return async_to_sync(scenario)()


def test_an_agent_of_the_team_joins_the_conversation_group_and_receives_its_events(agent):
    from tests.accounts.factories import TeamFactory, add_to_team

    team = TeamFactory()
    add_to_team(agent, team)
    conversation = _team_conversation(team)

    answer, pushed = _open(session_headers(agent), conversation.pk)

    assert answer == {"type": "conversation.opened", "conversation": conversation.pk}
    assert pushed == {"event": "x", "id": 7}


def test_an_agent_of_another_team_cannot_join_the_conversation_group(agent):
    from tests.accounts.factories import TeamFactory

    conversation = _team_conversation(TeamFactory())

    answer, pushed = _open(session_headers(agent), conversation.pk)

    assert answer == {"type": "error", "message": "not found", "conversation": conversation.pk}
    assert pushed is None


def test_typing_reaches_other_viewers_but_not_the_typist(agent, supervisor):
    from tests.accounts.factories import TeamFactory, add_to_team

    team = TeamFactory()
    add_to_team(agent, team)
    conversation = _team_conversation(team)

    typist_headers, watcher_headers = session_headers(agent), session_headers(supervisor)

    async def scenario():
        typist = WebsocketCommunicator(application, "/ws/agent/", headers=typist_headers)
        watcher = WebsocketCommunicator(application, "/ws/agent/", headers=watcher_headers)
        for socket in (typist, watcher):
            await socket.connect()
            await socket.receive_json_from(timeout=5)
            await socket.send_json_to({"type": "conversation.open", "conversation": conversation.pk})
            await socket.receive_json_from(timeout=5)
        await typist.send_json_to({"type": "typing", "conversation": conversation.pk})
        seen = await watcher.receive_json_from(timeout=5)
        typist_quiet = await typist.receive_nothing(timeout=0.5)
        await typist.disconnect()
        await watcher.disconnect()
        return seen, typist_quiet

    seen, typist_quiet = async_to_sync(scenario)()

    assert seen == {"event": "channels.typing", "conversation": conversation.pk, "user": agent.pk}
    assert typist_quiet is True


@pytest.mark.parametrize("token_ok", [True, False])
def test_visitor_socket_needs_a_live_webchat_inbox_and_a_well_formed_token(token_ok):
    from channels_app.services import inbox_create

    inbox = inbox_create(name="Chat", kind="webchat", config={"allowed_origins": ["https://shop.example.com"]})
    token = "v" * 32 if token_ok else "short"

    async def scenario():
        communicator = WebsocketCommunicator(application, f"/ws/widget/{inbox.uuid}/{token}/",
                                             headers=[(b"origin", b"http://localhost")])
        connected, _ = await communicator.connect()
        pushed = None
        if connected:
            await get_channel_layer().group_send(f"visitor.{token}", {"type": "agent.event", "payload": {"event": "webchat.message"}})
            pushed = await communicator.receive_json_from(timeout=5)
            await communicator.disconnect()
        return connected, pushed

    connected, pushed = async_to_sync(scenario)()

    assert connected is token_ok
    assert pushed == ({"event": "webchat.message"} if token_ok else None)


def test_events_published_together_reach_a_shared_group_as_one_layer_message_and_every_frame_in_order(agent, monkeypatch):
    """A drain's batch publishes ~100 events to the same team group: they travel as one
    `agent.events` message (one group_send) and the socket still gets one frame per event,
    in order; a control message between events keeps its place."""
    from django.db import transaction

    from channels_app import realtime
    from tests.accounts.factories import TeamFactory, add_to_team

    team = TeamFactory()
    add_to_team(agent, team)
    headers = session_headers(agent)
    layer = get_channel_layer()
    group_sends: list[tuple[str, str]] = []
    real_group_send = layer.group_send

    async def counting_group_send(group, message):
        group_sends.append((group, message["type"]))
        await real_group_send(group, message)

    monkeypatch.setattr(layer, "group_send", counting_group_send)

    async def scenario():
        communicator = WebsocketCommunicator(application, "/ws/agent/", headers=headers)
        await communicator.connect()
        await communicator.receive_json_from(timeout=5)

        def publish():
            with transaction.atomic():
                return realtime.publish_many([("test.n", {"n": n}, [f"team.{team.pk}", f"conversation.{n}"])
                                              for n in range(5)])

        from channels.db import database_sync_to_async

        ids = await database_sync_to_async(publish)()
        frames = [await communicator.receive_json_from(timeout=5) for _ in range(5)]
        nothing = await communicator.receive_nothing(timeout=0.3)
        await communicator.disconnect()
        return ids, frames, nothing

    ids, frames, nothing = async_to_sync(scenario)()
    assert [(f["event"], f["n"], f["id"]) for f in frames] == [("test.n", n, ids[n]) for n in range(5)]
    assert nothing is True
    assert sorted(group_sends) == sorted([(f"team.{team.pk}", "agent.events")]
                                         + [(f"conversation.{n}", "agent.event") for n in range(5)])


def test_coalescing_keeps_control_messages_in_place():
    from channels_app.realtime import _coalesced

    event = {"type": "agent.event", "payload": {"n": 1}}
    other = {"type": "agent.event", "payload": {"n": 2}}
    control = {"type": "agent.teams"}
    assert _coalesced([(event, "a"), (control, "t"), (event, "a"), (other, "b")]) == [
        (event, "a"), (control, "t"), ({"type": "agent.events", "payloads": [{"n": 1}, {"n": 2}]}, "2 events")]
