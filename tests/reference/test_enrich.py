"""Enrichment of staging rows into core rows, and the test that tells a core row is out of date."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from reference import convert
from reference.enrich import Enrichment, enrich_inventory, enrich_sellout, stale_sellout_rows
from schemas.tables import INVENTORY_COLUMNS, SELLOUT_COLUMNS


def _sellout(rows: list[dict]) -> pl.LazyFrame:
    filled = [{name: row.get(name) for name in SELLOUT_COLUMNS} for row in rows]
    return pl.DataFrame(filled, schema=SELLOUT_COLUMNS).lazy()


LINE = {
    "line_id": "a",
    "distributor_id": "nw",
    "transaction_date": date(2026, 3, 7),  # a Saturday: no rate that day
    "reseller_name": "Acme Computing Ltd",
    "reseller_postal_code": None,
    "reseller_country": "GB",
    "distributor_sku": "CASE-12",
    "quantity": 2,
    "unit_price": Decimal("120.0000"),
    "currency": "EUR",
    "net_amount": Decimal("240.00"),
    "load_id": "L1",
    "source_row": 1,
}


def _enrichment(**changes) -> Enrichment:
    values = {
        "base_currency": "USD",
        "resolution": pl.DataFrame(
            {
                "distributor_id": ["nw"],
                "reseller_name": ["Acme Computing Ltd"],
                "reseller_postal_code": [None],
                "reseller_country": ["GB"],
                "partner_id": ["P1"],
            },
            schema={
                "distributor_id": pl.String,
                "reseller_name": pl.String,
                "reseller_postal_code": pl.String,
                "reseller_country": pl.String,
                "partner_id": pl.String,
            },
        ),
        "sku_map": pl.DataFrame(
            {
                "distributor_id": ["nw"],
                "distributor_sku": ["CASE-12"],
                "sku": ["CBL-1"],
                "units_per_distributor_unit": [12],
            }
        ),
        "fx_rates": pl.DataFrame(
            {
                "rate_date": [date(2026, 3, 5), date(2026, 3, 6), date(2026, 3, 9)],
                "currency": ["EUR", "EUR", "EUR"],
                "rate_to_base": [Decimal("1.05"), Decimal("1.10"), Decimal("2.00")],
            }
        ),
    }
    values.update(changes)
    return Enrichment(**values)


def test_a_case_of_twelve_becomes_twelve_units_and_the_value_is_unchanged() -> None:
    row = enrich_sellout(_sellout([LINE]), _enrichment()).collect().row(0, named=True)
    assert (row["partner_id"], row["sku"], row["units_per_distributor_unit"]) == ("P1", "CBL-1", 12)
    assert row["quantity"] == 24
    assert row["unit_price"] == Decimal("10.0000")
    assert row["net_amount"] == Decimal("240.00")


def test_the_latest_earlier_rate_converts_and_a_later_one_never_does() -> None:
    row = enrich_sellout(_sellout([LINE]), _enrichment()).collect().row(0, named=True)
    assert row["net_amount_base"] == Decimal("264.00")  # Friday's 1.10, not Monday's 2.00


def test_no_rate_on_or_before_the_date_leaves_null_and_the_base_currency_is_one() -> None:
    early = {**LINE, "line_id": "b", "transaction_date": date(2026, 3, 1)}
    usd = {**LINE, "line_id": "c", "currency": "USD", "net_amount": Decimal("99.99")}
    rows = enrich_sellout(_sellout([early, usd]), _enrichment()).collect()
    assert rows["net_amount_base"].to_list() == [None, Decimal("99.99")]


def test_unknown_reseller_and_part_number_stay_null_and_keep_their_values() -> None:
    other = {**LINE, "reseller_name": "Unknown Ltd", "distributor_sku": "X-1"}
    row = enrich_sellout(_sellout([other]), _enrichment()).collect().row(0, named=True)
    assert (row["partner_id"], row["sku"], row["units_per_distributor_unit"]) == (None, None, None)
    assert (row["quantity"], row["unit_price"]) == (2, Decimal("120.0000"))


def test_columns_and_row_order_are_kept() -> None:
    lines = [{**LINE, "line_id": str(i), "source_row": i, "reseller_name": f"R{i % 3}"} for i in range(50)]
    enriched = enrich_sellout(_sellout(lines), _enrichment()).collect()
    assert enriched.columns == list(SELLOUT_COLUMNS)
    assert enriched["line_id"].to_list() == [str(i) for i in range(50)]


def test_a_changed_mapping_makes_exactly_the_affected_rows_stale() -> None:
    other = {**LINE, "line_id": "d", "source_row": 2, "distributor_sku": "OTHER"}
    staging = _sellout([LINE, other])
    before = _enrichment()
    core = enrich_sellout(staging, before).collect()
    assert stale_sellout_rows(core.lazy(), before).collect().is_empty()
    remapped = _enrichment(
        sku_map=pl.DataFrame(
            {
                "distributor_id": ["nw"],
                "distributor_sku": ["CASE-12"],
                "sku": ["CBL-1"],
                "units_per_distributor_unit": [6],
            }
        )
    )
    stale = stale_sellout_rows(core.lazy(), remapped).collect()
    assert stale.rows() == [("L1", 1)]
    refreshed = enrich_sellout(staging, remapped).collect()
    assert refreshed["quantity"].to_list() == [12, 2]
    assert stale_sellout_rows(refreshed.lazy(), remapped).collect().is_empty()


def test_inventory_gets_the_sku_and_quantities_in_units() -> None:
    row = dict.fromkeys(INVENTORY_COLUMNS) | {
        "distributor_id": "nw",
        "distributor_sku": "CASE-12",
        "quantity_on_hand": 3,
        "quantity_on_order": None,
    }
    enriched = enrich_inventory(pl.DataFrame([row], schema=INVENTORY_COLUMNS).lazy(), _enrichment()).collect()
    assert (enriched["sku"][0], enriched["quantity_on_hand"][0], enriched["quantity_on_order"][0]) == (
        "CBL-1",
        36,
        None,
    )


DAYS = st.dates(min_value=date(2025, 12, 20), max_value=date(2026, 2, 10))


@settings(max_examples=60, deadline=None)
@given(
    rates=st.lists(
        st.tuples(DAYS, st.sampled_from(["EUR", "GBP", "USD"]), st.decimals("0.5", "2", places=4)),
        max_size=12,
        unique_by=lambda rate: (rate[0], rate[1]),
    ),
    lines=st.lists(
        st.tuples(
            st.one_of(st.none(), DAYS),
            st.one_of(st.none(), st.sampled_from(["EUR", "GBP", "USD", "JPY"])),
            st.decimals("-500", "500", places=2),
        ),
        min_size=1,
        max_size=25,
    ),
)
def test_the_streamed_base_amount_equals_the_as_of_conversion(rates, lines) -> None:
    """Enrichment's rate lookup (a calendar, no join) picks the rate `reference.fx.convert` picks:
    that day's or the latest earlier one, none before a currency's first rate, 1 for the base."""
    fx_rates = pl.DataFrame(
        [{"rate_date": day, "currency": currency, "rate_to_base": rate} for day, currency, rate in rates],
        schema={"rate_date": pl.Date, "currency": pl.String, "rate_to_base": pl.Decimal(20, 10)},
    )
    rows = _sellout(
        [
            {
                **LINE,
                "line_id": str(n),
                "source_row": n,
                "transaction_date": day,
                "currency": currency,
                "net_amount": amount,
            }
            for n, (day, currency, amount) in enumerate(lines)
        ]
    )
    enriched = enrich_sellout(rows, _enrichment(fx_rates=fx_rates)).collect()
    expected = convert(rows.collect(), fx_rates, "USD")
    assert enriched["net_amount_base"].to_list() == expected["net_amount_base"].to_list()
