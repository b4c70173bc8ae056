"""The fixed-width reader: record prefixes, title and trailer lines, footers kept as footer rows,
short lines, encodings, long lines refused, and every line accounted for."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas.feed_spec import FixedWidthFormat
from schemas.limits import ReadLimits
from tests.transforms.readers.conftest import assert_every_line_accounted
from transforms.readers import (
    READ_ERROR,
    ROW_KIND,
    SOURCE_ROW,
    LimitExceededError,
    ReadResult,
    UnreadableFileError,
    read_records,
)

COLUMNS = [
    {"name": "sku", "start": 3, "width": 6},
    {"name": "qty", "start": 9, "width": 4},
    {"name": "name", "start": 13, "width": 10},
]


def read_result(tmp_path: Path, data: bytes, limits: ReadLimits | None = None, **spec: object) -> ReadResult:
    path = tmp_path / "feed.txt"
    path.write_bytes(data)
    file_format = FixedWidthFormat(type="fixed_width", columns=COLUMNS, **spec)
    if limits is None:
        return read_records(path, file_format, tmp_path / "work")
    return read_records(path, file_format, tmp_path / "work", limits=limits)


def read(tmp_path: Path, data: bytes, **spec: object):
    return read_result(tmp_path, data, **spec).records.collect()


def is_blank(line: bytes) -> bool:
    return not line.strip()


def test_record_prefix_keeps_only_data_records(tmp_path: Path) -> None:
    data = b"HDR 20240301\r\nD ABC123  12Widget    \r\nD XYZ9     3Gadget\r\n\r\nTRL 2\r\n"

    result = read_result(tmp_path, data, record_prefix="D ")
    frame = result.records.collect()

    assert frame.columns == ["sku", "qty", "name", SOURCE_ROW, READ_ERROR, ROW_KIND]
    assert frame.rows() == [
        ("ABC123", "12", "Widget", 1, None, "data"),
        ("XYZ9", "3", "Gadget", 2, "line has 18 characters, the layout needs 22", "data"),
    ]
    assert result.skipped == {
        "header": 0,
        "preamble": 0,
        "blank": 1,
        "comment": 0,
        "record_prefix": 2,
        "footer": 0,
    }
    assert_every_line_accounted(data, frame.height, result.skipped, blank=is_blank)


def test_skip_and_footer_rows_without_prefix(tmp_path: Path) -> None:
    data = b"REPORT\n\n  ABC123  12Widget    \n\n  DEF456   7Gizmo     \nTOTAL   19\n\n"

    result = read_result(tmp_path, data, skip_rows=1, footer_rows=1)
    frame = result.records.collect()

    assert frame.rows() == [
        ("ABC123", "12", "Widget", 1, None, "data"),
        ("DEF456", "7", "Gizmo", 2, None, "data"),
        ("TAL", "19", None, 3, "line has 10 characters, the layout needs 22", "footer"),
    ]
    assert result.skipped == {
        "header": 0,
        "preamble": 1,
        "blank": 2,
        "comment": 0,
        "record_prefix": 0,
        "footer": 0,
    }
    assert_every_line_accounted(data, frame.height, result.skipped, blank=is_blank)


def test_footer_counts_blank_lines_and_keeps_its_rows(tmp_path: Path) -> None:
    data = b"  A1       1One\n  B2       2Two\n  C3       3Three\n   \n  TOTAL    6\n\n"

    two = read_result(tmp_path, data, footer_rows=2)
    three = read_result(tmp_path, data, footer_rows=3)

    assert two.records.collect()[ROW_KIND].to_list() == ["data", "data", "data", "footer"]
    assert two.skipped["footer"] == 1
    # One line more and the last data line falls in the zone: kept as a footer row, not lost.
    assert three.records.collect()[ROW_KIND].to_list() == ["data", "data", "footer", "footer"]
    assert three.skipped["footer"] == 1
    for result in (two, three):
        assert_every_line_accounted(data, result.records.collect().height, result.skipped, blank=is_blank)


@pytest.mark.parametrize(
    ("data", "spec"),
    [
        (b"", {}),
        (b"\n\n\n", {"footer_rows": 2}),
        (b"TITLE\n\n", {"skip_rows": 3}),
        (b"T\n\n  A1   1\n\n\n  B2   2\n \n", {"skip_rows": 1, "footer_rows": 4}),
        (b"  A1   1\r\n  B2   2", {"footer_rows": 9}),
        (b"H\n\nD A1\nX\n\nD B2\n\n", {"record_prefix": "D "}),
    ],
)
def test_every_line_is_a_record_or_skipped(data: bytes, spec: dict[str, object], tmp_path: Path) -> None:
    result = read_result(tmp_path, data, **spec)

    assert_every_line_accounted(data, result.records.collect().height, result.skipped, blank=is_blank)


def test_line_too_short_for_a_field_gives_null(tmp_path: Path) -> None:
    frame = read(tmp_path, b"  ABC\n")

    assert frame.rows() == [("ABC", None, None, 1, "line has 5 characters, the layout needs 22", "data")]


def test_cp1252_positions_count_characters(tmp_path: Path) -> None:
    frame = read(tmp_path, "  ÄÖÜ123   1Crème     \n".encode("cp1252"), encoding="cp1252")

    assert frame.rows() == [("ÄÖÜ123", "1", "Crème", 1, None, "data")]


def test_invalid_utf8_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFileError, match="not valid utf-8 at byte 4"):
        read(tmp_path, b"  AB\xff\n")


@pytest.mark.parametrize("encoding", ["utf-8", "cp1252"])
def test_line_longer_than_the_limit_is_refused(encoding: str, tmp_path: Path) -> None:
    data = b"  A1       1One\n" + b"x" * 3000 + b"\n  B2       2Two\n"

    with pytest.raises(
        LimitExceededError, match=r"feed\.txt: the line starting at byte 16 .*limits\.max_line_bytes = 1000"
    ):
        read_result(tmp_path, data, limits=ReadLimits(max_line_bytes=1000), encoding=encoding)
