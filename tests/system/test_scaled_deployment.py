"""Throughline beyond one process tree, on real local servers: the Dagster instance in PostgreSQL and
the ingest job's steps on a Dask cluster of two workers, as docs/deploy.md sets them up.

One module-scoped deployment: Debian's PostgreSQL (a throwaway cluster in a temporary folder, run
by the `postgres` user when the tests run as root, on a free port of 127.0.0.1, password login), a
Dask scheduler and two workers (`dask scheduler`, `dask worker`: real processes on 127.0.0.1), and
`python -m pipelines.serve --instance postgres` with THROUGHLINE_DASK_SCHEDULER naming the
scheduler. The home holds two distributors' four weeks, loaded beforehand. Fixtures stop every
process they started, whatever happens.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl
import psycopg2
import pytest
from distributed import Client

from pipelines.executors import DASK_SCHEDULER_ENV, dask_task_key
from pipelines.partitions import RANGE_END_TAG, RANGE_START_TAG, add_partitions
from sampledata.generator import copy_feed_specs, generate_samples
from sampledata.reference import copy_reference
from tests.conftest import TEST_SECRET, ingest_inbox, query_home
from tests.system.deployment import Deployment, free_port, served, stop_group

pytestmark = pytest.mark.system

BIN = Path(sys.executable).parent
READY_SECONDS = 300
WAIT_SECONDS = 360
BACKFILL_SECONDS = 600
DISTRIBUTORS = ("northwind_us", "rheinland_de")
WEEKS = ["2026-10-19", "2026-10-26", "2026-11-02", "2026-11-09"]
BACKFILLED = WEEKS[-2:]
"""The backfill re-loads each distributor's last two weeks: one run per distributor all the same."""
DROPPED = ("northwind_us", "NW_SALES_20261116.csv", "2026-11-16")
"""The file the inbox sensor gets: Northwind's next week (sampledata with as_of one week later)."""
REPOSITORY = {"repositoryName": "__repository__", "repositoryLocationName": "throughline"}


def _wait_for(what: str, probe: Callable[[], object], seconds: float, log: Callable[[], str]):
    """Poll `probe` until it returns something truthy; fail with `log()` otherwise."""
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(1)
    raise AssertionError(f"{what}: not within {seconds:.0f} s (last: {last})\n{log()}")


# --------------------------------------------------------------------------------------------------
# PostgreSQL


@dataclass
class Postgres:
    """A running PostgreSQL cluster and the database and role Dagster uses."""

    port: int
    password: str
    log: Path
    host: str = "127.0.0.1"
    database: str = "dagster"
    user: str = "dagster"

    def environment(self) -> dict[str, str]:
        """What pipelines/dagster.postgres.yaml reads (docs/deploy.md)."""
        return {
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_DB": self.database,
            "DAGSTER_PG_USERNAME": self.user,
            "DAGSTER_PG_PASSWORD": self.password,
        }

    def rows(self, sql: str, parameters: tuple = ()) -> list[tuple]:
        """`sql` as Dagster's role, over TCP with its password."""
        connection = psycopg2.connect(
            host=self.host, port=self.port, dbname=self.database, user=self.user, password=self.password
        )
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, parameters)
                return cursor.fetchall()
        finally:
            connection.close()


def _postgres_bin() -> Path:
    """The newest Debian PostgreSQL server's bin folder (`make test-deps` installs `postgresql`)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    assert found, "PostgreSQL is not installed: `make test-deps` installs Debian's postgresql"
    return found[-1].parent


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    """A throwaway cluster: PostgreSQL refuses to run as root, so as root it runs as `postgres`."""
    bin_dir = _postgres_bin()
    # A short folder outside pytest's: the server's Unix socket path is limited to about 100 bytes.
    root = Path(tempfile.mkdtemp(prefix="tl-pg-"))
    as_server: list[str] = []
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(root, owner.pw_uid, owner.pw_gid)
        as_server = ["runuser", "-u", "postgres", "--"]
    data, sockets, log = root / "data", root, root / "server.log"
    port = free_port()
    password = secrets.token_urlsafe(16)

    def run(*command: str) -> None:
        done = subprocess.run([*as_server, *command], capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, f"{command[0]}: {done.stdout[-2000:]}{done.stderr[-2000:]}"

    run(
        str(bin_dir / "initdb"),
        *("-D", str(data), "-U", "postgres", "-E", "UTF8", "--locale", "C"),
        *("--auth-local", "trust", "--auth-host", "scram-sha-256"),
    )
    options = f"-k {sockets} -p {port} -h 127.0.0.1 -c fsync=off -c synchronous_commit=off"
    run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "120", "start")
    server = Postgres(port, password, log)
    try:
        admin = psycopg2.connect(host=str(sockets), port=port, dbname="postgres", user="postgres")
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute(f"CREATE ROLE {server.user} LOGIN PASSWORD %s", (password,))
            cursor.execute(f"CREATE DATABASE {server.database} OWNER {server.user}")
        admin.close()
        yield server
    finally:
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", "60", "stop")
        shutil.rmtree(root, ignore_errors=True)


# --------------------------------------------------------------------------------------------------
# The home, the Dask cluster and the deployment


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two distributors' four weeks, loaded beforehand (the backfill re-loads them)."""
    root = tmp_path_factory.mktemp("scaled")
    home = root / "home"
    copy_feed_specs(home / "feeds")
    copy_reference(home / "reference")
    generate_samples(root / "samples")
    for distributor in DISTRIBUTORS:
        shutil.copytree(root / "samples" / distributor, home / "inbox" / distributor)
    report = ingest_inbox(home)
    assert report.outcomes and all(o.load.status in ("loaded", "superseded") for o in report.outcomes)
    return home


def _environment(home: Path, postgres: Postgres) -> dict[str, str]:
    """What every process of the deployment gets: the home, the key and the instance's database."""
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", DASK_SCHEDULER_ENV)}
    return {
        **env,
        "THROUGHLINE_HOME": str(home),
        "THROUGHLINE_CUSTOMER_KEY_SECRET": TEST_SECRET,
        **postgres.environment(),
    }


@dataclass
class DaskCluster:
    address: str
    client: Client
    logs: list[Path]

    def log_tail(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}" for log in self.logs)

    def tasks(self) -> dict[str, dict]:
        """The scheduler's task stream (every task a worker finished), by task key."""
        return {record["key"]: record for record in self.client.get_task_stream()}


@pytest.fixture(scope="module")
def dask_cluster(home: Path, postgres: Postgres) -> Iterator[DaskCluster]:
    """A scheduler and two single-threaded workers, each its own process (with its nanny)."""
    root = home.parent
    address = f"tcp://127.0.0.1:{free_port()}"
    env = _environment(home, postgres)
    processes: list[subprocess.Popen] = []
    logs = [root / "dask-scheduler.log", root / "dask-worker-a.log", root / "dask-worker-b.log"]
    commands = [
        [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1]],
        *(
            [
                *(str(BIN / "dask"), "worker", address, "--name", name, "--nthreads", "1", "--nworkers", "1"),
                *("--host", "127.0.0.1", "--memory-limit", "0", "--local-directory", str(root / name)),
            ]
            for name in ("worker-a", "worker-b")
        ),
    ]
    try:
        for command, log in zip(commands, logs, strict=True):
            with log.open("w") as out:
                processes.append(
                    subprocess.Popen(
                        [*command, "--no-dashboard"],
                        cwd=root,  # not the source tree: workers import the installed package
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        client = Client(address, timeout=60)
        try:
            client.wait_for_workers(2, timeout=120)
            client.get_task_stream()  # the scheduler records its task stream from now on
            yield DaskCluster(address, client, logs)
        finally:
            client.close()
    finally:
        for process in reversed(processes):
            stop_group(process)


@dataclass
class ScaledDeployment:
    """The served deployment (`tests/system/deployment.served`, on PostgreSQL and the Dask cluster)."""

    served: Deployment
    postgres: Postgres
    dask: DaskCluster

    @property
    def home(self) -> Path:
        return self.served.home

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        return self.served.graphql(query, variables)

    def wait_for(self, what: str, probe: Callable[[], object], seconds: float = WAIT_SECONDS):
        return _wait_for(what, probe, seconds, self.served.log_tail)


@pytest.fixture(scope="module")
def deployment(home: Path, postgres: Postgres, dask_cluster: DaskCluster) -> Iterator[ScaledDeployment]:
    env = {**_environment(home, postgres), DASK_SCHEDULER_ENV: dask_cluster.address}
    with served(
        home.parent,
        env,
        options=("--instance", "postgres"),
        more_log=dask_cluster.log_tail,
        ready_seconds=READY_SECONDS,
    ) as running:
        yield ScaledDeployment(running, postgres, dask_cluster)


# --------------------------------------------------------------------------------------------------
# Questions to the webserver, PostgreSQL and the Dask scheduler


def _runs(deployment: ScaledDeployment, key: str, value: str) -> list[dict]:
    data = deployment.graphql(
        """query ($key: String!, $value: String!) { runsOrError(filter: {tags: [{key: $key, value: $value}]}) {
          ... on Runs { results { runId status pipelineName tags { key value } } } } }""",
        {"key": key, "value": value},
    )
    return data["runsOrError"]["results"]


def _finished(runs: list[dict]) -> bool:
    return bool(runs) and all(r["status"] in ("SUCCESS", "FAILURE", "CANCELED") for r in runs)


def _tags(run: dict) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["tags"]}


def _materialized_partitions(deployment: ScaledDeployment, run_id: str) -> list[str]:
    """The ops/loads partitions a run materialized, as PostgreSQL's event log holds them."""
    rows = deployment.postgres.rows(
        "SELECT partition FROM event_logs WHERE run_id = %s AND dagster_event_type = 'ASSET_MATERIALIZATION' "
        "AND asset_key = %s ORDER BY partition",
        (run_id, json.dumps(["ops", "loads"])),
    )
    return [partition for (partition,) in rows]


def _step_pids(deployment: ScaledDeployment, run_id: str) -> set[int]:
    """The process ids that reported the run's step starting (Dagster records each event's pid)."""
    rows = deployment.postgres.rows(
        "SELECT event FROM event_logs WHERE run_id = %s AND dagster_event_type = 'STEP_START'", (run_id,)
    )
    return {json.loads(event)["dagster_event"]["pid"] for (event,) in rows}


def _warehouse(home: Path) -> dict[str, pl.DataFrame]:
    """What analysts see of the two distributors: their sell-out and stock rows and their loads."""
    where = f"where distributor_id in {DISTRIBUTORS}"
    return {
        "sellout": query_home(home, f"select * exclude (ingested_at) from sellout {where} order by line_id"),
        "inventory": query_home(
            home, f"select * exclude (ingested_at) from inventory {where} order by line_id"
        ),
        "loads": query_home(
            home,
            "select load_id, source_name, status, rows_read, rows_loaded, rows_quarantined, rows_skipped "
            f"from loads {where} order by load_id",
        ),
    }


# --------------------------------------------------------------------------------------------------
# The tests


def test_a_file_dropped_in_the_inbox_is_loaded_by_a_run_whose_records_are_in_postgresql(
    deployment: ScaledDeployment, tmp_path: Path
) -> None:
    distributor, name, period = DROPPED
    generate_samples(tmp_path, as_of=date(2026, 11, 23))
    dropped = deployment.home / "inbox" / distributor / name
    shutil.copy(tmp_path / distributor / name, dropped)

    def run_of_the_file() -> dict | None:
        runs = [
            r
            for r in _runs(deployment, "throughline/distributor", distributor)
            if r["pipelineName"] == "ingest"
        ]
        return runs[0] if _finished(runs) else None

    run = deployment.wait_for("the inbox sensor's run lands the file", run_of_the_file)
    assert run["status"] == "SUCCESS"
    assert _tags(run)["dagster/sensor_name"] == "inbox_sensor"
    loads = query_home(deployment.home, f"select status, rows_loaded from loads where source_name = '{name}'")
    assert loads["status"].to_list() == ["loaded"] and loads["rows_loaded"][0] > 0
    assert not dropped.exists()

    # The run, its events and the sensor's ticks are PostgreSQL rows; the instance has no SQLite file.
    postgres = deployment.postgres
    assert postgres.rows("SELECT status, pipeline_name FROM runs WHERE run_id = %s", (run["runId"],)) == [
        ("SUCCESS", "ingest")
    ]
    assert _materialized_partitions(deployment, run["runId"]) == [f"{distributor}|{period}"]
    assert postgres.rows(
        "SELECT count(*) FROM event_logs WHERE run_id = %s AND dagster_event_type = %s",
        (run["runId"], dg.DagsterEventType.RUN_SUCCESS.value),
    ) == [(1,)]
    assert postgres.rows(
        "SELECT count(*) FROM job_ticks WHERE type = 'SENSOR' AND status = 'SUCCESS' AND tick_body LIKE %s",
        (f"%{run['runId']}%",),
    ) == [(1,)]
    assert (period,) in postgres.rows(
        "SELECT partition FROM dynamic_partitions WHERE partitions_def_name = 'report_period'"
    )
    dagster_home = deployment.home / "dagster"
    assert (dagster_home / "dagster.yaml").read_text().count("postgres_db:") == 1
    assert not [p for p in dagster_home.rglob("*") if p.suffix in (".db", ".sqlite")]

    # Its step ran on a worker of the Dask cluster.
    task = deployment.dask.tasks()[dask_task_key("ingest", "load_reports", run["runId"])]
    assert task["status"] == "OK"


def _launch_backfill(deployment: ScaledDeployment, partitions: list[str]) -> str:
    """A backfill of the `ingest` job over `partitions`, as the job page's *Materialize* launches it."""
    launched = deployment.graphql(
        """mutation ($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
          __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }""",
        {
            "params": {
                "selector": {"partitionSetName": "ingest_partition_set", "repositorySelector": REPOSITORY},
                "partitionNames": partitions,
                "fromFailure": False,
            }
        },
    )["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    return launched["backfillId"]


def _add_partitions(deployment: ScaledDeployment) -> None:
    """The distributors and weeks loaded outside Dagster, as a data engineer adds them in the UI."""
    for definition, keys in (("distributor", DISTRIBUTORS), ("report_period", WEEKS)):
        for key in keys:
            added = deployment.graphql(
                """mutation ($repo: RepositorySelector!, $name: String!, $key: String!) {
                  addDynamicPartition(repositorySelector: $repo, partitionsDefName: $name, partitionKey: $key) {
                    __typename } }""",
                {"repo": REPOSITORY, "name": definition, "key": key},
            )["addDynamicPartition"]["__typename"]
            assert added in ("AddDynamicPartitionSuccess", "DuplicateDynamicPartitionError"), added


def _execute_with_the_default_executor(home: Path, instance_home: Path, distributor: str) -> subprocess.Popen:
    """`dagster job execute` of the ingest job over one distributor's weeks: the job's own executor
    (Dagster's multiprocess default, no THROUGHLINE_DASK_SCHEDULER), a SQLite instance."""
    env = {k: v for k, v in os.environ.items() if k != DASK_SCHEDULER_ENV}
    env.update(
        THROUGHLINE_HOME=str(home),
        THROUGHLINE_CUSTOMER_KEY_SECRET=TEST_SECRET,
        DAGSTER_HOME=str(instance_home),
    )
    tags = {
        RANGE_START_TAG: f"{distributor}|{BACKFILLED[0]}",
        RANGE_END_TAG: f"{distributor}|{BACKFILLED[-1]}",
    }
    return subprocess.Popen(
        [
            *(str(BIN / "dagster"), "job", "execute", "-m", "pipelines.definitions", "-a", "defs"),
            *("-j", "ingest", "--tags", json.dumps(tags)),
        ],
        cwd=home.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_a_backfill_of_two_distributors_runs_on_both_dask_workers_and_builds_what_the_default_executor_builds(
    deployment: ScaledDeployment, tmp_path: Path
) -> None:
    _add_partitions(deployment)
    before = _warehouse(deployment.home)
    # The same home, for the same backfill on Dagster's default executor.
    default_home = tmp_path / "home"
    shutil.copytree(deployment.home, default_home, ignore=shutil.ignore_patterns("dagster", "inbox"))
    instance_home = tmp_path / "dagster"
    instance_home.mkdir()
    with dg.DagsterInstance.from_config(str(instance_home)) as instance:
        add_partitions(instance, [(d, date.fromisoformat(w)) for d in DISTRIBUTORS for w in WEEKS])

    backfill = _launch_backfill(deployment, [f"{d}|{w}" for d in DISTRIBUTORS for w in BACKFILLED])
    defaults = [_execute_with_the_default_executor(default_home, instance_home, d) for d in DISTRIBUTORS]
    # Dagster 1.13 gives every ranged run of a job backfill the first range's partition tags, so
    # the queue's one-run-per-distributor limit starts the second run when the first has finished.
    runs = deployment.wait_for(
        "the backfill's two runs finish",
        lambda: (
            len(found := _runs(deployment, "dagster/backfill", backfill)) == 2 and _finished(found) and found
        ),
        BACKFILL_SECONDS,
    )
    for process in defaults:
        output, _ = process.communicate(timeout=BACKFILL_SECONDS)
        assert process.returncode == 0, output[-4000:]
        assert "RUN_SUCCESS" in output

    # One run per distributor (BackfillPolicy.single_run), each re-loading its weeks.
    by_distributor = {_tags(run)[RANGE_START_TAG].split("|")[0]: run for run in runs}
    assert sorted(by_distributor) == sorted(DISTRIBUTORS)
    # Both carry one distributor's partition tag (docs/operations.md, "Backfills"): it is not the range.
    assert len({_tags(run)["dagster/partition/distributor"] for run in runs}) == 1
    for distributor, run in by_distributor.items():
        assert run["status"] == "SUCCESS"
        assert _tags(run)[RANGE_END_TAG] == f"{distributor}|{BACKFILLED[-1]}"
        assert _materialized_partitions(deployment, run["runId"]) == [
            f"{distributor}|{w}" for w in BACKFILLED
        ]

    # Each run's step was a task of the Dask cluster, and the two ran on the two workers: the
    # scheduler's task stream says where, and the step's own events carry that worker's pid.
    tasks = deployment.dask.tasks()
    worker_pids = deployment.dask.client.run(os.getpid)
    workers = {}
    for run in runs:
        task = tasks[dask_task_key("ingest", "load_reports", run["runId"])]
        assert task["status"] == "OK"
        workers[run["runId"]] = task["worker"]
        assert _step_pids(deployment, run["runId"]) == {worker_pids[task["worker"]]}
    assert sorted(workers.values()) == sorted(worker_pids)  # both workers, one run each

    # The warehouse is what the default executor builds from the same home, and what it was.
    after, built_by_default = _warehouse(deployment.home), _warehouse(default_home)
    for table, frame in after.items():
        assert frame.height > 0
        assert frame.equals(built_by_default[table]), table
        assert frame.equals(before[table]), table
