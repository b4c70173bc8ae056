"""Writing report files safely: each file appears whole or not at all, and ids are safe file names.

A reader (a browser, a file share, a mail robot) never sees a half-written page or export: every
file is written to a temporary name beside its target and renamed over it.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
"""A partner id usable as a file name as it is (no separators, no leading dot, no `..` tricks)."""


def file_stem(partner_id: str) -> str:
    """`partner_id` itself when it is a safe file name; otherwise a ValueError naming it."""
    if not isinstance(partner_id, str) or not SAFE_ID.fullmatch(partner_id):
        raise ValueError(
            f"partner id {partner_id!r} cannot name a file (letters, digits, '.', '_', '-' only)"
        )
    return partner_id


TEMPORARY_SUFFIX = ".tmp"


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """A temporary path beside `target` to write to; renamed over `target` when the block succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=TEMPORARY_SUFFIX)
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        with temporary.open("rb") as written:
            os.fsync(written.fileno())
        temporary.chmod(0o644)
        temporary.replace(target)
    finally:
        temporary.unlink(missing_ok=True)


def write_text_atomic(target: Path, text: str) -> Path:
    with atomic_path(target) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return target


def remove_stray_temporaries(folder: Path) -> list[Path]:
    """Delete the temporary files `atomic_path` left in `folder` when its writer was killed mid-write
    (a SIGKILL skips the cleanup); the files removed. Call it only while no other writer writes there."""
    stray = sorted(folder.glob(f".*{TEMPORARY_SUFFIX}")) if folder.is_dir() else []
    for path in stray:
        path.unlink(missing_ok=True)
    return stray
