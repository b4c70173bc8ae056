"""docs/marts.md is the marts' contract: it names every column of every mart with its type, and
`marts/` imports nothing but `schemas`, `reference`, Polars and the standard library."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import polars as pl
import pytest

from marts import MART_NAMES, SCHEMAS

REPO_ROOT = Path(__file__).resolve().parents[2]
DOC = REPO_ROOT / "docs" / "marts.md"


def sql_type(dtype: pl.DataType) -> str:
    """The DuckDB type a Delta column of `dtype` reads as, as the doc spells it."""
    if isinstance(dtype, pl.Decimal):
        return f"DECIMAL({dtype.precision},{dtype.scale})"
    if isinstance(dtype, pl.List):
        return f"{sql_type(dtype.inner)}[]"
    if isinstance(dtype, pl.Datetime):
        return "TIMESTAMP"
    names = {
        pl.String: "VARCHAR",
        pl.Date: "DATE",
        pl.Int64: "BIGINT",
        pl.Float64: "DOUBLE",
        pl.Boolean: "BOOLEAN",
    }
    return names[dtype.base_type()]


def documented() -> dict[str, dict[str, str]]:
    """Mart -> column -> type, from each `## \\`mart\\`` section's table."""
    out: dict[str, dict[str, str]] = {}
    current = None
    for line in DOC.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"^## `(\w+)`", line)
        if heading:
            current = out.setdefault(heading.group(1), {})
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if (
            current is not None
            and line.startswith("|")
            and len(cells) >= 3
            and cells[0] not in ("column", "---")
        ):
            assert cells[0] not in current, f"{cells[0]} documented twice"
            current[cells[0]] = cells[1]
    return out


def test_the_doc_names_every_column_of_every_mart_with_its_type() -> None:
    doc = documented()
    assert list(doc) == list(MART_NAMES)
    for name in MART_NAMES:
        assert doc[name] == {column: sql_type(dtype) for column, dtype in SCHEMAS[name].items()}, name


def test_the_doc_names_the_columns_the_builders_return(sample) -> None:
    from marts import build_marts

    doc = documented()
    for name, mart in build_marts(sample.inputs()).items():
        assert mart.columns == list(doc[name]), name


@pytest.mark.parametrize("path", sorted((REPO_ROOT / "marts").glob("*.py")), ids=lambda p: p.name)
def test_marts_import_only_schemas_reference_polars_and_the_standard_library(path: Path) -> None:
    allowed = {"marts", "schemas", "reference", "polars", "__future__"} | set(sys.stdlib_module_names)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    names += [
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0
    ]
    assert sorted({name for name in names if name.split(".")[0] not in allowed}) == []
