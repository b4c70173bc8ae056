"""The rule registry: every rule fires on the record it should, and Pandera agrees with the stream."""

from __future__ import annotations

from datetime import date

import pandera.polars as pa
import polars as pl
import pytest

from schemas.feed_spec import FeedSpec
from schemas.rules import RULE_NAMES, RuleContext, rules_for
from schemas.tables import validation_schema
from transforms.normalize import normalize_records
from transforms.validate import RULE_COLUMN, describe_failures, flag_failures

SPEC = FeedSpec.model_validate(
    {
        "id": "acme",
        "name": "Acme",
        "country": "US",
        "currency": "USD",
        "file_patterns": ["*.csv"],
        "format": {"type": "csv"},
        "parsing": {"date_formats": ["%m/%d/%Y"], "thousands_separator": ","},
        "columns": {
            "transaction_date": "date",
            "invoice_number": "inv",
            "invoice_line": "line",
            "transaction_type": "type",
            "reseller_name": "reseller",
            "reseller_country": "country",
            "distributor_sku": "sku",
            "quantity": "qty",
            "unit_of_measure": "uom",
            "unit_price": "price",
            "currency": "cur",
            "net_amount": "amount",
            "end_customer_name": "customer",
        },
        "transaction_types": {"sale": ["S"], "return": ["R"]},
        "returns": {"convention": "type_column"},
        "unit_factors": {"EA": 1, "BX": 12},
        "natural_key": ["invoice_number", "invoice_line"],
    }
)
GOOD = {
    "date": "11/02/2026",
    "inv": "A1",
    "line": "1",
    "type": "S",
    "reseller": " Best  Buy ",
    "country": "us",
    "sku": "X-1",
    "qty": "2",
    "uom": "EA",
    "price": "1,200.50",
    "cur": "USD",
    "amount": "2,401.00",
    "customer": "Jane Doe",
}
CASES: list[tuple[dict[str, str | None], str | None]] = [
    ({}, None),
    ({"_read_error": "record has 3 fields, the header has 13"}, "record_malformed"),
    ({"reseller": "x" * 5000}, "field_too_long"),
    ({"sku": "  "}, "required_missing"),
    ({"date": "2026-13-45"}, "date_unparseable"),
    ({"date": "01/01/1999"}, "date_implausible"),
    ({"qty": "2.5"}, "quantity_not_integral"),
    ({"qty": "abc"}, "quantity_not_integral"),
    ({"price": "12,3x"}, "number_unparseable"),
    ({"price": "-1.00"}, "price_negative"),
    ({"uom": "PAL"}, "unit_unknown"),
    ({"type": "Z"}, "transaction_type_unknown"),
    ({"cur": "EURO"}, "currency_invalid"),
    ({"country": "UK"}, "country_invalid"),
    ({"sku": None, "qty": "2.5"}, "required_missing"),  # precedence: the first rule wins
]


def _raw_records() -> pl.LazyFrame:
    rows = []
    for index, (changes, _) in enumerate(CASES, start=1):
        row = {**GOOD, "source_row": index, "_read_error": None}
        row.update(changes)
        rows.append(row)
    return pl.LazyFrame(
        rows, schema={**dict.fromkeys(GOOD, pl.String), "source_row": pl.Int64, "_read_error": pl.String}
    )


@pytest.fixture
def flagged() -> pl.DataFrame:
    normalized = normalize_records(_raw_records(), SPEC, customer_key_secret="k" * 32)
    context = RuleContext(SPEC, date(2026, 11, 16))
    return describe_failures(flag_failures(normalized, context).collect(), context)


def test_each_rule_fires_on_its_record(flagged: pl.DataFrame) -> None:
    assert flagged[RULE_COLUMN].to_list() == [expected for _, expected in CASES]
    covered = {expected for _, expected in CASES if expected}
    assert covered == set(RULE_NAMES)


def test_messages_say_what_to_fix(flagged: pl.DataFrame) -> None:
    messages = dict(zip(flagged[RULE_COLUMN].to_list(), flagged["_message"].to_list(), strict=True))
    assert messages[None] is None
    assert "distributor_sku" in messages["required_missing"]
    assert "2026-13-45" in messages["date_unparseable"] and "%m/%d/%Y" in messages["date_unparseable"]
    assert "'PAL'" in messages["unit_unknown"] and "BX" in messages["unit_unknown"]
    assert "reseller_country 'UK'" in messages["country_invalid"]
    assert messages["field_too_long"] == (
        "reseller_name has 5000 characters, over the limit of 4096 (settings max_field_chars); "
        "the distributor must correct the record"
    )


def test_valid_record_is_normalized(flagged: pl.DataFrame) -> None:
    good = flagged.row(0, named=True)
    assert good["transaction_date"] == date(2026, 11, 2)
    assert good["quantity"] == 2
    assert str(good["unit_price"]) == "1200.5000"
    assert str(good["net_amount"]) == "2401.00"
    assert good["reseller_name"] == "Best Buy"
    assert good["reseller_country"] == "US"
    assert good["transaction_type"] == "sale"
    assert len(good["line_id"]) == 64
    assert len(good["end_customer_key"]) == 64


def test_pandera_schema_agrees_with_stream(flagged: pl.DataFrame) -> None:
    """Per rule, the records Pandera reports failing are exactly those the stream expressions flag."""
    context = RuleContext(SPEC, date(2026, 11, 16))
    schema = validation_schema(context)
    with pytest.raises(pa.errors.SchemaErrors) as raised:
        schema.validate(flagged, lazy=True)
    failures = raised.value.failure_cases
    by_pandera = {
        rule.name: set(failures.filter(pl.col("check") == rule.name)["index"].to_list())
        for rule in rules_for(context)
    }
    by_stream = {
        rule.name: set(flagged.with_row_index().filter(~rule.passes(context))["index"].to_list())
        for rule in rules_for(context)
    }
    assert by_pandera == by_stream
    assert all(by_stream[name] for name in RULE_NAMES)  # every rule was exercised


def test_pandera_passes_clean_records(flagged: pl.DataFrame) -> None:
    context = RuleContext(SPEC, date(2026, 11, 16))
    clean = flagged.filter(pl.col(RULE_COLUMN).is_null())
    validation_schema(context).validate(clean, lazy=True)
