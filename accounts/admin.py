from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.utils.translation import gettext_lazy as _

from accounts.models import ApiToken, AuditEntry, Role, RolePolicy, Team, TeamMembership, User
from accounts.services import api_token_revoke, user_role_assign

admin.site.site_header = _("cxplatform administration")
admin.site.site_title = _("cxplatform admin")
admin.site.index_title = _("Manage teams, inboxes, rules and data")


class RoleFormMixin(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices, initial=Role.AGENT)


class UserCreateForm(RoleFormMixin, AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email", "full_name")


class UserEditForm(RoleFormMixin, UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and self.instance.role:
            self.fields["role"].initial = self.instance.role


class TeamMembershipInline(admin.TabularInline):
    model = TeamMembership
    extra = 0
    autocomplete_fields = ["team"]
    fk_name = "user"


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = UserEditForm
    add_form = UserCreateForm
    inlines = [TeamMembershipInline]
    list_display = ("email", "full_name", "role_display", "team_names", "availability", "max_concurrent_conversations", "last_seen_at", "is_active")
    list_filter = ("groups", "availability", "is_active", "team_memberships__team")
    search_fields = ("email", "full_name")
    ordering = ("full_name", "email")
    readonly_fields = ("last_login", "date_joined", "last_seen_at", "availability_changed_at")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        (_("Profile"), {"fields": ("full_name", "language", "time_zone")}),
        (_("Role and work"), {"fields": ("role", "availability", "max_concurrent_conversations", "is_active")}),
        (_("Activity"), {"fields": ("last_login", "last_seen_at", "availability_changed_at", "date_joined")}),
        (_("Advanced permissions"), {"classes": ("collapse",), "fields": ("is_superuser", "user_permissions")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "full_name", "role", "password1", "password2")}),)

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("groups", "team_memberships__team")

    @admin.display(description=_("role"))
    def role_display(self, obj: User) -> str:
        return obj.role or "—"

    @admin.display(description=_("teams"))
    def team_names(self, obj: User) -> str:
        return ", ".join(m.team.name for m in obj.team_memberships.all()) or "—"

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        role = form.cleaned_data.get("role")
        if role:
            user_role_assign(user=obj, role=role, actor=request.user, request=request)


class TeamMemberInline(admin.TabularInline):
    model = TeamMembership
    extra = 1
    autocomplete_fields = ["user"]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name", "member_count", "created_at")
    search_fields = ("name",)
    inlines = [TeamMemberInline]

    def get_queryset(self, request):
        from django.db.models import Count

        return super().get_queryset(request).annotate(_members=Count("memberships"))

    @admin.display(description=_("members"), ordering="_members")
    def member_count(self, obj) -> int:
        return obj._members


@admin.register(RolePolicy)
class RolePolicyAdmin(admin.ModelAdmin):
    list_display = ("group", "mfa_required")
    list_editable = ("mfa_required",)
    readonly_fields = ("group",)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ("created_at", "action", "actor_label", "target_label", "ip_address")
    list_filter = ("action", ("created_at", admin.DateFieldListFilter))
    search_fields = ("actor_label", "target_label", "target_id", "ip_address")
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in AuditEntry._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "prefix", "created_at", "expires_at", "last_used_at", "last_used_ip", "revoked_at")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    search_fields = ("name", "prefix", "user__email")
    readonly_fields = ("user", "prefix", "created_at", "last_used_at", "last_used_ip", "revoked_at")
    exclude = ("key_hash",)
    actions = ["revoke"]

    def has_add_permission(self, request):
        # A token's value is shown exactly once, so tokens are created where it can be shown:
        # `manage.py apitoken` or the agent's own token page.
        return False

    @admin.action(description=_("Revoke selected tokens"))
    def revoke(self, request, queryset):
        for token in queryset:
            api_token_revoke(token=token, actor=request.user)
        self.message_user(request, _("Tokens revoked."), messages.SUCCESS)
