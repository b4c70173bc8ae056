"""The Dagster instance a home gets: the configuration ships inside the package, is copied into a new
instance and never over a tuned one, and gives the run queue its limits, run retries and monitoring."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import dagster as dg

from pipelines.serve import ensure_instance


def test_the_package_ships_the_instance_configuration_and_copies_it_into_a_new_instance(
    tmp_path: Path,
) -> None:
    shipped = (files("pipelines") / "dagster.yaml").read_text(encoding="utf-8")
    dagster_home = tmp_path / "home" / "dagster"
    config = ensure_instance(dagster_home)
    assert config.read_text(encoding="utf-8") == shipped

    tuned = shipped.replace("max_concurrent_runs: 3", "max_concurrent_runs: 5")
    config.write_text(tuned, encoding="utf-8")
    ensure_instance(dagster_home)
    assert config.read_text(encoding="utf-8") == tuned  # a deployment's own settings are kept


def test_the_instance_queues_runs_per_distributor_and_host_and_retries_dead_runs(tmp_path: Path) -> None:
    dagster_home = tmp_path / "dagster"
    ensure_instance(dagster_home)
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        queue = instance.get_concurrency_config().run_queue_config
        assert queue is not None and queue.max_concurrent_runs == 3
        limits = {limit["key"]: (limit["value"], limit["limit"]) for limit in queue.tag_concurrency_limits}
        per_value = {"applyLimitPerUniqueValue": True}
        assert limits == {
            "throughline/distributor": (per_value, 1),
            "dagster/partition/distributor": (per_value, 1),
            "throughline/host": (per_value, 1),
        }
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 2
        assert not instance.run_retries_retry_on_asset_or_op_failure
        assert instance.run_monitoring_enabled
        assert str(instance.root_directory) == str(dagster_home)


def test_the_repository_root_dagster_yaml_is_the_shipped_one() -> None:
    """The project's top-level `dagster.yaml` (where the layout puts it) is the file the package ships,
    so there is one instance configuration to read and tune."""
    root = Path(__file__).resolve().parents[2] / "dagster.yaml"
    assert root.is_symlink() and root.resolve() == (Path(str(files("pipelines"))) / "dagster.yaml").resolve()
