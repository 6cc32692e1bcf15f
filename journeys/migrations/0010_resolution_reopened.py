"""ConversationResolution.reopened: whether the conversation's current resolution is no longer
this one. The KPI report used to join every conversation to find out (the conversation's
`resolved_at` differs from the cycle's); on a million messages that join was a third of the
KPI page's time (docs/performance.md).

Database triggers keep the flag, so it cannot drift whoever writes: `save()`, `update()`, bulk
and raw SQL, merges and unmerges, a resolution logged after its conversation was reopened.
- on a resolution's insert, or a change of its conversation or time: read the conversation
  (on PostgreSQL after a share lock on it, so a reopen committing at that moment is not missed);
- on a change of a conversation's `resolved_at`: update that conversation's resolutions.

SQLite drops a table's triggers when Django rebuilds the table (some AlterField/AddField on
SQLite do). tests/journeys/test_resolution_reopened.py fails if a later migration loses them;
recreate them then with the statements below.
"""

from django.db import migrations, models

POSTGRESQL = [
    """
    CREATE FUNCTION journeys_resolution_reopened() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        -- Wait for a transaction changing the conversation right now: its own trigger cannot
        -- see this uncommitted row, so this one must read the conversation after it commits.
        PERFORM 1 FROM channels_app_conversation WHERE id = NEW.conversation_id FOR SHARE;
        NEW.reopened := NOT EXISTS (
            SELECT 1 FROM channels_app_conversation c
             WHERE c.id = NEW.conversation_id AND c.resolved_at = NEW.resolved_at);
        RETURN NEW;
    END $$
    """,
    """
    CREATE TRIGGER journeys_resolution_reopened
        BEFORE INSERT OR UPDATE OF conversation_id, resolved_at ON journeys_conversationresolution
        FOR EACH ROW EXECUTE FUNCTION journeys_resolution_reopened()
    """,
    """
    CREATE FUNCTION journeys_conversation_reopened() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE journeys_conversationresolution r
           SET reopened = (r.resolved_at IS DISTINCT FROM NEW.resolved_at)
         WHERE r.conversation_id = NEW.id AND r.reopened <> (r.resolved_at IS DISTINCT FROM NEW.resolved_at);
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER journeys_conversation_reopened
        AFTER UPDATE OF resolved_at ON channels_app_conversation
        FOR EACH ROW WHEN (OLD.resolved_at IS DISTINCT FROM NEW.resolved_at)
        EXECUTE FUNCTION journeys_conversation_reopened()
    """,
]

POSTGRESQL_REVERSE = [
    "DROP TRIGGER IF EXISTS journeys_conversation_reopened ON channels_app_conversation",
    "DROP FUNCTION IF EXISTS journeys_conversation_reopened()",
    "DROP TRIGGER IF EXISTS journeys_resolution_reopened ON journeys_conversationresolution",
    "DROP FUNCTION IF EXISTS journeys_resolution_reopened()",
]

# SQLite: no BEFORE trigger can change NEW, so the resolution's own row is updated after the
# write (recursive triggers are off in SQLite, so that update does not fire them again).
SQLITE_RESOLUTION_SET = """
    UPDATE journeys_conversationresolution
       SET reopened = NOT EXISTS (
           SELECT 1 FROM channels_app_conversation c
            WHERE c.id = NEW.conversation_id AND c.resolved_at = NEW.resolved_at)
     WHERE id = NEW.id;
"""

SQLITE = [
    f"""
    CREATE TRIGGER journeys_resolution_reopened_insert AFTER INSERT ON journeys_conversationresolution
    FOR EACH ROW BEGIN {SQLITE_RESOLUTION_SET} END
    """,
    f"""
    CREATE TRIGGER journeys_resolution_reopened_update
        AFTER UPDATE OF conversation_id, resolved_at ON journeys_conversationresolution
    FOR EACH ROW BEGIN {SQLITE_RESOLUTION_SET} END
    """,
    """
    CREATE TRIGGER journeys_conversation_reopened AFTER UPDATE OF resolved_at ON channels_app_conversation
    FOR EACH ROW WHEN OLD.resolved_at IS NOT NEW.resolved_at BEGIN
        UPDATE journeys_conversationresolution SET reopened = (resolved_at IS NOT NEW.resolved_at)
         WHERE conversation_id = NEW.id AND reopened <> (resolved_at IS NOT NEW.resolved_at);
    END
    """,
]

SQLITE_REVERSE = [
    "DROP TRIGGER IF EXISTS journeys_conversation_reopened",
    "DROP TRIGGER IF EXISTS journeys_resolution_reopened_update",
    "DROP TRIGGER IF EXISTS journeys_resolution_reopened_insert",
]

BACKFILL = """
    UPDATE journeys_conversationresolution
       SET reopened = NOT EXISTS (
           SELECT 1 FROM channels_app_conversation c
            WHERE c.id = journeys_conversationresolution.conversation_id
              AND c.resolved_at = journeys_conversationresolution.resolved_at)
"""


def _run(schema_editor, statements) -> None:
    for statement in statements:
        schema_editor.execute(statement, params=None)


def install(apps, schema_editor) -> None:
    vendor = schema_editor.connection.vendor
    if vendor not in ("postgresql", "sqlite"):
        raise RuntimeError(f"journeys 0010: no reopen triggers for the {vendor} database")
    _run(schema_editor, (POSTGRESQL if vendor == "postgresql" else SQLITE) + [BACKFILL])


def uninstall(apps, schema_editor) -> None:
    vendor = schema_editor.connection.vendor
    _run(schema_editor, POSTGRESQL_REVERSE if vendor == "postgresql" else SQLITE_REVERSE)


class Migration(migrations.Migration):

    dependencies = [
        ('channels_app', '0011_conversation_last_assigned_idx'),
        ('journeys', '0009_kpi_facts_pending_age'),
    ]

    operations = [
        migrations.AddField(
            model_name='conversationresolution',
            name='reopened',
            field=models.BooleanField(default=False, editable=False, verbose_name='reopened since'),
        ),
        migrations.RunPython(install, uninstall, elidable=False),
    ]
