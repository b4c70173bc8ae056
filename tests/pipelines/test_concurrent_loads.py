"""Concurrent loads: three `throughline ingest` processes at once, while queries keep answering.

Two of the loads are for the same distributor (they take turns at commit time), one for another
(it runs beside them). None may fail on a lock, and no row may be lost: on the home folder, and
on object storage (the local S3 server), where only the store's put-if-absent keeps two commits
of the same table version apart.
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sampledata.generator import copy_feed_specs, generate_samples
from schemas.settings import ThroughlineSettings
from warehouse.catalog import connect
from warehouse.storage import storage_for
from warehouse.tables import ensure_tables

CLI = [sys.executable, "-m", "cli.main"]
pytestmark = pytest.mark.system


def _keys(path: Path) -> set[tuple[str, str]]:
    """The (invoice, line) keys of a Northwind file's well-formed, valid lines."""
    rows = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig")))
    return {(r["Invoice Number"], r["Line"]) for r in rows if None not in r and "." not in r["Qty"]}


def test_concurrent_loads_lose_nothing_and_queries_keep_answering(
    home: Path, tmp_path: Path, warehouse_env: dict[str, str]
) -> None:
    settings = ThroughlineSettings.from_env()
    settings.ensure_layout()
    copy_feed_specs(settings.feeds_dir)
    drop = tmp_path / "drop"
    truth = generate_samples(drop)
    chosen = {
        "NW_SALES_20261019.csv": "northwind_us",
        "NW_SALES_20261026.csv": "northwind_us",
        "RH_Abverkauf_20261019.csv": "rheinland_de",
    }
    storage = storage_for(settings)
    ensure_tables(storage)
    env = {**os.environ}
    processes = [
        subprocess.Popen(
            [*CLI, "ingest", str(drop / distributor / name), "--format", "csv"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, distributor in chosen.items()
    ]
    answered = 0
    while any(process.poll() is None for process in processes):
        connection = connect(storage)
        try:
            connection.sql("select count(*) from sellout").fetchall()
            answered += 1
        finally:
            connection.close()
        time.sleep(0.2)
    outputs = [process.communicate() for process in processes]
    for process, (stdout, stderr), name in zip(processes, outputs, chosen, strict=True):
        assert process.returncode == 0, stderr[-3000:]
        (row,) = csv.DictReader(io.StringIO(stdout))
        assert (row["source_name"], row["status"]) == (name, "loaded")
    assert answered > 0

    connection = connect(storage)
    try:
        loads = connection.sql(
            "select source_name, status, rows_read, rows_loaded, rows_quarantined from loads"
        ).pl()
        staging_uri = storage.table_uri("staging_sellout")
        staged = connection.sql(
            f"select count(*) as n, count(distinct line_id) as d from delta_scan('{staging_uri}')"
        ).pl()
        lines = connection.sql("select count(*) as n, count(distinct line_id) as d from sellout").pl().row(0)
    finally:
        connection.close()
    assert sorted(loads["source_name"].to_list()) == sorted(chosen)
    for row in loads.iter_rows(named=True):
        expected = truth.file(row["source_name"])
        assert row["status"] == "loaded"
        assert (row["rows_read"], row["rows_loaded"], row["rows_quarantined"]) == (
            expected.rows_read,
            expected.rows_loaded,
            expected.rows_quarantined,
        )
    assert staged["n"][0] == loads["rows_loaded"].sum()
    # The two northwind weeks overlap: the repeated lines count once in sellout.
    repeated = _keys(drop / "northwind_us" / "NW_SALES_20261019.csv") & _keys(
        drop / "northwind_us" / "NW_SALES_20261026.csv"
    )
    assert staged["n"][0] - staged["d"][0] == len(repeated) > 0
    assert lines == (staged["d"][0], staged["d"][0])
