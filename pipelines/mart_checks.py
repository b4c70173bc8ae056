"""Asset checks of the marts, built from their schemas: the stored table is there and not empty
(unless its inputs give it nothing to hold), its grain's keys are unique, its columns and types are
the mart's, and the partner marts add up to matched sell-out exactly.

Each check reads the stored tables (never the builder's output), so "Execute checks" on a mart
re-examines what analysts and the scorecards read. Every path returns a result with metadata.
"""

# No `from __future__ import annotations`: Dagster reads the `context` annotation when it defines the op.
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

import dagster as dg
import polars as pl

from ingest.publish import MART_NAMES, MART_SCHEMAS
from pipelines.checks import markdown_table
from pipelines.mart_assets import mart_key
from pipelines.resources import ThroughlineResource
from warehouse.reference_tables import read_reference_table
from warehouse.storage import WarehouseStorage
from warehouse.tables import scan_table

NOT_EMPTY = "not_empty"
KEYS_UNIQUE = "keys_unique"
COLUMNS_AND_TYPES = "columns_and_types"
RECONCILES_WITH_SELLOUT = "reconciles_with_sellout"
TOP_ROWS = 10


def _unmapped_part() -> pl.Expr:
    """The part number of stock mapped to no SKU (null when mapped)."""
    return pl.when(pl.col("sku").is_null()).then(pl.col("distributor_sku")).alias("unmapped_part")


MART_KEYS: dict[str, tuple[str | pl.Expr, ...]] = {
    "partner_performance": ("partner_id", "month"),
    # A report is expected per distributor and dataset, whichever feed delivers it (feed_id: the first).
    "distributor_data_quality": ("distributor_id", "dataset", "period_start"),
    # One row per distributor x SKU; stock of an unmapped part number keeps one row per part number.
    "inventory_health": ("distributor_id", "sku", _unmapped_part()),
    "rebate_accruals": ("partner_id", "program_id", "period_start"),
    "partner_anomalies": ("partner_id", "month"),
}
"""The grain of each mart (docs/marts.md): these keys identify a row."""


@dataclass(frozen=True)
class Inputs:
    """What the warehouse holds that a mart may legitimately be empty without."""

    matched_sellout_lines: int
    inventory_rows: int
    loads_with_period: int
    programs_started: int
    partners: int


EMPTY_WHEN: dict[str, tuple[str, Callable[[Inputs], bool]]] = {
    "partner_performance": ("sell-out has no matched line", lambda i: i.matched_sellout_lines == 0),
    "partner_anomalies": ("sell-out has no matched line", lambda i: i.matched_sellout_lines == 0),
    "distributor_data_quality": ("no load names a report period", lambda i: i.loads_with_period == 0),
    "inventory_health": ("inventory has no row", lambda i: i.inventory_rows == 0),
    "rebate_accruals": (
        "there is no partner, or no rebate program has started by as_of",
        lambda i: i.partners == 0 or i.programs_started == 0,
    ),
}
"""When a mart is rightly empty, and how to tell from its inputs. The partner marts hold every
partner for every month of matched sell-out (partner_anomalies has the same rows as
partner_performance, anomalous or not); data quality a row per period a load names; inventory
health a row per stocked SKU; rebate accruals a row per partner and program started by as_of."""

RECONCILED_MARTS = ("partner_performance", "partner_anomalies")
BLOCKING_RECONCILIATION = {"partner_performance"}
"""partner_performance feeds the scorecards' figures: a mart that does not add up fails the run (and
stops anything downstream of it). publish writes the pages in the same call as the marts, so a run's
pages exist by the time this check runs; the failed run is the signal. partner_anomalies feeds no
page, so it only warns."""


def _specs() -> list[dg.AssetCheckSpec]:
    specs = []
    for name in MART_NAMES:
        key = mart_key(name)
        keys = ", ".join(k if isinstance(k, str) else k.meta.output_name() for k in MART_KEYS[name])
        reason, _ = EMPTY_WHEN[name]
        specs += [
            dg.AssetCheckSpec(
                NOT_EMPTY,
                asset=key,
                description=f"Warns when the mart is empty although its inputs are not (empty is right when {reason}).",
            ),
            dg.AssetCheckSpec(
                KEYS_UNIQUE, asset=key, description=f"Warns unless ({keys}) identifies each row."
            ),
            dg.AssetCheckSpec(
                COLUMNS_AND_TYPES,
                asset=key,
                description="Warns unless the stored table has exactly the mart's columns, in order, with their types.",
            ),
        ]
        if name in RECONCILED_MARTS:
            blocking = name in BLOCKING_RECONCILIATION
            specs.append(
                dg.AssetCheckSpec(
                    RECONCILES_WITH_SELLOUT,
                    asset=key,
                    blocking=blocking,
                    description=(
                        "sum(revenue_base) = sum(sellout.net_amount_base) over matched sell-out (partner_id "
                        "not null), exactly, and lines (and units, where the mart has them) likewise."
                        + (
                            " Blocking: the scorecards show these figures; a failure fails the run."
                            if blocking
                            else ""
                        )
                    ),
                )
            )
    return specs


MART_CHECK_SPECS = _specs()


def _inputs(storage: WarehouseStorage, as_of: date) -> Inputs:
    def rows(table: str, predicate: pl.Expr | None = None) -> int:
        if not storage.table_exists(table):
            return 0
        frame = scan_table(storage, table)
        if predicate is not None:
            frame = frame.filter(predicate)
        return frame.select(pl.len()).collect().item()

    programs = read_reference_table(storage, "rebate_programs")
    partners = read_reference_table(storage, "partners")
    return Inputs(
        matched_sellout_lines=rows("sellout", pl.col("partner_id").is_not_null()),
        inventory_rows=rows("inventory"),
        loads_with_period=rows("loads", pl.col("period_start").is_not_null()),
        programs_started=0 if programs is None else programs.filter(pl.col("period_start") <= as_of).height,
        partners=0 if partners is None else partners.height,
    )


def _result(
    name: str, check: str, passed: bool, metadata: dict[str, object], *, blocking: bool = False
) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=mart_key(name),
        check_name=check,
        passed=passed,
        severity=dg.AssetCheckSeverity.ERROR if blocking else dg.AssetCheckSeverity.WARN,
        metadata=metadata,
    )


def _not_empty(name: str, mart: pl.DataFrame, inputs: Inputs) -> dg.AssetCheckResult:
    reason, holds_nothing = EMPTY_WHEN[name]
    rightly_empty = holds_nothing(inputs)
    metadata: dict[str, object] = {"rows": mart.height, "inputs": dg.MetadataValue.json(vars(inputs))}
    if mart.is_empty():
        metadata["empty_because"] = (
            reason if rightly_empty else f"unexplained: it is empty only when {reason}"
        )
    return _result(name, NOT_EMPTY, not mart.is_empty() or rightly_empty, metadata)


def _keys_unique(name: str, mart: pl.DataFrame) -> dg.AssetCheckResult:
    keys = [pl.col(k) if isinstance(k, str) else k for k in MART_KEYS[name]]
    repeated = (
        mart.select(keys).group_by(pl.all()).len().filter(pl.col("len") > 1).sort(pl.all().exclude("len"))
    )
    return _result(
        name,
        KEYS_UNIQUE,
        repeated.is_empty(),
        {
            "rows": mart.height,
            "repeated_keys": repeated.height,
            "top": dg.MetadataValue.md(
                markdown_table(repeated.head(TOP_ROWS)) if repeated.height else "(none)"
            ),
        },
    )


def _columns_and_types(name: str, mart: pl.DataFrame) -> dg.AssetCheckResult:
    expected = pl.Schema(MART_SCHEMAS[name])
    differences = [
        {
            "column": column,
            "expected": str(expected.get(column, "(absent)")),
            "stored": str(mart.schema.get(column, "(absent)")),
        }
        for column in dict.fromkeys([*expected, *mart.schema])
        if expected.get(column) != mart.schema.get(column)
    ]
    in_order = list(mart.schema) == list(expected)
    return _result(
        name,
        COLUMNS_AND_TYPES,
        not differences and in_order,
        {
            "columns": len(mart.schema),
            "differences": dg.MetadataValue.json(differences),
            "same_order": in_order,
        },
    )


def _reconciliation(name: str, mart: pl.DataFrame, sellout: dict[str, object]) -> dg.AssetCheckResult:
    measures = [m for m in ("revenue_base", "units", "lines") if m in mart.columns]
    totals = mart.select(pl.col(measures).sum()).row(0, named=True)
    zero = {"revenue_base": Decimal(0), "units": 0, "lines": 0}
    compared = {m: (totals[m] if totals[m] is not None else zero[m], sellout[m]) for m in measures}
    metadata: dict[str, object] = {}
    for measure, (in_mart, in_sellout) in compared.items():
        metadata[f"mart_{measure}"] = str(in_mart)
        metadata[f"sellout_{measure}"] = str(in_sellout)
        metadata[f"difference_{measure}"] = str(in_mart - in_sellout)
    passed = all(in_mart == in_sellout for in_mart, in_sellout in compared.values())
    return _result(name, RECONCILES_WITH_SELLOUT, passed, metadata, blocking=name in BLOCKING_RECONCILIATION)


def _matched_sellout(storage: WarehouseStorage) -> dict[str, object]:
    """Sums of matched sell-out (exact decimals: Polars sums a Decimal column as a Decimal)."""
    if not storage.table_exists("sellout"):
        return {"revenue_base": Decimal(0), "units": 0, "lines": 0}
    totals = (
        scan_table(storage, "sellout")
        .filter(pl.col("partner_id").is_not_null())
        .select(
            pl.col("net_amount_base").sum().alias("revenue_base"),
            pl.col("quantity").sum().alias("units"),
            pl.len().alias("lines"),
        )
        .collect()
        .row(0, named=True)
    )
    return {
        "revenue_base": totals["revenue_base"] or Decimal(0),
        "units": totals["units"] or 0,
        "lines": totals["lines"],
    }


def _as_of(context: dg.AssetCheckExecutionContext) -> date:
    """The as_of of the marts' latest materialization (today, UTC, when it is not recorded)."""
    event = context.instance.get_latest_materialization_event(mart_key("rebate_accruals"))
    recorded = (
        event.asset_materialization.metadata.get("as_of") if event and event.asset_materialization else None
    )
    return date.fromisoformat(recorded.value) if recorded is not None else datetime.now(UTC).date()


def _failed(name: str, error: Exception) -> Iterator[dg.AssetCheckResult]:
    """Every check of `name`, failed with the error, so the UI says why."""
    for spec in MART_CHECK_SPECS:
        if spec.asset_key == mart_key(name):
            yield _result(
                name,
                spec.name,
                False,
                {"error": f"{type(error).__name__}: {error}"},
                blocking=spec.blocking,
            )


@dg.multi_asset_check(specs=MART_CHECK_SPECS, name="mart_checks")
def mart_checks(context: dg.AssetCheckExecutionContext, throughline: ThroughlineResource):
    """Read each stored mart once and run its checks; an error fails that mart's checks, showing it."""
    storage = throughline.storage
    try:
        inputs = _inputs(storage, _as_of(context))
        sellout = _matched_sellout(storage)
    except Exception as error:
        for name in MART_NAMES:
            yield from _failed(name, error)
        return
    for name in MART_NAMES:
        try:
            mart = read_reference_table(storage, name)
            if mart is None:
                raise LookupError(f"table {name!r} was never written: materialize the marts first")
            results = [
                _not_empty(name, mart, inputs),
                _keys_unique(name, mart),
                _columns_and_types(name, mart),
            ]
            if name in RECONCILED_MARTS:
                results.append(_reconciliation(name, mart, sellout))
        except Exception as error:
            results = list(_failed(name, error))
        yield from results
