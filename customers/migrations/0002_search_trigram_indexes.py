"""Trigram indexes for customer search on PostgreSQL; nothing on SQLite (icontains fallback).

Django's `icontains` on PostgreSQL compiles to ``UPPER(col::text) LIKE UPPER(%s)``, so the
GIN indexes are built on exactly that expression to be usable by the planner.
"""
from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

INDEXES = (
    ("customer_name_trgm_idx", "customers_customer", "display_name"),
    ("identity_value_trgm_idx", "customers_identity", "value"),
)


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, table, column in INDEXES:
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS {name} ON {table} USING gin ((UPPER("{column}"::text)) gin_trgm_ops)'
        )


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _table, _column in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("customers", "0001_initial")]

    operations = [
        TrigramExtension(),  # a no-op on databases other than PostgreSQL
        migrations.RunPython(create_indexes, drop_indexes),
    ]
