from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class JourneysConfig(AppConfig):
    name = "journeys"
    verbose_name = _("Journeys, CSAT and KPIs")

    def ready(self) -> None:
        from customers import merge_hooks

        # A customer's events, stage history and CSAT follow them when profiles are merged.
        merge_hooks.register("journeys.CustomerEvent", "customer")
        merge_hooks.register("journeys.StageChange", "customer")
        merge_hooks.register("journeys.CsatSurvey", "customer")
        merge_hooks.register("journeys.CsatResponse", "customer")

        from journeys import events, rules

        # Event message rules run once a new event is committed ("order.shipped" → message).
        events.customer_event_recorded.connect(rules.on_customer_event_recorded, dispatch_uid="journeys.event_rules")
