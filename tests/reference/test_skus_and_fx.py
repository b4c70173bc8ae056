"""SKU mapping (pack sizes, exact Decimal) and currency conversion (as-of rates, missing ones flagged)."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from reference import convert, map_skus
from sampledata.generator import DISTRIBUTOR_SKUS

UNIT_PRICE = pl.Decimal(18, 4)
AMOUNT = pl.Decimal(18, 2)
RATE = pl.Decimal(20, 10)


def _lines(*rows: tuple[str, str, int, str]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "distributor_id": [r[0] for r in rows],
            "distributor_sku": [r[1] for r in rows],
            "quantity": pl.Series([r[2] for r in rows], dtype=pl.Int64),
            "unit_price": pl.Series([Decimal(r[3]) for r in rows], dtype=UNIT_PRICE),
            "line": list(range(len(rows))),
        }
    )


SKU_MAP = pl.DataFrame(
    [("d1", "CASE12", "CBL", 12), ("d1", "EACH", "CBL", 1), ("d1", "PACK7", "PSU", 7)],
    schema=["distributor_id", "distributor_sku", "sku", "units_per_distributor_unit"],
    orient="row",
)


def test_pack_sizes_multiply_quantity_and_divide_price_exactly() -> None:
    result = map_skus(
        _lines(
            ("d1", "CASE12", 3, "59.88"),  # 3 cases of 12 at 59.88 -> 36 units at 4.99
            ("d1", "CASE12", -1, "10.00"),  # a returned case: -12 units at 0.8333 (10/12, half to even)
            ("d1", "EACH", 5, "4.9900"),
            ("d1", "PACK7", 2, "1.0000"),  # 1/7 = 0.142857... -> 0.1429
            ("d2", "CASE12", 4, "50.00"),  # another distributor's part number: unmapped
            ("d1", "UNKNOWN", 2, "9.99"),
        ),
        SKU_MAP,
    )
    assert isinstance(result, pl.DataFrame)
    assert result["line"].to_list() == list(range(6))
    assert result["sku"].to_list() == ["CBL", "CBL", "CBL", "PSU", None, None]
    assert result["units_per_distributor_unit"].to_list() == [12, 12, 1, 7, None, None]
    assert result["quantity"].to_list() == [36, -12, 5, 14, 4, 2]
    assert result["unit_price"].to_list() == [
        Decimal(x) for x in ("4.99", "0.8333", "4.99", "0.1429", "50", "9.99")
    ]
    assert result.schema["unit_price"] == UNIT_PRICE and result.schema["quantity"] == pl.Int64


def test_map_skus_keeps_a_lazy_frame_lazy() -> None:
    result = map_skus(_lines(("d1", "CASE12", 1, "12")).lazy(), SKU_MAP)
    assert isinstance(result, pl.LazyFrame)
    assert result.collect()["unit_price"].to_list() == [Decimal("1")]


@settings(max_examples=200, deadline=None)
@given(
    price=st.decimals(
        min_value=0, max_value=Decimal("99999999"), places=4, allow_nan=False, allow_infinity=False
    ),
    units=st.integers(1, 100_000),
    quantity=st.integers(-10_000, 10_000),
)
def test_unit_conversion_equals_python_decimal(price: Decimal, units: int, quantity: int) -> None:
    sku_map = pl.DataFrame(
        {
            "distributor_id": ["d"],
            "distributor_sku": ["p"],
            "sku": ["s"],
            "units_per_distributor_unit": [units],
        }
    )
    row = map_skus(_lines(("d", "p", quantity, str(price))), sku_map).row(0, named=True)
    assert row["quantity"] == quantity * units
    assert row["unit_price"] == (price / units).quantize(Decimal("0.0001"), ROUND_HALF_EVEN)


def test_sample_sku_map_maps_every_distributor_part_number(reference, truth) -> None:
    lines = _lines(*[(d, part, 2, "10.00") for d, skus in DISTRIBUTOR_SKUS.items() for part in skus.values()])
    result = map_skus(lines, reference.sku_map)
    assert result["sku"].null_count() == 0
    expected = [sku for skus in DISTRIBUTOR_SKUS.values() for sku in skus]
    assert result["sku"].to_list() == expected
    pack = map_skus(_lines(("northwind_us", "NW-100336-12", 1, "59.88")), reference.sku_map).row(
        0, named=True
    )
    assert (pack["sku"], pack["quantity"], pack["unit_price"]) == ("CBL-C6-3M", 12, Decimal("4.99"))
    assert truth.sku_map["northwind_us"]["NW-100336-12"] == ("CBL-C6-3M", 12)


# --------------------------------------------------------------------------------------------------
# Currency.

RATES = pl.DataFrame(
    {
        "rate_date": [date(2026, 1, 2), date(2026, 1, 5), date(2026, 1, 2), date(2026, 1, 9)],
        "currency": ["EUR", "EUR", "GBP", "GBP"],
        "rate_to_base": pl.Series(
            [Decimal("1.10"), Decimal("1.20"), Decimal("1.25"), Decimal("1.30")], dtype=RATE
        ),
    }
)


def _amounts(*rows: tuple[date | None, str | None, str | None]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "transaction_date": pl.Series([r[0] for r in rows], dtype=pl.Date),
            "currency": pl.Series([r[1] for r in rows], dtype=pl.String),
            "net_amount": pl.Series([None if r[2] is None else Decimal(r[2]) for r in rows], dtype=AMOUNT),
            "line": list(range(len(rows))),
        }
    )


def test_rate_of_the_day_or_the_latest_earlier_one_never_a_later_one() -> None:
    result = convert(
        _amounts(
            (date(2026, 1, 5), "EUR", "100.00"),  # that day's rate
            (date(2026, 1, 4), "EUR", "100.00"),  # a Sunday: Friday's rate
            (date(2026, 1, 1), "EUR", "100.00"),  # before the first rate: missing, never the later one
            (date(2026, 1, 8), "GBP", "-10.00"),  # GBP's own series: its 2 January rate
            (date(2026, 1, 8), "USD", "7.77"),  # the base currency: rate 1
            (date(2026, 1, 8), "JPY", "100"),  # no rates at all for it
            (None, "EUR", "1.00"),  # no date
            (date(2026, 1, 8), None, "1.00"),  # no currency
            (date(2026, 1, 8), "EUR", None),  # no amount: nothing to convert, nothing missing
        ),
        RATES,
        "USD",
    )
    assert result["line"].to_list() == list(range(9))
    assert result["fx_rate_date"].to_list() == [
        date(2026, 1, 5),
        date(2026, 1, 2),
        None,
        date(2026, 1, 2),
        None,
        None,
        None,
        None,
        date(2026, 1, 5),
    ]
    assert result["net_amount_base"].to_list() == [
        Decimal("120.00"),
        Decimal("110.00"),
        None,
        Decimal("-12.50"),
        Decimal("7.77"),
        None,
        None,
        None,
        None,
    ]
    assert result["fx_missing"].to_list() == [False, False, True, False, False, True, True, True, False]
    assert result.schema["net_amount_base"] == AMOUNT and result.schema["fx_rate"] == RATE


def test_a_stale_rate_can_be_refused() -> None:
    lines = _amounts((date(2026, 3, 1), "EUR", "10.00"), (date(2026, 1, 6), "EUR", "10.00"))
    assert convert(lines, RATES, "USD")["fx_missing"].to_list() == [False, False]
    assert convert(lines, RATES, "USD", max_age_days=30)["fx_missing"].to_list() == [True, False]


def test_another_base_currency() -> None:
    result = convert(
        _amounts((date(2026, 1, 5), "EUR", "3.00"), (date(2026, 1, 5), "USD", "3.00")),
        RATES.filter(pl.col("currency") == "EUR"),
        "EUR",
    )
    assert result["net_amount_base"].to_list() == [Decimal("3.00"), None]
    assert result["fx_missing"].to_list() == [False, True]


@settings(max_examples=200, deadline=None)
@given(
    amount=st.decimals(
        min_value=Decimal("-9999999999"),
        max_value=Decimal("9999999999"),
        places=2,
        allow_nan=False,
        allow_infinity=False,
    ),
    rate=st.decimals(
        min_value=Decimal("0.0000000001"),
        max_value=Decimal("9999"),
        places=10,
        allow_nan=False,
        allow_infinity=False,
    ),
)
def test_conversion_rounds_the_exact_product_half_to_even(amount: Decimal, rate: Decimal) -> None:
    rates = pl.DataFrame(
        {"rate_date": [date(2026, 1, 1)], "currency": ["EUR"], "rate_to_base": pl.Series([rate], dtype=RATE)}
    )
    row = convert(_amounts((date(2026, 1, 1), "EUR", str(amount))), rates, "USD").row(0, named=True)
    assert row["net_amount_base"] == (amount * rate).quantize(Decimal("0.01"), ROUND_HALF_EVEN)


def test_sample_rates_cover_every_sample_line_and_a_removed_rate_is_an_exception(
    reference, truth, sample_truth
) -> None:
    lines = pl.DataFrame(
        {
            "transaction_date": [line.transaction_date for line in sample_truth.sellout_lines],
            "currency": [line.currency for line in sample_truth.sellout_lines],
            "net_amount": pl.Series([line.net_amount for line in sample_truth.sellout_lines], dtype=AMOUNT),
        }
    )
    assert set(lines["currency"]) - {"USD"} <= set(reference.fx_rates["currency"])
    result = convert(lines, reference.fx_rates, reference.base_currency)
    assert result["fx_missing"].sum() == 0 and result["net_amount_base"].null_count() == 0
    for row in result.iter_rows(named=True):
        rate = truth.rate_on(row["currency"], row["transaction_date"])
        assert row["net_amount_base"] == (row["net_amount"] * rate).quantize(Decimal("0.01"), ROUND_HALF_EVEN)
    # Every transaction date of the sample has its own rate (business days): no carry-over needed.
    assert (
        result.filter(pl.col("currency") != "USD")
        .filter(pl.col("fx_rate_date") != pl.col("transaction_date"))
        .height
        == 0
    )

    # Without GBP rates every GBP line is an exception (null amount, flagged), and only those.
    gbp = lines.filter(pl.col("currency") == "GBP")
    broken = convert(lines, reference.fx_rates.filter(pl.col("currency") != "GBP"), "USD")
    assert broken["fx_missing"].sum() == gbp.height > 0
    assert broken.filter(pl.col("fx_missing"))["currency"].unique().to_list() == ["GBP"]
    assert broken.filter(pl.col("fx_missing"))["net_amount_base"].null_count() == gbp.height

    # One day's rate removed: that day's lines take the previous business day's rate instead.
    day = gbp["transaction_date"].max()
    one_less = reference.fx_rates.filter(~((pl.col("currency") == "GBP") & (pl.col("rate_date") == day)))
    carried = convert(lines, one_less, "USD").filter(
        (pl.col("currency") == "GBP") & (pl.col("transaction_date") == day)
    )
    assert carried.height > 0 and (carried["fx_rate_date"] < day).all() and not carried["fx_missing"].any()
