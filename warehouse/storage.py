"""Storage: every path the warehouse touches goes through a `WarehouseStorage`.

It knows where landing files and Delta tables live and how to reach them: `LocalStorage` roots
both in the home folder, `ObjectStorage` on an S3-compatible store (deltalake and Polars get its
`storage_options`; landing files and data files go through pyarrow's S3 file system). Readers in
`transforms/` only ever see local files: object storage hands them a spool copy under `work/`.
Nothing else in the project builds warehouse paths or object keys by hand; `storage_for` picks
the implementation from the settings.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from abc import ABC, abstractmethod
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from urllib.parse import urlsplit

from pyarrow import fs as pafs

from schemas.settings import ObjectStoreSettings, ThroughlineSettings

HASH_CHUNK_BYTES = 1 << 20
META_FOLDER = "_throughline"
DELTA_LOG = "_delta_log/"
CHECKPOINT_INTERVAL = 10
DELTA_VERSION_FILE = re.compile(r"\d{20}\.(json|checkpoint(\.\d+\.\d+)?\.parquet)")
"""A file of a Delta log that holds a table version (a commit, or a checkpoint of one). A writer
killed while creating a table can leave `_delta_log/` with none of them (an empty folder, or a
`_commit_*.json.tmp`): that is no table yet."""


def sha256_of(path: Path) -> str:
    """SHA-256 hex digest of a file, read in chunks (files may be large)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def copy_hashing(path: Path, target: Path) -> tuple[str, int]:
    """Copy `path` to `target`, hashing the bytes on the way; (SHA-256, size). The copy is synced.

    A symbolic link is refused (O_NOFOLLOW): only the file itself is ever landed.
    """
    digest = hashlib.sha256()
    size = 0
    descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    # hashlib releases the GIL on large buffers: a chunk is hashed on a second thread while it is
    # written, so landing costs about the larger of the two, not their sum.
    with (
        os.fdopen(descriptor, "rb") as source,
        target.open("wb") as copy,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="landing-hash") as hasher,
    ):
        hashed: Future[None] | None = None
        while chunk := source.read(HASH_CHUNK_BYTES):
            if hashed is not None:
                hashed.result()
            hashed = hasher.submit(digest.update, chunk)
            copy.write(chunk)
            size += len(chunk)
        if hashed is not None:
            hashed.result()
        copy.flush()
        os.fsync(copy.fileno())
    return digest.hexdigest(), size


def partial_copy_path(incoming: Path, path: Path) -> Path:
    """Where this process copies `path` before it has a content address: `<pid>-<name hex>.partial`."""
    incoming.mkdir(parents=True, exist_ok=True)
    return incoming / f"{os.getpid()}-{path.name.encode('utf-8', 'replace').hex()[:40]}.partial"


def remove_abandoned_partials(incoming: Path) -> None:
    """Delete the partial copies in `incoming` whose process no longer runs (killed mid-copy): they
    hold a received file's bytes, which nothing else would ever delete (nor `forget` erase)."""
    for stale in incoming.glob("*.partial"):
        owner = stale.name.split("-", 1)[0]
        if owner.isdigit() and int(owner) != os.getpid() and not _process_running(int(owner)):
            stale.unlink(missing_ok=True)


def _process_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


@dataclass(frozen=True)
class LandedBytes:
    """Where a received file's bytes now live in landing."""

    sha256: str
    source_file: str
    size: int


def landing_address(sha256: str, suffix: str) -> str:
    """The content address of a file in landing: `landing/<first two hex>/<sha256><suffix>`."""
    clean = suffix.lower() if re.fullmatch(r"\.[a-z0-9]{1,10}", suffix.lower()) else ""
    return f"landing/{sha256[:2]}/{sha256}{clean}"


class WarehouseStorage(ABC):
    """Where landing files and Delta tables live. Addresses of landing files (`source_file`) are the
    same on every implementation: `landing/<sha[:2]>/<sha><suffix>`."""

    @property
    @abstractmethod
    def storage_options(self) -> dict[str, str]:
        """Options for deltalake and Polars to reach the tables; empty for the local file system."""

    @property
    def table_properties(self) -> dict[str, str]:
        """Delta table properties every table has: a checkpoint every 10 commits (delta-rs's default
        is 100). Opening a table reads the last checkpoint and each commit after it; the ledger's
        tables take several commits per file, and a load opens them a few times, so short runs of
        commits keep every open cheap (a request each on object storage, a file each on disk)."""
        return {"delta.checkpointInterval": str(CHECKPOINT_INTERVAL)}

    @abstractmethod
    def table_uri(self, table: str) -> str:
        """Location of a Delta table (a folder, or an `s3://` URI)."""

    @property
    @abstractmethod
    def tables_location(self) -> str:
        """The folder or URI prefix holding every table, with a trailing slash."""

    @abstractmethod
    def table_exists(self, table: str) -> bool:
        """Whether the table holds a version: a commit or checkpoint in its log (DELTA_VERSION_FILE)."""

    @abstractmethod
    def read_meta(self, name: str) -> str | None:
        """A small piece of warehouse metadata (e.g. the end-customer key's fingerprint), or None."""

    @abstractmethod
    def write_meta(self, name: str, text: str) -> None:
        """Write warehouse metadata atomically."""

    def landing_uri(self, sha256: str, suffix: str) -> str:
        """The content address of a file in landing (see `landing_address`)."""
        return landing_address(sha256, suffix)

    @abstractmethod
    def local_path(self, source_file: str) -> Path:
        """A local file readers can open for a landing address; a path that does not exist when the
        address holds nothing (object storage: a spool copy, downloaded when missing)."""

    @abstractmethod
    def landing_exists(self, source_file: str) -> bool:
        """True when landing holds bytes at this address."""

    @abstractmethod
    def remove_landing(self, source_file: str) -> bool:
        """Delete one landing file (and any local copy of it); False when it was not there."""

    @abstractmethod
    def landing_copies(self, sha256: str) -> list[str]:
        """Every address landing holds for these bytes (one per file-name suffix they arrived with)."""

    @abstractmethod
    def land(self, path: Path) -> LandedBytes:
        """Store a received file under its content address; never overwrite what is there. A crash
        never leaves a partial file at a content address."""

    @abstractmethod
    def data_file_path(self, table: str, relative: str) -> Path:
        """The local file a writer writes a new data file of `table` to (its folder exists)."""

    @abstractmethod
    def publish_data_file(self, table: str, relative: str, local: Path) -> None:
        """Make a written data file readable at `relative` in the table, before its commit (repeatable)."""

    @abstractmethod
    def release_data_file(self, local: Path) -> None:
        """The data file is committed: drop whatever local copy only served to write it."""

    @abstractmethod
    def copy_data_file(self, table: str, relative: str, target: Path) -> None:
        """Put the bytes of data file `relative` of `table` at local path `target` (a new data file)."""

    @abstractmethod
    def data_files_in(self, table: str, folder: str) -> list[str]:
        """Every data file stored under `folder` of `table` (relative paths, committed or not), and
        any local copy a writer left there; the Delta log is never listed."""

    @abstractmethod
    def remove_data_files(self, table: str, relatives: list[str]) -> None:
        """Delete these data files of `table` (and their local copies). Only for files no Delta
        version refers to any more: the caller holds the lock of every writer of their folder."""


@dataclass(frozen=True)
class LocalStorage(WarehouseStorage):
    """A warehouse rooted in a local folder: `<home>/landing` and `<home>/warehouse/tables`."""

    landing_root: Path
    tables_root: Path

    @property
    def storage_options(self) -> dict[str, str]:
        return {}

    def table_uri(self, table: str) -> str:
        return str(self.tables_root / table)

    @property
    def tables_location(self) -> str:
        return str(self.tables_root.resolve()) + "/"

    def table_exists(self, table: str) -> bool:
        log = self.tables_root / table / "_delta_log"
        return log.is_dir() and any(DELTA_VERSION_FILE.fullmatch(path.name) for path in log.iterdir())

    def read_meta(self, name: str) -> str | None:
        path = self.tables_root / META_FOLDER / name
        return path.read_text(encoding="utf-8").strip() if path.is_file() else None

    def write_meta(self, name: str, text: str) -> None:
        """Temporary file, then rename."""
        folder = self.tables_root / META_FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / f".{name}.{os.getpid()}.partial"
        partial.write_text(text + "\n", encoding="utf-8")
        partial.replace(folder / name)

    def local_path(self, source_file: str) -> Path:
        return self.landing_root / source_file.removeprefix("landing/")

    def landing_exists(self, source_file: str) -> bool:
        return self.local_path(source_file).is_file()

    def remove_landing(self, source_file: str) -> bool:
        """Landing files are read-only, not undeletable."""
        try:
            self.local_path(source_file).unlink()
        except FileNotFoundError:
            return False
        return True

    def landing_copies(self, sha256: str) -> list[str]:
        folder = self.landing_root / sha256[:2]
        found = sorted(folder.glob(f"{sha256}*")) if folder.is_dir() else []
        return [f"landing/{path.relative_to(self.landing_root).as_posix()}" for path in found]

    def land(self, path: Path) -> LandedBytes:
        """Hashed while copied to a temporary name, synced, and renamed into place (read-only)."""
        self.landing_root.mkdir(parents=True, exist_ok=True)
        partial = partial_copy_path(self.landing_root / ".incoming", path)
        remove_abandoned_partials(partial.parent)
        sha256, size = copy_hashing(path, partial)
        source_file = self.landing_uri(sha256, path.suffix)
        final = self.local_path(source_file)
        if final.exists():
            partial.unlink()
        else:
            final.parent.mkdir(parents=True, exist_ok=True)
            partial.chmod(0o444)
            partial.replace(final)
        return LandedBytes(sha256=sha256, source_file=source_file, size=size)

    def data_file_path(self, table: str, relative: str) -> Path:
        """Written in place: the table's own folder."""
        local = self.tables_root / table / relative
        local.parent.mkdir(parents=True, exist_ok=True)
        return local

    def publish_data_file(self, table: str, relative: str, local: Path) -> None:
        """Already in place."""

    def release_data_file(self, local: Path) -> None:
        """The file is the table's own: nothing to drop."""

    def copy_data_file(self, table: str, relative: str, target: Path) -> None:
        """A hard link (no bytes copied), or a copy on another file system."""
        source = self.tables_root / table / relative
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)

    def data_files_in(self, table: str, folder: str) -> list[str]:
        root = self.tables_root / table
        found = (path.relative_to(root).as_posix() for path in (root / folder).rglob("*") if path.is_file())
        return sorted(relative for relative in found if not relative.startswith(DELTA_LOG))

    def remove_data_files(self, table: str, relatives: list[str]) -> None:
        for relative in relatives:
            (self.tables_root / table / relative).unlink(missing_ok=True)


@dataclass(frozen=True)
class ObjectStorage(WarehouseStorage):
    """A warehouse on an S3-compatible store: tables under `tables_uri`, landing under `landing_root_uri`.

    Delta commits are safe with concurrent writers on stores that honour `If-None-Match: *` on
    PutObject (delta-rs commits a log entry with a put-if-absent); docs/deploy.md lists them. Local
    files (what a reader reads, what a writer writes before upload) live in `spool_root`.
    """

    tables_uri: str
    landing_root_uri: str
    connection: ObjectStoreSettings
    spool_root: Path
    _existing_tables: set[str] = field(default_factory=set, compare=False, repr=False)
    """Tables seen to exist (a table is never deleted): asked once, not on every write."""

    @property
    def storage_options(self) -> dict[str, str]:
        """deltalake / Polars (object_store) options: built when asked, never stored or logged."""
        options = {
            "AWS_REGION": self.connection.region,
            "AWS_VIRTUAL_HOSTED_STYLE_REQUEST": "true" if self.connection.virtual_addressing else "false",
            # delta-rs commits with a put-if-absent (If-None-Match: *); with `etag`, object_store
            # also serves conditional updates (If-Match), which the stores listed in deploy.md honour.
            "AWS_CONDITIONAL_PUT": "etag",
        }
        if self.connection.endpoint_url:
            options["AWS_ENDPOINT_URL"] = self.connection.endpoint_url
            if self.connection.endpoint_url.startswith("http://"):
                options["AWS_ALLOW_HTTP"] = "true"
        for name, secret in (
            ("AWS_ACCESS_KEY_ID", self.connection.access_key_id),
            ("AWS_SECRET_ACCESS_KEY", self.connection.secret_access_key),
            ("AWS_SESSION_TOKEN", self.connection.session_token),
        ):
            if secret is not None:
                options[name] = secret.get_secret_value()
        return options

    @cached_property
    def filesystem(self) -> pafs.S3FileSystem:
        """pyarrow's S3 client for landing, metadata and data files (one per storage object)."""
        endpoint = self.connection.endpoint_url
        parts = urlsplit(endpoint) if endpoint else None

        def secret(value) -> str | None:
            return value.get_secret_value() if value is not None else None

        return pafs.S3FileSystem(
            access_key=secret(self.connection.access_key_id),
            secret_key=secret(self.connection.secret_access_key),
            session_token=secret(self.connection.session_token),
            region=self.connection.region,
            endpoint_override=parts.netloc if parts else None,
            scheme=parts.scheme if parts else "https",
            force_virtual_addressing=self.connection.virtual_addressing,
        )

    @property
    def bucket(self) -> str:
        return _key(self.tables_uri).split("/", 1)[0]

    def table_uri(self, table: str) -> str:
        return f"{self.tables_uri}/{table}"

    @property
    def tables_location(self) -> str:
        return self.tables_uri + "/"

    def table_exists(self, table: str) -> bool:
        if table in self._existing_tables:
            return True
        selector = pafs.FileSelector(_key(f"{self.table_uri(table)}/_delta_log"), allow_not_found=True)
        if any(
            DELTA_VERSION_FILE.fullmatch(info.base_name) for info in self.filesystem.get_file_info(selector)
        ):
            self._existing_tables.add(table)
            return True
        return False

    def _meta_key(self, name: str) -> str:
        return _key(f"{self.tables_uri}/{META_FOLDER}/{name}")

    def read_meta(self, name: str) -> str | None:
        try:
            with self.filesystem.open_input_stream(self._meta_key(name)) as stream:
                return stream.read().decode("utf-8").strip()
        except FileNotFoundError:
            return None

    def write_meta(self, name: str, text: str) -> None:
        """One PUT: an object appears whole or not at all."""
        with self.filesystem.open_output_stream(self._meta_key(name)) as stream:
            stream.write((text + "\n").encode("utf-8"))

    def _landing_key(self, source_file: str) -> str:
        return _key(f"{self.landing_root_uri}/{source_file.removeprefix('landing/')}")

    def _landing_spool(self, source_file: str) -> Path:
        return self.spool_root / "landing" / source_file.removeprefix("landing/")

    def _exists(self, key: str) -> bool:
        return self.filesystem.get_file_info(key).type == pafs.FileType.File

    def local_path(self, source_file: str) -> Path:
        """The spool copy, downloaded when missing. The object is asked for first every time, so a
        file that retention or an erasure removed (from any machine) is never read from the spool."""
        local = self._landing_spool(source_file)
        if not self._exists(self._landing_key(source_file)):
            local.unlink(missing_ok=True)
            return local
        if not local.is_file():
            self._download(self._landing_key(source_file), local)
        return local

    def landing_exists(self, source_file: str) -> bool:
        return self._exists(self._landing_key(source_file))

    def remove_landing(self, source_file: str) -> bool:
        self._landing_spool(source_file).unlink(missing_ok=True)
        key = self._landing_key(source_file)
        if not self._exists(key):
            return False
        self.filesystem.delete_file(key)
        return True

    def landing_copies(self, sha256: str) -> list[str]:
        folder = _key(f"{self.landing_root_uri}/{sha256[:2]}")
        found = self.filesystem.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
        names = sorted(info.base_name for info in found if info.base_name.startswith(sha256))
        return [f"landing/{sha256[:2]}/{name}" for name in names]

    def land(self, path: Path) -> LandedBytes:
        """Hashed while copied into the spool, then uploaded in one PUT unless the address holds the
        bytes already; the spool copy stays as the readers' local copy."""
        partial = partial_copy_path(self.spool_root / "landing" / ".incoming", path)
        remove_abandoned_partials(partial.parent)
        try:
            sha256, size = copy_hashing(path, partial)
            source_file = self.landing_uri(sha256, path.suffix)
            key = self._landing_key(source_file)
            if not self._exists(key):
                self._upload(partial, key)
            local = self._landing_spool(source_file)
            local.parent.mkdir(parents=True, exist_ok=True)
            partial.replace(local)
        finally:
            partial.unlink(missing_ok=True)
        return LandedBytes(sha256=sha256, source_file=source_file, size=size)

    def data_file_path(self, table: str, relative: str) -> Path:
        local = self.spool_root / "tables" / table / relative
        local.parent.mkdir(parents=True, exist_ok=True)
        return local

    def publish_data_file(self, table: str, relative: str, local: Path) -> None:
        self._upload(local, _key(f"{self.table_uri(table)}/{relative}"))

    def release_data_file(self, local: Path) -> None:
        local.unlink(missing_ok=True)

    def copy_data_file(self, table: str, relative: str, target: Path) -> None:
        self._download(_key(f"{self.table_uri(table)}/{relative}"), target)

    def data_files_in(self, table: str, folder: str) -> list[str]:
        """The store's objects under the folder, and the spool's: a writer killed before its upload
        leaves its file (rows in the clear) only in the spool."""
        prefix = _key(f"{self.table_uri(table)}/")
        selector = pafs.FileSelector(prefix + folder, recursive=True, allow_not_found=True)
        stored = {
            info.path.removeprefix(prefix)
            for info in self.filesystem.get_file_info(selector)
            if info.type == pafs.FileType.File
        }
        spool = self.spool_root / "tables" / table
        spooled = {
            path.relative_to(spool).as_posix() for path in (spool / folder).rglob("*") if path.is_file()
        }
        return sorted(relative for relative in stored | spooled if not relative.startswith(DELTA_LOG))

    def remove_data_files(self, table: str, relatives: list[str]) -> None:
        for relative in relatives:
            key = _key(f"{self.table_uri(table)}/{relative}")
            if self._exists(key):
                self.filesystem.delete_file(key)
            (self.spool_root / "tables" / table / relative).unlink(missing_ok=True)

    def _upload(self, local: Path, key: str) -> None:
        with local.open("rb") as source, self.filesystem.open_output_stream(key) as target:
            shutil.copyfileobj(source, target, HASH_CHUNK_BYTES)

    def _download(self, key: str, local: Path) -> None:
        """To a temporary name, then renamed: a reader never sees half a file."""
        local.parent.mkdir(parents=True, exist_ok=True)
        partial = local.with_name(f".{local.name}.{os.getpid()}.partial")
        try:
            with self.filesystem.open_input_stream(key) as source, partial.open("wb") as target:
                shutil.copyfileobj(source, target, HASH_CHUNK_BYTES)
            partial.replace(local)
        finally:
            partial.unlink(missing_ok=True)


def _key(uri: str) -> str:
    """`s3://bucket/some/key` as pyarrow's S3 file system names it: `bucket/some/key`."""
    return uri.removeprefix("s3://")


def storage_for_home(landing_dir: Path, warehouse_dir: Path) -> LocalStorage:
    """The storage of one Throughline home: landing files and `warehouse/tables/<table>` Delta tables."""
    return LocalStorage(landing_root=landing_dir, tables_root=warehouse_dir / "tables")


def storage_for(settings: ThroughlineSettings) -> WarehouseStorage:
    """The storage the settings choose: the home folder, or the object store of THROUGHLINE_WAREHOUSE_URI."""
    if settings.warehouse_uri is None or settings.object_store is None:
        return storage_for_home(settings.landing_dir, settings.warehouse_dir)
    return ObjectStorage(
        tables_uri=f"{settings.warehouse_uri}/tables",
        landing_root_uri=settings.landing_uri or f"{settings.warehouse_uri}/landing",
        connection=settings.object_store,
        spool_root=settings.work_dir / "spool",
    )
