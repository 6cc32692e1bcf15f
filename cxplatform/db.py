"""Small database helpers the ORM has no fast form for."""
from __future__ import annotations

from collections.abc import Sequence

from django.db import connections, models, router


def bulk_set(model: type[models.Model], objs: Sequence[models.Model], fields: Sequence[str]) -> int:
    """Write `fields` of each instance in one statement, like `QuerySet.bulk_update`.

    On PostgreSQL: `UPDATE … FROM (VALUES (pk, v1, …), …) WHERE pk = …`. Django's bulk_update
    builds a CASE WHEN per field and row instead, whose compilation cost 30 ms per hundred rows
    in a profile of the ingest drain, more than the rest of its batch. Elsewhere (the embedded
    SQLite default) it falls back to bulk_update."""
    if not objs:
        return 0
    db = router.db_for_write(model)
    connection = connections[db]
    if connection.vendor != "postgresql":
        return model.objects.using(db).bulk_update(objs, fields)
    meta = model._meta
    columns = [meta.pk, *(meta.get_field(name) for name in fields)]
    row = "(" + ", ".join(f"%s::{field.db_type(connection)}" for field in columns) + ")"
    params: list = []
    for obj in objs:
        for field in columns:
            params.append(field.get_db_prep_save(getattr(obj, field.attname), connection))
    quote = connection.ops.quote_name
    names = ", ".join(quote(field.column) for field in columns)
    assignments = ", ".join(f"{quote(field.column)} = v.{quote(field.column)}" for field in columns[1:])
    sql = (f"UPDATE {quote(meta.db_table)} AS t SET {assignments} FROM (VALUES {', '.join([row] * len(objs))}) "
           f"AS v({names}) WHERE t.{quote(meta.pk.column)} = v.{quote(meta.pk.column)}")
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount
