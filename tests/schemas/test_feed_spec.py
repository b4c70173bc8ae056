"""Feed specs: good YAML loads; bad YAML is refused naming the file, the field and what is allowed."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from schemas.feed_spec import FeedSpecError, load_feed_spec, load_feed_specs

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
        (("name: Acme US\n", "name: Acme US\nnmae: typo\n"), ["nmae", "Extra inputs are not permitted"]),
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
