"""Admin site: inboxes (secrets never displayed), conversations, messages, and the webhook
event log where supervisors see parked deliveries and replay them."""
from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from channels_app import services
from channels_app.models import Conversation, Inbox, Message, WebhookEvent


class InboxAdminForm(forms.ModelForm):
    settings_json = forms.JSONField(
        label=_("Settings"),
        required=False,
        help_text=_("Provider settings as JSON. Secrets are shown as their last 4 characters; leave them as "
                    "they are to keep the stored value."),
    )

    class Meta:
        model = Inbox
        fields = ["name", "kind", "default_team", "is_active"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["settings_json"].initial = services.inbox_config_redacted(inbox=self.instance)
            self.fields["kind"].disabled = True

    def clean(self):
        cleaned = super().clean()
        kind = cleaned.get("kind") or self.instance.kind
        settings_json = cleaned.get("settings_json") or {}
        if kind and not isinstance(settings_json, dict):
            self.add_error("settings_json", _("Settings must be a JSON object."))
        elif kind:
            try:
                services.inbox_config_check(kind=kind, config=settings_json,
                                            inbox=self.instance if self.instance.pk else None)
            except ValidationError as exc:
                self.add_error("settings_json", exc.messages)
        return cleaned


@admin.register(Inbox)
class InboxAdmin(admin.ModelAdmin):
    form = InboxAdminForm
    list_display = ["name", "kind", "default_team", "is_active", "webhook_url"]
    list_filter = ["kind", "is_active"]
    search_fields = ["name", "uuid"]
    readonly_fields = ["uuid", "webhook_url", "created_at", "updated_at"]

    def save_model(self, request, obj, form, change):
        # Through the services, so settings are validated by the adapter and secrets encrypted.
        data = form.cleaned_data
        if change:
            saved = services.inbox_update(inbox=obj, name=data["name"], config=data.get("settings_json") or {},
                                          default_team=data.get("default_team"), is_active=data["is_active"])
        else:
            saved = services.inbox_create(name=data["name"], kind=data["kind"], config=data.get("settings_json") or {},
                                          default_team=data.get("default_team"), is_active=data["is_active"])
        obj.pk, obj.uuid, obj.secrets_encrypted = saved.pk, saved.uuid, saved.secrets_encrypted


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    list_display = ["id", "inbox", "received_at", "status", "attempts", "short_error"]
    list_filter = ["status", "inbox__kind"]
    list_select_related = ["inbox"]
    date_hierarchy = "received_at"
    readonly_fields = ["inbox", "received_at", "body_text", "headers", "status", "attempts", "last_error",
                       "last_attempt_at", "processed_at"]
    exclude = ["body"]
    actions = ["replay"]

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        # Raw bodies can be tens of megabytes (emails): load them only on the detail page.
        return qs if request.resolver_match and request.resolver_match.url_name.endswith("_change") else qs.defer("body")

    @admin.display(description=_("last error"))
    def short_error(self, obj: WebhookEvent) -> str:
        return obj.last_error[:120]

    @admin.display(description=_("raw body"))
    def body_text(self, obj: WebhookEvent) -> str:
        return bytes(obj.body).decode("utf-8", errors="replace")

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description=_("Replay the selected events"), permissions=["change"])
    def replay(self, request, queryset):
        count = 0
        for event in queryset.exclude(status=WebhookEvent.Status.PROCESSED):
            services.webhook_event_replay(event=event)
            count += 1
        self.message_user(request, ngettext("%(n)d event queued for processing.",
                                           "%(n)d events queued for processing.", count) % {"n": count})


class MessageInline(admin.TabularInline):
    model = Message
    fields = ["created_at", "inbox", "direction", "sender", "author", "content", "private", "status"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["id", "customer", "status", "priority", "assignee", "team", "last_inbox", "last_message_at"]
    list_filter = ["status", "priority", "team", "last_inbox__kind"]
    list_select_related = ["customer", "assignee", "team", "last_inbox"]
    search_fields = ["customer__display_name"]
    raw_id_fields = ["customer", "assignee"]
    readonly_fields = ["customer", "last_inbox", "inboxes", "created_at", "last_message_at", "last_inbound_at",
                       "resolved_at", "assigned_at"]
    inlines = [MessageInline]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["id", "conversation", "inbox", "direction", "sender", "status", "created_at"]
    list_filter = ["direction", "status", "inbox__kind"]
    list_select_related = ["conversation", "inbox"]
    search_fields = ["provider_message_id", "uuid"]
    readonly_fields = [f.name for f in Message._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False
