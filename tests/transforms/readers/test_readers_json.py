"""The JSON reader: JSON lines with bad lines kept, documents streamed with a records path,
flattening, numbers as written, nesting depth bounded, and every line accounted for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from schemas.feed_spec import JsonFormat
from schemas.limits import ReadLimits
from tests.transforms.readers.conftest import assert_every_line_accounted, run_in_child
from transforms.readers import (
    READ_ERROR,
    ROW_KIND,
    SOURCE_ROW,
    LimitExceededError,
    ReadResult,
    UnreadableFileError,
    read_records,
)


def read_result(tmp_path: Path, text: str, limits: ReadLimits | None = None, **spec: object) -> ReadResult:
    path = tmp_path / "feed.json"
    path.write_text(text, encoding="utf-8")
    if limits is None:
        return read_records(path, JsonFormat(**spec), tmp_path / "work")
    return read_records(path, JsonFormat(**spec), tmp_path / "work", limits=limits)


def read(tmp_path: Path, text: str, **spec: object):
    return read_result(tmp_path, text, **spec).records.collect().drop(ROW_KIND)


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


def test_json_lines_declared_as_a_document_point_to_jsonl(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFileError, match="format type to 'jsonl'"):
        read(tmp_path, '{"a": 1}\n{"a": 2}\n', type="json")


@pytest.mark.parametrize("text", ['[{"a": 1}, oops]', '[{"a": 1}', '[{"a": 1}] trailing', ""])
def test_invalid_json_document(text: str, tmp_path: Path) -> None:
    with pytest.raises(UnreadableFileError, match="not a valid JSON document"):
        read(tmp_path, text, type="json")


def test_document_numbers_keep_their_digits(tmp_path: Path) -> None:
    text = '[{"a": 1.50, "b": -0.0, "c": 0.0000001, "d": 12345678901234567890.10, "e": 7, "f": 2.5E-3}]'

    frame = read(tmp_path, text, type="json")

    assert frame.row(0)[:6] == ("1.50", "-0.0", "0.0000001", "12345678901234567890.10", "7", "0.0025")


def test_document_arrays_nested_objects_and_odd_items(tmp_path: Path) -> None:
    text = (
        '{"meta": {"skip": [[1, {"x": [2]}]], "n": 2}, "rows": ['
        '{"sku": "A", "tags": ["x", 2.0, {"k": null, "l": [true]}], "c": {"d": {"e": "f"}, "g": {}}},'
        ' [1, [2]], "text", null, {}]}'
    )

    frame = read(tmp_path, text, type="json", records_path="rows")

    assert frame.columns == ["sku", "tags", "c.d.e", SOURCE_ROW, READ_ERROR]
    assert frame.rows() == [
        ("A", '["x",2.0,{"k":null,"l":[true]}]', "f", 1, None),
        (None, None, None, 2, "array item is a JSON array, not an object"),
        (None, None, None, 3, "array item is a JSON string, not an object"),
        (None, None, None, 4, "array item is a JSON null, not an object"),
        (None, None, None, 5, None),
    ]


def test_records_path_to_a_value_that_is_no_array(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFileError, match=r"records_path 'report' holds a JSON object, not an array"):
        read(tmp_path, '{"report": {"lines": []}}', type="json", records_path="report")


def test_empty_record_array(tmp_path: Path) -> None:
    frame = read(tmp_path, '{"lines": []}', type="json", records_path="lines")

    assert frame.height == 0
    assert frame.columns == [SOURCE_ROW, READ_ERROR]


def test_keys_named_like_the_reader_columns_are_renamed(tmp_path: Path) -> None:
    frame = read_result(tmp_path, '[{"source_row": "x", "_row_kind": "y"}]', type="json").records.collect()

    assert frame.rows() == [("x", "y", 1, None, "data")]
    assert frame.columns == ["source_row_2", "_row_kind_2", SOURCE_ROW, READ_ERROR, ROW_KIND]


@pytest.mark.parametrize("json_type", ["json", "jsonl"])
def test_nesting_past_the_depth_limit_is_refused(json_type: str, tmp_path: Path) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    text = f'[{{"a": {deep}}}]' if json_type == "json" else f'{{"a": 1}}\n{{"a": {deep}}}\n'

    with pytest.raises(
        LimitExceededError, match=r"feed\.json: .* deeper than 64 levels, over limits\.max_json_depth = 64"
    ):
        read(tmp_path, text, type=json_type)


@pytest.mark.parametrize(("json_type", "depth"), [("json", 6), ("jsonl", 5)])
def test_nesting_at_the_depth_limit_is_read(json_type: str, depth: int, tmp_path: Path) -> None:
    line = '{"a": {"b": {"c": [[1]]}}}'  # five levels; the document's record array adds one
    text = f"[{line}]" if json_type == "json" else line

    with pytest.raises(LimitExceededError, match=f"max_json_depth = {depth - 1}"):
        read_result(tmp_path, text, limits=ReadLimits(max_json_depth=depth - 1), type=json_type)
    result = read_result(tmp_path, text, limits=ReadLimits(max_json_depth=depth), type=json_type)
    assert result.records.collect()["a.b.c"].to_list() == ["[[1]]"]


def test_depth_counts_brackets_outside_strings_only(tmp_path: Path) -> None:
    limits = ReadLimits(max_json_depth=2)
    text = '{"a": "[[[[{{{{", "b": ["x"]}\n'

    frame = read_result(tmp_path, text, limits=limits, type="jsonl").records.collect()

    assert frame["a"].to_list() == ["[[[[{{{{"]


def test_jsonl_line_past_the_limit_is_refused(tmp_path: Path) -> None:
    text = '{"a": 1}\n{"a": "' + "x" * 5000 + '"}\n'

    with pytest.raises(LimitExceededError, match=r"limits\.max_line_bytes = 1000"):
        read_result(tmp_path, text, limits=ReadLimits(max_line_bytes=1000), type="jsonl")


@pytest.mark.parametrize(
    "text", ["", "\n\n", '{"a": 1}', '\n{"a": 1}\n\n{"a": 2}\n  \n\n', '{"a": 1}\r\n\r\nbroken\r\n\r\n']
)
def test_every_jsonl_line_is_a_record_or_skipped(text: str, tmp_path: Path) -> None:
    result = read_result(tmp_path, text, type="jsonl")

    assert_every_line_accounted(
        text.encode(), result.records.collect().height, result.skipped, blank=lambda line: not line.strip()
    )


def test_document_items_are_all_records(tmp_path: Path) -> None:
    result = read_result(tmp_path, '[\n  {"a": 1},\n\n  7,\n  {"b": 2}\n]\n', type="json")

    assert result.records.collect().height == 3
    assert sum(result.skipped.values()) == 0


@pytest.mark.system
def test_two_million_tiny_records_stream_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "tiny.json"
    with path.open("w", encoding="utf-8") as out:
        out.write('{"report": "x", "lines": [')
        for start in range(0, 2_000_000, 100_000):
            out.write(
                ",".join(
                    f'{{"sku":"A{i}","qty":{i % 7},"price":1.50}}' for i in range(start, start + 100_000)
                )
            )
            out.write("," if start + 100_000 < 2_000_000 else "")
        out.write("]}")

    run = run_in_child(
        """
        from pathlib import Path
        import polars as pl
        from schemas.feed_spec import JsonFormat
        from transforms.readers import read_records
        result = read_records(Path(sys.argv[1]), JsonFormat(type="json", records_path="lines"), Path(sys.argv[2]))
        frame = result.records.select(pl.len(), pl.col("price").n_unique(), pl.col("source_row").max()).collect()
        outcome = frame.row(0)
        """,
        str(path),
        str(tmp_path / "work"),
    )

    assert run.outcome == "(2000000, 1, 2000000)", run.outcome
    assert run.peak_mib < 1024, f"peak RSS {run.peak_mib:.0f} MiB"


def test_jsonl_pages_yield_the_records_at_records_path(tmp_path: Path) -> None:
    """An API pull lands one raw page per line: each page's records are read, numbered in file order."""
    path = tmp_path / "api_pull.jsonl"
    pages = [
        {"data": [{"id": "a", "qty": 1.50}, {"id": "b", "qty": 2}], "next": "c2"},
        {"data": [{"id": "c", "qty": 3}], "next": None},
        {"items": []},
    ]
    path.write_text("\n".join(json.dumps(page) for page in pages) + "\n", encoding="utf-8")
    result = read_records(path, JsonFormat(type="jsonl", records_path="data"), tmp_path / "work")
    frame = result.records.collect()
    assert frame.select("source_row", "id", "qty").rows() == [
        (1, "a", "1.5"),
        (2, "b", "2"),
        (3, "c", "3"),
        (4, None, None),
    ]
    assert frame["_read_error"].to_list()[:3] == [None, None, None]
    assert (
        frame["_read_error"][3]
        == "page on line 3: records_path 'data': no key 'data' (keys there: ['items'])"
    )
