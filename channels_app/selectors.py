"""Reads for channels_app, scoped to what the viewer may see.

Visibility (used by the API, the HTML pages and the websocket consumers alike): an agent sees
conversations assigned to them or to one of their teams; supervisors and admins see all.
"""
from __future__ import annotations

import uuid as uuidlib

from django.db import connection
from django.db.models import (
    BigIntegerField,
    Count,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce

from accounts.models import User
from accounts.selectors import team_ids_for_user, user_is_supervisor_or_admin
from channels_app.models import (
    CannedResponse,
    Conversation,
    ConversationRead,
    ConversationStatus,
    Inbox,
    Label,
    Message,
    MessageDirection,
)
from cxplatform.db import AnyOf, Compiled, Param


def inbox_for_webhook(*, kind: str, inbox_uuid: str | uuidlib.UUID) -> Inbox | None:
    """The active inbox a provider delivers to, or None (unknown, wrong kind, switched off)."""
    try:
        value = uuidlib.UUID(str(inbox_uuid))
    except ValueError:
        return None
    return Inbox.objects.filter(uuid=value, kind=kind, is_active=True).first()


def inbox_can_manage(*, viewer: User) -> bool:
    return user_is_supervisor_or_admin(user=viewer)


def inbox_list(*, viewer: User) -> QuerySet[Inbox]:
    """Every agent may see the inboxes (to choose a reply channel); only supervisors and admins
    see switched-off ones."""
    inboxes = Inbox.objects.select_related("default_team").order_by("name", "id")
    if not inbox_can_manage(viewer=viewer):
        inboxes = inboxes.filter(is_active=True)
    return inboxes


def inbox_get(*, viewer: User, inbox_id: int) -> Inbox:
    return inbox_list(viewer=viewer).get(pk=inbox_id)


def conversation_visibility(*, viewer: User) -> Q | None:
    """None: everything. Otherwise the filter of what this agent may see."""
    if user_is_supervisor_or_admin(user=viewer):
        return None
    return _agent_scope(viewer.pk, Q(team_id__in=team_ids_for_user(user=viewer)))


def _agent_scope(assignee, in_teams: Q) -> Q:
    """What an agent may see: the conversations assigned to them, or in one of their teams."""
    return Q(assignee_id=assignee) | in_teams


# What writing a message needs (conversation_get(for_message=True): every API reply and note),
# compiled once per connection (cxplatform.db.Compiled): any conversation for a supervisor or
# admin, for an agent only what _agent_scope lets them see.
def _for_message() -> QuerySet[Conversation]:
    return Conversation.objects.select_related("customer", "last_inbox").filter(pk=Param("pk", BigIntegerField()))


_FOR_MESSAGE_ANY = Compiled(_for_message)
_FOR_MESSAGE_AGENT = Compiled(lambda: _for_message().filter(_agent_scope(
    Param("viewer", BigIntegerField()), Q(AnyOf(F("team_id"), Param("teams"))))))


def conversation_can_view(*, viewer: User, conversation: Conversation) -> bool:
    if user_is_supervisor_or_admin(user=viewer):
        return True
    return conversation.assignee_id == viewer.pk or conversation.team_id in team_ids_for_user(user=viewer)


def _visible_conversations(viewer: User) -> QuerySet[Conversation]:
    conversations = Conversation.objects.all()
    scope = conversation_visibility(viewer=viewer)
    if scope is not None:
        conversations = conversations.filter(scope)
    return conversations


def conversation_list(
    *,
    viewer: User,
    status: str = "",
    inbox_id: int | None = None,
    assignee_id: int | None = None,
    unassigned: bool = False,
    team_id: int | None = None,
    team_ids: list[int] | None = None,
    customer_id: int | None = None,
    label: str = "",
    priority: str = "",
    with_unread: bool = False,
    for_rows: bool = False,
) -> QuerySet[Conversation]:
    """Conversations the viewer may see, filtered, newest first; related rows loaded in a fixed
    number of queries whatever the page size. `with_unread` annotates `unread_count`: the
    viewer's unread customer messages (a subquery, no extra query).

    `for_rows`: only the columns the agent's list rows show (ROW_FIELDS; the inbox page and
    search). Whole rows of the conversation, customer, assignee, team and inboxes made a page
    of 25 parse ~380 timestamps and every JSON column it never shows: a third of the page's
    query CPU. Reading any other field of such a row costs a query per row.

    The channel and label filters are EXISTS subqueries rather than joins, so no DISTINCT is
    needed: a DISTINCT made PostgreSQL compute every row's `unread_count` and sort the whole
    filtered set before LIMIT (2-3 s for "all" on 200k conversations); without it the
    (status, -id) index or the primary key serves the order and only the page's rows are
    computed."""
    conversations = _visible_conversations(viewer)
    if priority:
        conversations = conversations.filter(priority=priority)
    if with_unread:
        conversations = conversations.annotate(unread_count=unread_count_expression(viewer=viewer))
    if status:
        conversations = conversations.filter(status=status)
    if inbox_id is not None:
        conversations = conversations.filter(Exists(Conversation.inboxes.through.objects.filter(
            conversation_id=OuterRef("pk"), inbox_id=inbox_id)))
    if unassigned:
        conversations = conversations.filter(assignee__isnull=True)
    elif assignee_id is not None:
        conversations = conversations.filter(assignee_id=assignee_id)
    if team_id is not None:
        conversations = conversations.filter(team_id=team_id)
    if team_ids is not None:
        conversations = conversations.filter(team_id__in=team_ids)
    if customer_id is not None:
        conversations = conversations.filter(customer_id=customer_id)
    if label:
        conversations = conversations.filter(Exists(Conversation.labels.through.objects.filter(
            conversation_id=OuterRef("pk"), label__name=label.strip().lower())))
    inboxes, labels = Inbox.objects.order_by("id"), Label.objects.order_by("name")
    if for_rows:
        conversations = conversations.select_related("customer", "assignee", "team").only(*ROW_FIELDS)
        inboxes, labels = inboxes.only("id", "kind"), labels.only("id", "name", "colour")
    else:
        conversations = conversations.select_related("customer", "assignee", "team", "last_inbox")
    return (
        # As plain lists (Conversation.inbox_list / label_list read them): prefetching into the
        # related managers built a filtered queryset per row, ~3 ms of the inbox page's CPU.
        conversations.prefetch_related(Prefetch("inboxes", queryset=inboxes, to_attr="inbox_rows"),
                                       Prefetch("labels", queryset=labels, to_attr="label_rows"))
        .order_by("-id")
    )


# What a conversation row of the inbox list or the search results shows (for_rows above).
ROW_FIELDS = (
    "id", "status", "priority", "customer_id", "assignee_id", "team_id", "last_message_at",
    "customer__display_name", "assignee__full_name", "assignee__email", "team__name",
)


def conversation_get(*, viewer: User, conversation_id: int, for_page: bool = False,
                     for_message: bool = False) -> Conversation:
    """Raises Conversation.DoesNotExist when missing or not visible (the API answers 404).

    `for_message`: only what writing a message into it needs (customer and last inbox, one
    query), for `message_create_outbound`.

    `for_page`: also what the agent's conversation page shows, in the same query: the
    customer's owner (for customer_panel), `csat_rating` (the customer's answer to this
    conversation's survey, None when none) and `viewer_last_read_message_id`, the viewer's read
    marker (None when never read). Scalar subqueries: joining the survey and response made the
    query's planning three times longer."""
    if for_message:
        if user_is_supervisor_or_admin(user=viewer):
            found = _FOR_MESSAGE_ANY.fetch(pk=conversation_id)
        else:
            found = _FOR_MESSAGE_AGENT.fetch(pk=conversation_id, viewer=viewer.pk,
                                             teams=list(team_ids_for_user(user=viewer)))
        if not found:
            raise Conversation.DoesNotExist("Conversation matching query does not exist.")
        return found[0]
    conversations = (
        _visible_conversations(viewer)
        .select_related("customer", "assignee", "team", "last_inbox")
        .prefetch_related(Prefetch("inboxes", queryset=Inbox.objects.order_by("id")))
    )
    if for_page:
        marker = ConversationRead.objects.filter(user=viewer, conversation=OuterRef("pk")).values(
            "last_read_message_id")[:1]
        rating = Conversation.objects.filter(pk=OuterRef("pk")).values("csat_survey__response__rating")[:1]
        conversations = conversations.select_related("customer__owner_agent").annotate(
            viewer_last_read_message_id=Subquery(marker), csat_rating=Subquery(rating))
    return conversations.get(pk=conversation_id)


def message_list(*, viewer: User, conversation: Conversation, after_id: int | None = None) -> QuerySet[Message]:
    """Messages of a conversation the viewer may see (check with conversation_get first);
    `after_id`: only newer ones (message ids are monotonic: a client catching up after a
    dropped websocket asks for what came after the last id it saw)."""
    if not conversation_can_view(viewer=viewer, conversation=conversation):
        return Message.objects.none()
    messages = Message.objects.filter(conversation=conversation)
    if after_id is not None:
        messages = messages.filter(pk__gt=after_id)
    return messages.select_related("inbox", "author").order_by("id")


def reachable_inboxes(*, conversation: Conversation) -> list[Inbox]:
    """Inboxes the customer can be replied on: those the conversation spans, last one first."""
    inboxes = sorted(conversation.inboxes.all(), key=lambda i: (i.pk != conversation.last_inbox_id, i.pk))
    return [i for i in inboxes if i.is_active]


def attachment_get(*, viewer: User, conversation: Conversation, message_uuid, index: int) -> dict | None:
    """A stored attachment of a message in a conversation the viewer may see, or None."""
    message = message_list(viewer=viewer, conversation=conversation).filter(uuid=message_uuid).first()
    if message is None or not 0 <= index < len(message.attachments):
        return None
    item = message.attachments[index]
    return item if item.get("stored") else None


def canned_response_list(*, viewer: User, search: str = "", language: str = "") -> QuerySet[CannedResponse]:
    """Canned responses are shared by every agent and channel; `search` matches the shortcut
    (a leading slash ignored), title or body; `language` keeps that language and language-less ones."""
    responses = CannedResponse.objects.select_related("created_by").order_by("shortcut", "id")
    search = search.strip().lstrip("/")
    if search:
        responses = responses.filter(Q(shortcut__icontains=search) | Q(title__icontains=search)
                                     | Q(body__icontains=search))
    if language:
        responses = responses.filter(Q(language=language.lower()) | Q(language=""))
    return responses


def canned_response_get(*, viewer: User, canned_id: int) -> CannedResponse:
    return canned_response_list(viewer=viewer).get(pk=canned_id)


def label_list(*, viewer: User, marked_on: Conversation | None = None) -> QuerySet[Label]:
    """Every label; with `marked_on`, each carries `on_conversation` (whether that conversation
    has it): the conversation page's chips and its "add label" choices in one query."""
    labels = Label.objects.order_by("name", "id")
    if marked_on is not None:
        labels = labels.annotate(on_conversation=Exists(Conversation.labels.through.objects.filter(
            conversation_id=marked_on.pk, label_id=OuterRef("pk"))))
    return labels


# --- unread counts ---------------------------------------------------------------------------


def unread_count_expression(*, viewer: User):
    """Customer messages of the outer conversation after the viewer's read marker (0 when none)."""
    marker = ConversationRead.objects.filter(user=viewer, conversation=OuterRef(OuterRef("pk"))).values(
        "last_read_message_id")[:1]
    unread = (
        Message.objects.filter(conversation=OuterRef("pk"), direction=MessageDirection.INBOUND)
        .filter(pk__gt=Coalesce(Subquery(marker), Value(0)))
        .order_by()
        .values("conversation")
        .annotate(n=Count("pk"))
        .values("n")[:1]
    )
    return Coalesce(Subquery(unread, output_field=IntegerField()), Value(0))


def conversation_unread_count(*, viewer: User, conversation: Conversation) -> int:
    marker = ConversationRead.objects.filter(user=viewer, conversation=conversation).values_list(
        "last_read_message_id", flat=True).first() or 0
    return Message.objects.filter(conversation=conversation, direction=MessageDirection.INBOUND,
                                  pk__gt=marker).count()


def inbox_view_list(*, viewer: User) -> list[dict]:
    """The views (tabs) of the inbox with how many of their unresolved conversations have unread
    customer messages for the viewer: one aggregate query for all tabs.

    A conversation is unread when it has a customer message (`last_inbound_at`) and the viewer
    has no read marker on it or a customer message after the marker. Written in SQL: the same
    query built with the ORM (visibility, EXISTS subqueries, one filtered COUNT per tab) took
    3.5-6 ms of CPU to compile, more than the database took to answer it, on every inbox page.
    The visibility clause is `conversation_visibility`'s rule; tests compare the counts with
    that rule and an ORM statement of the unread one, for agents with and without teams and leads."""
    is_lead = user_is_supervisor_or_admin(user=viewer)
    team_ids = team_ids_for_user(user=viewer)
    teams_in = f"c.team_id IN ({', '.join(['%s'] * len(team_ids))})" if team_ids else "FALSE"
    visible = "" if is_lead else f"AND (c.assignee_id = %s OR {teams_in})"
    conversation, read, message = (connection.ops.quote_name(model._meta.db_table)
                                   for model in (Conversation, ConversationRead, Message))
    sql = f"""
        SELECT COUNT(*) FILTER (WHERE c.assignee_id = %s),
               COUNT(*) FILTER (WHERE c.assignee_id IS NULL),
               COUNT(*) FILTER (WHERE {teams_in}),
               COUNT(*)
        FROM {conversation} c LEFT JOIN {read} r ON r.conversation_id = c.id AND r.user_id = %s
        WHERE c.status <> %s AND c.last_inbound_at IS NOT NULL {visible}
          AND (r.id IS NULL OR EXISTS (SELECT 1 FROM {message} m WHERE m.conversation_id = c.id
                                       AND m.direction = %s AND m.id > r.last_read_message_id))
    """
    params = [viewer.pk, *team_ids, viewer.pk, ConversationStatus.RESOLVED]
    if not is_lead:
        params += [viewer.pk, *team_ids]
    params.append(MessageDirection.INBOUND)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        mine, unassigned, teams, everything = cursor.fetchone()
    counts = {"mine": mine, "unassigned": unassigned, "teams": teams}
    if is_lead:
        counts["all"] = everything
    return [{"key": name, "unread": n or 0} for name, n in counts.items()]


def conversation_view_filters(*, viewer: User, view: str) -> dict:
    """The conversation_list filters of one inbox view (tab)."""
    if view == "mine":
        return {"assignee_id": viewer.pk}
    if view == "unassigned":
        return {"unassigned": True}
    if view == "teams":
        return {"team_ids": team_ids_for_user(user=viewer)}
    return {}


# --- search ----------------------------------------------------------------------------------

SEARCH_MIN_LENGTH = 2


def _phone_spelling(q: str) -> str:
    """"(0812) 3456-7890", "+62 812…" and "62812…" all become +6281234567890 (default region
    from PHONE_DEFAULT_REGION, ID); "" when the query is not a phone number."""
    from customers.identity import IdentityValueError, phone_normalise

    if sum(ch.isdigit() for ch in q) < 6:
        return ""
    try:
        return phone_normalise(q)
    except IdentityValueError:
        return ""


def customer_search(*, viewer: User, q: str):
    """Live customers matching the query by name, email, any identity or a phone number written
    any way; scoping is the customers app's own (customers.selectors.customer_list)."""
    from customers.selectors import customer_list

    q = (q or "").strip()
    if len(q) < SEARCH_MIN_LENGTH:
        return customer_list(viewer=viewer).none()
    matches = customer_list(viewer=viewer, q=q)
    phone = _phone_spelling(q)
    if phone and phone != q:
        matches = customer_list(viewer=viewer).filter(
            Q(pk__in=matches.values("pk")) | Q(pk__in=customer_list(viewer=viewer, q=phone).values("pk")))
    return matches.order_by("display_name", "id")


def conversation_search(*, viewer: User, q: str) -> QuerySet[Conversation]:
    """Conversations the viewer may see whose messages contain the query, or whose customer
    matches it (name, email, identity, phone in any spelling). Each row carries `matched_text`:
    the newest matching message, for the result snippet."""
    q = (q or "").strip()
    if len(q) < SEARCH_MIN_LENGTH:
        return Conversation.objects.none()
    matching_messages = Message.objects.filter(conversation=OuterRef("pk"), content__icontains=q)
    customers = customer_search(viewer=viewer, q=q).values("pk")
    return (
        conversation_list(viewer=viewer, with_unread=True, for_rows=True)
        .filter(Q(Exists(matching_messages)) | Q(customer_id__in=customers))
        .annotate(matched_text=Subquery(matching_messages.order_by("-pk").values("content")[:1]))
        .order_by("-last_message_at", "-id")
    )


# --- composer --------------------------------------------------------------------------------


def mention_candidate_list(*, viewer: User, conversation: Conversation, q: str = "", limit: int = 8) -> list[dict]:
    """Agents the viewer may @mention in this conversation: active users who may see it (the
    same rule as conversation_can_view: its assignee, its team's members, supervisors and
    admins; a mention of anyone else notifies nobody), matched on name or email. One query."""
    from accounts.models import Role
    from accounts.selectors import users_with_role

    q = (q or "").strip().lstrip("@")
    may_see = Q(pk__in=users_with_role(role=Role.SUPERVISOR).values("pk")) | Q(
        pk__in=users_with_role(role=Role.ADMIN).values("pk"))
    if conversation.assignee_id:
        may_see |= Q(pk=conversation.assignee_id)
    if conversation.team_id:
        may_see |= Q(team_memberships__team_id=conversation.team_id)
    users = User.objects.filter(may_see, is_active=True).exclude(pk=viewer.pk)
    if q:
        users = users.filter(Q(full_name__icontains=q) | Q(email__istartswith=q))
    users = User.objects.filter(pk__in=users.values("pk")).order_by("full_name", "email")[:limit]
    return [{"id": u.pk, "handle": u.email.split("@", 1)[0], "name": u.get_full_name()} for u in users]


def team_choice_list(*, viewer: User):
    """Teams a conversation may be transferred to by this viewer: everyone's for supervisors and
    admins, the agent's own teams otherwise."""
    from accounts.models import Team

    if user_is_supervisor_or_admin(user=viewer):
        return Team.objects.order_by("name")
    return Team.objects.filter(pk__in=team_ids_for_user(user=viewer)).order_by("name")


# --- customer 360 side panel -----------------------------------------------------------------


def customer_panel(*, viewer: User, conversation: Conversation) -> dict:
    """Everything the side panel shows about the conversation's customer, through the owning
    apps' selectors: profile and identities, lifecycle stage, CSAT history, previous
    conversations (only those the viewer may see), recent timeline, merge suggestions."""
    from customers.selectors import customer_can_merge, customer_get_loaded, customer_timeline, merge_suggestion_list
    from journeys.selectors import stage_history

    try:  # the customer conversation_get(for_page=True) read with the conversation, owner included
        customer = customer_get_loaded(viewer=viewer, customer=conversation.customer, with_consents=False)
    except conversation.customer.DoesNotExist:
        return {"customer": None}
    # Only number, status and date are shown: no related rows to load.
    previous = list(_visible_conversations(viewer).filter(customer_id=customer.pk).exclude(pk=conversation.pk)
                    .order_by("-id")[:5])
    suggestions = []
    for suggestion in merge_suggestion_list(viewer=viewer, customer=customer)[:3]:
        other = suggestion.b if suggestion.a_id == customer.pk else suggestion.a
        suggestions.append({"suggestion": suggestion, "other": other})
    last_stage = stage_history(customer=customer).last()
    return {
        "customer": customer,
        "identities": list(customer.identities.all()),
        "stage_changed_at": last_stage.changed_at if last_stage is not None else None,
        "csat": csat_history(viewer=viewer, customer_id=customer.pk),
        "previous_conversations": previous,
        "timeline": customer_timeline(customer=customer, page_size=8).entries,
        "merge_suggestions": suggestions,
        "can_merge": customer_can_merge(viewer=viewer),
    }


def csat_history(*, viewer: User, customer_id: int, limit: int = 5) -> list:
    from journeys.selectors import csat_response_list

    return list(csat_response_list(viewer=viewer).filter(survey__customer_id=customer_id)[:limit])


# --- office hours ----------------------------------------------------------------------------


def office_hours_list(*, viewer: User):
    """Office hours of the inboxes the viewer may see, with their schedule and texts."""
    from channels_app.models import OfficeHours

    return (OfficeHours.objects.filter(inbox__in=inbox_list(viewer=viewer))
            .select_related("inbox").prefetch_related("intervals", "messages").order_by("inbox__name", "id"))


def office_hours_get(*, viewer: User, office_hours_id: int):
    return office_hours_list(viewer=viewer).get(pk=office_hours_id)
