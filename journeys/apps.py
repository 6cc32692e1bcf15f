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

        from django.db.backends.signals import connection_created

        from journeys import aggregates, events, rules

        # SQLite has no percentile functions; the reports' Median/PercentileDisc use these.
        connection_created.connect(aggregates.register_sqlite_functions, dispatch_uid="journeys.sqlite_aggregates")

        # KPI facts are recomputed per conversation when a message or resolution appears (an id
        # watermark sees those); a deleted message leaves no id behind, so it is noted here.
        from django.db.models.signals import post_delete

        from journeys.facts import on_message_deleted

        post_delete.connect(on_message_deleted, sender="channels_app.Message", dispatch_uid="journeys.kpi_facts_message_deleted")

        # Event message rules run once a new event is committed ("order.shipped" → message).
        events.customer_event_recorded.connect(rules.on_customer_event_recorded, dispatch_uid="journeys.event_rules")
