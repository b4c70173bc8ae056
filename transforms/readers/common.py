"""What every reader shares: the result contract (`ReadResult`, its column names and skip reasons),
the error types, header-name repair, strict text decoding with byte positions, the line-length
guard, and the Parquet spill used by the row-by-row parsers.

Format-specific parsing belongs in the reader modules (`delimited`, `excel`, `fixed_width`,
`json_records`); nothing here knows about a file format.
"""

from __future__ import annotations

import codecs
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

SOURCE_ROW = "source_row"
READ_ERROR = "_read_error"
ROW_KIND = "_row_kind"

RowKind = Literal["data", "footer"]

SKIP_REASONS: tuple[str, ...] = ("header", "preamble", "blank", "comment", "record_prefix", "footer")
"""Why a physical line or sheet row was not emitted as a record (the keys of `ReadResult.skipped`):

- `header`: the header row (every physical line of it, for a header with a quoted line break);
- `preamble`: lines above the header that `skip_rows` skips, or sheet rows above `header_row`;
- `blank`: a blank line or sheet row outside the footer zone (CSV: no characters at all; fixed
  width, JSON lines and sheets: nothing but white space);
- `comment`: a CSV line starting with `comment_prefix`;
- `record_prefix`: a fixed-width line, not blank, that does not start with `record_prefix`;
- `footer`: a blank line or sheet row inside the footer zone: the last `footer_rows` rows counted
  back from the last non-blank one, blank ones included, never reaching above the first row after
  the header (non-blank rows there are records of kind "footer", not skipped).

Blank lines after the last non-blank line of a file are not rows at all and are not counted. Every
other physical line is a record or counted here once (a record spanning lines counts once, so the
identity lines == records + skipped holds for files without such records). A JSON document's
records are its array items; nothing in it is skipped.
"""

CHUNK_BYTES = 1 << 22
"""Bytes read at a time when decoding or transcoding: memory stays flat whatever the file size."""

SPILL_BATCH_ROWS = 50_000


class UnreadableFileError(Exception):
    """The file cannot be read at all; the message names the file and says what to fix."""


class LimitExceededError(UnreadableFileError):
    """The file breaches one of the `ReadLimits`; the message names the file, the limit as
    `limits.<name>`, its value and what was found."""

    def __init__(self, path: Path, limit: str, value: float, found: str) -> None:
        super().__init__(
            f"{path}: {found}, over limits.{limit} = {value}; the file is refused (raise the limit "
            "only for a sender you trust)"
        )
        self.limit = limit


@dataclass
class ReadResult:
    """What a reader returns: the records, and an account of every physical row that is not one.

    `records` holds the source fields as String columns plus `source_row` (Int64), `_read_error`
    (String, null for a well-formed record) and `_row_kind` (String: "data", or "footer" for a
    non-blank row inside the footer zone, which the loader validates rather than drops).
    `skipped` counts the physical lines or sheet rows not emitted, by reason (every key of
    `SKIP_REASONS` is present). `notes` are problems a person should know that did not stop the read.
    """

    records: pl.LazyFrame
    skipped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SKIP_REASONS, 0))
    notes: list[str] = field(default_factory=list)


def skip_counts(**counts: int) -> dict[str, int]:
    """A `skipped` mapping: every reason of `SKIP_REASONS`, zero unless given."""
    unknown = set(counts) - set(SKIP_REASONS)
    if unknown:
        raise ValueError(f"unknown skip reasons {sorted(unknown)}")
    return {reason: counts.get(reason, 0) for reason in SKIP_REASONS}


def unique_column_names(raw_names: Sequence[str | None]) -> list[str]:
    """Header names made usable: stripped, BOM removed, blanks and duplicates renamed deterministically.

    A blank name becomes `column_<1-based position>`; the second `name` becomes `name_2`, the third
    `name_3`. Names that would collide with `source_row`, `_read_error` or `_row_kind` are renamed the
    same way, so a source column can never overwrite the reader's own columns.
    """
    bases = []
    for position, raw in enumerate(raw_names, start=1):
        name = (raw or "").replace("\ufeff", "").strip()
        bases.append(name or f"column_{position}")
    reserved = {SOURCE_ROW, READ_ERROR, ROW_KIND}
    taken = set(bases) | reserved
    used: set[str] = set()
    names = []
    for base in bases:
        if base not in used and base not in reserved:
            name = base
        else:
            suffix = 2
            while f"{base}_{suffix}" in taken:
                suffix += 1
            name = f"{base}_{suffix}"
            taken.add(name)
        used.add(name)
        names.append(name)
    return names


def canonical_encoding(path: Path, encoding: str) -> str:
    """The codec's canonical name (`utf-8`, `cp1252`, ...), or UnreadableFileError for an unknown one."""
    try:
        return codecs.lookup(encoding).name
    except LookupError as error:
        raise UnreadableFileError(
            f"{path}: unknown encoding {encoding!r} in the feed spec: use a Python codec name such as "
            "'utf-8', 'cp1252' or 'latin-1'"
        ) from error


class LineLengthGuard:
    """Watches a file's bytes, fed chunk by chunk, for a line longer than `max_line_bytes`, holding
    no line in memory.

    Both LF and a bare CR end a line here, so classic Mac files are not one long line. In UTF-16
    and other encodings that are not ASCII-compatible a stray 0x0A byte may end a "line" early, so
    the guard can only miss a long line there, never refuse a good one.
    """

    def __init__(self, path: Path, max_line_bytes: int) -> None:
        self._path = path
        self._limit = max_line_bytes
        self._offset = 0
        self._line_start = 0

    def feed(self, chunk: bytes | bytearray) -> None:
        """Take the next chunk; raises LimitExceededError at the first line past the limit."""
        # A window no longer than the limit cannot hold a whole long line, so only the lines that
        # cross a window boundary need measuring: a few byte searches per window, most of them short.
        start = 0
        while start < len(chunk):
            end = min(len(chunk), start + self._limit)
            ends = (b"\n", b"\r") if chunk.find(b"\r", start, end) != -1 else (b"\n",)
            first = min(
                (found for end_byte in ends if (found := chunk.find(end_byte, start, end)) != -1), default=-1
            )
            if first != -1:
                self._check(self._offset + first)
                last = max(chunk.rfind(end_byte, start, end) for end_byte in ends)
                self._line_start = self._offset + last + 1
            self._check(self._offset + end)
            start = end
        self._offset += len(chunk)

    def _check(self, position: int) -> None:
        if position - self._line_start > self._limit:
            raise LimitExceededError(
                self._path,
                "max_line_bytes",
                self._limit,
                f"the line starting at byte {self._line_start} is longer than {self._limit} bytes",
            )


def check_line_lengths(path: Path, max_line_bytes: int) -> None:
    """One pass of byte searches over the file: LimitExceededError for a line longer than
    `max_line_bytes`, found without ever holding it (so Polars is never handed one)."""
    guard = LineLengthGuard(path, max_line_bytes)
    buffer = bytearray(CHUNK_BYTES)
    try:
        with path.open("rb") as handle:
            while size := handle.readinto(buffer):
                guard.feed(buffer if size == len(buffer) else buffer[:size])
    except OSError as error:
        raise UnreadableFileError(f"{path}: cannot be opened: {error}") from error


def decode_chunks(path: Path, encoding: str, *, max_line_bytes: int | None = None) -> Iterator[str]:
    """The file's text in chunks, decoded strictly; a bad byte raises UnreadableFileError with its offset.

    A UTF-8 byte-order mark is dropped (`utf-8` and `utf-8-sig` alike), since no feed means it as data.
    Text holding NUL characters is refused: that is a binary file, or UTF-16 declared as something else.
    With `max_line_bytes`, a longer line raises LimitExceededError before it is decoded.
    """
    codec = canonical_encoding(path, encoding)
    if codec == "utf-8":
        codec = "utf-8-sig"
    decoder = codecs.getincrementaldecoder(codec)(errors="strict")
    guard = LineLengthGuard(path, max_line_bytes) if max_line_bytes is not None else None
    offset = 0
    try:
        with path.open("rb") as handle:
            while True:
                chunk = handle.read(CHUNK_BYTES)
                if guard is not None:
                    guard.feed(chunk)
                pending = decoder.getstate()[0]
                try:
                    text = decoder.decode(chunk, final=not chunk)
                except UnicodeDecodeError as error:
                    position = offset - len(pending) + error.start
                    raise UnreadableFileError(
                        f"{path}: not valid {encoding} at byte {position}: check the feed spec's encoding "
                        "(or the file is not a text file)"
                    ) from error
                except UnicodeError as error:  # utf-16 / utf-32 without a byte-order mark
                    raise UnreadableFileError(
                        f"{path}: not valid {encoding}: {error}: check the feed spec's encoding"
                    ) from error
                if "\x00" in text:
                    raise UnreadableFileError(
                        f"{path}: holds NUL characters, so it is binary or not {encoding}: check the feed "
                        "spec's encoding and that the file is the text export"
                    )
                offset += len(chunk)
                if text:
                    yield text
                if not chunk:
                    # utf-8-sig keeps a lone b"\xef" or b"\xef\xbb" pending even when final: refuse it.
                    if left := decoder.getstate()[0]:
                        raise UnreadableFileError(
                            f"{path}: not valid {encoding} at byte {offset - len(left)}: the file ends "
                            "inside a character; check the feed spec's encoding"
                        )
                    return
    except OSError as error:
        raise UnreadableFileError(f"{path}: cannot be opened: {error}") from error


def iter_lines(path: Path, encoding: str, *, max_line_bytes: int | None = None) -> Iterator[str]:
    """The file's lines with their terminators (`\\n`, `\\r\\n` or a bare `\\r`), decoded strictly.

    With `max_line_bytes`, memory holds at most about that much of one line: a longer line raises
    LimitExceededError while it is still being read.
    """
    carry = ""
    for text in decode_chunks(path, encoding, max_line_bytes=max_line_bytes):
        text = carry + text
        lines = text.splitlines(keepends=True)
        carry = ""
        # The chunk may end between '\r' and '\n', or mid-line: the last piece waits for the next chunk.
        if lines and (not lines[-1].endswith(("\n", "\r")) or lines[-1].endswith("\r")):
            carry = lines.pop()
        # Pieces split off at \x0b, \x0c ... (not line ends) just before the carry belong to its line.
        while lines and not lines[-1].endswith(("\n", "\r")):
            carry = lines.pop() + carry
        yield from _split_universal(lines)
    if carry:
        yield from _split_universal([carry])


def _split_universal(lines: list[str]) -> Iterator[str]:
    # str.splitlines also breaks on \x0b, \x0c, \x1c-\x1e, \x85, \u2028, \u2029: those are data in
    # a CSV or fixed-width file, so glue them back; only \n, \r\n and \r end a line.
    pending = ""
    for line in lines:
        pending += line
        if pending.endswith(("\n", "\r")):
            yield pending
            pending = ""
    if pending:
        yield pending


def line_body(line: str) -> tuple[str, str]:
    """A line split into its text and its terminator."""
    if line.endswith("\r\n"):
        return line[:-2], "\r\n"
    if line.endswith(("\n", "\r")):
        return line[:-1], line[-1]
    return line, ""


def transcode_to_utf8(
    path: Path, encoding: str, work_dir: Path, *, max_line_bytes: int | None = None
) -> Path:
    """A UTF-8 copy of `path` in `work_dir`, written chunk by chunk; decoding errors name the byte."""
    work_dir.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f"{path.stem}.", suffix=".utf8", dir=work_dir)
    target = Path(name)
    os.close(handle)
    with target.open("w", encoding="utf-8", newline="") as out:
        for text in decode_chunks(path, encoding, max_line_bytes=max_line_bytes):
            out.write(text)
    return target


SpilledRecord = tuple[int, Sequence[str | None], str | None, RowKind]
"""`(source_row, fields, read_error, row_kind)`, as the row-by-row parsers produce them."""


def record_schema(names: Sequence[str]) -> pa.Schema:
    """The Arrow schema of the reader contract: String source columns, then the reader's own."""
    return pa.schema(
        [
            *(pa.field(column, pa.string()) for column in names),
            (SOURCE_ROW, pa.int64()),
            (READ_ERROR, pa.string()),
            (ROW_KIND, pa.string()),
        ]
    )


def spill_records(
    names: Sequence[str], records: Iterable[SpilledRecord], work_dir: Path, stem: str
) -> pl.LazyFrame:
    """Write records to a Parquet file in `work_dir` batch by batch and scan it: memory holds one
    batch, never the file. The records are consumed here, not when the frame is collected."""
    work_dir.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f"{stem}.", suffix=".parquet", dir=work_dir)
    target = Path(name)
    schema = record_schema(names)
    width = len(names)
    os.close(handle)
    with target.open("wb") as sink, pq.ParquetWriter(sink, schema) as writer:
        columns: list[list[str | None]] = [[] for _ in range(width)]
        rows: list[int] = []
        errors: list[str | None] = []
        kinds: list[str] = []

        def flush() -> None:
            arrays = [pa.array(column, pa.string()) for column in columns]
            arrays += [
                pa.array(rows, pa.int64()),
                pa.array(errors, pa.string()),
                pa.array(kinds, pa.string()),
            ]
            writer.write_batch(pa.record_batch(arrays, schema=schema))
            for column in columns:
                column.clear()
            rows.clear()
            errors.clear()
            kinds.clear()

        for source_row, fields, error, kind in records:
            for column, value in zip(columns, fields, strict=True):
                column.append(value)
            rows.append(source_row)
            errors.append(error)
            kinds.append(kind)
            if len(rows) >= SPILL_BATCH_ROWS:
                flush()
        if rows:
            flush()
    return pl.scan_parquet(target)
