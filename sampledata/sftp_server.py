"""A small in-process SFTP server on 127.0.0.1 (asyncssh), for the demo and the tests.

It plays a distributor's server: one account (password and/or authorized public key), rooted in
a local folder, with a host key generated at start so clients must pin it. Only serving belongs
here; nothing of the project is imported (sampledata stands alone).
"""

from __future__ import annotations

import asyncio
import hmac
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh

LOOPBACK = "127.0.0.1"


@dataclass
class SftpServerStats:
    """What the server saw: TCP connections accepted and authentications refused."""

    connections: int = 0
    failed_auths: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count_connection(self) -> None:
        with self.lock:
            self.connections += 1

    def count_failed_auth(self) -> None:
        with self.lock:
            self.failed_auths += 1


class _Account(asyncssh.SSHServer):
    """One account: a password and/or authorized public keys."""

    def __init__(
        self,
        username: str,
        password: str | None,
        authorized_keys: list[asyncssh.SSHKey],
        stats: SftpServerStats,
        open_connections: set[asyncssh.SSHServerConnection],
    ) -> None:
        self._open = open_connections
        self._conn: asyncssh.SSHServerConnection | None = None
        self._username = username
        self._password = password
        self._keys = {key.public_data for key in authorized_keys}
        self._stats = stats

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._stats.count_connection()
        self._conn = conn
        self._open.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        self._open.discard(self._conn)  # type: ignore[arg-type]

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return self._password is not None

    def validate_password(self, username: str, password: str) -> bool:
        ok = (
            self._password is not None
            and username == self._username
            and hmac.compare_digest(password.encode(), self._password.encode())
        )
        if not ok:
            self._stats.count_failed_auth()
        return ok

    def public_key_auth_supported(self) -> bool:
        return bool(self._keys)

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return username == self._username and key.public_data in self._keys


@dataclass
class RunningSftpServer:
    """A started server: where it listens, the host key clients must pin, and how to stop it."""

    port: int
    known_hosts_line: str
    fingerprint: str
    root: Path
    stats: SftpServerStats
    _loop: asyncio.AbstractEventLoop = field(repr=False)
    _thread: threading.Thread = field(repr=False)
    _acceptor: Any = field(repr=False)
    _open: set[Any] = field(repr=False, default_factory=set)

    @property
    def host(self) -> str:
        return LOOPBACK

    @property
    def public_key_line(self) -> str:
        """The host key as 'ssh-ed25519 AAAA...' (known_hosts without the host part)."""
        return self.known_hosts_line.split(" ", 1)[1]

    def stop(self) -> None:
        """Close the listener and every connection, then end the server's thread."""
        if not self._loop.is_running():
            return

        async def close() -> None:
            self._acceptor.close()
            await self._acceptor.wait_closed()
            # The listener's close leaves accepted connections open: close them too.
            for conn in list(self._open):
                conn.close()
                await conn.wait_closed()

        try:
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(timeout=10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()

    def __enter__(self) -> RunningSftpServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_sftp_server(
    root: Path,
    username: str,
    *,
    password: str | None = None,
    authorized_keys: list[str] | None = None,
    port: int = 0,
    sftp_server_class: type[asyncssh.SFTPServer] = asyncssh.SFTPServer,
) -> RunningSftpServer:
    """Serve `root` over SFTP on 127.0.0.1 (port 0: any free port) in a background thread.

    `authorized_keys` are public key lines ('ssh-ed25519 AAAA...'). The host key is generated
    anew (ed25519); pin `known_hosts_line` or `fingerprint` in the client. `sftp_server_class`
    lets a test serve odd behaviour (it is constructed with the channel and `chroot=`).
    """
    if password is None and not authorized_keys:
        raise ValueError("give a password or an authorized key, or nobody can log in")
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    keys = [asyncssh.import_public_key(line) for line in authorized_keys or []]
    stats = SftpServerStats()
    open_connections: set[asyncssh.SSHServerConnection] = set()

    def factory(chan: asyncssh.SSHServerChannel) -> asyncssh.SFTPServer:
        return sftp_server_class(chan, chroot=str(root).encode())

    loop = asyncio.new_event_loop()
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set)
        loop.run_forever()

    thread = threading.Thread(target=run, name=f"sftp-server-{root.name}", daemon=True)
    thread.start()
    ready.wait(timeout=10)

    def server_factory() -> asyncssh.SSHServer:
        return _Account(username, password, keys, stats, open_connections)

    async def listen() -> Any:
        return await asyncssh.listen(
            LOOPBACK,
            port,
            server_host_keys=[host_key],
            server_factory=server_factory,
            sftp_factory=factory,
            allow_scp=False,
            agent_forwarding=False,
            x11_forwarding=False,
            keepalive_interval=0,
        )

    try:
        acceptor = asyncio.run_coroutine_threadsafe(listen(), loop).result(timeout=10)
    except BaseException:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
        raise
    public = host_key.export_public_key("openssh").decode().split()
    bound = acceptor.get_port()
    host_part = LOOPBACK if bound == 22 else f"[{LOOPBACK}]:{bound}"
    return RunningSftpServer(
        port=bound,
        known_hosts_line=f"{host_part} {public[0]} {public[1]}",
        fingerprint=host_key.get_fingerprint("sha256"),
        root=root,
        stats=stats,
        _loop=loop,
        _thread=thread,
        _acceptor=acceptor,
        _open=open_connections,
    )


def stop_sftp_server(server: RunningSftpServer) -> None:
    """Stop a server started by `start_sftp_server` (same as `server.stop()`)."""
    server.stop()
