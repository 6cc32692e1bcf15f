"""Benchmark: import 100,000 customers from CSV with dedup through customer_resolve.

    .venv/bin/python bench/import_customers.py [--rows 100000] [--database-url URL]

Without --database-url it uses a fresh SQLite file in /tmp (never the checkout's database).
The generated file has realistic mess: ~10% of rows repeat an earlier customer's phone in
another spelling (dedup → update), ~1% have an invalid phone (row error), ~2% carry a
placeholder email ("null"), names and cities in Indonesian style. Prints rows/second.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FIRST = [
    "Budi",
    "Siti",
    "Agus",
    "Dewi",
    "Rina",
    "Andi",
    "Putri",
    "Eko",
    "Wahyu",
    "Sri",
    "Joko",
    "Ayu",
    "Rudi",
    "Lina",
    "Hendra",
]
LAST = ["Santoso", "Wijaya", "Pratama", "Sari", "Saputra", "Lestari", "Hidayat", "Nugroho", "Kusuma", "Halim", ""]
CITIES = ["Jakarta", "Bandung", "Surabaya", "Medan", "Semarang", "Makassar", "Denpasar", "Yogyakarta"]


def phone_spellings(n: int) -> list[str]:
    national = f"812{n:08d}"
    return [
        f"0{national[:3]}-{national[3:7]}-{national[7:]}",
        f"+62 {national[:3]} {national[3:7]} {national[7:]}",
        f"62{national}",
    ]


def generate(path: Path, rows: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    issued: list[int] = []
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Name", "Phone", "Email", "City", "Tags"])
        for i in range(rows):
            roll = rng.random()
            if roll < 0.10 and issued:
                n = rng.choice(issued)  # the same customer again, phone spelled differently
            else:
                n = i
                issued.append(n)
            name = f"{rng.choice(FIRST)} {rng.choice(LAST)}".strip()
            phone = rng.choice(phone_spellings(n))
            if rng.random() < 0.01:
                phone = "12345"
            email = f"c{n}@mail.example.id" if rng.random() < 0.6 else ""
            if rng.random() < 0.02:
                email = "null"
            tags = "vip" if rng.random() < 0.05 else ""
            writer.writerow([name, phone, email, rng.choice(CITIES), tags])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="cx-bench-import-"))
    os.environ["DATABASE_URL"] = args.database_url or f"sqlite:///{workdir / 'bench.sqlite3'}"
    os.environ["MEDIA_ROOT"] = str(workdir / "media")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cxplatform.settings.base")
    import django

    django.setup()
    from django.conf import settings
    from django.core.files import File
    from django.core.management import call_command
    from django.db import connection

    from customers.importer import import_job_run, mapping_clean
    from customers.models import AttributeDefinition, Customer, Identity, ImportJob

    settings.CELERY_TASK_ALWAYS_EAGER = True
    call_command("migrate", verbosity=0)
    AttributeDefinition.objects.get_or_create(key="city", defaults={"label": "City"})

    csv_path = workdir / "customers.csv"
    started = time.perf_counter()
    generate(csv_path, args.rows)
    print(f"generated {args.rows:,} rows in {time.perf_counter() - started:.1f}s → {csv_path}")

    with csv_path.open("rb") as handle:
        job = ImportJob(original_name="customers.csv")
        job.file.save("customers.csv", File(handle), save=False)
        job.save()
    job.mapping = mapping_clean(
        mapping={"Name": "display_name", "Phone": "phone", "Email": "email", "City": "attribute:city", "Tags": "tags"},
        headers=["Name", "Phone", "Email", "City", "Tags"],
    )
    job.save(update_fields=["mapping"])

    started, cpu_started = time.perf_counter(), time.process_time()
    job = import_job_run(job_id=job.pk)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    print(f"database: {connection.vendor} ({os.environ['DATABASE_URL'].split('@')[-1]})")
    print(
        f"imported {job.processed_rows:,} rows in {elapsed:.1f}s ({job.processed_rows / elapsed:,.0f} rows/s): "
        f"created {job.created_rows:,}, updated {job.updated_rows:,}, failed {job.failed_rows:,}"
    )
    print(f"customers {Customer.objects.count():,}, identities {Identity.objects.count():,}, status {job.status}; "
          f"importer CPU {cpu:.1f}s")
    if args.database_url:
        sys.path.insert(0, str(ROOT / "bench"))
        import common

        common.results_write("import", {
            "rows": args.rows, "seconds": round(elapsed, 1), "rows_per_s": round(job.processed_rows / elapsed),
            "importer_cpu_seconds": round(cpu, 1), "created": job.created_rows, "updated": job.updated_rows,
            "failed": job.failed_rows, "database": connection.vendor})


if __name__ == "__main__":
    main()
