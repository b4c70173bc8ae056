"""A small run of `make bench`'s harness: every step runs and the report says what it measured.

The benchmark's numbers are written down by `make bench` in benchmarks/RESULTS.md, never asserted
here (timings are not a test's business); this only proves the harness works end to end.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.system

STEPS = (
    "throughline ingest",
    "DuckDB COPY to Parquet",
    "Polars scan_csv -> sink_parquet",
    "pandas + pandera",
)


def test_the_harness_measures_every_step_of_every_feed(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    run = subprocess.run(
        [
            sys.executable,
            "benchmarks/harness.py",
            "--lines",
            "3000",
            "--history-lines",
            "2000",
            "--history-files",
            "2",
            "--xlsx-lines",
            "500",
            "--edi-lines",
            "1000",
            "--write",
            "--results",
            str(results),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    report = results.read_text(encoding="utf-8")
    assert "CSV feeds: best time of 2 interleaved round(s)" in report
    for feed in ("comma CSV (Northwind)", "semicolon cp1252 CSV (Rheinland)"):
        section = report[report.index(feed) :]
        for step in STEPS:
            row = re.search(
                rf"\| {re.escape(step)} \| ([0-9.]+) s \| ([0-9,]+) \| ([0-9,]+) MiB \| ([0-9.]+)x \|",
                section,
            )
            assert row, f"{feed}: no row for {step}"
            assert float(row.group(1)) > 0 and int(row.group(3).replace(",", "")) > 0
    for step, lines in (
        ("throughline ingest, xlsx", "500"),
        ("Polars read_excel -> Parquet, xlsx", "500"),
        ("throughline ingest, EDI 867", "1,000"),
    ):
        row = re.search(
            rf"\| {re.escape(step)} \| {lines} \| [0-9,]+ MB \| ([0-9.]+) s \| [0-9,]+ \| [0-9.,]+ \| ([0-9,]+) MiB \|",
            report,
        )
        assert row, f"no row for {step}"
        assert float(row.group(1)) > 0 and int(row.group(2).replace(",", "")) > 0
    for step in (
        "10,000 lines, fresh home",
        "10,000 lines, empty warehouse (set up)",
        "warehouse holding 2,000 lines",
    ):
        assert re.search(rf"\| [^|]*{re.escape(step)}[^|]* \| ([0-9.]+) s \| ([0-9,]+) MiB \|", report), step
    assert re.search(
        r"Ratio \(history / empty warehouse set up\): [0-9.]+ \(history / fresh home: [0-9.]+\)", report
    )
    assert re.search(r"polars \d", report) and "cores" in report
