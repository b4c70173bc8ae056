"""The sample servers themselves: they start on free loopback ports and stop cleanly."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from urllib.request import Request, urlopen

import pytest

from sampledata.api_simulator import SimulatorSettings, sample_records, start_api_simulator
from sampledata.sftp_server import start_sftp_server


def _closed(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def test_the_sftp_server_listens_on_loopback_and_stops(tmp_path: Path) -> None:
    server = start_sftp_server(tmp_path, "acme", password="pw")
    assert server.host == "127.0.0.1" and server.known_hosts_line.startswith(
        f"[127.0.0.1]:{server.port} ssh-ed25519 "
    )
    assert server.fingerprint.startswith("SHA256:")
    server.stop()
    assert _closed(server.port)
    with pytest.raises(ValueError, match="nobody can log in"):
        start_sftp_server(tmp_path, "acme")


def test_the_api_simulator_serves_pages_and_stops() -> None:
    simulator = start_api_simulator(
        SimulatorSettings(pagination="page", default_page_size=40), sample_records(100)
    )
    with urlopen(f"{simulator.base_url}/v1/sellout?page=3") as response:
        body = json.load(response)
    assert len(body["data"]) == 20 and body["meta"]["total_pages"] == 3
    with pytest.raises(Exception, match="404"):
        urlopen(Request(f"{simulator.base_url}/nothing"))
    simulator.stop()
    assert _closed(simulator.port)
    assert simulator.log.statuses() == [200, 404]


def test_sample_records_are_deterministic() -> None:
    assert sample_records(5) == sample_records(5)
    assert len({r["invoice_number"] for r in sample_records(300)}) == 300
