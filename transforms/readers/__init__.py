"""Readers: one per file format, each a pure function from a file to a LazyFrame of raw records.

Every reader returns the file's fields as String columns named as the source names them (header
names, the spec's column names, or dotted paths for nested JSON), plus two columns:

- `source_row` (Int64): the 1-based position of the record in the file, as CHANNEL_MODEL.md defines it;
- `_read_error` (String): null for a well-formed record, else what is wrong with it (the record is
  then quarantined, never dropped).

A file that cannot be read at all raises `UnreadableFileError`. Mapping to canonical columns and
typing happen in `transforms.normalize`, not here.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from schemas.feed_spec import FileFormat

SOURCE_ROW = "source_row"
READ_ERROR = "_read_error"


class UnreadableFileError(Exception):
    """The file cannot be read at all; the message names the file and says what to fix."""


def read_records(path: Path, file_format: FileFormat, work_dir: Path, *, tolerant: bool = False) -> pl.LazyFrame:
    """Read `path` as `file_format` into raw String columns plus `source_row` and `_read_error`.

    `work_dir` is a scratch folder owned by the caller for transcoded or spilled intermediates; the
    returned LazyFrame may scan files in it, so the caller removes it only after collecting.
    `tolerant=True` selects the slower, more forgiving CSV parser; the caller retries with it when
    the fast path raises a polars error while collecting.
    """
    raise NotImplementedError("readers are being written")
