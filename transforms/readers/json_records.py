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
from collections.abc import Iterator
from decimal import Decimal
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


def _number_text(value: int | Decimal) -> _Number:
    """A streamed number as written: every digit and the exponent are kept. Plain notation comes back
    exactly; exponent notation keeps its value and digits (1.5e3 may come back as 15e2)."""
    if isinstance(value, int):
        return _Number(value)
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    if exponent > 0:
        return _Number(f"{'-' if sign else ''}{''.join(map(str, digits))}e{exponent}")
    if -exponent - len(digits) > 20:
        # Plain notation would only pad zeros that the source did not write.
        return _Number(str(value).replace("E", "e"))
    return _Number(format(value, "f"))


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


_EVENT_TYPES = {
    "start_map": "object",
    "start_array": "array",
    "string": "string",
    "number": "number",
    "boolean": "boolean",
    "null": "null",
}

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
    path: Path, encoding: str, limits: ReadLimits, skipped: dict[str, int]
) -> Iterator[_Parsed]:
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
        except RecursionError as error:  # pragma: no cover - _depth_exceeds refuses such lines first
            raise _depth_error(path, limits, f"line {number}") from error
        if not isinstance(value, dict):
            yield number, {}, f"line holds a JSON {_json_type(value)}, not an object"
            continue
        yield number, flatten(value), None


class _Utf8Stream:
    """The file's text as UTF-8 bytes for ijson, decoded strictly from the spec's encoding."""

    def __init__(self, path: Path, encoding: str) -> None:
        self._chunks = decode_chunks(path, encoding)
        self._pending = b""

    def read(self, size: int = -1) -> bytes:
        if not self._pending and size != 0:
            self._pending = next(self._chunks, "").encode("utf-8")
        if size < 0:
            size = len(self._pending)
        data, self._pending = self._pending[:size], self._pending[size:]
        return data


class _DocumentWalker:
    """Streams the records of a JSON document from ijson's events, never nesting deeper than allowed."""

    def __init__(self, path: Path, spec: JsonFormat, limits: ReadLimits) -> None:
        self._path = path
        self._spec = spec
        self._limits = limits
        self._events = ijson.basic_parse(_Utf8Stream(path, spec.encoding), use_float=False)
        self._depth = 0
        self._record = 0

    def _next(self) -> tuple[str | None, Any]:
        """The next event, or (None, None) once the whole document is read."""
        event, value = next(self._events, (None, None))
        if event in ("start_map", "start_array"):
            self._depth += 1
            if self._depth > self._limits.max_json_depth:
                where = f"record {self._record}" if self._record else "the document"
                raise _depth_error(self._path, self._limits, where)
        elif event in ("end_map", "end_array"):
            self._depth -= 1
        return event, value

    def records(self) -> Iterator[_Parsed]:
        """Every item of the records array, numbered from 1; then the rest of the document is checked."""
        target = self._spec.records_path.split(".") if self._spec.records_path else []
        walked: list[str] = []
        for key in target:
            event, _ = self._next()
            keys: list[str] = []
            if event == "start_map":
                while (found := self._next())[0] == "map_key" and found[1] != key:
                    keys.append(found[1])
                    self._skip_value()
                if found[0] == "map_key":
                    walked.append(key)
                    continue
            where = ".".join(walked) or "the top level"
            raise UnreadableFileError(
                f"{self._path}: records_path {self._spec.records_path!r}: no key {key!r} at {where} "
                f"(keys there: {sorted(keys)}); check the feed spec's records_path"
            )
        event, _ = self._next()
        if event != "start_array":
            raise UnreadableFileError(
                f"{self._path}: records_path {self._spec.records_path or '(top level)'!r} holds a JSON "
                f"{_EVENT_TYPES.get(event, event)}, not an array of records: "
                "check the feed spec's records_path"
            )
        while True:
            self._record += 1
            event, _ = self._next()
            if event == "end_array":
                break
            if event == "start_map":
                yield self._record, self._flat_object(), None
                continue
            if event == "start_array":
                self._skip_value(inside=True)
            yield self._record, {}, f"array item is a JSON {_EVENT_TYPES[event]}, not an object"
        self._record = 0
        # The rest of the document must be valid JSON too (ijson raises on trailing garbage).
        while self._next()[0] is not None:
            pass

    def _skip_value(self, *, inside: bool = False) -> None:
        """Skip the next value (or, with `inside`, the rest of the container just opened)."""
        depth = 1 if inside else 0
        while True:
            event, _ = self._next()
            if event in ("start_map", "start_array"):
                depth += 1
            elif event in ("end_map", "end_array"):
                depth -= 1
            if depth == 0 and event != "map_key":
                return

    def _flat_object(self) -> dict[str, str | None]:
        flat: dict[str, str | None] = {}
        prefixes = [""]
        key = ""
        while True:
            event, value = self._next()
            if event == "map_key":
                key = value
            elif event == "end_map":
                prefixes.pop()
                if not prefixes:
                    return flat
            elif event == "start_map":
                prefixes.append(f"{prefixes[-1]}{key}.")
            elif event == "start_array":
                flat[prefixes[-1] + key] = _as_json(self._array())
            else:
                flat[prefixes[-1] + key] = _as_text(self._scalar(event, value))

    def _array(self) -> list[Any]:
        root: list[Any] = []
        stack: list[Any] = [root]
        key = ""
        while stack:
            event, value = self._next()
            if event in ("end_map", "end_array"):
                stack.pop()
                continue
            if event == "map_key":
                key = value
                continue
            item = (
                {} if event == "start_map" else [] if event == "start_array" else self._scalar(event, value)
            )
            container = stack[-1]
            if isinstance(container, list):
                container.append(item)
            else:
                container[key] = item
            if event in ("start_map", "start_array"):
                stack.append(item)
        return root

    @staticmethod
    def _scalar(event: str, value: Any) -> Any:
        return _number_text(value) if event == "number" else value


def _document_records(path: Path, spec: JsonFormat, limits: ReadLimits) -> Iterator[_Parsed]:
    try:
        yield from _DocumentWalker(path, spec, limits).records()
    except ijson.JSONError as error:
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UnreadableFileError(
            f"{path}: not a valid JSON document ({detail}); "
            "if it holds one object per line, set the feed spec's format type to 'jsonl'"
        ) from error
    except (ValueError, SystemError) as error:
        # ijson converts numbers with int(), which refuses more than 4300 digits.
        raise UnreadableFileError(f"{path}: holds a number too long to read: {error}") from error


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
        parsed = _jsonl_records(path, spec.encoding, limits, skipped)
    else:
        parsed = _document_records(path, spec, limits)
    return ReadResult(_spill_flat(parsed, work_dir, path.stem), skipped)
