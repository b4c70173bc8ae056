"""Assets: landing -> staging -> core, all seven loaded by one step over a run's partitions.

One multi-asset, `load_reports`, receives files (the sensor's, or what landing holds for the run's
partitions), loads them, completes core (rows entering it are enriched from the tables of
`reference_assets`) and refreshes the catalog, each through the `ingest` use cases. It cannot be
split: *Materialize* on any of the seven assets runs the whole load, and a backfill of a range of
periods is one run per distributor (`LOAD_BACKFILL_POLICY`), with one core rebuild.

A partition is materialized only when the run loaded a file of it: a period that has no file in
landing stays missing (the `report_on_time` check says it is owed), so a backfill never paints
empty periods as filled. Results of the load checks are reported per partition (`checks.py`).
"""

# No `from __future__ import annotations`: Dagster reads the `context` annotation when it defines the op.
from collections import defaultdict
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import polars as pl

from ingest.complete import complete_core
from ingest.periods import report_periods
from ingest.plan import landed_in_range
from ingest.receive import receive_file
from ingest.route import printable, route
from ingest.run import (
    FileOutcome,
    RunReport,
    finish_interrupted,
    load_one,
    prepare,
    refresh_statuses,
    settle_inbox_files,
)
from pipelines.checks import (
    CORE_SELLOUT_KEY,
    LOAD_CHECK_SPECS,
    LOADS_KEY,
    ROW_RECONCILIATION,
    count_records,
    exception_evaluations,
    latest_materializations,
    load_check_evaluations,
    markdown_table,
    quarantine_query,
    report_on_time_evaluation,
)
from pipelines.partitions import (
    LOAD_BACKFILL_POLICY,
    add_partitions,
    load_partitions,
    partition_key,
    split_key,
    targeted,
)
from pipelines.reference_assets import INVENTORY_REFERENCE, SELLOUT_REFERENCE
from pipelines.resources import ThroughlineResource
from warehouse.catalog import ensure_catalog
from warehouse.core import CoreRebuild
from warehouse.ledger import LoadRow

RECEIVED_FILES = dg.AssetKey(["landing", "received_files"])
STAGING_SELLOUT = dg.AssetKey(["staging", "sellout"])
STAGING_INVENTORY = dg.AssetKey(["staging", "inventory"])
STAGING_QUARANTINE = dg.AssetKey(["staging", "quarantine"])
LOADS = LOADS_KEY
CORE_SELLOUT = CORE_SELLOUT_KEY
CORE_INVENTORY = dg.AssetKey(["core", "inventory"])
LOAD_OP = "load_reports"

LOAD_SPECS = [
    dg.AssetSpec(
        RECEIVED_FILES,
        group_name="landing",
        description="Files received for the partition, copied byte for byte into content-addressed landing.",
    ),
    dg.AssetSpec(
        STAGING_SELLOUT,
        deps=[RECEIVED_FILES],
        group_name="staging",
        description="Valid sell-out records of each load.",
    ),
    dg.AssetSpec(
        STAGING_INVENTORY,
        deps=[RECEIVED_FILES],
        group_name="staging",
        description="Valid stock positions of each load.",
    ),
    dg.AssetSpec(
        STAGING_QUARANTINE,
        deps=[RECEIVED_FILES],
        group_name="staging",
        description="Records that failed validation, with rule and message (`show_rows` says how to list them).",
    ),
    dg.AssetSpec(
        LOADS,
        deps=[RECEIVED_FILES],
        group_name="ops",
        description="One row per received file: counts, status, error.",
    ),
    dg.AssetSpec(
        CORE_SELLOUT,
        # The reference tables are unpartitioned: a partition of core still materializes alone.
        deps=[STAGING_SELLOUT, LOADS, *SELLOUT_REFERENCE],
        group_name="core",
        description="`sellout`: the distributor's current sellout rows after restatements and de-duplication.",
    ),
    dg.AssetSpec(
        CORE_INVENTORY,
        deps=[STAGING_INVENTORY, LOADS, *INVENTORY_REFERENCE],
        group_name="core",
        description="`inventory`: the distributor's current inventory rows after restatements and de-duplication.",
    ),
]
LOAD_SPECS = [spec.replace_attributes(skippable=True) for spec in LOAD_SPECS]
"""Skippable: a run records, per partition, only what it loaded (see the module docstring)."""
LOAD_ASSET_KEYS = [spec.key for spec in LOAD_SPECS]


class ReceiveConfig(dg.Config):
    """Which files a run receives. Empty `paths`: re-load what landing holds for the run's partitions."""

    paths: list[str] = []
    channel: str = "folder"


def _receive(context, ingest, config: ReceiveConfig, targets: list[tuple[str, date]], report: RunReport):
    """Receive and load the files the sensor named (they are all of the run's one distributor)."""
    distributors = sorted({d for d, _ in targets})
    if len(distributors) != 1:
        raise dg.Failure(
            description=f"files are received for one distributor at a time; this run targets {distributors}",
            allow_retries=False,
        )
    for raw_path in config.paths:
        path = Path(raw_path)
        if not path.is_file() or path.is_symlink():
            context.log.warning(f"{printable(raw_path)} is gone or not a regular file; skipping it")
            continue
        receipt = receive_file(ingest, path, distributor_id=distributors[0], channel=config.channel)
        if receipt.duplicate_row is not None:
            context.log.info(f"{printable(path.name)}: identical bytes already received; duplicate")
            report.outcomes.append(FileOutcome(path, config.channel, receipt.duplicate_row))
            continue
        report.outcomes.append(FileOutcome(path, config.channel, load_one(ingest, receipt.landed)))


def _reload(context, ingest, targets: list[tuple[str, date]], report: RunReport) -> None:
    """Re-load, in arrival order, what landing holds for the targeted partitions (current specs)."""
    periods: dict[str, set[date]] = defaultdict(set)
    for distributor_id, period in targets:
        periods[distributor_id].add(period)
    for distributor_id, wanted in sorted(periods.items()):
        found: set[date] = set()
        for landed in landed_in_range(ingest, distributor_id, min(wanted), max(wanted)):
            period = route(ingest.catalog, distributor_id, landed.source_name, landed.received_at).report_date
            if period in wanted:
                found.add(period)
                report.outcomes.append(FileOutcome(None, landed.channel, load_one(ingest, landed)))
        for period in sorted(wanted - found):
            context.log.info(
                f"{distributor_id} {period.isoformat()}: landing holds no file of this period; nothing to "
                "load, and the partition stays missing"
            )


def _partition_of(ingest, row: LoadRow) -> str:
    return str(
        partition_key(
            row.distributor_id,
            route(ingest.catalog, row.distributor_id, row.source_name, row.received_at).report_date,
        )
    )


def _loads_preview(rows: list[LoadRow]) -> str:
    preview = pl.DataFrame(
        [
            {
                "source_name": r.source_name,
                "status": r.status,
                "rows_read": r.rows_read,
                "rows_loaded": r.rows_loaded,
                "rows_quarantined": r.rows_quarantined,
                "error": r.error,
            }
            for r in rows
        ]
    )
    return markdown_table(preview) if rows else "(no files)"


def _staged_materializations(partition: str, rows: list[LoadRow], duplicates: int):
    load_ids = [r.load_id for r in rows]
    kept = [r for r in rows if r.status != "rejected"]
    yield dg.AssetMaterialization(
        RECEIVED_FILES,
        partition=partition,
        metadata={
            "files": len(rows),
            "duplicates": duplicates,
            "sources": dg.MetadataValue.json(sorted({r.source_name for r in rows})),
        },
    )
    for asset_key, dataset in ((STAGING_SELLOUT, "sellout"), (STAGING_INVENTORY, "inventory")):
        mine = [r for r in kept if r.dataset == dataset]
        yield dg.AssetMaterialization(
            asset_key,
            partition=partition,
            metadata={"loads": len(mine), "dagster/row_count": sum(r.rows_loaded for r in mine)},
        )
    yield dg.AssetMaterialization(
        STAGING_QUARANTINE,
        partition=partition,
        metadata={
            "dagster/row_count": sum(r.rows_quarantined for r in rows),
            "show_rows": quarantine_query(load_ids),
        },
    )
    yield dg.AssetMaterialization(
        LOADS,
        partition=partition,
        metadata={
            "files": len(rows),
            "rejected": sum(r.status == "rejected" for r in rows),
            "load_ids": dg.MetadataValue.json(load_ids),
            "preview": dg.MetadataValue.md(_loads_preview(rows)),
            # Per file, how its header drifted from the spec and the feed's previous load (by name).
            "schema_drift": dg.MetadataValue.json(
                {r.source_name: r.schema_drift.splitlines() for r in rows if r.schema_drift}
            ),
        },
    )


def _core_materializations(partition: str, rows: list[LoadRow], rebuilds: list[CoreRebuild], held: set[str]):
    distributor_id = rows[0].distributor_id
    for asset_key, dataset in ((CORE_SELLOUT, "sellout"), (CORE_INVENTORY, "inventory")):
        mine = [r for r in rebuilds if r.dataset == dataset and r.distributor_id == distributor_id]
        yield dg.AssetMaterialization(
            asset_key,
            partition=partition,
            metadata={
                "dagster/row_count": sum(r.rows for r in mine),
                "rebuilt": bool(mine),
                "superseded_loads": dg.MetadataValue.json(
                    sorted(x for r in mine for x in r.superseded_loads)
                ),
                "held_loads": dg.MetadataValue.json(sorted(r.load_id for r in rows if r.load_id in held)),
            },
        )


@dg.multi_asset(
    name=LOAD_OP,
    specs=LOAD_SPECS,
    check_specs=LOAD_CHECK_SPECS,
    partitions_def=load_partitions,
    backfill_policy=LOAD_BACKFILL_POLICY,
    can_subset=False,
)
def load_reports(context: dg.AssetExecutionContext, config: ReceiveConfig, throughline: ThroughlineResource):
    """Receive, load and complete the run's partitions; one bad file never stops the others."""
    targets = targeted(context)
    ingest = throughline.ingest_context(context.log)
    prepare(ingest)
    report = RunReport()
    if config.paths:
        _receive(context, ingest, config, targets, report)
    else:
        _reload(context, ingest, targets, report)
    loaded = [o.load for o in report.outcomes if o.load.status != "duplicate"]
    report.resumed = finish_interrupted(ingest, {row.load_id for row in loaded})
    settle_inbox_files(report, ingest.settings.rejected_dir)
    for row in [*loaded, *report.resumed]:
        if row.status == "rejected":
            context.log.error(f"{printable(row.source_name)} rejected: {row.error}")
        else:
            context.log.info(
                f"{printable(row.source_name)}: read {row.rows_read}, loaded {row.rows_loaded}, "
                f"quarantined {row.rows_quarantined}, skipped {row.rows_skipped}"
            )

    by_partition: dict[str, list[LoadRow]] = defaultdict(list)
    for row in [*loaded, *report.resumed]:
        by_partition[_partition_of(ingest, row)].append(row)
    duplicates: dict[str, int] = defaultdict(int)
    for outcome in report.outcomes:
        if outcome.load.status == "duplicate":
            duplicates[_partition_of(ingest, outcome.load)] += 1
    add_partitions(context.instance, [split_key(partition) for partition in by_partition])
    for partition, rows in sorted(by_partition.items()):
        yield from _staged_materializations(partition, rows, duplicates[partition])

    judged = latest_materializations(context.instance, LOADS, by_partition)
    counts = count_records(ingest.storage, [row.load_id for rows in by_partition.values() for row in rows])
    unreconciled = []
    for partition, rows in sorted(by_partition.items()):
        for result in load_check_evaluations(ingest.storage, rows, partition, judged.get(partition), counts):
            if result.check_name == ROW_RECONCILIATION and not result.passed:
                unreconciled.append(partition)
            yield result
    if unreconciled:
        # Dagster fails the step for the failed blocking check; core keeps its earlier rows.
        context.log.error(f"rows do not reconcile in {unreconciled}: core is not updated")
        yield from _check_outputs()
        return

    rebuilds, holds = complete_core(ingest)
    refresh_statuses(ingest, report)
    ensure_catalog(ingest.storage, ingest.settings.catalog_path)
    for hold in holds:
        context.log.warning(f"{printable(hold.source_name)}: {hold.warning}")
    held = {hold.load_id for hold in holds}
    for partition, rows in sorted(by_partition.items()):
        yield from _core_materializations(partition, rows, rebuilds, held)

    if by_partition:
        latest_core = latest_materializations(context.instance, CORE_SELLOUT, by_partition)
        newest = max(latest_core.values(), key=lambda record: record.storage_id, default=None)
        yield from exception_evaluations(ingest.storage, newest)
    yield from _report_on_time(context, ingest, {*by_partition, *(str(partition_key(*t)) for t in targets)})
    yield from _check_outputs()


def _check_outputs():
    """The op's check outputs, once every result is reported (as evaluations naming partitions)."""
    for spec in LOAD_CHECK_SPECS:
        yield dg.Output(None, output_name=spec.get_python_identifier())


def _report_on_time(context, ingest, partitions: set[str]):
    """`report_on_time` for the run's partitions that are report periods of their distributor."""
    now = datetime.now(UTC)
    periods = {
        str(partition_key(p.distributor_id, p.period_start)): p for p in report_periods(ingest, now.date())
    }
    judged = latest_materializations(context.instance, LOADS, partitions & set(periods))
    for partition in sorted(partitions & set(periods)):
        yield report_on_time_evaluation(periods[partition], partition, judged.get(partition), now)


LOAD_ASSETS = [load_reports]
