"""The webhook events table is a queue: every delivery is inserted as "received" and updated
once processed, leaving a dead row version and a dead entry in the partial index of waiting
deliveries (webhook_event_waiting_idx) that the drain's claim reads. PostgreSQL's default
autovacuum waits for dead rows to reach 20 % of the table: measured on the benchmark data
(513k events, 83k dead), the claim read 405 index pages to find nothing, the worker's CPU per
message rose, and the ack p99 at 300 webhooks/s went from 11 ms to 0.7-2.4 s until a VACUUM.
Vacuum it after every 2,000 dead rows, whatever its size, and without the cost-based pause
(it is a narrow table: each vacuum is short). PostgreSQL only: SQLite has no autovacuum."""

from django.db import migrations

TABLE = "channels_app_webhookevent"
SETTINGS = {
    "autovacuum_vacuum_scale_factor": "0",
    "autovacuum_vacuum_threshold": "2000",
    "autovacuum_vacuum_cost_delay": "0",
    "autovacuum_analyze_scale_factor": "0.02",
}


def _set(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    options = ", ".join(f"{name} = {value}" for name, value in SETTINGS.items())
    schema_editor.execute(f"ALTER TABLE {TABLE} SET ({options})")


def _reset(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"ALTER TABLE {TABLE} RESET ({', '.join(SETTINGS)})")


class Migration(migrations.Migration):
    dependencies = [
        ("channels_app", "0011_conversation_last_assigned_idx"),
    ]

    operations = [migrations.RunPython(_set, _reset)]
