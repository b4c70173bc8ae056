"""Fixed-width text: fields cut from each line by 1-based start and width, as a lazy Polars scan.

Only cutting lines into stripped String fields belongs here; which lines are data records is the
spec's `record_prefix` (header and trailer records carry other prefixes) or its `skip_rows` and
`footer_rows`. Blank lines are not records and are not counted in `source_row`.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from schemas.feed_spec import FixedWidthFormat
from transforms.readers.common import (
    READ_ERROR,
    SOURCE_ROW,
    UnreadableFileError,
    canonical_encoding,
    decode_chunks,
    transcode_to_utf8,
    unique_column_names,
)


def _utf8_source(path: Path, spec: FixedWidthFormat, work_dir: Path) -> Path:
    if canonical_encoding(path, spec.encoding) in ("utf-8", "utf-8-sig"):
        # Polars would fail only at collect time on bad UTF-8; decoding the file once here turns
        # that into an UnreadableFileError that names the byte.
        for _ in decode_chunks(path, spec.encoding):
            pass
        return path
    return transcode_to_utf8(path, spec.encoding, work_dir)


def read_fixed_width(path: Path, spec: FixedWidthFormat, work_dir: Path) -> pl.LazyFrame:
    """Read a fixed-width file into String columns plus `source_row` and `_read_error`.

    `source_row` numbers the data records from 1. A line shorter than the layout is kept with
    `_read_error` saying how long it is; the fields it does not reach are null.
    """
    source = _utf8_source(path, spec, work_dir)
    lines = pl.scan_csv(
        source,
        has_header=False,
        separator="\x00",
        quote_char=None,
        schema={"line": pl.String},
        empty_string_is_null=False,
        raise_if_empty=False,
        encoding="utf8",
    ).with_row_index("line_no")
    line = pl.col("line")
    if spec.record_prefix is not None:
        records = lines.filter(line.str.starts_with(spec.record_prefix))
    else:
        records = lines.filter(pl.col("line_no") >= spec.skip_rows, line.str.strip_chars() != "")
        if spec.footer_rows:
            try:
                count = records.select(pl.len()).collect().item()
            except pl.exceptions.PolarsError as error:
                raise UnreadableFileError(f"{path}: cannot be read as text lines: {error}") from error
            records = records.with_row_index("__record").filter(pl.col("__record") < count - spec.footer_rows)
    names = unique_column_names([column.name for column in spec.columns])
    needed = max(column.start + column.width - 1 for column in spec.columns)
    length = line.str.len_chars()
    fields = [
        pl.when(length >= column.start)
        .then(line.str.slice(column.start - 1, column.width).str.strip_chars())
        .alias(name)
        for column, name in zip(spec.columns, names, strict=True)
    ]
    error = (
        pl.when(length < needed)
        .then(pl.format("line has {} characters, the layout needs {}", length, pl.lit(needed)))
        .otherwise(pl.lit(None, pl.String))
    )
    return records.with_row_index(SOURCE_ROW, offset=1).select(
        *fields, pl.col(SOURCE_ROW).cast(pl.Int64), error.alias(READ_ERROR)
    )
