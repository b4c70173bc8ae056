"""The watched-folder connector: what is waiting in `inbox/<distributor_id>/`, and where it goes after.

Channel operations drop files into `inbox/<distributor_id>/`. This module lists them with their
size and modification time (so a sensor can wait until a file stops growing), and settles a file
once its load is recorded: removed from the inbox when its bytes are safe in landing, or moved to
`rejected/<distributor_id>/` with a `.error.txt` beside it when it could not be loaded. A file is
never deleted before its bytes are in landing.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

IGNORED_PREFIXES = (".", "~$", "_")


@dataclass(frozen=True)
class InboxFile:
    """A file waiting in an inbox folder, as last seen."""

    distributor_id: str
    path: Path
    size: int
    mtime_ns: int

    @property
    def received_at(self) -> datetime:
        """When the file arrived: its modification time, in UTC."""
        return datetime.fromtimestamp(self.mtime_ns / 1e9, tz=UTC)

    @property
    def run_key(self) -> str:
        """Identifies this version of the file: one run per file, and a new run if it is replaced."""
        return f"{self.distributor_id}/{self.path.name}:{self.size}:{self.mtime_ns}"


def _visible(path: Path) -> bool:
    # A symbolic link is never followed: its target may be anything on the machine.
    return not path.is_symlink() and path.is_file() and not path.name.startswith(IGNORED_PREFIXES)


def list_inbox(inbox_dir: Path) -> list[InboxFile]:
    """Every file waiting in `inbox/<distributor_id>/` folders (hidden and temporary files skipped)."""
    found: list[InboxFile] = []
    if not inbox_dir.is_dir():
        return found
    for folder in sorted(
        p
        for p in inbox_dir.iterdir()
        if p.is_dir() and not p.is_symlink() and not p.name.startswith(IGNORED_PREFIXES)
    ):
        for path in sorted(p for p in folder.iterdir() if _visible(p)):
            try:
                stat = path.stat()
            except FileNotFoundError:  # taken away between listing and stat
                continue
            found.append(InboxFile(folder.name, path, stat.st_size, stat.st_mtime_ns))
    return found


def inbox_file(path: Path) -> InboxFile:
    """An InboxFile for a path given directly (its distributor is the name of its folder)."""
    stat = path.stat()
    return InboxFile(path.parent.name, path, stat.st_size, stat.st_mtime_ns)


def remove_received(path: Path) -> None:
    """Remove an inbox file whose bytes are now in landing."""
    path.unlink(missing_ok=True)


def move_rejected(path: Path, rejected_dir: Path, distributor_id: str, error: str) -> Path | None:
    """Move a file that could not be loaded aside, with the reason in `<name>.error.txt` beside it."""
    if not path.exists():
        return None
    target_dir = rejected_dir / distributor_id
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / path.name
    if target.exists():
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        target = target_dir / f"{path.stem}.{stamp}{path.suffix}"
    shutil.move(str(path), target)
    target.with_name(target.name + ".error.txt").write_text(error + "\n", encoding="utf-8")
    return target
