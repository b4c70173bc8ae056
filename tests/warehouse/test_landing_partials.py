"""A landing killed mid-copy leaves `<pid>-<name>.partial` (a received file's bytes) in the incoming
folder; the next landing removes those of processes no longer running and keeps the others, on
local disk and in the object store's spool."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from schemas.settings import ThroughlineSettings
from warehouse.storage import storage_for


def _dead_pid() -> int:
    """The pid of a process that has just ended."""
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    return int(child.stdout)


def test_landing_removes_the_partial_copies_of_dead_processes_only(
    warehouse_env: dict[str, str], tmp_path: Path
) -> None:
    storage = storage_for(ThroughlineSettings.for_home(tmp_path / "home", warehouse_env))
    received = tmp_path / "NW_SALES_20260105.csv"
    received.write_text("a,b\n1,2\n", encoding="utf-8")
    first = storage.land(received)  # creates the incoming folder
    incoming = next(path for path in (tmp_path / "home").rglob(".incoming") if path.is_dir())
    stale = incoming / f"{_dead_pid()}-6e77.partial"
    running = incoming / "1-6e77.partial"  # pid 1 always runs
    own = incoming / f"{os.getpid()}-other.partial"
    for path in (stale, running, own):
        path.write_text("Stadtwerke Bergheim GmbH\n", encoding="utf-8")

    second = storage.land(received)

    assert second == first
    assert not stale.exists()
    assert running.exists() and own.exists()
