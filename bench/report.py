"""Print bench/results/latest.json as the Markdown tables of docs/performance.md, each row
with its target from issue 8 and whether it is met."""
from __future__ import annotations

import json
import sys
from pathlib import Path

PATH = Path(__file__).resolve().parent / "results" / "latest.json"


def cpu_per_webhook(row: dict) -> str:
    cpu = row.get("cpu_ms_per_webhook")
    if not cpu:
        return ""
    return f"; CPU per webhook {cpu['web']} ms web + {cpu['worker']} worker + {cpu['database']} database"


def verdict(ok: bool | None) -> str:
    return "—" if ok is None else ("met" if ok else "**missed**")


def main() -> int:
    data = json.loads(PATH.read_text())
    m = data.get("machine", {})
    print(f"Machine: {m.get('cpus')} CPUs, {m.get('memory_gib')} GiB; Python {m.get('python')}, Django {m.get('django')}, "
          f"{m.get('postgresql')}, {m.get('redis')}; commit {m.get('git')}; {m.get('date')}.\n")
    if "dataset" in data:
        d = data["dataset"]
        print(f"Dataset (scale {d['scale']}): " + ", ".join(f"{k} {v:,}" for k, v in d["rows"].items())
              + f" — generated in {d['seconds']} s.\n")
    print("| benchmark | result | target | |")
    print("|---|---|---|---|")
    ingest = data.get("ingest", {})
    for server, row in ingest.get("peak", {}).items():
        b = row["bare"]
        for mode, label in (("alongside", "worker processing alongside"), ("burst", "worker held, drained after")):
            w, ratio = row.get(f"webhook_{mode}"), row.get(f"ratio_to_bare_{mode}")
            if w is None:
                continue
            print(f"| ingest peak ack, {server}, {label} (wrk, 16 conns) | {w['requests_per_s']:,.0f}/s (p50 {w['p50_ms']} ms, "
                  f"p99 {w['p99_ms']} ms); bare endpoint {b['requests_per_s']:,.0f}/s → ratio {ratio} | "
                  f"≥ 1,000/s, ≥ 50% of bare | {verdict(w['requests_per_s'] >= 1000 and ratio >= 0.5)} |")
            e2e = w.get("end_to_end", {})
            print(f"| processed end to end, {server}, {label} | {e2e.get('processed_per_s')}/s "
                  f"({e2e.get('processed')} stored, {e2e.get('parked')} parked) | ≥ 500/s | "
                  f"{verdict((e2e.get('processed_per_s') or 0) >= 500)} |")
    for row in ingest.get("fixed_rate", []):
        target = row["rate"] == 300
        print(f"| ack latency at {row['rate']}/s (gunicorn, open loop) | achieved {row['achieved_per_s']}/s, p50 {row['p50_ms']} ms, "
              f"p99 {row['p99_ms']} ms, {row['failures']} failed; processed {row['end_to_end'].get('processed_per_s')}/s"
              f"{cpu_per_webhook(row)} | "
              f"{'p99 ≤ 50 ms' if target else ''} | {verdict(row['p99_ms'] <= 50) if target else ''} |")
    for r in data.get("live", {}).get("runs", []):
        target = r["rate"] >= 100 and r["agents_connected"] >= 500
        print(f"| live push, {r['agents_connected']} agent sockets, {r['rate']} msg/s | p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms; "
              f"{r['received']}/{r['sent']} frames, {r['lost']} lost, {r['duplicates']} duplicated | "
              f"{'p99 ≤ 100 ms' if target else ''} | "
              f"{verdict(r['p99_ms'] is not None and r['p99_ms'] <= 100 and r['lost'] == 0) if target else ''} |")
    if "sockets" in data:
        r = data["sockets"]
        top = r["steps"][-1]
        print(f"| idle sockets, one daphne | {top['sockets']:,} held, RSS {top['rss_mib']} MiB "
              f"({r['rss_mib_per_1000_sockets']} MiB per 1,000), {r['answered_ping']:,} answered a ping | ≥ 5,000 under 1 GiB | "
              f"{verdict(top['sockets'] >= 5000 and top['rss_mib'] < 1024)} |")
    reads = data.get("reads", {})
    for row in reads.get("reads", []):
        cpu = f", CPU {row['web_cpu_ms']} ms web + {row['db_cpu_ms']} ms database" if "web_cpu_ms" in row else ""
        print(f"| read: {row['name']} ({row['viewer']}) | p50 {row['p50_ms']} ms, p95 {row['p95_ms']} ms{cpu}, {row['queries']} queries | "
              f"p95 ≤ 50 ms | {verdict(row['p95_ms'] <= 50)} |")
    for row in reads.get("reports", []):
        limit = 500 if "90 days" in row["name"] else 1000
        print(f"| report: {row['name']} | p50 {row['p50_ms']} ms, p95 {row['p95_ms']} ms, {row['queries']} queries | "
              f"≤ {limit} ms | {verdict(row['p95_ms'] <= limit)} |")
    if "import" in data:
        r = data["import"]
        print(f"| CSV import {r['rows']:,} rows with dedup ({r['database']}) | {r['seconds']} s ({r['rows_per_s']:,} rows/s; "
              f"{r['created']:,} created, {r['updated']:,} updated, {r['failed']:,} errors) | ≤ 60 s | {verdict(r['seconds'] <= 60)} |")
    peer = data.get("peer")
    if peer:
        print("\nPeer side by side (django-helpdesk): see the `peer` section of bench/results/latest.json")
        print(json.dumps(peer.get("ratios", peer), indent=1)[:3000])
    return 0


if __name__ == "__main__":
    sys.exit(main())
