"""The guarantees Throughline proves, the tests that prove them, and the figures of their last run.

- `GUARANTEES`: each guarantee in one sentence, with the tests (`path::name`) that prove it.
- The `figures` fixture (tests/conftest.py) hands a test a `Figures` to count what it checked:
  trials, faults injected, rows checked, rows lost. When THROUGHLINE_GUARANTEE_FIGURES names a
  JSON file (`make guarantees` sets it), every run of a guarantee's test writes its outcome and
  figures there (`record_run`); otherwise nothing is written.
- `python -m tests.guarantees tests` prints the tests to run; `python -m tests.guarantees render`
  writes the table into docs/guarantees.md between its markers, from docs/guarantees.json.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock

REPO_ROOT = Path(__file__).resolve().parents[1]
DOC = REPO_ROOT / "docs" / "guarantees.md"
FIGURES_FILE = REPO_ROOT / "docs" / "guarantees.json"
FIGURES_ENV = "THROUGHLINE_GUARANTEE_FIGURES"
START, END = "<!-- guarantees:start -->", "<!-- guarantees:end -->"


@dataclass(frozen=True)
class Guarantee:
    title: str
    sentence: str
    tests: tuple[str, ...]


GUARANTEES: tuple[Guarantee, ...] = (
    Guarantee(
        "Nothing lost by a crash",
        "A load killed with SIGKILL in any phase or at a random moment is completed by the next run "
        "into exactly the warehouse an undisturbed run builds: no line lost, none counted twice.",
        (
            "tests/system/test_crash_safety.py::test_a_kill_at_each_phase_is_completed_by_the_next_run",
            "tests/system/test_crash_safety.py::test_random_kills_lose_and_double_nothing",
        ),
    ),
    Guarantee(
        "Nothing lost by a crash: pulls",
        "A `throughline pull` from an SFTP server or an HTTP API killed with SIGKILL in any phase or at a "
        "random moment is completed by the next pull: every remote file landed and loaded once, no line "
        "twice, and the same files archived at the source and the same manifest or watermark kept as "
        "by an undisturbed pull.",
        (
            "tests/system/test_crash_safety_pull.py::test_a_pull_killed_at_each_phase_is_completed_by_the_next_pull",
            "tests/system/test_crash_safety_pull.py::test_a_pull_killed_at_random_moments_lands_every_file_once",
        ),
    ),
    Guarantee(
        "Nothing lost by a crash: reference data loads",
        "A reference data load (`throughline reference refresh`) killed with SIGKILL in any phase or at a "
        "random moment and run again leaves exactly the reference tables, core rows and reference "
        "fingerprint an undisturbed load leaves.",
        (
            "tests/system/test_crash_safety_reference.py::"
            "test_a_reference_load_killed_at_each_phase_is_completed_by_the_next_run",
            "tests/system/test_crash_safety_reference.py::"
            "test_a_reference_load_killed_at_random_moments_ends_as_an_undisturbed_one",
        ),
    ),
    Guarantee(
        "Nothing lost by a crash: a person's fixes",
        "`throughline partners approve`, `skus map` and `rates add` killed with SIGKILL in any phase or at "
        "a random moment and run again add their row to the reference file once and apply it to history "
        "exactly as an undisturbed run does.",
        (
            "tests/system/test_crash_safety_approvals.py::"
            "test_a_fix_killed_at_each_phase_is_applied_once_by_running_it_again",
            "tests/system/test_crash_safety_approvals.py::"
            "test_a_fix_killed_at_random_moments_is_applied_once_by_running_it_again",
        ),
    ),
    Guarantee(
        "Nothing lost by a crash: mart builds",
        "`throughline publish` killed with SIGKILL in any phase or at a random moment and run again "
        "stores exactly the marts and writes exactly the scorecard files (no half-written or stray file) "
        "an undisturbed run does, and changes no line of core.",
        (
            "tests/system/test_crash_safety_publish.py::"
            "test_publish_killed_at_each_phase_is_completed_by_the_next_run",
            "tests/system/test_crash_safety_publish.py::"
            "test_publish_killed_at_random_moments_writes_what_an_undisturbed_run_writes",
        ),
    ),
    Guarantee(
        "Nothing lost by a crash: erasure",
        "`throughline forget` killed with SIGKILL in any phase or at a random moment and run again ends "
        "exactly where an undisturbed erasure ends: no trace of the customer in any file under the home, "
        "every other line, the ledger and landing the same.",
        (
            "tests/system/test_crash_safety_forget.py::"
            "test_an_erasure_killed_at_each_phase_is_finished_by_running_it_again",
            "tests/system/test_crash_safety_forget.py::"
            "test_an_erasure_killed_at_random_moments_ends_as_an_undisturbed_one",
        ),
    ),
    Guarantee(
        "Every line accounted for",
        "Every line of a received file is loaded, quarantined with its rule, or counted as skipped by "
        "the rule that skipped it.",
        ("tests/ingest/test_nothing_lost.py::test_every_sample_file_accounts_for_every_line",),
    ),
    Guarantee(
        "Exactly once: the same bytes again",
        "The same bytes delivered again (under the same name, renamed as another week, with a new "
        "modification time, or through the inbox) are recorded as duplicates and add no line.",
        ("tests/ingest/test_exactly_once.py::test_the_same_bytes_delivered_again_load_once",),
    ),
    Guarantee(
        "Exactly once: two channels at once",
        "The same files delivered at the same moment by the inbox and by an SFTP pull, in two "
        "processes, load once: one load per file, no line twice, totals equal to the files'.",
        (
            "tests/ingest/test_exactly_once.py::test_inbox_and_sftp_delivering_the_same_files_at_once_load_them_once",
        ),
    ),
    Guarantee(
        "Distributors load side by side",
        "Two distributors' loads replacing their own partitions of one core table at the same moment, "
        "in two processes, all commit (neither fails on the other's commit), and each partition ends "
        "holding exactly its last rows.",
        (
            "tests/warehouse/test_concurrent_replacements.py::test_two_distributors_replacing_their_partitions_at_once_all_commit",
        ),
    ),
    Guarantee(
        "Exactly once: a crash between data and ledger",
        "A load killed after writing its rows but before writing its ledger row is finished once when "
        "the same bytes arrive again under another name.",
        (
            "tests/ingest/test_exactly_once.py::test_a_crash_between_the_data_and_the_ledger_write_is_finished_once",
        ),
    ),
    Guarantee(
        "SFTP host keys are pinned",
        "An SFTP server whose host key is not the one the feed spec pins is refused, never retried, "
        "and nothing is fetched from it.",
        (
            "tests/connectors/test_sftp.py::test_an_unknown_host_key_is_refused_and_never_retried",
            "tests/connectors/test_sftp.py::test_a_pinned_fingerprint_is_accepted_and_a_wrong_one_refused",
        ),
    ),
    Guarantee(
        "Secrets never written",
        "The SFTP password, the API token and the end-customer key secret appear in no file under the "
        "home (logs, ledger, Delta tables, DuckDB catalog, Dagster storage and run config), no log "
        "line, no error message and no command output.",
        (
            "tests/system/test_secrets_never_leak.py::test_no_secret_in_any_file_output_or_dagster_record",
            "tests/connectors/test_sftp.py::test_secrets_never_reach_a_log_line_or_a_message",
            "tests/connectors/test_http_api.py::test_secrets_never_reach_a_log_line_or_a_message",
        ),
    ),
    Guarantee(
        "Exports cannot run formulas",
        "A partner export's CSV prefixes every text cell a spreadsheet would run as a formula, and "
        "keeps numbers numeric; the Parquet keeps the values as stored.",
        ("tests/reports/test_export.py::test_csv_neutralizes_formulas_and_keeps_numbers_numeric",),
    ),
    Guarantee(
        "A partner sees only its own rows",
        "A partner's export (`throughline export --partner`) and scorecard hold all of that partner's "
        "lines and no row, id or reseller of another partner.",
        (
            "tests/system/test_partner_scope.py::test_a_partner_export_and_scorecard_hold_only_that_partner",
            "tests/reports/test_export.py::test_export_holds_only_that_partners_lines",
            "tests/reports/test_scorecards.py::test_each_page_holds_its_partner_and_nothing_of_the_other",
        ),
    ),
    Guarantee(
        "End-customer identity stays in landing",
        "End-customer names, e-mails, phones and addresses reach no table, view or file outside "
        "landing, in any of the six formats, valid and quarantined records alike.",
        (
            "tests/ingest/test_privacy_every_format.py::test_no_identity_in_any_catalog_view",
            "tests/ingest/test_privacy_every_format.py::test_no_identity_in_any_table_or_file_outside_landing",
        ),
    ),
    Guarantee(
        "Landing retention",
        "`throughline retention` deletes only landing files older than the retention period whose load "
        "finished, records each deletion in the ledger, keeps every row, and the same bytes sent again "
        "neither load nor come back.",
        ("tests/ingest/test_retention.py::test_retention_deletes_old_landing_files_and_keeps_every_row",),
    ),
    Guarantee(
        "Erasure leaves no trace",
        "After `throughline forget`, no byte of the customer's identity or key is in any file under the "
        "home (landing, Parquet, Delta logs, DuckDB), every other line is unchanged, ingesting or "
        "re-processing afterwards loads nothing twice, and an erasure killed midway is finished by "
        "running it again.",
        (
            "tests/ingest/test_forget.py::test_forget_leaves_no_trace_and_changes_no_other_line",
            "tests/ingest/test_forget.py::test_forget_erases_a_customer_from_every_format",
            "tests/ingest/test_forget.py::test_an_interrupted_erasure_is_finished_by_running_it_again",
        ),
    ),
    Guarantee(
        "Hostile input never crashes a reader",
        "Any bytes given to any reader (CSV in seven dialects, fixed width, JSON lines, a JSON document, "
        "xlsx, X12) give records, each with its own source row, or a refusal naming the file: never "
        "another exception, a hang or unbounded memory; X12 with any delimiters, line breaks and chunk "
        "sizes reads back every line written.",
        (
            "tests/transforms/readers/test_readers_fuzz.py::test_fuzzed_csv_gives_records_or_a_refusal",
            "tests/transforms/readers/test_readers_fuzz.py::test_fuzzed_fixed_width_gives_records_or_a_refusal",
            "tests/transforms/readers/test_readers_fuzz.py::test_fuzzed_json_lines_give_records_or_a_refusal",
            "tests/transforms/readers/test_readers_fuzz.py::test_fuzzed_json_array_gives_records_or_a_refusal",
            "tests/transforms/readers/test_readers_fuzz.py::test_fuzzed_xlsx_gives_records_or_a_refusal",
            "tests/transforms/readers/test_readers_fuzz.py::test_fuzz_findings_stay_fixed",
            "tests/transforms/readers/test_readers_x12.py::test_fuzzed_bytes_give_records_or_a_refusal",
            "tests/transforms/readers/test_readers_x12.py::test_867_round_trip",
            "tests/transforms/readers/test_readers_x12.py::test_852_round_trip",
        ),
    ),
    Guarantee(
        "Schema drift reported by name",
        "A file whose header differs from its feed spec or from the feed's previous file has each column "
        "added, dropped, renamed or reordered named in its `loads` row, `throughline ingest` and "
        "`status`; it still loads every record unless a column the load needs is missing, and then it is "
        "refused with the spec change to make.",
        ("tests/ingest/test_schema_drift.py::test_schema_drift_is_reported_by_name_in_the_load_and_the_cli",),
    ),
    Guarantee(
        "Load: 2,000 small files and 5 large ones",
        "2,001 small files and 5 large ones (1.5 million lines) of six distributors, dropped into the "
        "inbox in waves while the Dagster deployment's sensor and runs are at work, each land exactly "
        "once: one finished load per file with every line accounted for, no line twice, each "
        "distributor's totals equal to the generator's, every run succeeded, and the memory of the "
        "whole process tree stays under a bound that does not depend on the number of files.",
        (
            "tests/system/test_load.py::"
            "test_two_thousand_small_files_and_five_large_ones_land_exactly_once_in_bounded_memory",
        ),
    ),
)


@dataclass
class Figures:
    """What one test checked; a test adds to it as it goes (the figures of a guarantee are their sum).
    A figure the test never gives (no rows in a refusal) is shown as a dash, not as 0."""

    trials: int = 0
    faults: int = 0
    rows_checked: int = 0
    rows_lost: int = 0
    recorded: bool = False
    counted: list[str] = field(default_factory=list)

    def add(
        self,
        *,
        trials: int = 1,
        faults: int | None = None,
        rows_checked: int | None = None,
        rows_lost: int | None = None,
    ) -> None:
        self.trials += trials
        self.recorded = True
        for name, value in (("faults", faults), ("rows_checked", rows_checked), ("rows_lost", rows_lost)):
            if value is not None:
                setattr(self, name, getattr(self, name) + value)
                if name not in self.counted:
                    self.counted.append(name)


def function_of(nodeid: str) -> str:
    """`path::name` of a test node id (parameters dropped)."""
    return re.sub(r"\[.*\]$", "", nodeid)


def proven_tests() -> list[str]:
    return list(dict.fromkeys(test for guarantee in GUARANTEES for test in guarantee.tests))


def record_run(nodeid: str, outcome: str, duration: float, figures: Figures | None) -> None:
    """Write one test run to the figures file named by THROUGHLINE_GUARANTEE_FIGURES (if any)."""
    target = os.environ.get(FIGURES_ENV)
    if not target or function_of(nodeid) not in proven_tests():
        return
    path = Path(target)
    # pytest-xdist's workers record into the same file: one at a time, each write whole.
    with FileLock(f"{path}.lock"):
        runs = json.loads(path.read_text(encoding="utf-8"))["runs"] if path.is_file() else {}
        runs[nodeid] = {
            "outcome": outcome,
            "seconds": round(duration, 1),
            "at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            **asdict(figures or Figures()),
        }
        partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        partial.write_text(
            json.dumps({"runs": dict(sorted(runs.items()))}, indent=1) + "\n", encoding="utf-8"
        )
        partial.replace(path)


def _cell(runs: list[dict], name: str) -> str:
    counted = [run[name] for run in runs if name in run.get("counted", [])]
    return f"{sum(counted):,}" if counted else "—"


def render_table(runs: dict[str, dict]) -> str:
    """The guarantees table, with the figures of `runs` (node id -> run)."""
    lines = [
        "| guarantee | proved by | last run | trials | faults injected | rows checked | rows lost |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for guarantee in GUARANTEES:
        mine = [run for nodeid, run in runs.items() if function_of(nodeid) in guarantee.tests]
        passed = sum(run["outcome"] == "passed" for run in mine)
        if mine:
            last = max(run["at"] for run in mine)
            verdict = "passed" if passed == len(mine) else f"**{len(mine) - passed} failed**"
            status = f"{verdict}, {len(mine)} case(s), {sum(run['seconds'] for run in mine):,.0f} s, {last}"
        else:
            status = "not run yet"
        trials = [run["trials"] if run["recorded"] else 1 for run in mine]
        lines.append(
            f"| **{guarantee.title}**: {guarantee.sentence} | "
            + "<br>".join(f"`{test}`" for test in guarantee.tests)
            + f" | {status} | {sum(trials):,} | "
            + " | ".join(_cell(mine, name) for name in ("faults", "rows_checked", "rows_lost"))
            + " |"
        )
    return "\n".join(lines)


def render(figures_file: Path = FIGURES_FILE, doc: Path = DOC) -> None:
    """Write the table between the markers of docs/guarantees.md."""
    runs = json.loads(figures_file.read_text(encoding="utf-8"))["runs"] if figures_file.is_file() else {}
    text = doc.read_text(encoding="utf-8")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    doc.write_text(f"{head}{START}\n{render_table(runs)}\n{END}{tail}", encoding="utf-8")


def main(argv: list[str]) -> int:
    if argv[:1] == ["tests"]:
        print(" ".join(proven_tests()))
        return 0
    if argv[:1] == ["render"]:
        render()
        return 0
    print("usage: python -m tests.guarantees tests|render", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
