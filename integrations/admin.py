from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from integrations import services
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


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(admin.ModelAdmin):
    list_display = ["url", "active", "events", "disabled_reason", "created_at"]
    list_filter = ["active"]
    search_fields = ["url"]
    fields = ["url", "events", "active", "owner", "disabled_reason", "disabled_at", "created_at"]
    # URL and events change through the API (SSRF check, event-type validation).
    readonly_fields = ["url", "events", "owner", "disabled_reason", "disabled_at", "created_at"]
    inlines = [WebhookDeliveryInline]

    def has_add_permission(self, request):
        # Creation goes through the API, which checks the URL against the SSRF guard and
        # generates the signing secret shown once.
        return False


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
