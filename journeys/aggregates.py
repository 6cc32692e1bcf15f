"""SQL aggregates for the reports: median, nearest-rank percentile and durations in seconds
(calendar and business hours).

PostgreSQL computes them natively (`percentile_disc`, `date_part(…)`, time zone
conversion). SQLite (the embedded default) has no percentile function, so
`register_sqlite_functions` adds small Python functions to every SQLite connection: the same
definitions as `journeys.kpis.median` / `percentile` / `BusinessHours.seconds_between`
(docs/metrics.md), so both databases give the same numbers, to the last bit
(tests/journeys/test_aggregates.py runs on both).
"""
from __future__ import annotations

import datetime as dt
import math
import zoneinfo
from typing import Any

from django.db.backends.utils import split_tzname_delta, typecast_timestamp
from django.db.models import Aggregate, FloatField, Func

# --- SQLite fallbacks ----------------------------------------------------------------------


class _SqliteMedian:
    def __init__(self) -> None:
        self.values: list[float] = []

    def step(self, value: Any) -> None:
        if value is not None:
            self.values.append(value)

    def finalize(self) -> float | None:
        if not self.values:
            return None
        ordered = sorted(self.values)
        mid = len(ordered) // 2
        return float(ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2)


class _SqlitePercentileDisc:
    def __init__(self) -> None:
        self.values: list[float] = []
        self.fraction = 0.0

    def step(self, value: Any, fraction: float) -> None:
        self.fraction = fraction
        if value is not None:
            self.values.append(value)

    def finalize(self) -> float | None:
        if not self.values:
            return None
        ordered = sorted(self.values)
        # Same arithmetic as PostgreSQL's percentile_disc: rank ⌈p·n⌉ in double precision.
        rank = max(1, math.ceil(self.fraction * len(ordered)))
        return float(ordered[rank - 1])


def _sqlite_zone(tzname: str) -> dt.tzinfo:
    # The names Django gives time zones (TimezoneMixin.get_tzname): a zone key, or "UTC+07:00"
    # for a fixed offset.
    name, sign, offset = split_tzname_delta(tzname)
    if offset:
        hours, minutes = offset.split(":")
        delta = dt.timedelta(hours=int(hours), minutes=int(minutes))
        return dt.timezone(delta if sign == "+" else -delta)
    return zoneinfo.ZoneInfo(name)


def _sqlite_business_seconds(end: Any, start: Any, tzname: str, day_start_us: int, day_end_us: int,
                             weekdays: str) -> float | None:
    """`BusinessSeconds` on SQLite: the Python definition itself, per row."""
    from journeys.kpis import BusinessHours

    if end is None or start is None:
        return None
    calendar = BusinessHours(_time(day_start_us), _time(day_end_us), frozenset(int(d) for d in weekdays.split(",") if d))
    # SQLite holds datetimes as UTC text (USE_TZ); parameters arrive the same way.
    return calendar.seconds_between(typecast_timestamp(str(start)).replace(tzinfo=dt.UTC),
                                    typecast_timestamp(str(end)).replace(tzinfo=dt.UTC), tz=_sqlite_zone(tzname))


def register_sqlite_functions(sender: Any, connection: Any, **kwargs: Any) -> None:
    """`connection_created` receiver: the report aggregates on SQLite connections."""
    if connection.vendor != "sqlite":
        return
    connection.connection.create_aggregate("cx_median", 1, _SqliteMedian)
    connection.connection.create_aggregate("cx_percentile_disc", 2, _SqlitePercentileDisc)
    connection.connection.create_function("cx_business_seconds", 6, _sqlite_business_seconds, deterministic=True)


# --- Expressions ---------------------------------------------------------------------------


# percentile_disc's rank is ⌈fraction·n⌉ (at least 1). With 0.5 that is the middle value of an
# odd count and the lower middle of an even one; 0.5 + 2⁻³⁰ (exact in binary, so fraction·n is
# exact for n < 2²³ and far from an integer above) gives the upper middle of an even count and
# the middle of an odd one, for any n below 2²⁹.
UPPER_MIDDLE = 0.5 + 2.0**-30


class Median(Aggregate):
    """The middle value; for an even count the mean of the two middle values (NULLs ignored).

    On PostgreSQL this is (lower middle + upper middle) / 2 from one sort
    (`percentile_disc` of both ranks), not `percentile_cont(0.5)`: that interpolates as
    lower + 0.5 · (upper − lower), which differs from the Python definition in the last bit
    for about one pair of fractional values in seven."""

    name = "Median"
    output_field = FloatField()
    template = f"percentile_disc(ARRAY[0.5, {UPPER_MIDDLE!r}]::float8[]) WITHIN GROUP (ORDER BY %(expressions)s)"

    def as_postgresql(self, compiler, connection, **extra_context):
        # PostgreSQL evaluates identical aggregate calls once, so the two subscripts share one sort.
        sql, params = self.as_sql(compiler, connection, **extra_context)
        return f"((({sql})[1] + ({sql})[2]) / 2)", (*params, *params)

    def as_sqlite(self, compiler, connection, **extra_context):
        return _with_template(self, "cx_median(%(expressions)s)").as_sql(compiler, connection, **extra_context)


class PercentileDisc(Aggregate):
    """Nearest-rank percentile: the value at rank ⌈fraction·n⌉ of the sorted non-NULL values."""

    name = "PercentileDisc"
    output_field = FloatField()

    def __init__(self, expression, fraction: float, **extra):
        if not 0 < fraction <= 1:
            raise ValueError("fraction must be in (0, 1]")
        self.fraction = float(fraction)
        self.template = f"percentile_disc({self.fraction!r}) WITHIN GROUP (ORDER BY %(expressions)s)"
        super().__init__(expression, **extra)

    def as_sqlite(self, compiler, connection, **extra_context):
        template = f"cx_percentile_disc(%(expressions)s, {self.fraction!r})"
        return _with_template(self, template).as_sql(compiler, connection, **extra_context)


def _with_template(aggregate: Aggregate, template: str) -> Aggregate:
    # Aggregate.as_sql() wraps `self.template` in its FILTER template itself; passing
    # template= as well would clash, so the vendor variant is a copy with its own template.
    clone = aggregate.copy()
    clone.template = template
    return clone


class Seconds(Func):
    """`end - start` in seconds (float) for two datetime expressions; NULL if either is NULL."""

    output_field = FloatField()
    arity = 2

    def __init__(self, end, start, **extra):
        super().__init__(end, start, **extra)

    def as_sql(self, compiler, connection, **extra_context):
        # Exact and cheap. EXTRACT(EPOCH FROM end - start) is exact but computes a numeric for
        # every row (a sixth of the KPI page's statements); date_part('epoch', end - start) is
        # a double but rounds twice beyond a day. A timestamp's date_part('epoch') × 10⁶,
        # rounded, is its exact microseconds (below 2⁵³, i.e. until the year 2255), so the
        # difference is exact and one division rounds it, as timedelta.total_seconds() does.
        end, end_params = compiler.compile(self.source_expressions[0])
        start, start_params = compiler.compile(self.source_expressions[1])
        micro = "round(date_part('epoch', {}) * 1000000)"
        sql = f"(({micro.format(end)} - {micro.format(start)}) / 1000000.0::double precision)"
        return sql, (*end_params, *start_params)

    def as_sqlite(self, compiler, connection, **extra_context):
        # Django's own SQLite function for datetime subtraction (microseconds).
        return super().as_sql(
            compiler, connection, template="(django_timestamp_diff(%(expressions)s) / 1000000.0)", arg_joiner=", ",
            **extra_context,
        )


def _time(microseconds: int) -> dt.time:
    seconds, micro = divmod(int(microseconds), 1_000_000)
    return dt.time(seconds // 3600, seconds // 60 % 60, seconds % 60, micro)


def _microseconds(value: dt.time) -> int:
    return ((value.hour * 60 + value.minute) * 60 + value.second) * 1_000_000 + value.microsecond


class BusinessSeconds(Func):
    """Seconds of [start, end) inside business hours: `journeys.kpis.BusinessHours.seconds_between`
    in SQL (NULL if either is NULL).

    The Python definition walks the days in the time zone and adds each day's overlap with the
    opening hours, in wall-clock time. Here the same sum is B(end) − B(start), B being a
    "business clock": the business microseconds from a Monday long ago (0001-01-01) to a
    wall-clock time, i.e. whole weeks × the weekly hours + the earlier business days of that
    week + the part of that day inside the hours. Integer microseconds throughout, one
    division at the end, like `seconds_between`. Equal for every pair, including DST changes
    (both are wall-clock; an end before the start gives 0) — tests/journeys/test_aggregates.py.
    """

    output_field = FloatField()
    arity = 2

    def __init__(self, end, start, *, day_start: dt.time, day_end: dt.time, weekdays: frozenset[int], tzname: str,
                 **extra):
        self.day_start_us = _microseconds(day_start)
        self.day_end_us = _microseconds(day_end)
        self.weekdays = tuple(sorted(d for d in weekdays if 0 <= d <= 6))
        self.tzname = tzname
        super().__init__(end, start, **extra)

    def as_sql(self, compiler, connection, **extra_context):
        raise NotImplementedError(f"BusinessSeconds is not implemented on {connection.vendor}")

    def as_sqlite(self, compiler, connection, **extra_context):
        end, start = (compiler.compile(expression) for expression in self.source_expressions)
        weekdays = ",".join(str(d) for d in self.weekdays)
        return (f"cx_business_seconds({end[0]}, {start[0]}, %s, {self.day_start_us:d}, {self.day_end_us:d}, '{weekdays}')",
                (*end[1], *start[1], self.tzname))

    def as_postgresql(self, compiler, connection, **extra_context):
        end, start = (compiler.compile(expression) for expression in self.source_expressions)
        tzname = connection.ops._prepare_tzname_delta(self.tzname)
        sql = _Sql()
        sql.add("(CASE WHEN ", end, " > ", start, " THEN GREATEST(")
        self._clock(sql, end, tzname)
        sql.add(" - ")
        self._clock(sql, start, tzname)
        sql.add(", 0)::float8 / 1000000::float8 WHEN ", end, " <= ", start, " THEN 0::float8 END)")
        return sql.text(), tuple(sql.params)

    def _clock(self, sql: _Sql, moment: tuple[str, Any], tzname: str) -> None:
        """B(moment): business microseconds from 0001-01-01 (a Monday) to its wall-clock time."""
        length = max(0, self.day_end_us - self.day_start_us)
        local = ("(", moment, " AT TIME ZONE ", ("%s", [tzname]), ")")
        days = ("(", *local, "::date - DATE '0001-01-01')")
        # The time of day in microseconds, exactly: time / 10⁶ is correctly rounded and far from
        # a half, so × 10⁶ rounds back to the integer.
        time_of_day = ("(date_part('epoch', ", *local, "::time) * 1000000)::bigint")
        sql.add("((", *days, f" / 7)::bigint * {length * len(self.weekdays):d} + CASE ", *days, " %% 7")
        for day in range(7):
            earlier = length * sum(1 for w in self.weekdays if w < day)
            sql.add(f" WHEN {day} THEN {earlier:d}")
            if day in self.weekdays:
                sql.add(" + LEAST(GREATEST(", *time_of_day, f" - {self.day_start_us:d}, 0), {length:d})")
        sql.add(" END)")


class _Sql:
    """SQL text and its parameters, assembled in order (a fragment may repeat a compiled
    expression, whose parameters must then repeat too)."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.params: list[Any] = []

    def add(self, *pieces: Any) -> None:
        for piece in pieces:
            if isinstance(piece, str):
                self.parts.append(piece)
            else:
                text, params = piece
                self.parts.append(text)
                self.params.extend(params)

    def text(self) -> str:
        return "".join(self.parts)
