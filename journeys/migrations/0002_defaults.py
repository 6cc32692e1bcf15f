"""Default event-type meanings and lifecycle rules (issue 6); admins edit them afterwards."""
from django.db import migrations

DEFAULT_MAPPINGS = {
    "order.paid": "purchase",
    "order.completed": "purchase",
    "lead.created": "lead",
    "signup": "lead",
    "referral.created": "referral",
    "campaign.clicked": "campaign_click",
}
DEFAULT_RULES = [
    ("reach_known", None),
    ("acquisition_contact", None),
    ("conversion_first_purchase", None),
    ("retention_repeat_purchase", 180),
    ("loyalty_promoter", None),
]


def seed(apps, schema_editor):
    Mapping = apps.get_model("journeys", "EventTypeMapping")
    Rule = apps.get_model("journeys", "StageRule")
    Settings = apps.get_model("journeys", "JourneySettings")
    for event_type, meaning in DEFAULT_MAPPINGS.items():
        Mapping.objects.get_or_create(event_type=event_type, defaults={"meaning": meaning})
    for code, days in DEFAULT_RULES:
        Rule.objects.get_or_create(code=code, defaults={"window_days": days})
    Settings.objects.get_or_create(pk=1)


class Migration(migrations.Migration):
    dependencies = [("journeys", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
