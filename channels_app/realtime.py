"""Push events to agents' sockets, after the database has committed what they describe.

Services call `publish(...)` explicitly with the narrow groups that may see the event
(`agent.<id>`, `conversation.<id>`, `visitor.<token>`); there is no global group. Every event is
first stored as a `LiveEvent` row inside the caller's transaction, and its primary key is the
event `id` the browser tracks. The channel layer may drop messages and sockets drop, so a
reconnecting browser asks for what happened after the last id it saw (`live_events_since`):
the database, not the socket, is the source of truth. See docs/workspace.md ("Live events").

Ids come from a database sequence, which is not commit-ordered: a transaction that took id 100
may commit after one that took id 101 was already pushed. `live_events_since` therefore re-reads
a window of LIVE_EVENT_RESUME_OVERLAP_SECONDS before the client's last id, and the client
drops ids it has already seen.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import SyncToAsync, async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction
from django.db.models import Exists, Min, OuterRef, Q
from django.utils import timezone

logger = logging.getLogger(__name__)

MESSAGE_TYPE = "agent.event"  # handled by AgentConsumer.agent_event
BATCH_TYPE = "agent.events"  # several events for one group at once: AgentConsumer.agent_events

AGENT_GROUP_RE = re.compile(r"^agent\.(\d+)$")
CONVERSATION_GROUP_RE = re.compile(r"^conversation\.(\d+)$")
TEAM_GROUP_RE = re.compile(r"^team\.(\d+)$")
VISITOR_PREFIX = "visitor."


def agent_group(user_id: int) -> str:
    return f"agent.{user_id}"


def visitor_group(visitor_token: str) -> str:
    """A web chat visitor's widget sockets (channel-layer group names allow [A-Za-z0-9._-])."""
    return VISITOR_PREFIX + re.sub(r"[^A-Za-z0-9._-]", "_", visitor_token)[:90]


def team_group(team_id: int) -> str:
    """Every socket of the team's members (joined at connect): an unassigned conversation's
    events are one send to the team, not one per member (cost is events × groups)."""
    return f"team.{team_id}"


def conversation_group(conversation_id: int) -> str:
    """Sockets that have a conversation open join this after `selectors.conversation_can_view`."""
    return f"conversation.{conversation_id}"


def resume_limit() -> int:
    return int(getattr(settings, "LIVE_EVENT_RESUME_LIMIT", 500))


def resume_overlap() -> dt.timedelta:
    return dt.timedelta(seconds=float(getattr(settings, "LIVE_EVENT_RESUME_OVERLAP_SECONDS", 60)))


def retention() -> dt.timedelta:
    return dt.timedelta(hours=float(getattr(settings, "LIVE_EVENT_RETENTION_HOURS", 24)))


def _row(event: str, payload: dict[str, Any], targets: list[str]) -> tuple[Any, list[int]]:
    """The unsaved LiveEvent for `targets` and the agents it names (its recipients). Visitor
    groups are not recorded: their name carries the visitor's secret token, and the widget
    re-reads its history from the database on reconnect anyway."""
    from channels_app.models import LiveEvent

    agent_ids = sorted({int(m.group(1)) for m in map(AGENT_GROUP_RE.match, targets) if m})
    conversation_ids = sorted({int(m.group(1)) for m in map(CONVERSATION_GROUP_RE.match, targets) if m})
    team_ids = sorted({int(m.group(1)) for m in map(TEAM_GROUP_RE.match, targets) if m})
    for kind, ids in (("conversations", conversation_ids), ("teams", team_ids)):
        if len(ids) > 1:
            logger.warning("live event %s names %s %s; only #%s is recorded", event, len(ids), kind, ids[0])
    row = LiveEvent(
        event=event[:80], payload=payload,
        groups=[g for g in targets if not g.startswith(VISITOR_PREFIX)],
        conversation_id=conversation_ids[0] if conversation_ids else None,
        team_id=team_ids[0] if team_ids else None,
    )
    return row, agent_ids


def _store(items: list[tuple[str, dict[str, Any], list[str]]]) -> list[int]:
    """The LiveEvent rows, in the caller's transaction: an event exists exactly when what it
    describes was committed (a failure fails the caller, whose work is retried or reported).
    One INSERT for the events and one for their recipients, however many."""
    from channels_app.models import LiveEvent, LiveEventRecipient

    built = [_row(event, payload, targets) for event, payload, targets in items]
    with transaction.atomic(savepoint=False):
        LiveEvent.objects.bulk_create([row for row, _agents in built])
        recipients = [LiveEventRecipient(live_event=row, agent_id=agent_id) for row, agents in built for agent_id in agents]
        if recipients:
            LiveEventRecipient.objects.bulk_create(recipients)
    return [row.pk for row, _agents in built]


def _coalesced(queue: list[tuple[dict[str, Any], str]]) -> list[tuple[dict[str, Any], str]]:
    """One group's messages with each run of consecutive events folded into one
    `{"type": BATCH_TYPE, "payloads": [...]}` (consumers forward them one by one, in order).
    A drain's batch sends ~100 events to the same team group: one `group_send` (two Redis round
    trips) after another took ~80 ms per batch; folded, it is one."""
    out: list[tuple[dict[str, Any], str]] = []
    run: list[tuple[dict[str, Any], str]] = []

    def flush() -> None:
        if len(run) == 1:
            out.append(run[0])
        elif run:
            out.append(({"type": BATCH_TYPE, "payloads": [message["payload"] for message, _event in run]},
                        f"{len(run)} events"))
        run.clear()

    for message, event in queue:
        if message.get("type") == MESSAGE_TYPE:
            run.append((message, event))
        else:
            flush()
            out.append((message, event))
    flush()
    return out


async def _send_all(layer, sends: list[tuple[str, dict[str, Any], str]]) -> None:
    """All groups at once (an unassigned conversation's message goes to every online member of
    its team, and one Redis round trip after another made that cost grow with the team); the
    messages of one group one after another, in order, consecutive events folded into one."""
    by_group: dict[str, list[tuple[dict[str, Any], str]]] = {}
    for group, message, event in sends:
        by_group.setdefault(group, []).append((message, event))
    by_group = {group: _coalesced(queue) for group, queue in by_group.items()}

    async def one(group: str, queue: list[tuple[dict[str, Any], str]]) -> None:
        for message, event in queue:
            try:
                await layer.group_send(group, message)
            except Exception:  # the channel layer is best effort; the DB has the truth
                logger.warning("realtime publish of %s to %s failed", event, group, exc_info=True)

    await asyncio.gather(*(one(group, queue) for group, queue in by_group.items()))


class _SendLoop:
    """One event loop per process, in a daemon thread, for pushes from sync code that runs
    outside an ASGI server (Celery workers, gunicorn).

    There, `async_to_sync` starts a thread and a new event loop on every call, and channels-redis
    keeps its connection pool per event loop: every push opened (and dropped) a Redis connection.
    Profiled in a Celery worker, that was ~10 ms of each processed inbound message. Under daphne
    `async_to_sync` hops onto the server's own loop, which is cheap, so it is kept there."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid():  # a forked child has no such thread
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="realtime-send-loop", daemon=True).start()
                self._loop, self._pid = loop, os.getpid()
            return self._loop

    def run(self, coroutine: Any, timeout: float) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._running_loop()).result(timeout)


_send_loop = _SendLoop()
SEND_TIMEOUT_SECONDS = 10


def _in_asgi_server() -> bool:
    """True in a thread that sync_to_async started from a server's event loop that is still
    running (daphne). asgiref leaves the marker on a thread after its loop has ended."""
    loop = getattr(SyncToAsync.threadlocal, "main_event_loop", None)
    return (getattr(SyncToAsync.threadlocal, "main_event_loop_pid", None) == os.getpid()
            and loop is not None and loop.is_running())


def _layer_send(layer: Any, sends: list[tuple[str, dict[str, Any], str]]) -> None:
    """`sends`: (group, message, event name) in order. One trip into an event loop for all: a
    loop hop costs far more than a group_send, and a message typically goes to 3-6 groups."""
    from channels_redis.core import RedisChannelLayer

    if isinstance(layer, RedisChannelLayer) and not _in_asgi_server():
        try:
            _send_loop.run(_send_all(layer, sends), SEND_TIMEOUT_SECONDS)
        except Exception:  # a timeout: the channel layer is best effort, the DB has the truth
            logger.warning("realtime publish of %s events timed out", len(sends), exc_info=True)
        return
    # The in-memory layer (tests, the embedded default) keeps its queues on the caller's loops.
    async_to_sync(_send_all)(layer, sends)


def publish(event: str, payload: dict[str, Any], *, groups: Iterable[str]) -> int | None:
    """Store the event and send `{"event": event, "id": <LiveEvent id>, **payload}` to `groups`
    once the current transaction commits (immediately when there is none). An event concerns at
    most one conversation. Returns the id. A failure to store fails the caller's transaction
    (the event is part of its work); a failure to push is only logged."""
    return publish_many([(event, payload, groups)])[0]


def publish_many(items: Iterable[tuple[str, dict[str, Any], Iterable[str]]]) -> list[int | None]:
    """`publish` for many events (the ingest drain's batch): one INSERT for them all and one
    push after commit, each group receiving its events in the given order."""
    prepared = [(event, payload, sorted(set(groups))) for event, payload, groups in items]
    stored = [item for item in prepared if item[2]]
    ids = iter(_store(stored) if stored else [])
    out: list[int | None] = []
    sends: list[tuple[str, dict[str, Any], str]] = []
    for event, payload, targets in prepared:
        if not targets:
            out.append(None)
            continue
        event_id = next(ids)
        out.append(event_id)
        message = {"type": MESSAGE_TYPE, "payload": {"event": event, "id": event_id, **payload}}
        sends += [(group, message, event) for group in targets]
    if not sends:
        return out

    def send() -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        _layer_send(layer, sends)

    transaction.on_commit(send, robust=True)  # a push is best effort: never an error after the commit
    return out


def agent_teams_changed(user_id: int) -> None:
    """After commit, tell the agent's sockets to re-join the team groups of their current teams
    (a control message, not a stored event: nothing to replay, the socket asks the database)."""
    def send() -> None:
        layer = get_channel_layer()
        if layer is not None:
            _layer_send(layer, [(agent_group(user_id), {"type": "agent.teams"}, "agent.teams")])

    transaction.on_commit(send, robust=True)  # a push is best effort: never an error after the commit


def on_team_membership_changed(sender: Any, instance: Any, **_kwargs: Any) -> None:
    """Signal receiver (TeamMembership saved or deleted: admin, API or service alike)."""
    agent_teams_changed(instance.user_id)


# --- catching up ----------------------------------------------------------------------------


@dataclass
class Resume:
    """What a reconnecting socket is sent: the events in id order, or `refresh` (with a reason)
    when they cannot all be replayed (too many, or `since` is older than the retention)."""

    events: list[dict[str, Any]] = field(default_factory=list)
    refresh: str = ""  # "", "too_many" or "expired"
    last_id: int = 0


def latest_id() -> int:
    from channels_app.models import LiveEvent

    return LiveEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def _as_message(row: Any) -> dict[str, Any]:
    return {"event": row.event, "id": row.pk, **row.payload}


def live_events_since(*, viewer: Any, since: int, conversation_ids: Iterable[int] = (),
                      limit: int | None = None) -> Resume:
    """The stored events after `since` that `viewer`'s socket would have received: those
    addressed to `agent.<viewer>`, those sent to a team the viewer belongs to now, and those of
    the conversations in `conversation_ids` (the ones the socket has open) that the selectors
    still let the viewer see. Nothing else, ever.

    Also returns the events of the LIVE_EVENT_RESUME_OVERLAP_SECONDS before `since` (a lower id
    may have become visible after a higher one was pushed): the client drops duplicates by id.
    More than `limit` new events → `refresh="too_many"`; `since` pruned or unknown →
    `refresh="expired"`."""
    from accounts.selectors import team_ids_for_user
    from channels_app import selectors
    from channels_app.models import Conversation, LiveEvent, LiveEventRecipient

    limit = resume_limit() if limit is None else limit
    since = max(0, int(since))
    wanted = sorted({int(pk) for pk in conversation_ids})
    scope = selectors.conversation_visibility(viewer=viewer)
    visible = Conversation.objects.all() if scope is None else Conversation.objects.filter(scope)
    allowed = list(visible.filter(pk__in=wanted).values_list("pk", flat=True)) if wanted else []
    addressed = Exists(LiveEventRecipient.objects.filter(live_event=OuterRef("pk"), agent_id=viewer.pk))
    access = Q(addressed)
    teams = team_ids_for_user(user=viewer)
    if teams:
        # A team's events, for conversations the viewer may still see (one moved to another
        # team meanwhile is not replayed); a supervisor sees every conversation: no subquery.
        access |= Q(team_id__in=teams) if scope is None else Q(team_id__in=teams, conversation_id__in=visible.values("pk"))
    if allowed:
        access |= Q(conversation_id__in=allowed)
    rows = LiveEvent.objects.filter(access).order_by("pk")

    floor = since
    if since:
        anchor = LiveEvent.objects.filter(pk=since).values_list("created_at", flat=True).first()
        if anchor is None:
            return Resume(refresh="expired", last_id=latest_id())
        earliest = LiveEvent.objects.filter(created_at__gte=anchor - resume_overlap(), pk__lte=since).aggregate(
            first=Min("pk"))["first"]
        floor = (earliest or since + 1) - 1
    new = list(rows.filter(pk__gt=since)[: limit + 1])
    if len(new) > limit:
        return Resume(refresh="too_many", last_id=latest_id())
    overlap = list(rows.filter(pk__gt=floor, pk__lte=since).order_by("-pk")[:limit])[::-1] if floor < since else []
    events = [_as_message(row) for row in [*overlap, *new]]
    return Resume(events=events, last_id=max([since, *(row.pk for row in new)]))


@transaction.atomic
def live_events_prune(*, now: dt.datetime | None = None) -> int:
    """Delete live events older than the retention (LIVE_EVENT_RETENTION_HOURS, default 24):
    a browser offline longer than that is told to refresh instead."""
    from channels_app.models import LiveEvent, LiveEventRecipient

    cutoff = (now or timezone.now()) - retention()
    last = LiveEvent.objects.filter(created_at__lt=cutoff).order_by("-pk").values_list("pk", flat=True).first()
    if last is None:
        return 0
    # Ids below `last` created after the cutoff (a late commit) are rare and young: keep them.
    old = LiveEvent.objects.filter(pk__lte=last, created_at__lt=cutoff)
    LiveEventRecipient.objects.filter(live_event__in=old.values("pk")).delete()
    deleted, _detail = old.delete()
    return deleted
