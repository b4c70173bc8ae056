"""Fixtures for the reader tests: the real-data copies in `tests/data/realdata`, a CSV reader that
holds the fast and tolerant parsers to the same answer, the physical-row count the `skipped`
accounting must add up to, and a child process that measures a read's peak memory."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from schemas.feed_spec import CsvFormat
from transforms.readers import POLARS_READ_ERRORS, UnreadableFileError, read_records

REPO_ROOT = Path(__file__).resolve().parents[3]
REALDATA = REPO_ROOT / "tests" / "data" / "realdata"


@pytest.fixture
def realdata() -> Path:
    """`tests/data/realdata`: copies of real sample files, with their licenses (see SOURCES.md)."""
    assert REALDATA.is_dir(), f"real-data files not found at {REALDATA}"
    return REALDATA


@dataclass
class CsvRead:
    """A CSV read both ways: the collected records, what was skipped, the notes, and whether the
    fast Polars path produced them."""

    frame: pl.DataFrame
    skipped: dict[str, int]
    notes: list[str]
    fast: bool


def read_csv_both(path: Path, work_dir: Path, **spec: object) -> CsvRead:
    """Read as the pipeline does (fast path, tolerant retry on a polars error) and, when the fast
    path succeeds, demand the tolerant parser's very same records, counts and notes. When one
    path refuses the file, the other must refuse it with the same message."""
    file_format = CsvFormat(type="csv", **spec)
    try:
        tolerant = read_records(path, file_format, work_dir, tolerant=True)
        tolerant_frame = tolerant.records.collect()
    except UnreadableFileError as refusal:
        with pytest.raises(UnreadableFileError) as fast_refusal:
            read_records(path, file_format, work_dir).records.collect()
        assert str(fast_refusal.value) == str(refusal)
        raise
    fast = read_records(path, file_format, work_dir)
    took_fast = "csv scan" in fast.records.explain().lower()
    try:
        fast_frame = fast.records.collect()
    except POLARS_READ_ERRORS:
        return CsvRead(tolerant_frame, tolerant.skipped, tolerant.notes, fast=False)
    assert_frame_equal(fast_frame, tolerant_frame)
    assert fast.skipped == tolerant.skipped
    assert fast.notes == tolerant.notes
    return CsvRead(fast_frame, fast.skipped, fast.notes, fast=took_fast)


ReadCsv = Callable[..., pl.DataFrame]


@pytest.fixture
def read_csv_result(tmp_path: Path) -> Callable[..., CsvRead]:
    """Read CSV bytes (or a file) both ways; see `read_csv_both`."""

    def read(data: bytes | Path, **spec: object) -> CsvRead:
        if isinstance(data, Path):
            path = data
        else:
            path = tmp_path / "input.csv"
            path.write_bytes(data)
        return read_csv_both(path, tmp_path / "work", **spec)

    return read


@pytest.fixture
def read_csv(read_csv_result: Callable[..., CsvRead]) -> ReadCsv:
    """Read CSV bytes (or a file) both ways and return the records."""
    return lambda data, **spec: read_csv_result(data, **spec).frame


def physical_lines(data: bytes, *, blank: Callable[[bytes], bool] = lambda line: not line) -> int:
    """Lines of a text file (LF, CRLF or bare CR ends), not counting the blank lines that end it."""
    lines = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    while lines and blank(lines[-1]):
        lines.pop()
    return len(lines)


def assert_every_line_accounted(data: bytes, records: int, skipped: dict[str, int], **kwargs: object) -> None:
    """The identity every reader keeps: physical lines == records + skipped lines."""
    assert physical_lines(data, **kwargs) == records + sum(skipped.values()), (records, skipped)


@dataclass
class ChildRun:
    peak_mib: float
    outcome: str
    seconds: float


def run_in_child(code: str, *args: str) -> ChildRun:
    """Run `code` (which sets `outcome`) in a fresh interpreter and report its own peak RSS, so the
    memory of other tests never counts.

    On Linux a child's `getrusage(RUSAGE_SELF).ru_maxrss` starts at its parent's peak (the
    high-water mark survives fork and exec), so a child of a big pytest process would report the
    parent's memory: the peak is read from /proc/self/status (VmHWM, this program's own), and
    ru_maxrss is only the fallback where /proc is missing.
    """
    program = textwrap.dedent(
        """
        import json, resource, sys, time
        started = time.perf_counter()
        outcome = None
        try:
        {body}
        except Exception as error:
            outcome = f"{{type(error).__name__}}: {{error}}"
        try:
            with open("/proc/self/status") as status:
                peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
        except OSError:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({{"peak_mib": peak, "outcome": str(outcome), "seconds": time.perf_counter() - started}}))
        """
    ).format(body=textwrap.indent(textwrap.dedent(code), "    "))
    completed = subprocess.run(
        [sys.executable, "-c", program, *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    return ChildRun(result["peak_mib"], result["outcome"], result["seconds"])
