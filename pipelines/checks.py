"""Asset checks: of each load partition (rows reconcile, quarantine rate, a validation summary, and
whether the period's report came on time) and of core sell-out (what the 360-degree model could
not resolve: the catalog's exception views).

Load checks are partitioned like the loads, so a failed `quarantine_rate` of one file shows on
its own (distributor, period) cell instead of hiding behind the latest run. A backfill run covers
many partitions at once, and Dagster's `AssetCheckResult` only knows a run's single partition, so
results are built as `AssetCheckEvaluation`s that name their partition and the materialization
they judged. Each check recounts from the tables themselves (not from the loader's counters) and
carries metadata on every path, so the UI always shows what was measured.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

import dagster as dg
import polars as pl

# Not exported by dagster: the pointer from a check result to the materialization it judged,
# without which Dagster shows a partition's result as outdated.
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)

from ingest.periods import ReportPeriod
from pipelines.partitions import load_partitions
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
REPORT_ON_TIME = "report_on_time"
QUARANTINE_RATE_WARN = ThroughlineSettings.model_fields["quarantine_rate_warn"].default


def partitioned_check(name: str, **kwargs) -> dg.AssetCheckSpec:
    """A check spec partitioned like the loads. Partitioned checks are a preview in Dagster 1.13
    (it warns on each definition); they are what lets a result name its partition, so the warning
    is silenced here, knowingly, and nowhere else."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=dg.PreviewWarning, message=".*partitions_def.*")
        return dg.AssetCheckSpec(name, asset=LOADS_KEY, partitions_def=load_partitions, **kwargs)


LOAD_CHECK_SPECS = [
    partitioned_check(
        ROW_RECONCILIATION,
        blocking=True,
        description=(
            "rows_read = rows_loaded + rows_quarantined for every load of the partition, recounted from "
            "staging and quarantine. Blocking: core is not updated when it fails."
        ),
    ),
    partitioned_check(
        QUARANTINE_RATE,
        description=f"Warns when more than {QUARANTINE_RATE_WARN:.0%} of a load's records are quarantined.",
    ),
    partitioned_check(VALIDATION_SUMMARY, description="Failed records per rule, and files rejected whole."),
    partitioned_check(
        REPORT_ON_TIME,
        description=(
            "Whether the period's report arrived by its due date (period end + grace days, by the "
            "distributor's cadence): fails while a due report is missing, warns when it came late. "
            "Judged by each load, and by the `report_calendar` job for periods nobody loads (daily while missing)."
        ),
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


def latest_materializations(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, partitions: Iterable[str] | None = None
) -> dict[str | None, dg.EventLogRecord]:
    """The latest materialization of each partition of `asset_key` (all of them when None)."""
    storage = instance.event_log_storage
    wanted = set(partitions) if partitions is not None else None
    if wanted is not None and not wanted:
        return {}
    ids = storage.get_latest_storage_id_by_partition(
        asset_key, dg.DagsterEventType.ASSET_MATERIALIZATION, wanted
    )
    if not ids:
        return {}
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, storage_ids=list(ids.values())), limit=len(ids)
    ).records
    return {record.partition_key: record for record in records}


def _target(record: dg.EventLogRecord | None) -> AssetCheckEvaluationTargetMaterializationData | None:
    if record is None:
        return None
    return AssetCheckEvaluationTargetMaterializationData(
        storage_id=record.storage_id, run_id=record.run_id, timestamp=record.timestamp
    )


def evaluation(
    check_name: str,
    passed: bool,
    metadata: dict[str, object],
    *,
    asset_key: dg.AssetKey = LOADS_KEY,
    partition: str | None = None,
    judged: dg.EventLogRecord | None = None,
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.WARN,
    blocking: bool = False,
) -> dg.AssetCheckEvaluation:
    """One check result, naming its partition and the materialization it judged (`judged`)."""
    return dg.AssetCheckEvaluation(
        asset_key=asset_key,
        check_name=check_name,
        passed=passed,
        metadata=metadata,
        target_materialization_data=_target(judged),
        severity=severity,
        blocking=blocking,
        partition=partition,
    )


# --------------------------------------------------------------------------------------------------
# Checks of one load partition: recounted from the tables, for the loads of that partition.


@dataclass(frozen=True)
class RecordCounts:
    """Records of loads as the tables hold them: `staged` (load_id, len) in staging, `quarantined`
    (load_id, rule, len) in quarantine. Counted once for all the loads of a run, so a run over many
    partitions scans each table once, not once per partition."""

    staged: pl.DataFrame
    quarantined: pl.DataFrame


def count_records(storage: WarehouseStorage, load_ids: list[str]) -> RecordCounts:
    """The staging and quarantine records of `load_ids`, per load (and per rule in quarantine)."""
    staged = (
        pl.concat(
            [
                scan_table(storage, table).filter(pl.col("load_id").is_in(load_ids)).group_by("load_id").len()
                for table in ("staging_sellout", "staging_inventory")
            ]
        )
        .group_by("load_id")
        .agg(pl.col("len").sum())
        .collect()
    )
    quarantined = (
        scan_table(storage, "quarantine")
        .filter(pl.col("load_id").is_in(load_ids))
        .group_by("load_id", "rule")
        .len()
        .collect()
    )
    return RecordCounts(staged, quarantined)


def _recount(rows: list[LoadRow], counts: RecordCounts) -> pl.DataFrame:
    loaded = [r for r in rows if r.status not in ("rejected", "duplicate")]
    load_ids = [r.load_id for r in loaded]
    staged = counts.staged.filter(pl.col("load_id").is_in(load_ids))
    quarantined = (
        counts.quarantined.filter(pl.col("load_id").is_in(load_ids))
        .group_by("load_id")
        .agg(pl.col("len").sum())
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


def load_check_evaluations(
    storage: WarehouseStorage,
    rows: list[LoadRow],
    partition: str,
    judged: dg.EventLogRecord | None,
    counts: RecordCounts | None = None,
) -> list[dg.AssetCheckEvaluation]:
    """The three load checks of one partition, for its loads in this run (recounted from the tables,
    or from `counts` when the run counted its loads' records once)."""
    counts = counts or count_records(storage, [r.load_id for r in rows])
    recount = _recount(rows, counts)
    unaccounted = int(recount["unaccounted"].abs().sum()) if recount.height else 0
    reconciliation = evaluation(
        ROW_RECONCILIATION,
        unaccounted == 0,
        {
            "loads": recount.height,
            "rows_unaccounted": unaccounted,
            "detail": dg.MetadataValue.md(
                markdown_table(recount.drop("load_id")) if recount.height else "(no loads)"
            ),
        },
        partition=partition,
        judged=judged,
        severity=dg.AssetCheckSeverity.ERROR,
        blocking=True,
    )
    worst = max(
        ((r.rows_quarantined / r.rows_read, r.source_name) for r in rows if r.rows_read), default=(0.0, "-")
    )
    load_ids = [r.load_id for r in rows]
    rate = evaluation(
        QUARANTINE_RATE,
        worst[0] <= QUARANTINE_RATE_WARN,
        {
            "worst_rate": float(worst[0]),
            "worst_file": worst[1],
            "threshold": QUARANTINE_RATE_WARN,
            "show_rows": quarantine_query(load_ids),
        },
        partition=partition,
        judged=judged,
    )
    per_rule = (
        counts.quarantined.filter(pl.col("load_id").is_in(load_ids))
        .group_by("rule")
        .agg(pl.col("len").sum())
        .sort("len", "rule", descending=[True, False])
    )
    rejected = [f"{r.source_name}: {r.error}" for r in rows if r.status == "rejected"]
    summary = evaluation(
        VALIDATION_SUMMARY,
        not rejected,
        {
            "records_quarantined": int(per_rule["len"].sum()) if per_rule.height else 0,
            "by_rule": dg.MetadataValue.json(
                dict(zip(per_rule["rule"].to_list(), per_rule["len"].to_list(), strict=True))
            ),
            "files_rejected": dg.MetadataValue.json(rejected),
        },
        partition=partition,
        judged=judged,
    )
    return [reconciliation, rate, summary]


def quarantine_query(load_ids: list[str]) -> str:
    """The command that lists the quarantined records of these loads: row, rule, message, raw record."""
    if not load_ids:
        return "(no loads)"
    listed = ", ".join(f"'{load_id}'" for load_id in sorted(load_ids))
    return (
        'throughline query "select load_id, source_row, rule, message, raw_record from quarantine '
        f'where load_id in ({listed}) order by load_id, source_row"'
    )


def report_on_time_evaluation(
    period: ReportPeriod, partition: str, judged: dg.EventLogRecord | None, as_of: datetime
) -> dg.AssetCheckEvaluation:
    """Whether one period's report came by its due date: failed (error) while missing, warned when late."""

    def day(value: datetime | None) -> str:
        return value.date().isoformat() if value is not None else "never"

    last = (
        f"period {period.last_received_period.isoformat()}, delivered {day(period.last_received_at)}"
        if period.last_received_period is not None
        else "nothing yet"
    )
    if period.status == "missing":
        description = (
            f"{period.distributor_id}'s {period.cadence} report for {period.period_start.isoformat()} is "
            f"missing: due {period.due_on.isoformat()}, {period.days_late} day(s) late. Last received: {last}."
        )
    elif period.status == "late":
        description = (
            f"{period.distributor_id}'s report for {period.period_start.isoformat()} came "
            f"{period.days_late} day(s) after its due date {period.due_on.isoformat()}."
        )
    else:
        description = f"Received {day(period.received_at)}, due {period.due_on.isoformat()}."
    return dg.AssetCheckEvaluation(
        asset_key=LOADS_KEY,
        check_name=REPORT_ON_TIME,
        passed=period.status == "received",
        metadata={
            "status": period.status,
            "cadence": period.cadence,
            "period_start": period.period_start.isoformat(),
            "period_end": period.period_end.isoformat(),
            "expected_by": period.due_on.isoformat(),
            "received_on": day(period.received_at),
            "days_late": period.days_late,
            "last_received_period": (
                period.last_received_period.isoformat() if period.last_received_period else "none"
            ),
            "last_received_on": day(period.last_received_at),
            "datasets": dg.MetadataValue.json(period.datasets),
            "feeds": dg.MetadataValue.json(period.feeds),
            "as_of": as_of.date().isoformat(),
        },
        target_materialization_data=_target(judged),
        severity=dg.AssetCheckSeverity.ERROR if period.status == "missing" else dg.AssetCheckSeverity.WARN,
        description=description,
        blocking=False,
        partition=partition,
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
        description=(
            f"{EXCEPTION_DESCRIPTIONS[view]} Each row of the `{view}` view names the command that fixes "
            "it. Evaluated after every load; *Execute* re-reads the view now."
        ),
    )
    for view in EXCEPTION_COLUMNS
]


def _exception_outcome(connection, present: set[str], view: str) -> tuple[bool, dict[str, object]]:
    if view not in present:
        return True, {"exceptions": 0, "note": f"`{view}` is not in the catalog yet: its inputs do not exist"}
    found = connection.sql(f"select * from {view}").pl()
    top = found.head(TOP_ROWS).select(EXCEPTION_COLUMNS[view])
    metadata: dict[str, object] = {"exceptions": found.height, "lines": int(found["lines"].sum())}
    if "revenue_base" in found.columns:  # missing_fx_rates has amounts in many currencies: no total
        metadata["revenue_base"] = float(found["revenue_base"].sum())
    metadata["top"] = dg.MetadataValue.md(markdown_table(top) if found.height else "(none)")
    metadata["list_all"] = f"throughline exceptions --kind {view}"
    return found.is_empty(), metadata


def exception_outcomes(storage: WarehouseStorage) -> Iterator[tuple[str, bool, dict[str, object]]]:
    """(view, passed, metadata) of each exception check; an error reading a view is a failed check
    showing the error, so the UI always says why. Never blocking: core is right as far as it goes."""
    try:
        connection = connect_read_only(storage)
    except Exception as error:
        for view in EXCEPTION_COLUMNS:
            yield view, False, {"error": f"{type(error).__name__}: {error}"}
        return
    with connection:
        present = set(view_names(storage))
        for view in EXCEPTION_COLUMNS:
            try:
                passed, metadata = _exception_outcome(connection, present, view)
            except Exception as error:
                passed, metadata = False, {"error": f"{type(error).__name__}: {error}"}
            yield view, passed, metadata


def exception_evaluations(
    storage: WarehouseStorage, judged: dg.EventLogRecord | None
) -> list[dg.AssetCheckEvaluation]:
    """The exception checks as a load run reports them, judging core sell-out as it left it."""
    return [
        evaluation(view, passed, metadata, asset_key=CORE_SELLOUT_KEY, judged=judged)
        for view, passed, metadata in exception_outcomes(storage)
    ]


@dg.multi_asset_check(specs=EXCEPTION_CHECK_SPECS, name="sellout_exceptions")
def sellout_exceptions(throughline: ThroughlineResource):
    """Count the rows of each exception view now ("Execute checks" in the UI, e.g. after fixing
    reference data); a load reports the same results after it completes core."""
    for view, passed, metadata in exception_outcomes(throughline.storage):
        yield dg.AssetCheckResult(
            check_name=view,
            asset_key=CORE_SELLOUT_KEY,
            passed=passed,
            severity=dg.AssetCheckSeverity.WARN,
            metadata=metadata,
        )
