"""The fixed-width reader: record prefixes, title and trailer lines, short lines, encodings."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas.feed_spec import FixedWidthFormat
from transforms.readers import READ_ERROR, SOURCE_ROW, UnreadableFileError, read_records

COLUMNS = [
    {"name": "sku", "start": 3, "width": 6},
    {"name": "qty", "start": 9, "width": 4},
    {"name": "name", "start": 13, "width": 10},
]


def read(tmp_path: Path, data: bytes, **spec: object):
    path = tmp_path / "feed.txt"
    path.write_bytes(data)
    file_format = FixedWidthFormat(type="fixed_width", columns=COLUMNS, **spec)
    return read_records(path, file_format, tmp_path / "work").collect()


def test_record_prefix_keeps_only_data_records(tmp_path: Path) -> None:
    data = b"HDR 20240301\r\nD ABC123  12Widget    \r\nD XYZ9     3Gadget\r\nTRL 2\r\n"

    frame = read(tmp_path, data, record_prefix="D ")

    assert frame.columns == ["sku", "qty", "name", SOURCE_ROW, READ_ERROR]
    assert frame.rows() == [
        ("ABC123", "12", "Widget", 1, None),
        ("XYZ9", "3", "Gadget", 2, "line has 18 characters, the layout needs 22"),
    ]


def test_skip_and_footer_rows_without_prefix(tmp_path: Path) -> None:
    data = b"REPORT\n\n  ABC123  12Widget    \n\n  DEF456   7Gizmo     \nTOTAL   19\n\n"

    frame = read(tmp_path, data, skip_rows=1, footer_rows=1)

    assert frame.rows() == [("ABC123", "12", "Widget", 1, None), ("DEF456", "7", "Gizmo", 2, None)]


def test_line_too_short_for_a_field_gives_null(tmp_path: Path) -> None:
    frame = read(tmp_path, b"  ABC\n")

    assert frame.rows() == [("ABC", None, None, 1, "line has 5 characters, the layout needs 22")]


def test_cp1252_positions_count_characters(tmp_path: Path) -> None:
    frame = read(tmp_path, "  ÄÖÜ123   1Crème     \n".encode("cp1252"), encoding="cp1252")

    assert frame.rows() == [("ÄÖÜ123", "1", "Crème", 1, None)]


def test_invalid_utf8_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFileError, match="not valid utf-8 at byte 4"):
        read(tmp_path, b"  AB\xff\n")
