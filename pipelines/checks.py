"""Asset checks: of a load (row reconciliation, quarantine rate, a validation summary) and of core
sell-out (what the 360-degree model could not resolve: the catalog's exception views).

Each check recounts from the tables themselves (not from the loader's own counters) and returns
an `AssetCheckResult` with metadata on every path, so the UI always shows what was measured.
"""

from __future__ import annotations

import dagster as dg
import polars as pl

from pipelines.resources import ThroughlineResource
from schemas.settings import ThroughlineSettings
from warehouse.catalog import connect_read_only, view_names
from warehouse.ledger import LoadRow
from warehouse.storage import WarehouseStorage
from warehouse.tables import scan_table

LOADS_KEY = dg.AssetKey(["ops", "loads"])
CORE_SELLOUT_KEY = dg.AssetKey(["core", "sellout"])
ROW_RECONCILIATION = "row_reconciliation"
QUARANTINE_RATE = "quarantine_rate"
VALIDATION_SUMMARY = "validation_summary"
QUARANTINE_RATE_WARN = ThroughlineSettings.model_fields["quarantine_rate_warn"].default

LOAD_CHECK_SPECS = [
    dg.AssetCheckSpec(
        ROW_RECONCILIATION,
        asset=LOADS_KEY,
        blocking=True,
        description="rows_read = rows_loaded + rows_quarantined for every load, recounted from staging and quarantine.",
    ),
    dg.AssetCheckSpec(
        QUARANTINE_RATE,
        asset=LOADS_KEY,
        description=f"Warns when more than {QUARANTINE_RATE_WARN:.0%} of a load's records are quarantined.",
    ),
    dg.AssetCheckSpec(
        VALIDATION_SUMMARY,
        asset=LOADS_KEY,
        description="Failed records per rule, and files rejected whole.",
    ),
]


def markdown_table(frame: pl.DataFrame) -> str:
    """A small frame as a Markdown table for Dagster metadata."""
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    body = [
        "| " + " | ".join("" if v is None else str(v).replace("|", "/") for v in row) + " |"
        for row in frame.rows()
    ]
    return "\n".join([header, rule, *body])


def _recount(storage: WarehouseStorage, rows: list[LoadRow]) -> pl.DataFrame:
    loaded = [r for r in rows if r.status not in ("rejected", "duplicate")]
    load_ids = [r.load_id for r in loaded]
    staged = pl.concat(
        [
            scan_table(storage, table).filter(pl.col("load_id").is_in(load_ids)).group_by("load_id").len()
            for table in ("staging_sellout", "staging_inventory")
        ]
    ).collect()
    quarantined = (
        scan_table(storage, "quarantine")
        .filter(pl.col("load_id").is_in(load_ids))
        .group_by("load_id")
        .len()
        .collect()
    )
    ledger = pl.DataFrame(
        {
            "load_id": load_ids,
            "source_name": [r.source_name for r in loaded],
            "rows_read": [r.rows_read for r in loaded],
        },
        schema={"load_id": pl.String, "source_name": pl.String, "rows_read": pl.Int64},
    )
    return (
        ledger.join(staged.rename({"len": "staged"}), on="load_id", how="left")
        .join(quarantined.rename({"len": "quarantined"}), on="load_id", how="left")
        .with_columns(pl.col("staged", "quarantined").fill_null(0).cast(pl.Int64))
        .with_columns((pl.col("rows_read") - pl.col("staged") - pl.col("quarantined")).alias("unaccounted"))
    )


def load_check_results(storage: WarehouseStorage, rows: list[LoadRow]):
    """The three load checks for the loads of one run."""
    recount = _recount(storage, rows)
    unaccounted = int(recount["unaccounted"].abs().sum()) if recount.height else 0
    yield dg.AssetCheckResult(
        check_name=ROW_RECONCILIATION,
        asset_key=LOADS_KEY,
        passed=unaccounted == 0,
        metadata={
            "loads": recount.height,
            "rows_unaccounted": unaccounted,
            "detail": dg.MetadataValue.md(
                markdown_table(recount.drop("load_id")) if recount.height else "(no loads)"
            ),
        },
    )
    worst = max(
        ((r.rows_quarantined / r.rows_read, r.source_name) for r in rows if r.rows_read), default=(0.0, "-")
    )
    yield dg.AssetCheckResult(
        check_name=QUARANTINE_RATE,
        asset_key=LOADS_KEY,
        passed=worst[0] <= QUARANTINE_RATE_WARN,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"worst_rate": float(worst[0]), "worst_file": worst[1], "threshold": QUARANTINE_RATE_WARN},
    )
    load_ids = [r.load_id for r in rows]
    per_rule = (
        scan_table(storage, "quarantine")
        .filter(pl.col("load_id").is_in(load_ids))
        .group_by("rule")
        .len()
        .sort("len", descending=True)
        .collect()
    )
    rejected = [f"{r.source_name}: {r.error}" for r in rows if r.status == "rejected"]
    yield dg.AssetCheckResult(
        check_name=VALIDATION_SUMMARY,
        asset_key=LOADS_KEY,
        passed=not rejected,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "records_quarantined": int(per_rule["len"].sum()) if per_rule.height else 0,
            "by_rule": dg.MetadataValue.json(
                dict(zip(per_rule["rule"].to_list(), per_rule["len"].to_list(), strict=True))
            ),
            "files_rejected": dg.MetadataValue.json(rejected),
        },
    )


# --------------------------------------------------------------------------------------------------
# Exceptions of core sell-out: one check per exception view of the catalog, warning while it has rows.

UNMATCHED_RESELLERS = "unmatched_resellers"
UNMAPPED_SKUS = "unmapped_skus"
MISSING_FX_RATES = "missing_fx_rates"
EXCEPTION_COLUMNS: dict[str, tuple[str, ...]] = {
    UNMATCHED_RESELLERS: (
        "distributor_id",
        "reseller_name",
        "reseller_postal_code",
        "lines",
        "revenue_base",
        "fix",
    ),
    UNMAPPED_SKUS: ("distributor_id", "distributor_sku", "lines", "revenue_base", "fix"),
    MISSING_FX_RATES: ("currency", "lines", "net_amount", "first_date", "fix"),
}
"""Exception view (= check name) -> the columns its top rows show."""
EXCEPTION_DESCRIPTIONS = {
    UNMATCHED_RESELLERS: "Warns while sell-out lines have a reseller resolved to no partner.",
    UNMAPPED_SKUS: "Warns while sell-out lines have a distributor part number mapped to no SKU.",
    MISSING_FX_RATES: "Warns while sell-out lines have no amount in the base currency (no rate).",
}
TOP_ROWS = 10

EXCEPTION_CHECK_SPECS = [
    dg.AssetCheckSpec(
        view,
        asset=CORE_SELLOUT_KEY,
        description=f"{EXCEPTION_DESCRIPTIONS[view]} Each row of the `{view}` view names the command that fixes it.",
    )
    for view in EXCEPTION_COLUMNS
]


def _exception_result(connection, present: set[str], view: str) -> dg.AssetCheckResult:
    if view not in present:
        return dg.AssetCheckResult(
            check_name=view,
            asset_key=CORE_SELLOUT_KEY,
            passed=True,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "exceptions": 0,
                "note": f"`{view}` is not in the catalog yet: its inputs do not exist",
            },
        )
    found = connection.sql(f"select * from {view}").pl()
    top = found.head(TOP_ROWS).select(EXCEPTION_COLUMNS[view])
    metadata: dict[str, object] = {"exceptions": found.height, "lines": int(found["lines"].sum())}
    if "revenue_base" in found.columns:  # missing_fx_rates has amounts in many currencies: no total
        metadata["revenue_base"] = float(found["revenue_base"].sum())
    metadata["top"] = dg.MetadataValue.md(markdown_table(top) if found.height else "(none)")
    metadata["list_all"] = f"throughline exceptions --kind {view}"
    return dg.AssetCheckResult(
        check_name=view,
        asset_key=CORE_SELLOUT_KEY,
        passed=found.is_empty(),
        severity=dg.AssetCheckSeverity.WARN,
        metadata=metadata,
    )


def _unreadable(view: str, error: Exception) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=view,
        asset_key=CORE_SELLOUT_KEY,
        passed=False,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"error": f"{type(error).__name__}: {error}"},
    )


@dg.multi_asset_check(specs=EXCEPTION_CHECK_SPECS, name="sellout_exceptions")
def sellout_exceptions(throughline: ThroughlineResource):
    """Count the rows of each exception view; never blocking, since core is right as far as it goes.
    An error reading a view is a failed check showing the error, so the UI always says why."""
    storage = throughline.storage
    try:
        connection = connect_read_only(storage)
    except Exception as error:
        for view in EXCEPTION_COLUMNS:
            yield _unreadable(view, error)
        return
    with connection:
        present = set(view_names(storage))
        for view in EXCEPTION_COLUMNS:
            try:
                result = _exception_result(connection, present, view)
            except Exception as error:
                result = _unreadable(view, error)
            yield result
