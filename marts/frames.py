"""Shared pieces of the mart builders: the frames they accept, money and calendar expressions, and
`conform`, which gives a mart exactly its declared columns and types.

No mart logic here, and nothing that reads or writes: each mart's rules live in its own module.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal

import polars as pl

from schemas.tables import AMOUNT

Frame = pl.DataFrame | pl.LazyFrame
"""What a builder accepts: a frame as read from the warehouse, eager or lazy."""

Schema = Mapping[str, pl.DataType]

STRINGS = pl.List(pl.String())
NO_STRINGS = pl.lit([], dtype=STRINGS)
ZERO = pl.lit(Decimal(0), dtype=AMOUNT)


def lazy(frame: Frame) -> pl.LazyFrame:
    """`frame` as a LazyFrame (a DataFrame is wrapped, not copied)."""
    return frame.lazy() if isinstance(frame, pl.DataFrame) else frame


def columns(frame: Frame) -> list[str]:
    """The column names of `frame` (a LazyFrame's from its schema, without collecting it)."""
    return frame.columns if isinstance(frame, pl.DataFrame) else frame.collect_schema().names()


def conform(frame: pl.LazyFrame | pl.DataFrame, schema: Schema) -> pl.DataFrame:
    """Exactly the mart's columns, in its order and with its types (collected)."""
    return lazy(frame).select([pl.col(name).cast(dtype) for name, dtype in schema.items()]).collect()


def empty(schema: Schema) -> pl.DataFrame:
    """A mart with no rows and its declared columns."""
    return pl.DataFrame(schema=dict(schema))


def month_index(expr: pl.Expr) -> pl.Expr:
    """Months since year 0 (January of year Y is 12 * Y): consecutive months differ by one."""
    return expr.dt.year().cast(pl.Int64) * 12 + expr.dt.month().cast(pl.Int64) - 1


def pct_change(current: pl.Expr, base: pl.Expr) -> pl.Expr:
    """(current - base) / |base| * 100 as a float, computed from exact decimals; null when the base
    is null or zero. Dividing by |base| keeps the sign the direction of the change."""
    change = (current - base).cast(pl.Float64) / base.abs().cast(pl.Float64) * 100
    return pl.when(base.is_null() | (base == 0)).then(None).otherwise(change)


def ratio_pct(part: pl.Expr, whole: pl.Expr) -> pl.Expr:
    """part / whole * 100 as a float; null when `whole` is null or not positive."""
    value = part.cast(pl.Float64) / whole.cast(pl.Float64) * 100
    return pl.when(whole.is_null() | (whole <= 0)).then(None).otherwise(value)


def date_lit(day: date) -> pl.Expr:
    return pl.lit(day, dtype=pl.Date())
