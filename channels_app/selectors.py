"""Reads for channels_app, scoped to what the viewer may see.

Visibility (used by the API, the HTML pages and the websocket consumers alike): an agent sees
conversations assigned to them or to one of their teams; supervisors and admins see all.
"""
from __future__ import annotations

import uuid as uuidlib

from django.db.models import Prefetch, Q, QuerySet

from accounts.models import User
from accounts.selectors import team_ids_for_user, user_is_supervisor_or_admin
from channels_app.models import CannedResponse, Conversation, Inbox, Label, Message


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
    return Q(assignee=viewer) | Q(team_id__in=team_ids_for_user(user=viewer))


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
    customer_id: int | None = None,
    label: str = "",
) -> QuerySet[Conversation]:
    """Conversations the viewer may see, filtered; related rows loaded in a fixed number of
    queries whatever the page size."""
    conversations = _visible_conversations(viewer)
    if status:
        conversations = conversations.filter(status=status)
    if inbox_id is not None:
        conversations = conversations.filter(inboxes__id=inbox_id)
    if unassigned:
        conversations = conversations.filter(assignee__isnull=True)
    elif assignee_id is not None:
        conversations = conversations.filter(assignee_id=assignee_id)
    if team_id is not None:
        conversations = conversations.filter(team_id=team_id)
    if customer_id is not None:
        conversations = conversations.filter(customer_id=customer_id)
    if label:
        conversations = conversations.filter(labels__name=label.strip().lower())
    return (
        conversations.select_related("customer", "assignee", "team", "last_inbox")
        .prefetch_related(Prefetch("inboxes", queryset=Inbox.objects.order_by("id")),
                          Prefetch("labels", queryset=Label.objects.order_by("name")))
        .distinct()
        .order_by("-id")
    )


def conversation_get(*, viewer: User, conversation_id: int) -> Conversation:
    """Raises Conversation.DoesNotExist when missing or not visible (the API answers 404)."""
    return (
        _visible_conversations(viewer)
        .select_related("customer", "assignee", "team", "last_inbox")
        .prefetch_related(Prefetch("inboxes", queryset=Inbox.objects.order_by("id")))
        .get(pk=conversation_id)
    )


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


def label_list(*, viewer: User) -> QuerySet[Label]:
    return Label.objects.order_by("name", "id")
