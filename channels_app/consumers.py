"""Websocket consumers: authenticate from the session, authorise, join narrow groups, forward."""
from __future__ import annotations

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from accounts.models import Availability
from accounts.selectors import team_ids_for_user
from accounts.services import user_availability_set
from channels_app import realtime

CLOSE_UNAUTHENTICATED = 4401


def agent_group(user_id: int) -> str:
    return f"agent.{user_id}"


class NoThreadHopDispatch:
    """Dispatch without channels' per-message `aclose_old_connections()`.

    Since channels 4.2, `AsyncConsumer.dispatch` hops into the sync thread before *every*
    handler to close stale database connections. Under daphne that is the single
    thread-sensitive executor shared by every socket of the process, so each pushed frame
    (`agent_event`, which touches no database) waited for a free turn on the thread that runs
    every socket's database work (connect, resume, presence). py-spy of daphne during
    bench/live.py (500 sockets, 100 pushes/s) sampled the hop's frames on the event loop about
    as often as the forwarding itself; an A/B CPU measurement of the process showed no
    measurable difference (noisy, shared machine): the gain is the removed queueing, not CPU.
    Every database access of these consumers goes through `database_sync_to_async`, which
    closes old connections itself before and after each call, so nothing is lost."""

    async def dispatch(self, message):
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)


class AgentConsumer(NoThreadHopDispatch, AsyncJsonWebsocketConsumer):
    """One socket per open agent tab: personal events, the conversations it opened, presence.

    `hello` carries `last_id`, the newest stored live event: the browser's resume cursor until
    it sees a pushed event. After a reconnect the browser sends `{"type": "resume", "since": id}`
    and receives `{"type": "resume", "events": [...], "last_id": n}` (what this agent may see,
    in id order, see `realtime.live_events_since`) or `{"type": "refresh", "reason": ...}`."""

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_active:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.user = user
        self.groups_joined = [agent_group(user.pk)]
        self.conversations_open: list[int] = []
        await self.channel_layer.group_add(self.groups_joined[0], self.channel_name)
        await self.teams_sync()
        await self.accept()
        last_id = await database_sync_to_async(realtime.latest_id)()
        await self.send_json({"type": "hello", "user": user.pk, "availability": user.availability, "last_id": last_id})

    async def disconnect(self, code):
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        if content.get("type") == "presence.set":
            availability = content.get("availability")
            if availability not in Availability.values:
                await self.send_json({"type": "error", "message": "availability must be online, away or offline"})
                return
            await database_sync_to_async(user_availability_set)(user=self.user, availability=availability)
            await self.send_json({"type": "presence", "availability": availability})
        elif content.get("type") == "ping":
            await self.send_json({"type": "pong"})
        elif content.get("type") == "conversation.open":
            await self.conversation_open(content.get("conversation"))
        elif content.get("type") == "resume":
            await self.resume(content.get("since"))
        elif content.get("type") == "typing":
            conversation_id = content.get("conversation")
            group = f"conversation.{conversation_id}" if isinstance(conversation_id, int) else ""
            if group in self.groups_joined:
                await self.channel_layer.group_send(group, {"type": "agent.event", "payload": {
                    "event": "channels.typing", "conversation": conversation_id, "user": self.user.pk,
                    "sender": self.channel_name}})

    async def conversation_open(self, conversation_id):
        """Join `conversation.<id>` only if the selectors say this agent may see it."""
        if not isinstance(conversation_id, int):
            await self.send_json({"type": "error", "message": "conversation must be an id"})
            return
        allowed = await database_sync_to_async(_can_view)(self.user, conversation_id)
        if not allowed:
            await self.send_json({"type": "error", "message": "not found", "conversation": conversation_id})
            return
        group = f"conversation.{conversation_id}"
        if group not in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
            self.groups_joined.append(group)
            self.conversations_open.append(conversation_id)
        await self.send_json({"type": "conversation.opened", "conversation": conversation_id})

    async def resume(self, since):
        """Replay what this socket missed after event `since` (the browser de-duplicates the
        overlap by id), or tell it to refresh its views when that cannot be done exactly."""
        if not isinstance(since, int) or isinstance(since, bool) or since < 0:
            await self.send_json({"type": "error", "message": "since must be an event id"})
            return
        result = await database_sync_to_async(realtime.live_events_since)(
            viewer=self.user, since=since, conversation_ids=list(self.conversations_open))
        if result.refresh:
            await self.send_json({"type": "refresh", "reason": result.refresh, "last_id": result.last_id})
            return
        await self.send_json({"type": "resume", "events": result.events, "last_id": result.last_id})

    async def teams_sync(self) -> list[int]:
        """Be in exactly the `team.<id>` groups of the agent's current teams (they carry the
        events of the team's unassigned conversations)."""
        teams = await database_sync_to_async(team_ids_for_user)(user=self.user)
        wanted = [realtime.team_group(pk) for pk in teams]
        for group in [g for g in self.groups_joined if realtime.TEAM_GROUP_RE.match(g) and g not in wanted]:
            await self.channel_layer.group_discard(group, self.channel_name)
            self.groups_joined.remove(group)
        for group in wanted:
            if group not in self.groups_joined:
                await self.channel_layer.group_add(group, self.channel_name)
                self.groups_joined.append(group)
        return sorted(teams)

    async def agent_teams(self, event):
        """The agent's team memberships changed (`realtime.agent_teams_changed`): an agent taken
        out of a team stops receiving its events at once, not at the next reconnect."""
        await self.send_json({"type": "teams", "teams": await self.teams_sync()})

    async def agent_event(self, event):
        """Forward a server-side event published to one of this socket's groups."""
        payload = dict(event["payload"])
        if payload.pop("sender", None) == self.channel_name:
            return  # my own typing
        await self.send_json(payload)

    async def agent_events(self, event):
        """Several events for one group, folded by `realtime._coalesced`: forwarded in order."""
        for payload in event["payloads"]:
            await self.agent_event({"payload": payload})


def _can_view(user, conversation_id: int) -> bool:
    from channels_app import selectors
    from channels_app.models import Conversation

    try:
        selectors.conversation_get(viewer=user, conversation_id=conversation_id)
    except Conversation.DoesNotExist:
        return False
    return True


class VisitorConsumer(NoThreadHopDispatch, AsyncJsonWebsocketConsumer):
    """A web chat visitor's widget: joins `visitor.<token>` (the token is the visitor's secret,
    kept in the widget's localStorage), receives agent replies and status changes."""

    async def connect(self):
        from channels_app import widget

        kwargs = self.scope["url_route"]["kwargs"]
        token = kwargs.get("token", "")
        ok = await database_sync_to_async(widget.visitor_token_valid)(inbox_uuid=str(kwargs.get("inbox")), token=token)
        if not ok:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.group = realtime.visitor_group(token)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        if content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def agent_event(self, event):
        await self.send_json(event["payload"])

    async def agent_events(self, event):
        for payload in event["payloads"]:
            await self.send_json(payload)
