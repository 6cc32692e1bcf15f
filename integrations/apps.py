from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IntegrationsConfig(AppConfig):
    name = "integrations"
    verbose_name = _("Integrations (webhooks, idempotency)")

    def ready(self):
        from integrations import receivers  # noqa: F401  (domain events → outbound webhooks)
