"""A whole ingest run, as the CLI and the Dagster assets drive it: receive every file, load what is
new, finish what a crashed run left, complete core, refresh the catalog, and say what became of
each file so its channel can settle it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal, overload

import polars as pl

from connectors.folder import move_rejected, remove_received
from ingest.complete import Hold, complete_core
from ingest.context import IngestContext, check_customer_key
from ingest.enrichment import ReferenceRefresh, refresh_reference
from ingest.load import load_landed_file
from ingest.plan import Incoming
from ingest.receive import receive_file, record_duplicate
from ingest.route import printable, route
from warehouse.catalog import ensure_catalog
from warehouse.core import CoreRebuild
from warehouse.faults import crash_point
from warehouse.ledger import COMPACT_AT_FILES, LandedFile, LoadRow, compact_ledger, pending_landed
from warehouse.tables import ensure_tables, scan_table

Settle = Literal["remove", "reject", "keep"]


@dataclass
class FileOutcome:
    """What became of one file of the run, and what its channel should do with the original."""

    source: Path | None
    channel: str
    load: LoadRow

    @property
    def settle(self) -> Settle:
        if self.source is None or self.channel != "folder":
            return "keep"
        return "reject" if self.load.status == "rejected" else "remove"


@dataclass
class RunReport:
    outcomes: list[FileOutcome] = field(default_factory=list)
    resumed: list[LoadRow] = field(default_factory=list)
    rebuilds: list[CoreRebuild] = field(default_factory=list)
    holds: list[Hold] = field(default_factory=list)
    reference: ReferenceRefresh = field(default_factory=ReferenceRefresh)

    @property
    def load_ids(self) -> list[str]:
        return [o.load.load_id for o in self.outcomes] + [row.load_id for row in self.resumed]


def open_warehouse(context: IngestContext) -> None:
    """The tables exist and the end-customer key is the warehouse's."""
    ensure_tables(context.storage)
    check_customer_key(context)


def prepare(context: IngestContext) -> ReferenceRefresh:
    """Before anything is loaded: the tables exist, the end-customer key is the warehouse's, and the
    reference tables (and core's reference columns) follow the reference folder."""
    open_warehouse(context)
    refresh = refresh_reference(context)
    for problem in refresh.problems:
        context.progress.message(f"reference data not applied: {problem}")
    return refresh


@overload
def load_one(context: IngestContext, landed: LandedFile) -> LoadRow: ...
@overload
def load_one(context: IngestContext, landed: LandedFile, *, only_if_unfinished: bool) -> LoadRow | None: ...
def load_one(
    context: IngestContext, landed: LandedFile, *, only_if_unfinished: bool = False
) -> LoadRow | None:
    """Route and load one landed file (a new one, a retry, or one a crash left unfinished).

    `only_if_unfinished` (a file received again while it has no load row: a crashed run's, or another
    run's receiving the same bytes right now): None when that other run has loaded it meanwhile."""
    return load_landed_file(
        context,
        landed,
        route(context.catalog, landed.distributor_id, landed.source_name, landed.received_at),
        only_if_unfinished=only_if_unfinished,
    )


def ingest_files(context: IngestContext, incoming: list[Incoming], *, confirm: bool = False) -> RunReport:
    """Receive and load `incoming` in order, complete core, and refresh the catalog."""
    report = RunReport(reference=prepare(context))
    handled: set[str] = set()
    for item in incoming:
        receipt = receive_file(context, item.path, distributor_id=item.distributor_id, channel=item.channel)
        if receipt.duplicate_row is not None:
            context.progress.message(
                f"{printable(item.path.name)}: identical bytes already received; duplicate"
            )
            report.outcomes.append(FileOutcome(item.path, item.channel, receipt.duplicate_row))
            continue
        row = load_one(context, receipt.landed, only_if_unfinished=receipt.kind == "unloaded")
        if row is None:  # another run received the same bytes at once and loaded them first
            row = record_duplicate(context, receipt.landed, item.path.name, item.channel)
            context.progress.message(
                f"{printable(item.path.name)}: identical bytes already received; duplicate"
            )
        handled.add(row.load_id)
        report.outcomes.append(FileOutcome(item.path, item.channel, row))
        if len(report.outcomes) % COMPACT_AT_FILES == 0:  # each file adds a few ledger files
            compact_ledger(context.storage)
    report.resumed = finish_interrupted(context, handled)
    report.rebuilds, report.holds = complete_core(context, confirmed=_to_confirm(report) if confirm else None)
    refresh_statuses(context, report)
    compact_ledger(context.storage)
    crash_point("before_catalog")
    ensure_catalog(context.storage, context.settings.catalog_path)
    return report


RESUME_AFTER = timedelta(minutes=2)
"""A landed file with no load is another live run's until this old; then a crash left it behind."""


def finish_interrupted(context: IngestContext, handled: set[str]) -> list[LoadRow]:
    """Load every landed file whose load a crashed run left unfinished (never call it a duplicate).

    A file sent again is resumed at once by its receipt; one that is not is taken up by the first
    run starting `RESUME_AFTER` after it landed, so a run never takes a file another live run has
    just landed. Under the distributor's lock, a file whose load has meanwhile finished is skipped.
    """
    resumed = []
    cutoff = datetime.now(UTC) - RESUME_AFTER
    for landed in pending_landed(context.storage, landed_before=cutoff):
        if landed.load_id in handled:
            continue
        route_of = route(context.catalog, landed.distributor_id, landed.source_name, landed.received_at)
        row = load_landed_file(context, landed, route_of, only_if_unfinished=True)
        if row is not None:
            context.progress.message(
                f"{printable(landed.source_name)}: its load never finished; loaded it now"
            )
            resumed.append(row)
    return resumed


def _to_confirm(report: RunReport) -> list[str]:
    return [o.load.load_id for o in report.outcomes if o.load.status == "staged"]


def refresh_statuses(context: IngestContext, report: RunReport) -> None:
    """Copy the final ledger status (loaded, superseded, held) into the run's rows."""
    ids = report.load_ids
    if not ids:
        return
    latest = (
        scan_table(context.storage, "loads")
        .filter(pl.col("load_id").is_in(ids))
        .select("load_id", "status", "warnings")
        .collect()
    )
    by_id = {row["load_id"]: row for row in latest.iter_rows(named=True)}
    for row in [o.load for o in report.outcomes] + report.resumed:
        if row.load_id in by_id:
            row.status = by_id[row.load_id]["status"]
            row.warnings = by_id[row.load_id]["warnings"]


def settle_inbox_files(report: RunReport, rejected_dir: Path) -> None:
    """Apply each outcome to its inbox file: removed once safe in landing, or moved to rejected/."""
    for outcome in report.outcomes:
        if outcome.source is None:
            continue
        if outcome.settle == "remove":
            remove_received(outcome.source)
        elif outcome.settle == "reject":
            move_rejected(
                outcome.source, rejected_dir, outcome.load.distributor_id, outcome.load.error or "rejected"
            )


def reprocess(context: IngestContext, landed_files: list[LandedFile]) -> RunReport:
    """Re-run the loads of landed files with the current specs (each replaces its own rows)."""
    report = RunReport(reference=prepare(context))
    for landed in landed_files:
        report.outcomes.append(FileOutcome(None, landed.channel, load_one(context, landed)))
    report.rebuilds, report.holds = complete_core(context)
    refresh_statuses(context, report)
    ensure_catalog(context.storage, context.settings.catalog_path)
    return report
