from __future__ import annotations

import zoneinfo

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, Group, PermissionsMixin
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    """The three roles; each is a Django group of the same name holding its permissions."""

    AGENT = "Agent", _("Agent")
    SUPERVISOR = "Supervisor", _("Supervisor")
    ADMIN = "Admin", _("Admin")


class Availability(models.TextChoices):
    ONLINE = "online", _("Online")
    AWAY = "away", _("Away")
    OFFLINE = "offline", _("Offline")


def validate_time_zone(value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError(_("%(value)s is not a time zone such as Asia/Jakarta."), params={"value": value}) from None


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra):
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who works in the platform: agent, supervisor or admin (see `Role`).

    Signs in with email + password (django-allauth). Preferences (language, time zone) apply
    to every page they see; availability and capacity drive conversation routing.
    """

    email = models.EmailField(_("email address"), unique=True)
    full_name = models.CharField(_("full name"), max_length=150, blank=True)
    is_staff = models.BooleanField(
        _("staff status"), default=False, help_text=_("Can open the admin site (supervisors and admins).")
    )
    is_active = models.BooleanField(_("active"), default=True)
    date_joined = models.DateTimeField(_("date joined"), default=timezone.now)
    language = models.CharField(_("language"), max_length=8, choices=settings.LANGUAGES, default="en")
    time_zone = models.CharField(
        _("time zone"), max_length=64, default="Asia/Jakarta", validators=[validate_time_zone]
    )
    availability = models.CharField(
        _("availability"), max_length=10, choices=Availability.choices, default=Availability.OFFLINE
    )
    availability_changed_at = models.DateTimeField(_("availability changed"), null=True, blank=True)
    max_concurrent_conversations = models.PositiveSmallIntegerField(
        _("max concurrent conversations"),
        default=8,
        validators=[MinValueValidator(1), MaxValueValidator(200)],
        help_text=_("Automatic assignment stops giving this agent conversations beyond this number."),
    )
    last_seen_at = models.DateTimeField(_("last seen"), null=True, blank=True)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        ordering = ["full_name", "email"]
        indexes = [models.Index(fields=["availability"], name="user_availability_idx")]

    def __str__(self) -> str:
        return self.full_name or self.email

    def get_full_name(self) -> str:
        return self.full_name or self.email

    def get_short_name(self) -> str:
        return (self.full_name.split(" ")[0] if self.full_name else self.email.split("@")[0])

    def clean(self):
        super().clean()
        self.email = self.__class__.objects.normalize_email(self.email).lower()

    @property
    def role(self) -> str | None:
        """The highest role the user holds, from their groups (cached per instance)."""
        if not hasattr(self, "_role_cache"):
            from accounts.backends import user_access

            prefetched = getattr(self, "_prefetched_objects_cache", {}).get("groups")
            if prefetched is not None:
                names = {group.name for group in prefetched}
            else:
                names = set(user_access(self)["groups"]) if self.pk else set()
            self._role_cache = next(
                (role.value for role in (Role.ADMIN, Role.SUPERVISOR, Role.AGENT) if role.value in names),
                Role.ADMIN.value if self.is_superuser else None,
            )
        return self._role_cache

    @property
    def is_supervisor_or_admin(self) -> bool:
        return self.is_superuser or self.role in (Role.SUPERVISOR, Role.ADMIN)


class RolePolicy(models.Model):
    """Security policy attached to a role's group, e.g. two-factor sign-in required."""

    group = models.OneToOneField(Group, on_delete=models.CASCADE, related_name="policy", verbose_name=_("role"))
    mfa_required = models.BooleanField(
        _("two-factor authentication required"),
        default=False,
        help_text=_("Members must set up an authenticator app before they can use the platform."),
    )

    class Meta:
        verbose_name = _("role policy")
        verbose_name_plural = _("role policies")

    def __str__(self) -> str:
        return str(self.group)


class Team(models.Model):
    """A group of agents that conversations and inboxes are routed to."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    description = models.TextField(_("description"), blank=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="TeamMembership", related_name="teams", verbose_name=_("members")
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("team")
        verbose_name_plural = _("teams")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class TeamMembership(models.Model):
    """An agent's membership in a team; a lead may manage the team's queue."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="team_memberships")
    is_lead = models.BooleanField(_("team lead"), default=False)
    joined_at = models.DateTimeField(_("joined"), auto_now_add=True)

    class Meta:
        verbose_name = _("team membership")
        verbose_name_plural = _("team memberships")
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="team_membership_unique")]

    def __str__(self) -> str:
        return f"{self.user} in {self.team}"


class AuditEntry(models.Model):
    """An append-only record of a security-relevant action (who, what, when, from where)."""

    class Action(models.TextChoices):
        SIGN_IN = "auth.sign_in", _("Signed in")
        SIGN_IN_FAILED = "auth.sign_in_failed", _("Failed sign-in")
        SIGN_OUT = "auth.sign_out", _("Signed out")
        PASSWORD_CHANGED = "auth.password_changed", _("Password changed")
        PASSWORD_RESET = "auth.password_reset", _("Password reset")
        MFA_ENABLED = "auth.mfa_enabled", _("Two-factor enabled")
        MFA_DISABLED = "auth.mfa_disabled", _("Two-factor disabled")
        ROLE_CHANGED = "accounts.role_changed", _("Role changed")
        TOKEN_CREATED = "accounts.token_created", _("API token created")
        TOKEN_REVOKED = "accounts.token_revoked", _("API token revoked")
        DATA_EXPORTED = "data.exported", _("Data exported")
        DATA_ERASED = "data.erased", _("Data erased")
        CUSTOMER_MERGED = "customers.merged", _("Customers merged")
        CUSTOMER_UNMERGED = "customers.unmerged", _("Customers unmerged")

    created_at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("actor"),
    )
    actor_label = models.CharField(_("actor label"), max_length=254, blank=True, help_text=_("Kept if the user is deleted."))
    action = models.CharField(_("action"), max_length=64, choices=Action.choices, db_index=True)
    target_type = models.CharField(_("target type"), max_length=64, blank=True)
    target_id = models.CharField(_("target id"), max_length=64, blank=True)
    target_label = models.CharField(_("target"), max_length=254, blank=True)
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=300, blank=True)
    data = models.JSONField(_("details"), default=dict, blank=True)

    class Meta:
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit log")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["target_type", "target_id"], name="audit_target_idx")]

    def __str__(self) -> str:
        return f"{self.get_action_display()} · {self.actor_label or '-'}"


class ApiToken(models.Model):
    """A bearer token for the integrator API, stored as a SHA-256 hash and shown once."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(_("name"), max_length=100)
    prefix = models.CharField(_("prefix"), max_length=12, db_index=True, help_text=_("First characters, to recognise it."))
    key_hash = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(_("scopes"), default=list, blank=True, help_text=_("Empty means every scope of the user."))
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(_("last used from"), null=True, blank=True)

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_usable(self) -> bool:
        now = timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)
