"""Assets: landing -> staging -> core, one partition (distributor x report date) per run.

Each asset is a thin call into the libraries: `warehouse.receiving` lands files, `warehouse.loading`
reads, validates and writes staging and quarantine, `warehouse.core` rebuilds the core tables, and
`warehouse.catalog` refreshes the DuckDB views. The asset checks of a load live in `checks.py`.
"""

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import polars as pl

from connectors.folder import move_rejected, remove_received
from pipelines.checks import LOAD_CHECK_SPECS, load_check_results, markdown_table
from pipelines.partitions import load_partitions, report_date_of, split_partition_key
from pipelines.resources import ThroughlineResource
from warehouse.catalog import ensure_catalog
from warehouse.core import rebuild_core
from warehouse.ledger import LandedFile, landed_files_of
from warehouse.loading import describe_no_spec, load_landed_file, match_spec
from warehouse.receiving import Receipt, receive_file
from warehouse.tables import ensure_tables

RECEIVED_FILES = dg.AssetKey(["landing", "received_files"])
STAGING_SELLOUT = dg.AssetKey(["staging", "sellout"])
STAGING_INVENTORY = dg.AssetKey(["staging", "inventory"])
STAGING_QUARANTINE = dg.AssetKey(["staging", "quarantine"])
LOADS = dg.AssetKey(["ops", "loads"])
CORE_SELLOUT = dg.AssetKey(["core", "sellout"])
CORE_INVENTORY = dg.AssetKey(["core", "inventory"])


class ReceiveConfig(dg.Config):
    """Which files a run receives. Empty `paths`: re-load what landing holds for the partition."""

    paths: list[str] = []
    channel: str = "folder"


@dg.asset(
    key=RECEIVED_FILES,
    partitions_def=load_partitions,
    group_name="landing",
    description="Files received for the partition, copied byte for byte into content-addressed landing.",
)
def received_files(
    context: dg.AssetExecutionContext, config: ReceiveConfig, throughline: ThroughlineResource
) -> dg.Output[list[Receipt]]:
    distributor_id, report_date = split_partition_key(context)
    load_context = throughline.load_context()
    throughline.settings.ensure_layout()
    ensure_tables(load_context.storage)
    receipts: list[Receipt] = []
    if config.paths:
        for raw_path in config.paths:
            path = Path(raw_path)
            if not path.exists():
                context.log.warning(f"{path} is gone (already received by another run?); skipping it")
                continue
            received_at = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
            receipt = receive_file(
                load_context,
                path,
                distributor_id=distributor_id,
                channel=config.channel,
                received_at=received_at,
            )
            if receipt.is_duplicate:
                context.log.info(f"{path.name}: identical bytes already received; recorded as duplicate")
                if config.channel == "folder":
                    remove_received(path)
            receipts.append(receipt)
    else:
        specs = throughline.feed_specs()
        for landed in landed_files_of(load_context.storage, distributor_id):
            spec = match_spec(specs, distributor_id, landed.source_name)
            if report_date_of(spec, landed.source_name, landed.received_at) == report_date:
                receipts.append(
                    Receipt(
                        landed,
                        landed.source_name,
                        is_duplicate=False,
                        origin_path=None,
                        channel=landed.channel,
                    )
                )
        context.log.info(f"re-loading {len(receipts)} landed file(s) of {distributor_id} for {report_date}")
    return dg.Output(
        receipts,
        metadata={
            "files": len(receipts),
            "duplicates": sum(r.is_duplicate for r in receipts),
            "names": dg.MetadataValue.json([r.source_name for r in receipts]),
        },
    )


def _settle_origin(receipt: Receipt, status: str, error: str | None, rejected_dir: Path) -> None:
    """An inbox file leaves the inbox once its load is recorded: removed, or moved aside if rejected."""
    if receipt.origin_path is None or receipt.channel != "folder":
        return
    origin = Path(receipt.origin_path)
    if status == "rejected":
        move_rejected(origin, rejected_dir, receipt.landed.distributor_id, error or "rejected")
    else:
        remove_received(origin)


@dg.multi_asset(
    specs=[
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
            description="Records that failed validation, with rule and message.",
        ),
        dg.AssetSpec(
            LOADS,
            deps=[RECEIVED_FILES],
            group_name="ops",
            description="One row per received file: counts, status, error.",
        ),
    ],
    check_specs=LOAD_CHECK_SPECS,
    partitions_def=load_partitions,
    ins={"receipts": dg.AssetIn(RECEIVED_FILES)},
)
def staged_loads(
    context: dg.AssetExecutionContext, throughline: ThroughlineResource, receipts: list[Receipt]
):
    """Read, normalize and validate each received file; one bad file never stops the others."""
    load_context = throughline.load_context()
    specs = throughline.feed_specs()
    distributor_id, _ = split_partition_key(context)
    rows = []
    for receipt in receipts:
        if receipt.is_duplicate:
            continue
        landed: LandedFile = receipt.landed
        spec = match_spec(specs, distributor_id, receipt.source_name)
        reason = "" if spec else describe_no_spec(specs, distributor_id, receipt.source_name)
        context.log.info(
            f"loading {receipt.source_name} ({landed.bytes:,} bytes) with spec {spec.id if spec else '-'}"
        )
        row = load_landed_file(
            load_context,
            landed,
            spec,
            no_spec_reason=reason,
            progress=lambda n, name=receipt.source_name: context.log.debug(f"{name}: {n:,} records read"),
        )
        if row.status == "rejected":
            context.log.error(f"{receipt.source_name} rejected: {row.error}")
        else:
            context.log.info(
                f"{receipt.source_name}: read {row.rows_read}, loaded {row.rows_loaded}, quarantined {row.rows_quarantined}"
            )
        _settle_origin(receipt, row.status, row.error, throughline.settings.rejected_dir)
        rows.append(row)
    loads = pl.DataFrame([r.__dict__ for r in rows]) if rows else pl.DataFrame()
    preview = (
        loads.select("source_name", "status", "rows_read", "rows_loaded", "rows_quarantined", "error")
        if rows
        else loads
    )
    for key, dataset in ((STAGING_SELLOUT, "sellout"), (STAGING_INVENTORY, "inventory")):
        mine = [r for r in rows if r.dataset == dataset and r.status == "loaded"]
        yield dg.MaterializeResult(
            asset_key=key,
            metadata={"loads": len(mine), "dagster/row_count": sum(r.rows_loaded for r in mine)},
        )
    yield dg.MaterializeResult(
        asset_key=STAGING_QUARANTINE,
        metadata={"dagster/row_count": sum(r.rows_quarantined for r in rows)},
    )
    yield dg.MaterializeResult(
        asset_key=LOADS,
        metadata={
            "files": len(rows),
            "rejected": sum(r.status == "rejected" for r in rows),
            "preview": dg.MetadataValue.md(markdown_table(preview) if rows else "(no files)"),
        },
    )
    yield from load_check_results(load_context.storage, rows)


def _core_asset(key: dg.AssetKey, staging_key: dg.AssetKey, dataset: str):
    @dg.asset(
        key=key,
        deps=[staging_key, LOADS],
        partitions_def=load_partitions,
        group_name="core",
        description=f"`{dataset}`: the distributor's current {dataset} rows after restatements and de-duplication.",
    )
    def core_table(
        context: dg.AssetExecutionContext, throughline: ThroughlineResource
    ) -> dg.MaterializeResult:
        distributor_id, _ = split_partition_key(context)
        load_context = throughline.load_context()
        ensure_tables(load_context.storage)
        rebuilt = rebuild_core(load_context.storage, dataset, distributor_id, load_context.lock_dir)
        ensure_catalog(load_context.storage, throughline.settings.catalog_path)
        if rebuilt.superseded_loads:
            context.log.info(f"superseded by later reports: {', '.join(rebuilt.superseded_loads)}")
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": rebuilt.rows,
                "active_loads": len(rebuilt.active_loads),
                "superseded_loads": dg.MetadataValue.json(rebuilt.superseded_loads),
            }
        )

    return core_table


core_sellout = _core_asset(CORE_SELLOUT, STAGING_SELLOUT, "sellout")
core_inventory = _core_asset(CORE_INVENTORY, STAGING_INVENTORY, "inventory")

LOAD_ASSETS = [received_files, staged_loads, core_sellout, core_inventory]
