"""Admin for supervisors and admins: customers, attribute definitions, merge suggestions."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from customers import services
from customers.identity import IdentityValueError, identity_normalise
from customers.models import (
    AttributeDefinition,
    Customer,
    CustomerConsent,
    CustomerMerge,
    CustomerNote,
    Identity,
    IdentityKind,
    ImportJob,
    MergeSuggestion,
    Segment,
    Tag,
)


class IdentityInlineForm(forms.ModelForm):
    class Meta:
        model = Identity
        fields = ["kind", "value", "scope", "verified", "source"]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("kind") and cleaned.get("value"):
            try:
                norm = identity_normalise(kind=cleaned["kind"], value=cleaned["value"], scope=cleaned.get("scope", ""))
            except IdentityValueError as exc:
                raise ValidationError({"value": exc.messages}) from None
            cleaned["kind"], cleaned["scope"], cleaned["value"] = norm.kind, norm.scope, norm.value
            self.instance.kind, self.instance.scope, self.instance.value = norm.kind, norm.scope, norm.value
        return cleaned


class IdentityInline(admin.TabularInline):
    model = Identity
    form = IdentityInlineForm
    extra = 0
    fields = ["kind", "value", "scope", "verified", "source", "first_seen_at", "last_seen_at"]
    readonly_fields = ["first_seen_at", "last_seen_at"]


class ConsentInline(admin.TabularInline):
    model = CustomerConsent
    extra = 0


class NoteInline(admin.TabularInline):
    model = CustomerNote
    extra = 0
    fields = ["body", "author", "created_at"]
    readonly_fields = ["author", "created_at"]


class CustomerAdminForm(forms.ModelForm):
    class Meta:
        model = Customer
        fields = [
            "display_name",
            "language",
            "time_zone",
            "owner_agent",
            "owner_team",
            "tags",
            "attributes",
            "lifecycle_stage",
        ]

    def clean_attributes(self):
        cleaned = services.customer_attributes_clean(attributes=self.cleaned_data.get("attributes") or {})
        return {key: value for key, value in cleaned.items() if value is not None}


class IdentityKindFilter(admin.SimpleListFilter):
    title = _("channel")
    parameter_name = "channel"

    def lookups(self, request, model_admin):
        return IdentityKind.choices

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(identities__kind=self.value()).distinct()
        return queryset


class LiveFilter(admin.SimpleListFilter):
    title = _("profile")
    parameter_name = "profile"

    def lookups(self, request, model_admin):
        return [("live", _("Live")), ("merged", _("Merged away")), ("erased", _("Erased"))]

    def queryset(self, request, queryset):
        if self.value() == "live":
            return queryset.filter(merged_into__isnull=True, is_erased=False)
        if self.value() == "merged":
            return queryset.filter(merged_into__isnull=False)
        if self.value() == "erased":
            return queryset.filter(is_erased=True)
        return queryset


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    form = CustomerAdminForm
    list_display = [
        "__str__",
        "id",
        "lifecycle_stage",
        "identity_count",
        "owner_agent",
        "last_seen_at",
        "merged_into",
        "is_erased",
    ]
    list_filter = [LiveFilter, "lifecycle_stage", "tags", IdentityKindFilter]
    search_fields = ["display_name", "identities__value"]
    autocomplete_fields = ["owner_agent", "owner_team"]
    filter_horizontal = ["tags"]
    readonly_fields = [
        "merged_into",
        "is_erased",
        "erased_at",
        "created_at",
        "updated_at",
        "last_seen_at",
        "last_contacted_at",
    ]
    inlines = [IdentityInline, ConsentInline, NoteInline]
    actions = ["merge_selected"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("owner_agent", "merged_into")
            .annotate(_identity_count=Count("identities"))
        )

    @admin.display(description=_("identities"), ordering="_identity_count")
    def identity_count(self, obj):
        return obj._identity_count

    def get_search_results(self, request, queryset, search_term):
        base = queryset  # already narrowed by the list filters
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        # A phone typed any way finds the normalised value.
        try:
            phone = identity_normalise(kind="phone", value=search_term).value
        except IdentityValueError:
            return queryset, may_have_duplicates
        return queryset | base.filter(identities__kind="phone", identities__value=phone), True

    @admin.action(description=_("Merge the two selected customers (the older one is kept)"), permissions=["merge"])
    def merge_selected(self, request, queryset):
        customers = list(queryset.order_by("created_at", "id"))
        if len(customers) != 2:
            self.message_user(request, _("Select exactly two customers to merge."), messages.ERROR)
            return
        survivor, merged = customers
        try:
            merge = services.customer_merge(
                survivor=survivor, merged=merged, actor=request.user, reason=_("Merged in the admin"), request=request
            )
        except ValidationError as exc:
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
            return
        self.message_user(
            request,
            _("Customer #%(m)s was merged into #%(s)s (merge #%(id)s).")
            % {"m": merged.pk, "s": survivor.pk, "id": merge.pk},
        )

    def has_merge_permission(self, request):
        return request.user.has_perm("customers.add_customermerge")


@admin.register(AttributeDefinition)
class AttributeDefinitionAdmin(admin.ModelAdmin):
    list_display = ["label", "key", "type", "choices"]
    search_fields = ["label", "key"]
    list_filter = ["type"]


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ["name", "customer_count"]
    search_fields = ["name"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_customer_count=Count("customers"))

    @admin.display(description=_("customers"), ordering="_customer_count")
    def customer_count(self, obj):
        return obj._customer_count


@admin.register(MergeSuggestion)
class MergeSuggestionAdmin(admin.ModelAdmin):
    list_display = ["__str__", "a", "b", "score", "status", "created_at", "decided_by"]
    list_filter = ["status"]
    search_fields = ["a__display_name", "b__display_name", "a__identities__value", "b__identities__value"]
    readonly_fields = ["a", "b", "score", "evidence", "status", "created_at", "decided_by", "decided_at"]
    actions = ["accept", "dismiss"]

    def has_add_permission(self, request):
        return False

    @admin.action(description=_("Accept: merge the pair (the older profile is kept)"), permissions=["change"])
    def accept(self, request, queryset):
        done = 0
        for suggestion in queryset.filter(status=MergeSuggestion.Status.OPEN).select_related("a", "b"):
            try:
                services.merge_suggestion_accept(suggestion=suggestion, actor=request.user, request=request)
                done += 1
            except ValidationError as exc:
                self.message_user(request, f"#{suggestion.pk}: {' '.join(exc.messages)}", messages.ERROR)
        self.message_user(request, ngettext("%(n)d pair merged.", "%(n)d pairs merged.", done) % {"n": done})

    @admin.action(description=_("Dismiss: not the same person"), permissions=["change"])
    def dismiss(self, request, queryset):
        done = 0
        for suggestion in queryset.filter(status=MergeSuggestion.Status.OPEN):
            services.merge_suggestion_dismiss(suggestion=suggestion, actor=request.user)
            done += 1
        self.message_user(
            request, ngettext("%(n)d suggestion dismissed.", "%(n)d suggestions dismissed.", done) % {"n": done}
        )


@admin.register(CustomerMerge)
class CustomerMergeAdmin(admin.ModelAdmin):
    list_display = ["__str__", "survivor", "merged", "actor", "created_at", "undone_at", "undone_by"]
    list_filter = ["undone_at"]
    readonly_fields = ["survivor", "merged", "actor", "reason", "snapshot", "created_at", "undone_at", "undone_by"]
    actions = ["undo"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Undo the selected merges"), permissions=["change"])
    def undo(self, request, queryset):
        for merge in queryset.order_by("-created_at", "-id"):
            try:
                services.customer_unmerge(merge=merge, actor=request.user, request=request)
                self.message_user(request, _("Merge %(m)s undone.") % {"m": merge})
            except ValidationError as exc:
                self.message_user(request, f"{merge}: {' '.join(exc.messages)}", messages.ERROR)


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    list_display = ["name", "description", "created_by", "created_at"]
    search_fields = ["name"]
    readonly_fields = ["created_by", "created_at"]

    def save_model(self, request, obj, form, change):
        obj.filters = services.segment_filters_clean(filters=obj.filters)
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(ImportJob)
class ImportJobAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "status",
        "dry_run",
        "total_rows",
        "created_rows",
        "updated_rows",
        "failed_rows",
        "created_by",
        "created_at",
    ]
    list_filter = ["status", "dry_run"]
    readonly_fields = [f.name for f in ImportJob._meta.fields]

    def has_add_permission(self, request):
        return False
