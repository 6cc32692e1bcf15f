"""Small database helpers the ORM has no fast form for."""
from __future__ import annotations

import dataclasses
import json
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connections, models, router
from django.db.models import Expression, Field, Lookup, QuerySet
from django.db.models.query import ModelIterable, ValuesListIterable, get_related_populators
from django.db.transaction import TransactionManagementError


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


# --- SELECTs compiled once ------------------------------------------------------------------


class Param(Expression):
    """A value a `Compiled` query is given each time it runs (`output_field`: how to prepare it).
    Meant for a plain equality (or a comparison within the column's range) ANDed into the filter:
    an integer the column cannot hold makes the whole query match nothing, right for `pk = huge`
    but not inside an OR, a NOT or a `<`; and None compiles to `= NULL`, which matches nothing
    where the ORM would write IS NULL. Such filters stay ORM querysets."""

    def __init__(self, name: str, output_field: Field | None = None):
        super().__init__(output_field=output_field)
        self.name = name

    def as_sql(self, compiler, connection):
        return "%s", [_Slot(self.name, self.output_field, many=False)]


class AnyOf(Lookup):
    """`lhs` is one of the values of a `Param` list: `= ANY(%s::type[])` on PostgreSQL, over
    `json_each` elsewhere. Unlike `__in`, the statement does not depend on how many values there
    are, so it is compiled once. Used as a filter expression: `filter(AnyOf(F("value"), Param("values")))`."""

    lookup_name = "any_of"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        if not isinstance(self.rhs, Param):
            raise TypeError("AnyOf takes a Param: the list is given when the compiled query runs")
        lhs, params = self.process_lhs(compiler, connection)
        field = self.lhs.output_field
        slot = _Slot(self.rhs.name, field, many=True)
        if connection.vendor == "postgresql":
            # the type without its modifier: a cast to varchar(255) would cut a longer value to match
            element = field.db_type(connection).split("(")[0]
            return f"{lhs} = ANY(%s::{element}[])", [*params, slot]
        return f"{lhs} IN (SELECT value FROM json_each(%s))", [*params, slot]


@dataclass(frozen=True)
class _Slot:
    """Where a `Param`'s value goes among the compiled statement's parameters."""

    name: str
    field: Field
    many: bool

    def value(self, values: dict[str, Any], connection) -> Any:
        """The value prepared for the database. An integer the column cannot hold matches
        nothing, as with the ORM's exact and `in` lookups: dropped from a list, `_NoMatch` alone."""
        given = values[self.name]
        if not self.many:
            if not _fits(self.field, given, connection):
                raise _NoMatch
            return self.field.get_db_prep_value(given, connection, prepared=False)
        items = [self.field.get_db_prep_value(item, connection, prepared=False) for item in given
                 if _fits(self.field, item, connection)]
        return items if connection.vendor == "postgresql" else json.dumps(items)


class _NoMatch(Exception):
    """A `Param` no row can equal: the statement need not run."""


def _fits(field: Field, value: Any, connection) -> bool:
    target = getattr(field, "target_field", None) or field  # a foreign key holds its target's values
    try:
        low, high = connection.ops.integer_field_range(target.get_internal_type())
    except KeyError:  # not an integer column
        return True
    if not isinstance(value, int):
        return True
    return (low is None or value >= low) and (high is None or value <= high)


@dataclass
class _Statement:
    sql: str
    params: list
    for_update: bool
    converters: list  # (position, converters, expression)
    model_fields: slice | None  # the model's columns in a row; None: rows are values_list tuples
    init_list: list[str] = dataclasses.field(default_factory=list)
    populators: list = dataclasses.field(default_factory=list)  # select_related's RelatedPopulators


class Compiled:
    """A SELECT that the ORM builds and compiles once per database connection and that then
    runs with new `Param` values, giving what the queryset would give (model instances with
    their select_related objects, or values_list tuples). A hot loop's ORM query spends most
    of its CPU building the queryset and compiling its SQL: in the webhook drain, four such
    SELECTs were a third of a lone delivery's worker CPU (docs/performance.md, fourteenth
    session). `build` returns the queryset; its list filters use `AnyOf`, its varying scalars
    `Param`. Not for annotations or prefetches (refused when compiled)."""

    def __init__(self, build: Callable[[], QuerySet]):
        self._build = build
        self._route: tuple[type[models.Model], bool] | None = None  # (model, for write)
        self._statements: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # by connection

    def fetch(self, **values: Any) -> list:
        if self._route is None:
            queryset = self._build()
            self._route = (queryset.model, queryset._for_write)
        model, for_write = self._route
        using = router.db_for_write(model) if for_write else router.db_for_read(model)
        connection = connections[using]  # this thread's: statements are kept per connection
        statement = self._statements.get(connection)
        if statement is None:
            statement = self._statements[connection] = self._compile(using, connection)
        if statement.for_update and connection.get_autocommit():
            raise TransactionManagementError("select_for_update cannot be used outside of a transaction.")
        try:
            params = [p.value(values, connection) if isinstance(p, _Slot) else p for p in statement.params]
        except _NoMatch:
            return []
        with connection.cursor() as cursor:
            cursor.execute(statement.sql, params)
            rows = cursor.fetchall()
        if statement.converters:
            rows = [list(row) for row in rows]
            for row in rows:
                for pos, functions, expression in statement.converters:
                    for convert in functions:
                        row[pos] = convert(row[pos], expression, connection)
        if statement.model_fields is None:
            return [tuple(row) for row in rows]
        instances = []
        for row in rows:
            instance = model.from_db(using, statement.init_list, row[statement.model_fields])
            for populator in statement.populators:
                populator.populate(row, instance)
            instances.append(instance)
        return instances

    def _compile(self, using: str, connection) -> _Statement:
        queryset = self._build().using(using)
        if queryset._iterable_class not in (ModelIterable, ValuesListIterable) or queryset._prefetch_related_lookups \
                or queryset._known_related_objects or queryset.query.annotation_select:
            raise TypeError("Compiled runs plain model or values_list SELECTs")
        compiler = queryset.query.get_compiler(using)
        sql, params = compiler.as_sql()
        select = compiler.select
        converters = [(pos, functions, expression) for pos, (functions, expression)
                      in compiler.get_converters([s[0] for s in select[:compiler.col_count]]).items()]
        statement = _Statement(sql=sql, params=list(params), for_update=queryset.query.select_for_update,
                               converters=converters, model_fields=None)
        if queryset._iterable_class is ModelIterable:
            info = compiler.klass_info
            first, last = info["select_fields"][0], info["select_fields"][-1] + 1
            statement.model_fields = slice(first, last)
            statement.init_list = [s[0].target.attname for s in select[first:last]]
            statement.populators = get_related_populators(info, select, using)
        return statement
