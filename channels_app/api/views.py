"""Channels API: parse → service/selector → serialize, nothing else."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import exceptions, generics, permissions, serializers, status
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
    OfficeHoursSerializer,
    OfficeHoursStatusSerializer,
    OfficeHoursUpdateSerializer,
    StatusSerializer,
)
from channels_app.models import CannedResponse, Conversation, Inbox, InboxKind, Label, Message, OfficeHours
from channels_app.services import office_hours as office_hours_services
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


def _get_or_404(selector: Callable[..., Any], model: type, **kwargs: Any) -> Any:
    try:
        return selector(**kwargs)
    except model.DoesNotExist:
        raise Http404 from None


def _conversation_or_404(request, pk: int) -> Conversation:
    return _get_or_404(selectors.conversation_get, Conversation, viewer=request.user, conversation_id=pk)


class SelectedObjectApi(generics.GenericAPIView):
    """A view on one object the viewer may see: `selected()` loads it through the selector
    (`selector(viewer=…, <selector_id>=pk)`; 404 when it does not exist or is not visible),
    `validated()` parses the body, `represent()` answers with the object's representation
    (`representation_class`, default `serializer_class`)."""

    selector: Callable[..., Any]
    selector_id: str
    representation_class: type | None = None

    def selected(self, pk: int | None = None) -> Any:
        return _get_or_404(type(self).selector, self.queryset.model, viewer=self.request.user,
                           **{self.selector_id: self.kwargs["pk"] if pk is None else pk})

    def validated(self, serializer_class: type | None = None, **kwargs: Any) -> dict[str, Any]:
        return _validated(serializer_class or self.get_serializer_class(), self.request, **kwargs)

    def representation_context(self, instance: Any) -> dict[str, Any]:
        return {}

    def represent(self, instance: Any, *, status: int = status.HTTP_200_OK) -> Response:
        serializer_class = self.representation_class or self.serializer_class
        return Response(serializer_class(instance, context=self.representation_context(instance)).data, status=status)


def _validated(serializer_class: type, request, **kwargs: Any) -> dict[str, Any]:
    serializer = serializer_class(data=request.data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


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
        data = _validated(InboxCreateSerializer, request)
        inbox = services.inbox_create(
            name=data["name"], kind=data["kind"], config=data["config"],
            default_team=_team_or_400(data["default_team"], "default_team"), is_active=data["is_active"],
        )
        return Response(InboxSerializer(inbox, context=_inbox_context([inbox], request)).data, status=status.HTTP_201_CREATED)


class InboxDetailApi(SelectedObjectApi):
    queryset = Inbox.objects.none()
    serializer_class = InboxSerializer
    permission_classes = [ModelPermission]
    permission_model = "inbox"
    selector = staticmethod(selectors.inbox_get)
    selector_id = "inbox_id"

    def representation_context(self, instance: Inbox) -> dict[str, Any]:
        return _inbox_context([instance], self.request)

    @extend_schema(summary="One inbox")
    def get(self, request, pk: int):
        return self.represent(self.selected())

    @extend_schema(summary="Change an inbox", request=InboxUpdateSerializer, responses={200: InboxSerializer})
    def patch(self, request, pk: int):
        inbox = self.selected()
        data = dict(self.validated(InboxUpdateSerializer, partial=True))
        if "default_team" in data:
            data["default_team"] = _team_or_400(data["default_team"], "default_team")
        return self.represent(services.inbox_update(inbox=inbox, **data))


class InboxMessageApi(SelectedObjectApi):
    queryset = Inbox.objects.none()
    serializer_class = InteractionLogSerializer
    permission_classes = [ModelPermission]
    permission_model = "message"
    selector = staticmethod(selectors.inbox_get)
    selector_id = "inbox_id"
    representation_class = MessageSerializer

    @extend_schema(
        summary="Post an inbound message (API inbox) or log a call / store visit (voice, in-person inbox)",
        description="API inbox: the body is the API channel's message JSON (one message or "
        "`{\"messages\": [...]}`); it is stored and processed like a webhook delivery (202). "
        "Voice and in-person inboxes: the interaction below is added to the customer's conversation (201).",
        request=InteractionLogSerializer,
        responses={201: MessageSerializer, 202: InboundAcceptedSerializer},
    )
    def post(self, request, pk: int):
        inbox = self.selected()
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
        data = self.validated()
        try:
            customer = customer_get(viewer=request.user, customer_id=data["customer"])
        except Customer.DoesNotExist:
            raise exceptions.ValidationError({"customer": ["No such customer."]}) from None
        message = services.interaction_log(
            inbox=inbox, customer=customer, direction=data["direction"], content=data["content"],
            author=request.user, details=data["details"], occurred_at=data["occurred_at"],
            external_id=data["external_id"],
        )
        return self.represent(Message.objects.select_related("inbox", "author").get(pk=message.pk),
                              status=status.HTTP_201_CREATED)


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


class ConversationApi(SelectedObjectApi):
    """Views on one conversation the viewer may see; they answer with the conversation."""

    queryset = Conversation.objects.none()
    permission_classes = [ModelPermission]
    permission_model = "conversation"
    selector = staticmethod(selectors.conversation_get)
    selector_id = "conversation_id"
    representation_class = ConversationSerializer


class ConversationDetailApi(ConversationApi):
    serializer_class = ConversationSerializer

    @extend_schema(summary="One conversation")
    def get(self, request, pk: int):
        return self.represent(self.selected())

    @extend_schema(summary="Set the priority", request=ConversationUpdateSerializer,
                   responses={200: ConversationSerializer})
    def patch(self, request, pk: int):
        conversation = self.selected()
        data = self.validated(ConversationUpdateSerializer)
        services.conversation_priority_set(conversation=conversation, priority=data["priority"])
        return self.represent(self.selected())


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
        conversation = _get_or_404(selectors.conversation_get, Conversation, viewer=request.user,
                                   conversation_id=pk, for_message=True)
        data = _validated(MessageCreateSerializer, request)
        inbox = None
        if data["inbox"] is not None:
            inbox = Inbox.objects.filter(pk=data["inbox"]).first()
            if inbox is None:
                raise exceptions.ValidationError({"inbox": ["No such inbox."]})
        message = services.message_create_outbound(
            conversation=conversation, author=request.user, content=data["content"],
            private=data["private"], inbox=inbox, template=data["template"], conversation_fresh=True,
        )
        if not message.private and settings.CELERY_TASK_ALWAYS_EAGER:
            # Eager Celery (no broker) delivered the reply inside this request: show its status.
            # With a broker the delivery runs later and the stored row is still what we hold.
            message = Message.objects.select_related("inbox", "author").get(pk=message.pk)
        return Response(MessageSerializer(message).data, status=status.HTTP_201_CREATED)


class ConversationAssignApi(ConversationApi):
    serializer_class = AssignSerializer
    required_actions = {"POST": "change"}

    @extend_schema(summary="Assign or transfer to an agent and/or a team", request=AssignSerializer,
                   responses={200: ConversationSerializer})
    def post(self, request, pk: int):
        conversation = self.selected()
        data = self.validated()
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
        return self.represent(self._fresh(pk))

    def _fresh(self, pk: int) -> Conversation:
        # After a transfer the actor may no longer see it: answer with what was stored.
        try:
            return self.selected()
        except Http404:
            return Conversation.objects.select_related("customer", "assignee", "team", "last_inbox").get(pk=pk)


class ConversationStatusApi(ConversationApi):
    serializer_class = StatusSerializer
    required_actions = {"POST": "change"}

    @extend_schema(summary="Open, pending, snooze (until) or resolve", request=StatusSerializer,
                   responses={200: ConversationSerializer})
    def post(self, request, pk: int):
        conversation = self.selected()
        data = self.validated()
        services.conversation_status_set(conversation=conversation, status=data["status"], actor=request.user,
                                         snoozed_until=data["snoozed_until"])
        return self.represent(self.selected())


class ConversationLabelsApi(ConversationApi):
    serializer_class = ConversationLabelsSerializer
    required_actions = {"POST": "change"}

    @extend_schema(summary="Set the conversation's labels (replaces them)", request=ConversationLabelsSerializer,
                   responses={200: ConversationLabelsResultSerializer})
    def post(self, request, pk: int):
        conversation = self.selected()
        labels = services.conversation_labels_set(conversation=conversation, labels=self.validated()["labels"])
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
        data = _validated(LabelSerializer, request)
        label = services.label_create(name=data["name"], colour=data.get("colour", "#6b7280"),
                                      description=data.get("description", ""))
        return Response(LabelSerializer(label).data, status=status.HTTP_201_CREATED)


# --- canned responses ---------------------------------------------------------------------


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
        data = _validated(CannedResponseSerializer, request)
        canned = services.canned_response_create(shortcut=data["shortcut"], title=data["title"], body=data["body"],
                                                 language=data.get("language", ""), created_by=request.user)
        return Response(CannedResponseSerializer(canned).data, status=status.HTTP_201_CREATED)


class CannedResponseApi(SelectedObjectApi):
    queryset = CannedResponse.objects.none()
    permission_classes = [ModelPermission]
    permission_model = "cannedresponse"
    selector = staticmethod(selectors.canned_response_get)
    selector_id = "canned_id"


class CannedResponseDetailApi(CannedResponseApi):
    serializer_class = CannedResponseSerializer

    @extend_schema(summary="One canned response")
    def get(self, request, pk: int):
        return self.represent(self.selected())

    @extend_schema(summary="Change a canned response", request=CannedResponseUpdateSerializer,
                   responses={200: CannedResponseSerializer})
    def patch(self, request, pk: int):
        canned = self.selected()
        data = self.validated(CannedResponseUpdateSerializer, partial=True)
        return self.represent(services.canned_response_update(canned=canned, **data))

    @extend_schema(summary="Delete a canned response", responses={204: None})
    def delete(self, request, pk: int):
        services.canned_response_delete(canned=self.selected())
        return Response(status=status.HTTP_204_NO_CONTENT)


class CannedResponseRenderApi(CannedResponseApi):
    serializer_class = CannedResponseRenderSerializer
    required_actions = {"POST": "view"}

    @extend_schema(summary="The canned response's text for a conversation (variables filled in)",
                   request=CannedResponseRenderSerializer, responses={200: CannedResponseRenderedSerializer})
    def post(self, request, pk: int):
        canned = self.selected()
        conversation = _conversation_or_404(request, self.validated()["conversation"])
        content = services.canned_response_render(canned=canned, conversation=conversation, agent=request.user)
        return Response({"content": content})


# --- office hours -------------------------------------------------------------------------

OFFICE_HOURS_EXAMPLE = {
    "inbox": 1,
    "time_zone": "Asia/Jakarta",
    "holiday_country": "ID",
    "is_enabled": True,
    "auto_reply_enabled": True,
    "greeting_enabled": True,
    "schedule": [{"weekday": day, "opens_at": "08:00", "closes_at": "17:00"} for day in range(5)]
    + [{"weekday": 5, "opens_at": "09:00", "closes_at": "13:00"}],
    "automatic_messages": [
        {"kind": "out_of_hours", "language": "id",
         "body": "Terima kasih, kami buka Senin–Jumat 08.00–17.00 WIB dan akan segera membalas."},
        {"kind": "out_of_hours", "language": "",
         "body": "Thanks! We are open Mon–Fri 08:00–17:00 (Jakarta time) and will reply then."},
        {"kind": "greeting", "language": "id", "body": "Halo! Ada yang bisa kami bantu?"},
    ],
}


def _office_hours_arguments(data: dict[str, Any]) -> dict[str, Any]:
    """API shape → office_hours_set / office_hours_update keyword arguments (only what was sent)."""
    arguments = {name: data[name] for name in ("time_zone", "holiday_country", "is_enabled", "auto_reply_enabled",
                                               "greeting_enabled") if name in data}
    if "schedule" in data:
        schedule: dict[int, list] = {}
        for interval in data["schedule"]:
            schedule.setdefault(interval["weekday"], []).append((interval["opens_at"], interval["closes_at"]))
        arguments["schedule"] = schedule
    if "automatic_messages" in data:
        texts: dict[str, dict[str, str]] = {"out_of_hours": {}, "greeting": {}}
        for message in data["automatic_messages"]:
            texts[message["kind"]][message["language"].lower()] = message["body"]
        arguments.update(out_of_hours=texts["out_of_hours"], greeting=texts["greeting"])
    return arguments


def _office_hours_fresh(viewer, pk: int) -> OfficeHours:
    return selectors.office_hours_get(viewer=viewer, office_hours_id=pk)


class OfficeHoursListApi(generics.ListAPIView):
    queryset = OfficeHours.objects.none()
    serializer_class = OfficeHoursSerializer
    permission_classes = [ModelPermission]
    permission_model = "officehours"
    pagination_class = None
    filter_backends: list = []

    def get_queryset(self):
        return selectors.office_hours_list(viewer=self.request.user)

    @extend_schema(summary="List office hours (one set per inbox)")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Set up an inbox's office hours",
        description="Weekly openings (local time in `time_zone`), closed on the public holidays of "
        "`holiday_country`; outside them customers get the `out_of_hours` text once per closed period, "
        "and the first message of a new conversation the `greeting` (texts per language, empty = any other).",
        request=OfficeHoursSerializer, responses={201: OfficeHoursSerializer},
        examples=[OpenApiExample("Jakarta store", value=OFFICE_HOURS_EXAMPLE, request_only=True)],
    )
    def post(self, request):
        data = _validated(OfficeHoursSerializer, request)
        try:
            inbox = selectors.inbox_get(viewer=request.user, inbox_id=data["inbox"])
        except Inbox.DoesNotExist:
            raise exceptions.ValidationError({"inbox": [_("No such inbox.")]}) from None
        if OfficeHours.objects.filter(inbox=inbox).exists():
            raise exceptions.ValidationError({"inbox": [_("This inbox already has office hours: change them instead.")]})
        arguments = _office_hours_arguments(data)
        arguments.setdefault("schedule", {})
        office_hours = services.office_hours_set(inbox=inbox, **arguments)
        return Response(OfficeHoursSerializer(_office_hours_fresh(request.user, office_hours.pk)).data,
                        status=status.HTTP_201_CREATED)


class OfficeHoursApi(SelectedObjectApi):
    queryset = OfficeHours.objects.none()
    permission_classes = [ModelPermission]
    permission_model = "officehours"
    selector = staticmethod(selectors.office_hours_get)
    selector_id = "office_hours_id"
    representation_class = OfficeHoursSerializer


class OfficeHoursDetailApi(OfficeHoursApi):
    serializer_class = OfficeHoursSerializer

    @extend_schema(summary="One inbox's office hours")
    def get(self, request, pk: int):
        return self.represent(self.selected())

    @extend_schema(summary="Replace office hours", request=OfficeHoursUpdateSerializer,
                   responses={200: OfficeHoursSerializer},
                   examples=[OpenApiExample("Jakarta store", value={k: v for k, v in OFFICE_HOURS_EXAMPLE.items()
                                                                    if k != "inbox"}, request_only=True)])
    def put(self, request, pk: int):
        return self._change(partial=False)

    @extend_schema(summary="Change some office hours settings",
                   description="Fields left out keep their value; `schedule` and `automatic_messages`, when "
                   "sent, replace the whole list.",
                   request=OfficeHoursUpdateSerializer, responses={200: OfficeHoursSerializer},
                   examples=[OpenApiExample("Saturday half day", request_only=True, value={"schedule": [
                       {"weekday": 5, "opens_at": "09:00", "closes_at": "13:00"}]}),
                             OpenApiExample("Switch off", request_only=True, value={"is_enabled": False})])
    def patch(self, request, pk: int):
        return self._change(partial=True)

    def _change(self, *, partial: bool) -> Response:
        office_hours = self.selected()
        arguments = _office_hours_arguments(self.validated(OfficeHoursUpdateSerializer, partial=partial))
        office_hours_services.office_hours_update(office_hours=office_hours, **arguments)
        return self.represent(self.selected())


class OfficeHoursStatusApi(OfficeHoursApi):
    serializer_class = OfficeHoursStatusSerializer

    @extend_schema(
        summary="Is the inbox open now, and when does it next open / close",
        parameters=[OpenApiParameter("at", OpenApiTypes.DATETIME,
                                     description="Ask about this moment instead of now (ISO 8601 with offset).")],
        responses={200: OfficeHoursStatusSerializer},
        examples=[OpenApiExample("Closed on a Sunday", response_only=True, value={
            "is_open": False, "at": "2026-11-22T10:00:00+07:00", "holiday": "",
            "closed_since": "2026-11-21T13:00:00+07:00", "next_opening": "2026-11-23T08:00:00+07:00",
            "next_closing": "2026-11-23T17:00:00+07:00",
            "upcoming_holidays": [{"date": "2026-12-25", "name": "Christmas Day"}]})],
    )
    def get(self, request, pk: int):
        office_hours = self.selected()
        at = timezone.now()
        if "at" in request.query_params:
            field = serializers.DateTimeField()
            try:
                at = field.to_internal_value(request.query_params["at"])
            except serializers.ValidationError as exc:
                raise exceptions.ValidationError({"at": exc.detail}) from None
        zone = office_hours_services.office_hours_zone(office_hours=office_hours)
        local = at.astimezone(zone)
        is_open, closed_since = office_hours_services.office_hours_state(office_hours=office_hours, now=at)
        next_opening, next_closing = office_hours_services.office_hours_next_change(office_hours=office_hours,
                                                                                    now=at)
        upcoming = office_hours_services.office_hours_holidays_upcoming(office_hours=office_hours,
                                                                        today=local.date())

        def local_time(moment):
            return moment.astimezone(zone) if moment is not None else None

        return Response(OfficeHoursStatusSerializer({
            "is_open": is_open, "at": local,
            "holiday": office_hours_services.office_hours_holiday(office_hours=office_hours, day=local.date()),
            "closed_since": local_time(closed_since), "next_opening": local_time(next_opening),
            "next_closing": local_time(next_closing),
            "upcoming_holidays": [{"date": day, "name": name} for day, name in upcoming],
        }).data)
