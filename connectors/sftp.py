"""Pulling files from a distributor's SFTP server (paramiko): pinned host key, complete files only.

What belongs here: connecting (host key checked against the spec's pin, secrets read from the
environment variables the spec names, at connect time), listing the remote folder safely,
deciding which files are complete, downloading through a hidden temporary name with SHA-256 and
size checked, archiving on the server, and retrying what a retry can help. What is new is decided
by `connectors.manifest`; what a file means is decided by `transforms/`.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import posixpath
import socket
import stat
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import TypeVar

import paramiko
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from connectors.channel import ChannelName, FetchedFile, Outcome, Poll, read_secret, sha256_of
from connectors.manifest import Manifest, RemoteFile
from schemas.sources import HostKeyPin, SftpSource, fingerprint_of

log = logging.getLogger(__name__)
T = TypeVar("T")

READY_SUFFIX = ".ready"
PART_SUFFIX = ".part"
_CHUNK = 256 * 1024
_ALGORITHMS_OF_KEY_TYPE = {
    "ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256"),
}


class SftpError(Exception):
    """Something went wrong talking to an SFTP server; the message says what and where."""


class HostKeyError(SftpError):
    """The server's host key is not the one pinned in the spec. Never retried."""


class SftpAuthError(SftpError):
    """The server refused the login. Never retried (a retry storm could lock the account)."""


class SftpConfigError(SftpError):
    """The spec's settings cannot be used (e.g. the private key cannot be read). Never retried."""


class UnsafeRemoteNameError(SftpError):
    """A remote name that could leave the target folder (`/`, `..`), or a symbolic link."""


class SftpTransferError(SftpError):
    """A timeout or disconnect that persisted through every retry."""


class RemoteFileChangedError(SftpError):
    """The remote file changed while it was being taken; it is taken at a later poll."""


class _IncompleteDownloadError(SftpError):
    """Fewer or more bytes arrived than the server announced (a cut transfer): retried."""


def unsafe_name_reason(name: str) -> str | None:
    """Why a name listed in the remote folder may not become a local file name, or None when it may."""
    if not name or name in (".", ".."):
        return "empty or a dot entry"
    if "/" in name or "\\" in name:
        return "it holds a path separator (it could leave the target folder)"
    if "\x00" in name or any(ord(char) < 32 for char in name):
        return "it holds control characters"
    return None


def _transient(error: BaseException) -> bool:
    """True for failures a new connection can help: timeouts, disconnects, cut transfers."""
    if isinstance(error, _IncompleteDownloadError):
        return True
    if isinstance(error, SftpError | paramiko.AuthenticationException):
        return False
    if isinstance(error, TimeoutError | ConnectionError | EOFError | paramiko.SSHException):
        return True
    # paramiko reports a closed channel as a bare OSError ('Socket is closed'); its subclasses
    # (FileNotFoundError, PermissionError, ...) are answers from the server and not transient.
    return type(error) is OSError


_host_slots: dict[str, threading.BoundedSemaphore] = {}
_host_slots_lock = threading.Lock()


def _slot(source: SftpSource) -> threading.BoundedSemaphore:
    """The per-host connection limit of this process (Dagster's pools limit it across runs)."""
    with _host_slots_lock:
        key = f"{source.endpoint}:{source.max_connections_per_host}"
        return _host_slots.setdefault(key, threading.BoundedSemaphore(source.max_connections_per_host))


@dataclass(frozen=True)
class Refused:
    """A remote entry that was not taken, and why."""

    name: str
    reason: str

    def __str__(self) -> str:
        return f"{self.name!r}: {self.reason}"


@dataclass
class Listing:
    """One look at the remote folder: eligible files, ready markers present, entries refused."""

    files: list[RemoteFile] = field(default_factory=list)
    markers: set[str] = field(default_factory=set)
    refused: list[Refused] = field(default_factory=list)


@dataclass(frozen=True)
class Downloaded:
    """A file now complete on local disk under its final name."""

    path: Path
    size: int
    sha256: str


def _load_private_key(value: str, passphrase: str | None, env_name: str) -> paramiko.PKey:
    """A private key from PEM/OpenSSH text or from a file path (never echoed in an error)."""
    if value.lstrip().startswith("-----BEGIN"):
        for key_class in (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey):
            try:
                return key_class.from_private_key(io.StringIO(value.strip() + "\n"), password=passphrase)
            except paramiko.PasswordRequiredException:
                raise SftpConfigError(
                    f"the private key in {env_name} is encrypted: name its passphrase in private_key_passphrase_env"
                ) from None
            except (paramiko.SSHException, ValueError, TypeError):
                continue
        raise SftpConfigError(
            f"the text in {env_name} is not a readable ed25519, ecdsa or rsa private key"
        ) from None
    path = Path(value).expanduser()
    if not path.is_file():
        raise SftpConfigError(
            f"{env_name} should hold a private key (its text or a key file's path): no such file"
        )
    try:
        # Positional: paramiko 5 renamed the argument (passphrase -> password).
        return paramiko.PKey.from_path(path, passphrase.encode() if passphrase else None)
    except (paramiko.PasswordRequiredException, TypeError):
        # cryptography says TypeError when an encrypted key comes without its passphrase.
        raise SftpConfigError(
            f"the key file named by {env_name} is encrypted: name its passphrase in private_key_passphrase_env"
        ) from None
    except (paramiko.SSHException, ValueError, OSError) as error:
        raise SftpConfigError(
            f"the key file named by {env_name} cannot be read as a private key ({type(error).__name__})"
        ) from None


def check_host_key(source: SftpSource, key: paramiko.PKey) -> None:
    """HostKeyError unless `key` is the key pinned in the spec (by blob, or by SHA256 fingerprint)."""
    pin: HostKeyPin = source.host_key_pin
    offered = fingerprint_of(key.asbytes())
    if pin.blob is not None and key.asbytes() == pin.blob:
        return
    if pin.blob is None and offered == pin.fingerprint:
        return
    expected = f"{pin.key_type} {pin.fingerprint}" if pin.key_type else pin.fingerprint
    hint = (
        ""
        if pin.key_type
        else " (if the distributor's fingerprint is of another key type, pin its full known_hosts line)"
    )
    raise HostKeyError(
        f"host key of sftp server {source.endpoint} is not the one pinned in the feed spec: the server "
        f"offered {key.get_name()} {offered}, the spec expects {expected}{hint}. Refusing to connect; the key "
        "may have changed or this may not be the distributor's server. Confirm the new key with the "
        "distributor before updating source.host_key."
    )


class SftpConnector:
    """A connection to one distributor's SFTP server, opened on first use and reopened after a disconnect.

    Every operation retries timeouts and disconnects up to `source.max_retries` times with
    exponential backoff; host-key, authentication and configuration errors are raised at once.
    `connection_attempts` counts TCP connections opened (tests hold it against retry storms).
    """

    def __init__(
        self,
        source: SftpSource,
        *,
        environ: Mapping[str, str] | None = None,
        backoff_seconds: float = 1.0,
        max_backoff_seconds: float = 30.0,
    ) -> None:
        self.source = source
        self._environ = environ
        self._backoff = backoff_seconds
        self._max_backoff = max_backoff_seconds
        self._transport: paramiko.Transport | None = None
        self._sftp: paramiko.SFTPClient | None = None
        self._slot_held = False
        self.connection_attempts = 0

    def __repr__(self) -> str:
        return f"SftpConnector({self.source.username}@{self.source.endpoint}:{self.source.remote_dir})"

    def __enter__(self) -> SftpConnector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- connection -----------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection (if any) and give its per-host slot back."""
        sftp, transport = self._sftp, self._transport
        self._sftp = self._transport = None
        for closeable in (sftp, transport):
            if closeable is not None:
                try:
                    closeable.close()
                except Exception:  # closing a dead connection must not mask the real error
                    log.debug("closing the sftp connection to %s failed", self.source.endpoint, exc_info=True)
        if self._slot_held:
            self._slot_held = False
            _slot(self.source).release()

    def _client(self) -> paramiko.SFTPClient:
        if self._sftp is None:
            self._connect()
        assert self._sftp is not None
        return self._sftp

    def _connect(self) -> None:
        source = self.source
        if not _slot(source).acquire(timeout=max(60.0, 4 * source.timeout_seconds)):
            raise SftpTransferError(
                f"no free connection to {source.endpoint}: {source.max_connections_per_host} already open in this process"
            )
        self._slot_held = True
        self.connection_attempts += 1
        log.debug("connecting to sftp %s as %s", source.endpoint, source.username)
        try:
            sock = socket.create_connection((source.host, source.port), timeout=source.timeout_seconds)
            transport = paramiko.Transport(sock)
            self._transport = transport
            transport.banner_timeout = source.timeout_seconds
            transport.handshake_timeout = source.timeout_seconds
            transport.auth_timeout = source.timeout_seconds
            pin = source.host_key_pin
            if pin.key_type:
                # Ask only for the pinned key type, as OpenSSH does for a known host.
                transport.get_security_options().key_types = _ALGORITHMS_OF_KEY_TYPE.get(
                    pin.key_type, (pin.key_type,)
                )
            try:
                transport.start_client(timeout=source.timeout_seconds)
            except paramiko.SSHException as error:
                if "host key" in str(error).lower():
                    raise HostKeyError(
                        f"sftp server {source.endpoint} offers no {pin.key_type} host key, the type pinned in "
                        "the feed spec: refusing to connect. Confirm the server's key with the distributor."
                    ) from None
                raise
            check_host_key(source, transport.get_remote_server_key())
            self._authenticate(transport)
            sftp = paramiko.SFTPClient.from_transport(transport)
            if sftp is None:
                raise SftpTransferError(f"sftp server {source.endpoint} opened no sftp session")
            sftp.get_channel().settimeout(source.timeout_seconds)
            self._sftp = sftp
        except BaseException:
            self.close()
            raise

    def _authenticate(self, transport: paramiko.Transport) -> None:
        source = self.source
        who = f"sftp user {source.username!r} at {source.endpoint}"
        tried: list[str] = []
        if source.private_key_env:
            key_value = read_secret(source.private_key_env, f"private key of {who}", self._environ)
            passphrase = (
                read_secret(source.private_key_passphrase_env, f"key passphrase of {who}", self._environ)
                if source.private_key_passphrase_env
                else None
            )
            key = _load_private_key(key_value, passphrase, source.private_key_env)
            del key_value, passphrase
            try:
                transport.auth_publickey(source.username, key)
            except paramiko.AuthenticationException:
                tried.append(f"the key from {source.private_key_env}")
            if transport.is_authenticated():
                return
        if source.password_env:
            password = read_secret(source.password_env, f"password of {who}", self._environ)
            try:
                transport.auth_password(source.username, password)
            except paramiko.AuthenticationException:
                tried.append(f"the password from {source.password_env}")
            finally:
                del password
            if transport.is_authenticated():
                return
        raise SftpAuthError(
            f"{who} refused the login with {' and '.join(tried) or 'the configured credentials'}; "
            "not retried. Check the user name and the secret in that environment variable."
        )

    def _drop(self) -> None:
        """Forget a connection that failed mid-operation; the next attempt opens a new one."""
        self.close()

    def _retrying(self, what: str, operation: Callable[[paramiko.SFTPClient], T]) -> T:
        attempts = self.source.max_retries + 1

        def before_sleep(state: object) -> None:
            outcome = getattr(state, "outcome", None)
            error = outcome.exception() if outcome is not None else None
            number = getattr(state, "attempt_number", 0)
            log.warning(
                "%s at sftp %s failed (attempt %d of %d): %s: %s; retrying",
                what,
                self.source.endpoint,
                number,
                attempts,
                type(error).__name__,
                error,
            )

        try:
            for attempt in Retrying(
                stop=stop_after_attempt(attempts),
                wait=wait_exponential_jitter(
                    multiplier=self._backoff, max=self._max_backoff, jitter=self._backoff
                ),
                retry=retry_if_exception(_transient),
                before_sleep=before_sleep,
                reraise=True,
            ):
                with attempt:
                    try:
                        return operation(self._client())
                    except BaseException as error:
                        if _transient(error):
                            self._drop()
                        raise
        except BaseException as error:
            if _transient(error):
                raise SftpTransferError(
                    f"{what} at sftp {self.source.endpoint} failed after {attempts} attempt(s): "
                    f"{type(error).__name__}: {error}"
                ) from error
            raise
        raise AssertionError("unreachable")  # pragma: no cover

    # -- listing --------------------------------------------------------------------------

    def _remote_path(self, name: str) -> str:
        reason = unsafe_name_reason(name)
        if reason:
            raise UnsafeRemoteNameError(f"remote name {name!r} refused: {reason}")
        return posixpath.join(self.source.remote_dir, name)

    def _included(self, name: str) -> bool:
        lowered = name.lower()
        return any(fnmatch(lowered, p.lower()) for p in self.source.include) and not any(
            fnmatch(lowered, p.lower()) for p in self.source.exclude
        )

    def list_remote(self) -> Listing:
        """Look at the remote folder: regular files the spec includes, ready markers, refused entries.

        Hidden names (starting with '.') are never taken; neither are '*.part' files under
        `completeness: part_suffix`. Unsafe names and symbolic links are refused (and logged).
        """
        entries = self._retrying("listing", lambda sftp: sftp.listdir_attr(self.source.remote_dir))
        listing = Listing()
        for entry in sorted(entries, key=lambda e: e.filename):
            name = entry.filename
            reason = unsafe_name_reason(name)
            if reason:
                listing.refused.append(Refused(name, reason))
                continue
            if name.startswith("."):
                continue
            mode = entry.st_mode
            if mode is None:
                listing.refused.append(Refused(name, "the server gives no file type"))
                continue
            if stat.S_ISLNK(mode):
                if self._included(name) or self._included(name.removesuffix(READY_SUFFIX)):
                    listing.refused.append(Refused(name, "a symbolic link (its target could be anything)"))
                continue
            if not stat.S_ISREG(mode):
                continue
            if self.source.completeness == "ready_marker" and name.lower().endswith(READY_SUFFIX):
                listing.markers.add(name[: -len(READY_SUFFIX)])
                continue
            if self.source.completeness == "part_suffix" and name.lower().endswith(PART_SUFFIX):
                continue
            if not self._included(name):
                continue
            listing.files.append(RemoteFile(name, int(entry.st_size or 0), int(entry.st_mtime or 0)))
        for refused in listing.refused:
            log.warning("sftp %s:%s: refused %s", self.source.endpoint, self.source.remote_dir, refused)
        return listing

    def ready_files(self, listing: Listing, manifest: Manifest) -> tuple[list[RemoteFile], list[RemoteFile]]:
        """(complete and new, new but not complete yet) per the spec's completeness rule.

        'stable' compares with the manifest's previous look: call `manifest.observe(listing.files)`
        after this, and space the looks (the poll interval).
        """
        ready: list[RemoteFile] = []
        waiting: list[RemoteFile] = []
        for remote in manifest.new_files(listing.files):
            if self.source.completeness == "stable":
                complete = manifest.was_stable(remote)
            elif self.source.completeness == "ready_marker":
                complete = remote.name in listing.markers
            else:
                complete = True
            (ready if complete else waiting).append(remote)
        return ready, waiting

    # -- downloading ----------------------------------------------------------------------

    def download(self, remote: RemoteFile, target_dir: Path) -> Downloaded:
        """Download `remote` into `target_dir` under its own name, never leaving a partial file.

        Bytes go to a hidden temporary name (`.<name>.<random>.part`), hashed as they arrive; the
        size is checked, the file synced, and only then renamed into place. A name already taken
        in `target_dir` by other content gets the hash before its extension instead of being
        replaced. RemoteFileChangedError when the remote file changed since it was listed.
        """
        remote_path = self._remote_path(remote.name)
        target_dir.mkdir(parents=True, exist_ok=True)
        return self._retrying(
            f"download of {remote.name!r}", lambda sftp: self._fetch(sftp, remote, remote_path, target_dir)
        )

    def _check_unchanged(self, sftp: paramiko.SFTPClient, remote: RemoteFile, remote_path: str) -> None:
        attrs = sftp.lstat(remote_path)
        if attrs.st_mode is not None and stat.S_ISLNK(attrs.st_mode):
            raise UnsafeRemoteNameError(f"remote name {remote.name!r} refused: a symbolic link")
        if attrs.st_mode is not None and not stat.S_ISREG(attrs.st_mode):
            raise UnsafeRemoteNameError(f"remote name {remote.name!r} refused: not a regular file")
        if (int(attrs.st_size or 0), int(attrs.st_mtime or 0)) != (remote.size, remote.mtime):
            raise RemoteFileChangedError(
                f"{remote.name!r} at sftp {self.source.endpoint} changed since it was listed "
                f"({remote.size} bytes, mtime {remote.mtime} -> {attrs.st_size} bytes, mtime {attrs.st_mtime})"
            )

    def _fetch(
        self, sftp: paramiko.SFTPClient, remote: RemoteFile, remote_path: str, target_dir: Path
    ) -> Downloaded:
        self._check_unchanged(sftp, remote, remote_path)
        temporary = target_dir / f".{remote.name}.{uuid.uuid4().hex[:12]}.part"
        digest = hashlib.sha256()
        received = 0
        started = time.monotonic()
        try:
            with sftp.open(remote_path, "rb") as source_file, temporary.open("xb") as out:
                if remote.size:
                    _quiet_prefetch_thread(source_file)
                    source_file.prefetch(remote.size)
                while chunk := source_file.read(_CHUNK):
                    received += len(chunk)
                    if received > remote.size:
                        break
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            if received != remote.size:
                raise _IncompleteDownloadError(
                    f"{remote.name!r}: {received} bytes arrived, the server listed {remote.size}"
                )
            self._check_unchanged(sftp, remote, remote_path)
            sha256 = digest.hexdigest()
            final = _final_path(target_dir, remote.name, sha256)
            if final.exists():  # the same content is already there
                return Downloaded(final, remote.size, sha256)
            temporary.replace(final)
            _fsync_dir(target_dir)
            log.info(
                "downloaded %s from sftp %s (%d bytes, sha256 %s) in %.1fs",
                remote.name,
                self.source.endpoint,
                received,
                sha256[:12],
                time.monotonic() - started,
            )
            return Downloaded(final, remote.size, sha256)
        finally:
            temporary.unlink(missing_ok=True)

    # -- archiving ------------------------------------------------------------------------

    def archive(self, remote: RemoteFile) -> str | None:
        """Move `remote` (and its ready marker) to the spec's archive_dir; the new remote path, or None.

        Nothing is moved when no archive_dir is set, when the file is gone, or when the file on
        the server is another version than the one taken (a newer upload stays to be taken).
        """
        archive_dir = self.source.archive_dir
        if not archive_dir:
            return None
        remote_path = self._remote_path(remote.name)

        def move(sftp: paramiko.SFTPClient) -> str | None:
            try:
                self._check_unchanged(sftp, remote, remote_path)
            except FileNotFoundError:
                log.info("%s is gone from sftp %s; nothing to archive", remote.name, self.source.endpoint)
                return None
            except RemoteFileChangedError:
                log.warning(
                    "%s at sftp %s was replaced since it was taken; left in place",
                    remote.name,
                    self.source.endpoint,
                )
                return None
            _ensure_dir(sftp, archive_dir)
            target = posixpath.join(archive_dir, remote.name)
            if _exists(sftp, target):
                stem, dot, suffix = remote.name.rpartition(".")
                stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
                renamed = f"{stem}.{stamp}.{suffix}" if dot and stem else f"{remote.name}.{stamp}"
                target = posixpath.join(archive_dir, renamed)
            sftp.posix_rename(remote_path, target)
            if self.source.completeness == "ready_marker":
                marker = remote_path + READY_SUFFIX
                if _exists(sftp, marker):
                    sftp.posix_rename(marker, target + READY_SUFFIX)
            log.info("archived %s on sftp %s as %s", remote.name, self.source.endpoint, target)
            return target

        return self._retrying(f"archiving {remote.name!r}", move)


def _quiet_prefetch_thread(handle: paramiko.SFTPFile) -> None:
    """Keep a dropped connection from crashing paramiko's prefetch thread with an unhandled error.

    The reading thread sees the same failure and reports it (and the download is retried); the
    prefetch thread's traceback would only be noise on stderr.
    """
    original = getattr(handle, "_prefetch_thread", None)
    if original is None:
        return

    def run(*args: object) -> None:
        try:
            original(*args)
        except (EOFError, OSError, paramiko.SSHException) as error:
            log.debug("sftp prefetch stopped: %s: %s", type(error).__name__, error)

    handle._prefetch_thread = run  # type: ignore[method-assign]


def _final_path(target_dir: Path, name: str, sha256: str) -> Path:
    """`target_dir/name`, or a name with the hash in it when `name` holds other content already."""
    final = target_dir / name
    if not final.exists():
        return final
    if sha256_of(final) == sha256:
        return final
    stem, dot, suffix = name.rpartition(".")
    return target_dir / (f"{stem}.{sha256[:12]}.{suffix}" if dot and stem else f"{name}.{sha256[:12]}")


def _fsync_dir(folder: Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _exists(sftp: paramiko.SFTPClient, path: str) -> bool:
    try:
        sftp.lstat(path)
    except FileNotFoundError:
        return False
    return True


def _ensure_dir(sftp: paramiko.SFTPClient, path: str) -> None:
    if not _exists(sftp, path):
        try:
            sftp.mkdir(path)
        except OSError:
            if not _exists(sftp, path):
                raise


class SftpChannel:
    """A distributor's SFTP folder as a `connectors.channel.Channel`; its state is the manifest JSON.

    Each `poll` and each `settle` opens one connection and closes it.
    """

    name: ChannelName = "sftp"

    def __init__(
        self,
        source_id: str,
        source: SftpSource,
        *,
        environ: Mapping[str, str] | None = None,
        backoff_seconds: float = 1.0,
        max_backoff_seconds: float = 30.0,
    ) -> None:
        self.source_id = source_id
        self.source = source
        self._options = {
            "environ": environ,
            "backoff_seconds": backoff_seconds,
            "max_backoff_seconds": max_backoff_seconds,
        }
        self.connection_attempts = 0

    def __repr__(self) -> str:
        return f"SftpChannel({self.source_id!r}, {self.source.username}@{self.source.endpoint})"

    def connector(self) -> SftpConnector:
        """A new connector with this channel's settings (close it, or use it in a `with`)."""
        return SftpConnector(self.source, **self._options)  # type: ignore[arg-type]

    def poll(self, state: str | None, target_dir: Path) -> Poll:
        manifest = Manifest.from_json(state)
        fetched: list[FetchedFile] = []
        connector = self.connector()
        try:
            listing = connector.list_remote()
            ready, waiting = connector.ready_files(listing, manifest)
            manifest.observe(listing.files)
            for remote in ready:
                try:
                    downloaded = connector.download(remote, target_dir)
                except RemoteFileChangedError as changed:
                    log.info("%s; taken at a later poll", changed)
                    waiting.append(remote)
                    continue
                if manifest.has_content(downloaded.sha256):
                    log.info(
                        "%s from sftp %s has the content of a file taken before (sha256 %s); not handed on",
                        remote.name,
                        self.source.endpoint,
                        downloaded.sha256[:12],
                    )
                    downloaded.path.unlink(missing_ok=True)
                    manifest.record_taken(remote, downloaded.sha256)
                    continue
                manifest.record_taken(remote, downloaded.sha256)
                fetched.append(
                    FetchedFile(
                        channel="sftp",
                        source_id=self.source_id,
                        remote_name=remote.name,
                        local_path=downloaded.path,
                        size=downloaded.size,
                        sha256=downloaded.sha256,
                        remote_mtime=remote.mtime,
                    )
                )
        finally:
            self.connection_attempts += connector.connection_attempts
            connector.close()
        return Poll(
            fetched=fetched,
            state=manifest.to_json(),
            waiting=[remote.name for remote in waiting],
            refused=[str(refused) for refused in listing.refused],
        )

    def settle(self, fetched: FetchedFile, outcome: Outcome, error: str | None = None) -> None:
        """'landed': archive the remote file (when archive_dir is set). 'failed': remove the local copy.

        The remote file is never touched on failure; do not commit the poll's state then, and
        the next poll takes it again.
        """
        if outcome != "landed":
            fetched.local_path.unlink(missing_ok=True)
            return
        if not self.source.archive_dir or fetched.remote_mtime is None:
            return
        with self.connector() as connector:
            try:
                connector.archive(RemoteFile(fetched.remote_name, fetched.size, fetched.remote_mtime))
            finally:
                self.connection_attempts += connector.connection_attempts
