"""Conversations: continuity across channels, status, assignment (manual and round-robin)."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, F, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Availability, Team, TeamMembership, User
from accounts.selectors import team_ids_for_user, user_is_supervisor_or_admin
from channels_app import events, realtime
from channels_app.models import Conversation, ConversationPriority, ConversationStatus, Inbox, MessageSender
from customers.models import Customer, Identity, IdentityKind, TimelineEntry, TimelineKind
from customers.services import timeline_entry_build, timeline_record
from cxplatform.db import bulk_set


def reopen_window() -> dt.timedelta:
    return dt.timedelta(hours=float(getattr(settings, "CONVERSATION_REOPEN_WINDOW_HOURS", 24)))


@dataclass
class ContinueResult:
    conversation: Conversation
    created: bool = False
    reopened: bool = False
    channel_switched: bool = False


def conversation_audience(*, conversation: Conversation) -> list[str]:
    """Who is told about a conversation: sockets that have it open (`conversation.<id>`), its
    assignee, or if unassigned its team's sockets (`team.<id>`: one send, however large the
    team — one group per online member had made each message cost a Redis call per agent).
    Narrow groups only."""
    groups = [realtime.conversation_group(conversation.pk)]
    if conversation.assignee_id:
        return [*groups, realtime.agent_group(conversation.assignee_id)]
    if conversation.team_id:
        return [*groups, realtime.team_group(conversation.team_id)]
    return groups


def _assigned_event(conversation: Conversation, *, previous_assignee_id: int | None, actor: User | None) -> None:
    """Domain event (on commit): the conversation has a new assignee and/or team."""
    events.send_on_commit(
        events.conversation_assigned, event=events.CONVERSATION_ASSIGNED, conversation=conversation,
        assignee_id=conversation.assignee_id, previous_assignee_id=previous_assignee_id,
        team_id=conversation.team_id, actor_id=actor.pk if actor else None,
    )


def _status_event(conversation: Conversation, *, previous_status: str, actor: User | None) -> None:
    """Domain event (on commit): resolved, reopened, snoozed or another status move. The
    customer's web chat widgets are told too (resolved → the rating prompt, without polling)."""
    _status_events([(conversation, previous_status)], actor=actor)


def _status_events(moves: list[tuple[Conversation, str]], *, actor: User | None) -> None:
    """`_status_event` for many conversations (each with its status before): one read of their
    customers' web chat visitors, one INSERT of the widgets' live events."""
    moves = [(conversation, previous) for conversation, previous in moves if conversation.status != previous]
    if not moves:
        return
    visitors: dict[int, list[str]] = {}
    for customer_id, token in Identity.objects.filter(
            customer_id__in={c.customer_id for c, _previous in moves}, kind=IdentityKind.WEB_VISITOR,
    ).order_by().values_list("customer_id", "value"):
        visitors.setdefault(customer_id, []).append(token)
    realtime.publish_many([
        ("webchat.conversation.status", {"conversation": {"id": c.pk, "status": c.status}},
         [realtime.visitor_group(token) for token in visitors.get(c.customer_id, [])])
        for c, _previous in moves])
    for conversation, previous_status in moves:
        if conversation.status == ConversationStatus.RESOLVED:
            change = "resolved"
        elif previous_status == ConversationStatus.RESOLVED:
            change = "reopened"
        elif conversation.status == ConversationStatus.SNOOZED:
            change = "snoozed"
        else:
            change = "status"
        events.send_on_commit(
            events.conversation_status_changed, event=events.CONVERSATION_STATUS_CHANGED, conversation=conversation,
            status=conversation.status, previous_status=previous_status, change=change,
            actor_id=actor.pk if actor else None,
        )


def _conversation_payload(conversation: Conversation) -> dict:
    return {
        "conversation": {
            "id": conversation.pk,
            "status": conversation.status,
            "customer": conversation.customer_id,
            "assignee": conversation.assignee_id,
            "team": conversation.team_id,
            "last_inbox": conversation.last_inbox_id,
        }
    }


@transaction.atomic(savepoint=False)  # callers let its errors propagate: no savepoint needed
def conversation_continue(*, customer: Customer, inbox: Inbox, at: dt.datetime | None = None) -> ContinueResult:
    """The conversation a new inbound message from `customer` on `inbox` belongs to.

    Continues the customer's unresolved conversation whatever channel it started on; else
    reopens the one resolved within CONVERSATION_REOPEN_WINDOW_HOURS (default 24); else starts
    a new one routed to the inbox's default team (and auto-assigned when someone is free).
    """
    at = at or timezone.now()
    customer = _live(customer)
    current = (
        Conversation.objects.select_for_update().filter(customer=customer).exclude(status=ConversationStatus.RESOLVED).first()
    )
    result: ContinueResult
    previous_status = ""
    changed: set[str] = set()  # what to write back: most messages continue an open conversation as is
    if current is not None:
        result = ContinueResult(current, channel_switched=current.last_inbox_id not in (None, inbox.pk))
        previous_status = current.status
        if current.status != ConversationStatus.OPEN:
            current.status = ConversationStatus.OPEN
            current.snoozed_until = None
            changed |= {"status", "snoozed_until"}
    else:
        recent = (
            Conversation.objects.select_for_update()
            .filter(customer=customer, status=ConversationStatus.RESOLVED, resolved_at__gte=at - reopen_window())
            .order_by("-resolved_at", "-id")
            .first()
        )
        if recent is not None:
            previous_status = recent.status
            recent.status = ConversationStatus.OPEN
            recent.resolved_at = None
            changed |= {"status", "resolved_at"}
            result = ContinueResult(recent, reopened=True, channel_switched=recent.last_inbox_id not in (None, inbox.pk))
        else:
            try:
                with transaction.atomic():
                    created = conversation_build(customer=customer, inbox=inbox, at=at)
                    created.save(force_insert=True)
            except IntegrityError:
                # A concurrent message of the same customer opened it first: continue that one.
                existing = (
                    Conversation.objects.select_for_update()
                    .filter(customer=customer)
                    .exclude(status=ConversationStatus.RESOLVED)
                    .get()
                )
                result = ContinueResult(existing, channel_switched=existing.last_inbox_id != inbox.pk)
            else:
                result = ContinueResult(created, created=True)
    conversation = result.conversation
    conversation.customer = customer  # spares message_record and the timeline a SELECT
    if conversation.last_inbox_id != inbox.pk:
        conversation.last_inbox = inbox
        changed.add("last_inbox")
    if changed and not result.created:
        conversation.save(update_fields=sorted(changed))
    if result.created or "last_inbox" in changed:
        conversation.inboxes.add(inbox)  # the last inbox is always among them already
    if result.created:
        events.send_on_commit(events.conversation_created, event=events.CONVERSATION_CREATED,
                              conversation=conversation, inbox=inbox)
    elif previous_status:
        _status_event(conversation, previous_status=previous_status, actor=None)
    if result.created or result.reopened:
        timeline_record(customer=customer, **_opened_entry(conversation, inbox, at, reopened=result.reopened))
        if conversation.assignee_id is None:
            conversation_auto_assign(conversation=conversation)
    elif result.channel_switched:
        timeline_record(
            customer=customer,
            kind=TimelineKind.CHANNEL_SWITCHED,
            occurred_at=at,
            channel=inbox.kind,
            title=_("Continued on %(channel)s") % {"channel": inbox.get_kind_display()},
            data={"conversation": conversation.pk, "inbox": inbox.pk},
        )
    return result


def _opened_entry(conversation: Conversation, inbox: Inbox, at: dt.datetime, *, reopened: bool) -> dict:
    """The timeline entry of a conversation started (or reopened) by a message at `at`."""
    return {
        "kind": TimelineKind.CONVERSATION_OPENED, "occurred_at": at, "channel": inbox.kind,
        "title": _("Conversation reopened") if reopened else _("Conversation started"),
        "ref_type": "channels.conversation.opened", "ref_id": f"{conversation.pk}:{at.isoformat()}",
        "data": {"conversation": conversation.pk, "inbox": inbox.pk},
    }


def conversation_build(*, customer: Customer, inbox: Inbox, at: dt.datetime) -> Conversation:
    """The unsaved new conversation a message from `customer` on `inbox` at `at` starts: what
    `conversation_continue` creates; `conversations_open` stores a batch of them."""
    return Conversation(customer=customer, team_id=inbox.default_team_id, last_inbox=inbox, created_at=at)


def conversations_open(conversations: list[Conversation], *, reopens: list[tuple[int, int]] = ()) -> None:
    """Store new conversations (built by `conversation_build`, one per customer, none of whom has
    an unresolved one) with what `conversation_continue` does for each it creates: auto-assigned
    as `conversation_auto_assign` would one after the other, the inbox among its inboxes, the
    timeline entry, the assignee told live, the domain events after commit. A fixed number of
    statements however many: one per team to assign in, then one INSERT each for the
    conversations, their inboxes, their timeline entries and their live events. A customer who
    meanwhile got an unresolved conversation fails the INSERT (the one-unresolved-conversation
    constraint): the caller's transaction rolls back and the one-by-one path takes over.

    `reopens`: the caller's reopens of assigned conversations, stored after these, that came
    first — (how many of `conversations` came before it, its assignee): each adds one to its
    assignee's load from that point on, as it would have one by one."""
    _auto_assign_unsaved(conversations, reopens)
    Conversation.objects.bulk_create(conversations)
    Conversation.inboxes.through.objects.bulk_create([
        Conversation.inboxes.through(conversation_id=c.pk, inbox_id=c.last_inbox_id) for c in conversations])
    TimelineEntry.objects.bulk_create([
        timeline_entry_build(customer=c.customer, **_opened_entry(c, c.last_inbox, c.created_at, reopened=False))
        for c in conversations])
    assigned = [c for c in conversations if c.assignee_id]
    realtime.publish_many([("channels.conversation.assigned", _conversation_payload(c), [realtime.agent_group(c.assignee_id)])
                           for c in assigned])
    for conversation in conversations:
        events.send_on_commit(events.conversation_created, event=events.CONVERSATION_CREATED,
                              conversation=conversation, inbox=conversation.last_inbox)
    for conversation in assigned:
        _assigned_event(conversation, previous_assignee_id=None, actor=None)


@transaction.atomic(savepoint=False)
def conversations_reopen(reopened: list[tuple[Conversation, Inbox, dt.datetime]]) -> None:
    """`conversation_continue`'s reopen for many conversations: each `(conversation, inbox, at)`
    a locked conversation of the customer's resolved within the reopen window, assigned, last
    used on `inbox`, and the message at `at` reopening it (an unassigned one is auto-assigned
    and a channel switch recorded: both are `conversation_continue`'s). One UPDATE, one INSERT
    of timeline entries, the status events (`_status_events`)."""
    for conversation, _inbox, _at in reopened:
        conversation.status, conversation.resolved_at = ConversationStatus.OPEN, None
    bulk_set(Conversation, [c for c, _inbox, _at in reopened], ["status", "resolved_at"])
    TimelineEntry.objects.bulk_create([  # idempotent, as timeline_record: a replayed message records nothing new
        timeline_entry_build(customer=c.customer, **_opened_entry(c, inbox, at, reopened=True))
        for c, inbox, at in reopened], ignore_conflicts=True)
    _status_events([(c, ConversationStatus.RESOLVED) for c, _inbox, _at in reopened], actor=None)


def _live(customer: Customer) -> Customer:
    """Follow merges: a message for a merged-away profile belongs to its survivor."""
    seen = 0
    while customer.merged_into_id is not None and seen < 10:
        customer = Customer.objects.get(pk=customer.merged_into_id)
        seen += 1
    return customer


def _check_may_assign(actor: User | None, agent: User) -> None:
    if not agent.is_active:
        raise ValidationError({"agent": [_("This agent is deactivated.")]})
    if actor is None or actor.pk == agent.pk or user_is_supervisor_or_admin(user=actor):
        return
    shared = TeamMembership.objects.filter(user=agent, team_id__in=team_ids_for_user(user=actor)).exists()
    if not shared:
        raise ValidationError({"agent": [_("You can assign only to yourself or to members of your teams.")]})


@transaction.atomic
def conversation_assign(
    *,
    conversation: Conversation,
    actor: User | None,
    agent: User | None = None,
    team: Team | None = None,
    unassign: bool = False,
) -> Conversation:
    """Assign (or transfer) to an agent and/or a team. Assigning an agent without a team keeps
    the conversation's team when the agent belongs to it, else moves it to the agent's team
    (their first), so team visibility follows the person who owns it."""
    conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
    previous_assignee = conversation.assignee_id
    previous_team = conversation.team_id
    if unassign:
        conversation.assignee = None
    if agent is not None:
        _check_may_assign(actor, agent)
        conversation.assignee = agent
        conversation.assigned_at = timezone.now()
        if team is None:
            member_teams = list(TeamMembership.objects.filter(user=agent).values_list("team_id", flat=True))
            if conversation.team_id not in member_teams and member_teams:
                conversation.team_id = member_teams[0]
    if team is not None:
        conversation.team = team
        if agent is None and conversation.assignee_id and not TeamMembership.objects.filter(
            team=team, user_id=conversation.assignee_id
        ).exists():
            conversation.assignee = None  # transferred to a team the assignee is not in
    if agent is None and team is None and not unassign:
        raise ValidationError(_("Choose an agent or a team."))
    conversation.full_clean()
    conversation.save()
    if conversation.assignee_id and conversation.assignee_id != previous_assignee:
        timeline_record(
            customer=conversation.customer,
            kind=TimelineKind.CONVERSATION_ASSIGNED,
            occurred_at=timezone.now(),
            title=_("Assigned to %(agent)s") % {"agent": conversation.assignee},
            data={"conversation": conversation.pk, "agent": conversation.assignee_id, "by": actor.pk if actor else None},
        )
    groups = set(conversation_audience(conversation=conversation))
    if previous_assignee and previous_assignee != conversation.assignee_id:
        groups.add(realtime.agent_group(previous_assignee))
    realtime.publish("channels.conversation.assigned", _conversation_payload(conversation), groups=groups)
    if (conversation.assignee_id, conversation.team_id) != (previous_assignee, previous_team):
        _assigned_event(conversation, previous_assignee_id=previous_assignee, actor=actor)
    if unassign and conversation.assignee_id is None:
        conversation_auto_assign(conversation=conversation)
    return conversation


@transaction.atomic
def conversation_status_set(
    *,
    conversation: Conversation,
    status: str,
    actor: User | None,
    snoozed_until: dt.datetime | None = None,
) -> Conversation:
    """Open / pending / snoozed (until a time in the future) / resolved."""
    if status not in ConversationStatus.values:
        raise ValidationError({"status": [_("“%(value)s” is not a conversation status.") % {"value": status}]})
    conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
    now = timezone.now()
    if status == ConversationStatus.SNOOZED:
        if snoozed_until is None or snoozed_until <= now:
            raise ValidationError({"snoozed_until": [_("A snoozed conversation needs a time in the future.")]})
        conversation.snoozed_until = snoozed_until
    else:
        conversation.snoozed_until = None
    was_resolved = conversation.status == ConversationStatus.RESOLVED
    previous_status = conversation.status
    if status != ConversationStatus.RESOLVED and was_resolved:
        if Conversation.objects.filter(customer_id=conversation.customer_id).exclude(
            status=ConversationStatus.RESOLVED
        ).exists():
            raise ValidationError({"status": [_("This customer already has an unresolved conversation.")]})
    conversation.status = status
    conversation.resolved_at = now if status == ConversationStatus.RESOLVED else None
    conversation.save()
    if status == ConversationStatus.RESOLVED and not was_resolved:
        timeline_record(
            customer=conversation.customer,
            kind=TimelineKind.CONVERSATION_RESOLVED,
            occurred_at=now,
            title=_("Conversation resolved"),
            data={"conversation": conversation.pk, "by": actor.pk if actor else None},
        )
    realtime.publish("channels.conversation.status_changed", _conversation_payload(conversation),
                     groups=conversation_audience(conversation=conversation))
    _status_event(conversation, previous_status=previous_status, actor=actor)
    if status == ConversationStatus.RESOLVED and conversation.assignee_id:
        # The agent freed a slot: give them the oldest conversation waiting in their teams.
        conversation_assign_waiting(agent=conversation.assignee)
    return conversation


# --- automatic assignment -----------------------------------------------------------------


UNRESOLVED = [ConversationStatus.OPEN, ConversationStatus.PENDING, ConversationStatus.SNOOZED]


def agent_candidates(*, team_id: int, limit: int | None = None) -> list[User]:
    """Online, active members of the team below their max concurrent conversations, least
    loaded first, then the one who waited longest since their last assignment (round-robin);
    the first `limit` of them.

    Both per-agent numbers are index probes on (assignee, status) and (assignee, assigned_at):
    a COUNT over a join of every conversation ever assigned took 360 ms per new conversation on
    the 200k-conversation bench. Capacity and order are SQL too: building every member of a
    110-agent team as a User to keep one cost 5 ms of CPU per new conversation."""
    users = _agents_by_load(team_id)
    return list(users[:limit] if limit is not None else users)


def _agents_by_load(team_id: int):
    """The team's online, active members with room for one more, in the order they get the next."""
    assigned = Conversation.objects.filter(assignee=OuterRef("pk")).order_by()
    open_count = assigned.filter(status__in=UNRESOLVED).values("assignee").annotate(n=Count("id")).values("n")
    last_assigned = assigned.filter(assigned_at__isnull=False).order_by("-assigned_at").values("assigned_at")[:1]
    return (
        User.objects.filter(
            team_memberships__team_id=team_id, is_active=True, availability=Availability.ONLINE
        )
        .annotate(open_count=Coalesce(Subquery(open_count), 0), last_assigned_at=Subquery(last_assigned))
        .filter(open_count__lt=F("max_concurrent_conversations"))
        .order_by("open_count", F("last_assigned_at").asc(nulls_first=True), "pk")
    )


def _auto_assign_unsaved(conversations: list[Conversation], reopens: list[tuple[int, int]] = ()) -> None:
    """Choose assignees for new, unsaved conversations, in order, exactly as
    `conversation_auto_assign` called on each in turn would: one read of each team's free agents
    with their loads, then the choices in memory (each choice adds one to the agent's load and
    makes them the most recently assigned; the assignment times step by a microsecond so the
    next batch's SQL sees the same order). A reopen in `reopens` (see `conversations_open`)
    adds one to its assignee's load before the conversations that came after it."""
    by_team: dict[int, list[tuple[int, Conversation]]] = {}
    for n, conversation in enumerate(conversations):
        if conversation.team_id and conversation.assignee_id is None:
            by_team.setdefault(conversation.team_id, []).append((n, conversation))
    reopens = sorted(reopens, key=lambda r: r[0])
    now = timezone.now()
    step = 0
    for team_id, waiting in by_team.items():
        # [pk, open_count, last_assigned_at, capacity], in the SQL's order (the order ties keep)
        agents = [list(row) for row in _agents_by_load(team_id).values_list(
            "pk", "open_count", "last_assigned_at", "max_concurrent_conversations")]
        by_pk = {agent[0]: agent for agent in agents}
        counted = 0
        for n, conversation in waiting:
            while counted < len(reopens) and reopens[counted][0] <= n:
                if (agent := by_pk.get(reopens[counted][1])) is not None:
                    agent[1] += 1
                counted += 1
            free = [agent for agent in agents if agent[1] < agent[3]]
            if not free:
                break  # nobody free: the rest wait in the team's queue, as one by one
            agent = min(free, key=lambda a: (a[1], a[2] is not None, a[2] or now, a[0]))
            step += 1
            agent[1], agent[2] = agent[1] + 1, now + dt.timedelta(microseconds=step)
            conversation.assignee_id, conversation.assigned_at = agent[0], agent[2]


@transaction.atomic
def conversation_auto_assign(*, conversation: Conversation) -> User | None:
    """Round-robin among online members of the conversation's team, respecting capacity.
    Leaves it unassigned (waiting in the team queue) when nobody is free."""
    if conversation.assignee_id or not conversation.team_id or conversation.status == ConversationStatus.RESOLVED:
        return None
    candidates = agent_candidates(team_id=conversation.team_id, limit=1)
    if not candidates:
        return None
    agent = candidates[0]
    now = timezone.now()
    Conversation.objects.filter(pk=conversation.pk).update(assignee=agent, assigned_at=now)
    conversation.assignee, conversation.assigned_at = agent, now
    realtime.publish("channels.conversation.assigned", _conversation_payload(conversation),
                     groups=[realtime.agent_group(agent.pk)])
    _assigned_event(conversation, previous_assignee_id=None, actor=None)
    return agent


def conversations_assign_backlog(*, limit: int = 500) -> int:
    """Periodic safety net: give waiting (unassigned, open) team conversations, oldest first, to
    online agents with free capacity, e.g. after someone came online."""
    assigned = 0
    waiting = (Conversation.objects.filter(assignee__isnull=True, team__isnull=False, status=ConversationStatus.OPEN)
               .order_by("created_at", "id").values_list("pk", flat=True)[:limit])
    full_teams: set[int] = set()
    for pk in list(waiting):
        with transaction.atomic():
            conversation = Conversation.objects.select_for_update().filter(pk=pk, assignee__isnull=True).first()
            if conversation is None or conversation.team_id in full_teams:
                continue
            if conversation_auto_assign(conversation=conversation) is None:
                full_teams.add(conversation.team_id)  # nobody free there: skip its other waiters
            else:
                assigned += 1
    return assigned


@transaction.atomic
def conversation_assign_waiting(*, agent: User) -> list[Conversation]:
    """When an agent frees up (comes online, resolves one), assign them the oldest unassigned
    conversations of their teams until they reach their capacity: no backlog left behind."""
    agent = User.objects.get(pk=agent.pk)
    if not agent.is_active or agent.availability != Availability.ONLINE:
        return []
    open_count = Conversation.objects.filter(assignee=agent).exclude(status=ConversationStatus.RESOLVED).count()
    free = agent.max_concurrent_conversations - open_count
    if free <= 0:
        return []
    team_ids = TeamMembership.objects.filter(user=agent).values_list("team_id", flat=True)
    waiting = list(
        Conversation.objects.select_for_update(skip_locked=True)
        .filter(assignee__isnull=True, team_id__in=team_ids, status=ConversationStatus.OPEN)
        .order_by("created_at", "id")[:free]
    )
    now = timezone.now()
    for conversation in waiting:
        conversation.assignee = agent
        conversation.assigned_at = now
        conversation.save(update_fields=["assignee", "assigned_at"])
        realtime.publish("channels.conversation.assigned", _conversation_payload(conversation),
                         groups=[realtime.agent_group(agent.pk)])
        _assigned_event(conversation, previous_assignee_id=None, actor=None)
    return waiting


@transaction.atomic
def conversation_priority_set(*, conversation: Conversation, priority: str) -> Conversation:
    if priority not in ConversationPriority.values:
        raise ValidationError({"priority": [_("“%(value)s” is not a priority.") % {"value": priority}]})
    Conversation.objects.filter(pk=conversation.pk).update(priority=priority)
    conversation.priority = priority
    return conversation


@transaction.atomic
def conversations_wake_snoozed(*, now: dt.datetime | None = None) -> int:
    """Snoozed conversations whose time has come are open again (and their agent told)."""
    now = now or timezone.now()
    due = list(Conversation.objects.select_for_update(skip_locked=True)
               .filter(status=ConversationStatus.SNOOZED, snoozed_until__lte=now))
    for conversation in due:
        conversation.status = ConversationStatus.OPEN
        conversation.snoozed_until = None
        conversation.save(update_fields=["status", "snoozed_until"])
        realtime.publish("channels.conversation.status_changed", _conversation_payload(conversation),
                         groups=conversation_audience(conversation=conversation))
        _status_event(conversation, previous_status=ConversationStatus.SNOOZED, actor=None)
    return len(due)


@transaction.atomic
def conversations_merge_prepare(*, survivor: Customer, merged: Customer) -> Conversation | None:
    """Before `merged`'s conversations move to `survivor`: when both have an unresolved one, the
    merged profile's is resolved (with a system note pointing at the survivor's), so the
    one-unresolved-conversation-per-customer rule holds after the move.

    To be called by customers.customer_merge inside its transaction, before it repoints the
    registered foreign keys (customers.merge_hooks has no such callback yet). Returns the
    conversation it resolved, if any."""
    open_ = ~Q(status=ConversationStatus.RESOLVED)
    kept = Conversation.objects.select_for_update().filter(open_, customer=survivor).first()
    folded = Conversation.objects.select_for_update().filter(open_, customer=merged).first()
    if kept is None or folded is None:
        return None
    from channels_app.models import MessageDirection, MessageSender, MessageStatus
    from channels_app.services.messages import message_record

    now = timezone.now()
    if folded.last_inbox_id:
        message_record(conversation=folded, inbox=folded.last_inbox, direction=MessageDirection.OUTBOUND,
                       sender=MessageSender.SYSTEM, private=True, status=MessageStatus.SENT, created_at=now,
                       content=_("Profiles merged: this conversation continues in #%(id)s.") % {"id": kept.pk},
                       data={"merged_into_conversation": kept.pk})
    folded_previous_status = folded.status
    folded.status = ConversationStatus.RESOLVED
    folded.resolved_at = now
    folded.snoozed_until = None
    folded.save(update_fields=["status", "resolved_at", "snoozed_until"])
    _status_event(folded, previous_status=folded_previous_status, actor=None)
    if kept.assignee_id is None and folded.assignee_id:
        kept.assignee_id, kept.assigned_at = folded.assignee_id, now
        kept.save(update_fields=["assignee", "assigned_at"])
    return folded


def merge_participant_prepare(*, survivor: Customer, merged: Customer) -> dict:
    """customers.merge_hooks participant: fold the second open conversation, remember how."""
    open_ = ~Q(status=ConversationStatus.RESOLVED)
    folded = Conversation.objects.filter(open_, customer=merged).first()
    kept = Conversation.objects.filter(open_, customer=survivor).first()
    if folded is None or kept is None:
        return {}
    before = {
        "folded": folded.pk, "status": folded.status, "resolved_at": folded.resolved_at,
        "snoozed_until": folded.snoozed_until, "kept": kept.pk, "kept_assignee": kept.assignee_id,
        "kept_assigned_at": kept.assigned_at, "last_message": folded.messages.order_by("-id").values_list("id", flat=True).first(),
    }
    conversations_merge_prepare(survivor=survivor, merged=merged)
    return {key: value.isoformat() if isinstance(value, dt.datetime) else value for key, value in before.items()}


def merge_participant_restore(*, survivor: Customer, merged: Customer, data: dict) -> None:
    """On unmerge: the folded conversation is open again exactly as it was, without the note."""
    if not data:
        return
    parse = lambda value: dt.datetime.fromisoformat(value) if value else None  # noqa: E731
    folded = Conversation.objects.select_for_update().get(pk=data["folded"])
    folded.messages.filter(id__gt=data["last_message"] or 0, sender=MessageSender.SYSTEM, private=True).delete()
    folded.status, folded.resolved_at, folded.snoozed_until = data["status"], parse(data["resolved_at"]), parse(data["snoozed_until"])
    folded.save(update_fields=["status", "resolved_at", "snoozed_until"])
    Conversation.objects.filter(pk=data["kept"]).update(
        assignee_id=data["kept_assignee"], assigned_at=parse(data["kept_assigned_at"])
    )
