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
    assert hello == {"type": "hello", "user": agent.pk, "availability": "offline"}
    assert pushed == {"type": "note", "n": 1}
    assert presence == {"type": "presence", "availability": "away"}
    agent.refresh_from_db()
    assert agent.availability == Availability.AWAY


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
