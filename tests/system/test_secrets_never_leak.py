"""Secrets never written: the SFTP password, the API token and the end-customer key secret, given
distinctive values, appear in no file under the home and in nothing printed, logged or recorded.

What runs, for real: `throughline pull` (the demo's SFTP server and API simulator on 127.0.0.1) in
child processes, twice and once more with a wrong password; then Dagster in-process on a persistent
instance inside the home (DAGSTER_HOME): the reference assets materialized, the inbox sensor's runs
executed as the daemon would launch them, the SFTP pull job (and a failing run of it), the marts job.
Then every byte of every file under the home (logs, ledger, Delta tables and logs, the DuckDB
catalog, Dagster's run and event storage with every run's config), the commands' output, the log
records and Dagster's event records are searched for the secrets.
"""

from __future__ import annotations

import logging
import os
import secrets
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
from dagster._serdes import serialize_value

from pipelines.definitions import MARTS_JOB, build_defs
from pipelines.reference_assets import REFERENCE_ASSETS
from pipelines.resources import ThroughlineResource
from sampledata.demo import SFTP_PASSWORD_ENV, demo_sources
from sampledata.generator import NORDIC, RHEINLAND, copy_feed_specs, generate_samples
from sampledata.reference import copy_reference
from tests.guarantees import Figures
from tests.traces import files_holding

pytestmark = pytest.mark.system

CUSTOMER_KEY_SECRET = "tl-customer-key-" + secrets.token_hex(16)
WRONG_PASSWORD = "wrong-password-" + secrets.token_hex(8)


def _throughline(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args], env=env, capture_output=True, text=True, timeout=600
    )


def _said(instance: dg.DagsterInstance) -> str:
    """Every run Dagster recorded (its config and tags) and every event of it, serialized."""
    records = []
    for run in instance.get_runs():
        records.append(serialize_value(run))
        records += [serialize_value(entry) for entry in instance.all_logs(run.run_id)]
    return "\n".join(records)


def test_no_secret_in_any_file_output_or_dagster_record(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    figures: Figures,
) -> None:
    caplog.set_level(logging.DEBUG)
    home = tmp_path / "home"
    copy_feed_specs(home / "feeds")
    copy_reference(home / "reference")
    generate_samples(home / "inbox")
    for folder in (home / "inbox").iterdir():  # Nordic is pulled over SFTP, Pacific by API; Rheinland dropped
        if folder.name not in (NORDIC, RHEINLAND, "pacific_jsonl"):
            for path in folder.iterdir():
                path.unlink()
    monkeypatch.setenv("THROUGHLINE_HOME", str(home))
    monkeypatch.setenv("THROUGHLINE_CUSTOMER_KEY_SECRET", CUSTOMER_KEY_SECRET)
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster"))
    outputs: list[str] = []
    runs = 0
    with demo_sources(home) as sources:
        hidden = [CUSTOMER_KEY_SECRET, WRONG_PASSWORD, *sources.environ.values()]
        env = {**os.environ, **sources.environ}
        for _ in range(2):  # an SFTP file is taken once it held still across two looks
            pulled = _throughline(["pull", "--verbose", "--format", "json"], env)
            assert pulled.returncode == 0, pulled.stderr[-3000:]
            outputs += [pulled.stdout, pulled.stderr]
        refused = _throughline(["pull", "--distributor", NORDIC], {**env, SFTP_PASSWORD_ENV: WRONG_PASSWORD})
        assert refused.returncode == 1 and SFTP_PASSWORD_ENV in refused.stderr
        outputs += [refused.stdout, refused.stderr]

        for name, value in sources.environ.items():
            monkeypatch.setenv(name, value)
        (home / "dagster").mkdir(exist_ok=True)
        resources = {"throughline": ThroughlineResource(home=str(home))}
        with dg.instance_for_test(temp_dir=str(home / "dagster")) as instance:
            defs = build_defs(home)
            assert dg.materialize(REFERENCE_ASSETS, instance=instance, resources=resources).success
            runs += 1 + _run_inbox_sensor(defs, instance, home)
            pull_job = defs.get_repository_def().get_job(f"pull_{NORDIC}")
            assert pull_job.execute_in_process(instance=instance).success
            with monkeypatch.context() as patched:
                patched.setenv(SFTP_PASSWORD_ENV, WRONG_PASSWORD)
                assert not pull_job.execute_in_process(instance=instance, raise_on_error=False).success
            assert defs.get_repository_def().get_job(MARTS_JOB).execute_in_process(instance=instance).success
            runs += 3
            recorded = _said(instance)
            assert len(instance.get_runs()) == runs
    loads = _throughline(["query", "select distinct channel from loads order by 1", "--format", "csv"], env)
    assert loads.returncode == 0 and loads.stdout.split() == ["channel", "api", "folder", "sftp"]

    captured = capfd.readouterr()
    said = "\n".join([*outputs, captured.out, captured.err, caplog.text, recorded])
    leaked = [secret for secret in hidden if secret in said]
    in_files = files_holding(home, hidden)
    figures.add(trials=runs + 3, faults=2)  # two wrong passwords: a command's, a Dagster run's
    assert leaked == []
    assert in_files == {}
    assert "dagster" in {path.relative_to(home).parts[0] for path in home.rglob("*.db")}, (
        "Dagster's storage is in the home, so it was searched"
    )


def _run_inbox_sensor(defs: dg.Definitions, instance: dg.DagsterInstance, home: Path) -> int:
    """Tick the inbox sensor until the dropped files are ready, and run what it asks, in process."""
    sensor = defs.get_repository_def().get_sensor_def("inbox_sensor")
    cursor, launched = None, set()
    for _ in range(3):
        with dg.build_sensor_context(
            instance=instance, cursor=cursor, resources={"throughline": ThroughlineResource(home=str(home))}
        ) as context:
            result = sensor(context)
        cursor = result.cursor
        for added in result.dynamic_partitions_requests:
            instance.add_dynamic_partitions(added.partitions_def_name, list(added.partition_keys))
        for request in result.run_requests:
            if request.run_key in launched:  # the daemon launches a run key once
                continue
            job = defs.get_repository_def().get_job(request.job_name or sensor.job_name)
            outcome = job.execute_in_process(
                run_config=request.run_config,
                partition_key=request.partition_key,
                tags=request.tags,
                instance=instance,
            )
            assert outcome.success
            launched.add(request.run_key)
    assert launched, "the inbox sensor launched no run"
    return len(launched)
