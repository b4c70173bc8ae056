"""The record estimate behind `throughline ingest`'s progress bar: close to the records the reader
will count, for a CSV (lines) and for an X12 867 (line items, not segments)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sampledata import scale
from schemas.feed_spec import CsvFormat, X12Format
from transforms.readers import estimate_records

LINES = 20_000
CSV = CsvFormat(type="csv")
X12 = X12Format(type="x12")


def within_a_fifth(estimate: int | None, actual: int) -> bool:
    return estimate is not None and abs(estimate - actual) <= actual / 5


def test_a_csv_is_estimated_by_its_lines(tmp_path: Path) -> None:
    path = scale.write_northwind(tmp_path / "NW_SALES_20260105.csv", LINES)
    estimate = estimate_records(path, path.stat().st_size, CSV)
    assert within_a_fifth(estimate, LINES), estimate


def test_an_867_is_estimated_by_its_line_items_not_its_segments(tmp_path: Path) -> None:
    path = scale.write_keystone_867(tmp_path / "KEYSTONE_867_20260105.edi", LINES)
    segments = path.read_bytes().count(b"\n")
    assert segments > 3 * LINES  # a line per segment: counting lines would be far off
    estimate = estimate_records(path, path.stat().st_size, X12)
    assert within_a_fifth(estimate, LINES), estimate


@pytest.mark.parametrize("content", [b"", b"ISA*00*short"])
def test_a_short_or_empty_x12_file_gives_no_estimate(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "tiny.edi"
    path.write_bytes(content)
    assert estimate_records(path, len(content), X12) is None
