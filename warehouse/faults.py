"""Fault injection for the crash-safety tests: `crash_point(name)` kills the process with SIGKILL
when THROUGHLINE_CRASH_AT names that point, so a test can interrupt every phase of a load on
purpose. Unset (always, outside those tests), it does nothing.
"""

from __future__ import annotations

import os
import signal

CRASH_ENV = "THROUGHLINE_CRASH_AT"
CRASH_POINTS = (
    "after_land",
    "after_register",
    "after_staging",
    "after_quarantine",
    "after_load_row",
    "after_core_commit",
    "after_status",
    "before_catalog",
)
ERASURE_CRASH_POINTS = ("forget_after_copy", "forget_before_history")
"""Where `throughline forget` can be interrupted on purpose: once the first file's redacted copy
replaced it in the ledger, and once every load is re-run but the old table versions remain."""


def crash_point(name: str) -> None:
    """SIGKILL this process here if the crash-safety test asked for it (THROUGHLINE_CRASH_AT=name)."""
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
