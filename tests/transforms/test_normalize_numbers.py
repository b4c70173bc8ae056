"""Number parsing: implied decimals placed exactly, signs in front or behind, refusals quarantined."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import polars as pl
import pytest

from schemas.feed_spec import FeedSpec
from schemas.rules import RuleContext
from transforms.normalize import TEMPORARY_PREFIX, normalize_records
from transforms.validate import RULE_COLUMN, describe_failures, flag_failures

SELLOUT: dict[str, Any] = {
    "id": "mainframe",
    "name": "Mainframe Distribution",
    "country": "US",
    "currency": "USD",
    "file_patterns": ["MF_*.txt"],
    "format": {"type": "csv"},
    "parsing": {"date_formats": ["%Y%m%d"]},
    "columns": {
        "transaction_date": "date",
        "invoice_number": "inv",
        "distributor_sku": "sku",
        "quantity": "qty",
        "unit_price": "price",
        "net_amount": "amount",
    },
    "natural_key": ["invoice_number"],
}
AS_OF = date(2026, 11, 16)


def _spec(**parsing: Any) -> FeedSpec:
    return FeedSpec.model_validate({**SELLOUT, "parsing": {**SELLOUT["parsing"], **parsing}})


def _flagged(spec: FeedSpec, rows: list[dict[str, str]]) -> pl.DataFrame:
    base = {"date": "20261102", "inv": "A1", "sku": "X-1", "qty": "1", "price": "1", "amount": "1"}
    records = [{**base, **row, "inv": f"A{index}"} for index, row in enumerate(rows)]
    raw = pl.LazyFrame(
        [{**record, "source_row": index + 1, "_read_error": None} for index, record in enumerate(records)],
        schema={**dict.fromkeys(base, pl.String), "source_row": pl.Int64, "_read_error": pl.String},
    )
    context = RuleContext(spec, AS_OF)
    normalized = normalize_records(raw, spec, customer_key_secret="k" * 32)
    return describe_failures(flag_failures(normalized, context).collect(), context)


@pytest.mark.parametrize(
    ("price", "amount", "unit_price", "net_amount"),
    [
        ("+00000000383", "+00000000766", Decimal("3.8300"), Decimal("7.66")),
        ("00000000383", "-00000000766", Decimal("3.8300"), Decimal("-7.66")),
        ("5", "1", Decimal("0.0500"), Decimal("0.01")),
        ("+0", "0000", Decimal("0.0000"), Decimal("0.00")),
        (
            "1234567890123456",
            "999999999999999999",
            Decimal("12345678901234.5600"),
            Decimal("9999999999999999.99"),
        ),
    ],
)
def test_implied_decimals_are_exact(
    price: str, amount: str, unit_price: Decimal, net_amount: Decimal
) -> None:
    flagged = _flagged(
        _spec(implied_decimals={"unit_price": 2, "net_amount": 2}), [{"price": price, "amount": amount}]
    )
    row = flagged.row(0, named=True)
    assert row[RULE_COLUMN] is None, row["_message"]
    assert row["unit_price"] == unit_price and row["net_amount"] == net_amount


def test_implied_decimals_per_field() -> None:
    spec = _spec(implied_decimals={"quantity": 3, "unit_price": 4, "net_amount": 0})
    flagged = _flagged(spec, [{"qty": "+000012000", "price": "38345", "amount": "+46"}])
    row = flagged.row(0, named=True)
    assert (row["quantity"], row["unit_price"], row["net_amount"]) == (
        12,
        Decimal("3.8345"),
        Decimal("46.00"),
    )


def test_implied_decimals_beyond_the_column_scale_round_to_it() -> None:
    flagged = _flagged(_spec(implied_decimals={"unit_price": 6}), [{"price": "+0003834550"}])
    assert flagged.row(0, named=True)["unit_price"] == Decimal("3.8346")


@pytest.mark.parametrize("price", ["3.83", "+3.83", "1e5", "12a", "3,83", "--383"])
def test_value_not_in_implied_form_is_quarantined_with_a_message(price: str) -> None:
    spec = _spec(implied_decimals={"unit_price": 2, "net_amount": 2})
    flagged = _flagged(spec, [{"price": price, "amount": "+00000000766"}])
    row = flagged.row(0, named=True)
    assert row["unit_price"] is None
    assert row[RULE_COLUMN] == "number_unparseable"
    assert row["_message"] == (
        f"unit_price '{price}' is not a number (decimal separator '.', thousands separator ''); "
        "the feed spec declares implied decimals (unit_price 2, net_amount 2): write digits with an "
        "optional sign and no decimal separator, e.g. '+00000000383' means 3.83 with 2 implied "
        "decimal(s); fix the value or the spec's parsing.implied_decimals"
    )


def test_decimal_comma_feed_refuses_a_comma_when_decimals_are_implied() -> None:
    spec = _spec(decimal_separator=",", thousands_separator=".", implied_decimals={"net_amount": 2})
    flagged = _flagged(spec, [{"amount": "1.234"}, {"amount": "12,34"}])
    assert flagged["net_amount"].to_list() == [Decimal("12.34"), None]
    assert flagged[RULE_COLUMN].to_list() == [None, "number_unparseable"]


def test_quantity_with_separator_under_implied_decimals_is_quarantined() -> None:
    spec = _spec(implied_decimals={"quantity": 2})
    flagged = _flagged(spec, [{"qty": "+0000001200"}, {"qty": "12.00"}, {"qty": "+0000001250"}])
    assert flagged["quantity"].to_list()[0] == 12
    assert flagged[RULE_COLUMN].to_list() == [None, "quantity_not_integral", "quantity_not_integral"]
    assert flagged["_message"][1] == (
        "quantity '12.00' is not a whole number of units; the feed spec declares implied decimals "
        "(quantity 2): write digits with an optional sign and no decimal separator, e.g. "
        "'+00000000383' means 3.83 with 2 implied decimal(s); fix the value or the spec's "
        "parsing.implied_decimals"
    )


def test_without_implied_decimals_numbers_keep_their_point() -> None:
    flagged = _flagged(_spec(), [{"price": "+00000000383", "amount": "3.83"}])
    row = flagged.row(0, named=True)
    assert (row["unit_price"], row["net_amount"]) == (Decimal("383.0000"), Decimal("3.83"))


@pytest.mark.parametrize(
    ("qty", "price", "amount", "expected"),
    [
        ("+2", "+1.50", "+3.00", (2, Decimal("1.5000"), Decimal("3.00"))),
        ("+ 2", "+1,200.50", "+2,401.00", (2, Decimal("1200.5000"), Decimal("2401.00"))),
        ("-2", "1.50", "-3.00", (-2, Decimal("1.5000"), Decimal("-3.00"))),
    ],
)
def test_leading_plus_is_accepted_everywhere(
    qty: str, price: str, amount: str, expected: tuple[int, Decimal, Decimal]
) -> None:
    flagged = _flagged(_spec(thousands_separator=","), [{"qty": qty, "price": price, "amount": amount}])
    row = flagged.row(0, named=True)
    assert row[RULE_COLUMN] is None, row["_message"]
    assert (row["quantity"], row["unit_price"], row["net_amount"]) == expected


@pytest.mark.parametrize(
    ("decimal", "thousands", "price", "amount"),
    [
        (".", ",", "1,234.50", "12,345.00"),
        (",", ".", "1.234,50", "12.345,00"),
        (",", " ", "1 234,50", "12\u00a0345,00"),
        (".", "'", "1'234.50", "12'345.00"),
        (".", "", "1 234.50", "12\u00a0345.00"),
    ],
)
def test_every_thousands_separator_and_space_is_ignored(
    decimal: str, thousands: str, price: str, amount: str
) -> None:
    """Spaces, no-break spaces and the spec's thousands separator (whichever it is) are dropped in
    one pass; the decimal separator stays."""
    spec = _spec(decimal_separator=decimal, thousands_separator=thousands)
    flagged = _flagged(spec, [{"qty": " 10 ", "price": price, "amount": amount}])
    row = flagged.row(0, named=True)
    assert row[RULE_COLUMN] is None, row["_message"]
    assert (row["quantity"], row["unit_price"], row["net_amount"]) == (
        10,
        Decimal("1234.5000"),
        Decimal("12345.00"),
    )
    assert not [name for name in flagged.columns if name.startswith(TEMPORARY_PREFIX)]


def test_a_thousands_separator_only_counts_as_the_spec_names_it() -> None:
    """With "." as thousands separator, a "'" is no separator: the value is quarantined, not read."""
    flagged = _flagged(_spec(decimal_separator=",", thousands_separator="."), [{"price": "1'234,50"}])
    assert flagged.row(0, named=True)[RULE_COLUMN] == "number_unparseable"


def test_a_thousands_separator_behind_a_trailing_minus_is_no_number() -> None:
    spec = _spec(trailing_minus=True, thousands_separator=",")
    flagged = _flagged(spec, [{"price": "1,234-"}, {"price": "12-,"}])
    assert flagged.row(0, named=True)["unit_price"] == Decimal("-1234")
    assert flagged.row(1, named=True)[RULE_COLUMN] == "number_unparseable"


def test_trailing_minus_when_the_spec_says_so() -> None:
    spec = _spec(trailing_minus=True, implied_decimals={"net_amount": 2})
    flagged = _flagged(
        spec,
        [
            {"qty": "2-", "amount": "00000766-"},
            {"qty": "2", "amount": "+00000766"},
            {"qty": "-2", "amount": "-00000766"},
            {"qty": "2", "amount": "766-", "price": "1.50-"},
        ],
    )
    assert flagged["quantity"].to_list() == [-2, 2, -2, 2]
    assert flagged["net_amount"].to_list() == [
        Decimal("-7.66"),
        Decimal("7.66"),
        Decimal("-7.66"),
        Decimal("-7.66"),
    ]
    assert flagged["unit_price"][3] == Decimal("-1.5000")
    assert flagged[RULE_COLUMN].to_list() == [None, None, None, "price_negative"]


@pytest.mark.parametrize("amount", ["766-", "-766-", "+766-"])
def test_trailing_minus_is_refused_unless_declared(amount: str) -> None:
    flagged = _flagged(_spec(trailing_minus=amount != "766-"), [{"amount": amount}])
    row = flagged.row(0, named=True)
    assert row["net_amount"] is None and row[RULE_COLUMN] == "number_unparseable"
    assert row["_message"].startswith(f"net_amount '{amount}' is not a number (decimal separator '.'")


def test_trailing_minus_is_mentioned_in_the_number_message() -> None:
    flagged = _flagged(_spec(trailing_minus=True), [{"amount": "abc"}])
    assert flagged["_message"][0] == (
        "net_amount 'abc' is not a number (decimal separator '.', thousands separator '', trailing minus allowed)"
    )


def test_inventory_quantities_take_implied_decimals() -> None:
    spec = FeedSpec.model_validate(
        {
            **SELLOUT,
            "dataset": "inventory",
            "columns": {
                "snapshot_date": "date",
                "distributor_sku": "sku",
                "quantity_on_hand": "qty",
                "quantity_on_order": "price",
            },
            "natural_key": ["distributor_sku"],
            "parsing": {
                "date_formats": ["%Y%m%d"],
                "implied_decimals": {"quantity_on_hand": 2},
                "trailing_minus": True,
            },
        }
    )
    flagged = _flagged(spec, [{"qty": "+0001200", "price": "7-"}])
    row = flagged.row(0, named=True)
    assert (row["quantity_on_hand"], row["quantity_on_order"], row[RULE_COLUMN]) == (12, -7, None)
