"""Which executor runs the ingest job: Dagster's default, or the Dask cluster that
THROUGHLINE_DASK_SCHEDULER names, chosen when the code location loads; a bad address is refused."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from distributed import Client, LocalCluster

from pipelines.definitions import INGEST_JOB, MARTS_JOB, build_defs
from pipelines.executors import (
    DASK_SCHEDULER_ENV,
    RunScopedDaskExecutor,
    dask_cluster_executor,
    dask_task_key,
    ingest_executor,
)
from schemas.settings import SettingsError


def test_without_a_scheduler_the_ingest_job_keeps_dagsters_default_executor() -> None:
    assert ingest_executor({}) is None
    assert ingest_executor({DASK_SCHEDULER_ENV: "  "}) is None


def test_a_scheduler_address_puts_the_ingest_job_and_only_it_on_dask(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DASK_SCHEDULER_ENV, "tcp://dask-scheduler:8786")
    defs = build_defs(home)
    ingest = defs.resolve_job_def(INGEST_JOB)
    assert ingest.executor_def.name == "dask"
    marts = defs.resolve_job_def(MARTS_JOB)
    assert marts.executor_def.name != "dask"


@pytest.mark.parametrize("address", ["dask-scheduler:8786", "http://dask:8787", "tcp://dask-scheduler"])
def test_an_address_that_is_no_scheduler_is_refused_naming_the_variable(address: str) -> None:
    with pytest.raises(SettingsError, match=DASK_SCHEDULER_ENV):
        ingest_executor({DASK_SCHEDULER_ENV: address})


def test_the_dask_executor_submits_to_the_named_scheduler() -> None:
    executor = dask_cluster_executor.executor_creation_fn(
        SimpleNamespace(executor_config={"scheduler_address": "tcp://dask-scheduler:8786"})
    )
    assert isinstance(executor, RunScopedDaskExecutor)
    assert (executor.cluster_type, executor.cluster_configuration) == (
        "existing",
        {"address": "tcp://dask-scheduler:8786"},
    )


def _step(run_id: str) -> str:
    time.sleep(1)  # the first run's step is still on the cluster when the second run submits its own
    return f"events of {run_id}"


def test_each_run_gets_its_own_dask_task_where_a_shared_key_would_get_another_runs_result() -> None:
    """Two runs, each with its own client as each run worker has one: under dagster-dask's own key
    (`<job>.<step>`) the second run is handed the first one's events; under ours each runs its step."""
    # ":0": the dashboard takes a free port. None means Dask's 8787; when any other process holds
    # that port, Dask's warning (an error under pytest) fails the cluster's start.
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster,
        Client(cluster) as first_run,
        Client(cluster) as second_run,
    ):
        runs = [(first_run, "run-1"), (second_run, "run-2")]
        shared = [client.submit(_step, run_id, key="ingest.load_reports") for client, run_id in runs]
        assert [future.result() for future in shared] == ["events of run-1", "events of run-1"]
        scoped = [
            client.submit(_step, run_id, key=dask_task_key("ingest", "load_reports", run_id))
            for client, run_id in runs
        ]
        assert [future.result() for future in scoped] == ["events of run-1", "events of run-2"]
