"""The demo's remote distributors: one sample distributor publishes over SFTP, one over an HTTP API.

`demo_sources` takes a home whose inbox holds the generated sample files and its feeds folder
the sample specs, and, while it is open, serves:

- Nordic's weekly files (`nordic_fw`) from an in-process SFTP server on 127.0.0.1, moved there from
  the inbox; its spec gains a `source: sftp` section pinning the server's fresh host key;
- Pacific's latest week (`pacific_jsonl`) as pages of the API simulator, moved there from the inbox
  (the earlier weeks stay file drops: the distributor moved to its API); a second spec,
  `pacific_api`, reads what an API pull lands.

When it closes, the servers stop and both specs lose their `source:` again (files of those feeds
may still be dropped in the inbox), so nothing polls a closed port afterwards.

The secrets (an SFTP password and an API token, new each time) are only in the `environ` it
returns, under the names the specs give: pass it to the pull. Only sample data and local servers
belong here; nothing of the project is imported.
"""

from __future__ import annotations

import json
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from sampledata.api_simulator import SimulatorSettings, start_api_simulator
from sampledata.generator import NORDIC, PACIFIC
from sampledata.sftp_server import start_sftp_server

SFTP_PASSWORD_ENV = "THROUGHLINE_DEMO_SFTP_PASSWORD"
API_TOKEN_ENV = "THROUGHLINE_DEMO_API_TOKEN"
SFTP_USER = "throughline"
API_SPEC_ID = "pacific_api"


@dataclass(frozen=True)
class DemoSources:
    """The running demo servers: the secrets to pull with, and what each serves."""

    environ: dict[str, str]
    sftp_files: list[str]
    api_records: int


def _records_of(path: Path, week: str) -> list[dict]:
    """The JSON-lines file's records of the week starting `week` (YYYYMMDD), each stamped with an
    `updated_at` a minute apart from 06:00 the Monday after, when the week's file arrives."""
    changed = datetime.strptime(week, "%Y%m%d").replace(hour=6, tzinfo=UTC) + timedelta(days=7)
    records = []
    for index, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        if line.strip():
            record = json.loads(line)
            record["updated_at"] = (changed + timedelta(minutes=index)).strftime("%Y-%m-%dT%H:%M:%SZ")
            records.append(record)
    return records


def _with_source(spec_path: Path, source: dict) -> None:
    spec = yaml.safe_load(spec_path.read_text(encoding="utf-8"))
    spec["source"] = source
    spec_path.write_text(
        "# Written by `throughline demo`: this distributor publishes on a local demo SFTP server.\n"
        + yaml.safe_dump(spec, sort_keys=False, allow_unicode=True),
        encoding="utf-8",
    )


def _without_source(spec_path: Path) -> None:
    if not spec_path.is_file():
        return
    spec = yaml.safe_load(spec_path.read_text(encoding="utf-8"))
    if spec.pop("source", None) is not None:
        spec_path.write_text(
            "# Written by `throughline demo` (its demo server stopped; files may be dropped in the inbox).\n"
            + yaml.safe_dump(spec, sort_keys=False, allow_unicode=True),
            encoding="utf-8",
        )


def _api_spec(feeds_dir: Path, base_url: str, week: str) -> None:
    pacific = yaml.safe_load((feeds_dir / f"{PACIFIC}.yaml").read_text(encoding="utf-8"))
    spec = {
        "id": API_SPEC_ID,
        "distributor": PACIFIC,
        "name": pacific["name"],
        "country": pacific["country"],
        "currency": pacific["currency"],
        "cadence": pacific["cadence"],
        "dataset": "sellout",
        "file_patterns": ["pacific_api_*.jsonl"],
        "format": {"type": "jsonl", "encoding": "utf-8", "records_path": "data"},
        "parsing": pacific["parsing"],
        "columns": pacific["columns"],
        "natural_key": pacific["natural_key"],
        # The simulator serves one report week; the landed file's name says which.
        "period": {"source": "filename", "pattern": r"pacific_api_(?P<period>\d{8})_", "format": "%Y%m%d"},
        "source": {
            "type": "api",
            "base_url": base_url,
            "path": "/v1/sellout",
            "token_env": API_TOKEN_ENV,
            "pagination": "cursor",
            "cursor_path": "meta.next_cursor",
            "records_path": "data",
            "watermark_param": "updated_since",
            "watermark_path": "updated_at",
            "page_size": 20,
            "timeout_seconds": 10,
            "landing_name": f"pacific_api_{week}_{{pulled_at}}.jsonl",
        },
    }
    (feeds_dir / f"{API_SPEC_ID}.yaml").write_text(
        "# Written by `throughline demo`: Pacific's API (a local simulator) since its latest week.\n"
        + yaml.safe_dump(spec, sort_keys=False, allow_unicode=True),
        encoding="utf-8",
    )


@contextmanager
def demo_sources(home: Path) -> Iterator[DemoSources]:
    """Serve the SFTP and API distributors of the demo from `home` (see the module docstring)."""
    inbox, feeds = home / "inbox", home / "feeds"
    sftp_root = home / "demo-servers" / "sftp"
    if sftp_root.exists():
        shutil.rmtree(sftp_root)
    outbound = sftp_root / "outbound"
    outbound.mkdir(parents=True)
    nordic_files = sorted((inbox / NORDIC).glob("*")) if (inbox / NORDIC).is_dir() else []
    for path in nordic_files:
        shutil.move(str(path), outbound / path.name)
    pacific_files = (
        sorted((inbox / PACIFIC).glob("pacific_sellout_*.jsonl")) if (inbox / PACIFIC).is_dir() else []
    )
    week = pacific_files[-1].stem.rsplit("_", 1)[-1] if pacific_files else "00000000"
    records = _records_of(pacific_files[-1], week) if pacific_files else []
    if pacific_files:
        pacific_files[-1].unlink()
    password, token = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    server = start_sftp_server(sftp_root, SFTP_USER, password=password)
    simulator = start_api_simulator(SimulatorSettings(token=token), records)
    try:
        _with_source(
            feeds / f"{NORDIC}.yaml",
            {
                "type": "sftp",
                "host": server.host,
                "port": server.port,
                "username": SFTP_USER,
                "password_env": SFTP_PASSWORD_ENV,
                "remote_dir": "/outbound",
                "include": ["NORDIC_SO_*.txt"],
                "host_key": server.known_hosts_line,
                "completeness": "stable",
                "archive_dir": "/outbound/archive",
                "timeout_seconds": 10,
            },
        )
        _api_spec(feeds, simulator.base_url, week)
        yield DemoSources(
            environ={SFTP_PASSWORD_ENV: password, API_TOKEN_ENV: token},
            sftp_files=[path.name for path in nordic_files],
            api_records=len(records),
        )
    finally:
        simulator.stop()
        server.stop()
        # The servers are gone: the specs go back to file drops, so nothing polls a closed port.
        for spec_id in (NORDIC, API_SPEC_ID):
            _without_source(feeds / f"{spec_id}.yaml")
