from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from integrations import services
from integrations.events import WEBHOOK_EVENT_TYPES
from integrations.models import IdempotencyRecord, WebhookDelivery, WebhookSubscription


class WebhookDeliveryInline(admin.TabularInline):
    model = WebhookDelivery
    fields = ["event_type", "status", "attempt", "status_code", "latency_ms", "next_attempt_at", "created_at"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True
    ordering = ["-id"]

    def get_queryset(self, request):
        return super().get_queryset(request).order_by("-id")


class WebhookSubscriptionForm(forms.ModelForm):
    url = forms.URLField(max_length=500, assume_scheme="https", label=_("Target URL"))
    events = forms.MultipleChoiceField(
        choices=[(name, name) for name in WEBHOOK_EVENT_TYPES], widget=forms.CheckboxSelectMultiple, label=_("Events")
    )
    secret = forms.CharField(
        required=False, min_length=16, max_length=200, widget=forms.PasswordInput(render_value=False),
        label=_("Signing secret"),
        help_text=_("Leave empty to generate one (on creation) or to keep the current one. Shown once."),
    )

    class Meta:
        model = WebhookSubscription
        fields = ["url", "events", "active"]

    def clean_url(self):
        url = self.cleaned_data["url"]
        if self.instance.pk is None or url != self.instance.url:
            try:
                services.webhook_url_validate(url=url)
            except ValidationError as exc:
                raise ValidationError(exc.message_dict.get("url", exc.messages)) from None
        return url

    def _post_clean(self):
        # Validation and saving go through integrations.services (SSRF check, encryption),
        # called from the admin's save_model; skip the model's own construct/validate here.
        pass


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(admin.ModelAdmin):
    form = WebhookSubscriptionForm
    list_display = ["url", "active", "events", "disabled_reason", "created_at"]
    list_filter = ["active"]
    search_fields = ["url"]
    readonly_fields = ["owner", "disabled_reason", "disabled_at", "created_at"]
    inlines = [WebhookDeliveryInline]

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    def get_fields(self, request, obj=None):
        fields = ["url", "events", "secret", "active"]
        return fields if obj is None else [*fields, *self.readonly_fields]

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            update = {"url": data["url"], "events": data["events"], "active": data["active"]}
            if data.get("secret"):
                update["secret"] = data["secret"]
            services.webhook_subscription_update(subscription=obj, **update)
            return
        subscription, secret = services.webhook_subscription_create(
            owner=request.user, url=data["url"], events=data["events"], secret=data.get("secret") or None,
            active=data["active"],
        )
        for field in WebhookSubscription._meta.concrete_fields:
            setattr(obj, field.attname, getattr(subscription, field.attname))
        if not data.get("secret"):
            self.message_user(request, _("Signing secret (shown once): %(secret)s") % {"secret": secret},
                              messages.WARNING)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["id", "event_type", "subscription", "status", "attempt", "status_code", "latency_ms", "created_at"]
    list_filter = ["status", "event_type"]
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]
    actions = ["redeliver"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Redeliver the selected events"))
    def redeliver(self, request, queryset):
        for delivery in queryset.select_related("subscription"):
            services.webhook_delivery_redeliver(delivery=delivery)
        self.message_user(request, _("Redelivery queued."), messages.SUCCESS)


@admin.register(IdempotencyRecord)
class IdempotencyRecordAdmin(admin.ModelAdmin):
    list_display = ["key", "user", "status_code", "created_at", "expires_at"]
    readonly_fields = ["user", "key", "request_hash", "status_code", "content_type", "created_at", "expires_at"]
    exclude = ["body"]

    def has_add_permission(self, request):
        return False
