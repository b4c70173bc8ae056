"""Crash safety of `throughline pull`, proven against a real SFTP server and a real HTTP API on
127.0.0.1: a pull killed with SIGKILL at every phase boundary (fetched but not landed; loaded but its
state not saved; saved but not settled at the source; settled but its list of files to settle kept;
and inside the load it runs) and at random
moments, then run again, ends where an undisturbed pull ends: every remote file landed and loaded
once, no line twice, the same files archived on the server, and the same content recorded as taken
in the manifest, or the same watermark.

Every trial starts from a copy of the base warehouse (tests/system/conftest.py) with two pulled
sources: Nordic's two latest weekly fixed-width files on the in-process SFTP server (each trial has its own
folder there, archived on settling) and Pacific's latest week behind the API simulator (token auth,
cursor pagination, an `updated_at` watermark).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
import yaml

from sampledata.api_simulator import SimulatorSettings, start_api_simulator
from sampledata.generator import NORDIC, PACIFIC, generate_samples
from sampledata.sftp_server import start_sftp_server
from tests.guarantees import Figures
from tests.system.crash import (
    Command,
    Trials,
    copy_home,
    differing_rows,
    folder_files,
    lost_lines,
    run_to_end,
    storage_of,
    warehouse_state,
)
from warehouse.faults import PULL_CRASH_POINTS
from warehouse.tables import scan_table

pytestmark = [pytest.mark.system, pytest.mark.long]

PASSWORD_ENV, TOKEN_ENV = "TL_CRASH_SFTP_PASSWORD", "TL_CRASH_API_TOKEN"
API_SPEC = "pacific_api"
SOURCES = {"sftp": NORDIC, "api": PACIFIC}
"""Each source kind and the distributor pulled from it (`pull --distributor`)."""
POINTS = [*PULL_CRASH_POINTS, "after_staging", "after_core_commit"]
"""The pull's own phase boundaries, and two of the load it runs (tests/system/test_crash_safety.py
has them all)."""
RANDOM_TRIALS = 25 - len(POINTS)
"""Per source: 25 trials with the named points, 50 in all."""
PULLED_AT = re.compile(r"\d{8}T\d{6}Z")
"""The pull's moment in an API landing name: another one every run."""
NORDIC_WEEKS = 2
"""Nordic's latest weeks on the SFTP server: a pull can stop between its files, and stays short."""
REMOTE_MTIME = int(datetime(2026, 11, 16, 5, 0, tzinfo=UTC).timestamp())


class Servers:
    """The SFTP server and the API simulator of the module, and the secrets to pull with."""

    def __init__(self, root: Path, records: list[dict]) -> None:
        self.root = root
        password, token = secrets.token_urlsafe(18), secrets.token_urlsafe(18)
        self.environ = {PASSWORD_ENV: password, TOKEN_ENV: token}
        self.sftp = start_sftp_server(root, "throughline", password=password)
        self.api = start_api_simulator(SimulatorSettings(token=token), records)

    def stop(self) -> None:
        self.api.stop()
        self.sftp.stop()


def _records(path: Path) -> list[dict]:
    """The JSON-lines file's records, each stamped with an `updated_at` (a minute apart)."""
    changed = datetime(2026, 11, 16, 6, 0, tzinfo=UTC)
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [
        {**json.loads(line), "updated_at": (changed + timedelta(minutes=n)).strftime("%Y-%m-%dT%H:%M:%SZ")}
        for n, line in enumerate(lines)
    ]


def _write_specs(home: Path, servers: Servers, remote_dir: str) -> None:
    """Nordic's spec pulls from `remote_dir` on the SFTP server; `pacific_api` from the simulator."""
    feeds = home / "feeds"
    nordic = yaml.safe_load((feeds / f"{NORDIC}.yaml").read_text(encoding="utf-8"))
    nordic["source"] = {
        "type": "sftp",
        "host": servers.sftp.host,
        "port": servers.sftp.port,
        "username": "throughline",
        "password_env": PASSWORD_ENV,
        "remote_dir": remote_dir,
        "include": ["NORDIC_SO_*.txt"],
        "host_key": servers.sftp.known_hosts_line,
        "completeness": "part_suffix",
        "archive_dir": f"{remote_dir}/archive",
        "timeout_seconds": 10,
    }
    (feeds / f"{NORDIC}.yaml").write_text(yaml.safe_dump(nordic, sort_keys=False), encoding="utf-8")
    pacific = yaml.safe_load((feeds / f"{PACIFIC}.yaml").read_text(encoding="utf-8"))
    api = {
        **{key: pacific[key] for key in ("name", "country", "currency", "cadence", "parsing", "columns")},
        "id": API_SPEC,
        "distributor": PACIFIC,
        "dataset": "sellout",
        "natural_key": pacific["natural_key"],
        "file_patterns": ["pacific_api_*.jsonl"],
        "format": {"type": "jsonl", "encoding": "utf-8", "records_path": "data"},
        "period": {"source": "filename", "pattern": r"pacific_api_(?P<period>\d{8})_", "format": "%Y%m%d"},
        "source": {
            "type": "api",
            "base_url": servers.api.base_url,
            "path": "/v1/sellout",
            "token_env": TOKEN_ENV,
            "pagination": "cursor",
            "cursor_path": "meta.next_cursor",
            "records_path": "data",
            "watermark_param": "updated_since",
            "watermark_path": "updated_at",
            "page_size": 20,
            "timeout_seconds": 10,
            "landing_name": "pacific_api_20261109_{pulled_at}.jsonl",
        },
    }
    (feeds / f"{API_SPEC}.yaml").write_text(yaml.safe_dump(api, sort_keys=False), encoding="utf-8")


@pytest.fixture(scope="module")
def setting(crash_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The servers, Nordic's files, and a prepared home (the sources' specs added, their reference
    data applied) that every trial copies."""
    root = tmp_path_factory.mktemp("pull")
    generate_samples(root / "samples")
    servers = Servers(root / "served", _records(sorted((root / "samples" / PACIFIC).glob("*.jsonl"))[-1]))
    try:
        prepared = copy_home(crash_base, root / "prepared")
        _write_specs(prepared, servers, "/unused")
        commands = {
            kind: Command(("pull", "--distributor", distributor, "--format", "csv"), servers.environ)
            for kind, distributor in SOURCES.items()
        }
        run_to_end(prepared, Command(("reference", "refresh"), servers.environ))
        yield {
            "root": root,
            "servers": servers,
            "nordic": sorted((root / "samples" / NORDIC).iterdir())[-NORDIC_WEEKS:],
            "prepared": prepared,
            "commands": commands,
        }
    finally:
        servers.stop()


def _trial_home(setting: dict, kind: str, name: str) -> Path:
    """A copy of the prepared home whose SFTP source is the trial's own folder, holding Nordic's files."""
    folder = setting["root"] / "homes" / kind / name
    remote = setting["servers"].root / kind / name / "outbound"
    remote.mkdir(parents=True)
    for path in setting["nordic"]:
        shutil.copyfile(path, remote / path.name)
        os.utime(remote / path.name, (REMOTE_MTIME, REMOTE_MTIME))
    home = copy_home(setting["prepared"], folder)
    _write_specs(home, setting["servers"], f"/{kind}/{name}/outbound")
    return home


def _pulled(home: Path, remote: Path) -> dict[str, object]:
    """The pull's result: the warehouse (invariants asserted), each finished load and landed file, the
    landing folder, the sources' saved state and the remote folder."""
    storage = storage_of(home)
    state = warehouse_state(home)
    state["files"] = [(PULLED_AT.sub("*", row[0]), *row[1:]) for row in state["files"]]  # type: ignore[attr-defined]
    landed = scan_table(storage, "landed_files").collect()
    assert landed["sha256"].n_unique() == landed.height, "a remote file landed twice"
    loads = scan_table(storage, "loads").filter(pl.col("status") != "duplicate").collect()
    assert loads["load_id"].n_unique() == loads.height, "a file loaded twice"
    channels = {path.name: _kept(path) for path in sorted((home / "channels").glob("*.json"))}
    return {
        "warehouse": state,
        "loads": sorted(
            PULLED_AT.sub("*", repr(row))
            for row in loads.select("load_id", "source_name", "status", "rows_read", "rows_loaded").rows()
        ),
        "landed": sorted(
            PULLED_AT.sub("*", repr(row))
            for row in landed.select("distributor_id", "sha256", "source_name", "source_mtime").rows()
        ),
        "landing": folder_files(home / "landing"),
        "channels": channels,
        "remote": folder_files(remote),
    }


def _kept(state_file: Path) -> object:
    """What a source's saved state keeps of what was taken: the SFTP manifest's content hashes (its
    look at the folder is only the last listing: after the files are archived, the next pull sees
    none), the API's watermark; any other file (files left to settle) as it is."""
    saved = json.loads(state_file.read_text(encoding="utf-8"))
    if "hashes" in saved:
        return sorted(saved["hashes"])
    return saved.get("watermark", saved)


@pytest.fixture(scope="module")
def undisturbed(setting: dict) -> dict[str, tuple[dict, float]]:
    """Per source kind: the undisturbed pull's result and duration."""
    runs = {}
    for kind in SOURCES:
        home = _trial_home(setting, kind, "undisturbed")
        duration = run_to_end(home, setting["commands"][kind])
        expected = _pulled(home, setting["servers"].root / kind / "undisturbed")
        pulled = [row for row in expected["loads"] if f"'{SOURCES[kind]}-" in row]
        assert len(pulled) == (NORDIC_WEEKS if kind == "sftp" else 1), pulled
        runs[kind] = (expected, duration)
    assert all(name.startswith("outbound/archive/") for name in runs["sftp"][0]["remote"])
    assert len(runs["sftp"][0]["channels"][f"{NORDIC}.json"]) == NORDIC_WEEKS
    assert runs["api"][0]["channels"][f"{API_SPEC}.json"]
    return runs


def _trials(setting: dict, undisturbed: dict, kind: str, figures: Figures) -> Trials:
    expected, _ = undisturbed[kind]

    def check(home: Path) -> tuple[int, int]:
        state = _pulled(home, setting["servers"].root / kind / home.name)
        checked, lost = lost_lines(state["warehouse"], expected["warehouse"])
        for name in ("loads", "landed"):
            checked += len(expected[name])
            lost += differing_rows(state[name], expected[name])
        assert state == expected
        return checked, lost

    return Trials(lambda name: _trial_home(setting, kind, name), setting["commands"][kind], check, figures)


@pytest.mark.parametrize("point", POINTS)
@pytest.mark.parametrize("kind", SOURCES)
def test_a_pull_killed_at_each_phase_is_completed_by_the_next_pull(
    setting: dict, undisturbed, kind: str, point: str, figures: Figures
) -> None:
    _trials(setting, undisturbed, kind, figures).at_point(point)


@pytest.mark.parametrize("kind", SOURCES)
def test_a_pull_killed_at_random_moments_lands_every_file_once(
    setting: dict, undisturbed, kind: str, figures: Figures
) -> None:
    killed = _trials(setting, undisturbed, kind, figures).at_random(
        RANDOM_TRIALS, undisturbed[kind][1], seed=20261128
    )
    assert killed >= RANDOM_TRIALS * 0.8, f"only {killed} of {RANDOM_TRIALS} pulls were interrupted"
