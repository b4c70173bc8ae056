"""The validation rules: one registry, the single source of truth for what a valid record is.

Each rule is named (the `quarantine.rule` value), says which records it applies to, and builds a
Polars expression that is True where a record passes. The same expressions feed two consumers:
`schemas.tables` wraps them as Pandera checks (the declared schema), and `transforms.validate`
evaluates them over the stream (the hot path). A test holds the two to the same verdicts.

The rules read the columns `transforms.normalize` produces: typed canonical columns under their
canonical names and the trimmed source text of each under `raw__<field>`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

import polars as pl
import pycountry

from schemas.feed_spec import FeedSpec

READ_ERROR_COLUMN = "_read_error"
DEFAULT_MAX_FIELD_CHARS = 4096
"""A mapped field longer than this is no value a distributor means (settings: max_field_chars)."""
EARLIEST_PLAUSIBLE_DATE = date(2000, 1, 1)
LATEST_PLAUSIBLE_DAYS_AHEAD = 31

ISO_4217_CODES: frozenset[str] = frozenset(currency.alpha_3 for currency in pycountry.currencies)
ISO_3166_ALPHA2_CODES: frozenset[str] = frozenset(country.alpha_2 for country in pycountry.countries)


def raw(field_name: str) -> str:
    """Name of the column holding a canonical field's trimmed source text."""
    return f"raw__{field_name}"


@dataclass(frozen=True)
class RuleContext:
    """What a rule may depend on besides the record: the feed spec and the load's date."""

    spec: FeedSpec
    as_of: date
    max_field_chars: int = DEFAULT_MAX_FIELD_CHARS

    @property
    def mapped_fields(self) -> tuple[str, ...]:
        return tuple(self.spec.columns)

    @property
    def dataset(self) -> str:
        return self.spec.dataset

    @property
    def date_field(self) -> str:
        return "transaction_date" if self.dataset == "sellout" else "snapshot_date"

    @property
    def required_fields(self) -> tuple[str, ...]:
        base = (
            ("transaction_date", "distributor_sku", "quantity")
            if self.dataset == "sellout"
            else ("snapshot_date", "distributor_sku", "quantity_on_hand")
        )
        return tuple(dict.fromkeys([*base, *self.spec.natural_key]))

    @property
    def quantity_fields(self) -> tuple[str, ...]:
        return ("quantity",) if self.dataset == "sellout" else ("quantity_on_hand", "quantity_on_order")

    @property
    def amount_fields(self) -> tuple[str, ...]:
        return ("unit_price", "net_amount") if self.dataset == "sellout" else ()

    @property
    def country_fields(self) -> tuple[str, ...]:
        return ("reseller_country", "end_customer_country") if self.dataset == "sellout" else ()


@dataclass(frozen=True)
class Rule:
    """A named check: `passes` is True where a record is valid (never null); `message` explains a failure."""

    name: str
    description: str
    passes: Callable[[RuleContext], pl.Expr]
    message: Callable[[RuleContext], pl.Expr]
    datasets: frozenset[str] = field(default_factory=lambda: frozenset({"sellout", "inventory"}))


def _present(column: str) -> pl.Expr:
    return pl.col(column).is_not_null()


def _names_where(condition_by_name: dict[str, pl.Expr]) -> pl.Expr:
    """A comma-separated list of the names whose condition holds (empty string when none)."""
    if not condition_by_name:
        return pl.lit("")
    return pl.concat_str(
        [pl.when(condition).then(pl.lit(name)) for name, condition in condition_by_name.items()],
        separator=", ",
        ignore_nulls=True,
    )


def _record_well_formed(_: RuleContext) -> pl.Expr:
    return pl.col(READ_ERROR_COLUMN).is_null()


def _record_malformed_message(_: RuleContext) -> pl.Expr:
    return pl.concat_str(
        [pl.col(READ_ERROR_COLUMN), pl.lit("; correct the record in the source file and send the file again")]
    )


def _field_short_enough_condition(name: str, limit: int) -> pl.Expr:
    return (pl.col(raw(name)).str.len_chars() <= limit).fill_null(True)


def _fields_short_enough(context: RuleContext) -> pl.Expr:
    if not context.mapped_fields:
        return pl.lit(True)
    return pl.all_horizontal(
        [_field_short_enough_condition(n, context.max_field_chars) for n in context.mapped_fields]
    )


def _field_too_long_message(context: RuleContext) -> pl.Expr:
    limit = context.max_field_chars
    values = [
        pl.when(~_field_short_enough_condition(name, limit)).then(
            pl.format("{} has {} characters", pl.lit(name), pl.col(raw(name)).str.len_chars())
        )
        for name in context.mapped_fields
    ]
    return pl.concat_str(
        [
            pl.concat_str(values, separator=", ", ignore_nulls=True),
            pl.lit(
                f", over the limit of {limit} (settings max_field_chars); the distributor must correct the record"
            ),
        ]
    )


def _required_present(context: RuleContext) -> pl.Expr:
    return pl.all_horizontal([_present(raw(name)) for name in context.required_fields])


def _required_message(context: RuleContext) -> pl.Expr:
    missing = _names_where({name: pl.col(raw(name)).is_null() for name in context.required_fields})
    return pl.concat_str(
        [pl.lit("required field(s) empty: "), missing, pl.lit("; the distributor must fill them")]
    )


def _date_parses(context: RuleContext) -> pl.Expr:
    column = context.date_field
    return pl.col(raw(column)).is_null() | pl.col(column).is_not_null()


def _date_unparseable_message(context: RuleContext) -> pl.Expr:
    formats = " or ".join(context.spec.parsing.date_formats)
    return pl.concat_str(
        [
            pl.lit(f"{context.date_field} '"),
            pl.col(raw(context.date_field)),
            pl.lit(
                f"' is not a date in the feed's format ({formats}); fix the value or the spec's parsing.date_formats"
            ),
        ]
    )


def _date_plausible(context: RuleContext) -> pl.Expr:
    column = pl.col(context.date_field)
    latest = context.as_of + timedelta(days=LATEST_PLAUSIBLE_DAYS_AHEAD)
    return (column.is_null() | column.is_between(EARLIEST_PLAUSIBLE_DATE, latest)).fill_null(True)


def _date_implausible_message(context: RuleContext) -> pl.Expr:
    latest = context.as_of + timedelta(days=LATEST_PLAUSIBLE_DAYS_AHEAD)
    return pl.concat_str(
        [
            pl.lit(f"{context.date_field} "),
            pl.col(context.date_field).cast(pl.String),
            pl.lit(f" is outside {EARLIEST_PLAUSIBLE_DATE} .. {latest}; check the date with the distributor"),
        ]
    )


def _quantity_integral_condition(column: str) -> pl.Expr:
    parsed = pl.col(f"{column}__number")
    return (pl.col(raw(column)).is_null() | (parsed.is_not_null() & (parsed == parsed.floor()))).fill_null(
        False
    )


def _quantities_integral(context: RuleContext) -> pl.Expr:
    return pl.all_horizontal([_quantity_integral_condition(name) for name in context.quantity_fields])


def _quantity_message(context: RuleContext) -> pl.Expr:
    bad = {name: ~_quantity_integral_condition(name) for name in context.quantity_fields}
    values = [
        pl.when(condition).then(pl.concat_str([pl.lit(f"{name} '"), pl.col(raw(name)), pl.lit("'")]))
        for name, condition in bad.items()
    ]
    return pl.concat_str(
        [
            pl.concat_str(values, separator=", ", ignore_nulls=True),
            pl.lit(" is not a whole number of units" + _implied_note(context, context.quantity_fields)),
        ]
    )


def _amount_parses_condition(column: str) -> pl.Expr:
    return pl.col(raw(column)).is_null() | pl.col(column).is_not_null()


def _amounts_parse(context: RuleContext) -> pl.Expr:
    if not context.amount_fields:
        return pl.lit(True)
    return pl.all_horizontal([_amount_parses_condition(name) for name in context.amount_fields])


def _amount_message(context: RuleContext) -> pl.Expr:
    parsing = context.spec.parsing
    values = [
        pl.when(~_amount_parses_condition(name)).then(
            pl.concat_str([pl.lit(f"{name} '"), pl.col(raw(name)), pl.lit("'")])
        )
        for name in context.amount_fields
    ]
    return pl.concat_str(
        [
            pl.concat_str(values, separator=", ", ignore_nulls=True),
            pl.lit(
                f" is not a number (decimal separator '{parsing.decimal_separator}', "
                f"thousands separator '{parsing.thousands_separator}'"
                + (", trailing minus allowed" if parsing.trailing_minus else "")
                + ")"
                + _implied_note(context, context.amount_fields)
            ),
        ]
    )


def _implied_note(context: RuleContext, fields: tuple[str, ...]) -> str:
    """What the spec's implied decimals expect of these fields ('' when it declares none for them)."""
    declared = {name: context.spec.parsing.implied_places(name) for name in fields}
    declared = {name: places for name, places in declared.items() if places is not None}
    if not declared:
        return ""
    listed = ", ".join(f"{name} {places}" for name, places in declared.items())
    places = next(iter(declared.values()))
    example = format(Decimal(383).scaleb(-places), "f")
    return (
        f"; the feed spec declares implied decimals ({listed}): write digits with an optional sign "
        f"and no decimal separator, e.g. '+00000000383' means {example} with {places} implied "
        "decimal(s); fix the value or the spec's parsing.implied_decimals"
    )


def _price_non_negative(_: RuleContext) -> pl.Expr:
    return (pl.col("unit_price").is_null() | (pl.col("unit_price") >= 0)).fill_null(True)


def _price_message(_: RuleContext) -> pl.Expr:
    return pl.concat_str(
        [
            pl.lit("unit_price "),
            pl.col("unit_price").cast(pl.String),
            pl.lit(" is negative; report returns and credits with a negative quantity instead"),
        ]
    )


def _unit_known(context: RuleContext) -> pl.Expr:
    if not context.spec.unit_factors:
        return pl.lit(True)
    known = [code.upper() for code in context.spec.unit_factors]
    code = pl.col(raw("unit_of_measure")).str.to_uppercase()
    return (code.is_null() | code.is_in(known)).fill_null(True)


def _unit_message(context: RuleContext) -> pl.Expr:
    known = ", ".join(sorted(context.spec.unit_factors))
    return pl.concat_str(
        [
            pl.lit("unit of measure '"),
            pl.col(raw("unit_of_measure")),
            pl.lit(f"' is not in the feed spec's unit_factors ({known}); add it to the spec"),
        ]
    )


def transaction_code_map(spec: FeedSpec) -> dict[str, str]:
    """The feed's own transaction codes (upper case) -> canonical transaction type."""
    types = spec.transaction_types
    if types is None:
        return {}
    mapping: dict[str, str] = {}
    for canonical, codes in (
        ("sale", types.sale),
        ("return", types.return_),
        ("price_adjustment", types.price_adjustment),
        ("other", types.other),
    ):
        mapping.update({code.upper(): canonical for code in codes})
    return mapping


def _transaction_type_known(context: RuleContext) -> pl.Expr:
    codes = transaction_code_map(context.spec)
    if context.dataset != "sellout" or not codes:
        return pl.lit(True)
    code = pl.col(raw("transaction_type")).str.to_uppercase()
    return (code.is_null() | code.is_in(list(codes))).fill_null(True)


def _transaction_type_message(context: RuleContext) -> pl.Expr:
    known = ", ".join(sorted(transaction_code_map(context.spec)))
    return pl.concat_str(
        [
            pl.lit("transaction type '"),
            pl.col(raw("transaction_type")),
            pl.lit(f"' is not in the feed spec's transaction_types ({known}); add it to the spec"),
        ]
    )


def _currency_valid(context: RuleContext) -> pl.Expr:
    if context.dataset != "sellout":
        return pl.lit(True)
    return pl.col("currency").is_null() | pl.col("currency").is_in(sorted(ISO_4217_CODES))


def _currency_message(_: RuleContext) -> pl.Expr:
    return pl.concat_str(
        [pl.lit("currency '"), pl.col("currency"), pl.lit("' is not an ISO 4217 code (e.g. USD, EUR, GBP)")]
    )


def _country_condition(column: str) -> pl.Expr:
    return pl.col(column).is_null() | pl.col(column).is_in(sorted(ISO_3166_ALPHA2_CODES))


def _countries_valid(context: RuleContext) -> pl.Expr:
    if not context.country_fields:
        return pl.lit(True)
    return pl.all_horizontal([_country_condition(name) for name in context.country_fields])


def _country_message(context: RuleContext) -> pl.Expr:
    values = [
        pl.when(~_country_condition(name)).then(
            pl.concat_str([pl.lit(f"{name} '"), pl.col(name), pl.lit("'")])
        )
        for name in context.country_fields
    ]
    return pl.concat_str(
        [
            pl.concat_str(values, separator=", ", ignore_nulls=True),
            pl.lit(" is not an ISO 3166-1 alpha-2 code (e.g. US, DE, GB)"),
        ]
    )


SELLOUT_ONLY = frozenset({"sellout"})

RULES: tuple[Rule, ...] = (
    Rule(
        "record_malformed",
        "the reader could parse the record",
        _record_well_formed,
        _record_malformed_message,
    ),
    Rule(
        "field_too_long",
        "mapped fields are at most max_field_chars characters",
        _fields_short_enough,
        _field_too_long_message,
    ),
    Rule("required_missing", "required fields are present", _required_present, _required_message),
    Rule(
        "date_unparseable", "the date parses with the feed's formats", _date_parses, _date_unparseable_message
    ),
    Rule(
        "date_implausible",
        "the date lies in 2000 .. 31 days ahead",
        _date_plausible,
        _date_implausible_message,
    ),
    Rule("quantity_not_integral", "quantities are whole numbers", _quantities_integral, _quantity_message),
    Rule(
        "number_unparseable", "prices and amounts are numbers", _amounts_parse, _amount_message, SELLOUT_ONLY
    ),
    Rule("price_negative", "unit prices are not negative", _price_non_negative, _price_message, SELLOUT_ONLY),
    Rule("unit_unknown", "the unit of measure is in the spec", _unit_known, _unit_message),
    Rule(
        "transaction_type_unknown",
        "the transaction code is in the spec",
        _transaction_type_known,
        _transaction_type_message,
        SELLOUT_ONLY,
    ),
    Rule(
        "currency_invalid",
        "the currency is an ISO 4217 code",
        _currency_valid,
        _currency_message,
        SELLOUT_ONLY,
    ),
    Rule(
        "country_invalid",
        "countries are ISO 3166-1 alpha-2 codes",
        _countries_valid,
        _country_message,
        SELLOUT_ONLY,
    ),
)
"""Every rule, in precedence order: a failing record is quarantined under the first rule it fails."""

RULE_NAMES: tuple[str, ...] = tuple(rule.name for rule in RULES)


def rules_for(context: RuleContext) -> tuple[Rule, ...]:
    """The rules that apply to the context's dataset, in precedence order."""
    return tuple(rule for rule in RULES if context.dataset in rule.datasets)
