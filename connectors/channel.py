"""The one interface every channel offers (watched folder, SFTP server, HTTP API), and what they share.

A channel is polled with its previous state (a JSON string: a Dagster cursor) and a local folder;
it returns the files that are complete and new, already local, and its next state. Once the
caller has landed (or failed to land) a file it settles it, so the channel can archive or clean
up at the source. Secrets are read here, from environment variable NAMES, at the moment of use.
Reading records is not a channel's business: a fetched file goes through the same readers as a
dropped one.

Contract for callers (ingest, Dagster sensors and schedules):

1. `poll(state, target_dir)` -> `Poll`: the fetched files sit in `target_dir` under their final
   names (never a partial file; SFTP and API downloads go through a hidden temporary name), with
   size and SHA-256 computed while they were written.
2. Land every fetched file, then call `settle(fetched, "landed")` (SFTP: move the remote file to
   its `archive_dir`; folder: remove it from the inbox) or `settle(fetched, "failed", error)`.
3. Commit `poll.state` (the sensor cursor) only once every fetched file is landed. A crash before
   that only makes the next poll fetch the same files again; landing is content-addressed, so
   nothing loads twice. A caller that settles only after committing (`ingest.pull` does, since an
   archived file is no longer listed, so a state saved after it never records it as taken) keeps
   what is still to settle until it is settled.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from connectors.folder import list_inbox, move_rejected, remove_received
from connectors.manifest import Manifest, RemoteFile

if TYPE_CHECKING:
    from schemas.sources import Source

ChannelName = Literal["folder", "sftp", "api"]
Outcome = Literal["landed", "failed"]


class MissingSecretError(RuntimeError):
    """An environment variable named in a feed spec is not set (the message names it, never a value)."""


def read_secret(env_name: str, purpose: str, environ: Mapping[str, str] | None = None) -> str:
    """The value of environment variable `env_name`, read now; MissingSecretError if unset or empty.

    `purpose` says what it is for ('password of sftp user acme at host:22'), for the message.
    The value is returned to the caller only: never logged, never put in an exception or a repr.
    """
    env = os.environ if environ is None else environ
    value = env.get(env_name)
    if not value:
        raise MissingSecretError(
            f"environment variable {env_name} is not set (it should hold the {purpose}); "
            "set it in the environment of the process that pulls"
        )
    return value


def redact(text: str, *secrets: str | None) -> str:
    """`text` with every occurrence of a secret replaced by '***' (for messages built from server text)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


@dataclass(frozen=True)
class FetchedFile:
    """A complete file now on local disk, and where it came from."""

    channel: ChannelName
    source_id: str
    remote_name: str
    local_path: Path
    size: int
    sha256: str
    remote_mtime: int | None = None

    @property
    def run_key(self) -> str:
        """Identifies this content from this source: one run per file, a new run when it changes."""
        return f"{self.channel}/{self.source_id}/{self.remote_name}@{self.sha256[:16]}"


@dataclass(frozen=True)
class Poll:
    """What one poll found: files fetched, files seen but not complete yet, names refused, next state."""

    fetched: list[FetchedFile]
    state: str
    waiting: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


@runtime_checkable
class Channel(Protocol):
    """Where one distributor's files come from. See the module docstring for the contract."""

    name: ChannelName
    source_id: str

    def poll(self, state: str | None, target_dir: Path) -> Poll:
        """Fetch the files that are complete and new into `target_dir`; return them and the next state."""
        ...

    def settle(self, fetched: FetchedFile, outcome: Outcome, error: str | None = None) -> None:
        """After landing: archive or clean up at the source ('landed'), or leave it ('failed')."""
        ...


def sha256_of(path: Path) -> str:
    """SHA-256 of a local file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def load_state(path: Path) -> str | None:
    """A channel state saved by `save_state` (e.g. under the home), or None when there is none yet."""
    try:
        return path.read_text(encoding="utf-8") or None
    except FileNotFoundError:
        return None


def save_state(path: Path, state: str) -> None:
    """Save a channel state atomically: a crash leaves the previous state or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        handle.write(state)
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(path)


class FolderChannel:
    """The watched folder `inbox/<distributor_id>/` as a channel (files are local already).

    Its state records the previous look, so a file is fetched only once its size and mtime held
    still across two polls. `target_dir` is not used: a fetched file's `local_path` is in the inbox.
    """

    name: ChannelName = "folder"

    def __init__(self, distributor_id: str, inbox_dir: Path, rejected_dir: Path) -> None:
        self.source_id = distributor_id
        self._inbox_dir = inbox_dir
        self._rejected_dir = rejected_dir

    def poll(self, state: str | None, target_dir: Path) -> Poll:
        previous = json.loads(state) if state else {}
        files = [f for f in list_inbox(self._inbox_dir) if f.distributor_id == self.source_id]
        looks = {f.path.name: [f.size, f.mtime_ns] for f in files}
        fetched, waiting = [], []
        for inbox in files:
            if previous.get(inbox.path.name) != [inbox.size, inbox.mtime_ns]:
                waiting.append(inbox.path.name)
                continue
            fetched.append(
                FetchedFile(
                    channel="folder",
                    source_id=self.source_id,
                    remote_name=inbox.path.name,
                    local_path=inbox.path,
                    size=inbox.size,
                    sha256=sha256_of(inbox.path),
                    remote_mtime=inbox.mtime_ns // 1_000_000_000,
                )
            )
        return Poll(fetched=fetched, state=json.dumps(looks, sort_keys=True), waiting=waiting)

    def settle(self, fetched: FetchedFile, outcome: Outcome, error: str | None = None) -> None:
        if outcome == "landed":
            remove_received(fetched.local_path)
        else:
            move_rejected(
                fetched.local_path, self._rejected_dir, self.source_id, error or "could not be landed"
            )


def open_channel(source_id: str, source: Source, *, environ: Mapping[str, str] | None = None) -> Channel:
    """The channel of a feed spec's `source:` section (secrets are read from `environ` when used)."""
    # Imported here: both modules import this one for the shared types.
    from connectors.http_api import ApiChannel
    from connectors.sftp import SftpChannel

    if source.type == "sftp":
        return SftpChannel(source_id, source, environ=environ)
    return ApiChannel(source_id, source, environ=environ)


__all__ = [
    "Channel",
    "ChannelName",
    "FetchedFile",
    "FolderChannel",
    "Manifest",
    "MissingSecretError",
    "Outcome",
    "Poll",
    "RemoteFile",
    "load_state",
    "open_channel",
    "read_secret",
    "redact",
    "save_state",
    "sha256_of",
]
