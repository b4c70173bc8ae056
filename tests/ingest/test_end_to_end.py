"""End to end: the sample feeds, loaded through the real ingest path, hold every invariant of CHANNEL_MODEL.md.

The session's sample warehouse is built from the generator's sample (whose truth gives the exact
numbers), plus unreadable files; the tests then read it through the DuckDB views. The tests that
write (re-sending, reprocessing) run last and leave the numbers unchanged. Every test runs on the
home folder and again on object storage (the local S3 server), where the views read through httpfs.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from pyarrow import fs

from connectors.folder import list_inbox
from ingest.context import IngestContext
from ingest.plan import landed_in_range
from ingest.run import reprocess
from sampledata.generator import generate_samples
from schemas.settings import resolve_customer_key
from tests.conftest import TEST_SECRET, WAREHOUSE_BACKENDS, SampleWarehouse, ingest_inbox

pytestmark = pytest.mark.system


@pytest.fixture(scope="module", params=WAREHOUSE_BACKENDS)
def warehouse(request: pytest.FixtureRequest) -> SampleWarehouse:
    """The session's sample warehouse on the home folder (`local`), or on the local S3 server (`s3`)."""
    return request.getfixturevalue(
        "sample_warehouse" if request.param == "local" else "sample_warehouse_on_s3"
    )


@pytest.fixture
def own_copy(
    warehouse: SampleWarehouse, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[SampleWarehouse]:
    """A private copy of the loaded sample, for tests that write (on S3, its prefix copied too)."""
    home = tmp_path / "home"
    shutil.copytree(warehouse.home, home, symlinks=True)
    environ = {}
    if warehouse.environ:
        server = request.getfixturevalue("object_store")
        environ = server.environment()
        client = server.filesystem()
        source, target = (
            e["THROUGHLINE_WAREHOUSE_URI"].removeprefix("s3://") for e in (warehouse.environ, environ)
        )
        fs.copy_files(source, target, source_filesystem=client, destination_filesystem=client)
    copy = SampleWarehouse(home, warehouse.truth, warehouse.unreadable, warehouse.report, environ)
    yield copy
    copy.close()


def _loads(warehouse: SampleWarehouse) -> pl.DataFrame:
    return warehouse.query("select * from loads")


def test_every_file_is_recorded_with_its_expected_counts(warehouse: SampleWarehouse) -> None:
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


def test_invariant_1_nothing_is_lost(warehouse: SampleWarehouse) -> None:
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


def test_quarantine_holds_exactly_the_bad_records_with_their_rules(warehouse: SampleWarehouse) -> None:
    quarantine = warehouse.query(
        "select l.source_name, q.source_row, q.rule, q.message from quarantine q join loads l using (load_id)"
    )
    found = {(r["source_name"], r["source_row"], r["rule"]) for r in quarantine.iter_rows(named=True)}
    expected = {(b.file_name, b.source_row, b.rule) for b in warehouse.truth.bad_records}
    assert found == expected
    assert quarantine["message"].null_count() == 0


def test_invariant_2_unreadable_files_are_rejected_and_others_land(warehouse: SampleWarehouse) -> None:
    loads = _loads(warehouse)
    rejected = loads.filter(pl.col("status") == "rejected")
    assert sorted(rejected["source_name"].to_list()) == sorted(p.name for p in warehouse.unreadable.values())
    for row in rejected.iter_rows(named=True):
        assert row["error"] and row["source_name"] in row["error"]
        assert warehouse.storage.local_path(row["source_file"]).is_file()  # stays in landing
        moved = warehouse.settings.rejected_dir / row["distributor_id"] / row["source_name"]
        assert moved.is_file() and Path(f"{moved}.error.txt").read_text().strip() == row["error"]
    assert list_inbox(warehouse.settings.inbox_dir) == []


def test_sellout_totals_match_truth(warehouse: SampleWarehouse) -> None:
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


def test_inventory_matches_truth(warehouse: SampleWarehouse) -> None:
    actual = warehouse.query(
        "select distributor_id, count(*) as rows, sum(quantity_on_hand) as on_hand from inventory group by all"
    )
    expected = {t.distributor_id: t for t in warehouse.truth.inventory.values()}
    assert {r["distributor_id"]: (r["rows"], r["on_hand"]) for r in actual.iter_rows(named=True)} == {
        d: (t.rows, t.quantity_on_hand) for d, t in expected.items()
    }


def test_invariant_4_restatement_supersedes_the_earlier_report(warehouse: SampleWarehouse) -> None:
    superseded = [f for f in warehouse.truth.files if f.status == "superseded"]
    assert superseded, "the sample has a restated week"
    for original in superseded:
        loads = _loads(warehouse).filter(pl.col("source_name") == original.file_name)
        assert loads["status"].to_list() == ["superseded"]
        load_id = loads["load_id"][0]
        assert warehouse.query(f"select count(*) as n from sellout where load_id = '{load_id}'")["n"][0] == 0


def test_invariant_5_overlapping_lines_count_once(warehouse: SampleWarehouse) -> None:
    duplicates = warehouse.query("select line_id from sellout group by line_id having count(*) > 1")
    assert duplicates.height == 0
    overlap = warehouse.truth.sellout
    assert any(t.duplicate_lines > 0 for t in overlap.values()), "the sample has overlapping weeks"


def test_invariant_6_lineage(warehouse: SampleWarehouse) -> None:
    missing = warehouse.query(
        "select count(*) as n from sellout where source_file is null or source_row is null or load_id is null"
    )
    assert missing["n"][0] == 0
    files = warehouse.query("select distinct source_file from sellout")["source_file"].to_list()
    assert files and all(warehouse.storage.local_path(f).is_file() for f in files)


@pytest.mark.long_on_s3  # it loads the whole sample again: minutes on the local S3 server
def test_invariant_3_same_bytes_again_change_nothing(own_copy: SampleWarehouse) -> None:
    before = own_copy.query("select count(*) as n, sum(net_amount) as net from sellout").row(0)
    generate_samples(own_copy.settings.inbox_dir)  # identical bytes
    ingest_inbox(own_copy.home, own_copy.environ)
    after = own_copy.query("select count(*) as n, sum(net_amount) as net from sellout").row(0)
    assert after == before
    duplicates = _loads(own_copy).filter(pl.col("status") == "duplicate")
    assert duplicates.height == len(own_copy.truth.files)
    assert duplicates["rows_loaded"].sum() == 0


@pytest.mark.long_on_s3  # it re-runs every load of the sample: minutes on the local S3 server
def test_reprocess_gives_the_same_warehouse(own_copy: SampleWarehouse) -> None:
    query = "select distributor_id, count(*) as n, sum(net_amount) as net, sum(quantity) as q from sellout group by all order by 1"
    before = own_copy.query(query)
    loads_before = _loads(own_copy).height
    key = resolve_customer_key(own_copy.settings, {"THROUGHLINE_CUSTOMER_KEY_SECRET": TEST_SECRET})
    context = IngestContext.open(own_copy.settings, key)
    report = reprocess(context, landed_in_range(context, None, None, None))
    assert {o.load.status for o in report.outcomes} == {"loaded", "superseded", "rejected"}
    assert own_copy.query(query).equals(before)
    assert _loads(own_copy).height == loads_before  # re-runs replace their rows, never add
