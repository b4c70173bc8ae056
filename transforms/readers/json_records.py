"""JSON records: JSON lines (one object per line) or one document holding an array of objects.

Only turning JSON values into raw text columns belongs here: nested objects flatten to dotted
names (`customer.name`), arrays stay JSON text, numbers keep the digits as written, booleans are
"true"/"false". Records are spilled to Parquet in `work_dir` so memory holds one batch at a time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl

from schemas.feed_spec import JsonFormat
from transforms.readers.common import (
    UnreadableFileError,
    decode_chunks,
    iter_lines,
    line_body,
    spill_records,
    unique_column_names,
)


class _Number(str):
    """A JSON number kept as the text it was written as (no float rounding, 1.50 stays 1.50)."""

    __slots__ = ()


def _loads(text: str) -> Any:
    return json.loads(text, parse_float=_Number, parse_int=_Number)


def _as_json(value: Any) -> str:
    if isinstance(value, _Number):
        return str(value)
    if isinstance(value, dict):
        return (
            "{"
            + ",".join(
                f"{json.dumps(key, ensure_ascii=False)}:{_as_json(item)}" for key, item in value.items()
            )
            + "}"
        )
    if isinstance(value, list):
        return "[" + ",".join(_as_json(item) for item in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return str(value)
    return _as_json(value)


def flatten(record: dict[str, Any], prefix: str = "") -> dict[str, str | None]:
    """A JSON object as dotted-path keys to text values; an empty nested object contributes nothing."""
    flat: dict[str, str | None] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = _as_text(value)
    return flat


def _json_type(value: Any) -> str:
    if isinstance(value, _Number):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else "null"


_Parsed = tuple[int, dict[str, str | None], str | None]


def _jsonl_records(path: Path, encoding: str) -> Iterator[_Parsed]:
    for number, line in enumerate(iter_lines(path, encoding), start=1):
        body, _ = line_body(line)
        if not body.strip():
            continue
        try:
            value = _loads(body)
        except json.JSONDecodeError as error:
            yield number, {}, f"line is not valid JSON: {error.msg} at column {error.colno}"
            continue
        if not isinstance(value, dict):
            yield number, {}, f"line holds a JSON {_json_type(value)}, not an object"
            continue
        yield number, flatten(value), None


def _document_records(path: Path, spec: JsonFormat) -> list[Any]:
    text = "".join(decode_chunks(path, spec.encoding))
    try:
        document = _loads(text)
    except json.JSONDecodeError as error:
        raise UnreadableFileError(
            f"{path}: not a valid JSON document ({error.msg} at line {error.lineno}, column {error.colno}); "
            "if it holds one object per line, set the feed spec's format type to 'jsonl'"
        ) from error
    node = document
    walked: list[str] = []
    for key in spec.records_path.split(".") if spec.records_path else []:
        if not isinstance(node, dict) or key not in node:
            keys = sorted(node) if isinstance(node, dict) else []
            where = ".".join(walked) or "the top level"
            raise UnreadableFileError(
                f"{path}: records_path {spec.records_path!r}: no key {key!r} at {where} "
                f"(keys there: {keys}); check the feed spec's records_path"
            )
        node = node[key]
        walked.append(key)
    if not isinstance(node, list):
        raise UnreadableFileError(
            f"{path}: records_path {spec.records_path or '(top level)'!r} holds a JSON "
            f"{_json_type(node)}, not an array of records: "
            "check the feed spec's records_path"
        )
    return node


def _json_records(records: list[Any]) -> Iterator[_Parsed]:
    for index, value in enumerate(records, start=1):
        if isinstance(value, dict):
            yield index, flatten(value), None
        else:
            yield index, {}, f"array item is a JSON {_json_type(value)}, not an object"


def read_json_records(path: Path, spec: JsonFormat, work_dir: Path) -> pl.LazyFrame:
    """Read JSON lines or a JSON document into String columns plus `source_row` and `_read_error`.

    `source_row` is the line number in a JSON-lines file and the 1-based array index in a document.
    A JSON-lines line that does not parse is kept as a record holding only its `_read_error`.
    Columns are every dotted path seen in any record, in order of first appearance.
    """
    if spec.type == "jsonl":

        def parsed() -> Iterator[_Parsed]:
            return _jsonl_records(path, spec.encoding)

    else:
        items = _document_records(path, spec)

        def parsed() -> Iterator[_Parsed]:
            return _json_records(items)

    # Two passes: the first finds every column, so the spill has one schema and memory stays flat.
    keys: dict[str, None] = {}
    for _, flat, _ in parsed():
        keys.update(dict.fromkeys(flat))
    raw_names = list(keys)
    names = unique_column_names(raw_names)
    # Only a key named like the reader's own columns (or a blank one) is renamed.
    renamed = dict(zip(raw_names, names, strict=True)) if names != raw_names else None

    def rows() -> Iterator[tuple[int, list[str | None], str | None]]:
        for number, flat, error in parsed():
            values = flat if renamed is None else {renamed[key]: value for key, value in flat.items()}
            yield number, [values.get(name) for name in names], error

    return spill_records(names, rows(), work_dir, path.stem)
