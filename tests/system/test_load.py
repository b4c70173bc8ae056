"""Load: 2,000 small files and 5 large ones dropped into the inbox of a running deployment.

The real deployment (`python -m pipelines.serve`: code server, daemon, webserver; tests/system/
deployment.py) on a home holding only the sample feed specs and reference data. The files come from
the project's generators: the small ones are 69 four-week samples of `sampledata.generator` (29
files each: six distributors, CSV, cp1252 CSV, xlsx, fixed width, JSON lines, EDI 867 and 852,
with their bad records, a restatement and overlapping weeks), one sample per four weeks going back
five years, each with its own seed and no invoice shared with another; the large ones are written
by `sampledata.scale` (Northwind's CSV, Rheinland's cp1252 CSV, Keystone's EDI 867) in the weeks
after them. They are dropped in waves, each wave once runs of the previous one are under way, while
the daemon's inbox sensor runs. Then:

- every file has exactly one finished load in `loads`, with the status and counts the generator's
  truth gives (small files) or all its lines read and loaded (large ones), and loaded + quarantined
  = read; none is left in the inbox or rejected;
- `sellout` holds no line_id twice, and each distributor's lines and units are what the generator
  wrote (after the sample's restatements and overlaps); `inventory` holds every stock row;
- every Dagster run succeeded;
- the resident memory of the whole process tree (webserver, daemon, code server and every run
  worker), sampled twice a second throughout, stays under TREE_RSS_BOUND_MIB, and each run worker
  under RUN_PROCESS_RSS_BOUND_MIB: bounds that do not depend on how many files are dropped.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from sampledata.generator import copy_feed_specs, generate_samples
from sampledata.reference import copy_reference
from sampledata.scale import write_keystone_867, write_northwind, write_rheinland
from sampledata.truth import FileTruth
from schemas.tables import FINISHED_STATUSES
from tests.conftest import TEST_SECRET
from tests.guarantees import Figures
from tests.system.deployment import FINISHED_RUN_STATUSES, Deployment, deployment_env, served

pytestmark = [pytest.mark.system, pytest.mark.long]

SMALL_FILES = 2_000
FILES_PER_SAMPLE = 29
"""Files of one four-week sample (`generate_samples`): 24 sell-out reports, one restatement, four
Northwind stock files and a Keystone 852."""
SAMPLE_DAYS = 28


@dataclass(frozen=True)
class LargeFile:
    write: Callable[..., Path]
    distributor_id: str
    name: str
    """The file name, `{:%Y%m%d}` standing for its week's Monday."""
    lines: int
    weeks_ago: int
    """Its week, counted back from this week (1: last week)."""
    first_invoice: int


LARGE_FILES = (
    LargeFile(write_northwind, "northwind_us", "NW_SALES_{:%Y%m%d}.csv", 500_000, 2, 1_000_000),
    LargeFile(write_rheinland, "rheinland_de", "RH_Abverkauf_{:%Y%m%d}.csv", 300_000, 2, 100_000),
    LargeFile(write_keystone_867, "keystone_edi", "KEYSTONE_867_{:%Y%m%d}.edi", 300_000, 1, 700_000),
    LargeFile(write_northwind, "northwind_us", "NW_SALES_{:%Y%m%d}.csv", 200_000, 1, 2_000_000),
    LargeFile(write_rheinland, "rheinland_de", "RH_Abverkauf_{:%Y%m%d}.csv", 200_000, 1, 300_000),
)
"""The large files: their invoices are numbered apart from each other and from the samples'."""
WAVES = 4
TREE_RSS_BOUND_MIB = 6_144
"""The whole deployment: three long-lived processes and at most three runs (`max_concurrent_runs`),
each a run worker and its step process, whatever the number of files."""
RUN_PROCESS_RSS_BOUND_MIB = 1_536
"""One run worker or its step process, loading at most MAX_FILES_PER_RUN small files or a 500,000-line one."""
RUN_PROCESS = "run worker or step"
SETTLE_SECONDS = 3_600
"""How long the files may take to load on a busy machine (on an idle 2-core machine: see docs/guarantees.md)."""


# --------------------------------------------------------------------------------------------------
# The files


@dataclass
class Expected:
    """What the dropped files must become."""

    files: dict[tuple[str, str], FileTruth | int] = field(default_factory=dict)
    """(distributor_id, file name) -> the sample's truth of the file, or the lines of a large file."""
    sellout_lines: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    sellout_units: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    """Units of the small files' lines only (the large files' units are not tracked)."""
    inventory_rows: dict[str, int] = field(default_factory=lambda: defaultdict(int))


def this_monday() -> date:
    today = datetime.now(UTC).date()
    return today - timedelta(days=today.weekday())


def write_waves(
    root: Path, samples: int, large_files: tuple[LargeFile, ...], waves: int
) -> tuple[list[Path], Expected]:
    """Write the files into `root/wave-<n>/<distributor_id>/` (the inbox layout), one folder per wave;
    returns the folders and what the files must become."""
    expected = Expected()
    folders = [root / f"wave-{n}" for n in range(waves)]
    invoices: set[tuple[str, str, int]] = set()
    seed = 1_000
    latest = this_monday() - timedelta(weeks=2)  # the samples' weeks end before the large files' weeks
    for index in range(samples):
        as_of = latest - timedelta(days=SAMPLE_DAYS * index)
        while True:  # a seed whose invoices no earlier sample used, so every line is counted once
            scratch = root / "scratch"
            shutil.rmtree(scratch, ignore_errors=True)
            truth = generate_samples(scratch, seed=seed, as_of=as_of)
            seed += 1
            mine = {
                (line.distributor_id, line.invoice_number, line.invoice_line) for line in truth.sellout_lines
            }
            if not mine & invoices:
                break
        invoices |= mine
        assert len(truth.files) == FILES_PER_SAMPLE
        wave = folders[index * waves // samples]
        for truth_file in truth.files:
            target = wave / truth_file.relative_path
            target.parent.mkdir(parents=True, exist_ok=True)
            (scratch / truth_file.relative_path).rename(target)  # keeps the generator's mtime
            expected.files[(truth_file.distributor_id, truth_file.file_name)] = truth_file
        for distributor_id, totals in truth.sellout.items():
            expected.sellout_lines[distributor_id] += totals.lines
            expected.sellout_units[distributor_id] += totals.quantity
        for totals in truth.inventory.values():
            expected.inventory_rows[totals.distributor_id] += totals.rows
    shutil.rmtree(root / "scratch", ignore_errors=True)
    for index, large in enumerate(large_files):
        monday = this_monday() - timedelta(weeks=large.weeks_ago)
        name = large.name.format(monday)
        wave = folders[min(waves - 1, 1 + index * (waves - 1) // len(large_files))]
        large.write(
            wave / large.distributor_id / name, large.lines, first_invoice=large.first_invoice, start=monday
        )
        expected.files[(large.distributor_id, name)] = large.lines
        expected.sellout_lines[large.distributor_id] += large.lines
    return folders, expected


def drop(wave: Path, inbox: Path) -> int:
    """Move a wave's files into the inbox, as a distributor's upload would; returns how many."""
    moved = 0
    for path in sorted(wave.rglob("*")):
        if path.is_file():
            target = inbox / path.relative_to(wave)
            target.parent.mkdir(parents=True, exist_ok=True)
            if path.stat().st_size > 1_000_000:
                shutil.copy2(path, target)  # a large file grows while the sensor may look at it
                path.unlink()
            else:
                path.rename(target)
            moved += 1
    return moved


# --------------------------------------------------------------------------------------------------
# Memory of the process tree, from /proc


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # gone meanwhile
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children[parent].append(int(entry.name))
    return children


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _role(pid: int) -> str:
    """Which process of the deployment `pid` is, from its command line."""
    command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    for marker, role in (
        ("dagster-webserver", "webserver"),
        ("dagster-daemon", "daemon"),
        ("code-server", "code server"),
        ("api grpc", "code server"),
        ("pipelines.serve", "serve"),
        ("multiprocessing", RUN_PROCESS),  # the code server spawns run workers; they spawn step processes
    ):
        if marker in command:
            return role
    return "other"


@dataclass
class MemorySampler:
    """Samples the resident memory of `pid` and all its descendants until stopped."""

    pid: int
    interval: float = 0.5
    peak_tree_mib: float = 0.0
    peak_by_role: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    samples: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def sample(self) -> None:
        children = _children()
        tree, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            tree.append(pid)
            todo.extend(children.get(pid, []))
        total = 0.0
        for pid in tree:
            try:
                rss, role = _rss_mib(pid), _role(pid)
            except OSError:
                continue
            total += rss
            self.peak_by_role[role] = max(self.peak_by_role[role], rss)
        self.peak_tree_mib = max(self.peak_tree_mib, total)
        self.samples += 1

    def run(self) -> None:
        while not self.stop.wait(self.interval):
            self.sample()


@contextlib.contextmanager
def sampling(pid: int) -> Iterator[MemorySampler]:
    """A MemorySampler of the tree of `pid`, sampling in a thread while the block runs."""
    sampler = MemorySampler(pid)
    thread = threading.Thread(target=sampler.run, name="rss-sampler", daemon=True)
    thread.start()
    try:
        yield sampler
    finally:
        sampler.stop.set()
        thread.join(timeout=10)


# --------------------------------------------------------------------------------------------------
# The deployment's progress


def unfinished_runs(deployment: Deployment) -> list[dict]:
    return [run for run in deployment.runs() if run["status"] not in FINISHED_RUN_STATUSES]


def new_run_under_way(deployment: Deployment, earlier: set[str]) -> Callable[[], list[dict]]:
    """A probe: the runs under way (started) that are not among `earlier`."""

    def probe() -> list[dict]:
        return [
            r for r in unfinished_runs(deployment) if r["status"] == "STARTED" and r["runId"] not in earlier
        ]

    return probe


def latest_calendar_tick(deployment: Deployment) -> dict | None:
    data = deployment.graphql(
        """{ sensorOrError(sensorSelector: {repositoryName: "__repository__",
              repositoryLocationName: "throughline", sensorName: "report_calendar"}) {
          ... on Sensor { sensorState { ticks(limit: 1) { timestamp status runIds } } } } }"""
    )
    ticks = data["sensorOrError"]["sensorState"]["ticks"]
    return ticks[0] if ticks else None


def finished_loads(deployment: Deployment) -> int:
    """How many loads have finished (0 before the first run has created the warehouse)."""
    try:
        found = deployment.query(f"select count(*) as n from loads where status in {FINISHED_STATUSES}")
    except duckdb.IOException:  # no table yet
        return 0
    return found["n"][0]


def settle(deployment: Deployment, files: int, seconds: float) -> float:
    """Wait until `files` loads have finished, no run is under way, and the report calendar has
    looked since (and found nothing more to do); returns when the last load finished (monotonic)."""
    deadline = time.monotonic() + seconds
    loaded_at = None
    quiet_since = None
    while time.monotonic() < deadline:
        if loaded_at is None and finished_loads(deployment) >= files:
            loaded_at = time.monotonic()
        if loaded_at is not None:
            if unfinished_runs(deployment):
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.time()
            else:
                tick = latest_calendar_tick(deployment)
                if tick and tick["timestamp"] > quiet_since and tick["status"] == "SKIPPED":
                    return loaded_at
        time.sleep(5)
    raise AssertionError(
        f"not settled within {seconds:.0f} s: {finished_loads(deployment)} of {files} loads finished, "
        f"{len(unfinished_runs(deployment))} runs under way\n{deployment.log_tail()}"
    )


# --------------------------------------------------------------------------------------------------
# The trial


@dataclass
class LoadTrial:
    files: int
    rows_checked: int
    rows_lost: int
    seconds: float
    runs: int
    drops_while_running: int
    memory: MemorySampler


def run_load_trial(root: Path, samples: int, large_files: tuple[LargeFile, ...], waves: int) -> LoadTrial:
    """Set up a home, serve it, drop the files in waves, wait until everything is loaded, and check
    it (the assertions of the module docstring, memory bounds aside); returns the figures."""
    home = root / "home"
    copy_feed_specs(home / "feeds")
    copy_reference(home / "reference")
    folders, expected = write_waves(root / "drop", samples, large_files, waves)
    env = {**deployment_env(home), "THROUGHLINE_CUSTOMER_KEY_SECRET": TEST_SECRET}
    with served(root, env) as deployment, sampling(deployment.pid) as memory:
        started = time.monotonic()
        drops_while_running = 0
        earlier: set[str] = set()
        for number, wave in enumerate(folders):
            if number:  # the next wave once a run launched for the previous one is under way
                deployment.wait_for(
                    f"a run of wave {number - 1} under way",
                    new_run_under_way(deployment, earlier),
                    SETTLE_SECONDS,
                )
            runs = deployment.runs()
            earlier = {run["runId"] for run in runs}
            drops_while_running += any(run["status"] == "STARTED" for run in runs)
            drop(wave, home / "inbox")
        loaded_at = settle(deployment, len(expected.files), SETTLE_SECONDS)
        seconds = loaded_at - started
        print(  # before the checks, so a failing check still leaves the figures in the output
            f"\n{len(expected.files):,} files loaded in {seconds:.0f} s; peak RSS of the tree "
            f"{memory.peak_tree_mib:,.0f} MiB, by process: "
            + ", ".join(f"{role} {mib:,.0f} MiB" for role, mib in sorted(memory.peak_by_role.items())),
            flush=True,
        )
        runs = deployment.runs()
        failed = {
            run["runId"]: deployment.run_failures(run["runId"]) for run in runs if run["status"] != "SUCCESS"
        }
        assert failed == {}, "every Dagster run succeeds"
        rows_checked, rows_lost = check_warehouse(deployment, expected)
    assert not any(p.is_file() for p in (home / "inbox").rglob("*")), "every file left the inbox"
    assert not any((home / "rejected").rglob("*")), "no file was rejected"
    return LoadTrial(
        len(expected.files), rows_checked, rows_lost, seconds, len(runs), drops_while_running, memory
    )


def check_warehouse(deployment: Deployment, expected: Expected) -> tuple[int, int]:
    """Each file's one finished load and its counts, and each distributor's lines; returns
    (rows checked, rows lost or doubled)."""
    loads = deployment.query(
        "select distributor_id, source_name, status, rows_read, rows_loaded, rows_quarantined, rows_skipped "
        "from loads"
    )
    by_file: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in loads.iter_rows(named=True):
        by_file[(row["distributor_id"], row["source_name"])].append(row)
    assert sorted(by_file) == sorted(expected.files), "a load for every dropped file, and no other"
    twice = {key: [r["status"] for r in rows] for key, rows in by_file.items() if len(rows) != 1}
    assert twice == {}, "exactly one load per file"
    rows_checked = 0
    for key, truth in expected.files.items():
        (row,) = by_file[key]
        # Every record read is loaded or quarantined; the file's other lines are counted as skipped.
        assert row["rows_loaded"] + row["rows_quarantined"] == row["rows_read"], (key, row)
        if isinstance(truth, int):
            assert (row["status"], row["rows_read"], row["rows_loaded"]) == ("loaded", truth, truth), (
                key,
                row,
            )
        else:
            assert (row["status"], row["rows_read"], row["rows_loaded"], row["rows_quarantined"]) == (
                truth.status,
                truth.rows_read,
                truth.rows_loaded,
                truth.rows_quarantined,
            ), (key, row)
        rows_checked += row["rows_read"]
    sellout = deployment.query(
        "select distributor_id, count(*) as lines, count(distinct line_id) as distinct_lines from sellout group by all"
    )
    found = {r["distributor_id"]: r for r in sellout.iter_rows(named=True)}
    lost = 0
    for distributor_id, lines in expected.sellout_lines.items():
        got = found.get(distributor_id, {"lines": 0, "distinct_lines": 0})
        assert got["lines"] == got["distinct_lines"], f"{distributor_id}: a line_id twice in sellout"
        lost += abs(lines - got["lines"])
    large = ", ".join(
        ["''", *(f"'{name}'" for (_, name), truth in expected.files.items() if isinstance(truth, int))]
    )
    small = deployment.query(
        "select s.distributor_id, sum(s.quantity) as units from sellout s join loads l using (load_id) "
        f"where l.source_name not in ({large}) group by all"
    )
    units = {r["distributor_id"]: r["units"] for r in small.iter_rows(named=True)}
    assert units == dict(expected.sellout_units), "the small files' units"
    inventory = deployment.query("select distributor_id, count(*) as n from inventory group by all")
    stock = {r["distributor_id"]: r["n"] for r in inventory.iter_rows(named=True)}
    assert stock == dict(expected.inventory_rows), "every stock row"
    assert lost == 0, {d: (n, found.get(d)) for d, n in expected.sellout_lines.items()}
    return rows_checked, lost


def test_two_thousand_small_files_and_five_large_ones_land_exactly_once_in_bounded_memory(
    tmp_path: Path, figures: Figures
) -> None:
    samples = math.ceil(SMALL_FILES / FILES_PER_SAMPLE)
    trial = run_load_trial(tmp_path, samples, LARGE_FILES, WAVES)
    figures.add(trials=1, faults=trial.files, rows_checked=trial.rows_checked, rows_lost=trial.rows_lost)
    print(
        f"\n{trial.files:,} files, {trial.rows_checked:,} rows, loaded in {trial.seconds:.0f} s by {trial.runs} runs; "
        f"{trial.drops_while_running} waves dropped while runs were under way; peak RSS of the tree "
        f"{trial.memory.peak_tree_mib:,.0f} MiB, by process: "
        + ", ".join(f"{role} {mib:,.0f} MiB" for role, mib in sorted(trial.memory.peak_by_role.items()))
        + f" ({trial.memory.samples} samples)"
    )
    assert trial.files == samples * FILES_PER_SAMPLE + len(LARGE_FILES) >= SMALL_FILES + 5
    assert trial.drops_while_running == WAVES - 1
    assert trial.memory.samples > 100
    assert trial.memory.peak_tree_mib < TREE_RSS_BOUND_MIB
    assert trial.memory.peak_by_role[RUN_PROCESS] < RUN_PROCESS_RSS_BOUND_MIB
