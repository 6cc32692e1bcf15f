from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _

OWN_APPS = {"accounts", "customers", "channels_app", "journeys"}


def _sync_roles(sender, **kwargs):
    # After each of our apps' permissions exist, refresh the role groups (idempotent).
    if sender.label in OWN_APPS:
        from accounts.services import roles_sync

        roles_sync()


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Accounts and teams")

    def ready(self):
        from accounts import signals  # noqa: F401  (connects the audit log to auth events)
        from accounts.backends import connect_invalidation

        connect_invalidation()

        from django.db.models.signals import m2m_changed, post_delete, post_save

        from accounts.models import TeamMembership
        from accounts.selectors import teams_forget

        for name, signal in (("save", post_save), ("delete", post_delete), ("m2m", m2m_changed)):
            signal.connect(teams_forget, sender=TeamMembership, dispatch_uid=f"teams_forget_{name}")

        post_migrate.connect(_sync_roles, dispatch_uid="accounts_sync_roles")
