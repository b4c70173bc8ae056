"""Fixtures for the reader tests: where the shared real-data files live, and a reader that retries
tolerant the way the pipeline does."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from schemas.feed_spec import CsvFormat
from transforms.readers import POLARS_READ_ERRORS, read_records

ReadCsv = Callable[..., pl.DataFrame]


@pytest.fixture
def realdata() -> Path:
    """`shared/realdata`, which sits beside the repository root."""
    path = (Path(__file__).parents[3] / "../shared/realdata").resolve()
    assert path.is_dir(), f"real-data files not found at {path}"
    return path


@pytest.fixture
def read_csv(tmp_path: Path) -> ReadCsv:
    """Read CSV bytes (or a file) as the pipeline does: fast path, tolerant retry on a polars error.

    When the fast path succeeds, the tolerant parser must return the very same frame, so both
    parsers are held to every expectation.
    """

    def read(data: bytes | Path, **spec: object) -> pl.DataFrame:
        if isinstance(data, Path):
            path = data
        else:
            path = tmp_path / "input.csv"
            path.write_bytes(data)
        file_format = CsvFormat(type="csv", **spec)
        tolerant = read_records(path, file_format, tmp_path / "work", tolerant=True).collect()
        try:
            fast = read_records(path, file_format, tmp_path / "work").collect()
        except POLARS_READ_ERRORS:
            return tolerant
        assert_frame_equal(fast, tolerant)
        return fast

    return read
