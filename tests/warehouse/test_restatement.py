"""Restatements and overlaps, through the warehouse library alone (no Dagster): the rules of core."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from schemas.feed_spec import FeedSpec
from warehouse.core import rebuild_core
from warehouse.ledger import read_loads
from warehouse.loading import LoadContext, load_landed_file
from warehouse.receiving import receive_file
from warehouse.storage import storage_for_home
from warehouse.tables import ensure_tables, read_table

SPEC = FeedSpec.model_validate(
    {
        "id": "acme",
        "name": "Acme",
        "country": "US",
        "currency": "USD",
        "file_patterns": ["ACME_*.csv"],
        "format": {"type": "csv"},
        "columns": {
            "transaction_date": "date",
            "invoice_number": "inv",
            "invoice_line": "line",
            "distributor_sku": "sku",
            "quantity": "qty",
            "unit_price": "price",
        },
        "natural_key": ["invoice_number", "invoice_line"],
        "period": {"pattern": r"ACME_(?P<period>\d{8})", "format": "%Y%m%d"},
    }
)
HEADER = "date,inv,line,sku,qty,price\n"


@pytest.fixture
def context(tmp_path: Path) -> LoadContext:
    storage = storage_for_home(tmp_path / "landing", tmp_path / "warehouse")
    ensure_tables(storage)
    return LoadContext(storage, "s" * 32, tmp_path / "work", tmp_path / "locks")


def _load(context: LoadContext, folder: Path, name: str, body: str, received_second: int) -> str:
    path = folder / name
    path.write_text(HEADER + body, encoding="utf-8")
    stamp = datetime(2026, 11, 10, 6, 0, received_second, tzinfo=UTC).timestamp()
    os.utime(path, (stamp, stamp))
    received_at = datetime.fromtimestamp(stamp, tz=UTC)
    receipt = receive_file(context, path, distributor_id="acme", channel="cli", received_at=received_at)
    row = load_landed_file(context, receipt.landed, SPEC)
    assert row.status == "loaded", row.error
    return row.load_id


def test_restated_period_supersedes_and_overlaps_count_once(context: LoadContext, tmp_path: Path) -> None:
    original = _load(
        context, tmp_path, "ACME_20261102.csv", "2026-11-02,A,1,X,1,10\n2026-11-03,A,2,Y,2,5\n", 1
    )
    next_week = _load(
        context, tmp_path, "ACME_20261109.csv", "2026-11-03,A,2,Y,2,5\n2026-11-10,B,1,X,3,10\n", 2
    )
    rebuild = rebuild_core(context.storage, "sellout", "acme", context.lock_dir)
    assert rebuild.superseded_loads == []
    sellout = read_table(context.storage, "sellout")
    assert sorted(sellout["invoice_number"] + sellout["invoice_line"].cast(pl.String)) == ["A1", "A2", "B1"]
    assert sellout.filter(pl.col("invoice_number") == "A", pl.col("invoice_line") == 2)[
        "load_id"
    ].to_list() == [next_week]  # the overlapping line counts once, from the later report

    restated = _load(context, tmp_path, "ACME_20261102_v2.csv", "2026-11-02,A,1,X,4,10\n", 3)
    rebuild = rebuild_core(context.storage, "sellout", "acme", context.lock_dir)
    assert rebuild.superseded_loads == [original]
    statuses = dict(read_loads(context.storage).select("load_id", "status").iter_rows())
    assert statuses == {original: "superseded", next_week: "loaded", restated: "loaded"}
    sellout = read_table(context.storage, "sellout").sort("invoice_number", "invoice_line")
    assert sellout.select("invoice_number", "invoice_line", "quantity", "load_id").rows() == [
        ("A", 1, 4, restated),
        ("A", 2, 2, next_week),
        ("B", 1, 3, next_week),
    ]


def test_rerunning_a_load_replaces_its_rows(context: LoadContext, tmp_path: Path) -> None:
    load_id = _load(
        context, tmp_path, "ACME_20261102.csv", "2026-11-02,A,1,X,1,10\n2026-11-02,A,2,X,1,-1\n", 1
    )
    landed = read_table(context.storage, "landed_files").row(0, named=True)
    from warehouse.ledger import LandedFile

    again = load_landed_file(context, LandedFile.from_row(landed), SPEC)
    assert again.load_id == load_id
    assert read_loads(context.storage).height == 1
    assert read_table(context.storage, "staging_sellout").height == 1
    assert read_table(context.storage, "quarantine")["rule"].to_list() == ["price_negative"]
