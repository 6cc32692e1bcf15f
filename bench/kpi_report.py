"""The service KPI report in-process on the benchmark dataset: `journeys.kpis.service_report`
for the last 90 days and the last 12 months, calendar and business hours, with the KPI page's
default grouping (channel) and without grouping; p50 of --repeat runs after one warm-up, and
the load average of the machine (it has 2 cores shared with other work).

    eval $(bench/servers.sh start) && .venv/bin/python bench/kpi_report.py [--repeat 5] [--group-by channel,]

Each run is timed twice: `report` is `service_report` right after a facts refresh (its own
refresh then costs one query), `with refresh` includes bringing the facts up to date first,
which costs more when something else is writing messages at the same time. It reads only;
the refresh writes the KPI facts when the dataset changed.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

common.django_setup()

from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from journeys import kpis  # noqa: E402
from journeys.facts import kpi_facts_refresh  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--group-by", default="channel,", help="comma-separated; empty = no grouping")
    parser.add_argument("--hours", default="calendar,business")
    parser.add_argument("--spans", default="90,365")
    args = parser.parse_args()
    today = timezone.localdate()
    out = []
    for days in [int(d) for d in args.spans.split(",")]:
        window = kpis.period_from_query({"from": (today - dt.timedelta(days=days - 1)).isoformat(), "to": today.isoformat()})
        for hours in args.hours.split(","):
            for group_by in args.group_by.split(","):
                kpis.service_report(window=window, group_by=group_by, hours=hours)  # warm-up
                timings, refreshed = [], []
                for _ in range(args.repeat):
                    started = time.perf_counter()
                    kpi_facts_refresh()
                    refresh_done = time.perf_counter()
                    with CaptureQueriesContext(connection) as captured:
                        kpis.service_report(window=window, group_by=group_by, hours=hours)
                    timings.append(time.perf_counter() - refresh_done)
                    refreshed.append(time.perf_counter() - started)
                row = {"days": days, "hours": hours, "group_by": group_by or "-", "p50_s": round(statistics.median(timings), 3),
                       "min_s": round(min(timings), 3), "max_s": round(max(timings), 3), "queries": len(captured),
                       "with_refresh_p50_s": round(statistics.median(refreshed), 3), "load": round(os.getloadavg()[0], 2)}
                out.append(row)
                print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
