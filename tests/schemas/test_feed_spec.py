"""Feed specs: good YAML loads; bad YAML is refused naming the file, the field and what is allowed."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from sampledata.generator import feed_spec_paths
from schemas.feed_spec import (
    SELLOUT_FIELDS,
    FeedSpec,
    FeedSpecError,
    PeriodGuards,
    X12Format,
    load_feed_spec,
    load_feed_specs,
    load_spec_catalog,
    validate_distributor_id,
)

MINIMAL = """
id: acme_us
name: Acme US
country: US
currency: USD
file_patterns: ["ACME_*.csv"]
format: {type: csv, delimiter: ";"}
columns: {transaction_date: Date, distributor_sku: Part, quantity: Qty, invoice_number: Inv}
natural_key: [invoice_number]
period: {pattern: 'ACME_(?P<period>\\d{8})', format: '%Y%m%d'}
"""


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_minimal_spec_loads(tmp_path: Path) -> None:
    spec = load_feed_spec(_write(tmp_path, "acme.yaml", MINIMAL))
    assert spec.distributor_id == "acme_us"
    assert spec.format.type == "csv" and spec.format.delimiter == ";"
    assert spec.matches("acme_20261102.CSV") and not spec.matches("other.csv")
    assert spec.period is not None and spec.period.period_of("ACME_20261102.csv") == date(2026, 11, 2)
    assert len(spec.version) == 16


def test_version_changes_with_content(tmp_path: Path) -> None:
    first = load_feed_spec(_write(tmp_path, "a.yaml", MINIMAL))
    second = load_feed_spec(_write(tmp_path, "b.yaml", MINIMAL.replace('";"', '","')))
    assert first.version != second.version


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("format: {type: csv", "format: {type: parquet"), ["format", "csv"]),
        (("quantity: Qty", "quantity: Qty, colour: C"), ["columns", "colour", "allowed for sellout"]),
        (("natural_key: [invoice_number]", "natural_key: [invoice_line]"), ["natural_key", "invoice_line"]),
        (("country: US", "country: USA"), ["country", "pattern"]),
        (("(?P<period>", "("), ["period.pattern", "(?P<period>"]),
        (("name: Acme US\n", "name: Acme US\nnmae: typo\n"), ["nmae: unknown key; allowed keys here: id,"]),
    ],
)
def test_bad_spec_names_file_field_and_allowed(
    tmp_path: Path, change: tuple[str, str], expected: list[str]
) -> None:
    path = _write(tmp_path, "bad.yaml", MINIMAL.replace(*change))
    with pytest.raises(FeedSpecError) as raised:
        load_feed_spec(path)
    message = str(raised.value)
    assert str(path) in message
    for fragment in expected:
        assert fragment in message


def test_folder_reports_every_bad_file(tmp_path: Path) -> None:
    _write(tmp_path, "good.yaml", MINIMAL)
    _write(tmp_path, "broken.yaml", "id: [unclosed")
    _write(tmp_path, "list.yaml", "- a\n- b\n")
    with pytest.raises(FeedSpecError) as raised:
        load_feed_specs(tmp_path)
    message = str(raised.value)
    assert "broken.yaml: not valid YAML" in message
    assert "list.yaml: a feed spec is a YAML mapping" in message


def _problems(tmp_path: Path, text: str) -> list[str]:
    path = _write(tmp_path, "bad.yaml", text)
    with pytest.raises(FeedSpecError) as raised:
        load_feed_spec(path)
    lines = str(raised.value).splitlines()
    assert all(line.startswith(f"{path}: ") for line in lines), lines
    return [line.removeprefix(f"{path}: ") for line in lines]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ('delimiter: ";"', 'delimter: ";"'),
            "format.delimter: unknown key; allowed keys here: type, encoding, delimiter, quote_char, "
            "escape_char, skip_rows, has_header, column_names, footer_rows, comment_prefix",
        ),
        (
            ('format: {type: csv, delimiter: ";"}', 'format: {type: xlsx, delimiter: ";"}'),
            "format.delimiter: unknown key; allowed keys here: type, sheet, header_row, footer_rows",
        ),
        (
            ('format: {type: csv, delimiter: ";"}', "format: {type: x12, transaction: '867'}"),
            "format.transaction: unknown key; allowed keys here: " + ", ".join(X12Format.model_fields),
        ),
        (
            (
                'format: {type: csv, delimiter: ";"}',
                "format: {type: fixed_width, columns: [{name: a, start: 1, wdth: 2}]}",
            ),
            "format.columns[0].wdth: unknown key; allowed keys here: name, start, width",
        ),
        (
            ("natural_key:", "parsing: {decimal_sep: ','}\nnatural_key:"),
            "parsing.decimal_sep: unknown key; allowed keys here: decimal_separator, thousands_separator, "
            "date_formats, implied_decimals, trailing_minus",
        ),
        (
            ("natural_key:", "transaction_types: {retrun: [R]}\nnatural_key:"),
            "transaction_types.retrun: unknown key; allowed keys here: sale, return, price_adjustment, other",
        ),
        (
            ("natural_key:", "guards: {max_shrink: 10}\nnatural_key:"),
            "guards.max_shrink: unknown key; allowed keys here: max_shrink_pct, allow_empty_restatement",
        ),
        (
            ("format: {type: csv", "format: {type: parquet"),
            "format.type: 'parquet' is not a known format; allowed: csv, xlsx, fixed_width, jsonl, json, x12",
        ),
        (
            ("natural_key:", "parsing: {decimal_separator: ';'}\nnatural_key:"),
            "parsing.decimal_separator: ';' is not allowed; allowed: '.', ','",
        ),
    ],
)
def test_unknown_key_is_answered_with_the_allowed_keys(
    tmp_path: Path, change: tuple[str, str], expected: str
) -> None:
    assert expected in _problems(tmp_path, MINIMAL.replace(*change))


def test_every_problem_of_a_spec_is_reported_at_once(tmp_path: Path) -> None:
    text = (
        MINIMAL.replace("country: US", "country: USA")
        .replace("name: Acme US\n", "name: Acme US\nnmae: typo\n")
        .replace("quantity: Qty", "quantity: Qty, colour: C")
        .replace("natural_key: [invoice_number]", "natural_key: [invoice_line]")
        .replace("transaction_date: Date, ", "")
        + "unit_factors: {BX: 12}\nreturns: {convention: type_column}\n"
        + "parsing: {implied_decimals: {quantity_on_hand: 2, unit_price: 12}}\n"
    )
    problems = _problems(tmp_path, text)
    assert problems == [
        "country: 'USA' does not match the pattern; ISO 3166-1 alpha-2 (pattern ^[A-Z]{2}$)",
        "parsing.implied_decimals.unit_price: 12 is above the maximum 9; " + problems[1].split("; ", 1)[1],
        "nmae: unknown key; allowed keys here: id, distributor, name, country, currency, cadence, dataset, "
        "file_patterns, format, parsing, columns, constants, returns, transaction_types, unit_factors, "
        "natural_key, period, guards, quarantine_fields, source",
        "columns.colour: 'colour' is not a canonical field of sellout feeds; allowed for sellout: "
        "transaction_date, invoice_number, invoice_line, transaction_type, transfer_code, reseller_name, "
        "reseller_postal_code, reseller_country, distributor_sku, quantity, unit_of_measure, unit_price, "
        "currency, net_amount, end_customer_name, end_customer_email, end_customer_phone, "
        "end_customer_address, end_customer_country",
        "columns: required field(s) transaction_date not mapped; "
        "map each to its source column (or set it in constants)",
        "natural_key: 'invoice_line' is neither mapped in columns nor set in constants; "
        "map it in columns, or build the key from: invoice_number, distributor_sku, quantity",
        "returns.convention: 'type_column' needs columns.transaction_type; "
        "map the column that holds the transaction code, or use 'negative_quantity'",
        "unit_factors: needs columns.unit_of_measure; map the column that holds the unit code",
        "parsing.implied_decimals.quantity_on_hand: 'quantity_on_hand' is not a field of sellout feeds; "
        "allowed for sellout: quantity, unit_price, net_amount",
    ]


def test_cross_field_problems_alone_are_all_reported(tmp_path: Path) -> None:
    text = MINIMAL.replace("natural_key: [invoice_number]", "natural_key: [invoice_line]") + (
        "unit_factors: {BX: 12}\n"
    )
    problems = _problems(tmp_path, text)
    assert [problem.split(":")[0] for problem in problems] == ["natural_key", "unit_factors"]


def test_model_validate_still_refuses_cross_field_problems() -> None:
    data = yaml.safe_load(MINIMAL.replace("natural_key: [invoice_number]", "natural_key: [invoice_line]"))
    with pytest.raises(ValidationError) as raised:
        FeedSpec.model_validate(data)
    assert "natural_key: 'invoice_line' is neither mapped" in str(raised.value)


def test_implied_decimals_and_trailing_minus_load(tmp_path: Path) -> None:
    text = (
        MINIMAL
        + "parsing: {implied_decimals: {quantity: 0, unit_price: 2, net_amount: 9}, trailing_minus: true}\n"
    )
    spec = load_feed_spec(_write(tmp_path, "acme.yaml", text))
    assert spec.parsing.implied_decimals == {"quantity": 0, "unit_price": 2, "net_amount": 9}
    assert (
        spec.parsing.implied_places("unit_price") == 2 and spec.parsing.implied_places("invoice_line") is None
    )
    assert spec.parsing.trailing_minus


@pytest.mark.parametrize(
    ("implied", "expected"),
    [
        (
            "{colour: 2}",
            "parsing.implied_decimals.colour: 'colour' is not allowed; allowed: quantity, "
            "unit_price, net_amount, quantity_on_hand, quantity_on_order",
        ),
        ("{unit_price: -1}", "parsing.implied_decimals.unit_price: -1 is below the minimum 0"),
        ("{unit_price: 10}", "parsing.implied_decimals.unit_price: 10 is above the maximum 9"),
    ],
)
def test_implied_decimals_are_checked(tmp_path: Path, implied: str, expected: str) -> None:
    problems = _problems(tmp_path, MINIMAL + f"parsing: {{implied_decimals: {implied}}}\n")
    assert any(problem.startswith(expected) for problem in problems), problems


def test_inventory_implied_decimals_name_inventory_fields(tmp_path: Path) -> None:
    text = (
        MINIMAL.replace(
            "columns: {transaction_date: Date, distributor_sku: Part, quantity: Qty, invoice_number: Inv}",
            "columns: {snapshot_date: Date, distributor_sku: Part, quantity_on_hand: Qty}",
        ).replace("natural_key: [invoice_number]", "natural_key: [distributor_sku]")
        + "dataset: inventory\nparsing: {implied_decimals: {net_amount: 2, quantity_on_hand: 3}}\n"
    )
    assert _problems(tmp_path, text) == [
        "parsing.implied_decimals.net_amount: 'net_amount' is not a field of inventory feeds; "
        "allowed for inventory: quantity_on_hand, quantity_on_order"
    ]


def test_new_sections_have_defaults_and_load(tmp_path: Path) -> None:
    spec = load_feed_spec(_write(tmp_path, "acme.yaml", MINIMAL))
    assert spec.guards == PeriodGuards(max_shrink_pct=50.0, allow_empty_restatement=False)
    assert spec.quarantine_fields == []
    text = (
        MINIMAL + "guards: {max_shrink_pct: 20, allow_empty_restatement: true}\nquarantine_fields: [Region]\n"
    )
    spec = load_feed_spec(_write(tmp_path, "acme2.yaml", text))
    assert spec.guards.max_shrink_pct == 20.0 and spec.guards.allow_empty_restatement
    assert spec.quarantine_fields == ["Region"]
    assert (
        "guards.max_shrink_pct: 101 is above the maximum 100"
        in _problems(tmp_path, MINIMAL + "guards: {max_shrink_pct: 101}\n")[0]
    )


def test_x12_spec_may_omit_columns(tmp_path: Path) -> None:
    text = (
        MINIMAL.replace('format: {type: csv, delimiter: ";"}', "format: {type: x12}").replace(
            "columns: {transaction_date: Date, distributor_sku: Part, quantity: Qty, invoice_number: Inv}\n",
            "",
        )
        + "constants: {currency: USD}\n"
    )
    spec = load_feed_spec(_write(tmp_path, "acme.yaml", text))
    assert isinstance(spec.format, X12Format)
    assert spec.format.transaction_set == "867"
    assert spec.format.product_id_qualifiers == ["VP", "BP", "UP", "MG"]
    assert spec.format.reseller_party_codes == ["BY", "ST"]
    assert spec.columns == {name: name for name in SELLOUT_FIELDS if name != "currency"}


def test_csv_spec_needs_columns(tmp_path: Path) -> None:
    text = MINIMAL.replace(
        "columns: {transaction_date: Date, distributor_sku: Part, quantity: Qty, invoice_number: Inv}\n", ""
    )
    problems = _problems(tmp_path, text)
    assert problems[0].startswith("columns: required key is missing; canonical field -> source column")


@pytest.mark.parametrize("good", ["acme", "acme_us", "0day", "a" * 64])
def test_distributor_id_accepted(good: str) -> None:
    assert validate_distributor_id(good) == good


@pytest.mark.parametrize("bad", ["", "Acme", "acme-us", "_acme", "acme us", "../etc", "a" * 65])
def test_distributor_id_refused_with_what_an_id_looks_like(bad: str) -> None:
    with pytest.raises(ValueError) as raised:
        validate_distributor_id(bad)
    assert str(raised.value) == (
        f"{bad!r} is not a valid distributor id: use 1 to 64 lower-case letters, digits and '_', "
        "starting with a letter or digit (e.g. 'acme_us')"
    )


def test_spec_id_longer_than_64_is_refused(tmp_path: Path) -> None:
    problems = _problems(tmp_path, MINIMAL.replace("id: acme_us", "id: " + "a" * 65))
    assert problems[0].startswith(
        f"id: '{'a' * 65}' is longer than the maximum 64 character(s); the feed's id"
    )


def test_version_unchanged_by_new_default_keys() -> None:
    """Specs written before guards/quarantine_fields/implied decimals keep their recorded version."""
    for path in feed_spec_paths():
        spec = load_feed_spec(path)
        old_dump = spec.model_dump_json(
            by_alias=True,
            exclude={
                "guards": True,
                "quarantine_fields": True,
                "source": True,
                "parsing": {"implied_decimals", "trailing_minus"},
            },
        )
        assert spec.version == hashlib.sha256(old_dump.encode()).hexdigest()[:16]


def test_version_changes_with_new_keys(tmp_path: Path) -> None:
    base = load_feed_spec(_write(tmp_path, "a.yaml", MINIMAL)).version
    for extra in (
        "guards: {max_shrink_pct: 10}\n",
        "quarantine_fields: [X]\n",
        "parsing: {trailing_minus: true}\n",
    ):
        assert load_feed_spec(_write(tmp_path, "b.yaml", MINIMAL + extra)).version != base


def test_sample_specs_stay_valid() -> None:
    catalog = load_spec_catalog(feed_spec_paths()[0].parent)
    assert not catalog.errors and not catalog.disabled_distributors and not catalog.warnings
    assert len(catalog.specs) == len(feed_spec_paths())


def test_natural_key_may_not_name_an_end_customer(tmp_path: Path) -> None:
    text = MINIMAL.replace("invoice_number: Inv}", "invoice_number: Inv, end_customer_email: Email}").replace(
        "natural_key: [invoice_number]", "natural_key: [invoice_number, end_customer_email]"
    )
    assert "end_customer_email: Email" in text and "natural_key: [invoice_number, end_customer_email]" in text
    problems = _problems(tmp_path, text)
    assert len(problems) == 1, problems
    assert problems[0].startswith("natural_key: 'end_customer_email' identifies an end customer")
    assert "end_customer_email" not in problems[0].split("build the key from:")[1]
