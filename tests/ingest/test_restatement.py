"""Restatements, overlaps and arrival order, through the ingest use cases (no Dagster): the rules of core,
on the home folder and on object storage (the local S3 server; the tests marked `long_on_s3` run
there in `make test-long` only, to keep `make test` short)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from ingest.complete import CONFIRMED_MARK, complete_core, confirm_loads
from ingest.context import IngestContext
from ingest.enrichment import enrichment
from ingest.plan import Incoming
from ingest.run import ingest_files, reprocess
from schemas.settings import ThroughlineSettings, resolve_customer_key
from tests.conftest import TEST_SECRET
from warehouse.core import refresh_partitions
from warehouse.ledger import landed_files_of, read_loads
from warehouse.tables import read_table

SPEC = """
id: acme
name: Acme
country: US
currency: USD
file_patterns: ["ACME_*.csv"]
format: {type: csv}
columns: {transaction_date: date, invoice_number: inv, invoice_line: line, distributor_sku: sku, quantity: qty, unit_price: price}
natural_key: [invoice_number, invoice_line]
period: {pattern: 'ACME_(?P<period>\\d{8})', format: '%Y%m%d'}
"""
HEADER = "date,inv,line,sku,qty,price\n"


@pytest.fixture
def context(tmp_path: Path, warehouse_env: dict[str, str]) -> IngestContext:
    settings = ThroughlineSettings.for_home(tmp_path / "home", warehouse_env)
    settings.ensure_layout()
    (settings.feeds_dir / "acme.yaml").write_text(SPEC, encoding="utf-8")
    return IngestContext.open(
        settings, resolve_customer_key(settings, {"THROUGHLINE_CUSTOMER_KEY_SECRET": TEST_SECRET})
    )


def _send(
    context: IngestContext, folder: Path, name: str, body: str, mtime_second: int = 0, **options
) -> str:
    path = folder / name
    path.write_text(HEADER + body, encoding="utf-8")
    stamp = datetime(2026, 11, 10, 6, 0, mtime_second, tzinfo=UTC).timestamp()
    os.utime(path, (stamp, stamp))
    report = ingest_files(context, [Incoming(path, "acme", "cli")], **options)
    (outcome,) = report.outcomes
    return outcome.load.load_id


def _statuses(context: IngestContext) -> dict[str, str]:
    return dict(read_loads(context.storage).select("load_id", "status").iter_rows())


def test_restated_period_supersedes_and_overlaps_count_once(context: IngestContext, tmp_path: Path) -> None:
    original = _send(context, tmp_path, "ACME_20261102.csv", "2026-11-02,A,1,X,1,10\n2026-11-03,A,2,Y,2,5\n")
    next_week = _send(context, tmp_path, "ACME_20261109.csv", "2026-11-03,A,2,Y,2,5\n2026-11-10,B,1,X,3,10\n")
    sellout = read_table(context.storage, "sellout")
    assert sorted(sellout["invoice_number"] + sellout["invoice_line"].cast(pl.String)) == ["A1", "A2", "B1"]
    assert sellout.filter(pl.col("invoice_number") == "A", pl.col("invoice_line") == 2)[
        "load_id"
    ].to_list() == [next_week]

    restated = _send(
        context, tmp_path, "ACME_20261102_v2.csv", "2026-11-02,A,1,X,4,10\n2026-11-03,A,3,X,1,10\n"
    )
    assert _statuses(context) == {original: "superseded", next_week: "loaded", restated: "loaded"}
    sellout = read_table(context.storage, "sellout").sort("invoice_number", "invoice_line")
    assert sellout.select("invoice_number", "invoice_line", "quantity", "load_id").rows() == [
        ("A", 1, 4, restated),
        ("A", 2, 2, next_week),
        ("A", 3, 1, restated),
        ("B", 1, 3, next_week),
    ]


def test_the_original_sent_again_after_its_restatement_changes_nothing(
    context: IngestContext, tmp_path: Path
) -> None:
    """Arrival order decides, not mtime: the original copied in again (a new mtime) is a duplicate."""
    body = "2026-11-02,A,1,X,1,10\n2026-11-03,A,2,Y,2,5\n"
    original = _send(context, tmp_path, "ACME_20261102.csv", body, mtime_second=1)
    restated = _send(
        context,
        tmp_path,
        "ACME_20261102_v2.csv",
        "2026-11-02,A,1,X,4,10\n2026-11-03,A,2,Y,2,5\n",
        mtime_second=2,
    )
    again = tmp_path / "again"
    again.mkdir()
    resent = _send(context, again, "ACME_20261102.csv", body, mtime_second=59)
    statuses = _statuses(context)
    assert (
        statuses[original] == "superseded"
        and statuses[restated] == "loaded"
        and statuses[resent] == "duplicate"
    )
    assert read_table(context.storage, "sellout")["quantity"].sum() == 6


@pytest.mark.long_on_s3
def test_arrival_times_increase_even_within_one_clock_tick(context: IngestContext, tmp_path: Path) -> None:
    for week in range(5):
        _send(context, tmp_path, f"ACME_202611{week + 1:02d}.csv", f"2026-11-0{week + 1},W{week},1,X,1,10\n")
    arrivals = [landed.received_at for landed in landed_files_of(context.storage, "acme")]
    assert arrivals == sorted(arrivals) and len(set(arrivals)) == 5


def test_an_empty_restatement_is_held_until_confirmed(context: IngestContext, tmp_path: Path) -> None:
    _send(
        context,
        tmp_path,
        "ACME_20261102.csv",
        "2026-11-02,A,1,X,1,10\n2026-11-03,A,2,Y,2,5\n2026-11-03,A,3,Y,2,5\n",
    )
    empty = _send(context, tmp_path, "ACME_20261102_v2.csv", "")
    loads = read_loads(context.storage).filter(pl.col("load_id") == empty).row(0, named=True)
    assert loads["status"] == "held"
    assert (
        f"throughline confirm {empty}" in loads["warnings"]
        and "would empty period 2026-11-02" in loads["warnings"]
    )
    assert read_table(context.storage, "sellout").height == 3  # nothing changed

    shrunk = _send(context, tmp_path, "ACME_20261102_v3.csv", "2026-11-02,A,1,X,1,10\n")
    assert _statuses(context)[shrunk] == "held"
    assert (
        "from 3 to 1 lines (67% fewer"
        in read_loads(context.storage).filter(pl.col("load_id") == shrunk)["warnings"][0]
    )

    confirmed = _send(context, tmp_path, "ACME_20261102_v4.csv", "2026-11-02,A,1,X,7,10\n", confirm=True)
    assert _statuses(context)[confirmed] == "loaded"
    assert read_table(context.storage, "sellout")["quantity"].to_list() == [7]


@pytest.mark.long_on_s3
def test_rerunning_a_load_replaces_its_rows(context: IngestContext, tmp_path: Path) -> None:
    load_id = _send(context, tmp_path, "ACME_20261102.csv", "2026-11-02,A,1,X,1,10\n2026-11-02,A,2,X,1,-1\n")
    reprocess(context, landed_files_of(context.storage, "acme"))
    assert read_loads(context.storage)["load_id"].to_list() == [load_id]
    assert read_table(context.storage, "staging_sellout").height == 1
    assert read_table(context.storage, "quarantine")["rule"].to_list() == ["price_negative"]


@pytest.mark.long_on_s3
def test_a_new_week_rewrites_only_its_own_and_overlapping_partitions(
    context: IngestContext, tmp_path: Path
) -> None:
    from deltalake import DeltaTable

    for week in range(1, 5):
        _send(
            context,
            tmp_path,
            f"ACME_202611{week:02d}.csv",
            f"2026-11-{week:02d},W{week},1,X,1,10\n2026-11-{week:02d},W{week},2,X,1,10\n",
        )
    core = DeltaTable(context.storage.table_uri("sellout"), storage_options=context.storage.storage_options)
    files_before = set(core.file_uris())
    fifth = _send(context, tmp_path, "ACME_20261105.csv", "2026-11-04,W4,2,X,1,10\n2026-11-05,W5,1,X,1,10\n")
    core = DeltaTable(context.storage.table_uri("sellout"), storage_options=context.storage.storage_options)
    files_after = set(core.file_uris())
    # The fifth week repeats one line of the fourth: only those two loads' partitions are rewritten.
    assert len(files_before - files_after) == 1 and len(files_after - files_before) == 2
    kept = files_before & files_after
    assert len(kept) == 3  # weeks 1-3 untouched
    sellout = read_table(context.storage, "sellout")
    assert sellout.height == 9 and sellout["line_id"].n_unique() == 9
    assert sellout.filter(pl.col("invoice_number") == "W4", pl.col("invoice_line") == 2)[
        "load_id"
    ].to_list() == [fifth]


def _core_files(context: IngestContext) -> set[str]:
    from deltalake import DeltaTable

    return set(
        DeltaTable(
            context.storage.table_uri("sellout"), storage_options=context.storage.storage_options
        ).file_uris()
    )


def test_a_load_whose_lines_all_went_to_a_later_load_is_not_rewritten_by_every_update(
    context: IngestContext, tmp_path: Path
) -> None:
    first = _send(context, tmp_path, "ACME_20261102.csv", "2026-11-02,A,1,X,1,10\n2026-11-03,A,2,Y,2,5\n")
    again = _send(
        context,
        tmp_path,
        "ACME_20261109.csv",
        "2026-11-02,A,1,X,1,10\n2026-11-03,A,2,Y,2,5\n2026-11-09,B,1,X,1,10\n",
    )
    assert _statuses(context) == {first: "loaded", again: "loaded"}
    assert set(read_table(context.storage, "sellout")["load_id"]) == {again}
    files_before = _core_files(context)
    later = _send(context, tmp_path, "ACME_20261116.csv", "2026-11-16,C,1,X,1,10\n")
    files_after = _core_files(context)
    # Only the new week's partition is written: the first report, whose lines the second holds,
    # is not added again (which rewrote the second report's partition on every update).
    assert files_before < files_after and len(files_after - files_before) == 1
    assert sorted(read_table(context.storage, "sellout")["load_id"]) == sorted([again, again, again, later])


def test_a_line_comes_back_to_a_report_that_lost_all_its_lines_once_the_later_one_is_restated(
    context: IngestContext, tmp_path: Path
) -> None:
    first = _send(context, tmp_path, "ACME_20261102.csv", "2026-11-02,A,1,X,1,10\n")
    repeat = _send(context, tmp_path, "ACME_20261109.csv", "2026-11-02,A,1,X,1,10\n2026-11-09,B,1,X,3,10\n")
    third = _send(context, tmp_path, "ACME_20261116.csv", "2026-11-16,C,1,X,1,10\n")
    assert set(read_table(context.storage, "sellout")["load_id"]) == {repeat, third}
    restated = _send(context, tmp_path, "ACME_20261109_v2.csv", "2026-11-09,B,1,X,3,10\n")
    assert _statuses(context) == {first: "loaded", repeat: "superseded", third: "loaded", restated: "loaded"}
    sellout = read_table(context.storage, "sellout").sort("invoice_number")
    assert sellout.select("invoice_number", "load_id").rows() == [("A", first), ("B", restated), ("C", third)]


SPEC_WITH_THOUSANDS = SPEC.replace(
    "format: {type: csv}", "format: {type: csv}\nparsing: {thousands_separator: ','}"
)


def _with_spec(context: IngestContext, spec: str) -> IngestContext:
    """The context again after the feed spec changed (as a person editing it between runs)."""
    (context.settings.feeds_dir / "acme.yaml").write_text(spec, encoding="utf-8")
    return IngestContext.open(
        context.settings,
        resolve_customer_key(context.settings, {"THROUGHLINE_CUSTOMER_KEY_SECRET": TEST_SECRET}),
    )


def _lines(context: IngestContext) -> list[tuple]:
    sellout = read_table(context.storage, "sellout")
    return sorted(sellout.select("invoice_number", "invoice_line", "quantity", "load_id").rows())


@pytest.mark.parametrize(
    "first_body",
    ["2026-11-02,A,1,X,7,10\n", "2026-11-02,A,1,X,7,10\n2026-11-03,A,2,X,7,10\n"],
    ids=["all-its-lines", "some-of-its-lines"],
)
def test_a_line_goes_back_to_the_earlier_report_when_the_later_one_runs_again_without_it(
    context: IngestContext, tmp_path: Path, first_body: str
) -> None:
    context = _with_spec(context, SPEC_WITH_THOUSANDS)
    first = _send(context, tmp_path, "ACME_20261102.csv", first_body)
    later = _send(
        context, tmp_path, "ACME_20261109.csv", '2026-11-02,A,1,X,"1,000",10\n2026-11-09,B,1,X,3,10\n'
    )
    assert ("A", 1, 1000, later) in _lines(context)
    # Without the thousands separator, the later report's A1 is quarantined when it runs again.
    context = _with_spec(context, SPEC)
    reprocess(
        context, [landed for landed in landed_files_of(context.storage, "acme") if landed.load_id == later]
    )
    assert ("A", 1, 7, first) in _lines(context)
    assert ("B", 1, 3, later) in _lines(context)
    assert len(_lines(context)) == first_body.count("\n") + 1


class _Killed(BaseException):
    """Stands for a SIGKILL at a crash point."""


def _restatement_killed_after_core_commit(
    context: IngestContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """A four-line report, then its two-line restatement killed once its rows are in core (the
    ledger not yet moved); returns the first report's load id."""
    import warehouse.core

    first = _send(
        context, tmp_path, "ACME_20261102.csv", "".join(f"2026-11-02,A,{n},X,7,10\n" for n in range(1, 5))
    )

    def killed_after_core_commit(name: str) -> None:
        if name == "after_core_commit":
            raise _Killed(name)

    monkeypatch.setattr(warehouse.core, "crash_point", killed_after_core_commit)
    with pytest.raises(_Killed):
        _send(
            context, tmp_path, "ACME_20261102_v2.csv", '2026-11-02,A,1,X,7,10\n2026-11-02,A,2,X,"1,000",10\n'
        )
    monkeypatch.undo()
    assert _statuses(context)[first] == "loaded"
    return first


def _run_the_restatement_again_held(context: IngestContext, first: str) -> None:
    """Run again under a spec that quarantines one of its two lines, the restatement would shrink
    the period: it is held, so the first report counts again, with every line."""
    context = _with_spec(context, SPEC)
    again = [landed for landed in landed_files_of(context.storage, "acme") if landed.load_id != first]
    reprocess(context, again)
    assert _statuses(context)[again[0].load_id] == "held"
    assert _lines(context) == [("A", n, 7, first) for n in range(1, 5)]


def test_a_report_whose_rows_a_killed_update_took_out_comes_back_whole(
    context: IngestContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    context = _with_spec(context, SPEC_WITH_THOUSANDS)
    first = _restatement_killed_after_core_commit(context, tmp_path, monkeypatch)
    _run_the_restatement_again_held(context, first)


def test_a_reference_refresh_of_a_report_an_update_took_out_meanwhile_writes_nothing(
    context: IngestContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    context = _with_spec(context, SPEC_WITH_THOUSANDS)
    first = _restatement_killed_after_core_commit(context, tmp_path, monkeypatch)
    # A reference refresh that listed the first report before the restatement took it out of core.
    refresh_partitions(
        context.storage, "sellout", "acme", [first], enrichment(context).apply, context.lock_dir
    )
    _run_the_restatement_again_held(context, first)


def test_a_report_run_again_and_rejected_leaves_core(context: IngestContext, tmp_path: Path) -> None:
    first = _send(context, tmp_path, "ACME_20261102.csv", "2026-11-02,A,1,X,7,10\n2026-11-03,A,2,X,7,10\n")
    later = _send(context, tmp_path, "ACME_20261109.csv", "2026-11-03,A,2,X,8,10\n2026-11-09,B,1,X,3,10\n")
    assert _lines(context) == [("A", 1, 7, first), ("A", 2, 8, later), ("B", 1, 3, later)]
    # The spec no longer names the later report's columns: run again, it is rejected.
    context = _with_spec(context, SPEC.replace("qty", "units"))
    reprocess(
        context, [landed for landed in landed_files_of(context.storage, "acme") if landed.load_id == later]
    )
    assert _statuses(context) == {first: "loaded", later: "rejected"}
    assert _lines(context) == [("A", 1, 7, first), ("A", 2, 7, first)]


@pytest.mark.long_on_s3
def test_a_line_comes_back_from_an_earlier_report_when_its_later_report_is_restated_without_it(
    context: IngestContext, tmp_path: Path
) -> None:
    first = _send(context, tmp_path, "ACME_20261102.csv", "2026-11-02,A,1,X,1,10\n2026-11-03,A,2,Y,2,5\n")
    repeat = _send(context, tmp_path, "ACME_20261109.csv", "2026-11-03,A,2,Y,2,5\n2026-11-09,B,1,X,3,10\n")

    def owner():
        return (
            read_table(context.storage, "sellout")
            .filter(pl.col("invoice_number") == "A", pl.col("invoice_line") == 2)["load_id"]
            .to_list()
        )

    assert owner() == [repeat]
    _send(context, tmp_path, "ACME_20261109_v2.csv", "2026-11-09,B,1,X,3,10\n")
    assert _statuses(context)[repeat] == "superseded"
    assert owner() == [first]
    assert read_table(context.storage, "sellout").height == 3


def test_a_file_landed_but_never_loaded_is_loaded_by_a_later_run(
    context: IngestContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ingest.run
    from ingest.receive import receive_file

    orphan = tmp_path / "ACME_20261102.csv"
    orphan.write_text(HEADER + "2026-11-02,A,1,X,1,10\n", encoding="utf-8")
    from ingest.run import prepare

    prepare(context)
    receive_file(context, orphan, distributor_id="acme", channel="cli")  # then the run died
    young = ingest_files(context, [])
    assert young.resumed == []  # it may be another live run's file: left alone for now
    monkeypatch.setattr(ingest.run, "RESUME_AFTER", timedelta(0))
    later = ingest_files(context, [])
    assert [row.source_name for row in later.resumed] == ["ACME_20261102.csv"]
    assert _statuses(context) == {later.resumed[0].load_id: "loaded"}
    assert read_table(context.storage, "sellout").height == 1


@pytest.mark.long_on_s3
def test_a_confirmed_restatement_stays_confirmed_when_it_is_run_again(
    context: IngestContext, tmp_path: Path
) -> None:
    """`reprocess` re-runs a load a person confirmed: the confirmation is kept, so it is not held again."""
    _send(
        context,
        tmp_path,
        "ACME_20261102.csv",
        "2026-11-02,A,1,X,1,10\n2026-11-03,A,2,Y,2,5\n2026-11-03,A,3,Y,2,5\n",
    )
    shrunk = _send(context, tmp_path, "ACME_20261102_v2.csv", "2026-11-02,A,1,X,7,10\n")
    assert _statuses(context)[shrunk] == "held"
    confirm_loads(context, [shrunk])
    complete_core(context)
    assert _statuses(context)[shrunk] == "loaded"

    report = reprocess(context, landed_files_of(context.storage, "acme"))
    assert not report.holds
    assert _statuses(context)[shrunk] == "loaded"
    warnings = read_loads(context.storage).filter(pl.col("load_id") == shrunk)["warnings"][0]
    assert warnings.startswith(CONFIRMED_MARK)
    assert read_table(context.storage, "sellout")["quantity"].to_list() == [7]
