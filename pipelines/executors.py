"""Executors: where the steps of a run execute, chosen by configuration when the code location loads.

Without THROUGHLINE_DASK_SCHEDULER, Dagster's default: each step in a process of the run's worker.
With it (`tcp://host:8786`), the ingest job's step runs on a worker of that Dask cluster
(dagster-dask), whose workers import this package and open the instance and the warehouse
themselves. Nothing here knows what a step does; the assets are the same on either executor.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping

import dagster as dg
import dask.distributed
from dagster._core.errors import raise_execution_interrupts
from dagster._core.execution.context.system import PlanOrchestrationContext
from dagster._core.execution.plan.plan import ExecutionPlan
from dagster._utils import iterate_with_context
from dagster_dask.executor import DaskExecutor, get_dask_resource_requirements, query_on_dask_worker

from schemas.settings import SettingsError

DASK_SCHEDULER_ENV = "THROUGHLINE_DASK_SCHEDULER"
DASK_ADDRESS_SCHEMES = ("tcp://", "tls://")


def dask_task_key(job_name: str, step_key: str, run_id: str) -> str:
    """The Dask task of one step of one run (also what the scheduler's task stream shows)."""
    return f"{job_name}.{step_key}.{run_id}"


class RunScopedDaskExecutor(DaskExecutor):
    """dagster-dask's executor on an existing Dask scheduler, with each task keyed by its run.

    dagster-dask 0.29 keys a step's task `<job>.<step>`. Dask treats a key it already holds as the
    same computation, so while one run of `ingest` is on the cluster, a second one (another
    distributor's backfill run, a sensor's run) gets the first one's result and succeeds without
    loading anything (dagster-io/dagster#21418, closed unfixed). This is the library's `execute`
    for an existing cluster with the run id in the key; everything else is dagster-dask's.
    """

    def __init__(self, scheduler_address: str) -> None:
        super().__init__("existing", {"address": scheduler_address})

    def execute(
        self, plan_context: PlanOrchestrationContext, execution_plan: ExecutionPlan
    ) -> Iterator[dg.DagsterEvent]:
        if not plan_context.instance.is_persistent:
            raise dg.DagsterInvariantViolationError("Dask execution requires a persistent Dagster instance")
        run = plan_context.dagster_run
        with dask.distributed.Client(self.cluster_configuration["address"]) as client:
            futures: dict[str, dask.distributed.Future] = {}
            for level in execution_plan.get_steps_to_execute_by_level():
                for step in level:
                    # Passing the upstream futures makes Dask run a step after the steps it reads.
                    upstream = [
                        futures[key] for step_input in step.step_inputs for key in step_input.dependency_keys
                    ]
                    futures[step.key] = client.submit(
                        query_on_dask_worker,
                        upstream,
                        plan_context.reconstructable_job,
                        run,
                        plan_context.run_config,
                        [step.key],
                        plan_context.instance.get_ref(),
                        execution_plan.known_state,
                        key=dask_task_key(plan_context.job_name, step.key, run.run_id),
                        resources=get_dask_resource_requirements(step.tags),
                    )
            finished = dask.distributed.as_completed(list(futures.values()), with_results=True)
            for _future, events in iterate_with_context(raise_execution_interrupts, finished):
                yield from events


@dg.executor(
    name="dask",
    config_schema={"scheduler_address": dg.Field(dg.StringSource, description="tcp://host:port")},
    requirements=dg.multiple_process_executor_requirements(),
)
def dask_cluster_executor(init_context: dg.InitExecutorContext) -> RunScopedDaskExecutor:
    """Steps on the workers of an existing Dask cluster (see RunScopedDaskExecutor)."""
    return RunScopedDaskExecutor(init_context.executor_config["scheduler_address"])


def ingest_executor(environ: Mapping[str, str] | None = None) -> dg.ExecutorDefinition | None:
    """The executor of the ingest job: the Dask cluster THROUGHLINE_DASK_SCHEDULER names, else None
    (Dagster's default)."""
    address = (os.environ if environ is None else environ).get(DASK_SCHEDULER_ENV, "").strip()
    if not address:
        return None
    if not address.startswith(DASK_ADDRESS_SCHEMES) or ":" not in address.split("://", 1)[1]:
        raise SettingsError(
            f"{DASK_SCHEDULER_ENV} must be a Dask scheduler address such as tcp://dask-scheduler:8786 "
            f"(got {address!r}); unset it to run steps on the run worker"
        )
    return dask_cluster_executor.configured({"scheduler_address": address}, name="dask")
