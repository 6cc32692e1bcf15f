"""Admin site: inboxes (secrets never displayed), conversations, messages, and the webhook
event log where supervisors see parked deliveries and replay them."""
from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from channels_app import services
from channels_app.models import (
    AutomaticReplySent,
    CannedResponse,
    Conversation,
    Inbox,
    InboxAutomaticMessage,
    Label,
    Message,
    OfficeHours,
    OfficeHoursInterval,
    WebhookEvent,
)


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
    readonly_fields = ["uuid", "webhook_url", "created_at", "updated_at", "imap_polled_at", "imap_poll_error"]

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
    list_filter = ["status", "priority", "team", "last_inbox__kind", "labels"]
    list_select_related = ["customer", "assignee", "team", "last_inbox"]
    search_fields = ["customer__display_name"]
    raw_id_fields = ["customer", "assignee"]
    filter_horizontal = ["labels"]
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


class CannedResponseAdminForm(forms.ModelForm):
    class Meta:
        model = CannedResponse
        fields = ["shortcut", "title", "body", "language"]

    def clean_shortcut(self):
        # Normalised before the unique check, so "/Promo" collides with an existing "promo".
        from channels_app.services.canned import canned_shortcut_clean

        try:
            return canned_shortcut_clean(self.cleaned_data.get("shortcut", ""))
        except ValidationError as exc:
            raise ValidationError(exc.message_dict["shortcut"]) from None


@admin.register(CannedResponse)
class CannedResponseAdmin(admin.ModelAdmin):
    form = CannedResponseAdminForm
    list_display = ["shortcut", "title", "language", "created_by", "updated_at"]
    list_filter = ["language"]
    list_select_related = ["created_by"]
    search_fields = ["shortcut", "title", "body"]
    readonly_fields = ["created_by", "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["shortcut", "title", "body", "language"],
                "description": _("Variables: {{customer.first_name}}, {{customer.name}}, {{agent.first_name}}.")}),
        (_("History"), {"fields": ["created_by", "created_at", "updated_at"]}),
    ]

    def save_model(self, request, obj, form, change):
        if change:
            services.canned_response_update(canned=obj, shortcut=obj.shortcut, title=obj.title, body=obj.body,
                                            language=obj.language)
        else:
            saved = services.canned_response_create(shortcut=obj.shortcut, title=obj.title, body=obj.body,
                                                    language=obj.language, created_by=request.user)
            obj.pk = saved.pk


@admin.register(Label)
class LabelAdmin(admin.ModelAdmin):
    list_display = ["name", "colour_swatch", "description", "conversation_count"]
    search_fields = ["name", "description"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(n_conversations=Count("conversations"))

    @admin.display(description=_("colour"))
    def colour_swatch(self, obj: Label):
        return format_html('<span style="display:inline-block;width:1em;height:1em;background:{};'
                           'border-radius:2px;vertical-align:middle"></span> {}', obj.colour, obj.colour)

    @admin.display(description=_("conversations"), ordering="n_conversations")
    def conversation_count(self, obj: Label) -> int:
        return obj.n_conversations


class OfficeHoursIntervalInline(admin.TabularInline):
    model = OfficeHoursInterval
    extra = 0


class InboxAutomaticMessageInline(admin.StackedInline):
    model = InboxAutomaticMessage
    extra = 0


@admin.register(OfficeHours)
class OfficeHoursAdmin(admin.ModelAdmin):
    list_display = ["inbox", "time_zone", "holiday_country", "is_enabled", "auto_reply_enabled", "greeting_enabled",
                    "open_now"]
    list_filter = ["is_enabled", "holiday_country"]
    list_select_related = ["inbox"]
    inlines = [OfficeHoursIntervalInline, InboxAutomaticMessageInline]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("intervals")

    @admin.display(description=_("open now"), boolean=True)
    def open_now(self, obj: OfficeHours) -> bool:
        from channels_app.services.office_hours import office_hours_state

        return office_hours_state(office_hours=obj)[0]


@admin.register(AutomaticReplySent)
class AutomaticReplySentAdmin(admin.ModelAdmin):
    list_display = ["conversation", "kind", "period", "message", "created_at"]
    list_filter = ["kind"]
    raw_id_fields = ["conversation", "message"]
    readonly_fields = ["conversation", "kind", "period", "message", "created_at"]

    def has_add_permission(self, request) -> bool:
        return False
