"""Table schemas: the columns and types of every warehouse table, and the Pandera schemas over them.

`*_COLUMNS` dicts are the one declaration of each table's columns (the Delta tables are written
with exactly these types). `validation_schema` turns the rule registry of `schemas.rules` into a
Pandera schema over normalized records; `table_schema` gives the Pandera schema of a stored table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from schemas.rules import RuleContext, rules_for

if TYPE_CHECKING:  # Pandera (and the pandas it brings) loads only where a schema is built
    import pandera.polars as pa

UNIT_PRICE = pl.Decimal(18, 4)
AMOUNT = pl.Decimal(18, 2)
TIMESTAMP = pl.Datetime("us", "UTC")

SELLOUT_COLUMNS: dict[str, pl.DataType] = {
    "line_id": pl.String(),
    "distributor_id": pl.String(),
    "feed_id": pl.String(),
    "period_start": pl.Date(),
    "transaction_date": pl.Date(),
    "invoice_number": pl.String(),
    "invoice_line": pl.Int32(),
    "transaction_type": pl.String(),
    "transfer_code": pl.String(),
    "partner_id": pl.String(),
    "reseller_name": pl.String(),
    "reseller_postal_code": pl.String(),
    "reseller_country": pl.String(),
    "sku": pl.String(),
    "distributor_sku": pl.String(),
    "units_per_distributor_unit": pl.Int64(),
    "quantity": pl.Int64(),
    "unit_price": UNIT_PRICE,
    "currency": pl.String(),
    "net_amount": AMOUNT,
    "net_amount_base": AMOUNT,
    "end_customer_key": pl.String(),
    "end_customer_country": pl.String(),
    "source_file": pl.String(),
    "source_row": pl.Int32(),
    "load_id": pl.String(),
    "received_at": TIMESTAMP,
    "ingested_at": TIMESTAMP,
}
"""`sellout`, as CHANNEL_MODEL.md defines it, plus feed_id, period_start and received_at for restatements."""

INVENTORY_COLUMNS: dict[str, pl.DataType] = {
    "line_id": pl.String(),
    "distributor_id": pl.String(),
    "feed_id": pl.String(),
    "period_start": pl.Date(),
    "snapshot_date": pl.Date(),
    "sku": pl.String(),
    "distributor_sku": pl.String(),
    "units_per_distributor_unit": pl.Int64(),
    "location_id": pl.String(),
    "quantity_on_hand": pl.Int64(),
    "quantity_on_order": pl.Int64(),
    "source_file": pl.String(),
    "source_row": pl.Int32(),
    "load_id": pl.String(),
    "received_at": TIMESTAMP,
    "ingested_at": TIMESTAMP,
}

QUARANTINE_COLUMNS: dict[str, pl.DataType] = {
    "load_id": pl.String(),
    "distributor_id": pl.String(),
    "feed_id": pl.String(),
    "source_file": pl.String(),
    "source_row": pl.Int32(),
    "raw_record": pl.String(),
    "rule": pl.String(),
    "message": pl.String(),
    "ingested_at": TIMESTAMP,
}

LOADS_COLUMNS: dict[str, pl.DataType] = {
    "load_id": pl.String(),
    "distributor_id": pl.String(),
    "feed_id": pl.String(),
    "dataset": pl.String(),
    "channel": pl.String(),
    "source_name": pl.String(),
    "source_file": pl.String(),
    "sha256": pl.String(),
    "bytes": pl.Int64(),
    "spec_version": pl.String(),
    "period_start": pl.Date(),
    "rows_read": pl.Int64(),
    "rows_loaded": pl.Int64(),
    "rows_quarantined": pl.Int64(),
    "rows_skipped": pl.Int64(),
    "skipped_detail": pl.String(),
    "status": pl.String(),
    "error": pl.String(),
    "warnings": pl.String(),
    "received_at": TIMESTAMP,
    "started_at": TIMESTAMP,
    "finished_at": TIMESTAMP,
    "schema_drift": pl.String(),
    "source_columns": pl.String(),
}
"""`schema_drift` and `source_columns` came later: they are last, as existing tables gain them."""

LANDED_FILES_COLUMNS: dict[str, pl.DataType] = {
    "sha256": pl.String(),
    "distributor_id": pl.String(),
    "source_name": pl.String(),
    "source_file": pl.String(),
    "channel": pl.String(),
    "bytes": pl.Int64(),
    "received_at": TIMESTAMP,
    "landed_at": TIMESTAMP,
    "source_mtime": TIMESTAMP,
}
"""The landing register: every distinct file received per distributor, by content, in arrival order.

`received_at` is when Throughline received the bytes (strictly increasing per distributor): the
arrival order that decides which report of a period wins. `source_mtime` is informational only.
"""

LANDING_CHANGES_COLUMNS: dict[str, pl.DataType] = {
    "distributor_id": pl.String(),
    "sha256": pl.String(),
    "action": pl.String(),
    "source_file": pl.String(),
    "replaced_by": pl.String(),
    "bytes_before": pl.Int64(),
    "bytes_after": pl.Int64(),
    "records_changed": pl.Int64(),
    "reason": pl.String(),
    "changed_at": TIMESTAMP,
}
"""The ledger of changes to landing after a file was received (`warehouse.retention`), one row per
change: `redacted` (an erasure replaced the file at `source_file` with the copy at `replaced_by`)
or `purged` (the retention period deleted it). `sha256` stays the received bytes' (the delivery's
identity: the same bytes sent again are still a duplicate). Never an end customer's value: `reason`
is the operator's reference of the request or the retention rule. Created on its first change, so
it is not in TABLE_COLUMNS (every warehouse has those tables)."""

TABLE_COLUMNS: dict[str, dict[str, pl.DataType]] = {
    "staging_sellout": SELLOUT_COLUMNS,
    "staging_inventory": INVENTORY_COLUMNS,
    "sellout": SELLOUT_COLUMNS,
    "inventory": INVENTORY_COLUMNS,
    "quarantine": QUARANTINE_COLUMNS,
    "loads": LOADS_COLUMNS,
    "landed_files": LANDED_FILES_COLUMNS,
}

LOAD_STATUSES = ("loaded", "rejected", "duplicate", "superseded", "staged", "held")
"""`staged`: records written, core not yet updated (a run completes it); `held`: a report that would
empty or sharply shrink a loaded period, waiting for `throughline confirm`. The others are final."""
FINISHED_STATUSES = ("loaded", "rejected", "duplicate", "superseded", "held")


def empty_frame(table: str) -> pl.DataFrame:
    """An empty frame with the table's exact schema."""
    return pl.DataFrame(schema=TABLE_COLUMNS[table])


def table_schema(table: str) -> pa.DataFrameSchema:
    """The Pandera schema of a stored table: its exact columns and types."""
    import pandera.polars as pa

    columns = {name: pa.Column(dtype, nullable=True) for name, dtype in TABLE_COLUMNS[table].items()}
    if table in ("sellout", "staging_sellout"):
        columns["line_id"] = pa.Column(pl.String, nullable=False, unique=table == "sellout")
        columns["quantity"] = pa.Column(pl.Int64, nullable=False)
        columns["transaction_date"] = pa.Column(pl.Date, nullable=False)
    if table == "loads":
        columns["status"] = pa.Column(pl.String, pa.Check.isin(LOAD_STATUSES), nullable=False)
    return pa.DataFrameSchema(columns, strict=True, name=table)


def _frame_check(passes: pl.Expr):
    """A Pandera frame-level check evaluating one rule's expression."""

    def check(data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(passes)

    return check


def validation_schema(context: RuleContext) -> pa.DataFrameSchema:
    """The Pandera schema of normalized records: one named check per rule of the registry.

    The streaming path evaluates the very same expressions (`transforms.validate`); a test keeps
    the two in agreement.
    """
    import pandera.polars as pa

    checks = [
        pa.Check(_frame_check(rule.passes(context)), name=rule.name, error=rule.name)
        for rule in rules_for(context)
    ]
    return pa.DataFrameSchema(checks=checks, name=f"{context.spec.id} records")
