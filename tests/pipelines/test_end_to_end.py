"""End to end: the sample feeds, materialized in-process on tmp_path, hold every invariant of CHANNEL_MODEL.md.

One module-scoped warehouse is built from the generator's sample (whose truth gives the exact
numbers), plus unreadable files; the tests then read it through the DuckDB views.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from connectors.folder import list_inbox
from pipelines.runner import group_files, landed_groups, run_partitions
from sampledata.generator import END_CUSTOMERS, copy_feed_specs, generate_samples, write_unreadable_samples
from sampledata.truth import SampleTruth
from schemas.settings import ThroughlineSettings
from tests.conftest import TEST_SECRET
from warehouse.catalog import connect
from warehouse.storage import storage_for_home


class Warehouse:
    """A loaded home folder and helpers to query it."""

    def __init__(
        self, settings: ThroughlineSettings, truth: SampleTruth, unreadable: dict[str, Path]
    ) -> None:
        self.settings = settings
        self.truth = truth
        self.unreadable = unreadable
        self.storage = storage_for_home(settings.landing_dir, settings.warehouse_dir)

    def query(self, sql: str) -> pl.DataFrame:
        connection = connect(self.storage)
        try:
            return connection.sql(sql).pl()
        finally:
            connection.close()

    def ingest_inbox(self) -> None:
        waiting = [f.path for f in list_inbox(self.settings.inbox_dir)]
        groups, problems = group_files(self.settings, waiting, None)
        assert problems == []
        runs = run_partitions(self.settings, groups, channel="folder", report=lambda _: None)
        assert all(run.success for run in runs), [run for run in runs if not run.success]


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    home = tmp_path_factory.mktemp("e2e") / "home"
    saved = {
        name: os.environ.get(name)
        for name in ("THROUGHLINE_HOME", "THROUGHLINE_CUSTOMER_KEY_SECRET", "DAGSTER_HOME")
    }
    os.environ.update(
        THROUGHLINE_HOME=str(home),
        THROUGHLINE_CUSTOMER_KEY_SECRET=TEST_SECRET,
        DAGSTER_HOME=str(home / "dagster"),
    )
    try:
        settings = ThroughlineSettings.from_env()
        settings.ensure_layout()
        copy_feed_specs(settings.feeds_dir)
        truth = generate_samples(settings.inbox_dir)
        unreadable = write_unreadable_samples(settings.inbox_dir)
        loaded = Warehouse(settings, truth, unreadable)
        loaded.ingest_inbox()
        yield loaded
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _loads(warehouse: Warehouse) -> pl.DataFrame:
    return warehouse.query("select * from loads")


def test_every_file_is_recorded_with_its_expected_counts(warehouse: Warehouse) -> None:
    loads = _loads(warehouse).filter(pl.col("status").is_in(["loaded", "superseded"]))
    by_name = {row["source_name"]: row for row in loads.iter_rows(named=True)}
    for expected in warehouse.truth.files:
        row = by_name[expected.file_name]
        assert (row["status"], row["rows_read"], row["rows_loaded"], row["rows_quarantined"]) == (
            expected.status,
            expected.rows_read,
            expected.rows_loaded,
            expected.rows_quarantined,
        ), expected.file_name
    assert len(by_name) == len(warehouse.truth.files)


def test_invariant_1_nothing_is_lost(warehouse: Warehouse) -> None:
    unbalanced = warehouse.query(
        "select source_name from loads where rows_read - rows_loaded - rows_quarantined <> 0"
    )
    assert unbalanced.height == 0
    staged = warehouse.query(
        "select l.load_id, l.rows_loaded, count(s.line_id) as staged from loads l "
        "left join delta_scan('{}') s using (load_id) where l.dataset = 'sellout' and l.status <> 'rejected' "
        "group by all having l.rows_loaded <> count(s.line_id)".format(
            warehouse.storage.table_uri("staging_sellout")
        )
    )
    assert staged.height == 0
    quarantined = warehouse.query(
        "select l.load_id from loads l left join quarantine q using (load_id) "
        "group by l.load_id, l.rows_quarantined having l.rows_quarantined <> count(q.load_id)"
    )
    assert quarantined.height == 0


def test_quarantine_holds_exactly_the_bad_records_with_their_rules(warehouse: Warehouse) -> None:
    quarantine = warehouse.query(
        "select l.source_name, q.source_row, q.rule, q.message from quarantine q join loads l using (load_id)"
    )
    found = {(r["source_name"], r["source_row"], r["rule"]) for r in quarantine.iter_rows(named=True)}
    expected = {(b.file_name, b.source_row, b.rule) for b in warehouse.truth.bad_records}
    assert found == expected
    assert quarantine["message"].null_count() == 0


def test_invariant_2_unreadable_files_are_rejected_and_others_land(warehouse: Warehouse) -> None:
    loads = _loads(warehouse)
    rejected = loads.filter(pl.col("status") == "rejected")
    assert sorted(rejected["source_name"].to_list()) == sorted(p.name for p in warehouse.unreadable.values())
    for row in rejected.iter_rows(named=True):
        assert row["error"] and row["source_name"] in row["error"]
        assert warehouse.storage.local_path(row["source_file"]).is_file()  # stays in landing
        moved = warehouse.settings.rejected_dir / row["distributor_id"] / row["source_name"]
        assert moved.is_file() and Path(f"{moved}.error.txt").read_text().strip() == row["error"]
    assert list_inbox(warehouse.settings.inbox_dir) == []


def test_sellout_totals_match_truth(warehouse: Warehouse) -> None:
    actual = warehouse.query(
        "select distributor_id, count(*) as lines, count(distinct line_id) as distinct_lines, "
        "sum(quantity) as quantity, sum(net_amount) as net from sellout group by distributor_id"
    )
    by_distributor = {row["distributor_id"]: row for row in actual.iter_rows(named=True)}
    assert set(by_distributor) == set(warehouse.truth.sellout)
    for distributor_id, expected in warehouse.truth.sellout.items():
        row = by_distributor[distributor_id]
        assert row["lines"] == row["distinct_lines"] == expected.lines, distributor_id
        assert row["quantity"] == expected.quantity, distributor_id
        assert Decimal(str(row["net"])) == expected.net_amount_total, distributor_id
    per_currency = warehouse.query(
        "select distributor_id, currency, sum(net_amount) as net from sellout group by all"
    )
    for row in per_currency.iter_rows(named=True):
        assert (
            Decimal(str(row["net"]))
            == warehouse.truth.sellout[row["distributor_id"]].net_amount_by_currency[row["currency"]]
        )


def test_inventory_matches_truth(warehouse: Warehouse) -> None:
    actual = warehouse.query(
        "select distributor_id, count(*) as rows, sum(quantity_on_hand) as on_hand from inventory group by all"
    )
    expected = {t.distributor_id: t for t in warehouse.truth.inventory.values()}
    assert {r["distributor_id"]: (r["rows"], r["on_hand"]) for r in actual.iter_rows(named=True)} == {
        d: (t.rows, t.quantity_on_hand) for d, t in expected.items()
    }


def test_invariant_4_restatement_supersedes_the_earlier_report(warehouse: Warehouse) -> None:
    superseded = [f for f in warehouse.truth.files if f.status == "superseded"]
    assert superseded, "the sample has a restated week"
    for original in superseded:
        loads = _loads(warehouse).filter(pl.col("source_name") == original.file_name)
        assert loads["status"].to_list() == ["superseded"]
        load_id = loads["load_id"][0]
        assert warehouse.query(f"select count(*) as n from sellout where load_id = '{load_id}'")["n"][0] == 0


def test_invariant_5_overlapping_lines_count_once(warehouse: Warehouse) -> None:
    duplicates = warehouse.query("select line_id from sellout group by line_id having count(*) > 1")
    assert duplicates.height == 0
    overlap = warehouse.truth.sellout
    assert any(t.duplicate_lines > 0 for t in overlap.values()), "the sample has overlapping weeks"


def test_invariant_6_lineage(warehouse: Warehouse) -> None:
    missing = warehouse.query(
        "select count(*) as n from sellout where source_file is null or source_row is null or load_id is null"
    )
    assert missing["n"][0] == 0
    files = warehouse.query("select distinct source_file from sellout")["source_file"].to_list()
    assert files and all(warehouse.storage.local_path(f).is_file() for f in files)


def test_invariant_7_no_end_customer_identity_in_any_view(warehouse: Warehouse) -> None:
    identities = [
        value
        for customers in END_CUSTOMERS.values()
        for c in customers
        for value in (c.name, c.email, c.phone, c.address)
        if value
    ]
    assert identities, "the sample reports end customers"
    for view in ("sellout", "inventory", "loads", "quarantine"):
        frame = warehouse.query(f"select * from {view}")
        text = "\n".join(str(v) for column in frame.select(pl.col(pl.String)).iter_columns() for v in column)
        leaked = [value for value in identities if value in text]
        assert leaked == [], f"{view} shows {leaked[:3]}"
    keyed = warehouse.query("select count(end_customer_key) as n from sellout")["n"][0]
    assert keyed > 0


def test_invariant_3_same_bytes_again_change_nothing(warehouse: Warehouse) -> None:
    before = warehouse.query("select count(*) as n, sum(net_amount) as net from sellout").row(0)
    generate_samples(warehouse.settings.inbox_dir)  # identical bytes
    warehouse.ingest_inbox()
    after = warehouse.query("select count(*) as n, sum(net_amount) as net from sellout").row(0)
    assert after == before
    duplicates = _loads(warehouse).filter(pl.col("status") == "duplicate")
    assert duplicates.height == len(warehouse.truth.files)
    assert duplicates["rows_loaded"].sum() == 0


def test_reprocess_gives_the_same_warehouse(warehouse: Warehouse) -> None:
    query = "select distributor_id, count(*) as n, sum(net_amount) as net, sum(quantity) as q from sellout group by all order by 1"
    before = warehouse.query(query)
    loads_before = _loads(warehouse).height
    runs = run_partitions(
        warehouse.settings,
        landed_groups(warehouse.settings, None, None, None),
        channel="folder",
        report=lambda _: None,
    )
    assert all(run.success for run in runs)
    assert warehouse.query(query).equals(before)
    assert _loads(warehouse).height == loads_before  # re-runs replace their rows, never add
