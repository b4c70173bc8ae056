"""What every reader shares: the output contract's column names, the error type, header-name repair,
strict text decoding with byte positions, and the Parquet spill used by the row-by-row parsers.

Format-specific parsing belongs in the reader modules (`delimited`, `excel`, `fixed_width`,
`json_records`); nothing here knows about a file format.
"""

from __future__ import annotations

import codecs
import os
import tempfile
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

SOURCE_ROW = "source_row"
READ_ERROR = "_read_error"

CHUNK_BYTES = 1 << 22
"""Bytes read at a time when decoding or transcoding: memory stays flat whatever the file size."""

SPILL_BATCH_ROWS = 50_000


class UnreadableFileError(Exception):
    """The file cannot be read at all; the message names the file and says what to fix."""


def unique_column_names(raw_names: Sequence[str | None]) -> list[str]:
    """Header names made usable: stripped, BOM removed, blanks and duplicates renamed deterministically.

    A blank name becomes `column_<1-based position>`; the second `name` becomes `name_2`, the third
    `name_3`. Names that would collide with `source_row` or `_read_error` are renamed the same way,
    so a source column can never overwrite the reader's own columns.
    """
    bases = []
    for position, raw in enumerate(raw_names, start=1):
        name = (raw or "").replace("\ufeff", "").strip()
        bases.append(name or f"column_{position}")
    reserved = {SOURCE_ROW, READ_ERROR}
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


def decode_chunks(path: Path, encoding: str) -> Iterator[str]:
    """The file's text in chunks, decoded strictly; a bad byte raises UnreadableFileError with its offset.

    A UTF-8 byte-order mark is dropped (`utf-8` and `utf-8-sig` alike), since no feed means it as data.
    Text holding NUL characters is refused: that is a binary file, or UTF-16 declared as something else.
    """
    codec = canonical_encoding(path, encoding)
    if codec == "utf-8":
        codec = "utf-8-sig"
    decoder = codecs.getincrementaldecoder(codec)(errors="strict")
    offset = 0
    try:
        with path.open("rb") as handle:
            while True:
                chunk = handle.read(CHUNK_BYTES)
                pending = decoder.getstate()[0]
                try:
                    text = decoder.decode(chunk, final=not chunk)
                except UnicodeDecodeError as error:
                    position = offset - len(pending) + error.start
                    raise UnreadableFileError(
                        f"{path}: not valid {encoding} at byte {position}: check the feed spec's encoding "
                        "(or the file is not a text file)"
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
                    return
    except OSError as error:
        raise UnreadableFileError(f"{path}: cannot be opened: {error}") from error


def iter_lines(path: Path, encoding: str) -> Iterator[str]:
    """The file's lines with their terminators (`\\n`, `\\r\\n` or a bare `\\r`), decoded strictly."""
    carry = ""
    for text in decode_chunks(path, encoding):
        text = carry + text
        lines = text.splitlines(keepends=True)
        carry = ""
        # The chunk may end between '\r' and '\n', or mid-line: the last piece waits for the next chunk.
        if lines and (not lines[-1].endswith(("\n", "\r")) or lines[-1].endswith("\r")):
            carry = lines.pop()
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


def transcode_to_utf8(path: Path, encoding: str, work_dir: Path) -> Path:
    """A UTF-8 copy of `path` in `work_dir`, written chunk by chunk; decoding errors name the byte."""
    work_dir.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f"{path.stem}.", suffix=".utf8", dir=work_dir)
    target = Path(name)
    os.close(handle)
    with target.open("w", encoding="utf-8", newline="") as out:
        for text in decode_chunks(path, encoding):
            out.write(text)
    return target


def spill_records(
    names: Sequence[str],
    records: Iterable[tuple[int, Sequence[str | None], str | None]],
    work_dir: Path,
    stem: str,
) -> pl.LazyFrame:
    """Write `(source_row, fields, read_error)` records to a Parquet file in `work_dir` batch by batch
    and scan it: memory holds one batch, never the file."""
    work_dir.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f"{stem}.", suffix=".parquet", dir=work_dir)
    target = Path(name)
    schema = pa.schema(
        [
            *(pa.field(column, pa.string()) for column in names),
            (SOURCE_ROW, pa.int64()),
            (READ_ERROR, pa.string()),
        ]
    )
    width = len(names)
    os.close(handle)
    with target.open("wb") as sink, pq.ParquetWriter(sink, schema) as writer:
        columns: list[list[str | None]] = [[] for _ in range(width)]
        rows: list[int] = []
        errors: list[str | None] = []

        def flush() -> None:
            arrays = [pa.array(column, pa.string()) for column in columns]
            arrays += [pa.array(rows, pa.int64()), pa.array(errors, pa.string())]
            writer.write_batch(pa.record_batch(arrays, schema=schema))
            for column in columns:
                column.clear()
            rows.clear()
            errors.clear()

        for source_row, fields, error in records:
            for column, value in zip(columns, fields, strict=True):
                column.append(value)
            rows.append(source_row)
            errors.append(error)
            if len(rows) >= SPILL_BATCH_ROWS:
                flush()
        if rows:
            flush()
    return pl.scan_parquet(target)


def drop_footer(
    records: Iterable[tuple[int, Sequence[str | None], str | None]], footer_rows: int
) -> Iterator[tuple[int, Sequence[str | None], str | None]]:
    """All records but the last `footer_rows`, holding back only that many at a time."""
    if footer_rows <= 0:
        yield from records
        return
    held: deque[tuple[int, Sequence[str | None], str | None]] = deque()
    for record in records:
        held.append(record)
        if len(held) > footer_rows:
            yield held.popleft()
