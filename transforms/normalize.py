"""Normalization: raw reader records -> canonical, typed columns, as lazy Polars expressions.

`normalize_records` maps a feed's source columns to the canonical fields of CHANNEL_MODEL.md,
parses numbers and dates with the feed's conventions, applies unit-of-measure factors and the
return sign, and replaces end-customer identity with `end_customer_key`. It keeps the trimmed
source text of each field (`raw__<field>`) and the source record (`src__<column>`) so validation
can explain failures and quarantine can show the record. No I/O and no Dagster here.
"""

from __future__ import annotations

import re
from typing import TypeVar

import polars as pl
import polars_hash  # noqa: F401  (registers the `chash` expression namespace)

from schemas.feed_spec import END_CUSTOMER_IDENTITY_FIELDS, INVENTORY_FIELDS, SELLOUT_FIELDS, FeedSpec
from schemas.rules import READ_ERROR_COLUMN, raw, transaction_code_map
from schemas.tables import AMOUNT, UNIT_PRICE
from transforms.drift import detect_drift, has_named_header, resolve_header
from transforms.readers import ROW_KIND, SOURCE_ROW

SOURCE_PREFIX = "src__"
KEY_SEPARATOR = "\x1f"
ISO_DATE_FORMATS = ("%Y-%m-%d",)
MappedValue = TypeVar("MappedValue")
"""What `map_codes` maps a code to (a unit factor, a transaction type label)."""


def source_column(name: str) -> str:
    """Name under which a source column is carried through the stream (for quarantine's raw_record)."""
    return f"{SOURCE_PREFIX}{name}"


def canonical_fields(spec: FeedSpec) -> tuple[str, ...]:
    return SELLOUT_FIELDS if spec.dataset == "sellout" else INVENTORY_FIELDS


def _clean_text(expr: pl.Expr) -> pl.Expr:
    """Trim and turn empty strings into nulls: an empty cell means 'not reported'.

    Not `replace("", None)`, though it does less work: Polars' streaming engine does not stream
    `replace`, so it held the file's rows (a 5M-line ingest peaked at 2.4 GiB instead of 0.7)."""
    trimmed = expr.cast(pl.String).str.strip_chars()
    return pl.when(trimmed == "").then(None).otherwise(trimmed)


def _number_text(expr: pl.Expr, spec: FeedSpec, field: str | None = None) -> pl.Expr:
    """Number text in the feed's convention -> plain '-1234.56' text (still a string).

    A leading '+' is dropped; with `parsing.trailing_minus` a trailing '-' becomes a leading one.
    When the spec declares implied decimals for `field`, only (signed) digits are numbers: the
    point is placed by text, never by float arithmetic, so '+00000000383' with 2 places is
    exactly '3.83'; a value with a decimal separator becomes null (`number_unparseable`).
    """
    parsing = spec.parsing
    # Spaces, no-break spaces and the thousands separator go in one pass (one regex over the text
    # rather than a literal replace each: a third less work over a file's number columns). With a
    # trailing minus, the separator goes after it is moved, so "12-," stays unparseable.
    dropped_first = (
        [" ", "\u00a0"] if parsing.trailing_minus else [" ", "\u00a0", parsing.thousands_separator]
    )
    ignored = "".join(re.escape(char) for char in dropped_first if char)
    text = expr.str.replace_all(f"[{ignored}]", "")
    if parsing.trailing_minus:
        trailing = text.str.ends_with("-") & ~text.str.contains(r"^[+-]")
        text = (
            pl.when(trailing).then(pl.concat_str([pl.lit("-"), text.str.strip_suffix("-")])).otherwise(text)
        )
        if parsing.thousands_separator:
            text = text.str.replace_all(parsing.thousands_separator, "", literal=True)
    places = parsing.implied_places(field) if field else None
    if places is not None:
        return _implied_decimal_text(text, places, parsing.decimal_separator)
    if parsing.decimal_separator == ",":
        text = text.str.replace_all(",", ".", literal=True)
    return text.str.strip_prefix("+")


def _implied_decimal_text(text: pl.Expr, places: int, decimal_separator: str) -> pl.Expr:
    """Signed digits -> the same digits with a point `places` from the right; anything else -> null."""
    digits = text.str.extract(r"^[+-]?(\d+)$", 1)
    sign = pl.when(text.str.starts_with("-")).then(pl.lit("-")).otherwise(pl.lit(""))
    if places == 0:
        scaled = pl.concat_str([sign, digits])
    else:
        padded = digits.str.zfill(places + 1)
        scaled = pl.concat_str([sign, padded.str.head(-places), pl.lit("."), padded.str.slice(-places)])
    has_separator = text.str.contains(decimal_separator, literal=True)
    return pl.when(has_separator | digits.is_null()).then(pl.lit(None, dtype=pl.String)).otherwise(scaled)


ISO_RENDERING_FORMATS = ("xlsx", "json", "jsonl", "x12")
"""Formats whose readers render date values as ISO text (a workbook's date cells, JSON, X12): their
dates also parse as ISO, with or without a time part. Text formats parse only the spec's formats."""


def _parse_date(expr: pl.Expr, spec: FeedSpec) -> pl.Expr:
    if spec.format.type not in ISO_RENDERING_FORMATS:
        candidates = [expr.str.strptime(pl.Date, fmt, strict=False) for fmt in spec.parsing.date_formats]
        return pl.coalesce(candidates) if len(candidates) > 1 else candidates[0]
    formats = list(dict.fromkeys([*spec.parsing.date_formats, *ISO_DATE_FORMATS]))
    iso_date_part = (
        pl.when(expr.str.contains(r"^\d{4}-\d{2}-\d{2}[ T]")).then(expr.str.slice(0, 10)).otherwise(expr)
    )
    candidates = [expr.str.strptime(pl.Date, fmt, strict=False) for fmt in formats]
    candidates.append(iso_date_part.str.strptime(pl.Date, "%Y-%m-%d", strict=False))
    return pl.coalesce(candidates)


def map_source_columns(raw_records: pl.LazyFrame, spec: FeedSpec) -> pl.LazyFrame:
    """Pick each canonical field's source column (or constant), trimmed, as `raw__<field>` text.

    Source columns are kept as `src__<name>` for quarantine. A mapped column is read from the
    file column `transforms.drift.resolve_header` picks (the same name, or one differing only in
    case, spacing or punctuation, carried under the spec's name). A mapped column missing from a
    file with a header raises a ValueError naming it when a load needs its field
    (`transforms.drift.needed_fields`) and loads empty otherwise; from a file whose column names
    come from the spec, any missing mapped column raises.
    """
    present = raw_records.collect_schema().names()
    available = [name for name in present if name not in (SOURCE_ROW, READ_ERROR_COLUMN, ROW_KIND)]
    if has_named_header(spec.format):
        refusal = detect_drift(available, spec).refusal()
        if refusal:
            raise ValueError(refusal)
        respelled = {
            found: source for source, found in resolve_header(available, spec).items() if found != source
        }
        raw_records = raw_records.rename(respelled)
        available = [respelled.get(name, name) for name in available]
    else:
        missing = sorted({source for source in spec.columns.values() if source not in available})
        if missing:
            raise ValueError(
                f"the file has no column(s) {missing} that feed spec '{spec.id}' maps; "
                f"its columns are {available}. Fix `columns:` in the spec or check the file's header row."
            )
    fields: list[pl.Expr] = []
    for name in canonical_fields(spec):
        if name in spec.columns and spec.columns[name] in available:
            value = _clean_text(pl.col(spec.columns[name]))
        elif name in spec.constants:
            value = pl.lit(str(spec.constants[name]), dtype=pl.String)
        else:  # not reported, or (reported as drift) a column the file no longer has
            value = pl.lit(None, dtype=pl.String)
        fields.append(value.alias(raw(name)))
    if spec.dataset == "sellout" and "currency" not in spec.columns and "currency" not in spec.constants:
        fields = [f for f in fields if f.meta.output_name() != raw("currency")]
        fields.append(pl.lit(spec.currency).alias(raw("currency")))
    sources = [pl.col(name).alias(source_column(name)) for name in available]
    return raw_records.select(
        pl.col(SOURCE_ROW).cast(pl.Int32),
        pl.col(READ_ERROR_COLUMN).cast(pl.String),
        (pl.col(ROW_KIND) if ROW_KIND in present else pl.lit("data")).alias(ROW_KIND),
        *fields,
        *sources,
    )


def map_codes(
    code: pl.Expr, mapping: dict[str, MappedValue], default: MappedValue | None, dtype: pl.DataType
) -> pl.Expr:
    """`code` looked up in a spec's small `mapping` (`default` where it holds no entry): one `is_in`
    test per distinct value. `replace_strict` gives the same but holds the stream's rows in memory
    (an 867 of 1M line items: 140 MiB more for the transaction type alone)."""
    codes_by_value: dict[MappedValue, list[str]] = {}
    for key, value in mapping.items():
        codes_by_value.setdefault(value, []).append(key)
    mapped: pl.Expr = pl.lit(default, dtype=dtype)
    for value, codes in reversed(codes_by_value.items()):
        mapped = pl.when(code.is_in(codes)).then(pl.lit(value, dtype=dtype)).otherwise(mapped)
    return mapped


def _unit_factor(spec: FeedSpec) -> pl.Expr:
    if not spec.unit_factors:
        return pl.lit(1, dtype=pl.Int64)
    factors = {code.upper(): factor for code, factor in spec.unit_factors.items()}
    code = pl.col(raw("unit_of_measure")).str.to_uppercase()
    return map_codes(code, factors, 1, pl.Int64())


TEMPORARY_PREFIX = "_n__"
"""Intermediate columns of normalization, dropped before it returns."""
Stages = list[list[pl.Expr]]
"""Expressions applied one `with_columns` after another: a value several columns derive from is
computed once in an earlier stage, since the streaming engine evaluates a repeated sub-expression
again for every expression holding it (a quantity parsed four times took 3x the time of once)."""


def _temporary(name: str) -> str:
    return f"{TEMPORARY_PREFIX}{name}"


def _unit_factor_stage(spec: FeedSpec) -> tuple[list[pl.Expr], pl.Expr]:
    """The expressions of a first stage computing the unit factor, and the factor to use after it."""
    factor = _unit_factor(spec)
    if not spec.unit_factors:
        return [], factor
    return [factor.alias(_temporary("factor"))], pl.col(_temporary("factor"))


def _parse_sellout(spec: FeedSpec, customer_key_secret: str) -> Stages:
    factor_stage, factor = _unit_factor_stage(spec)
    quantity_number = _number_text(pl.col(raw("quantity")), spec, "quantity").cast(pl.Float64, strict=False)
    codes = transaction_code_map(spec)
    reported_code = pl.col(raw("transaction_type"))
    first: list[pl.Expr] = [
        *factor_stage,
        quantity_number.alias(_temporary("quantity")),
        _number_text(pl.col(raw("unit_price")), spec, "unit_price")
        .cast(UNIT_PRICE, strict=False)
        .alias(_temporary("reported_price")),
    ]
    mapped_type: pl.Expr = pl.lit(None, dtype=pl.String)
    if codes:
        first.append(
            map_codes(reported_code.str.to_uppercase(), codes, None, pl.String()).alias(_temporary("type"))
        )
        mapped_type = pl.col(_temporary("type"))
    sign: pl.Expr = pl.lit(1)
    second: list[pl.Expr] = [
        (pl.col(_temporary("reported_price")) / factor.cast(UNIT_PRICE))
        .cast(UNIT_PRICE)
        .alias(_temporary("unit_price")),
    ]
    if spec.returns.convention == "type_column":
        is_return_by_code = (mapped_type == "return").fill_null(False)
        sign = pl.when(is_return_by_code).then(-1).otherwise(1)
    units_of = pl.col(_temporary("quantity")).round(0).cast(pl.Int64, strict=False) * factor * sign
    second.append(units_of.alias(_temporary("units")))
    units = pl.col(_temporary("units"))
    net_reported = _number_text(pl.col(raw("net_amount")), spec, "net_amount").cast(AMOUNT, strict=False)
    net_computed = (units.cast(UNIT_PRICE) * pl.col(_temporary("unit_price"))).round(2).cast(AMOUNT)
    net_amount = (
        pl.when(pl.col(raw("net_amount")).is_not_null()).then(net_reported * sign).otherwise(net_computed)
    )
    transaction_type = (
        pl.when(mapped_type.is_not_null())
        .then(mapped_type)
        .when(units < 0)
        .then(pl.lit("return"))
        .otherwise(pl.lit("sale"))
    )
    transfer_code = pl.coalesce(pl.col(raw("transfer_code")), reported_code)
    postal = pl.col(raw("reseller_postal_code")).str.to_uppercase().str.replace_all(r"\s+", " ")
    last = [
        _parse_date(pl.col(raw("transaction_date")), spec).alias("transaction_date"),
        pl.col(raw("invoice_number")).alias("invoice_number"),
        _number_text(pl.col(raw("invoice_line")), spec).cast(pl.Int32, strict=False).alias("invoice_line"),
        transaction_type.alias("transaction_type"),
        transfer_code.alias("transfer_code"),
        pl.col(raw("reseller_name")).str.replace_all(r"\s+", " ").alias("reseller_name"),
        postal.alias("reseller_postal_code"),
        pl.col(raw("reseller_country")).str.to_uppercase().alias("reseller_country"),
        pl.col(raw("distributor_sku")).alias("distributor_sku"),
        pl.col(_temporary("quantity")).alias("quantity__number"),
        units.alias("quantity"),
        pl.col(_temporary("unit_price")).alias("unit_price"),
        pl.col(raw("currency")).str.to_uppercase().alias("currency"),
        net_amount.cast(AMOUNT).alias("net_amount"),
        (
            end_customer_key(customer_key_secret)
            if reports_end_customers(spec)
            else pl.lit(None, dtype=pl.String)  # no HMAC over millions of empty identities
        ).alias("end_customer_key"),
        pl.col(raw("end_customer_country")).str.to_uppercase().alias("end_customer_country"),
    ]
    return [first, second, last]


def _parse_inventory(spec: FeedSpec) -> Stages:
    factor_stage, factor = _unit_factor_stage(spec)
    first: list[pl.Expr] = list(factor_stage)
    last: list[pl.Expr] = [
        _parse_date(pl.col(raw("snapshot_date")), spec).alias("snapshot_date"),
        pl.col(raw("distributor_sku")).alias("distributor_sku"),
        pl.col(raw("location_id")).alias("location_id"),
    ]
    for name in ("quantity_on_hand", "quantity_on_order"):
        number = _number_text(pl.col(raw(name)), spec, name).cast(pl.Float64, strict=False)
        first.append(number.alias(_temporary(name)))
        last.append(pl.col(_temporary(name)).alias(f"{name}__number"))
        last.append((pl.col(_temporary(name)).round(0).cast(pl.Int64, strict=False) * factor).alias(name))
    return [first, last]


def reports_end_customers(spec: FeedSpec) -> bool:
    """True when the feed maps (or sets) any end-customer identity field."""
    return any(name in spec.columns or name in spec.constants for name in END_CUSTOMER_IDENTITY_FIELDS)


def end_customer_key(secret: str) -> pl.Expr:
    """HMAC-SHA256 of the end customer's normalized identity; null when no identity is reported.

    Identity = name, e-mail, phone and address, lower-cased and whitespace-collapsed, joined by a
    unit separator, so the same customer reported with different spacing or case gets one key.
    """
    parts = [
        pl.col(raw(name)).str.to_lowercase().str.replace_all(r"\s+", " ").fill_null("")
        for name in END_CUSTOMER_IDENTITY_FIELDS
    ]
    identity = pl.concat_str(parts, separator=KEY_SEPARATOR)
    any_reported = pl.any_horizontal(
        [pl.col(raw(name)).is_not_null() for name in END_CUSTOMER_IDENTITY_FIELDS]
    )
    return pl.when(any_reported).then(identity.chash.hmac_sha256(key=secret))


def line_id(distributor_id: str, natural_key: list[str]) -> pl.Expr:
    """SHA-256 hex of distributor_id and the line's natural key (source text of each key field).

    Built from the trimmed source text, not parsed values, so it is stable across library versions
    and parsing fixes; a unit separator keeps ('ab','c') apart from ('a','bc').
    """
    parts = [pl.lit(distributor_id), *[pl.col(raw(name)).fill_null("") for name in natural_key]]
    return pl.concat_str(parts, separator=KEY_SEPARATOR).chash.sha2_256()


def normalize_records(raw_records: pl.LazyFrame, spec: FeedSpec, *, customer_key_secret: str) -> pl.LazyFrame:
    """Raw reader output -> canonical typed columns, plus `raw__*`, `src__*`, `source_row`, `_read_error`."""
    normalized = map_source_columns(raw_records, spec)
    stages = (
        _parse_sellout(spec, customer_key_secret) if spec.dataset == "sellout" else _parse_inventory(spec)
    )
    stages[-1].append(line_id(spec.distributor_id, spec.natural_key).alias("line_id"))
    for stage in stages:
        if stage:
            normalized = normalized.with_columns(stage)
    temporary = [name for name in normalized.collect_schema().names() if name.startswith(TEMPORARY_PREFIX)]
    return normalized.drop(temporary)
