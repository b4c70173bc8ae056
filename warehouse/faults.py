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
FORGET_CRASH_POINTS = (
    "forget_after_keys",
    "forget_after_change_recorded",
    "forget_after_repoint",
    *ERASURE_CRASH_POINTS,
    "forget_after_history",
)
"""Every phase boundary of `throughline forget`: keys erased in staging and core; a copy landed and
recorded in `landing_changes` but the ledger not yet pointed at it; pointed at it but the original
not yet deleted; then the two above; and the history removed but the catalog not yet rebuilt."""
PULL_CRASH_POINTS = ("pull_after_fetch", "pull_after_load", "pull_after_state", "pull_after_settle")
"""Every phase boundary of `throughline pull` for one source: fetched into scratch but not landed;
landed and loaded but the source's state not saved; saved but nothing settled at the source (an SFTP
file archived); settled but the list of files still to settle not yet removed."""
REFERENCE_CRASH_POINTS = (
    "reference_after_first_table",
    "reference_after_tables",
    "reference_after_resolution",
    "reference_after_first_partition",
    "reference_before_fingerprint",
)
"""Every phase boundary of a reference data load (`refresh_reference`): one table stored of many;
every table stored; the resolution stored; one distributor's core partitions rewritten of several;
core in line but the folder's fingerprint not yet recorded."""
APPROVAL_CRASH_POINTS = ("approval_after_candidate", "approval_after_file")
"""Where an alias approval (`partners approve`, `skus map`, `rates add`) stops before the reference
load it ends with: the checked candidate file written beside the reference file; the reference file
replaced by it. The reference load's own points (REFERENCE_CRASH_POINTS) follow."""
PUBLISH_CRASH_POINTS = ("publish_after_first_mart", "publish_after_marts", "publish_after_reports")
"""Every phase boundary of `throughline publish`: one mart stored of five; every mart stored but no
scorecard written; the scorecards written but the catalog not yet rebuilt."""


def crash_point(name: str) -> None:
    """SIGKILL this process here if the crash-safety test asked for it (THROUGHLINE_CRASH_AT=name)."""
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
