"""Agent UI for conversations: the list of what you may see, and one conversation with a reply box.

Views parse the request, call a selector or a service and render; nothing else. Live updates
arrive over the agent websocket (`agent.<id>` group); the pages themselves are plain HTML.
"""
from __future__ import annotations

import mimetypes

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from channels_app import selectors, services
from channels_app.models import Conversation, ConversationPriority, ConversationStatus, Inbox
from channels_app.services import media as media_services
from channels_app.services import workspace as workspace_services
from cxplatform.forms import PlainModelChoiceField
from cxplatform.paginator import CappedPaginator

PAGE_SIZE = 25
LIST_COUNT_CAP = 500  # conversations counted past the page's start; beyond: "more than"


INBOX_VIEWS = {
    "mine": gettext_lazy("Mine"),
    "unassigned": gettext_lazy("Unassigned"),
    "teams": gettext_lazy("My teams"),
    "all": gettext_lazy("All"),
}


class ConversationFilterForm(forms.Form):
    status = forms.ChoiceField(label=gettext_lazy("Status"), required=False,
                               choices=[("", gettext_lazy("Any"))] + list(ConversationStatus.choices))
    priority = forms.ChoiceField(label=gettext_lazy("Priority"), required=False,
                                 choices=[("", gettext_lazy("Any"))] + list(ConversationPriority.choices))
    label = forms.CharField(label=gettext_lazy("Label"), required=False, max_length=50)
    mine = forms.BooleanField(label=gettext_lazy("Assigned to me"), required=False)


class ReplyForm(forms.Form):
    content = forms.CharField(label=gettext_lazy("Reply"), max_length=10_000, widget=forms.Textarea(attrs={"rows": 3}))
    private = forms.BooleanField(label=gettext_lazy("Private note"), required=False)
    inbox = forms.ModelChoiceField(label=gettext_lazy("Channel"), queryset=Inbox.objects.none(), required=False,
                                   empty_label=gettext_lazy("Where the customer last wrote"))
    attachment = forms.FileField(label=gettext_lazy("Attach a file"), required=False)

    def __init__(self, *args, inboxes=(), **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["inbox"]
        field.queryset = Inbox.objects.filter(pk__in=[i.pk for i in inboxes])
        # Rendered from the inboxes already loaded (no query); validation still uses the queryset.
        field.choices = [("", field.empty_label)] + [
            (inbox.pk, field.label_from_instance(inbox)) for inbox in sorted(inboxes, key=lambda i: (i.name, i.pk))]
        self.fields["content"].required = False
        self.fields["content"].widget.attrs.update({"autocomplete": "off", "aria-describedby": "composer-help"})

    def clean_attachment(self):
        upload = self.cleaned_data.get("attachment")
        if upload:
            self.attachment_mime_type = media_services.upload_check(
                filename=upload.name, size=upload.size, mime_type=getattr(upload, "content_type", ""))
        return upload

    def clean(self):
        cleaned = super().clean()
        if not (cleaned.get("content") or "").strip() and not cleaned.get("attachment") and not self.errors:
            raise ValidationError(_("Write a message first."))
        return cleaned


class PriorityForm(forms.Form):
    priority = forms.ChoiceField(label=gettext_lazy("Priority"), choices=ConversationPriority.choices)


class TeamForm(forms.Form):
    team = PlainModelChoiceField(label=gettext_lazy("Team"), queryset=None,
                                 empty_label=gettext_lazy("Choose a team"))

    def __init__(self, *args, viewer=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = selectors.team_choice_list(viewer=viewer)


class LabelForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Label"), max_length=50)
    action = forms.ChoiceField(choices=[("add", "add"), ("remove", "remove")], widget=forms.HiddenInput)


class SnoozeForm(forms.Form):
    snoozed_until = forms.DateTimeField(
        label=gettext_lazy("Snooze until"), help_text=gettext_lazy("In your time zone."),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"))


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
    tabs = selectors.inbox_view_list(viewer=request.user)
    view = request.GET.get("view", "")
    if view not in {tab["key"] for tab in tabs}:
        view = ""
    scope = {"assignee_id": request.user.pk} if filters.get("mine") else {}
    scope.update(selectors.conversation_view_filters(viewer=request.user, view=view))
    conversations = selectors.conversation_list(
        viewer=request.user,
        status=filters.get("status", ""),
        priority=filters.get("priority", ""),
        label=filters.get("label", ""),
        with_unread=True,
        for_rows=True,
        **scope,
    )
    page = CappedPaginator(conversations, PAGE_SIZE, cap=LIST_COUNT_CAP).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    for tab in tabs:
        tab["label"] = INBOX_VIEWS[tab["key"]]
    my_team_ids = ",".join(str(t) for t in selectors.conversation_view_filters(viewer=request.user, view="teams")["team_ids"])
    return render(request, "channels_app/list.html", {"form": form, "page": page, "query": query.urlencode(),
                                                      "tabs": tabs, "view": view, "my_team_ids": my_team_ids})


CHAT_PAGE = 50


@login_required
def conversation_detail(request, pk: int):
    _require_view(request)
    try:
        conversation = selectors.conversation_get(viewer=request.user, conversation_id=pk, for_page=True)
    except Conversation.DoesNotExist:
        raise Http404 from None
    inboxes = selectors.reachable_inboxes(conversation=conversation)
    # The latest CHAT_PAGE messages (a years-long WhatsApp chat must not render thousands),
    # or with ?before=<id> the CHAT_PAGE before that one.
    before = request.GET.get("before", "")
    before_id = int(before) if before.isdigit() else None
    messages = selectors.message_list(viewer=request.user, conversation=conversation)
    if before_id is not None:
        messages = messages.filter(pk__lt=before_id)
    chat = list(messages.order_by("-id")[:CHAT_PAGE + 1])
    has_earlier = len(chat) > CHAT_PAGE
    chat = chat[:CHAT_PAGE][::-1]
    newest = chat[-1].pk if chat else 0
    marker = conversation.viewer_last_read_message_id
    if before_id is None and (marker is None or marker < newest):  # already read up to here: nothing to write
        workspace_services.conversation_mark_read(conversation=conversation, user=request.user,
                                                  up_to_message_id=newest)
    return render(request, "channels_app/detail.html", {
        "conversation": conversation,
        "chat": chat,
        "earlier_before": chat[0].pk if has_earlier and chat else None,
        "viewing_earlier": before_id is not None,
        "reply_form": ReplyForm(inboxes=inboxes),
        **_panel_context(request, conversation),
        "can_reply": request.user.has_perm("channels_app.add_message"),
        "max_attachment_bytes": media_services.max_attachment_bytes(),
    })


def _panel_context(request, conversation: Conversation) -> dict:
    local_snooze = timezone.localtime(conversation.snoozed_until) if conversation.snoozed_until else None
    all_labels = list(selectors.label_list(viewer=request.user, marked_on=conversation))
    return {
        "status_form": StatusForm(initial={"status": conversation.status}),
        "priority_form": PriorityForm(initial={"priority": conversation.priority}),
        "team_form": TeamForm(viewer=request.user, initial={"team": conversation.team_id}),
        "snooze_form": SnoozeForm(initial={"snoozed_until": local_snooze}),
        "labels": [label for label in all_labels if label.on_conversation],
        "all_labels": all_labels,
        "can_change": request.user.has_perm("channels_app.change_conversation"),
        "csat_rating": conversation.csat_rating,  # selectors.conversation_get(for_page=True)
        "panel": selectors.customer_panel(viewer=request.user, conversation=conversation),
    }


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
    form = ReplyForm(request.POST, request.FILES, inboxes=selectors.reachable_inboxes(conversation=conversation))
    if not form.is_valid():
        messages.error(request, " ".join(str(e) for errors in form.errors.values() for e in errors))
        return redirect("channels_app:detail", pk=conversation.pk)
    inbox = form.cleaned_data["inbox"] or conversation.last_inbox
    attachments = []
    upload = form.cleaned_data.get("attachment")
    if upload:
        attachments.append(media_services.outbound_attachment_store(
            inbox_uuid=str(inbox.uuid if inbox else "none"), filename=upload.name, content=upload, size=upload.size,
            mime_type=form.attachment_mime_type, public_base=f"{request.scheme}://{request.get_host()}"))
    try:
        services.message_create_outbound(conversation=conversation, author=request.user,
                                         content=form.cleaned_data["content"], private=form.cleaned_data["private"],
                                         inbox=form.cleaned_data["inbox"], attachments=attachments or None)
    except ValidationError as exc:
        media_services.attachments_delete(attachments=attachments)
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, _("Note added.") if form.cleaned_data["private"] else _("Reply queued."))
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


# --- composer helpers ----------------------------------------------------------------------


@login_required
@require_GET
def canned_responses(request, pk: int):
    """The canned responses the agent may insert (`/` in the composer), rendered for this
    conversation's customer. JSON; the browser inserts `text` as plain text."""
    _require_view(request)
    conversation = _conversation_or_404(request, pk)
    found = selectors.canned_response_list(viewer=request.user, search=request.GET.get("q", ""))[:20]
    return JsonResponse({"results": [
        {"id": c.pk, "shortcut": c.shortcut, "title": c.title,
         "text": services.canned_response_render(canned=c, conversation=conversation, agent=request.user)}
        for c in found
    ]})


@login_required
@require_GET
def mention_candidates(request, pk: int):
    """Agents to @mention: those who may see this conversation (JSON)."""
    _require_view(request)
    conversation = _conversation_or_404(request, pk)
    return JsonResponse({"results": selectors.mention_candidate_list(
        viewer=request.user, conversation=conversation, q=request.GET.get("q", "")[:64])})


# --- conversation controls -----------------------------------------------------------------


def _change_allowed(request, pk: int) -> Conversation:
    _require_view(request)
    if not request.user.has_perm("channels_app.change_conversation"):
        raise PermissionDenied
    return _conversation_or_404(request, pk)


def _after_change(request, conversation: Conversation):
    """Back to the conversation, or to the list when the change took it out of the agent's sight
    (transferred to a team they are not in)."""
    if not selectors.conversation_can_view(viewer=request.user, conversation=conversation):
        messages.info(request, _("The conversation moved to a team you are not in."))
        return redirect("channels_app:list")
    return redirect("channels_app:detail", pk=conversation.pk)


@login_required
@require_POST
def conversation_priority(request, pk: int):
    conversation = _change_allowed(request, pk)
    form = PriorityForm(request.POST)
    if form.is_valid():
        workspace_services.conversation_priority_change(conversation=conversation, actor=request.user,
                                                        priority=form.cleaned_data["priority"])
    else:
        messages.error(request, _("Choose a priority."))
    return redirect("channels_app:detail", pk=conversation.pk)


@login_required
@require_POST
def conversation_team(request, pk: int):
    conversation = _change_allowed(request, pk)
    form = TeamForm(request.POST, viewer=request.user)
    if not form.is_valid():
        messages.error(request, _("Choose one of your teams."))
        return redirect("channels_app:detail", pk=conversation.pk)
    try:
        conversation = services.conversation_assign(conversation=conversation, actor=request.user,
                                                    team=form.cleaned_data["team"])
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return _after_change(request, conversation)


@login_required
@require_POST
def conversation_label(request, pk: int):
    conversation = _change_allowed(request, pk)
    form = LabelForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose a label."))
        return redirect("channels_app:detail", pk=conversation.pk)
    change = (workspace_services.conversation_label_add if form.cleaned_data["action"] == "add"
              else workspace_services.conversation_label_remove)
    try:
        change(conversation=conversation, name=form.cleaned_data["name"], actor=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("channels_app:detail", pk=conversation.pk)


@login_required
@require_POST
def conversation_read(request, pk: int):
    """The agent has seen the conversation up to `message` (the page calls this as messages
    arrive while it is visible)."""
    _require_view(request)
    conversation = _conversation_or_404(request, pk)
    try:
        up_to = int(request.POST.get("message", ""))
    except ValueError:
        up_to = None
    marker = workspace_services.conversation_mark_read(conversation=conversation, user=request.user,
                                                       up_to_message_id=up_to)
    return JsonResponse({"last_read_message_id": marker})


# --- search ----------------------------------------------------------------------------------

SEARCH_LIMIT = 25


@login_required
@require_GET
def search(request):
    """Conversations (message text, customer name, phone in any spelling, email) and customers,
    each scoped by its own app's visibility rules."""
    _require_view(request)
    q = request.GET.get("q", "").strip()[:200]
    conversations = list(selectors.conversation_search(viewer=request.user, q=q)[:SEARCH_LIMIT])
    customers = list(selectors.customer_search(viewer=request.user, q=q)[:10])
    return render(request, "channels_app/search.html", {
        "q": q, "conversations": conversations, "customers": customers,
        "too_short": 0 < len(q) < selectors.SEARCH_MIN_LENGTH, "min_length": selectors.SEARCH_MIN_LENGTH,
    })


# --- files for providers ---------------------------------------------------------------------


@require_GET
def media_signed(request, token: str):
    """An agent's outbound file, fetched by the provider (or a web chat visitor) through the
    expiring signed URL put in the send request. No session: the signature is the permission."""
    path = media_services.signed_media_path(token)
    if path is None or not default_storage.exists(path):
        raise Http404
    mime_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
    if not media_services.allowed_type(mime_type):
        mime_type = "application/octet-stream"
    response = FileResponse(default_storage.open(path, "rb"), content_type=mime_type,
                            as_attachment=not mime_type.startswith("image/"), filename=path.rsplit("/", 1)[-1])
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, max-age=300"
    response["X-Robots-Tag"] = "noindex"
    return response
