"""The Dagster deployment the system tests run: `python -m pipelines.serve` (what `make dev` runs: the
code server, the daemon and the webserver) on a free port of 127.0.0.1, and the questions the tests
ask its GraphQL API.

`served(root, env)` starts it in its own process group, waits until the webserver answers with the
code location's assets, and stops the whole group (run workers included) whatever happens. Tests
that need a home set one up first (`throughline demo`, or feed specs and reference data) and pass it
as THROUGHLINE_HOME in `env`. Nothing here is a test.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from tests.conftest import query_home

BIN = Path(sys.executable).parent
READY_SECONDS = 240
WAIT_SECONDS = 240
FINISHED_RUN_STATUSES = ("SUCCESS", "FAILURE", "CANCELED")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def deployment_env(home: Path) -> dict[str, str]:
    """This environment with THROUGHLINE_HOME set to `home`, and without the variables a deployment
    resolves for itself (the customer key comes from the home's key file, DAGSTER_HOME from the home)."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("THROUGHLINE_CUSTOMER_KEY_SECRET", "DAGSTER_HOME")
    }
    env["THROUGHLINE_HOME"] = str(home)
    return env


@dataclass
class Deployment:
    home: Path
    port: int
    log: Path
    pid: int
    """The process id of `pipelines.serve`, the leader of the deployment's process group."""
    more_log: Callable[[], str] = lambda: ""
    """More of the deployment's logs (a Dask cluster's, say), shown after the server's on a failure."""

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/graphql",
            data=json.dumps({"query": query, "variables": variables or {}}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.loads(response.read())
        assert "errors" not in answer, answer["errors"]
        return answer["data"]

    def wait_for(self, what: str, probe: Callable[[], object], seconds: float = WAIT_SECONDS):
        """Poll `probe` until it returns something truthy; fail with the server's log otherwise."""
        deadline = time.monotonic() + seconds
        last = None
        while time.monotonic() < deadline:
            last = probe()
            if last:
                return last
            time.sleep(2)
        raise AssertionError(f"{what}: not within {seconds:.0f} s (last: {last})\n{self.log_tail()}")

    def log_tail(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")[-6000:] + self.more_log()

    def query(self, sql: str) -> pl.DataFrame:
        return query_home(self.home, sql)

    def runs(self, tags: dict[str, str] | None = None) -> list[dict]:
        """Every run of the instance (with these tags), newest first: id, status, job and tags."""
        data = self.graphql(
            """query ($tags: [ExecutionTag!]) { runsOrError(filter: {tags: $tags}) {
              ... on Runs { results { runId status pipelineName tags { key value } } } } }""",
            {"tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]},
        )
        return data["runsOrError"]["results"]

    def run_failures(self, run_id: str) -> list[str]:
        """The run's error messages, and any message about a lock."""
        data = self.graphql(
            """query ($id: ID!) { logsForRun(runId: $id) { ... on EventConnection { events {
              __typename ... on MessageEvent { message level } } } } }""",
            {"id": run_id},
        )
        return [
            e["message"]
            for e in data["logsForRun"]["events"]
            if e.get("level") == "ERROR" or "lock" in (e.get("message") or "").lower()
        ]


def stop_group(process: subprocess.Popen) -> None:
    """SIGTERM to the process group `process` leads, SIGKILL to whatever is left of it after 60 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    with contextlib.suppress(ProcessLookupError):  # nothing of the group may outlive the test
        os.killpg(process.pid, signal.SIGKILL)


@contextlib.contextmanager
def served(
    root: Path,
    env: dict[str, str],
    *,
    options: tuple[str, ...] = (),
    more_log: Callable[[], str] = lambda: "",
    ready_seconds: float = READY_SECONDS,
) -> Iterator[Deployment]:
    """`python -m pipelines.serve [options]` for the home `env["THROUGHLINE_HOME"]`, its log in
    `root/serve.log`, ready to answer; stopped (its whole process group) on leaving."""
    port = free_port()
    log = root / "serve.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "pipelines.serve", "--host", "127.0.0.1", "--port", str(port), *options],
            cwd=root,  # not the source tree: the installed package carries what it needs
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        running = Deployment(Path(env["THROUGHLINE_HOME"]), port, log, process.pid, more_log)
        try:

            def ready() -> bool:
                if process.poll() is not None:
                    raise AssertionError(f"serve exited with {process.returncode}:\n{running.log_tail()}")
                try:
                    return bool(running.graphql("{ assetNodes { id } }")["assetNodes"])
                except OSError:
                    return False

            running.wait_for("the webserver answers with the code location's assets", ready, ready_seconds)
            yield running
        finally:
            stop_group(process)
