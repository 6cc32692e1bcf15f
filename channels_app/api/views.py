"""Channels API: parse → service/selector → serialize, nothing else."""
from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, generics, permissions, status
from rest_framework.response import Response

from accounts.models import Team, User
from channels_app import selectors, services
from channels_app.adapters.base import ParseError
from channels_app.api.serializers import (
    AssignSerializer,
    CannedResponseRenderedSerializer,
    CannedResponseRenderSerializer,
    CannedResponseSerializer,
    CannedResponseUpdateSerializer,
    ConversationLabelsResultSerializer,
    ConversationLabelsSerializer,
    ConversationListQuerySerializer,
    ConversationSerializer,
    ConversationUpdateSerializer,
    InboundAcceptedSerializer,
    InboxCreateSerializer,
    InboxSerializer,
    InboxUpdateSerializer,
    InteractionLogSerializer,
    LabelSerializer,
    MessageCreateSerializer,
    MessageSerializer,
    StatusSerializer,
)
from channels_app.models import CannedResponse, Conversation, Inbox, InboxKind, Label, Message
from customers.models import Customer
from customers.selectors import customer_get


class ModelPermission(permissions.BasePermission):
    """`<app>.<action>_<model>` by HTTP method; the view names the model."""

    action_for_method = {"GET": "view", "HEAD": "view", "OPTIONS": "view", "POST": "add", "PATCH": "change",
                         "PUT": "change", "DELETE": "delete"}

    def has_permission(self, request, view):
        user = request.user
        if not (user and user.is_authenticated):
            return False
        action = (getattr(view, "required_actions", {}) or {}).get(request.method) or self.action_for_method.get(
            request.method, "change")
        return user.has_perm(f"channels_app.{action}_{view.permission_model}")


def _team_or_400(team_id: int | None, field: str = "team") -> Team | None:
    if team_id is None:
        return None
    team = Team.objects.filter(pk=team_id).first()
    if team is None:
        raise exceptions.ValidationError({field: ["No such team."]})
    return team


def _conversation_or_404(request, pk: int) -> Conversation:
    try:
        return selectors.conversation_get(viewer=request.user, conversation_id=pk)
    except Conversation.DoesNotExist:
        raise Http404 from None


def _inbox_context(inboxes, request=None) -> dict:
    return {"request": request,
            "redacted_config": {inbox.pk: services.inbox_config_redacted(inbox=inbox) for inbox in inboxes}}


# --- inboxes ------------------------------------------------------------------------------


class InboxListApi(generics.ListAPIView):
    queryset = Inbox.objects.none()
    serializer_class = InboxSerializer
    permission_classes = [ModelPermission]
    permission_model = "inbox"
    pagination_class = None

    def get_queryset(self):
        return selectors.inbox_list(viewer=self.request.user)

    @extend_schema(summary="List inboxes (configured channels)")
    def get(self, request, *args, **kwargs):
        inboxes = list(self.get_queryset())
        return Response(InboxSerializer(inboxes, many=True, context=_inbox_context(inboxes, request)).data)

    @extend_schema(summary="Create an inbox", request=InboxCreateSerializer, responses={201: InboxSerializer})
    def post(self, request):
        serializer = InboxCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        inbox = services.inbox_create(
            name=data["name"], kind=data["kind"], config=data["config"],
            default_team=_team_or_400(data["default_team"], "default_team"), is_active=data["is_active"],
        )
        return Response(InboxSerializer(inbox, context=_inbox_context([inbox], request)).data, status=status.HTTP_201_CREATED)


class InboxDetailApi(generics.GenericAPIView):
    queryset = Inbox.objects.none()
    serializer_class = InboxSerializer
    permission_classes = [ModelPermission]
    permission_model = "inbox"

    def _inbox(self, pk: int) -> Inbox:
        try:
            return selectors.inbox_get(viewer=self.request.user, inbox_id=pk)
        except Inbox.DoesNotExist:
            raise Http404 from None

    @extend_schema(summary="One inbox")
    def get(self, request, pk: int):
        inbox = self._inbox(pk)
        return Response(InboxSerializer(inbox, context=_inbox_context([inbox], request)).data)

    @extend_schema(summary="Change an inbox", request=InboxUpdateSerializer, responses={200: InboxSerializer})
    def patch(self, request, pk: int):
        inbox = self._inbox(pk)
        serializer = InboxUpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        if "default_team" in data:
            data["default_team"] = _team_or_400(data["default_team"], "default_team")
        inbox = services.inbox_update(inbox=inbox, **data)
        return Response(InboxSerializer(inbox, context=_inbox_context([inbox], request)).data)


class InboxMessageApi(generics.GenericAPIView):
    queryset = Inbox.objects.none()
    serializer_class = InteractionLogSerializer
    permission_classes = [ModelPermission]
    permission_model = "message"

    @extend_schema(
        summary="Post an inbound message (API inbox) or log a call / store visit (voice, in-person inbox)",
        description="API inbox: the body is the API channel's message JSON (one message or "
        "`{\"messages\": [...]}`); it is stored and processed like a webhook delivery (202). "
        "Voice and in-person inboxes: the interaction below is added to the customer's conversation (201).",
        request=InteractionLogSerializer,
        responses={201: MessageSerializer, 202: InboundAcceptedSerializer},
    )
    def post(self, request, pk: int):
        try:
            inbox = selectors.inbox_get(viewer=request.user, inbox_id=pk)
        except Inbox.DoesNotExist:
            raise Http404 from None
        if inbox.kind == InboxKind.API:
            body = request.body
            try:
                services.inbox_adapter(inbox=inbox).parse(body, request.headers)
            except ParseError as exc:
                raise exceptions.ValidationError({"non_field_errors": [exc.message]}) from None
            event = services.webhook_event_store(inbox=inbox, body=body, headers=request.headers)
            return Response({"ok": True, "event": event.pk}, status=status.HTTP_202_ACCEPTED)
        if inbox.kind not in (InboxKind.VOICE, InboxKind.IN_PERSON):
            raise exceptions.ValidationError({"inbox": ["This channel receives messages through its provider webhook."]})
        serializer = InteractionLogSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            customer = customer_get(viewer=request.user, customer_id=data["customer"])
        except Customer.DoesNotExist:
            raise exceptions.ValidationError({"customer": ["No such customer."]}) from None
        message = services.interaction_log(
            inbox=inbox, customer=customer, direction=data["direction"], content=data["content"],
            author=request.user, details=data["details"], occurred_at=data["occurred_at"],
            external_id=data["external_id"],
        )
        message = Message.objects.select_related("inbox", "author").get(pk=message.pk)
        return Response(MessageSerializer(message).data, status=status.HTTP_201_CREATED)


# --- conversations ------------------------------------------------------------------------

LIST_PARAMETERS = [
    OpenApiParameter("status", str, enum=["open", "pending", "snoozed", "resolved"]),
    OpenApiParameter("inbox", int, description="Conversations that span this inbox."),
    OpenApiParameter("assignee", str, description="Agent id, \"me\" or \"none\" (unassigned)."),
    OpenApiParameter("team", int),
    OpenApiParameter("customer", int),
    OpenApiParameter("label", str, description="Conversations carrying this label (by name)."),
]


class ConversationListApi(generics.ListAPIView):
    queryset = Conversation.objects.none()
    serializer_class = ConversationSerializer
    permission_classes = [ModelPermission]
    permission_model = "conversation"
    filter_backends: list = []

    def get_queryset(self):
        query = ConversationListQuerySerializer(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        assignee = params.get("assignee", "")
        return selectors.conversation_list(
            viewer=self.request.user,
            status=params.get("status", ""),
            inbox_id=params.get("inbox"),
            assignee_id=self.request.user.pk if assignee == "me" else (int(assignee) if assignee.isdigit() else None),
            unassigned=assignee == "none",
            team_id=params.get("team"),
            customer_id=params.get("customer"),
            label=params.get("label", ""),
        )

    @extend_schema(summary="List the conversations you may see", parameters=LIST_PARAMETERS)
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class ConversationDetailApi(generics.GenericAPIView):
    queryset = Conversation.objects.none()
    serializer_class = ConversationSerializer
    permission_classes = [ModelPermission]
    permission_model = "conversation"

    @extend_schema(summary="One conversation")
    def get(self, request, pk: int):
        return Response(ConversationSerializer(_conversation_or_404(request, pk)).data)

    @extend_schema(summary="Set the priority", request=ConversationUpdateSerializer,
                   responses={200: ConversationSerializer})
    def patch(self, request, pk: int):
        conversation = _conversation_or_404(request, pk)
        serializer = ConversationUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.conversation_priority_set(conversation=conversation, priority=serializer.validated_data["priority"])
        return Response(ConversationSerializer(_conversation_or_404(request, pk)).data)


class ConversationMessageListApi(generics.ListAPIView):
    queryset = Message.objects.none()
    serializer_class = MessageSerializer
    permission_classes = [ModelPermission]
    permission_model = "message"
    filter_backends: list = []

    def get_queryset(self):
        conversation = _conversation_or_404(self.request, self.kwargs["pk"])
        after = self.request.query_params.get("after", "")
        if after and not after.isdigit():
            raise exceptions.ValidationError({"after": ["A message id."]})
        return selectors.message_list(viewer=self.request.user, conversation=conversation,
                                      after_id=int(after) if after else None)

    @extend_schema(summary="Messages of a conversation, newest first", parameters=[
        OpenApiParameter("after", int, description="Only messages with a larger id: what a reconnecting client "
                         "missed since the last message id it saw.")])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Reply to the customer, or add a private note",
        description="The reply is queued and sent in the background on the channel the customer last wrote "
        "from, or on `inbox` when given. Its status moves to sent / delivered / read, or failed with the "
        "provider's reason.",
        request=MessageCreateSerializer,
        responses={201: MessageSerializer},
    )
    def post(self, request, pk: int):
        conversation = _conversation_or_404(request, pk)
        serializer = MessageCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        inbox = None
        if data["inbox"] is not None:
            inbox = Inbox.objects.filter(pk=data["inbox"]).first()
            if inbox is None:
                raise exceptions.ValidationError({"inbox": ["No such inbox."]})
        message = services.message_create_outbound(
            conversation=conversation, author=request.user, content=data["content"],
            private=data["private"], inbox=inbox, template=data["template"],
        )
        message = Message.objects.select_related("inbox", "author").get(pk=message.pk)
        return Response(MessageSerializer(message).data, status=status.HTTP_201_CREATED)


class ConversationAssignApi(generics.GenericAPIView):
    queryset = Conversation.objects.none()
    serializer_class = AssignSerializer
    permission_classes = [ModelPermission]
    permission_model = "conversation"
    required_actions = {"POST": "change"}

    @extend_schema(summary="Assign or transfer to an agent and/or a team", request=AssignSerializer,
                   responses={200: ConversationSerializer})
    def post(self, request, pk: int):
        conversation = _conversation_or_404(request, pk)
        serializer = AssignSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        agent = None
        if data.get("agent") is not None:
            agent = User.objects.filter(pk=data["agent"], is_active=True).first()
            if agent is None:
                raise exceptions.ValidationError({"agent": ["No such active agent."]})
        team = _team_or_400(data.get("team"))
        services.conversation_assign(
            conversation=conversation, actor=request.user, agent=agent, team=team,
            unassign="agent" in data and data["agent"] is None,
        )
        return Response(ConversationSerializer(self._fresh(request, pk)).data)

    @staticmethod
    def _fresh(request, pk: int) -> Conversation:
        # After a transfer the actor may no longer see it: answer with what was stored.
        try:
            return selectors.conversation_get(viewer=request.user, conversation_id=pk)
        except Conversation.DoesNotExist:
            return Conversation.objects.select_related("customer", "assignee", "team", "last_inbox").get(pk=pk)


class ConversationStatusApi(generics.GenericAPIView):
    queryset = Conversation.objects.none()
    serializer_class = StatusSerializer
    permission_classes = [ModelPermission]
    permission_model = "conversation"
    required_actions = {"POST": "change"}

    @extend_schema(summary="Open, pending, snooze (until) or resolve", request=StatusSerializer,
                   responses={200: ConversationSerializer})
    def post(self, request, pk: int):
        conversation = _conversation_or_404(request, pk)
        serializer = StatusSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        services.conversation_status_set(conversation=conversation, status=data["status"], actor=request.user,
                                         snoozed_until=data["snoozed_until"])
        return Response(ConversationSerializer(_conversation_or_404(request, pk)).data)


class ConversationLabelsApi(generics.GenericAPIView):
    queryset = Conversation.objects.none()
    serializer_class = ConversationLabelsSerializer
    permission_classes = [ModelPermission]
    permission_model = "conversation"
    required_actions = {"POST": "change"}

    @extend_schema(summary="Set the conversation's labels (replaces them)", request=ConversationLabelsSerializer,
                   responses={200: ConversationLabelsResultSerializer})
    def post(self, request, pk: int):
        conversation = _conversation_or_404(request, pk)
        serializer = ConversationLabelsSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        labels = services.conversation_labels_set(conversation=conversation,
                                                  labels=serializer.validated_data["labels"])
        return Response({"labels": [label.name for label in labels]})


# --- labels -------------------------------------------------------------------------------


class LabelListApi(generics.ListAPIView):
    queryset = Label.objects.none()
    serializer_class = LabelSerializer
    permission_classes = [ModelPermission]
    permission_model = "label"
    pagination_class = None
    filter_backends: list = []

    def get_queryset(self):
        return selectors.label_list(viewer=self.request.user)

    @extend_schema(summary="List labels")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(summary="Create a label", request=LabelSerializer, responses={201: LabelSerializer})
    def post(self, request):
        serializer = LabelSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        label = services.label_create(name=data["name"], colour=data.get("colour", "#6b7280"),
                                      description=data.get("description", ""))
        return Response(LabelSerializer(label).data, status=status.HTTP_201_CREATED)


# --- canned responses ---------------------------------------------------------------------


def _canned_or_404(request, pk: int) -> CannedResponse:
    try:
        return selectors.canned_response_get(viewer=request.user, canned_id=pk)
    except CannedResponse.DoesNotExist:
        raise Http404 from None


class CannedResponseListApi(generics.ListAPIView):
    queryset = CannedResponse.objects.none()
    serializer_class = CannedResponseSerializer
    permission_classes = [ModelPermission]
    permission_model = "cannedresponse"
    pagination_class = None
    filter_backends: list = []

    def get_queryset(self):
        params = self.request.query_params
        return selectors.canned_response_list(viewer=self.request.user, search=params.get("search", "")[:100],
                                              language=params.get("language", "")[:8])

    @extend_schema(summary="List canned responses (shared by all channels)", parameters=[
        OpenApiParameter("search", str, description="Part of the shortcut, title or body."),
        OpenApiParameter("language", str, description="This language and language-less ones."),
    ])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(summary="Create a canned response", request=CannedResponseSerializer,
                   responses={201: CannedResponseSerializer})
    def post(self, request):
        serializer = CannedResponseSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        canned = services.canned_response_create(shortcut=data["shortcut"], title=data["title"], body=data["body"],
                                                 language=data.get("language", ""), created_by=request.user)
        return Response(CannedResponseSerializer(canned).data, status=status.HTTP_201_CREATED)


class CannedResponseDetailApi(generics.GenericAPIView):
    queryset = CannedResponse.objects.none()
    serializer_class = CannedResponseSerializer
    permission_classes = [ModelPermission]
    permission_model = "cannedresponse"

    @extend_schema(summary="One canned response")
    def get(self, request, pk: int):
        return Response(CannedResponseSerializer(_canned_or_404(request, pk)).data)

    @extend_schema(summary="Change a canned response", request=CannedResponseUpdateSerializer,
                   responses={200: CannedResponseSerializer})
    def patch(self, request, pk: int):
        canned = _canned_or_404(request, pk)
        serializer = CannedResponseUpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        canned = services.canned_response_update(canned=canned, **serializer.validated_data)
        return Response(CannedResponseSerializer(canned).data)

    @extend_schema(summary="Delete a canned response", responses={204: None})
    def delete(self, request, pk: int):
        services.canned_response_delete(canned=_canned_or_404(request, pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


class CannedResponseRenderApi(generics.GenericAPIView):
    queryset = CannedResponse.objects.none()
    serializer_class = CannedResponseRenderSerializer
    permission_classes = [ModelPermission]
    permission_model = "cannedresponse"
    required_actions = {"POST": "view"}

    @extend_schema(summary="The canned response's text for a conversation (variables filled in)",
                   request=CannedResponseRenderSerializer, responses={200: CannedResponseRenderedSerializer})
    def post(self, request, pk: int):
        canned = _canned_or_404(request, pk)
        serializer = CannedResponseRenderSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        conversation = _conversation_or_404(request, serializer.validated_data["conversation"])
        content = services.canned_response_render(canned=canned, conversation=conversation, agent=request.user)
        return Response({"content": content})
