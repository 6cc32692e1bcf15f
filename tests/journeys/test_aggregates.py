"""The report aggregates (journeys.aggregates) give the docs/metrics.md definitions on the
database the tests run on: SQLite natively-registered Python aggregates, PostgreSQL
percentile_cont / percentile_disc. The suite runs on both, so both must match these values."""
from __future__ import annotations

import datetime as dt

import pytest
from django.db.models import F, Q, Value

from customers.models import Customer
from journeys import kpis
from journeys.aggregates import Median, PercentileDisc, Seconds

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def _customers(seconds: list[float], name: str = "x") -> None:
    Customer.objects.bulk_create(
        [Customer(display_name=name, created_at=T0 + dt.timedelta(seconds=s)) for s in seconds]
    )


def _stats(name: str = "x") -> dict:
    since = Seconds(F("created_at"), Value(T0))
    return Customer.objects.filter(display_name=name).aggregate(
        median=Median(since), p90=PercentileDisc(since, 0.9), p50=PercentileDisc(since, 0.5),
        late_median=Median(since, filter=Q(created_at__gte=T0 + dt.timedelta(seconds=3))),
    )


@pytest.mark.parametrize("values, median, p90", [
    ([3, 1, 2], 2, 3),
    ([4, 1, 3, 2], 2.5, 4),
    ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 5.5, 9),  # rank ⌈0.9·10⌉ = 9
    ([600, 1200, 2400], 1200, 2400),
    ([7, 1, 6, 2, 5, 3, 4], 4, 7),  # ⌈6.3⌉ = 7
    (list(range(1, 21)), 10.5, 18),
    ([0.5, 1.25], 0.875, 1.25),  # fractions of a second survive
])
def test_median_and_nearest_rank_p90_match_the_python_definitions(values, median, p90):
    _customers(values)

    stats = _stats()

    assert stats["median"] == pytest.approx(median, abs=1e-6)
    assert stats["p90"] == pytest.approx(p90, abs=1e-6)
    assert stats["median"] == pytest.approx(kpis.median(values), abs=1e-6)
    assert stats["p90"] == pytest.approx(kpis.percentile(values, 90), abs=1e-6)
    assert stats["p50"] == pytest.approx(kpis.percentile(values, 50), abs=1e-6)


def test_empty_and_filtered_groups():
    assert _stats("nobody") == {"median": None, "p90": None, "p50": None, "late_median": None}
    _customers([1, 2, 3, 4, 10])
    assert _stats()["late_median"] == 4.0  # of 3, 4, 10


def test_percentile_fraction_is_validated():
    with pytest.raises(ValueError):
        PercentileDisc(F("id"), 90)
