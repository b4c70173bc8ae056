"""Assets: landing -> staging -> core, one partition (distributor x report date) per run.

Each asset is a thin call into the `ingest` use cases: `received_files` lands files and registers
them in the ledger, `staged_loads` loads them (and any load a crashed run left unfinished),
`core_*` completes core (rows entering it are enriched from the tables of `reference_assets`) and
refreshes the catalog. Between assets only ledger keys travel (the files' SHA-256, where they came
from): never objects.
"""

from pathlib import Path

import dagster as dg
import polars as pl

from ingest.complete import complete_core
from ingest.plan import landed_in_range
from ingest.receive import receive_file
from ingest.route import printable
from ingest.run import FileOutcome, RunReport, finish_interrupted, load_one, prepare, settle_inbox_files
from pipelines.checks import LOAD_CHECK_SPECS, load_check_results, markdown_table
from pipelines.partitions import load_partitions, split_partition_key
from pipelines.reference_assets import INVENTORY_REFERENCE, SELLOUT_REFERENCE
from pipelines.resources import ThroughlineResource
from warehouse.catalog import ensure_catalog
from warehouse.ledger import find_landed

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
) -> dg.Output[list[dict[str, str]]]:
    distributor_id, report_date = split_partition_key(context)
    ingest = throughline.ingest_context(context.log)
    prepare(ingest)
    keys: list[dict[str, str]] = []
    duplicates = 0
    if config.paths:
        for raw_path in config.paths:
            path = Path(raw_path)
            if not path.is_file() or path.is_symlink():
                context.log.warning(f"{printable(raw_path)} is gone or not a regular file; skipping it")
                continue
            receipt = receive_file(ingest, path, distributor_id=distributor_id, channel=config.channel)
            if receipt.duplicate_row is not None:
                duplicates += 1
                context.log.info(f"{printable(path.name)}: identical bytes already received; duplicate")
                if config.channel == "folder":
                    settle_inbox_files(
                        RunReport(outcomes=[FileOutcome(path, "folder", receipt.duplicate_row)]),
                        ingest.settings.rejected_dir,
                    )
                continue
            keys.append({"sha256": receipt.landed.sha256, "origin": str(path), "channel": config.channel})
    else:
        chosen = landed_in_range(ingest, distributor_id, report_date, report_date)
        keys = [{"sha256": landed.sha256, "origin": "", "channel": landed.channel} for landed in chosen]
        context.log.info(f"re-loading {len(keys)} landed file(s) of {distributor_id} for {report_date}")
    return dg.Output(keys, metadata={"files": len(keys), "duplicates": duplicates})


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
    ins={"received": dg.AssetIn(RECEIVED_FILES)},
)
def staged_loads(
    context: dg.AssetExecutionContext, throughline: ThroughlineResource, received: list[dict[str, str]]
):
    """Read, normalize and validate each received file; one bad file never stops the others."""
    ingest = throughline.ingest_context(context.log)
    distributor_id, _ = split_partition_key(context)
    report = RunReport()
    for key in received:
        landed = find_landed(ingest.storage, distributor_id, key["sha256"])
        if landed is None:
            context.log.error(f"{key['sha256']} is not in the ledger of {distributor_id}; was it received?")
            continue
        row = load_one(ingest, landed)
        if row.status == "rejected":
            context.log.error(f"{printable(row.source_name)} rejected: {row.error}")
        else:
            context.log.info(
                f"{printable(row.source_name)}: read {row.rows_read}, loaded {row.rows_loaded}, quarantined {row.rows_quarantined}, skipped {row.rows_skipped}"
            )
        report.outcomes.append(
            FileOutcome(Path(key["origin"]) if key["origin"] else None, key["channel"], row)
        )
    report.resumed = finish_interrupted(ingest, {o.load.load_id for o in report.outcomes})
    settle_inbox_files(report, ingest.settings.rejected_dir)
    rows = [o.load for o in report.outcomes] + report.resumed
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
    for asset_key, dataset in ((STAGING_SELLOUT, "sellout"), (STAGING_INVENTORY, "inventory")):
        mine = [r for r in rows if r.dataset == dataset and r.status != "rejected"]
        yield dg.MaterializeResult(
            asset_key=asset_key,
            metadata={"loads": len(mine), "dagster/row_count": sum(r.rows_loaded for r in mine)},
        )
    yield dg.MaterializeResult(
        asset_key=STAGING_QUARANTINE, metadata={"dagster/row_count": sum(r.rows_quarantined for r in rows)}
    )
    yield dg.MaterializeResult(
        asset_key=LOADS,
        metadata={
            "files": len(rows),
            "rejected": sum(r.status == "rejected" for r in rows),
            "load_ids": dg.MetadataValue.json([r.load_id for r in rows]),
            "preview": dg.MetadataValue.md(markdown_table(preview) if rows else "(no files)"),
        },
    )
    yield from load_check_results(ingest.storage, rows)


def _core_asset(key: dg.AssetKey, staging_key: dg.AssetKey, reference: list[dg.AssetKey], dataset: str):
    @dg.asset(
        key=key,
        # The reference tables are unpartitioned: a partition of core still materializes alone.
        deps=[staging_key, LOADS, *reference],
        partitions_def=load_partitions,
        group_name="core",
        description=f"`{dataset}`: the distributor's current {dataset} rows after restatements and de-duplication.",
    )
    def core_table(
        context: dg.AssetExecutionContext, throughline: ThroughlineResource
    ) -> dg.MaterializeResult:
        ingest = throughline.ingest_context(context.log)
        prepare(ingest)
        rebuilds, holds = complete_core(ingest, dataset=dataset)
        ensure_catalog(ingest.storage, ingest.settings.catalog_path)
        for hold in holds:
            context.log.warning(f"{printable(hold.source_name)}: {hold.warning}")
        mine = [r for r in rebuilds if r.dataset == dataset]
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": sum(r.rows for r in mine),
                "distributors_rebuilt": dg.MetadataValue.json(sorted(r.distributor_id for r in mine)),
                "superseded_loads": dg.MetadataValue.json(
                    sorted(x for r in mine for x in r.superseded_loads)
                ),
                "held_loads": dg.MetadataValue.json([h.load_id for h in holds]),
            }
        )

    return core_table


core_sellout = _core_asset(CORE_SELLOUT, STAGING_SELLOUT, SELLOUT_REFERENCE, "sellout")
core_inventory = _core_asset(CORE_INVENTORY, STAGING_INVENTORY, INVENTORY_REFERENCE, "inventory")

LOAD_ASSETS = [received_files, staged_loads, core_sellout, core_inventory]
