"""Readers: one per file format, each a pure function from a file to a `ReadResult` of raw records.

Every reader returns the file's fields as String columns named as the source names them (header
names, the spec's column names, or dotted paths for nested JSON), plus three columns:

- `source_row` (Int64): the 1-based position of the record in the file, as CHANNEL_MODEL.md defines it;
- `_read_error` (String): null for a well-formed record, else what is wrong with it (the record is
  then quarantined, never dropped);
- `_row_kind` (String): "data", or "footer" for a record in the footer zone (`footer_rows`), which
  the loader validates instead of dropping.

Beside the records, `ReadResult.skipped` counts every physical line or sheet row that is not a
record, by reason (see `SKIP_REASONS`), and `ReadResult.notes` lists problems that did not stop the
read. A file that cannot be read at all raises `UnreadableFileError`; one that breaches a
`ReadLimits` bound raises its subclass `LimitExceededError`. Mapping to canonical columns and typing
happen in `transforms.normalize`, not here. This module only dispatches on the format (to read a
file, and to estimate its records for a progress bar).
"""

from __future__ import annotations

from pathlib import Path

from schemas.feed_spec import CsvFormat, ExcelFormat, FileFormat, FixedWidthFormat, JsonFormat, X12Format
from schemas.limits import DEFAULT_LIMITS, ReadLimits
from transforms.readers.common import (
    READ_ERROR,
    ROW_KIND,
    SKIP_REASONS,
    SOURCE_ROW,
    LimitExceededError,
    ReadResult,
    UnreadableFileError,
    unique_column_names,
)
from transforms.readers.delimited import POLARS_READ_ERRORS, read_delimited
from transforms.readers.excel import read_excel
from transforms.readers.fixed_width import read_fixed_width
from transforms.readers.json_records import read_json_records
from transforms.readers.x12 import estimate_records as estimate_x12_records
from transforms.readers.x12 import read_x12

__all__ = [
    "POLARS_READ_ERRORS",
    "READ_ERROR",
    "ROW_KIND",
    "SKIP_REASONS",
    "SOURCE_ROW",
    "LimitExceededError",
    "ReadResult",
    "UnreadableFileError",
    "estimate_records",
    "read_delimited",
    "read_excel",
    "read_fixed_width",
    "read_json_records",
    "read_records",
    "read_x12",
    "unique_column_names",
]


def read_records(
    path: Path,
    file_format: FileFormat,
    work_dir: Path,
    *,
    tolerant: bool = False,
    limits: ReadLimits = DEFAULT_LIMITS,
) -> ReadResult:
    """Read `path` as `file_format`: raw String columns plus `source_row`, `_read_error` and
    `_row_kind`, with the skipped rows counted and the read's notes.

    `work_dir` is a scratch folder owned by the caller for transcoded or spilled intermediates; the
    returned LazyFrame may scan files in it, so the caller removes it only after collecting.
    `tolerant=True` selects the slower, more forgiving CSV parser; the caller retries with it when
    the fast path raises one of `POLARS_READ_ERRORS` while collecting. Other formats ignore it.
    Raises UnreadableFileError (here, not at collect time) for a file that cannot be read at all,
    and LimitExceededError for one that breaches `limits`.
    """
    if not path.is_file():
        raise UnreadableFileError(f"{path}: no such file (or it is not a regular file)")
    if isinstance(file_format, CsvFormat):
        return read_delimited(path, file_format, work_dir, tolerant=tolerant, limits=limits)
    if isinstance(file_format, ExcelFormat):
        return read_excel(path, file_format, limits=limits)
    if isinstance(file_format, FixedWidthFormat):
        return read_fixed_width(path, file_format, work_dir, limits=limits)
    if isinstance(file_format, JsonFormat):
        return read_json_records(path, file_format, work_dir, limits=limits)
    if isinstance(file_format, X12Format):
        return read_x12(path, file_format, work_dir, limits)
    raise TypeError(f"no reader for file format {type(file_format).__name__}")


SAMPLE_BYTES = 1 << 16


def estimate_records(path: Path, size: int, file_format: FileFormat) -> int | None:
    """Roughly how many records `read_records` will give, from the file's first 64 KiB, for a
    progress bar: an X12 interchange's record segments, any other file's lines."""
    if isinstance(file_format, X12Format):
        return estimate_x12_records(path, size, file_format)
    try:
        with path.open("rb") as handle:
            sample = handle.read(SAMPLE_BYTES)
    except OSError:
        return None
    lines = sample.count(b"\n")
    if not lines or len(sample) < SAMPLE_BYTES:
        return lines or None
    return int(size / (len(sample) / lines))
