"""Storage: every path the warehouse touches goes through `WarehouseStorage`.

It knows where landing files and Delta tables live and how to reach them (a local folder today;
object storage later means a new implementation of this one class, with `storage_options`, and
no change to `transforms/`). Nothing else in the project builds warehouse paths by hand.
"""

from __future__ import annotations

import hashlib
import os
import shutil
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

    def landing_uri(self, sha256: str, suffix: str) -> str:
        """The content address of a file in landing: `landing/<first two hex>/<sha256><suffix>`."""
        return f"landing/{sha256[:2]}/{sha256}{suffix.lower()}"

    def local_path(self, source_file: str) -> Path:
        """A local path readers can open for a landing address (a download, once storage is remote)."""
        relative = source_file.removeprefix("landing/")
        return self.landing_root / relative

    def land(self, path: Path) -> LandedBytes:
        """Copy a received file into landing under its content address; never overwrite what is there.

        The copy goes to a temporary name and is renamed into place, so a crash never leaves a
        partial file at a content address.
        """
        sha256 = sha256_of(path)
        source_file = self.landing_uri(sha256, path.suffix)
        target = self.local_path(source_file)
        size = path.stat().st_size
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
            shutil.copyfile(path, partial)
            with partial.open("rb") as handle:
                os.fsync(handle.fileno())
            partial.chmod(0o444)
            partial.replace(target)
        return LandedBytes(sha256=sha256, source_file=source_file, size=size)


def storage_for_home(landing_dir: Path, warehouse_dir: Path) -> WarehouseStorage:
    """The storage of one Throughline home: landing files and `warehouse/tables/<table>` Delta tables."""
    return WarehouseStorage(landing_root=landing_dir, tables_root=warehouse_dir / "tables")
