"""Readers: one per file format, each a pure function from a file to a LazyFrame of raw records.

Every reader returns the file's fields as String columns named as the source names them (header
names, the spec's column names, or dotted paths for nested JSON), plus two columns:

- `source_row` (Int64): the 1-based position of the record in the file, as CHANNEL_MODEL.md defines it;
- `_read_error` (String): null for a well-formed record, else what is wrong with it (the record is
  then quarantined, never dropped).

A file that cannot be read at all raises `UnreadableFileError`. Mapping to canonical columns and
typing happen in `transforms.normalize`, not here. This module only dispatches on the format.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from schemas.feed_spec import CsvFormat, ExcelFormat, FileFormat, FixedWidthFormat, JsonFormat
from transforms.readers.common import READ_ERROR, SOURCE_ROW, UnreadableFileError, unique_column_names
from transforms.readers.delimited import POLARS_READ_ERRORS, read_delimited
from transforms.readers.excel import read_excel
from transforms.readers.fixed_width import read_fixed_width
from transforms.readers.json_records import read_json_records

__all__ = [
    "POLARS_READ_ERRORS",
    "READ_ERROR",
    "SOURCE_ROW",
    "UnreadableFileError",
    "read_delimited",
    "read_excel",
    "read_fixed_width",
    "read_json_records",
    "read_records",
    "unique_column_names",
]


def read_records(
    path: Path, file_format: FileFormat, work_dir: Path, *, tolerant: bool = False
) -> pl.LazyFrame:
    """Read `path` as `file_format` into raw String columns plus `source_row` and `_read_error`.

    `work_dir` is a scratch folder owned by the caller for transcoded or spilled intermediates; the
    returned LazyFrame may scan files in it, so the caller removes it only after collecting.
    `tolerant=True` selects the slower, more forgiving CSV parser; the caller retries with it when
    the fast path raises one of `POLARS_READ_ERRORS` while collecting. Other formats ignore it.
    Raises UnreadableFileError (here, not at collect time) for a file that cannot be read at all.
    """
    if not path.is_file():
        raise UnreadableFileError(f"{path}: no such file (or it is not a regular file)")
    if isinstance(file_format, CsvFormat):
        return read_delimited(path, file_format, work_dir, tolerant=tolerant)
    if isinstance(file_format, ExcelFormat):
        return read_excel(path, file_format)
    if isinstance(file_format, FixedWidthFormat):
        return read_fixed_width(path, file_format, work_dir)
    if isinstance(file_format, JsonFormat):
        return read_json_records(path, file_format, work_dir)
    raise TypeError(f"no reader for file format {type(file_format).__name__}")
