"""Websocket consumers: authenticate from the session, authorise, join narrow groups, forward."""
from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from accounts.models import Availability
from accounts.services import user_availability_set

CLOSE_UNAUTHENTICATED = 4401


def agent_group(user_id: int) -> str:
    return f"agent.{user_id}"


class AgentConsumer(AsyncJsonWebsocketConsumer):
    """One socket per open agent tab: personal events and presence."""

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_active:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.user = user
        self.groups_joined = [agent_group(user.pk)]
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        await self.send_json({"type": "hello", "user": user.pk, "availability": user.availability})

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

    async def agent_event(self, event):
        """Forward a server-side event published to one of this socket's groups."""
        await self.send_json(event["payload"])
