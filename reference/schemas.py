"""What a valid reference file is: one declaration per table, turned into a Pandera schema.

`TABLES` declares every reference table (columns, kinds of value, keys, references into other
tables, rules across rows); `table_schema` builds the Pandera (polars) schema that checks a table
as read, every cell still text, and `problems_of` turns Pandera's failure cases into
`ReferenceProblem`s naming file, row and column. `typed` casts a table that passed. Reading files
belongs in `reference.files`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import polars as pl

from schemas.rules import ISO_3166_ALPHA2_CODES, ISO_4217_CODES

if TYPE_CHECKING:  # Pandera (and the pandas it brings) loads only where a schema is built
    import pandera.polars as pa

ROW = "_row"
"""The 1-based data row (CSV: line below the header; YAML: entry of the list) each record came from."""

Kind = Literal["text", "country", "currency", "date", "month", "decimal", "integer", "list"]

PRICE = pl.Decimal(18, 4)
AMOUNT = pl.Decimal(18, 2)
RATE = pl.Decimal(20, 10)
PERCENT = pl.Decimal(9, 4)


@dataclass(frozen=True)
class Column:
    """One column of a reference table as its file spells it."""

    name: str
    kind: Kind = "text"
    required: bool = True
    """A value is needed in every row (else the cell may be empty)."""
    in_header: bool = True
    """The file must have the column (else it may be left out: then every value is empty)."""
    dtype: pl.DataType | None = None
    """The typed column's dtype (decimal kinds: their precision and scale)."""
    minimum: int = 0
    """Decimals and integers: the smallest value allowed."""
    exclusive_minimum: bool = False
    allowed: tuple[str, ...] = ()
    references: str | None = None
    """`"table.column"` whose values this column's values must be among (a dangling one is an error)."""
    default: str | None = None
    """Value of an empty cell (applied after validation, so the cell still reads as empty)."""


@dataclass(frozen=True)
class RowRule:
    """A rule over whole rows (a Pandera frame-level check): True where a row passes."""

    name: str
    column: str
    message: str
    passes: Callable[[Mapping[str, Collection[str]], str], pl.Expr]
    """Builds the expression from the key sets of other tables and the base currency."""


@dataclass(frozen=True)
class Table:
    """A reference table: its file, columns, key and the rules across its rows."""

    name: str
    file: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    rules: tuple[RowRule, ...] = ()
    row_word: str = "row"

    def column(self, name: str) -> Column:
        return next(column for column in self.columns if column.name == name)

    @property
    def header(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns if column.in_header)

    @property
    def typed_schema(self) -> dict[str, pl.DataType]:
        return {column.name: _dtype(column) for column in self.columns}


def _dtype(column: Column) -> pl.DataType:
    if column.dtype is not None:
        return column.dtype
    return {
        "date": pl.Date(),
        "month": pl.String(),
        "integer": pl.Int64(),
        "list": pl.List(pl.String()),
    }.get(column.kind, pl.String())


# --------------------------------------------------------------------------------------------------
# Rules across rows.


def _after(later: str, earlier: str, *, strictly: bool = True) -> Callable[..., pl.Expr]:
    def passes(keys: Mapping[str, Collection[str]], base: str) -> pl.Expr:
        a, b = _as_date(pl.col(later)), _as_date(pl.col(earlier))
        ok = a > b if strictly else a >= b
        return a.is_null() | b.is_null() | ok

    return passes


def _as_date(expr: pl.Expr) -> pl.Expr:
    return expr.str.to_date("%Y-%m-%d", strict=False)


def _history_in_order(keys: Mapping[str, Collection[str]], base: str) -> pl.Expr:
    """Versions of one partner do not overlap: each starts on or after the previous one's valid_to
    (valid_to is exclusive), only the first may leave valid_from empty, only the last valid_to.
    Rows with an unreadable date pass (the date check reports them)."""
    start, end = _as_date(pl.col("valid_from")), _as_date(pl.col("valid_to"))
    unreadable = (pl.col("valid_from").is_not_null() & start.is_null()) | (
        pl.col("valid_to").is_not_null() & end.is_null()
    )
    # Versions in order of valid_from (empty first), then file order; ROW makes the order total.
    order = start.fill_null(pl.date(1, 1, 1)).cast(pl.Int64) * 10_000_000 + pl.col(ROW)
    position = order.rank("ordinal").cast(pl.Int64) - 1
    previous_end = end.sort_by(order).shift(1).gather(position).over("partner_id")
    first = (order.rank("ordinal") == 1).over("partner_id")
    return unreadable | first | (start >= previous_end).fill_null(False)


def _base_rate_is_one(keys: Mapping[str, Collection[str]], base: str) -> pl.Expr:
    rate = pl.col("rate_to_base").cast(RATE, strict=False)
    return (pl.col("currency") != base) | rate.is_null() | (rate == 1)


def _ascending_thresholds(keys: Mapping[str, Collection[str]], base: str) -> pl.Expr:
    value = pl.col("min_revenue_t12m").cast(AMOUNT, strict=False)
    return (value >= value.shift(1)).fill_null(True)


def _list_within(column: str, table_column: str) -> Callable[..., pl.Expr]:
    def passes(keys: Mapping[str, Collection[str]], base: str) -> pl.Expr:
        known = pl.lit(sorted(keys.get(table_column, ())), dtype=pl.List(pl.String()))
        return pl.col(column).list.set_difference(known).list.len() == 0

    return passes


def _currency_with_price(keys: Mapping[str, Collection[str]], base: str) -> pl.Expr:
    return pl.col("list_price").is_null() | pl.col("currency").is_not_null()


# --------------------------------------------------------------------------------------------------
# The tables.

_PARTNER = Column("partner_id", references="partners.partner_id")

PARTNERS = Table(
    "partners_history",
    "partners.csv",
    (
        Column("partner_id"),
        Column("legal_name"),
        Column("country", "country"),
        Column("postal_code", required=False),
        Column("tier", required=False, references="tiers.tier"),
        Column("segment_type", required=False),
        Column("region", required=False),
        Column("vertical", required=False),
        Column("valid_from", "date", required=False, in_header=False),
        Column("valid_to", "date", required=False, in_header=False),
    ),
    key=("partner_id", "valid_from"),
    rules=(
        RowRule("valid_to_after_valid_from", "valid_to", "valid_to {value} must be after valid_from (valid_to is exclusive: the day the next version starts)", _after("valid_to", "valid_from")),
        RowRule("history_overlaps", "valid_from", "{value} overlaps the partner's previous version: versions must not overlap; close the previous version with a valid_to on or before this valid_from (only a partner's first version may leave valid_from empty)", _history_in_order),
    ),
)  # fmt: skip

PARTNER_SITES = Table(
    "partner_sites",
    "partner_sites.csv",
    (_PARTNER, Column("legal_name"), Column("country", "country"), Column("postal_code", required=False)),
    key=("partner_id", "legal_name", "country"),
)

PARTNER_ALIASES = Table(
    "partner_aliases",
    "partner_aliases.csv",
    (
        Column("distributor_id", references="distributors.distributor_id"),
        Column("reported_name"),
        Column("postal_code", required=False),
        Column("country", "country", required=False),
        _PARTNER,
        Column("method", required=False, in_header=False, allowed=("manual",), default="manual"),
        Column("approved_on", "date", required=False, in_header=False),
        Column("note", required=False, in_header=False),
    ),
    key=("distributor_id", "reported_name", "postal_code", "country"),
)

PRODUCTS = Table(
    "products",
    "products.csv",
    (
        Column("sku"),
        Column("name"),
        Column("family", required=False),
        Column("list_price", "decimal", required=False, dtype=PRICE),
        Column("currency", "currency", required=False),
    ),
    key=("sku",),
    rules=(
        RowRule(
            "currency_of_price", "currency", "is empty: a list_price needs its currency", _currency_with_price
        ),
    ),
)

SKU_MAP = Table(
    "sku_map",
    "sku_map.csv",
    (
        Column("distributor_id", references="distributors.distributor_id"),
        Column("distributor_sku"),
        Column("sku", references="products.sku"),
        Column(
            "units_per_distributor_unit", "integer", required=False, in_header=False, minimum=1, default="1"
        ),
    ),
    key=("distributor_id", "distributor_sku"),
)

FX_RATES = Table(
    "fx_rates",
    "fx_rates.csv",
    (
        Column("rate_date", "date"),
        Column("currency", "currency"),
        Column("rate_to_base", "decimal", dtype=RATE, minimum=0, exclusive_minimum=True),
    ),
    key=("rate_date", "currency"),
    rules=(
        RowRule(
            "base_rate_is_one",
            "rate_to_base",
            "{value} is not 1: the base currency's own rate must be 1",
            _base_rate_is_one,
        ),
    ),
)

QUOTAS = Table(
    "quotas",
    "quotas.csv",
    (_PARTNER, Column("period", "month"), Column("target_base", "decimal", dtype=AMOUNT)),
    key=("partner_id", "period"),
)

CERTIFICATIONS = Table(
    "certifications",
    "certifications.csv",
    (_PARTNER, Column("certification"), Column("earned_on", "date"), Column("expires_on", "date", required=False)),
    key=("partner_id", "certification"),
    rules=(RowRule("expires_after_earned", "expires_on", "expires_on {value} must be after earned_on", _after("expires_on", "earned_on")),),
)  # fmt: skip

TIERS = Table(
    "tiers",
    "tiers.yaml",
    (
        Column("tier"),
        Column("min_revenue_t12m", "decimal", dtype=AMOUNT),
        Column("certifications", "list", required=False),
    ),
    key=("tier",),
    rules=(RowRule("thresholds_ascending", "min_revenue_t12m", "{value} is below the previous tier's: tiers are listed lowest first, thresholds ascending", _ascending_thresholds),),
    row_word="tier",
)  # fmt: skip

REBATE_PROGRAMS = Table(
    "rebate_programs",
    "rebate_programs.yaml",
    (
        Column("program_id"),
        Column("name"),
        Column("skus", "list", required=False),
        Column("families", "list", required=False),
        Column("period_start", "date"),
        Column("period_end", "date"),
        Column("eligible_tiers", "list"),
        Column("rule_type", allowed=("percent_above_threshold", "growth_kicker")),
        Column("percent", "decimal", dtype=PERCENT),
        Column("threshold", "decimal", required=False, dtype=AMOUNT),
        Column("min_growth_percent", "decimal", required=False, dtype=PERCENT),
        Column("baseline", required=False),
    ),
    key=("program_id",),
    rules=(
        RowRule("period_order", "period_end", "period_end {value} is before period_start", _after("period_end", "period_start", strictly=False)),
        RowRule("skus_known", "skus", "{value} names SKUs that are not in products.csv (dangling reference)", _list_within("skus", "products.sku")),
        RowRule("families_known", "families", "{value} names families that no product of products.csv has (dangling reference)", _list_within("families", "products.family")),
        RowRule("tiers_known", "eligible_tiers", "{value} names tiers that are not in tiers.yaml (dangling reference)", _list_within("eligible_tiers", "tiers.tier")),
    ),
    row_word="program",
)  # fmt: skip

TABLES: tuple[Table, ...] = (
    TIERS,
    PARTNERS,
    PARTNER_SITES,
    PARTNER_ALIASES,
    PRODUCTS,
    SKU_MAP,
    FX_RATES,
    QUOTAS,
    CERTIFICATIONS,
    REBATE_PROGRAMS,
)
"""Every reference table, in the order its problems are reported."""


# --------------------------------------------------------------------------------------------------
# Pandera schemas and their failures as problems.


@dataclass(frozen=True, order=True)
class ReferenceProblem:
    """One thing wrong with a reference file: the file, the 1-based row (None: the whole file),
    the column, and what is wrong."""

    file: str
    row: int | None
    column: str | None
    message: str
    row_word: str = field(default="row", compare=False)

    def __str__(self) -> str:
        where = [self.file]
        if self.row is not None:
            where.append(f"{self.row_word} {self.row}")
        if self.column:
            where.append(self.column)
        return f"{', '.join(where)}: {self.message}"


_DECIMAL = r"^[+-]?\d+(\.\d+)?$"


def _value_check(column: Column) -> tuple[str, pl.Expr, str] | None:
    """(check name, passes, message) of the column's kind of value, for text cells."""
    value = pl.col(column.name)
    if column.kind == "country":
        return (
            "country_code",
            value.is_in(sorted(ISO_3166_ALPHA2_CODES)),
            "{value} is not an ISO 3166-1 alpha-2 country code",
        )
    if column.kind == "currency":
        return (
            "currency_code",
            value.is_in(sorted(ISO_4217_CODES)),
            "{value} is not an ISO 4217 currency code",
        )
    if column.kind == "date":
        ok = value.str.contains(r"^\d{4}-\d{2}-\d{2}$") & _as_date(value).is_not_null()
        return "date", ok, "{value} is not a date (YYYY-MM-DD)"
    if column.kind == "month":
        return "month", value.str.contains(r"^\d{4}-(0[1-9]|1[0-2])$"), "{value} is not a month (YYYY-MM)"
    if column.kind == "integer":
        ok = value.str.contains(r"^[+-]?\d{1,18}$")
        ok = ok & (value.cast(pl.Int64, strict=False) >= column.minimum).fill_null(False)
        return "integer", ok, f"{{value}} is not a whole number of at least {column.minimum}"
    if column.kind == "decimal":
        dtype = column.dtype if isinstance(column.dtype, pl.Decimal) else AMOUNT
        scale = dtype.scale or 0
        digits = (dtype.precision or 38) - scale
        pattern = rf"^[+-]?\d{{1,{digits}}}(\.\d{{1,{scale}}})?$" if scale else rf"^[+-]?\d{{1,{digits}}}$"
        number = value.cast(dtype, strict=False)
        bound = number > column.minimum if column.exclusive_minimum else number >= column.minimum
        ok = value.str.contains(pattern) & bound.fill_null(False)
        word = "above" if column.exclusive_minimum else "at least"
        return (
            "decimal",
            ok,
            f"{{value}} is not a plain number {word} {column.minimum} with at most {scale} decimal places",
        )
    if column.allowed:
        return (
            "allowed",
            value.is_in(list(column.allowed)),
            f"{{value}} is not allowed (allowed: {', '.join(column.allowed)})",
        )
    return None


def table_schema(
    table: Table, keys: Mapping[str, Collection[str]], base_currency: str, references: Collection[str]
) -> tuple[pa.DataFrameSchema, dict[str, tuple[str | None, str]]]:
    """The Pandera schema of `table` as read (text cells, `ROW` column), and the message of each
    named check: check name -> (column, message). `keys` holds the values of every referenced
    `table.column`; a reference is checked only when it is in `references`."""
    import pandera.polars as pa

    messages: dict[str, tuple[str | None, str]] = {}

    def frame_check(name: str, column: str | None, message: str, passes: pl.Expr) -> pa.Check:
        messages[name] = (column, message)

        def check(data: pa.PolarsData) -> pl.LazyFrame:
            return data.lazyframe.select(passes.fill_null(True))

        return pa.Check(check, name=name)

    columns: dict[str, pa.Column] = {ROW: pa.Column(pl.Int64, nullable=False)}
    checks: list[pa.Check] = []
    for column in table.columns:
        dtype = pl.List(pl.String()) if column.kind == "list" else pl.String()
        columns[column.name] = pa.Column(dtype, nullable=not column.required)
        is_set = pl.col(column.name).is_null() | (
            pl.col(column.name).list.len() == 0 if column.kind == "list" else pl.lit(False)
        )
        value_check = _value_check(column)
        if value_check is not None:
            name, passes, message = value_check
            checks.append(frame_check(f"{column.name}:{name}", column.name, message, is_set | passes))
        if column.references and column.references in references:
            target_table, _ = column.references.split(".")
            known = sorted(keys.get(column.references, ()))
            message = f"{{value}} is not a {column.references.split('.')[1]} of {_file_of(target_table)} (dangling reference)"
            passes = pl.col(column.name).is_in(known)
            checks.append(frame_check(f"{column.name}:reference", column.name, message, is_set | passes))
    for rule in table.rules:
        checks.append(frame_check(rule.name, rule.column, rule.message, rule.passes(keys, base_currency)))
    unique = list(table.key) if len(table.key) > 1 else None
    if len(table.key) == 1:
        columns[table.key[0]] = pa.Column(pl.String, nullable=False, unique=True)
    schema = pa.DataFrameSchema(columns, checks=checks, unique=unique, strict=True, name=table.file)
    return schema, messages


def _file_of(table_name: str) -> str:
    if table_name == "distributors":
        return "the feed specs"
    if table_name == "partners":
        return "partners.csv"
    return next(table.file for table in TABLES if table.name == table_name)


def validate(
    table: Table,
    frame: pl.DataFrame,
    keys: Mapping[str, Collection[str]],
    base_currency: str,
    references: Collection[str],
) -> list[ReferenceProblem]:
    """Every problem of one table as read (text cells and `ROW`): Pandera, lazily, all checks."""
    import pandera.errors as pa_errors

    schema, messages = table_schema(table, keys, base_currency, references)
    try:
        schema.validate(frame, lazy=True)
    except pa_errors.SchemaErrors as errors:
        return problems_of(table, frame, errors.failure_cases, messages)
    return []


def problems_of(
    table: Table, frame: pl.DataFrame, failures: pl.DataFrame, messages: Mapping[str, tuple[str | None, str]]
) -> list[ReferenceProblem]:
    """Pandera's failure cases as problems: the row from `ROW`, a message per check."""
    rows = frame[ROW].to_list()
    out: list[ReferenceProblem] = []
    duplicate_rows = _duplicate_rows(table, frame)
    for failure in failures.iter_rows(named=True):
        index, check = failure["index"], str(failure["check"])
        row = rows[index] if index is not None else None
        column = failure["column"] if failure["schema_context"] == "Column" else None
        value = failure["failure_case"]
        if check in messages:
            column, message = messages[check]
            value = frame[column][index] if column and index is not None else None
            message = message.replace("{value}", _shown(value)).strip()
        elif check == "not_nullable":
            message = "is empty: a value is required"
        elif check in ("field_uniqueness", "multiple_fields_uniqueness"):
            column = ", ".join(table.key)
            others = [other for other in duplicate_rows.get(row, []) if other != row]
            also = f" (also {table.row_word} {', '.join(map(str, others))})" if others else ""
            message = f"duplicate key {_key_text(table, frame, index)}{also}"
        else:
            message = f"{check}: {value}"
        out.append(ReferenceProblem(table.file, row, column, message, table.row_word))
    return sorted(set(out))


def _shown(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, pl.Series):
        value = value.to_list()
    if isinstance(value, list):
        return json.dumps(value, ensure_ascii=False)
    return repr(str(value))


def _key_text(table: Table, frame: pl.DataFrame, index: int | None) -> str:
    if index is None:
        return ""
    values = [frame[name][index] for name in table.key]
    return "(" + ", ".join(f"{name}={value!r}" for name, value in zip(table.key, values, strict=True)) + ")"


def _duplicate_rows(table: Table, frame: pl.DataFrame) -> dict[int, list[int]]:
    if not frame.height:
        return {}
    groups = (
        frame.group_by(list(table.key), maintain_order=True)
        .agg(pl.col(ROW))
        .filter(pl.col(ROW).list.len() > 1)[ROW]
        .to_list()
    )
    return {row: group for group in groups for row in group}


def typed(table: Table, frame: pl.DataFrame) -> pl.DataFrame:
    """A table that passed validation with its typed columns (defaults filled, `ROW` dropped)."""
    exprs = []
    for column in table.columns:
        value = pl.col(column.name)
        if column.default is not None:
            value = value.fill_null(pl.lit(column.default))
        if column.kind == "date":
            value = _as_date(value)
        elif column.kind != "list":
            value = value.cast(_dtype(column))
        exprs.append(value.alias(column.name))
    return frame.select(exprs)
