"""SQL aggregates for the reports: median, nearest-rank percentile and durations in seconds.

PostgreSQL computes them natively (`percentile_cont`, `percentile_disc`, `EXTRACT(EPOCH …)`).
SQLite (the embedded default) has no percentile function, so `register_sqlite_functions`
adds two small Python aggregates to every SQLite connection: the same definitions as
`journeys.kpis.median` / `percentile` (docs/metrics.md), so both databases give the same
numbers (tests/journeys/test_aggregates.py runs on both).
"""
from __future__ import annotations

import math
from typing import Any

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


def register_sqlite_functions(sender: Any, connection: Any, **kwargs: Any) -> None:
    """`connection_created` receiver: the report aggregates on SQLite connections."""
    if connection.vendor != "sqlite":
        return
    connection.connection.create_aggregate("cx_median", 1, _SqliteMedian)
    connection.connection.create_aggregate("cx_percentile_disc", 2, _SqlitePercentileDisc)


# --- Expressions ---------------------------------------------------------------------------


class Median(Aggregate):
    """The middle value; for an even count the mean of the two middle values (NULLs ignored)."""

    function = "percentile_cont"
    name = "Median"
    output_field = FloatField()
    template = "percentile_cont(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"

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
        return super().as_sql(
            compiler, connection, template="EXTRACT(EPOCH FROM (%(expressions)s))::double precision", arg_joiner=" - ",
            **extra_context,
        )

    def as_sqlite(self, compiler, connection, **extra_context):
        # Django's own SQLite function for datetime subtraction (microseconds).
        return super().as_sql(
            compiler, connection, template="(django_timestamp_diff(%(expressions)s) / 1000000.0)", arg_joiner=", ",
            **extra_context,
        )
