"""How the CLI prints: result frames to stdout, progress and problems to stderr.

Tables never cut a message short (an error's fix hint is the point of the message); file names are
printed escaped, so a name holding a newline cannot forge a line.
"""

from __future__ import annotations

import json
import sys
import time
from typing import TextIO

import polars as pl

from ingest.context import Progress
from ingest.route import printable

PROGRESS_INTERVAL_SECONDS = 1.0


def err(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _flat(frame: pl.DataFrame) -> pl.DataFrame:
    """CSV holds no lists or structs: each such cell becomes its JSON text (`["a","b"]`)."""
    nested = [name for name, dtype in frame.schema.items() if dtype.is_nested()]
    if not nested:
        return frame
    return frame.with_columns(
        pl.Series(
            name, [json.dumps(v, default=str) if v is not None else None for v in frame[name].to_list()]
        )
        for name in nested
    )


def write_frame(frame: pl.DataFrame, output_format: str, stream: TextIO | None = None) -> None:
    """Print a frame as an aligned table, RFC 4180 CSV (header row, plain numbers) or JSON records."""
    stream = stream or sys.stdout
    if output_format == "csv":
        stream.write(_flat(frame).write_csv(line_terminator="\r\n", quote_style="necessary"))
    elif output_format == "json":
        stream.write(json.dumps(frame.to_dicts(), default=str, indent=2) + "\n")
    else:
        with pl.Config(
            tbl_rows=-1,
            tbl_cols=-1,
            fmt_str_lengths=10_000,
            fmt_table_cell_list_len=-1,
            tbl_width_chars=10_000,
            tbl_hide_dataframe_shape=True,
            tbl_hide_column_data_types=True,
        ):
            stream.write(f"{frame}\n")
    stream.flush()


BAR_WIDTH = 20
RECORDS_PER_SECOND = 700_000


def bar(done: int, estimate: int | None) -> str:
    """A text progress bar against an estimated total (never past 99% until the file is done)."""
    if not estimate:
        return ""
    share = min(done / estimate, 0.99)
    filled = int(share * BAR_WIDTH)
    return f"[{'#' * filled}{' ' * (BAR_WIDTH - filled)}] {share:4.0%}"


class StderrProgress(Progress):
    """One line per file, then a running count of records on long files (every second)."""

    def __init__(self, verbose: bool = False) -> None:
        self.verbose = verbose
        self._started = 0.0
        self._last = 0.0
        self._estimate: int | None = None
        self._estimated_seconds: int | None = None

    def file_started(self, name: str, size: int, estimated_records: int | None = None) -> None:
        self._started = self._last = time.monotonic()
        self._estimate = estimated_records
        # A bar needs a total: about RECORDS_PER_SECOND records stream through on this kind of machine.
        self._estimated_seconds = (
            max(int(estimated_records / RECORDS_PER_SECOND), 1) if estimated_records else None
        )
        err(f"loading {printable(name)} ({size:,} bytes)")

    def records(self, name: str, count: int) -> None:
        now = time.monotonic()
        if self.verbose or now - self._last >= PROGRESS_INTERVAL_SECONDS:
            self._last = now
            rate = count / max(now - self._started, 1e-6)
            err(f"  {printable(name)}: {bar(count, self._estimate)} {count:,} records read ({rate:,.0f}/s)")

    def message(self, text: str) -> None:
        err(text)

    def heartbeat(self, name: str, elapsed: float) -> None:
        err(f"  {printable(name)}: {bar(int(elapsed), self._estimated_seconds)} reading, {elapsed:,.0f} s")
