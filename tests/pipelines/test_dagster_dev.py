"""A real `dagster dev`: the UI serves the asset graph, and a file dropped in the inbox is loaded by the sensor.

This is the acceptance path of a channel-ops user: nothing but `make dev` running, a file copied
into `inbox/<distributor_id>/`, and `loads` shows it a minute or two later while queries answer.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from sampledata.generator import copy_feed_specs, generate_samples
from tests.conftest import REPO_ROOT
from warehouse.catalog import connect
from warehouse.storage import storage_for_home
from warehouse.tables import ensure_tables

PICKUP_TIMEOUT_SECONDS = 240

pytestmark = pytest.mark.system


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture
def dagster_dev(home: Path, tmp_path: Path):
    (home / "dagster").mkdir(parents=True)
    shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster" / "dagster.yaml")
    copy_feed_specs(home / "feeds")
    port = _free_port()
    log = (tmp_path / "dagster-dev.log").open("w")
    process = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("dagster")),
            "dev",
            "-w",
            "workspace.yaml",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        cwd=REPO_ROOT,
        env={**os.environ},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 180
    while True:
        try:  # up once the code location has loaded and answers with its assets
            if _graphql(port, "{ assetNodes { id } }").get("data", {}).get("assetNodes"):
                break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            log.flush()
            raise AssertionError(
                f"dagster dev not ready in 180 s:\n{(tmp_path / 'dagster-dev.log').read_text()[-4000:]}"
            )
        time.sleep(1)
    yield port, process, tmp_path / "dagster-dev.log"
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    log.close()


def test_ui_shows_graph_and_sensor_and_sensor_loads_a_dropped_file(
    dagster_dev, home: Path, tmp_path: Path
) -> None:
    port, _, log_path = dagster_dev
    assets = _graphql(port, "{ assetNodes { assetKey { path } } }")["data"]["assetNodes"]
    assert {"/".join(node["assetKey"]["path"]) for node in assets} >= {
        "landing/received_files",
        "core/sellout",
    }
    sensors = _graphql(
        port,
        '{ sensorsOrError(repositorySelector: {repositoryName: "__repository__", repositoryLocationName: "throughline"})'
        " { ... on Sensors { results { name sensorState { status } } } } }",
    )
    states = {s["name"]: s["sensorState"]["status"] for s in sensors["data"]["sensorsOrError"]["results"]}
    assert states == {"inbox_sensor": "RUNNING"}

    drop = tmp_path / "drop"
    generate_samples(drop)
    source = drop / "northwind_us" / "NW_SALES_20261102.csv"
    inbox = home / "inbox" / "northwind_us"
    inbox.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, inbox / source.name)

    storage = storage_for_home(home / "landing", home / "warehouse")
    ensure_tables(storage)
    deadline = time.monotonic() + PICKUP_TIMEOUT_SECONDS
    statuses: list[tuple] = []
    while time.monotonic() < deadline:
        connection = connect(storage)  # queries keep answering while the run loads
        try:
            statuses = connection.sql("select source_name, status, rows_loaded from loads").fetchall()
            lines = connection.sql("select count(*) from sellout").fetchone()[0]
        finally:
            connection.close()
        if statuses and lines:
            break
        time.sleep(3)
    assert statuses, f"no load recorded within {PICKUP_TIMEOUT_SECONDS}s:\n{log_path.read_text()[-4000:]}"
    assert statuses[0][:2] == (source.name, "loaded")
    assert statuses[0][2] > 0
    assert not (inbox / source.name).exists()  # received: it left the inbox
