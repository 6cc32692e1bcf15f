"""The report aggregates (journeys.aggregates) give the docs/metrics.md definitions on the
database the tests run on: SQLite natively-registered Python functions, PostgreSQL
percentile_disc and a business-hours expression. The suite runs on both, so both must match
these values — exactly, to the last bit of each float."""
from __future__ import annotations

import datetime as dt
import random
import zoneinfo

import pytest
from django.db.models import F, Q, Value
from django.utils import timezone

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


def test_median_and_p90_equal_the_python_helpers_to_the_last_bit():
    # Microsecond fractions: PostgreSQL's percentile_cont(0.5) interpolates as lo + 0.5·(hi − lo),
    # which differs from the Python (lo + hi) / 2 in the last bit for about one pair in seven.
    rng = random.Random(8)
    interpolated_differently = [100_000, 700_000]  # (0.1 + 0.7) / 2 = 0.39999999999999997, 0.1 + 0.5·0.6 = 0.4
    for count in (2, 3, 50, 51, 0):
        name = f"n{count}"
        micros = [rng.randrange(0, 10**11) for _ in range(count)] or interpolated_differently
        _customers([m / 1e6 for m in micros], name=name)
        # The values the database measures: whole microseconds, correctly rounded to seconds.
        values = [m / 10**6 for m in micros]

        stats = _stats(name)

        assert stats["median"] == kpis.median(values)
        assert stats["p90"] == kpis.percentile(values, 90)
        assert stats["p50"] == kpis.percentile(values, 50)


def test_seconds_are_the_exact_microseconds_rounded_once():
    # 1 day + 86008.635065 s: PostgreSQL's date_part('epoch', end - start) gives 172408.63506499998
    # (it rounds the time part, then adds the days); timedelta.total_seconds() gives 172408.635065.
    delta = dt.timedelta(days=1, microseconds=86_008_635_065)
    _customers([delta.total_seconds()], name="long")
    seconds = Customer.objects.filter(display_name="long").values_list(Seconds(F("created_at"), Value(T0)), flat=True)
    assert list(seconds) == [delta.total_seconds()] == [172408.635065]


# --- business hours -----------------------------------------------------------------------

ZONES = ["Asia/Jakarta", "Europe/Berlin", "America/New_York", "Pacific/Chatham", dt.timezone(dt.timedelta(hours=5, minutes=30))]
CALENDARS = [
    kpis.BusinessHours(dt.time(8), dt.time(17), frozenset({0, 1, 2, 3, 4})),
    # Every hour of every day: the DST changes (Sunday nights) fall inside the hours.
    kpis.BusinessHours(dt.time(0), dt.time(23, 59, 59, 999999), frozenset(range(7))),
    kpis.BusinessHours(dt.time(9, 30, 15, 250000), dt.time(12), frozenset({0, 2, 5})),
    kpis.BusinessHours(dt.time(1, 30), dt.time(3, 30), frozenset({6})),  # the skipped / repeated hour itself
    kpis.BusinessHours(dt.time(8), dt.time(17), frozenset()),
]
# Sunday-morning DST changes of 2026: the US (8 March), Europe (29 March, 25 October), the US
# again (1 November), Chatham Islands (5 April, 27 September).
DST_DAYS = [dt.datetime(2026, m, d, tzinfo=dt.UTC) for m, d in ((3, 8), (3, 29), (4, 5), (9, 27), (10, 25), (11, 1))]


def _pairs() -> list[tuple[dt.datetime, dt.datetime]]:
    rng = random.Random(2026)
    pairs = []
    for n in range(240):
        base = rng.choice(DST_DAYS) if n % 2 else T0
        start = base + dt.timedelta(hours=rng.uniform(-60, 60), microseconds=rng.randrange(10**6))
        end = start + dt.timedelta(hours=rng.choice([rng.uniform(0, 3), rng.uniform(0, 80), rng.uniform(0, 24 * 40)]),
                                   microseconds=rng.randrange(10**6))
        pairs.append((start, end))
    pairs += [
        (T0, T0),  # empty
        (T0 + dt.timedelta(hours=5), T0),  # backwards: 0
        (dt.datetime(2026, 3, 6, 1, 0, tzinfo=dt.UTC), dt.datetime(2026, 3, 6, 10, 0, tzinfo=dt.UTC)),  # exactly 08:00–17:00 Jakarta
        # Europe's repeated hour (25 October, 02:00–03:00 local twice): 02:30 after 02:40 in wall time.
        (dt.datetime(2026, 10, 25, 0, 40, tzinfo=dt.UTC), dt.datetime(2026, 10, 25, 1, 30, tzinfo=dt.UTC)),
        (dt.datetime(2026, 10, 25, 0, 10, tzinfo=dt.UTC), dt.datetime(2026, 10, 25, 1, 50, tzinfo=dt.UTC)),
    ]
    return pairs


@pytest.fixture
def resolution_pairs():
    from journeys.models import ConversationResolution
    from tests.journeys import factories as f

    conversation = f.conversation(inbox_=f.inbox("whatsapp"), status="resolved")
    pairs = _pairs()
    ConversationResolution.objects.bulk_create([
        ConversationResolution(conversation=conversation, cycle_started_at=start, resolved_at=end + dt.timedelta(microseconds=n))
        for n, (start, end) in enumerate(pairs)
    ])
    return ConversationResolution.objects.filter(conversation=conversation)


@pytest.mark.parametrize("zone", ZONES, ids=str)
def test_business_seconds_in_sql_equal_the_python_definition(resolution_pairs, zone):
    tz = zoneinfo.ZoneInfo(zone) if isinstance(zone, str) else zone
    with timezone.override(tz):
        for calendar in CALENDARS:
            rows = resolution_pairs.annotate(
                business=calendar.seconds(F("resolved_at"), F("cycle_started_at")),
                none=calendar.seconds(F("next_cycle_start"), F("cycle_started_at")),
            ).values_list("cycle_started_at", "resolved_at", "business", "none")
            wrong = [(start, end, business, calendar.seconds_between(start, end))
                     for start, end, business, none in rows
                     if business != calendar.seconds_between(start, end) or none is not None]
            assert wrong == [], calendar


def test_business_seconds_add_exact_microseconds_then_round_once():
    hours = kpis.BusinessHours(dt.time(8), dt.time(17), frozenset({0, 1, 2, 3, 4}))
    jakarta = zoneinfo.ZoneInfo("Asia/Jakarta")
    start = dt.datetime(2026, 3, 2, 8, 0, 0, 100001, tzinfo=jakarta)  # Monday
    end = dt.datetime(2026, 3, 13, 16, 59, 59, 300007, tzinfo=jakarta)  # Friday of the next week
    exact = dt.timedelta(hours=9) * 10 - dt.timedelta(microseconds=100001) - dt.timedelta(microseconds=699993)
    assert hours.seconds_between(start, end, tz=jakarta) == exact / dt.timedelta(seconds=1)
