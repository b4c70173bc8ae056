"""Delimited text (CSV of any dialect): a fast Polars scan and a tolerant row-by-row parser.

The fast path is a lazy `pl.scan_csv` with every column as String, guarded by a survey of the
file's lines (see `_survey`) so Polars can never pad, merge or count a record silently. Files or
dialects Polars cannot parse go to the tolerant parser, which keeps every record and says what is
wrong with it in `_read_error`. Mapping and typing of the columns belong in `transforms.normalize`.

Definitions shared by both paths, so they number, count and refuse records identically:
- `skip_rows` counts physical lines (the preamble); blank and comment lines before the header are
  skipped too. The header may span lines (a quoted name with a line break).
- A blank line (no characters at all) and a line starting with `comment_prefix` are not records.
  `source_row` counts records from 1.
- The record width is the header's field count, unless the first `WIDTH_SAMPLE_RECORDS` records
  mostly have another: then the data sets the width, the header names the columns as far as it can
  (re-read without quote handling, or on another separator), and `notes` says so.
- A record whose field count differs from the width is kept, padded with nulls or cut, with
  `_read_error` saying "record has 7 fields, the header has 5".
- A quoted field that never closes, or that spans lines and closes with text after the closing
  quote, is taken as an unbalanced stray quote: its first line is re-read with quote characters as
  plain text and flagged, and the following lines are read as records of their own, so a stray
  quote can never swallow the rest of the file.
- `footer_rows: N` marks the last N physical lines, counted back from the last non-blank line: a
  record ending in them has `_row_kind` "footer", a blank line in them is skipped as "footer".
  The zone never reaches above the first line after the header.
- A second table in the file is refused (`UnreadableFileError` naming its first line): a record
  repeating the header line, or, right after a blank line, two records with the same field count
  that is neither the width nor the field count of the record before the blank line. Records in
  the footer zone are exempt.
"""

from __future__ import annotations

import bisect
import os
import re
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from schemas.feed_spec import CsvFormat
from schemas.limits import DEFAULT_LIMITS, ReadLimits
from transforms.readers.common import (
    READ_ERROR,
    ROW_KIND,
    SOURCE_ROW,
    LimitExceededError,
    ReadResult,
    RowKind,
    SpilledRecord,
    UnreadableFileError,
    canonical_encoding,
    check_line_lengths,
    iter_lines,
    line_body,
    skip_counts,
    spill_records,
    transcode_to_utf8,
    unique_column_names,
)

CSV_CHUNK_BYTES = 4 << 20
"""Bytes of CSV text Polars' streaming scan cuts per chunk. Polars has no `scan_csv` argument for
it, only the `POLARS_CSV_CHUNK_SIZE` environment variable, read when a scan runs: this module sets
it unless it is set already (so an operator can still choose). With Polars' own default a 5M-line
ingest peaked at 960-990 MiB; with 4 MiB at 700-725 MiB, in the same time (benchmarks/RESULTS.md)."""
os.environ.setdefault("POLARS_CSV_CHUNK_SIZE", str(CSV_CHUNK_BYTES))

POLARS_READ_ERRORS: tuple[type[BaseException], ...] = (
    pl.exceptions.PolarsError,
    pl.exceptions.PanicException,
)
"""Exceptions raised when collecting a fast-path LazyFrame that mean "retry with tolerant=True"."""

MAX_RECORD_LINES = 10_000
"""A quoted field running over more lines than this is taken as a stray quote, not as data."""

MAX_SURVEY_ANOMALIES = 200_000
"""Past this many irregular lines the tolerant parser is the better tool for the file."""

PLAIN_RECORD_MAX_FIELDS = 256
"""Up to this record width the survey recognises a plain record with one anchored regex per line."""

WIDTH_SAMPLE_RECORDS = 2_000
"""Records after the header whose most common field count is the data's width."""

OTHER_SEPARATORS = (",", ";", "\t", "|")
"""Separators a header written apart from its data may use instead of the feed's delimiter."""

SPAN_TEXT_BUDGET_LINES = 8
"""The fast path holds the text of records spanning lines up to this many `max_line_bytes` in all."""

_POLARS_ROW = "__polars_row"
_UNBALANCED_QUOTE = "unbalanced quote: the line was read with quote characters as plain text"
_HEADER_BASIS = "the header has"
_DATA_BASIS = "the data rows have"


@dataclass(frozen=True)
class _Dialect:
    delimiter: str
    quote: str | None
    escape: str | None
    comment: str | None

    @classmethod
    def of(cls, spec: CsvFormat) -> _Dialect:
        quote = spec.quote_char or None
        # An escape equal to the quote is RFC 4180's doubled quote, which both parsers handle anyway.
        escape = spec.escape_char if spec.escape_char and spec.escape_char != quote else None
        return cls(spec.delimiter, quote, escape, spec.comment_prefix or None)

    @property
    def polars_can_parse(self) -> bool:
        """Polars takes one-byte separators and quotes, has no escape character, and its comment
        prefix is at most five bytes."""

        def single_byte(text: str | None) -> bool:
            return text is None or (len(text) == 1 and text.isascii())

        return (
            len(self.delimiter) == 1
            and self.delimiter.isascii()
            and self.delimiter not in "\r\n"
            and single_byte(self.quote)
            and self.quote != self.delimiter
            and self.escape is None
            and (self.comment is None or (self.comment.isascii() and len(self.comment) <= 5))
        )


@dataclass
class _Record:
    fields: list[str]
    error: str | None
    first_line: int
    """1-based physical line the record starts on."""
    last_line: int
    first_text: str
    """The first line's text, without its terminator."""
    after_blank_gap: bool = False
    """Only blank lines, at least one, lie between the line before this record and its first line."""

    @property
    def lines(self) -> int:
        return self.last_line - self.first_line + 1

    @property
    def text(self) -> str | None:
        """The record's line, for a record on one line."""
        return self.first_text if self.first_line == self.last_line else None


SkipHandler = Callable[[str, int], None]
"""Called with ("blank" or "comment", 1-based line number) for each line `next_record` skips."""


class _RecordSplitter:
    """Splits lines into records, quote- and escape-aware, for any delimiter length; counts lines."""

    def __init__(
        self,
        lines: Iterator[str],
        dialect: _Dialect,
        path: Path,
        limits: ReadLimits,
        on_skip: SkipHandler | None = None,
    ) -> None:
        self._lines = lines
        self._pushed_back: list[str] = []
        self._dialect = dialect
        self._path = path
        self._max_record_chars = limits.max_line_bytes
        self._on_skip = on_skip
        self.lines_read = 0
        self.last_nonblank = 0
        self.first_bare_cr_line: int | None = None

    def _next_line(self) -> str | None:
        line = self._pushed_back.pop() if self._pushed_back else next(self._lines, None)
        if line is not None:
            self.lines_read += 1
            if line.endswith("\r") and self.first_bare_cr_line is None:
                self.first_bare_cr_line = self.lines_read
            if line not in ("\n", "\r\n", "\r") and self.lines_read > self.last_nonblank:
                self.last_nonblank = self.lines_read
        return line

    def _push_back(self, lines: list[str]) -> None:
        self._pushed_back.extend(reversed(lines))
        self.lines_read -= len(lines)

    def skip_lines(self, count: int) -> int:
        """Skip up to `count` physical lines; returns how many there were."""
        skipped = 0
        while skipped < count and self._next_line() is not None:
            skipped += 1
        return skipped

    def next_record(self) -> _Record | None:
        """The next record, skipping blank and comment lines; None at the end of the file."""
        blank_gap = False
        other_gap = False
        while True:
            line = self._next_line()
            if line is None:
                return None
            body, _ = line_body(line)
            if not body:
                blank_gap = True
                if self._on_skip is not None:
                    self._on_skip("blank", self.lines_read)
                continue
            if self._dialect.comment and body.startswith(self._dialect.comment):
                other_gap = True
                if self._on_skip is not None:
                    self._on_skip("comment", self.lines_read)
                continue
            first_line = self.lines_read
            fields, error = self._parse(line)
            return _Record(fields, error, first_line, self.lines_read, body, blank_gap and not other_gap)

    def _parse(self, first: str) -> tuple[list[str], str | None]:
        delimiter, quote, escape = self._dialect.delimiter, self._dialect.quote, self._dialect.escape
        body, terminator = line_body(first)
        if (quote is None or quote not in body) and (escape is None or escape not in body):
            return body.split(delimiter), None
        consumed = [first]
        size = len(first)
        fields: list[str] = []
        position = 0
        while True:
            field_start = position
            if quote is not None and body.startswith(quote, position):
                buffer: list[str] = []
                position += 1
                while True:
                    stop = _find_first(body, position, quote, escape)
                    if stop == -1:
                        buffer += [body[position:], terminator]
                        line = self._next_line() if len(consumed) < MAX_RECORD_LINES else None
                        if line is None:
                            return self._reread_unquoted(consumed)
                        consumed.append(line)
                        size += len(line)
                        if size > self._max_record_chars:
                            raise LimitExceededError(
                                self._path,
                                "max_line_bytes",
                                self._max_record_chars,
                                f"the record starting at line {self.lines_read - len(consumed) + 1} "
                                f"(a quoted field spanning lines) is longer than {self._max_record_chars} bytes",
                            )
                        body, terminator = line_body(line)
                        position = 0
                        continue
                    buffer.append(body[position:stop])
                    if escape is not None and body.startswith(escape, stop):
                        buffer.append(body[stop + len(escape) : stop + len(escape) + 1])
                        position = stop + len(escape) + 1
                        continue
                    if body.startswith(quote, stop + 1):
                        buffer.append(quote)
                        position = stop + 2
                        continue
                    position = stop + 1
                    break
                if position == len(body):
                    fields.append("".join(buffer))
                    return fields, None
                if body.startswith(delimiter, position):
                    fields.append("".join(buffer))
                    position += len(delimiter)
                    continue
                # Text after a closing quote: a stray quote. Within one line the field keeps its raw
                # text; across lines the quote swallowed line ends that were not its own.
                if len(consumed) > 1:
                    return self._reread_unquoted(consumed)
                end = body.find(delimiter, position)
                if end == -1:
                    fields.append(body[field_start:])
                    return fields, None
                fields.append(body[field_start:end])
                position = end + len(delimiter)
                continue
            value, position = self._unquoted_field(body, position)
            fields.append(value)
            if position == -1:
                return fields, None

    def _unquoted_field(self, body: str, position: int) -> tuple[str, int]:
        """The field starting at `position` and where the next one starts (-1 at the end of the line)."""
        delimiter, escape = self._dialect.delimiter, self._dialect.escape
        pieces: list[str] = []
        while True:
            stop = _find_first(body, position, delimiter, escape)
            if stop == -1:
                pieces.append(body[position:])
                return "".join(pieces), -1
            pieces.append(body[position:stop])
            if escape is not None and body.startswith(escape, stop):
                pieces.append(body[stop + len(escape) : stop + len(escape) + 1])
                position = stop + len(escape) + 1
                continue
            return "".join(pieces), stop + len(delimiter)

    def split_unquoted(self, body: str) -> list[str]:
        """A line's fields with quote characters taken as plain text."""
        fields: list[str] = []
        position = 0
        while position != -1:
            value, position = self._unquoted_field(body, position)
            fields.append(value)
        return fields

    def _reread_unquoted(self, consumed: list[str]) -> tuple[list[str], str | None]:
        self._push_back(consumed[1:])
        body, _ = line_body(consumed[0])
        return self.split_unquoted(body), _UNBALANCED_QUOTE


def _find_first(text: str, start: int, first: str, second: str | None) -> int:
    a = text.find(first, start)
    if second is None:
        return a
    b = text.find(second, start)
    if a == -1:
        return b
    return a if b == -1 else min(a, b)


def field_count_error(count: int, width: int, basis: str = _HEADER_BASIS) -> str:
    """The `_read_error` of a record whose field count differs from the width."""
    return f"record has {count} fields, {basis} {width}"


def _fit(record: _Record, width: int, basis: str) -> tuple[list[str | None], str | None]:
    fields: list[str | None] = list(record.fields)
    errors = [record.error] if record.error else []
    if len(fields) != width:
        message = field_count_error(len(fields), width, basis)
        if len(fields) > width:
            # Only how many: the extra values may be anything (an end customer's address split at an
            # unquoted delimiter), and this message is stored outside landing (quarantine.message).
            message += f"; dropped the last {_fields(len(fields) - width)}"
            fields = fields[:width]
        else:
            fields += [None] * (width - len(fields))
        errors.append(message)
    return fields, "; ".join(errors) or None


@dataclass
class _Layout:
    names: list[str]
    data_start: int
    """Physical lines before the first data line: preamble, blank and comment lines, the header."""
    basis: str
    """How `_read_error` names the width: "the header has" or "the data rows have"."""
    header_text: str | None
    """The header line's text, to recognise a repeated header; None without a one-line header."""
    skipped: dict[str, int]
    notes: list[str]
    last_nonblank: int
    """The last non-blank physical line up to `data_start`."""
    bare_cr_before_data: bool

    @property
    def width(self) -> int:
        return len(self.names)


def _data_width(widths: Counter[int], header_width: int) -> int:
    """The most common field count; the header's wins a tie."""
    if not widths:
        return header_width
    top = max(widths.values())
    if widths[header_width] == top:
        return header_width
    return next(width for width, count in widths.items() if count == top)


def _sample_widths(splitter: _RecordSplitter) -> Counter[int]:
    """Field counts of the first records, up to where a second table may start (two records of a
    new field count right after a blank line), so a second table cannot set the width."""
    widths: Counter[int] = Counter()
    before: _Record | None = None
    last: _Record | None = None
    for _ in range(WIDTH_SAMPLE_RECORDS):
        record = splitter.next_record()
        if record is None:
            break
        if (
            before is not None
            and last is not None
            and last.after_blank_gap
            and len(last.fields) != len(before.fields)
            and record.first_line == last.last_line + 1
            and len(record.fields) == len(last.fields)
        ):
            widths[len(last.fields)] -= 1
            break
        widths[len(record.fields)] += 1
        before, last = last, record
    return +widths


def _strip_quotes(name: str, quote: str | None) -> str:
    if quote and len(name) >= 2 and name.startswith(quote) and name.endswith(quote):
        return name[1:-1].replace(quote + quote, quote)
    return name


def _layout(path: Path, encoding: str, spec: CsvFormat, dialect: _Dialect, limits: ReadLimits) -> _Layout:
    """Where the data starts, what the columns are called, and how wide a record is."""
    prefix: Counter[str] = Counter()

    def count_skip(reason: str, _line: int) -> None:
        prefix[reason] += 1

    def splitter_from(line: int) -> _RecordSplitter:
        splitter = _RecordSplitter(
            iter_lines(path, encoding, max_line_bytes=limits.max_line_bytes), dialect, path, limits
        )
        splitter.skip_lines(line)
        return splitter

    splitter = _RecordSplitter(
        iter_lines(path, encoding, max_line_bytes=limits.max_line_bytes), dialect, path, limits, count_skip
    )
    preamble = splitter.skip_lines(spec.skip_rows)
    if not spec.has_header:
        return _Layout(
            names=unique_column_names(spec.column_names or []),
            data_start=preamble,
            basis=_HEADER_BASIS,
            header_text=None,
            skipped=skip_counts(preamble=preamble),
            notes=[],
            last_nonblank=splitter.last_nonblank,
            bare_cr_before_data=splitter.first_bare_cr_line is not None,
        )
    header = splitter.next_record()
    if header is None:
        raise UnreadableFileError(
            f"{path}: no header row found (the file is empty after skipping {spec.skip_rows} line(s)): "
            "check the file, or the feed spec's skip_rows and has_header"
        )
    skipped = skip_counts(preamble=preamble, blank=prefix["blank"], comment=prefix["comment"])
    bare_cr_line = splitter.first_bare_cr_line
    widths = _sample_widths(splitter)
    header_fields = header.fields
    notes = []
    if header.error:
        notes.append(
            f"header row (line {header.first_line}) has an unbalanced quote: its names were read with "
            "quote characters as plain text"
        )
    width = _data_width(widths, len(header_fields))
    if header.lines > 1:
        # A quote in the header that closes lines later may be a stray one that swallowed data lines:
        # the header is then its first line, read with quotes as plain text.
        plain = splitter.split_unquoted(header.first_text)
        plain_width = _data_width(_sample_widths(splitter_from(header.first_line)), len(plain))
        if width != len(header_fields) or len(plain) == plain_width:
            header = _Record(plain, None, header.first_line, header.first_line, header.first_text)
            header_fields = plain
            width = plain_width
            notes.append(
                f"header row (line {header.first_line}) opens a quote that closes on a later line: "
                "the header was read as its first line, with quote characters as plain text"
            )
    basis = _HEADER_BASIS
    if width != len(header_fields):
        header_fields, how = _names_for_width(header, width, dialect, splitter)
        basis = _DATA_BASIS
        names = unique_column_names(header_fields)
        count = len(header.fields)
        notes.append(
            f"header row (line {header.first_line}) has {_fields(count)} but the data rows have {width}; "
            f"columns named from the header where possible{how}: {names}"
        )
    else:
        names = unique_column_names(header_fields)
    return _Layout(
        names=names,
        data_start=header.last_line,
        basis=basis,
        header_text=header.text,
        skipped={**skipped, "header": header.lines},
        notes=notes,
        last_nonblank=header.last_line,
        bare_cr_before_data=bare_cr_line is not None and bare_cr_line <= header.last_line,
    )


def _fields(count: int) -> str:
    return f"{count} field" if count == 1 else f"{count} fields"


def _names_for_width(
    header: _Record, width: int, dialect: _Dialect, splitter: _RecordSplitter
) -> tuple[list[str | None], str]:
    """Header names for `width` columns, and how they were found (for the note)."""
    text = header.first_text
    if dialect.quote and dialect.quote in text:
        plain = splitter.split_unquoted(text)
        if len(plain) == width:
            return list(plain), " (the header read without quote handling, for a stray quote)"
    for separator in OTHER_SEPARATORS:
        if separator != dialect.delimiter and separator in text:
            parts = [_strip_quotes(part, dialect.quote) for part in text.split(separator)]
            if len(parts) == width:
                return list(parts), f" (the header split on {separator!r})"
    names: list[str | None] = list(header.fields[:width])
    names += [None] * (width - len(names))
    dropped = header.fields[width:]
    return names, f" (names past the data's width left out: {dropped})" if dropped else ""


def _second_table_error(path: Path, line: int, reason: str) -> UnreadableFileError:
    return UnreadableFileError(
        f"{path}: a second table starts at line {line} ({reason}): split the file so that each table "
        "is a file of its own (or leave the extra rows out with the feed spec's footer_rows)"
    )


def _repeated_header_reason() -> str:
    return "it repeats the header row"


def _width_change_reason(before: int, after: int) -> str:
    return f"after a blank line, records of {after} fields follow records of {before}"


def _read_tolerant(
    path: Path,
    encoding: str,
    spec: CsvFormat,
    dialect: _Dialect,
    layout: _Layout,
    limits: ReadLimits,
    work_dir: Path,
) -> ReadResult:
    skipped = dict(layout.skipped)
    footer_rows = spec.footer_rows
    blank_runs: deque[list[int]] = deque()

    def on_skip(reason: str, line: int) -> None:
        if reason == "comment":
            skipped["comment"] += 1
        elif blank_runs and blank_runs[-1][1] == line - 1:
            blank_runs[-1][1] = line
        else:
            blank_runs.append([line, line])

    splitter = _RecordSplitter(
        iter_lines(path, encoding, max_line_bytes=limits.max_line_bytes), dialect, path, limits, on_skip
    )
    splitter.skip_lines(layout.data_start)
    width, basis = layout.width, layout.basis

    def release_blanks(boundary: int, reason: str) -> None:
        """Count the blank lines before `boundary` as skipped for `reason`."""
        while blank_runs and blank_runs[0][0] < boundary:
            start, end = blank_runs[0]
            if end < boundary:
                skipped[reason] += end - start + 1
                blank_runs.popleft()
            else:
                skipped[reason] += boundary - start
                blank_runs[0][0] = boundary

    def records() -> Iterator[SpilledRecord]:
        held: deque[_Record] = deque()
        number = 0
        candidate: tuple[int, int, str] | None = None
        before: _Record | None = None
        last: _Record | None = None

        def emitted(record: _Record, kind: RowKind) -> SpilledRecord:
            nonlocal number
            number += 1
            fields, error = _fit(record, width, basis)
            return number, fields, error, kind

        while (record := splitter.next_record()) is not None:
            if candidate is None:
                found = []
                if (
                    last is not None
                    and before is not None
                    and last.after_blank_gap
                    and len(last.fields) != width
                    and len(last.fields) != len(before.fields)
                    and record.first_line == last.last_line + 1
                    and len(record.fields) == len(last.fields)
                ):
                    reason = _width_change_reason(len(before.fields), len(last.fields))
                    found.append((last.first_line, last.last_line, reason))
                if layout.header_text is not None and record.text == layout.header_text:
                    found.append((record.first_line, record.last_line, _repeated_header_reason()))
                candidate = min(found, key=lambda item: item[0]) if found else None
            before, last = last, record
            held.append(record)
            boundary = splitter.last_nonblank - footer_rows + 1
            if candidate is not None and candidate[1] < boundary:
                raise _second_table_error(path, candidate[0], candidate[2])
            while held and held[0].last_line < boundary:
                yield emitted(held.popleft(), "data")
            release_blanks(boundary, "blank")
        boundary = splitter.last_nonblank - footer_rows + 1
        if candidate is not None and candidate[1] < boundary:
            raise _second_table_error(path, candidate[0], candidate[2])
        while held:
            record = held.popleft()
            yield emitted(record, "data" if record.last_line < boundary else "footer")
        release_blanks(boundary, "blank")
        # What is left: blank lines in the footer zone, then blank lines ending the file (not rows).
        release_blanks(splitter.last_nonblank + 1, "footer")
        # Without a header, preamble lines may be all the file has: blank ones ending it are not rows.
        skipped["preamble"] = min(skipped["preamble"], splitter.last_nonblank)

    frame = spill_records(layout.names, records(), work_dir, path.stem)
    return ReadResult(frame, skipped, list(layout.notes))


@dataclass
class _Survey:
    polars_rows: int
    footer_records: int
    skipped: dict[str, int]
    blank_rows: list[int] = field(default_factory=list)
    short_rows: dict[int, int] = field(default_factory=dict)


def _rx(text: str) -> str:
    return "".join(f"\\x{{{ord(char):X}}}" for char in text)


def _survey(
    path: Path, layout: _Layout, dialect: _Dialect, spec: CsvFormat, limits: ReadLimits
) -> _Survey | None:
    """Check, line by line and in Polars, that the fast parse will see exactly the records the
    tolerant parser would, and count what it skips; None when it would not (the tolerant parser
    then reads the file).

    Polars pads a short record with empty strings and reads a blank line as a record of empty
    strings, silently. The survey finds both, with their row numbers, so the fast path can flag
    the one and drop the other; it also sends stray quotes, unterminated quotes and long records
    to the tolerant parser, and refuses a second table. Only lines that are not plainly one full
    record each get a closer look, so a clean file costs one cheap pass over its lines.
    """
    width = layout.width
    line = pl.col("line")
    delimiter = dialect.delimiter
    lines = pl.scan_csv(
        path,
        has_header=False,
        skip_lines=layout.data_start,
        separator="\x00",
        quote_char=None,
        schema={"line": pl.String},
        empty_string_is_null=False,
        raise_if_empty=False,
    ).with_row_index("line_no")
    delimiters = line.str.count_matches(delimiter, literal=True)
    comment = line.str.starts_with(dialect.comment) if dialect.comment else pl.lit(False)
    repeat = line == layout.header_text if layout.header_text is not None else pl.lit(False)
    # Polars ends lines at LF only and drops the CR of a CRLF; a CR left anywhere is a bare CR, which
    # the tolerant parser (and Excel, and Python) takes as a line end.
    bare_cr = line.str.contains("\r", literal=True)
    if dialect.quote is None:
        candidates = lines.filter(
            (delimiters + 1 != width) | (line == "") | comment | bare_cr | repeat
        ).with_columns(quotes=pl.lit(0, pl.UInt32), fields=delimiters + 1)
        regular = ~bare_cr
    else:
        q, d = _rx(dialect.quote), _rx(delimiter)
        quotes = line.str.count_matches(dialect.quote, literal=True)
        # Each well-formed quoted field becomes one placeholder; what is left must hold no quote,
        # and every placeholder must fill a whole field.
        masked = pl.col("masked")
        # A line that is plainly one record of `width` well-quoted fields (one anchored regex, a single
        # pass over the line) is not looked at again; counting quotes and masking quoted fields runs
        # only on the other lines. Very wide records would make that regex too large for the engine.
        if width <= PLAIN_RECORD_MAX_FIELDS:
            field = f"(?:{q}(?:[^{q}\r]|{q}{q})*{q}|[^{q}{d}\r]*)"
            plain_record = line.str.contains(f"^{field}(?:{d}{field}){{{width - 1}}}$")
        else:
            plain_record = (
                ~line.str.contains(dialect.quote, literal=True) & (delimiters + 1 == width) & ~bare_cr
            )
        candidates = (
            lines.filter(~plain_record | (line == "") | comment | repeat)
            .with_columns(quotes=quotes)
            .with_columns(masked=line.str.replace_all(f"{q}(?:[^{q}]|{q}{q})*{q}", "\x01"))
            .with_columns(fields=masked.str.count_matches(delimiter, literal=True) + 1)
        )
        # A line with an odd number of quotes opens or closes a field spanning lines: its quoting is
        # checked on the whole record, once the record's lines are put together.
        well_quoted = ~masked.str.contains(dialect.quote, literal=True) & ~masked.str.contains(
            f"[^{d}]\x01|\x01[^{d}]"
        )
        regular = (
            ((pl.col("quotes") % 2 == 1) | well_quoted)
            & ~bare_cr
            # Polars skips a comment line before it looks at quotes; the quote parity here would not.
            & ~(comment & (pl.col("quotes") > 0))
        )
    flagged = candidates.select(
        "line_no",
        "fields",
        odd=pl.col("quotes") % 2 == 1,
        blank=line == "",
        comment=comment,
        regular=regular,
        repeat=repeat,
    ).filter(
        pl.col("odd")
        | pl.col("blank")
        | pl.col("comment")
        | ~pl.col("regular")
        | (pl.col("fields") != width)
        | pl.col("repeat")
    )
    try:
        anomalies = flagged.head(MAX_SURVEY_ANOMALIES + 1).collect(engine="streaming")
        # The largest line number, streamed: `select(pl.len())` would count by mapping the whole file
        # into memory (peak memory growing with the file). A scan of its own: sharing the one above
        # (`collect_all`) runs both at once and holds half as much memory again.
        last_line = lines.select(pl.col("line_no").max()).collect(engine="streaming").item()
        line_count = 0 if last_line is None else int(last_line) + 1
    except POLARS_READ_ERRORS:
        return None
    if anomalies.height > MAX_SURVEY_ANOMALIES:
        return None

    # Lines with an odd number of quotes open and close quoted fields that span lines, in pairs.
    odd_lines = anomalies.filter("odd")["line_no"].to_list()
    if len(odd_lines) % 2:
        return None
    spans = list(zip(odd_lines[::2], odd_lines[1::2], strict=True))
    if any(last - first >= MAX_RECORD_LINES for first, last in spans):
        return None
    span_texts = _span_texts(lines, spans, limits) if spans else {}
    if span_texts is None:
        return None
    span_end = dict(spans)
    count_fields = _multiline_counter(dialect) if spans else None

    short_rows: dict[int, int] = {}
    blank_rows: list[int] = []
    blank_lines: list[int] = []
    comment_lines: list[int] = []
    continuation_lines: list[int] = []
    # Records that are not plain one-line records of `width` fields: first line -> (last line, fields).
    irregular: dict[int, tuple[int, int]] = {}
    repeats: list[int] = []
    skipped_lines = 0
    inside_until = -1
    for row in anomalies.iter_rows(named=True):
        line_no = row["line_no"]
        if line_no <= inside_until:
            continue
        polars_row = line_no - skipped_lines
        if not row["regular"]:
            return None
        if line_no in span_end:
            last = span_end[line_no]
            assert count_fields is not None
            count = count_fields(span_texts[line_no])
            if count is None or count > width:
                return None
            if count != width:
                short_rows[polars_row] = count
            irregular[line_no] = (last, count)
            continuation_lines.extend(range(line_no, last))
            skipped_lines += last - line_no
            inside_until = last
        elif row["comment"]:
            comment_lines.append(line_no)
            skipped_lines += 1
        elif row["blank"]:
            blank_lines.append(line_no)
            blank_rows.append(polars_row)
        elif row["fields"] > width:
            return None
        else:
            if row["fields"] != width:
                short_rows[polars_row] = row["fields"]
                irregular[line_no] = (line_no, row["fields"])
            if row["repeat"]:
                repeats.append(line_no)
    # Polars takes the field count from the first line it parses: a first short or blank line breaks it.
    if 0 in short_rows or (blank_rows and blank_rows[0] == 0):
        return None

    # The footer zone, in physical lines: the last `footer_rows` lines up to the last non-blank one.
    physical = layout.data_start + 1  # physical line number of line_no 0
    last_line_no = line_count - 1
    position = len(blank_lines)
    while position and blank_lines[position - 1] == last_line_no:
        position -= 1
        last_line_no -= 1
    last_nonblank = last_line_no + physical if last_line_no >= 0 else layout.last_nonblank
    zone_start = max(last_nonblank - spec.footer_rows + 1, physical)
    zone_first_line_no = zone_start - physical
    in_zone = last_nonblank - zone_start + 1

    def count_in_zone(sorted_lines: list[int]) -> int:
        low = bisect.bisect_left(sorted_lines, zone_first_line_no)
        high = bisect.bisect_right(sorted_lines, last_line_no)
        return max(high - low, 0)

    footer_blanks = count_in_zone(blank_lines) if in_zone > 0 else 0
    footer_records = (
        in_zone - footer_blanks - count_in_zone(comment_lines) - count_in_zone(continuation_lines)
        if in_zone > 0
        else 0
    )
    blanks_before_zone = bisect.bisect_left(blank_lines, zone_first_line_no)

    second = _second_table(
        width, line_count, blank_lines, comment_lines, continuation_lines, irregular, repeats
    )
    if second is not None and second[1] < zone_first_line_no:
        raise _second_table_error(path, second[0] + physical, second[2])

    skipped = {
        **layout.skipped,
        "preamble": min(layout.skipped["preamble"], last_nonblank),
        "blank": layout.skipped["blank"] + blanks_before_zone,
        "comment": layout.skipped["comment"] + len(comment_lines),
        "footer": footer_blanks,
    }
    return _Survey(
        polars_rows=line_count - skipped_lines,
        footer_records=footer_records,
        skipped=skipped,
        blank_rows=blank_rows,
        short_rows=short_rows,
    )


def _second_table(
    width: int,
    line_count: int,
    blank_lines: list[int],
    comment_lines: list[int],
    continuation_lines: list[int],
    irregular: dict[int, tuple[int, int]],
    repeats: list[int],
) -> tuple[int, int, str] | None:
    """The first line of a second table, its record's last line and why; in survey line numbers."""
    blanks, comments, continued = set(blank_lines), set(comment_lines), set(continuation_lines)
    ending = {last: count for first, (last, count) in irregular.items()}

    def record_at(line_no: int) -> tuple[int, int] | None:
        """(last line, field count) of the record starting on `line_no`."""
        if line_no >= line_count or line_no in blanks or line_no in comments or line_no in continued:
            return None
        return irregular.get(line_no, (line_no, width))

    def fields_of_record_ending_at(line_no: int) -> int | None:
        if line_no < 0 or line_no in blanks or line_no in comments or line_no in continued:
            return None
        return ending.get(line_no, width)

    found: list[tuple[int, int, str]] = [
        (line_no, line_no, _repeated_header_reason()) for line_no in repeats[:1]
    ]
    run_start = None
    for index, line_no in enumerate(blank_lines):
        if run_start is None:
            run_start = line_no
        if index + 1 < len(blank_lines) and blank_lines[index + 1] == line_no + 1:
            continue
        before = fields_of_record_ending_at(run_start - 1)
        run_start = None
        this = record_at(line_no + 1)
        if before is None or this is None or this[1] in (before, width):
            continue
        after = record_at(this[0] + 1)
        if after is not None and after[1] == this[1]:
            found.append((line_no + 1, this[0], _width_change_reason(before, this[1])))
            break
    # On one line, the repeated header is the reason given (the tolerant parser sees it first).
    return min(found, key=lambda item: (item[0], item[2] != _repeated_header_reason())) if found else None


def _span_texts(
    lines: pl.LazyFrame, spans: list[tuple[int, int]], limits: ReadLimits
) -> dict[int, list[str]] | None:
    """The lines of each record that spans lines, keyed by its first line; None when they are too
    many or too long to hold (the tolerant parser then reads the file, and refuses a record past
    `limits.max_line_bytes`)."""
    wanted = [number for first, last in spans for number in range(first, last + 1)]
    if len(wanted) > MAX_SURVEY_ANOMALIES:
        return None
    size = pl.col("line").str.len_bytes()
    try:
        # The running total stops the collect from holding more text than the budget.
        found = (
            lines.filter(pl.col("line_no").is_in(wanted))
            .with_columns(size=size, total=size.cum_sum())
            .filter(pl.col("total") <= SPAN_TEXT_BUDGET_LINES * limits.max_line_bytes)
            .select("line_no", "line", "size")
            .collect(engine="streaming")
        )
    except POLARS_READ_ERRORS:
        return None
    if found.height < len(wanted):
        return None
    by_line = dict(zip(found["line_no"].to_list(), found["line"].to_list(), strict=True))
    sizes = dict(zip(found["line_no"].to_list(), found["size"].to_list(), strict=True))
    texts = {}
    for first, last in spans:
        if sum(sizes[number] + 1 for number in range(first, last + 1)) > limits.max_line_bytes:
            return None
        texts[first] = [by_line[number] for number in range(first, last + 1)]
    return texts


def _multiline_counter(dialect: _Dialect) -> Callable[[list[str]], int | None]:
    """Counts the fields of a record spanning lines; None when its quoting is not well formed."""
    assert dialect.quote is not None
    q, d = re.escape(dialect.quote), re.escape(dialect.delimiter)
    quoted = re.compile(f"{q}(?:[^{q}]|{q}{q})*{q}")
    value = f"(?:{quoted.pattern}|[^{q}{d}\\n]*)"
    whole = re.compile(f"{value}(?:{d}{value})*")

    def count_fields(lines: list[str]) -> int | None:
        text = "\n".join(lines)
        if "\r" in text or not whole.fullmatch(text):
            return None
        return quoted.sub("", text).count(dialect.delimiter) + 1

    return count_fields


def _scan_fast(dialect: _Dialect, layout: _Layout, survey: _Survey, path: Path) -> pl.LazyFrame:
    names = layout.names
    frame = pl.scan_csv(
        path,
        has_header=False,
        skip_lines=layout.data_start,
        separator=dialect.delimiter,
        quote_char=dialect.quote,
        comment_prefix=dialect.comment,
        schema=dict.fromkeys(names, pl.String),
        empty_string_is_null=False,
        raise_if_empty=False,
        encoding="utf8",
        row_index_name=_POLARS_ROW,
    )
    if survey.short_rows:
        rows = list(survey.short_rows)
        counts = [survey.short_rows[row] for row in rows]
        messages = [field_count_error(count, len(names), layout.basis) for count in counts]
        row = pl.col(_POLARS_ROW)
        error = row.replace_strict(rows, messages, default=None, return_dtype=pl.String)
        # Polars pads a short record with empty strings; the tolerant parser pads with nulls.
        count = row.replace_strict(rows, counts, default=len(names), return_dtype=pl.Int64)
        frame = frame.with_columns(
            pl.when(count > position).then(pl.col(name)).alias(name) for position, name in enumerate(names)
        )
    else:
        error = pl.lit(None, pl.String)
    frame = frame.with_columns(error.alias(READ_ERROR))
    if survey.blank_rows:
        frame = frame.filter(~pl.col(_POLARS_ROW).is_in(survey.blank_rows)).with_row_index(
            SOURCE_ROW, offset=1
        )
        source_row = pl.col(SOURCE_ROW).cast(pl.Int64)
    else:
        source_row = (pl.col(_POLARS_ROW) + 1).cast(pl.Int64)
    records = survey.polars_rows - len(survey.blank_rows)
    kind = (
        pl.when(source_row > records - survey.footer_records).then(pl.lit("footer")).otherwise(pl.lit("data"))
        if survey.footer_records
        else pl.lit("data")
    )
    return frame.select(*names, source_row.alias(SOURCE_ROW), READ_ERROR, kind.alias(ROW_KIND))


def read_delimited(
    path: Path,
    spec: CsvFormat,
    work_dir: Path,
    *,
    tolerant: bool = False,
    limits: ReadLimits = DEFAULT_LIMITS,
) -> ReadResult:
    """Read a delimited file into String columns plus `source_row`, `_read_error` and `_row_kind`.

    The fast path returns a lazy Polars scan; collecting it may still raise one of
    `POLARS_READ_ERRORS` on input the survey could not foresee, and the caller then calls again
    with `tolerant=True`. The tolerant path parses the file here, spilling to Parquet in `work_dir`.
    Either way `skipped` and `notes` are complete on return. Raises UnreadableFileError for a file
    that no parser can read or that holds a second table, and LimitExceededError (one) for a line
    or record longer than `limits.max_line_bytes`.
    """
    dialect = _Dialect.of(spec)
    codec = canonical_encoding(path, spec.encoding)
    layout = _layout(path, spec.encoding, spec, dialect, limits)
    if tolerant or not dialect.polars_can_parse or layout.bare_cr_before_data:
        return _read_tolerant(path, spec.encoding, spec, dialect, layout, limits, work_dir)
    if codec in ("utf-8", "utf-8-sig"):
        source = path
    else:
        source = transcode_to_utf8(path, spec.encoding, work_dir, max_line_bytes=limits.max_line_bytes)
    try:
        # One pass of byte searches: no line reaches Polars (which would hold it whole) past the limit.
        check_line_lengths(source, limits.max_line_bytes)
        survey = _survey(source, layout, dialect, spec, limits)
        if survey is None:
            return _read_tolerant(source, "utf-8", spec, dialect, layout, limits, work_dir)
    except UnreadableFileError as error:
        # A refusal found in the transcoded copy names the sender's file, not the scratch copy.
        error.args = tuple(str(arg).replace(str(source), str(path)) for arg in error.args)
        raise
    return ReadResult(_scan_fast(dialect, layout, survey, source), survey.skipped, list(layout.notes))
