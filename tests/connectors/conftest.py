"""Real servers for the connector tests, on 127.0.0.1 and free ports: no mocks.

- `sftp`: parametrized over the in-process asyncssh server (`sampledata.sftp_server`) and OpenSSH
  `sshd` (one per session, with host key, authorized key and config generated in a temporary
  folder). Without /usr/sbin/sshd the OpenSSH cases are skipped locally and FAIL under CI=true.
- `proxy_to(port)`: a `TcpProxy` in front of a server (cuts, stalls, counts connections).
- `api_server(**switches)`: the distributor API simulator (`sampledata.api_simulator`), token required.
"""

from __future__ import annotations

import getpass
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from sampledata.api_simulator import RunningSimulator, SimulatorSettings, start_api_simulator
from sampledata.sftp_server import start_sftp_server
from tests.connectors.servers import (
    API_TOKEN,
    KEY_ENV,
    PASSWORD_ENV,
    SFTP_PASSWORD,
    SSHD,
    SftpUnderTest,
    TcpProxy,
    client_key,
    free_port,
    wait_for_port,
)


@pytest.fixture
def proxy_to() -> Iterator[Any]:
    """`proxy_to(port)` -> a TcpProxy in front of a server; all are stopped after the test."""
    started: list[TcpProxy] = []

    def start(port: int) -> TcpProxy:
        proxy = TcpProxy(port)
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()


@pytest.fixture(scope="session")
def openssh_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """OpenSSH sshd on a free port, configured in a temporary folder, for the whole session."""
    if not SSHD.exists():
        pytest.fail(
            "OpenSSH sshd is not installed: run `make test-deps` (or `apt-get install -y openssh-server`); "
            "`make test` and .ci/run install it when missing"
        )
    folder = tmp_path_factory.mktemp("sshd")
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / "host_key")],
        check=True,
        capture_output=True,
    )
    key_path, pem, public = client_key(folder)
    (folder / "authorized_keys").write_text(public + "\n")
    port = free_port()
    config = folder / "sshd_config"
    config.write_text(
        "\n".join(
            [
                "ListenAddress 127.0.0.1",
                f"Port {port}",
                f"HostKey {folder / 'host_key'}",
                f"PidFile {folder / 'sshd.pid'}",
                f"AuthorizedKeysFile {folder / 'authorized_keys'}",
                "StrictModes no",
                "UsePAM no",
                "PermitRootLogin prohibit-password",
                "PasswordAuthentication yes",
                "KbdInteractiveAuthentication no",
                "Subsystem sftp internal-sftp",
                "UseDNS no",
                "PrintMotd no",
                "MaxStartups 50",
                "LogLevel VERBOSE",
                "",
            ]
        )
    )
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation folder
    log_path = folder / "sshd.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(SSHD), "-D", "-e", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT
        )
    try:
        wait_for_port(port)
    except OSError:
        process.kill()
        process.wait()
        pytest.fail(f"sshd did not start: {log_path.read_text(errors='replace')}")
    host_public = (folder / "host_key.pub").read_text().split()
    try:
        yield {
            "port": port,
            "known_hosts_line": f"[127.0.0.1]:{port} {host_public[0]} {host_public[1]}",
            "key_path": key_path,
            "key_pem": pem,
            "log": log_path,
        }
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _asyncssh_server(tmp_path: Path, server_class: type[asyncssh.SFTPServer] | None = None) -> SftpUnderTest:
    root = tmp_path / "sftp-root"
    (root / "outbox").mkdir(parents=True)
    key_path, pem, public = client_key(tmp_path)
    options: dict[str, Any] = {"sftp_server_class": server_class} if server_class else {}
    server = start_sftp_server(root, "acme", password=SFTP_PASSWORD, authorized_keys=[public], **options)
    return SftpUnderTest(
        kind="asyncssh",
        port=server.port,
        known_hosts_line=server.known_hosts_line,
        outbox=root / "outbox",
        remote_dir="/outbox",
        username="acme",
        credentials={"password_env": PASSWORD_ENV},
        environ={PASSWORD_ENV: SFTP_PASSWORD, KEY_ENV: pem},
        server=server,
        extra={"key_pem": pem, "key_path": key_path},
    )


@pytest.fixture(params=["asyncssh", "openssh"])
def sftp(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SftpUnderTest]:
    """An SFTP server with an empty outbox: the in-process asyncssh server, then OpenSSH sshd."""
    if request.param == "asyncssh":
        under_test = _asyncssh_server(tmp_path)
        try:
            yield under_test
        finally:
            assert under_test.server is not None
            under_test.server.stop()
        return
    sshd = request.getfixturevalue("openssh_server")
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    yield SftpUnderTest(
        kind="openssh",
        port=sshd["port"],
        known_hosts_line=sshd["known_hosts_line"],
        outbox=outbox,
        remote_dir=str(outbox),
        username=getpass.getuser(),
        credentials={"private_key_env": KEY_ENV},
        environ={KEY_ENV: str(sshd["key_path"]), PASSWORD_ENV: SFTP_PASSWORD},
        extra={"key_pem": sshd["key_pem"], "log": sshd["log"]},
    )


@pytest.fixture
def asyncssh_server_with(tmp_path: Path) -> Iterator[Any]:
    """`asyncssh_server_with(SFTPServerSubclass)` -> an asyncssh server serving odd behaviour."""
    started: list[SftpUnderTest] = []

    def start(server_class: type[asyncssh.SFTPServer]) -> SftpUnderTest:
        under_test = _asyncssh_server(tmp_path, server_class)
        started.append(under_test)
        return under_test

    yield start
    for under_test in started:
        assert under_test.server is not None
        under_test.server.stop()


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    folder = tmp_path / "landing-work"
    folder.mkdir()
    return folder


@pytest.fixture
def api_server() -> Iterator[Any]:
    """`api_server(**switches)` -> a running simulator requiring API_TOKEN; stopped after the test."""
    started: list[RunningSimulator] = []

    def start(records: list[dict[str, Any]] | None = None, **switches: Any) -> RunningSimulator:
        simulator = start_api_simulator(SimulatorSettings(token=API_TOKEN, **switches), records)
        started.append(simulator)
        return simulator

    yield start
    for simulator in started:
        simulator.stop()
