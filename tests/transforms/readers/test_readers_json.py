"""The JSON reader: JSON lines with bad lines kept, documents with a records path, flattening."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas.feed_spec import JsonFormat
from transforms.readers import READ_ERROR, SOURCE_ROW, UnreadableFileError, read_records


def read(tmp_path: Path, text: str, **spec: object):
    path = tmp_path / "feed.json"
    path.write_text(text, encoding="utf-8")
    return read_records(path, JsonFormat(**spec), tmp_path / "work").collect()


def test_jsonl_flattens_and_keeps_bad_lines(tmp_path: Path) -> None:
    text = (
        '{"sku": "A", "qty": 12, "price": 1.50, "customer": {"name": "Zoë", "address": {"zip": "08123"}}}\n'
        "\n"
        '{"sku": "B", "qty": -3, "tags": ["x", 2, {"k": null}], "paid": true, "note": null}\n'
        '{"sku": "C", broken\n'
        "[1, 2]\n"
        '{"sku": "D", "customer": {}}\n'
    )

    frame = read(tmp_path, text, type="jsonl")

    assert frame.columns == [
        "sku",
        "qty",
        "price",
        "customer.name",
        "customer.address.zip",
        "tags",
        "paid",
        "note",
        SOURCE_ROW,
        READ_ERROR,
    ]
    assert frame.rows() == [
        ("A", "12", "1.50", "Zoë", "08123", None, None, None, 1, None),
        ("B", "-3", None, None, None, '["x",2,{"k":null}]', "true", None, 3, None),
        (
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            4,
            "line is not valid JSON: Expecting property name enclosed in double quotes at column 14",
        ),
        (None, None, None, None, None, None, None, None, 5, "line holds a JSON array, not an object"),
        ("D", None, None, None, None, None, None, None, 6, None),
    ]


def test_json_document_with_records_path(tmp_path: Path) -> None:
    text = '{"report": {"period": "2024-03", "lines": [{"sku": "A", "qty": 1e3}, {"sku": "B", "qty": 2}, 7]}}'

    frame = read(tmp_path, text, type="json", records_path="report.lines")

    assert frame.rows() == [
        ("A", "1e3", 1, None),
        ("B", "2", 2, None),
        (None, None, 3, "array item is a JSON number, not an object"),
    ]


def test_json_top_level_array(tmp_path: Path) -> None:
    frame = read(tmp_path, '[{"a": "x"}, {"b": false}]', type="json")

    assert frame.rows() == [("x", None, 1, None), (None, "false", 2, None)]


def test_wrong_records_path_names_the_keys(tmp_path: Path) -> None:
    with pytest.raises(
        UnreadableFileError, match=r"no key 'rows' at report \(keys there: \['lines', 'period'\]\)"
    ):
        read(tmp_path, '{"report": {"period": "x", "lines": []}}', type="json", records_path="report.rows")


def test_invalid_json_document(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFileError, match="not a valid JSON document"):
        read(tmp_path, '{"a": 1}\n{"a": 2}\n', type="json")
