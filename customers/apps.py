from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CustomersConfig(AppConfig):
    name = "customers"
    verbose_name = _("Customers")

    def ready(self) -> None:
        from customers import merge_hooks

        # The profile's own rows; consent is handled by the merge itself (one row per channel).
        merge_hooks.register("customers.Identity", "customer")
        merge_hooks.register("customers.CustomerNote", "customer")
        merge_hooks.register("customers.TimelineEntry", "customer")
