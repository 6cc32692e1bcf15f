"""Page-numbered lists whose total is counted only up to a cap.

A COUNT(*) over every matching row costs as much as the rows (200k conversations: hundreds of
milliseconds), while the page itself needs 25. `CappedPaginator` counts at most `cap` rows
past the start of the requested page, so the cost is bounded by how deep the viewer has paged,
not by the size of the data. When there are more, `is_capped` is true and `count`/`num_pages`
are lower bounds: templates say "more than …", never a wrong total.
"""
from __future__ import annotations

from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.utils.functional import cached_property

COUNT_CAP = 500


class CappedPaginator(Paginator):
    def __init__(self, object_list, per_page, *, cap: int = COUNT_CAP, **kwargs) -> None:
        super().__init__(object_list, per_page, **kwargs)
        self.cap = cap
        self._window = -(-cap // self.per_page) * self.per_page

    def get_page(self, number):
        try:
            requested = max(1, int(number))
        except (TypeError, ValueError):
            requested = 1
        # Count far enough to show this page and about `cap` rows beyond its start, in whole
        # pages: then "more than num_pages pages" is exact when capped.
        self._window = (requested - 1 + -(-self.cap // self.per_page)) * self.per_page
        return super().get_page(number)

    @cached_property
    def _counted(self) -> int:
        rows = self.object_list
        if isinstance(rows, QuerySet):
            # values("pk"): no annotations or joins the count does not need.
            return rows.values("pk")[: self._window + 1].count()
        return len(rows[: self._window + 1])

    @cached_property
    def count(self) -> int:
        return min(self._counted, self._window)

    @property
    def is_capped(self) -> bool:
        """True when there are more rows than `count` (and more pages than `num_pages`)."""
        return self._counted > self._window
