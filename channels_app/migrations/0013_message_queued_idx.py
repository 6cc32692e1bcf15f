"""The delivery drain and the stuck-reply sweeper look for queued replies: a handful among
millions of messages. A partial index keeps that lookup independent of the table's size.

Built CONCURRENTLY on PostgreSQL, so the message table keeps taking writes (inbound messages,
replies) while it is built; a plain CREATE INDEX elsewhere (SQLite, the embedded default)."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models

INDEX = models.Index(condition=models.Q(("status", "queued")), fields=["id"], name="message_queued_idx")


class AddIndexConcurrentlyOnPostgres(AddIndexConcurrently):
    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        return migrations.AddIndex.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        return migrations.AddIndex.database_backwards(self, app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [
        ("channels_app", "0012_webhook_event_autovacuum"),
    ]

    operations = [AddIndexConcurrentlyOnPostgres(model_name="message", index=INDEX)]
