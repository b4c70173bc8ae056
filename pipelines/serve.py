"""Serve Throughline's Dagster deployment the way production runs it: a code server, the daemon and
the webserver, three processes sharing one instance under the Throughline home.

`python -m pipelines.serve [--host 127.0.0.1] [--port 3000] [--instance sqlite|postgres]` (what
`make dev` runs) needs only the installed package: the instance's `dagster.yaml` ships inside it
(SQLite files, or `dagster.postgres.yaml`: PostgreSQL, see docs/deploy.md) and is copied to
`$THROUGHLINE_HOME/dagster/` when the instance is new, and the code location is the module
`pipelines.definitions`. The code server is the one process that imports the project: the daemon
(sensors, schedules, the run queue, backfills, run retries) and the webserver both talk to it, so
*Reload* in the UI reloads it for both. Stopping this process (Ctrl-C, SIGTERM) stops all three;
if one of them dies, the others are stopped too and the exit status says which.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from importlib.resources import files
from pathlib import Path

import yaml

from schemas.settings import ThroughlineSettings

LOCATION_NAME = "throughline"
DEFINITIONS_MODULE = "pipelines.definitions"
INSTANCE_TEMPLATE = "dagster.yaml"
INSTANCE_TEMPLATES = {"sqlite": INSTANCE_TEMPLATE, "postgres": "dagster.postgres.yaml"}
"""The shipped instance configurations: SQLite files under DAGSTER_HOME, or PostgreSQL storage."""
STOP_TIMEOUT_SECONDS = 30


def ensure_instance(dagster_home: Path, storage: str = "sqlite") -> Path:
    """`dagster_home/dagster.yaml`: the shipped configuration of `storage` (a key of
    INSTANCE_TEMPLATES) unless one is there already."""
    dagster_home.mkdir(parents=True, exist_ok=True)
    config = dagster_home / INSTANCE_TEMPLATE
    if not config.exists():
        config.write_text(
            (files("pipelines") / INSTANCE_TEMPLATES[storage]).read_text(encoding="utf-8"), encoding="utf-8"
        )
    elif storage != "sqlite" and storage not in (
        (yaml.safe_load(config.read_text(encoding="utf-8")) or {}).get("storage") or {}
    ):
        raise SystemExit(
            f"{config} exists and keeps the instance elsewhere than {storage}: move it away to get the "
            f"shipped {INSTANCE_TEMPLATES[storage]}, or add its `storage: {storage}` section"
        )
    return config


def _bin(name: str) -> str:
    """A console script of this Python environment (beside the interpreter), else from PATH."""
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.exists() else (shutil.which(name) or name)


def _workspace(folder: Path, socket: Path) -> Path:
    workspace = folder / "workspace.yaml"
    workspace.write_text(
        yaml.safe_dump(
            {"load_from": [{"grpc_server": {"socket": str(socket), "location_name": LOCATION_NAME}}]}
        ),
        encoding="utf-8",
    )
    return workspace


def _wait_for_socket(socket: Path, server: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not socket.exists():
        if server.poll() is not None:
            raise SystemExit(f"the code server exited with status {server.returncode} before it was ready")
        if time.monotonic() > deadline:
            raise SystemExit(f"the code server did not open {socket} within {timeout:.0f} s")
        time.sleep(0.2)


def _stop(processes: dict[str, subprocess.Popen]) -> None:
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    for process in processes.values():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def serve(host: str, port: int, settings: ThroughlineSettings, storage: str = "sqlite") -> int:
    """Run code server, daemon and webserver until stopped; the exit status of the first to stop."""
    settings.ensure_layout()
    dagster_home = settings.dagster_home
    ensure_instance(dagster_home, storage)
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "THROUGHLINE_HOME": str(settings.home)}
    processes: dict[str, subprocess.Popen] = {}
    stopping = False

    def on_signal(signum, _frame) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    # A short folder of its own: a Unix socket's path is limited to about 100 bytes.
    with tempfile.TemporaryDirectory(prefix="throughline-dagster-") as scratch:
        socket = Path(scratch) / "code.sock"
        workspace = ["--workspace", str(_workspace(Path(scratch), socket))]
        try:
            processes["code server"] = subprocess.Popen(
                [
                    _bin("dagster"),
                    *("code-server", "start", "--socket", str(socket)),
                    *("--module-name", DEFINITIONS_MODULE, "--attribute", "defs"),
                    *("--location-name", LOCATION_NAME),
                ],
                env=env,
            )
            _wait_for_socket(socket, processes["code server"], timeout=300)
            processes["daemon"] = subprocess.Popen([_bin("dagster-daemon"), "run", *workspace], env=env)
            processes["webserver"] = subprocess.Popen(
                [_bin("dagster-webserver"), "--host", host, "--port", str(port), *workspace], env=env
            )
            print(
                f"Dagster UI on http://{host}:{port} (instance {dagster_home})", file=sys.stderr, flush=True
            )
            while not stopping:
                ended = {name: p.returncode for name, p in processes.items() if p.poll() is not None}
                if ended:
                    name, status = next(iter(ended.items()))
                    print(f"{name} stopped with status {status}; stopping the others", file=sys.stderr)
                    return status or 1
                time.sleep(0.5)
            return 0
        finally:
            _stop(processes)
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.serve",
        description="Run Throughline's Dagster code server, daemon and webserver (instance in $THROUGHLINE_HOME/dagster).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address the UI listens on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=3000, help="port of the UI (default 3000)")
    parser.add_argument(
        "--instance",
        choices=sorted(INSTANCE_TEMPLATES),
        default="sqlite",
        help="the storage of a new instance: SQLite files (default) or PostgreSQL (DAGSTER_PG_* variables)",
    )
    args = parser.parse_args(argv)
    return serve(args.host, args.port, ThroughlineSettings.from_env(), args.instance)


if __name__ == "__main__":
    sys.exit(main())
