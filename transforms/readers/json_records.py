"""JSON records: JSON lines (one object per line) or one document holding an array of objects.

Only turning JSON values into raw text columns belongs here: nested objects flatten to dotted
names (`customer.name`), arrays stay JSON text, numbers keep the digits as written, booleans are
"true"/"false". A document is streamed (ijson) rather than loaded, nesting deeper than
`limits.max_json_depth` is refused before it is built, and records are spilled to Parquet in
`work_dir` in one pass, so memory holds one batch at a time.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from decimal import Decimal
from itertools import accumulate
from pathlib import Path
from typing import Any

import ijson
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from schemas.feed_spec import JsonFormat
from schemas.limits import DEFAULT_LIMITS, ReadLimits
from transforms.readers.common import (
    READ_ERROR,
    ROW_KIND,
    SOURCE_ROW,
    SPILL_BATCH_ROWS,
    LimitExceededError,
    ReadResult,
    UnreadableFileError,
    decode_chunks,
    iter_lines,
    line_body,
    skip_counts,
    unique_column_names,
)


class _Number(str):
    """A JSON number kept as the text it was written as (no float rounding, 1.50 stays 1.50)."""

    __slots__ = ()


def _loads(text: str) -> Any:
    return json.loads(text, parse_float=_Number, parse_int=_Number)


def _number_text(value: int | Decimal) -> str:
    """A streamed number (ijson gives int or Decimal) as written: every digit and the exponent are
    kept. Plain notation comes back exactly; exponent notation keeps its value and digits (1.5e3 may
    come back as 15e2)."""
    text = str(value)
    if "E" not in text:
        return text
    assert isinstance(value, Decimal)
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    if exponent > 0:
        return f"{'-' if sign else ''}{''.join(map(str, digits))}e{exponent}"
    if -exponent - len(digits) > 20:
        # Plain notation would only pad zeros that the source did not write.
        return text.replace("E", "e")
    return format(value, "f")


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
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return _number_text(value)
    return json.dumps(value, ensure_ascii=False)


_TEXT_OF_TYPE: dict[type, Callable[[Any], str | None]] = {
    str: lambda value: value,
    _Number: str,
    int: _number_text,
    Decimal: _number_text,
    bool: lambda value: "true" if value else "false",
    type(None): lambda _: None,
    list: _as_json,
}


def _as_text(value: Any) -> str | None:
    return _TEXT_OF_TYPE.get(type(value), _as_json)(value)


def flatten(record: dict[str, Any], prefix: str = "") -> dict[str, str | None]:
    """A JSON object as dotted-path keys to text values; an empty nested object contributes nothing."""
    flat: dict[str, str | None] = {}
    text_of = _TEXT_OF_TYPE
    for key, value in record.items():
        kind = type(value)
        if kind is dict:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = text_of.get(kind, _as_json)(value)
    return flat


def _json_type(value: Any) -> str:
    if isinstance(value, str):
        return "number" if isinstance(value, _Number) else "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | Decimal):
        return "number"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else "null"


_Parsed = tuple[int, dict[str, str | None], str | None]

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]")


def _depth_exceeds(text: str, max_depth: int) -> bool:
    """True when the JSON text nests arrays and objects deeper than `max_depth`."""
    if text.count("[") + text.count("{") <= max_depth:
        return False
    depth = 0
    for char in _NOT_BRACKET.sub("", _STRING.sub("", text)):
        depth += 1 if char in "[{" else -1
        if depth > max_depth:
            return True
    return False


def _depth_error(path: Path, limits: ReadLimits, where: str) -> LimitExceededError:
    return LimitExceededError(
        path,
        "max_json_depth",
        limits.max_json_depth,
        f"{where} nests arrays and objects deeper than {limits.max_json_depth} levels",
    )


def _jsonl_records(
    path: Path, encoding: str, limits: ReadLimits, skipped: dict[str, int], records_path: str | None = None
) -> Iterator[_Parsed]:
    """One record per line; with `records_path`, each line is a page (an API pull) whose records sit
    at that dotted path, and `source_row` numbers the records in file order."""
    if records_path:
        yield from _paged_records(path, encoding, limits, skipped, records_path)
        return
    blank_run = 0
    for number, line in enumerate(iter_lines(path, encoding, max_line_bytes=limits.max_line_bytes), start=1):
        body, _ = line_body(line)
        if not body.strip():
            blank_run += 1
            continue
        # Blank lines count once a line follows them; those ending the file are not rows.
        skipped["blank"] += blank_run
        blank_run = 0
        if _depth_exceeds(body, limits.max_json_depth):
            raise _depth_error(path, limits, f"line {number}")
        try:
            value = _loads(body)
        except json.JSONDecodeError as error:
            yield number, {}, f"line is not valid JSON: {error.msg} at column {error.colno}"
            continue
        if not isinstance(value, dict):
            yield number, {}, f"line holds a JSON {_json_type(value)}, not an object"
            continue
        yield number, flatten(value), None


def _paged_records(
    path: Path, encoding: str, limits: ReadLimits, skipped: dict[str, int], records_path: str
) -> Iterator[_Parsed]:
    record = 0
    for number, _flat, error in _jsonl_records(path, encoding, limits, skipped):
        if error is not None:
            record += 1
            yield record, {}, f"page on line {number}: {error}"
            continue
        items = _page_items(_loads(_line_text(path, encoding, number, limits)), records_path)
        if isinstance(items, str):
            record += 1
            yield record, {}, f"page on line {number}: {items}"
            continue
        for item in items:
            record += 1
            if isinstance(item, dict):
                yield record, flatten(item), None
            else:
                yield (
                    record,
                    {},
                    f"page on line {number}: an item is a JSON {_json_type(item)}, not an object",
                )


def _line_text(path: Path, encoding: str, wanted: int, limits: ReadLimits) -> str:
    for number, line in enumerate(iter_lines(path, encoding, max_line_bytes=limits.max_line_bytes), start=1):
        if number == wanted:
            return line_body(line)[0]
    raise UnreadableFileError(f"{path}: line {wanted} vanished while reading")


def _page_items(page: Any, records_path: str) -> list[Any] | str:
    """The record array at `records_path` in one page, or what is wrong instead."""
    node = page
    for key in records_path.split("."):
        if not isinstance(node, dict) or key not in node:
            keys = sorted(node) if isinstance(node, dict) else []
            return f"records_path {records_path!r}: no key {key!r} (keys there: {keys})"
        node = node[key]
    if not isinstance(node, list):
        return f"records_path {records_path!r} holds a JSON {_json_type(node)}, not an array"
    return node


_BRACKET_DELTA = [0] * 256
for _byte in b"[{":
    _BRACKET_DELTA[_byte] = 1
for _byte in b"]}":
    _BRACKET_DELTA[_byte] = -1
_NOT_BRACKET_OR_QUOTE = bytes(byte for byte in range(256) if byte not in b'[]{}"')
_QUOTED = re.compile(rb'"[^"]*"')


class _DepthGuardedStream:
    """The document as UTF-8 bytes for ijson, decoded strictly from the spec's encoding, each chunk
    checked before ijson sees it: nesting past `max_json_depth` raises LimitExceededError, so no
    deep structure is ever built. Strings are cut out (with their escapes) in a few byte-level
    passes per chunk; a string still open at a chunk's end waits for the next chunk."""

    def __init__(self, path: Path, encoding: str, limits: ReadLimits) -> None:
        self._path = path
        self._limits = limits
        self._chunks = decode_chunks(path, encoding)
        self._carry = b""
        self._depth = 0
        self._offset = 0

    def read(self, size: int = -1) -> bytes:
        if size == 0:
            return b""
        while True:
            text = next(self._chunks, None)
            if text is None:
                # An unterminated string at the end: ijson reports the document as incomplete.
                tail, self._carry = self._carry, b""
                return tail
            data = self._carry + text.encode("utf-8")
            unescaped = _unescaped(data)
            end = len(data) if unescaped.count(b'"') % 2 == 0 else _open_string_start(data)
            safe, self._carry = data[:end], data[end:]
            if len(self._carry) > self._limits.max_line_bytes:
                raise LimitExceededError(
                    self._path,
                    "max_line_bytes",
                    self._limits.max_line_bytes,
                    f"the string starting at byte {self._offset + end} is longer than "
                    f"{self._limits.max_line_bytes} bytes",
                )
            self._check_depth(unescaped if end == len(data) else _unescaped(safe), len(safe))
            self._offset += len(safe)
            if safe:
                return safe

    def _check_depth(self, unescaped: bytes, size: int) -> None:
        kept = unescaped.translate(None, _NOT_BRACKET_OR_QUOTE)
        # Cut the strings: empty ones (most, once their text is gone) by a plain replace, then any
        # left, which hold brackets, by a pattern. Merging two neighbouring strings is harmless.
        outside = kept.replace(b'""', b"")
        if b'"' in outside:
            outside = _QUOTED.sub(b"", outside)
        if not outside:
            return
        deltas = map(_BRACKET_DELTA.__getitem__, outside)
        if max(accumulate(deltas, initial=self._depth)) > self._limits.max_json_depth:
            where = f"the document (before byte {self._offset + size})"
            raise _depth_error(self._path, self._limits, where)
        opened = outside.count(b"[") + outside.count(b"{")
        self._depth += opened - (len(outside) - opened)


def _unescaped(data: bytes) -> bytes:
    # Outside strings valid JSON holds no backslash, so every escape pair can simply go.
    return data.replace(b"\\\\", b"").replace(b'\\"', b"")


def _open_string_start(data: bytes) -> int:
    """Where the string that does not close in `data` opens: its last quote not escaped."""
    position = len(data)
    while True:
        position = data.rfind(b'"', 0, position)
        backslashes = position - len(data[:position].rstrip(b"\\"))
        if position <= 0 or backslashes % 2 == 0:
            return max(position, 0)


def _records_prefix(spec: JsonFormat) -> str:
    return ".".join([*(spec.records_path.split(".") if spec.records_path else []), "item"])


def _document_records(path: Path, spec: JsonFormat, limits: ReadLimits) -> Iterator[_Parsed]:
    stream = _DepthGuardedStream(path, spec.encoding, limits)
    number = 0
    try:
        for item in ijson.items(stream, _records_prefix(spec), use_float=False):
            number += 1
            if isinstance(item, dict):
                yield number, flatten(item), None
            else:
                yield number, {}, f"array item is a JSON {_json_type(item)}, not an object"
    except ijson.JSONError as error:
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UnreadableFileError(
            f"{path}: not a valid JSON document ({detail}); "
            "if it holds one object per line, set the feed spec's format type to 'jsonl'"
        ) from error
    except (ValueError, SystemError) as error:
        # ijson converts numbers with int(), which refuses more than 4300 digits.
        raise UnreadableFileError(f"{path}: holds a number too long to read: {error}") from error
    if number == 0:
        _check_records_path(path, spec, limits)


def _check_records_path(path: Path, spec: JsonFormat, limits: ReadLimits) -> None:
    """No record came out: say why, unless `records_path` is an empty array (a second, event-level
    pass, only ever made for a file without records)."""
    events = ijson.basic_parse(_DepthGuardedStream(path, spec.encoding, limits), use_float=False)
    walked: list[str] = []
    for key in spec.records_path.split(".") if spec.records_path else []:
        event, _ = next(events)
        keys: list[str] = []
        found = False
        if event == "start_map":
            depth = 0
            for event, value in events:
                if depth == 0 and event == "map_key":
                    if value == key:
                        found = True
                        break
                    keys.append(value)
                elif event in ("start_map", "start_array"):
                    depth += 1
                elif event in ("end_map", "end_array"):
                    depth -= 1
                    if depth < 0:
                        break
        if not found:
            where = ".".join(walked) or "the top level"
            raise UnreadableFileError(
                f"{path}: records_path {spec.records_path!r}: no key {key!r} at {where} "
                f"(keys there: {sorted(keys)}); check the feed spec's records_path"
            )
        walked.append(key)
    event, _ = next(events)
    if event != "start_array":
        kinds = {"start_map": "object", "string": "string", "number": "number", "boolean": "boolean"}
        hint = "" if spec.records_path else " (or, for one object per line, the format type 'jsonl')"
        raise UnreadableFileError(
            f"{path}: records_path {spec.records_path or '(top level)'!r} holds a JSON "
            f"{kinds.get(event, 'null')}, not an array of records: check the feed spec's records_path{hint}"
        )


def _spill_flat(parsed: Iterator[_Parsed], work_dir: Path, stem: str) -> pl.LazyFrame:
    """Spill records whose keys are learnt as they come: one Parquet file per batch, each holding the
    keys seen so far, read back as one frame with every key as a column in order of first appearance."""
    work_dir.mkdir(parents=True, exist_ok=True)
    columns: dict[str, str] = {}
    files: list[Path] = []
    batch: list[_Parsed] = []

    def flush() -> None:
        arrays = {
            column: pa.array([flat.get(key) for _, flat, _ in batch], pa.string())
            for key, column in columns.items()
        }
        arrays[SOURCE_ROW] = pa.array([number for number, _, _ in batch], pa.int64())
        arrays[READ_ERROR] = pa.array([error for _, _, error in batch], pa.string())
        arrays[ROW_KIND] = pa.array(["data"] * len(batch), pa.string())
        handle, name = tempfile.mkstemp(prefix=f"{stem}.", suffix=".parquet", dir=work_dir)
        os.close(handle)
        pq.write_table(pa.table(arrays), name)
        files.append(Path(name))
        batch.clear()

    for record in parsed:
        for key in record[1]:
            if key not in columns:
                columns[key] = f"__column_{len(columns)}"
        batch.append(record)
        if len(batch) >= SPILL_BATCH_ROWS:
            flush()
    if batch:
        flush()
    names = unique_column_names(list(columns))
    if not files:
        return pl.LazyFrame(
            schema={
                **dict.fromkeys(names, pl.String),
                SOURCE_ROW: pl.Int64,
                READ_ERROR: pl.String,
                ROW_KIND: pl.String,
            }
        )
    frame = pl.concat([pl.scan_parquet(file) for file in files], how="diagonal")
    return frame.select(
        *(pl.col(column).alias(name) for column, name in zip(columns.values(), names, strict=True)),
        SOURCE_ROW,
        READ_ERROR,
        ROW_KIND,
    )


def read_json_records(
    path: Path, spec: JsonFormat, work_dir: Path, *, limits: ReadLimits = DEFAULT_LIMITS
) -> ReadResult:
    """Read JSON lines or a JSON document into String columns plus `source_row`, `_read_error` and
    `_row_kind` (always "data").

    `source_row` is the line number in a JSON-lines file and the 1-based array index in a document.
    A JSON-lines line that does not parse is kept as a record holding only its `_read_error`.
    Columns are every dotted path seen in any record, in order of first appearance. Raises
    LimitExceededError for nesting deeper than `limits.max_json_depth` or a JSON-lines line longer
    than `limits.max_line_bytes`, and UnreadableFileError for a document that is not valid JSON.
    """
    skipped = skip_counts()
    if spec.type == "jsonl":
        parsed = _jsonl_records(path, spec.encoding, limits, skipped, spec.records_path)
    else:
        parsed = _document_records(path, spec, limits)
    return ReadResult(_spill_flat(parsed, work_dir, path.stem), skipped)
