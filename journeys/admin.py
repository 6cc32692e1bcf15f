from __future__ import annotations

from django.contrib import admin
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from journeys.models import (
    ConversationResolution,
    CsatResponse,
    CsatSurvey,
    CustomerEvent,
    EventMessageDispatch,
    EventMessageRule,
    EventTypeMapping,
    JourneySettings,
    MaturityAssessment,
    MaturityScore,
    NpsCampaign,
    NpsSurvey,
    SlaPolicy,
    StageChange,
    StageRule,
)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Recorded history: visible, never edited by hand (writes go through services)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(EventTypeMapping)
class EventTypeMappingAdmin(admin.ModelAdmin):
    list_display = ["event_type", "meaning", "created_at"]
    list_filter = ["meaning"]
    search_fields = ["event_type"]


@admin.register(StageRule)
class StageRuleAdmin(admin.ModelAdmin):
    list_display = ["code", "is_active", "window_days", "updated_at"]
    list_editable = ["is_active", "window_days"]
    readonly_fields = ["code"]

    def has_add_permission(self, request):
        return False  # the engine knows a fixed set of rules (seeded by migration)

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(JourneySettings)
class JourneySettingsAdmin(admin.ModelAdmin):
    list_display = ["__str__", "csat_enabled", "csat_delay_minutes", "csat_expiry_hours"]

    def has_add_permission(self, request):
        return not JourneySettings.objects.exists()

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(CustomerEvent)
class CustomerEventAdmin(ReadOnlyAdmin):
    list_display = ["external_id", "type", "meaning", "customer", "occurred_at", "channel"]
    list_filter = ["meaning"]
    search_fields = ["external_id", "type"]
    raw_id_fields = ["customer"]
    date_hierarchy = "occurred_at"


@admin.register(StageChange)
class StageChangeAdmin(ReadOnlyAdmin):
    list_display = ["customer", "from_stage", "to_stage", "changed_at", "reason", "rule_code", "actor", "channel", "first_touch_channel"]
    list_filter = ["to_stage", "reason"]
    raw_id_fields = ["customer", "event", "actor"]
    date_hierarchy = "changed_at"


@admin.register(CsatSurvey)
class CsatSurveyAdmin(ReadOnlyAdmin):
    list_display = ["conversation", "customer", "inbox", "status", "send_after", "sent_at", "skip_reason"]
    list_filter = ["status"]
    raw_id_fields = ["conversation", "customer", "assignee"]


@admin.register(CsatResponse)
class CsatResponseAdmin(ReadOnlyAdmin):
    list_display = ["survey", "customer", "rating", "via", "responded_at"]
    list_filter = ["rating", "via"]
    raw_id_fields = ["survey", "customer"]


@admin.register(ConversationResolution)
class ConversationResolutionAdmin(ReadOnlyAdmin):
    list_display = ["conversation", "cycle_started_at", "resolved_at", "is_reopen", "reopened", "inbox", "assignee", "team"]
    list_filter = ["is_reopen", "reopened"]
    raw_id_fields = ["conversation", "assignee"]


class MaturityScoreInline(admin.TabularInline):
    model = MaturityScore
    extra = 0
    raw_id_fields = ["assessor"]


@admin.register(MaturityAssessment)
class MaturityAssessmentAdmin(admin.ModelAdmin):
    list_display = ["title", "created_at", "created_by"]
    readonly_fields = ["evidence"]
    inlines = [MaturityScoreInline]


@admin.register(SlaPolicy)
class SlaPolicyAdmin(admin.ModelAdmin):
    """Targets per inbox, per team, or the default (neither); the most specific one applies."""

    list_display = ["name", "inbox", "team", "first_response_minutes", "resolution_minutes", "hours", "is_active"]
    list_filter = ["hours", "is_active"]
    list_editable = ["is_active"]


@admin.register(EventMessageRule)
class EventMessageRuleAdmin(admin.ModelAdmin):
    """"order.shipped → canned response → channel": see docs/journeys.md."""

    list_display = ["name", "event_type", "canned_response", "inbox", "is_active"]
    list_filter = ["is_active"]
    list_editable = ["is_active"]
    search_fields = ["name", "event_type"]


@admin.register(EventMessageDispatch)
class EventMessageDispatchAdmin(ReadOnlyAdmin):
    list_display = ["event", "rule", "status", "reason", "inbox", "conversation", "used_template", "created_at"]
    list_filter = ["status", "rule"]
    raw_id_fields = ["event", "conversation"]


@admin.register(NpsCampaign)
class NpsCampaignAdmin(admin.ModelAdmin):
    """Campaigns are created on /journeys/nps/ (which queues the send job); here they can be
    watched and re-run (customers already handled are skipped)."""

    list_display = ["name", "segment", "status", "progress", "sent", "skipped", "created_at", "created_by"]
    list_filter = ["status"]
    readonly_fields = ["status", "total", "processed", "sent", "skipped", "created_by", "created_at", "finished_at"]
    actions = ["resume_sending"]

    def has_add_permission(self, request):
        return False

    @admin.display(description=_("progress"))
    def progress(self, obj: NpsCampaign) -> str:
        return f"{obj.progress_percent}% ({obj.processed}/{obj.total})"

    @admin.action(description=_("Send again to customers not yet handled"))
    def resume_sending(self, request, queryset):
        from journeys.tasks import nps_campaign_send_task

        for campaign in queryset:
            NpsCampaign.objects.filter(pk=campaign.pk).update(status=NpsCampaign.Status.QUEUED)
            transaction.on_commit(lambda pk=campaign.pk: nps_campaign_send_task.delay(pk), robust=True)
        self.message_user(request, _("Queued %(n)s campaign(s).") % {"n": queryset.count()})


@admin.register(NpsSurvey)
class NpsSurveyAdmin(ReadOnlyAdmin):
    list_display = ["campaign", "customer", "inbox", "status", "skip_reason", "sent_at", "score", "answered_at"]
    list_filter = ["status", "campaign"]
    raw_id_fields = ["campaign", "customer"]
