"""The manifest of a remote folder: which file versions were seen, which were taken, by content.

It decides what is new without trusting the clock: a version is (name, size, mtime), so a file
re-uploaded with an older mtime is a new version, and a version already taken (or any file whose
SHA-256 was already taken) is never handed on again. It serializes to compact JSON, to be a
Dagster sensor cursor or a file under the home. Listing and downloading live in `connectors.sftp`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

MANIFEST_VERSION = 1
MAX_HASHES = 20_000
"""SHA-256 values remembered for content dedup (oldest forgotten first); ~1.4 MB of JSON at most."""


@dataclass(frozen=True)
class RemoteFile:
    """A regular file as listed on the server: its name in the remote folder, size and mtime (s)."""

    name: str
    size: int
    mtime: int

    @property
    def version(self) -> tuple[str, int, int]:
        return (self.name, self.size, self.mtime)

    @property
    def run_key(self) -> str:
        """Identifies this version of the file: one run per version, a new run when it is replaced."""
        return f"{self.name}:{self.size}:{self.mtime}"


@dataclass
class Manifest:
    """What was seen in one remote folder.

    - `looks`: name -> (size, mtime) at the previous look, to tell a finished file from a growing one;
    - `taken`: name -> versions (size, mtime, sha256 or None) already taken;
    - `hashes`: SHA-256 values of content already taken, oldest first.
    """

    looks: dict[str, tuple[int, int]] = field(default_factory=dict)
    taken: dict[str, list[tuple[int, int, str | None]]] = field(default_factory=dict)
    hashes: list[str] = field(default_factory=list)
    _known: set[str] = field(default_factory=set, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._known = set(self.hashes)

    # -- deciding -------------------------------------------------------------------------

    def is_taken(self, remote: RemoteFile) -> bool:
        """True when this exact version (name, size, mtime) was taken before."""
        return any(
            (size, mtime) == (remote.size, remote.mtime) for size, mtime, _ in self.taken.get(remote.name, [])
        )

    def has_content(self, sha256: str) -> bool:
        """True when a file with this SHA-256 was taken before (under any name)."""
        return sha256 in self._known

    def was_stable(self, remote: RemoteFile) -> bool:
        """True when the previous look saw this file with the same size and mtime."""
        return self.looks.get(remote.name) == (remote.size, remote.mtime)

    def new_files(self, listing: Iterable[RemoteFile]) -> list[RemoteFile]:
        """The listed files whose version was not taken yet (completeness is decided elsewhere)."""
        return [remote for remote in listing if not self.is_taken(remote)]

    # -- recording ------------------------------------------------------------------------

    def observe(self, listing: Iterable[RemoteFile]) -> None:
        """Record a look at the folder; forget files that are gone (their content hashes stay)."""
        files = list(listing)
        self.looks = {remote.name: (remote.size, remote.mtime) for remote in files}
        names = set(self.looks)
        # A file moved away (archived) need not be remembered by version: should it come back,
        # its content hash still keeps it from being handed on twice.
        self.taken = {name: versions for name, versions in self.taken.items() if name in names}

    def record_taken(self, remote: RemoteFile, sha256: str | None) -> None:
        """Record a version as taken (downloaded and handed on, or recognized as a duplicate)."""
        versions = [v for v in self.taken.get(remote.name, []) if (v[0], v[1]) != (remote.size, remote.mtime)]
        versions.append((remote.size, remote.mtime, sha256))
        self.taken[remote.name] = versions[-10:]
        if sha256 and sha256 not in self._known:
            self.hashes.append(sha256)
            self._known.add(sha256)
            if len(self.hashes) > MAX_HASHES:
                for forgotten in self.hashes[:-MAX_HASHES]:
                    self._known.discard(forgotten)
                del self.hashes[:-MAX_HASHES]

    def forget(self, remote: RemoteFile) -> None:
        """Undo `record_taken` for a version whose bytes could not be kept, so it is taken again."""
        versions = self.taken.get(remote.name, [])
        kept = [v for v in versions if (v[0], v[1]) != (remote.size, remote.mtime)]
        dropped = {v[2] for v in versions if (v[0], v[1]) == (remote.size, remote.mtime)}
        self.taken[remote.name] = kept
        self.hashes = [h for h in self.hashes if h not in dropped]
        self._known -= dropped  # type: ignore[arg-type]

    # -- serializing ----------------------------------------------------------------------

    def to_json(self) -> str:
        """Compact, deterministic JSON (a Dagster cursor, or a file under the home)."""
        return json.dumps(
            {
                "version": MANIFEST_VERSION,
                "looks": {name: list(look) for name, look in sorted(self.looks.items())},
                "taken": {name: [list(v) for v in versions] for name, versions in sorted(self.taken.items())},
                "hashes": self.hashes,
            },
            separators=(",", ":"),
            ensure_ascii=False,
        )

    @classmethod
    def from_json(cls, text: str | None) -> Manifest:
        """A manifest from `to_json` output; None or '' is an empty manifest (nothing seen yet)."""
        if not text:
            return cls()
        data: Any = json.loads(text)
        if not isinstance(data, dict) or data.get("version") != MANIFEST_VERSION:
            raise ValueError(f"not a manifest of version {MANIFEST_VERSION}")
        return cls(
            looks={str(name): (int(look[0]), int(look[1])) for name, look in data.get("looks", {}).items()},
            taken={
                str(name): [(int(v[0]), int(v[1]), v[2] if v[2] is None else str(v[2])) for v in versions]
                for name, versions in data.get("taken", {}).items()
            },
            hashes=[str(h) for h in data.get("hashes", [])],
        )
