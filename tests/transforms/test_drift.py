"""Schema drift detection (`transforms.drift`): columns added, dropped, renamed and reordered are
named against the spec and the previous load's header; names differing only in case, spacing or
punctuation are read as the spec's; a missing column a load needs refuses the file, naming it and
the spec change to make; and normalization reads what the detector resolved."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from schemas.feed_spec import FeedSpec
from transforms.drift import (
    ColumnRename,
    detect_drift,
    folded,
    has_named_header,
    name_similarity,
    needed_fields,
    resolve_header,
)
from transforms.normalize import map_source_columns

SPEC: dict[str, Any] = {
    "id": "acme_us",
    "name": "Acme Distribution",
    "country": "US",
    "currency": "USD",
    "file_patterns": ["ACME_*.csv"],
    "format": {"type": "csv"},
    "columns": {
        "invoice_number": "Invoice",
        "invoice_line": "Line",
        "transaction_date": "Invoice Date",
        "reseller_name": "Ship-To Name",
        "reseller_postal_code": "Ship-To Zip",
        "distributor_sku": "Part Number",
        "quantity": "Quantity",
        "unit_price": "Unit Price",
        "currency": "Currency",
    },
    "quarantine_fields": ["Region"],
    "natural_key": ["invoice_number", "invoice_line"],
}
HEADER = [
    "Invoice",
    "Line",
    "Invoice Date",
    "Ship-To Name",
    "Ship-To Zip",
    "Part Number",
    "Quantity",
    "Unit Price",
    "Currency",
    "Region",
    "Notes",
]


def spec(**changes: Any) -> FeedSpec:
    return FeedSpec.model_validate({**SPEC, **changes})


def replaced(header: list[str], **renames: str) -> list[str]:
    return [renames.get(name, name) for name in header]


def test_an_unchanged_header_has_no_drift() -> None:
    drift = detect_drift(HEADER, spec(), HEADER)
    assert not drift
    assert drift.findings() == [] and drift.summary() is None and drift.refusal() is None


def test_an_added_column_is_named_against_the_previous_header_only() -> None:
    drift = detect_drift([*HEADER, "Promo Code"], spec(), HEADER, baseline_name="the header of W44.csv")
    assert drift.added == ("Promo Code",)
    assert drift.findings() == [
        "added: `Promo Code` (not in the header of W44.csv; the spec does not read it: map it in "
        "`columns:` to load it)"
    ]
    # Without a previous header, unread columns are only the baseline: nothing is "added".
    assert not detect_drift([*HEADER, "Promo Code"], spec())


def test_a_dropped_unread_column_is_harmless_and_named() -> None:
    header = [name for name in HEADER if name != "Notes"]
    drift = detect_drift(header, spec(), HEADER, baseline_name="the previous load's header")
    assert drift.dropped == ("Notes",)
    assert drift.refusal() is None
    assert drift.findings() == ["dropped: `Notes` (in the previous load's header; the spec does not read it)"]


def test_a_dropped_optional_column_loads_empty_and_says_what_to_change() -> None:
    header = [name for name in HEADER if name != "Ship-To Zip"]
    drift = detect_drift(header, spec(), HEADER)
    assert drift.dropped == ("Ship-To Zip",)
    assert drift.dropped_fields == {"reseller_postal_code": "Ship-To Zip"}
    assert drift.refusal() is None
    (finding,) = drift.findings()
    assert finding.startswith("dropped: `Ship-To Zip` (columns.reseller_postal_code) is not in the file")
    assert "`reseller_postal_code` is loaded empty" in finding and "feed spec 'acme_us'" in finding


@pytest.mark.parametrize(
    ("column", "field"),
    [
        ("Quantity", "quantity"),  # required by the dataset
        ("Line", "invoice_line"),  # part of the natural key
        ("Currency", "currency"),  # a sell-out line's currency
    ],
)
def test_a_dropped_needed_column_refuses_the_file_naming_it(column: str, field: str) -> None:
    header = [name for name in HEADER if name != column]
    drift = detect_drift(header, spec(), HEADER)
    refusal = drift.refusal()
    assert refusal is not None
    assert f"`{column}` (columns.{field})" in refusal
    assert "feed spec 'acme_us' maps and a load needs" in refusal
    assert "Fix `columns:` in the spec" in refusal
    assert str(header) in refusal


def test_needed_fields_follow_the_spec() -> None:
    assert needed_fields(spec()) == {
        "transaction_date",
        "distributor_sku",
        "quantity",
        "invoice_number",
        "invoice_line",
        "currency",
    }
    typed = spec(
        columns={**SPEC["columns"], "transaction_type": "Type", "unit_of_measure": "UOM"},
        returns={"convention": "type_column"},
        unit_factors={"BX": 12},
    )
    assert {"transaction_type", "unit_of_measure"} <= needed_fields(typed)


def test_a_renamed_needed_column_is_refused_with_the_spec_change_to_make() -> None:
    drift = detect_drift(replaced(HEADER, Quantity="Qty Sold"), spec(), HEADER)
    assert drift.renamed == (ColumnRename("Quantity", "Qty Sold", "quantity", False, drift.renamed[0].score),)
    assert drift.dropped == () and drift.added == ()
    assert drift.findings()[0] == (
        "renamed: `Qty Sold` looks like a rename of `Quantity` (columns.quantity), so the file is refused: "
        "set `columns.quantity: Qty Sold` in feed spec 'acme_us' (or restore the column's name in the file)"
    )
    refusal = drift.refusal()
    assert refusal is not None
    assert "`Qty Sold` looks like a rename of `Quantity`: set `columns.quantity: Qty Sold`" in refusal


def test_a_rename_is_found_against_the_spec_on_a_first_load() -> None:
    drift = detect_drift(replaced(HEADER, **{"Ship-To Zip": "Ship-To Postal Code"}), spec())
    (rename,) = drift.renamed
    assert (rename.expected, rename.found, rename.field, rename.applied) == (
        "Ship-To Zip",
        "Ship-To Postal Code",
        "reseller_postal_code",
        False,
    )
    assert drift.refusal() is None
    assert "`reseller_postal_code` is loaded empty" in drift.findings()[0]


def test_an_unread_column_renamed_is_reported_as_a_rename() -> None:
    drift = detect_drift(replaced(HEADER, Notes="Note"), spec(), HEADER)
    assert [(r.expected, r.found, r.field) for r in drift.renamed] == [("Notes", "Note", None)]
    assert drift.findings() == ["renamed: `Note` looks like a rename of `Notes` (the spec does not read it)"]


def test_unrelated_columns_are_not_taken_for_a_rename() -> None:
    header = [*(name for name in HEADER if name != "Ship-To Zip"), "Sales Rep"]
    drift = detect_drift(header, spec(), HEADER)
    assert drift.renamed == ()
    assert drift.dropped == ("Ship-To Zip",) and drift.added == ("Sales Rep",)


@pytest.mark.parametrize(
    "variant", ["QUANTITY", "quantity", " quantity ", "Qu-antity", "QUAN TITY", "quan_tity"]
)
def test_case_spacing_and_punctuation_variants_are_read_as_the_spec_names_them(variant: str) -> None:
    header = replaced(HEADER, Quantity=variant.strip())
    drift = detect_drift(header, spec(), HEADER)
    assert drift.refusal() is None
    assert drift.renamed == (ColumnRename("Quantity", variant.strip(), "quantity", True, 100.0),)
    assert drift.findings() == [
        f"renamed: `{variant.strip()}` differs from `Quantity` (columns.quantity) only in case, spacing or "
        "punctuation, and was read as it"
    ]
    assert resolve_header(header, spec())["Quantity"] == variant.strip()


def test_an_ambiguous_variant_is_not_guessed() -> None:
    header = [*replaced(HEADER, Quantity="QUANTITY"), "quantity"]
    assert "Quantity" not in resolve_header(header, spec())
    assert detect_drift(header, spec()).refusal() is not None


def test_a_reorder_names_the_columns_that_moved() -> None:
    header = ["Line", "Invoice", *HEADER[2:]]
    drift = detect_drift(header, spec(), HEADER)
    assert drift.moved == ("Line",)
    assert drift.added == drift.dropped == drift.renamed == ()
    assert drift.findings() == [
        "reordered: `Line` moved (the same columns in a new order; harmless, columns are read by name)"
    ]
    assert drift.refusal() is None


def test_json_keys_have_no_order_to_drift_from() -> None:
    json_spec = spec(format={"type": "jsonl"})
    assert detect_drift(list(reversed(HEADER)), json_spec, HEADER).moved == ()


def test_formats_whose_names_come_from_the_spec_never_drift() -> None:
    fixed = spec(format={"type": "fixed_width", "columns": [{"name": "Invoice", "start": 1, "width": 5}]})
    headerless = spec(format={"type": "csv", "has_header": False, "column_names": HEADER})
    for file_format in (fixed, headerless):
        assert not has_named_header(file_format.format)
        assert not detect_drift(["x"], file_format, HEADER)
    assert has_named_header(spec(format={"type": "xlsx"}).format)


def test_several_findings_at_once() -> None:
    header = ["Line", "Invoice", *replaced(HEADER[2:], Quantity="Qty Sold", Notes="Comment")]
    drift = detect_drift(header, spec(), HEADER, baseline_name="B")
    assert drift.baseline == "B"
    assert drift.added == ("Comment",)
    assert drift.dropped == ("Notes",)
    assert [(r.expected, r.found, r.field, r.applied) for r in drift.renamed] == [
        ("Quantity", "Qty Sold", "quantity", False)
    ]
    assert drift.moved == ("Line",)
    assert drift.refused_fields == ("quantity",)
    assert [line.split(":")[0] for line in drift.findings()] == ["renamed", "dropped", "added", "reordered"]


def test_a_name_of_punctuation_alone_is_never_a_variant() -> None:
    punctuated = spec(columns={**SPEC["columns"], "transfer_code": "#"})
    assert "#" not in resolve_header([*HEADER, "-"], punctuated)


def test_names_are_compared_with_abbreviations_spelled_out() -> None:
    assert folded(" Qty-Sold ") == folded("qty sold") == "qtysold"
    assert name_similarity("Quantity", "Qty Sold") >= 80
    assert name_similarity("Invoice No", "Invoice Number") >= 80
    assert name_similarity("Currency", "Country") < 80


def test_normalization_reads_variants_and_loads_a_dropped_optional_column_empty() -> None:
    header = replaced(HEADER, Quantity="QUANTITY")
    header.remove("Ship-To Zip")
    values = {name: ["1"] for name in header} | {"Invoice Date": ["2026-11-02"], "QUANTITY": ["7"]}
    records = pl.LazyFrame(
        {**values, "source_row": [1], "_read_error": [None], "_row_kind": ["data"]},
        schema_overrides={"_read_error": pl.String},
    )
    mapped = map_source_columns(records, spec()).collect()
    assert mapped["raw__quantity"].to_list() == ["7"]
    assert mapped["raw__reseller_postal_code"].to_list() == [None]
    assert "src__Quantity" in mapped.columns and "src__QUANTITY" not in mapped.columns
    with pytest.raises(ValueError, match=r"`Quantity` \(columns.quantity\)"):
        map_source_columns(records.drop("QUANTITY"), spec())
