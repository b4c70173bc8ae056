"""Searching every file under a folder for values that must not be there (secrets, erased identities),
and reading a home's tables to compare its state before and after.

A byte search alone can miss text: Parquet pages are compressed, JSON escapes characters, a
fixed-width file pads names with spaces, a CSV may be in cp1252, a workbook is a zip. So each file
is searched as text decoded every way it may be written (UTF-8, Latin-1 for cp1252, UTF-16 when it
looks like it, each member of a zip), JSON escapes resolved, lower-cased and with every run of white
space made one space; every Parquet file (Delta data files and checkpoints alike) is also searched
in its decoded rows.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from warehouse.storage import storage_for_home
from warehouse.tables import scan_table

_JSON_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


def normal(text: str) -> str:
    """Lower case, every run of white space (literal or JSON-escaped) one space."""
    text = _JSON_ESCAPE.sub(lambda match: chr(int(match.group(1), 16)), text)
    text = text.replace("\\t", " ").replace("\\n", " ").replace("\\r", " ")
    return re.sub(r"\s+", " ", text).strip().lower()


def _texts(path: Path) -> Iterator[str]:
    data = path.read_bytes()
    if zipfile.is_zipfile(path):  # a workbook: its XML parts are deflated
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                yield archive.read(member).decode("utf-8", errors="replace")
    yield data.decode("utf-8", errors="replace")
    yield data.decode("latin-1")
    for codec in ("utf-16-le", "utf-16-be"):
        if data.count(b"\x00") > len(data) // 4:
            yield data.decode(codec, errors="replace")
    if path.suffix == ".parquet":
        yield repr(pq.read_table(path).to_pylist())


def files_holding(root: Path, values: Iterable[str]) -> dict[str, list[str]]:
    """Every file under `root` (relative path) holding one of `values`, and which ones."""
    needles = sorted({normal(value) for value in values if normal(value)})
    found: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        texts = [normal(text) for text in _texts(path)]
        hits = [needle for needle in needles if any(needle in text for text in texts)]
        if hits:
            found[path.relative_to(root).as_posix()] = hits
    return found


def home_tables(home: Path) -> dict[str, pl.DataFrame]:
    """The rows of a home's core tables, quarantine and loads, each sorted by its key (to compare states)."""
    storage = storage_for_home(home / "landing", home / "warehouse")
    order = {
        "sellout": "line_id",
        "inventory": "line_id",
        "quarantine": ["load_id", "source_row"],
        "loads": "load_id",
    }
    return {table: scan_table(storage, table).collect().sort(key) for table, key in order.items()}
