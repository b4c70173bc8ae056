"""Completing loads: hold reports that would empty or sharply shrink a loaded period, then bring
core up to date for every distributor with `staged` loads (this run's, or a crashed run's) or with
core rows of a load that no longer counts (run again and rejected).

A held load waits with a warning until a person confirms it (`throughline confirm LOAD_ID`, or
`ingest --confirm` for the files of that run); the spec's `guards` set the thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from ingest.context import IngestContext
from ingest.enrichment import enrichment, resolve_new_resellers, staged_sellout_loads
from warehouse.core import CoreRebuild, outdated_core, rebuild_core
from warehouse.ledger import staged_distributors
from warehouse.tables import scan_table, sql_literal, update_rows

CONFIRMED_MARK = "confirmed:"


@dataclass(frozen=True)
class Hold:
    load_id: str
    source_name: str
    warning: str


def _guards(context: IngestContext, feed_id: str):
    spec = context.catalog.specs.get(feed_id)
    guards = getattr(spec, "guards", None)
    max_shrink = getattr(guards, "max_shrink_pct", 50.0)
    allow_empty = getattr(guards, "allow_empty_restatement", False)
    return max_shrink, allow_empty


def hold_shrinking_restatements(context: IngestContext, distributor_id: str, dataset: str) -> list[Hold]:
    """Hold each staged report that would replace a loaded one of its period with far fewer lines."""
    loads = (
        scan_table(context.storage, "loads")
        .filter(
            (pl.col("distributor_id") == distributor_id)
            & (pl.col("dataset") == dataset)
            & pl.col("status").is_in(["loaded", "staged"])
            & pl.col("period_start").is_not_null()
        )
        .select(
            "load_id",
            "feed_id",
            "period_start",
            "source_name",
            "status",
            "rows_loaded",
            "received_at",
            "warnings",
        )
        .sort("received_at")
        .collect()
    )
    holds: list[Hold] = []
    for staged in loads.filter(pl.col("status") == "staged").iter_rows(named=True):
        if (staged["warnings"] or "").startswith(CONFIRMED_MARK) or CONFIRMED_MARK in (
            staged["warnings"] or ""
        ):
            continue
        earlier = loads.filter(
            (pl.col("status") == "loaded")
            & (pl.col("feed_id") == staged["feed_id"])
            & (pl.col("period_start") == staged["period_start"])
            & (pl.col("received_at") < staged["received_at"])
        )
        if earlier.is_empty():
            continue
        before = int(earlier.sort("received_at")["rows_loaded"][-1])
        after = int(staged["rows_loaded"])
        max_shrink, allow_empty = _guards(context, staged["feed_id"])
        shrink = 100.0 * (before - after) / before if before else 0.0
        if after == 0 and before > 0 and not allow_empty:
            reason = f"it has no valid lines, and would empty period {staged['period_start']} ({before} lines loaded)"
        elif shrink > max_shrink:
            reason = (
                f"it would shrink period {staged['period_start']} from {before} to {after} lines "
                f"({shrink:.0f}% fewer; the spec's guards.max_shrink_pct is {max_shrink:g})"
            )
        else:
            continue
        warning = f"held: {reason}. Nothing changed. If the report is right, run `throughline confirm {staged['load_id']}`"
        update_rows(
            context.storage,
            "loads",
            f"load_id = {sql_literal(staged['load_id'])} AND status = 'staged'",
            {"status": "'held'", "warnings": sql_literal(warning)},
        )
        holds.append(Hold(staged["load_id"], staged["source_name"], warning))
    return holds


def confirm_loads(context: IngestContext, load_ids: list[str]) -> None:
    """Release held loads: they count from now on (the confirmation is kept in `warnings`)."""
    for load_id in load_ids:
        update_rows(
            context.storage,
            "loads",
            f"load_id = {sql_literal(load_id)} AND status IN ('held', 'staged')",
            {"status": "'staged'", "warnings": sql_literal(f"{CONFIRMED_MARK} by a person; core updated")},
        )


def complete_core(
    context: IngestContext, confirmed: list[str] | None = None, dataset: str | None = None
) -> tuple[list[CoreRebuild], list[Hold]]:
    """Bring core up to date for every (distributor, dataset) with staged loads, or with core rows of a
    load that no longer counts (one dataset if given)."""
    if confirmed:
        confirm_loads(context, confirmed)
    rebuilds: list[CoreRebuild] = []
    holds: list[Hold] = []
    pairs = sorted({*staged_distributors(context.storage), *outdated_core(context.storage)})
    for distributor_id, dataset_of_pair in pairs:
        if dataset is not None and dataset_of_pair != dataset:
            continue
        holds += hold_shrinking_restatements(context, distributor_id, dataset_of_pair)
        if dataset_of_pair == "sellout":
            resolve_new_resellers(context, distributor_id, staged_sellout_loads(context, distributor_id))
        rebuilds.append(
            rebuild_core(
                context.storage,
                dataset_of_pair,
                distributor_id,
                context.lock_dir,
                enrich=enrichment(context).apply,
            )
        )
    return rebuilds, holds
