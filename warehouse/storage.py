"""Storage: every path the warehouse touches goes through `WarehouseStorage`.

It knows where landing files and Delta tables live and how to reach them (a local folder today;
object storage later means a new implementation of this one class, with `storage_options`, and
no change to `transforms/`). Nothing else in the project builds warehouse paths by hand.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

HASH_CHUNK_BYTES = 1 << 20


def sha256_of(path: Path) -> str:
    """SHA-256 hex digest of a file, read in chunks (files may be large)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class LandedBytes:
    """Where a received file's bytes now live in landing."""

    sha256: str
    source_file: str
    size: int


@dataclass(frozen=True)
class WarehouseStorage:
    """A warehouse rooted in a local folder: `<home>/landing` and `<home>/warehouse`."""

    landing_root: Path
    tables_root: Path

    @property
    def storage_options(self) -> dict[str, str]:
        """Options for deltalake/polars object-store access; empty for the local file system."""
        return {}

    def table_uri(self, table: str) -> str:
        """Location of a Delta table."""
        return str(self.tables_root / table)

    def table_exists(self, table: str) -> bool:
        return (self.tables_root / table / "_delta_log").is_dir()

    def read_meta(self, name: str) -> str | None:
        """A small piece of warehouse metadata (e.g. the end-customer key's fingerprint), or None."""
        path = self.tables_root / "_throughline" / name
        return path.read_text(encoding="utf-8").strip() if path.is_file() else None

    def write_meta(self, name: str, text: str) -> None:
        """Write warehouse metadata atomically (temporary file, then rename)."""
        folder = self.tables_root / "_throughline"
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / f".{name}.{os.getpid()}.partial"
        partial.write_text(text + "\n", encoding="utf-8")
        partial.replace(folder / name)

    def landing_uri(self, sha256: str, suffix: str) -> str:
        """The content address of a file in landing: `landing/<first two hex>/<sha256><suffix>`."""
        clean = suffix.lower() if re.fullmatch(r"\.[a-z0-9]{1,10}", suffix.lower()) else ""
        return f"landing/{sha256[:2]}/{sha256}{clean}"

    def local_path(self, source_file: str) -> Path:
        """A local path readers can open for a landing address (a download, once storage is remote)."""
        relative = source_file.removeprefix("landing/")
        return self.landing_root / relative

    def land(self, path: Path) -> LandedBytes:
        """Copy a received file into landing under its content address; never overwrite what is there.

        The bytes are hashed while they are copied to a temporary name, synced, and renamed into
        place, so a crash never leaves a partial file at a content address. A symbolic link is
        refused (O_NOFOLLOW): only the file itself is ever landed.
        """
        self.landing_root.mkdir(parents=True, exist_ok=True)
        staging_dir = self.landing_root / ".incoming"
        staging_dir.mkdir(exist_ok=True)
        partial = staging_dir / f"{os.getpid()}-{path.name.encode('utf-8', 'replace').hex()[:40]}.partial"
        digest = hashlib.sha256()
        size = 0
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(descriptor, "rb") as source, partial.open("wb") as target:
            while chunk := source.read(HASH_CHUNK_BYTES):
                digest.update(chunk)
                target.write(chunk)
                size += len(chunk)
            target.flush()
            os.fsync(target.fileno())
        sha256 = digest.hexdigest()
        source_file = self.landing_uri(sha256, path.suffix)
        final = self.local_path(source_file)
        if final.exists():
            partial.unlink()
        else:
            final.parent.mkdir(parents=True, exist_ok=True)
            partial.chmod(0o444)
            partial.replace(final)
        return LandedBytes(sha256=sha256, source_file=source_file, size=size)


def storage_for_home(landing_dir: Path, warehouse_dir: Path) -> WarehouseStorage:
    """The storage of one Throughline home: landing files and `warehouse/tables/<table>` Delta tables."""
    return WarehouseStorage(landing_root=landing_dir, tables_root=warehouse_dir / "tables")
