"""A large load enters core in slices of `ENRICH_SLICE_ROWS` source rows, each its own Parquet file
(so the streaming engine's memory follows the slice, not the file), and holds exactly the rows,
in the same order, that one pass over the whole load gives; a reference refresh slices the same way."""

from __future__ import annotations

import math
from pathlib import Path

import polars as pl
import pytest

from ingest.context import IngestContext
from ingest.enrichment import enrichment
from sampledata import scale
from sampledata.generator import copy_feed_specs
from sampledata.reference import copy_reference
from schemas.settings import ThroughlineSettings, resolve_customer_key
from tests.conftest import TEST_SECRET, ingest_inbox
from warehouse import core
from warehouse.tables import add_actions, scan_table

LINES = 2_500
SLICE = 700
VOLATILE = ["ingested_at", "received_at"]

pytestmark = pytest.mark.system


def _load(home: Path) -> IngestContext:
    copy_feed_specs(home / "feeds")
    copy_reference(home / "reference")
    scale.write_northwind(home / "inbox" / "northwind_us" / "NW_SALES_20260105.csv", LINES)
    report = ingest_inbox(home)
    assert [outcome.load.rows_loaded for outcome in report.outcomes] == [LINES]
    settings = ThroughlineSettings.for_home(home, {})
    return IngestContext.open(
        settings, resolve_customer_key(settings, {"THROUGHLINE_CUSTOMER_KEY_SECRET": TEST_SECRET})
    )


def _core(context: IngestContext) -> pl.DataFrame:
    return scan_table(context.storage, "sellout").drop(VOLATILE).collect()


def _core_files(context: IngestContext) -> int:
    return add_actions(context.storage, "sellout").height


def test_a_large_load_enters_core_in_slices_holding_the_rows_of_one_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = _load(tmp_path / "whole")
    assert _core_files(whole) == 1

    monkeypatch.setattr(core, "ENRICH_SLICE_ROWS", SLICE)
    sliced = _load(tmp_path / "sliced")
    assert _core_files(sliced) == math.ceil(LINES / SLICE)
    expected = _core(whole)
    assert expected.height == LINES
    assert expected["partner_id"].null_count() < LINES and expected["sku"].null_count() < LINES
    assert _core(sliced).equals(expected)  # same rows, same values, same order

    (load_id,) = _core(sliced)["load_id"].unique().to_list()
    core.refresh_partitions(
        sliced.storage, "sellout", "northwind_us", [load_id], enrichment(sliced).apply, sliced.lock_dir
    )
    assert _core_files(sliced) == math.ceil(LINES / SLICE)
    assert _core(sliced).equals(expected)
