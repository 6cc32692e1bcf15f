"""Agent UI for conversations: the list of what you may see, and one conversation with a reply box.

Views parse the request, call a selector or a service and render; nothing else. Live updates
arrive over the agent websocket (`agent.<id>` group); the pages themselves are plain HTML.
"""
from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.storage import default_storage
from django.core.paginator import Paginator
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from channels_app import selectors, services
from channels_app.models import Conversation, ConversationStatus, Inbox

PAGE_SIZE = 25


class ConversationFilterForm(forms.Form):
    status = forms.ChoiceField(label=gettext_lazy("Status"), required=False,
                               choices=[("", gettext_lazy("Any"))] + list(ConversationStatus.choices))
    mine = forms.BooleanField(label=gettext_lazy("Assigned to me"), required=False)


class ReplyForm(forms.Form):
    content = forms.CharField(label=gettext_lazy("Reply"), max_length=10_000, widget=forms.Textarea(attrs={"rows": 3}))
    private = forms.BooleanField(label=gettext_lazy("Private note"), required=False)
    inbox = forms.ModelChoiceField(label=gettext_lazy("Channel"), queryset=Inbox.objects.none(), required=False,
                                   empty_label=gettext_lazy("Where the customer last wrote"))

    def __init__(self, *args, inboxes=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["inbox"].queryset = Inbox.objects.filter(pk__in=[i.pk for i in inboxes])


class StatusForm(forms.Form):
    status = forms.ChoiceField(label=gettext_lazy("Status"), choices=ConversationStatus.choices)
    snoozed_until = forms.DateTimeField(label=gettext_lazy("Snooze until"), required=False,
                                        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))


def _require_view(request) -> None:
    if not request.user.has_perm("channels_app.view_conversation"):
        raise PermissionDenied


def _conversation_or_404(request, pk: int) -> Conversation:
    try:
        return selectors.conversation_get(viewer=request.user, conversation_id=pk)
    except Conversation.DoesNotExist:
        raise Http404 from None


@login_required
def conversation_list(request):
    _require_view(request)
    form = ConversationFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    conversations = selectors.conversation_list(
        viewer=request.user,
        status=filters.get("status", ""),
        assignee_id=request.user.pk if filters.get("mine") else None,
    )
    page = Paginator(conversations, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "channels_app/list.html", {"form": form, "page": page, "query": query.urlencode()})


@login_required
def conversation_detail(request, pk: int):
    _require_view(request)
    conversation = _conversation_or_404(request, pk)
    inboxes = selectors.reachable_inboxes(conversation=conversation)
    return render(request, "channels_app/detail.html", {
        "conversation": conversation,
        "chat": selectors.message_list(viewer=request.user, conversation=conversation),
        "reply_form": ReplyForm(inboxes=inboxes),
        "status_form": StatusForm(initial={"status": conversation.status}),
        "can_reply": request.user.has_perm("channels_app.add_message"),
        "csat_rating": _csat_rating(conversation),
    })


def _csat_rating(conversation: Conversation) -> int | None:
    survey = getattr(conversation, "csat_survey", None) if hasattr(conversation, "csat_survey") else None
    response = getattr(survey, "response", None) if survey is not None else None
    return response.rating if response is not None else None


@login_required
def attachment_download(request, pk: int, message_uuid, index: int):
    """A stored inbound attachment, only for agents who may see the conversation."""
    _require_view(request)
    conversation = _conversation_or_404(request, pk)
    item = selectors.attachment_get(viewer=request.user, conversation=conversation, message_uuid=message_uuid,
                                    index=index)
    if item is None:
        raise Http404
    response = FileResponse(default_storage.open(item["stored"], "rb"), content_type=item.get("mime_type") or
                            "application/octet-stream", as_attachment=not item.get("mime_type", "").startswith("image/"),
                            filename=item["stored"].rsplit("/", 1)[-1])
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_POST
def conversation_reply(request, pk: int):
    _require_view(request)
    if not request.user.has_perm("channels_app.add_message"):
        raise PermissionDenied
    conversation = _conversation_or_404(request, pk)
    form = ReplyForm(request.POST, inboxes=selectors.reachable_inboxes(conversation=conversation))
    if form.is_valid():
        try:
            services.message_create_outbound(conversation=conversation, author=request.user,
                                             content=form.cleaned_data["content"],
                                             private=form.cleaned_data["private"], inbox=form.cleaned_data["inbox"])
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, _("Note added.") if form.cleaned_data["private"] else _("Reply queued."))
    else:
        messages.error(request, _("Write a message first."))
    return redirect("channels_app:detail", pk=conversation.pk)


@login_required
@require_POST
def conversation_status(request, pk: int):
    _require_view(request)
    if not request.user.has_perm("channels_app.change_conversation"):
        raise PermissionDenied
    conversation = _conversation_or_404(request, pk)
    form = StatusForm(request.POST)
    if form.is_valid():
        try:
            services.conversation_status_set(conversation=conversation, status=form.cleaned_data["status"],
                                             actor=request.user, snoozed_until=form.cleaned_data["snoozed_until"])
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
    else:
        messages.error(request, _("Choose a status."))
    return redirect("channels_app:detail", pk=conversation.pk)


@login_required
def conversation_messages_fragment(request, pk: int):
    """Messages after `?after=<id>` rendered by the same partial as the page: the live client
    fetches this when pushed an event and after every reconnect (the database is the truth)."""
    _require_view(request)
    conversation = _conversation_or_404(request, pk)
    try:
        after = int(request.GET.get("after", "0"))
    except ValueError:
        after = 0
    chat = selectors.message_list(viewer=request.user, conversation=conversation, after_id=after)[:200]
    return render(request, "channels_app/_messages.html", {"chat": chat, "conversation": conversation})


@login_required
def webchat_snippets(request):
    """The `<script>` snippet of every web chat inbox, with a copy button (supervisors/admins)."""
    if not selectors.inbox_can_manage(viewer=request.user):
        raise PermissionDenied
    inboxes = [inbox for inbox in selectors.inbox_list(viewer=request.user) if inbox.kind == "webchat"]
    base = f"{request.scheme}://{request.get_host()}"
    return render(request, "channels_app/webchat_snippets.html", {"inboxes": inboxes, "base": base})


@login_required
@require_POST
def conversation_assign_me(request, pk: int):
    _require_view(request)
    if not request.user.has_perm("channels_app.change_conversation"):
        raise PermissionDenied
    conversation = _conversation_or_404(request, pk)
    try:
        services.conversation_assign(conversation=conversation, actor=request.user, agent=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("channels_app:detail", pk=conversation.pk)
