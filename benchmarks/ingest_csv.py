"""Benchmark: validated ingest of one large sell-out CSV vs DuckDB's plain CSV -> Parquet copy.

Run on demand (not part of the test suite):

    .venv/bin/python benchmarks/ingest_csv.py --lines 5000000

It writes a synthetic comma CSV (about 97 bytes a line), then times, each in a fresh process so
peak memory (max RSS) is measured per step:
  1. DuckDB `COPY (read_csv(...)) TO parquet`, no validation (the baseline);
  2. Throughline's hot path: read -> normalize -> validate -> staging Delta + quarantine
     (`warehouse.loading.load_landed_file`, the code the Dagster asset calls).
Append the printed line to benchmarks/RESULTS.md with the machine and date.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

SPEC = {
    "id": "bench",
    "name": "Benchmark",
    "country": "US",
    "currency": "USD",
    "file_patterns": ["*.csv"],
    "format": {"type": "csv"},
    "parsing": {"date_formats": ["%Y-%m-%d"]},
    "columns": {
        "transaction_date": "date",
        "invoice_number": "invoice",
        "invoice_line": "line",
        "reseller_name": "reseller",
        "reseller_postal_code": "postal",
        "reseller_country": "country",
        "distributor_sku": "sku",
        "quantity": "qty",
        "unit_price": "price",
        "currency": "currency",
        "net_amount": "amount",
    },
    "natural_key": ["invoice_number", "invoice_line"],
}


def write_csv(path: Path, lines: int) -> None:
    import polars as pl

    index = pl.int_range(0, lines, dtype=pl.Int64)
    frame = pl.select(
        ("2026-10-" + (index % 28 + 1).cast(pl.String).str.zfill(2)).alias("date"),
        ("INV" + (index // 4).cast(pl.String)).alias("invoice"),
        (index % 4 + 1).alias("line"),
        ("Reseller number " + (index % 5000).cast(pl.String)).alias("reseller"),
        (10000 + index % 80000).cast(pl.String).alias("postal"),
        pl.lit("US").alias("country"),
        ("SKU-" + (index % 900).cast(pl.String).str.zfill(5)).alias("sku"),
        (index % 17 + 1).alias("qty"),
        ((index % 1000) / 10 + 1.25).round(2).alias("price"),
        pl.lit("USD").alias("currency"),
    ).with_columns((pl.col("qty") * pl.col("price")).round(2).alias("amount"))
    frame.write_csv(path)


def child_duckdb(csv_path: str, out: str) -> None:
    import duckdb

    start = time.perf_counter()
    duckdb.sql(f"COPY (SELECT * FROM read_csv('{csv_path}', all_varchar=true)) TO '{out}' (FORMAT parquet)")
    print(json.dumps({"seconds": time.perf_counter() - start, "peak_mib": _peak_mib()}))


def child_throughline(csv_path: str, work: str) -> None:
    from schemas.feed_spec import FeedSpec
    from warehouse.ledger import LandedFile
    from warehouse.loading import LoadContext, load_landed_file
    from warehouse.storage import storage_for_home
    from warehouse.tables import ensure_tables

    root = Path(work)
    storage = storage_for_home(root / "landing", root / "warehouse")
    ensure_tables(storage)
    landed_bytes = storage.land(Path(csv_path))
    landed = LandedFile(
        landed_bytes.sha256,
        "bench",
        "bench.csv",
        landed_bytes.source_file,
        "cli",
        landed_bytes.size,
        datetime.now(UTC),
    )
    start = time.perf_counter()
    row = load_landed_file(
        LoadContext(storage, "k" * 32, root / "work", root / "locks"), landed, FeedSpec.model_validate(SPEC)
    )
    elapsed = time.perf_counter() - start
    assert row.status == "loaded", row.error
    print(json.dumps({"seconds": elapsed, "rows_loaded": row.rows_loaded, "peak_mib": _peak_mib()}))


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _measure(args: list[str]) -> dict:
    result = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--child", choices=["duckdb", "throughline"])
    parser.add_argument("paths", nargs="*")
    args = parser.parse_args()
    if args.child == "duckdb":
        child_duckdb(*args.paths)
        return
    if args.child == "throughline":
        child_throughline(*args.paths)
        return
    with tempfile.TemporaryDirectory(prefix="throughline-bench-") as scratch:
        csv_path = Path(scratch) / "sellout.csv"
        write_csv(csv_path, args.lines)
        size_mb = csv_path.stat().st_size / 1e6
        duck = _measure(["--child", "duckdb", str(csv_path), str(Path(scratch) / "out.parquet")])
        ours = _measure(["--child", "throughline", str(csv_path), str(Path(scratch) / "tl")])
        print(
            f"| {datetime.now(UTC):%Y-%m-%d} | {platform.machine()}, {os.cpu_count()} cores | {args.lines:,} lines, "
            f"{size_mb:.0f} MB | {duck['seconds']:.2f} s, {duck['peak_mib']:.0f} MiB | {ours['seconds']:.2f} s, "
            f"{ours['peak_mib']:.0f} MiB | {ours['seconds'] / duck['seconds']:.2f}x |"
        )


if __name__ == "__main__":
    main()
