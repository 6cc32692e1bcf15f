"""Page-numbered lists whose total is counted only when needed, and only up to a cap.

A COUNT(*) over every matching row costs as much as the rows (200k conversations: hundreds of
milliseconds), while the page itself needs 25. `CappedPaginator.get_page` reads the requested
page plus one row: when that is the last page the total is known without counting; otherwise
it counts at most about `cap` rows past the start of the page, so the cost is bounded by how
deep the viewer has paged, not by the size of the data. When there are more, `is_capped` is
true and `count`/`num_pages` are lower bounds: templates say "more than …", never a wrong total.

The page is always read with LIMIT per_page + 1 (Django shrinks the last page's LIMIT to the
count, and PostgreSQL may pick a very different plan for LIMIT 1 — walking a whole index
backwards for one search match: 60 ms instead of 6).
"""
from __future__ import annotations

from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.utils.functional import cached_property

COUNT_CAP = 500


class CappedPaginator(Paginator):
    def __init__(self, object_list, per_page, *, cap: int = COUNT_CAP, **kwargs) -> None:
        super().__init__(object_list, per_page, **kwargs)
        self.cap = max(cap, self.per_page + 1)
        self._window = self._pages_for(self.cap) * self.per_page

    def _pages_for(self, rows: int) -> int:
        return -(-rows // self.per_page)

    def get_page(self, number):
        try:
            requested = int(number)
        except (TypeError, ValueError):
            requested = 1
        if requested < 1:
            return super().get_page(number)
        # Count (if needed) far enough to show this page and about `cap` rows beyond its start,
        # in whole pages: then "more than num_pages pages" is exact when capped.
        self._window = (requested - 1 + self._pages_for(self.cap)) * self.per_page
        bottom = (requested - 1) * self.per_page
        rows = list(self.object_list[bottom : bottom + self.per_page + 1])
        if not rows:  # past the end: Django answers with the last page
            return super().get_page(number)
        if len(rows) <= self.per_page:  # the last page: the total is known
            self.__dict__["_counted"] = bottom + len(rows)
        return self._get_page(rows[: self.per_page], requested, self)

    @cached_property
    def _counted(self) -> int:
        rows = self.object_list
        if isinstance(rows, QuerySet):
            # Any `window + 1` rows will do: no ordering (it can make PostgreSQL sort every
            # match), and values("pk"): no annotations or joins the count does not need.
            return rows.order_by().values("pk")[: self._window + 1].count()
        return len(rows[: self._window + 1])

    @cached_property
    def count(self) -> int:
        return min(self._counted, self._window)

    @property
    def is_capped(self) -> bool:
        """True when there are more rows than `count` (and more pages than `num_pages`)."""
        return self._counted > self._window
