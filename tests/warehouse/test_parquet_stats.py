"""Delta add-action statistics from a Parquet footer: timestamps of every unit and zone as Delta
writes them, and no pandas import on the way (it cost every ingest process half a second)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from warehouse.tables import parquet_stats

EARLY = datetime(1969, 7, 20, 20, 17, 40, 123456, tzinfo=UTC)
LATE = datetime(2026, 11, 25, 4, 40, 1, 654321, tzinfo=UTC)


@pytest.mark.parametrize(
    ("unit", "zone", "low", "high"),
    [
        ("us", "UTC", "1969-07-20T20:17:40.123456Z", "2026-11-25T04:40:01.654321Z"),
        ("ms", "UTC", "1969-07-20T20:17:40.123000Z", "2026-11-25T04:40:01.654000Z"),
        ("ns", "UTC", "1969-07-20T20:17:40.123456Z", "2026-11-25T04:40:01.654321Z"),
        ("us", None, "1969-07-20T20:17:40.123456Z", "2026-11-25T04:40:01.654321Z"),
    ],
)
def test_timestamp_bounds_in_utc_text(
    tmp_path: Path, unit: str, zone: str | None, low: str, high: str
) -> None:
    values = [LATE, None, EARLY] if zone else [LATE.replace(tzinfo=None), None, EARLY.replace(tzinfo=None)]
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"at": pa.array(values, pa.timestamp(unit, tz=zone))}), path)
    rows, stats = parquet_stats(path)
    assert rows == 3
    assert json.loads(stats) == {
        "numRecords": 3,
        "minValues": {"at": low},
        "maxValues": {"at": high},
        "nullCount": {"at": 1},
    }


def test_other_types_and_row_groups(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    table = pa.table(
        {
            "day": pa.array([date(2026, 1, 5), date(2025, 12, 29)]),
            "amount": pa.array([Decimal("1.50"), Decimal("-2.25")], pa.decimal128(18, 2)),
            "name": pa.array(["b", "a"]),
            "row": pa.array([2, 1], pa.int64()),
        }
    )
    pq.write_table(table, path, row_group_size=1)
    _, stats = parquet_stats(path)
    assert json.loads(stats)["minValues"] == {"day": "2025-12-29", "amount": -2.25, "name": "a", "row": 1}
    assert json.loads(stats)["maxValues"] == {"day": "2026-01-05", "amount": 1.5, "name": "b", "row": 2}


def test_statistics_of_a_utc_timestamp_do_not_import_pandas(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"at": pa.array([LATE], pa.timestamp("us", tz="UTC"))}), path)
    code = (
        "import sys; from pathlib import Path; from warehouse.tables import parquet_stats; "
        f"parquet_stats(Path({str(path)!r})); print('pandas' in sys.modules)"
    )
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert shown.stdout.strip() == "False"
