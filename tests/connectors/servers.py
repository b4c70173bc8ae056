"""Servers and helpers shared by the connector tests (the fixtures live in conftest.py).

- `TcpProxy`: a real TCP forwarder between client and server that counts connections and can cut
  or stall them after N bytes, to make disconnects and timeouts happen mid-transfer.
- `SftpUnderTest`: a running SFTP server as a test sees it, and the spec source pointing at it.
- The secrets of this test session: fresh random values, so any of them in a log is a real leak.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh

from sampledata.api_simulator import RunningSimulator
from sampledata.sftp_server import RunningSftpServer
from schemas.sources import HttpApiSource, SftpSource

SSHD = Path("/usr/sbin/sshd")
PASSWORD_ENV = "TL_TEST_SFTP_PASSWORD"
KEY_ENV = "TL_TEST_SFTP_KEY"
TOKEN_ENV = "TL_TEST_API_TOKEN"

SFTP_PASSWORD = "pw-" + secrets.token_hex(12)
API_TOKEN = "tok-" + secrets.token_hex(16)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class TcpProxy:
    """Forwards 127.0.0.1:`port` to 127.0.0.1:`upstream_port`, over real sockets.

    `cut_after` bytes sent downstream (server -> client), the first `faulty` connections are cut
    (both sockets closed) or, with `stall=True`, stop forwarding without closing.
    """

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.connections = 0
        self.cut_after: int | None = None
        self.faulty = 0
        self.stall = False
        self._stopped = threading.Event()
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self._spawn(self._accept)

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
                number = self.connections
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
            except OSError:
                client.close()
                continue
            for sock in (client, upstream):
                sock.settimeout(0.1)
            with self._lock:
                self._sockets += [client, upstream]
            faulty = number <= self.faulty and self.cut_after is not None
            self._spawn(self._pump, client, upstream, None)
            self._spawn(self._pump, upstream, client, self.cut_after if faulty else None)

    def _pump(self, source: socket.socket, sink: socket.socket, limit: int | None) -> None:
        sent = 0
        try:
            while not self._stopped.is_set():
                try:
                    data = source.recv(65536)
                except TimeoutError:
                    continue
                if not data:
                    break
                if limit is not None and sent + len(data) > limit:
                    sink.sendall(data[: max(0, limit - sent)])
                    if self.stall:
                        self._stopped.wait()
                    break
                sink.sendall(data)
                sent += len(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        self._stopped.set()
        self._listener.close()
        with self._lock:
            threads, sockets = list(self._threads), list(self._sockets)
        for thread in threads:
            thread.join(timeout=5)
        for sock in sockets:
            sock.close()


@dataclass
class SftpUnderTest:
    """A running SFTP server as the tests see it: where files go, and a spec source for it."""

    kind: str
    port: int
    known_hosts_line: str
    outbox: Path
    remote_dir: str
    username: str
    credentials: dict[str, str]
    environ: dict[str, str]
    server: RunningSftpServer | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def source(self, *, port: int | None = None, **overrides: Any) -> SftpSource:
        settings: dict[str, Any] = {
            "type": "sftp",
            "host": "127.0.0.1",
            "port": port or self.port,
            "username": self.username,
            "remote_dir": self.remote_dir,
            "host_key": self.known_hosts_line,
            "timeout_seconds": 5,
            "max_retries": 2,
            **self.credentials,
        }
        settings.update(overrides)
        return SftpSource.model_validate(settings)

    def put(self, name: str, data: bytes, mtime: int | None = None) -> Path:
        """Write a file into the remote folder (as the distributor would), with an exact mtime."""
        path = self.outbox / name
        path.write_bytes(data)
        stamp = int(time.time()) - 600 if mtime is None else mtime
        os.utime(path, (stamp, stamp))
        return path


def client_key(tmp: Path) -> tuple[Path, str, str]:
    key = asyncssh.generate_private_key("ssh-ed25519")
    path = tmp / "client_key"
    pem = key.export_private_key("openssh").decode()
    path.write_text(pem)
    path.chmod(0o600)
    return path, pem, key.export_public_key("openssh").decode().strip()


def api_source(simulator: RunningSimulator, **overrides: Any) -> HttpApiSource:
    """The spec source of the simulator's sell-out endpoint, incremental on `updated_at`."""
    settings: dict[str, Any] = {
        "type": "api",
        "base_url": simulator.base_url,
        "path": "/v1/sellout",
        "token_env": TOKEN_ENV,
        "pagination": simulator.settings.pagination,
        "cursor_path": "meta.next_cursor",
        "records_path": "data",
        "watermark_param": "updated_since",
        "watermark_path": "updated_at",
        "page_size": 100,
        "timeout_seconds": 5,
        "max_retries": 3,
    }
    settings.update(overrides)
    return HttpApiSource.model_validate(settings)


API_ENVIRON = {TOKEN_ENV: API_TOKEN}


def listing(folder: Path) -> list[str]:
    """Every entry of a folder, hidden ones included (a partial download must not be among them)."""
    return sorted(path.name for path in folder.iterdir())
