"""CappedPaginator: the total is counted only when the page is not the last one, and then only up
to about `cap` rows past the page's start; beyond that the total is a lower bound."""
from __future__ import annotations

import pytest

from accounts.models import Team
from cxplatform.paginator import CappedPaginator


@pytest.mark.parametrize(
    ("rows", "number", "expected"),
    [
        # (rows, requested page) -> (page number, items on it, count, num_pages, is_capped)
        (15, "1", (1, 10, 15, 2, False)),  # within the cap: exact
        (15, "2", (2, 5, 15, 2, False)),
        (30, "1", (1, 10, 20, 2, True)),   # beyond it: a lower bound
        (30, "3", (3, 10, 30, 3, False)),
        (60, "1", (1, 10, 20, 2, True)),   # counted 2 pages' worth only
        (60, "3", (3, 10, 40, 4, True)),   # window moves with the page
        (60, "6", (6, 10, 60, 6, False)),  # the last page knows the total
        (60, "99", (6, 10, 60, 6, False)),  # past the end: the last page, as Django does
        (60, "abc", (1, 10, 20, 2, True)),
        (0, "1", (1, 0, 0, 1, False)),
    ],
)
def test_counts_only_up_to_the_cap_past_the_page(rows, number, expected):
    paginator = CappedPaginator(list(range(rows)), 10, cap=20)

    page = paginator.get_page(number)

    assert (page.number, len(page), paginator.count, paginator.num_pages, paginator.is_capped) == expected


def test_capped_means_more_rows_than_num_pages_hold():
    paginator = CappedPaginator(list(range(41)), 10, cap=20)

    page = paginator.get_page(1)

    assert paginator.is_capped
    assert paginator.num_pages * 10 < 41
    assert page.has_next()


@pytest.mark.django_db
def test_last_page_is_one_query_and_a_capped_total_two(django_assert_num_queries):
    Team.objects.bulk_create([Team(name=f"team {i:02}") for i in range(12)])
    teams = Team.objects.order_by("name")

    with django_assert_num_queries(1):
        last = CappedPaginator(teams, 5, cap=5).get_page(3)
        assert [t.name for t in last] == ["team 10", "team 11"]
        assert (last.paginator.count, last.paginator.is_capped) == (12, False)

    with django_assert_num_queries(2):
        first = CappedPaginator(teams, 5, cap=5).get_page(1)
        assert [t.name for t in first] == [f"team {i:02}" for i in range(5)]
        assert (first.paginator.count, first.paginator.num_pages, first.paginator.is_capped) == (10, 2, True)
