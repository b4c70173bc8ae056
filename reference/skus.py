"""SKU mapping: a distributor's part number to the vendor SKU, with the pack size converted.

Pure Polars, exact Decimal arithmetic (no float). A pack part number (a case of 12) multiplies
the quantity by its units per distributor unit and divides the unit price by it, so the line's
value is unchanged; an unmapped part number keeps its quantity and price and gets `sku` null
(the exceptions view lists it). Which lines exist and where they are stored is not this module's.
"""

from __future__ import annotations

import polars as pl

UNIT_PRICE = pl.Decimal(18, 4)
"""`sellout.unit_price` (schemas.tables.UNIT_PRICE)."""
_EXACT = pl.Decimal(38, 16)
"""Scale of the division before rounding: a tie at 4 places is then a true tie for any pack
size below 5 * 10**11 units, so rounding once from here equals rounding the exact quotient."""

LINE_COLUMNS = ("distributor_id", "distributor_sku", "quantity", "unit_price")
SKU_MAP_COLUMNS = ("distributor_id", "distributor_sku", "sku", "units_per_distributor_unit")


def map_skus(lines: pl.DataFrame | pl.LazyFrame, sku_map: pl.DataFrame) -> pl.LazyFrame | pl.DataFrame:
    """Add `sku` and `units_per_distributor_unit` to `lines`, converting quantity and unit price.

    `lines` has `LINE_COLUMNS` (quantity Int64, unit_price Decimal; other columns pass through);
    `sku_map` has `SKU_MAP_COLUMNS` (one row per distributor and part number). Mapped lines get
    `quantity * units` and `unit_price / units` rounded half-to-even to 4 places (the Decimal
    default, as `sellout.unit_price` holds it); unmapped lines keep both, with `sku` and
    `units_per_distributor_unit` null. Row count and order are kept. Returns the type it was given.
    """
    lazy = lines.lazy() if isinstance(lines, pl.DataFrame) else lines
    missing = [name for name in LINE_COLUMNS if name not in lazy.collect_schema()]
    if missing:
        raise ValueError(f"lines lack the column(s) {', '.join(missing)}")
    table = sku_map.select(
        pl.col("distributor_id").cast(pl.String),
        pl.col("distributor_sku").cast(pl.String),
        pl.col("sku").cast(pl.String).alias("_mapped_sku"),
        pl.col("units_per_distributor_unit").cast(pl.Int64).alias("_units"),
    )
    if table.select(pl.struct("distributor_id", "distributor_sku").is_duplicated().any()).item():
        raise ValueError("sku_map names a (distributor_id, distributor_sku) twice")
    units = pl.col("_units")
    price = pl.col("unit_price")
    converted = (price.cast(_EXACT) / units.cast(pl.Decimal(38, 0))).round(4).cast(UNIT_PRICE)
    result = (
        lazy.join(table.lazy(), on=["distributor_id", "distributor_sku"], how="left", maintain_order="left")
        .with_columns(
            pl.col("_mapped_sku").alias("sku"),
            units.alias("units_per_distributor_unit"),
            pl.when(units.is_null())
            .then(pl.col("quantity"))
            .otherwise(pl.col("quantity") * units)
            .alias("quantity"),
            pl.when(units.is_null()).then(price).otherwise(converted).cast(UNIT_PRICE).alias("unit_price"),
        )
        .drop("_mapped_sku", "_units")
    )
    return result.collect() if isinstance(lines, pl.DataFrame) else result
