"""The spec catalog: one bad spec disables only its own distributor; overlaps and duplicates are named."""

from __future__ import annotations

from fnmatch import fnmatch
from pathlib import Path

import pytest

from sampledata.generator import copy_feed_specs
from schemas.feed_spec import FeedSpecError, common_file_name, load_feed_specs, load_spec_catalog

ACME = """
id: acme_us
name: Acme US
country: US
currency: USD
file_patterns: ["ACME_*.csv"]
format: {type: csv}
columns: {transaction_date: Date, distributor_sku: Part, quantity: Qty, invoice_number: Inv}
natural_key: [invoice_number]
"""


def _spec(spec_id: str, pattern: str, distributor: str | None = None) -> str:
    text = ACME.replace("id: acme_us", f"id: {spec_id}").replace('"ACME_*.csv"', f'"{pattern}"')
    return text + (f"distributor: {distributor}\n" if distributor else "")


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_one_broken_spec_disables_only_its_distributor(tmp_path: Path) -> None:
    copy_feed_specs(tmp_path)
    broken = _write(
        tmp_path,
        "northwind_us_inventory.yaml",
        (tmp_path / "northwind_us_inventory.yaml").read_text("utf-8").replace("delimiter:", "delimter:"),
    )
    catalog = load_spec_catalog(tmp_path)
    assert set(catalog.specs) == {
        "albion_uk",
        "keystone_edi",
        "keystone_edi_inventory",
        "nordic_fw",
        "pacific_jsonl",
        "rheinland_de",
    }
    assert list(catalog.errors) == [broken]
    assert catalog.errors[broken].startswith(
        f"{broken}: format.delimter: unknown key; allowed keys here: type,"
    )
    # The valid sell-out spec of the same distributor is not used either.
    assert catalog.disabled_distributors == {"northwind_us": catalog.errors[broken]}
    with pytest.raises(FeedSpecError) as raised:
        load_feed_specs(tmp_path)
    assert str(raised.value) == catalog.errors[broken]


def test_distributor_of_an_invalid_spec(tmp_path: Path) -> None:
    _write(tmp_path, "good.yaml", _spec("good", "GOOD_*.csv"))
    _write(
        tmp_path,
        "by_distributor.yaml",
        _spec("feed_a", "A_*.csv", "dist_a").replace("country: US", "country: X"),
    )
    _write(tmp_path, "by_id.yaml", _spec("dist_b", "B_*.csv").replace("quantity: Qty", "qty: Qty"))
    _write(tmp_path, "dist_c.yaml", "id: [unclosed")
    _write(tmp_path, "dist_d_file.yaml", "distributor: dist_d\nid: feed_d\nname: [unclosed")
    _write(tmp_path, "dist_e.yaml", "- a list\n")
    catalog = load_spec_catalog(tmp_path)
    assert set(catalog.specs) == {"good"}
    assert set(catalog.disabled_distributors) == {"dist_a", "dist_b", "dist_c", "dist_d", "dist_e"}
    assert "dist_c.yaml: not valid YAML" in catalog.disabled_distributors["dist_c"]
    assert (
        "dist_e.yaml: a feed spec is a YAML mapping (key: value), got list"
        in catalog.disabled_distributors["dist_e"]
    )


def test_duplicate_ids_are_errors_of_both_files(tmp_path: Path) -> None:
    first = _write(tmp_path, "a.yaml", _spec("acme_us", "A_*.csv"))
    second = _write(tmp_path, "b.yaml", _spec("acme_us", "B_*.csv"))
    _write(tmp_path, "other.yaml", _spec("other", "O_*.csv"))
    catalog = load_spec_catalog(tmp_path)
    assert set(catalog.specs) == {"other"}
    assert catalog.errors == {
        first: f"{first}: id: 'acme_us' is also the id of {second}; give every spec its own id",
        second: f"{second}: id: 'acme_us' is also the id of {first}; give every spec its own id",
    }
    assert set(catalog.disabled_distributors) == {"acme_us"}


def test_overlapping_patterns_of_one_distributor_are_errors_of_both(tmp_path: Path) -> None:
    sales = _write(tmp_path, "sales.yaml", _spec("acme_sales", "ACME_*.csv", "acme"))
    stock = _write(tmp_path, "stock.yaml", _spec("acme_stock", "acme_stock_*.CSV", "acme"))
    _write(tmp_path, "other.yaml", _spec("other", "O_*.csv"))
    catalog = load_spec_catalog(tmp_path)
    assert set(catalog.specs) == {"other"}
    assert catalog.errors[sales] == (
        f"{sales}: file_patterns: 'ACME_*.csv' and 'acme_stock_*.CSV' of {stock} (feed acme_stock, same "
        "distributor acme) can match the same file name, e.g. 'acme_stock_.csv'; "
        "make the patterns tell the two feeds apart"
    )
    assert catalog.errors[stock].startswith(
        f"{stock}: file_patterns: 'acme_stock_*.CSV' and 'ACME_*.csv' of {sales}"
    )
    assert list(catalog.disabled_distributors) == ["acme"]


def test_overlapping_patterns_of_different_distributors_are_reported(tmp_path: Path) -> None:
    first = _write(tmp_path, "a.yaml", _spec("dist_a", "SALES_*.csv"))
    second = _write(tmp_path, "b.yaml", _spec("dist_b", "*_2026*.csv"))
    catalog = load_spec_catalog(tmp_path)
    assert set(catalog.specs) == {"dist_a", "dist_b"} and not catalog.errors
    assert catalog.warnings == (
        f"{first}: file_patterns: 'SALES_*.csv' (feed dist_a) and '*_2026*.csv' of {second} (feed dist_b) can "
        "match the same file name, e.g. 'sales_2026.csv'; files in inbox/<distributor_id>/ are routed by "
        "folder, others need --distributor",
    )
    assert set(load_feed_specs(tmp_path)) == {"dist_a", "dist_b"}


def test_missing_folder_is_an_empty_catalog(tmp_path: Path) -> None:
    catalog = load_spec_catalog(tmp_path / "absent")
    assert (catalog.specs, catalog.errors, catalog.disabled_distributors) == ({}, {}, {})


@pytest.mark.parametrize(
    ("first", "second", "overlap"),
    [
        ("NW_SALES_*.csv", "NW_*.csv", True),
        ("NW_SALES_*.csv", "NW_STOCK_*.csv", False),
        ("*.csv", "*.txt", False),
        ("*.CSV", "data_*.csv", True),
        ("A?C", "a[b]c", True),
        ("a[!b]c", "a[bc]c", True),
        ("a[!b]c", "a[b]c", False),
        ("[0-9]*", "a*", False),
        ("[0-9]*", "*", True),
        ("*x*", "*y*", True),
        ("RH_*_[0-9][0-9].csv", "RH_*_ab.csv", False),
        ("report.csv", "report.csv", True),
        ("report.csv", "report.cs", False),
    ],
)
def test_common_file_name(first: str, second: str, overlap: bool) -> None:
    example = common_file_name(first, second)
    assert (example is not None) == overlap
    if example is not None:
        assert fnmatch(example, first.lower()) and fnmatch(example, second.lower())
