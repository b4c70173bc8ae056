"""The import rules of docs/architecture.md, checked on the source: data moves one way.

connectors bring bytes, transforms make records, warehouse stores them, ingest runs the use cases,
pipelines say when, cli parses and prints. A module may import only the packages its row allows.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

PROJECT_PACKAGES = (
    "schemas",
    "transforms",
    "connectors",
    "warehouse",
    "reference",
    "marts",
    "reports",
    "ingest",
    "pipelines",
    "cli",
    "sampledata",
)
ALLOWED: dict[str, set[str]] = {
    "schemas": {"schemas"},
    "transforms": {"schemas", "transforms"},
    "connectors": {"schemas", "connectors"},
    "warehouse": {"schemas", "warehouse"},
    "reference": {"schemas", "transforms", "reference"},
    "marts": {"schemas", "reference", "marts"},
    "reports": {"schemas", "reports"},
    "ingest": {"schemas", "transforms", "reference", "marts", "reports", "connectors", "warehouse", "ingest"},
    "pipelines": {"schemas", "connectors", "warehouse", "ingest", "pipelines"},
    "cli": {"schemas", "connectors", "warehouse", "ingest", "cli", "sampledata", "transforms"},
    "sampledata": {"sampledata"},
}
"""Which project packages each package may import (`cli` may import `transforms` only for the
error type of a read, never a reader: see `test_cli_imports_no_reader`)."""
DAGSTER_ALLOWED = {"pipelines"}


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
            found += [f"{node.module}.{alias.name}" for alias in node.names]
    return found


def _modules(package: str) -> list[Path]:
    return sorted((REPO_ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", PROJECT_PACKAGES)
def test_packages_import_only_what_their_layer_allows(package: str) -> None:
    assert _modules(package), f"{package}/ has no modules"
    offences = []
    for path in _modules(package):
        for name in _imports(path):
            top = name.split(".")[0]
            if top in PROJECT_PACKAGES and top not in ALLOWED[package]:
                offences.append(f"{path.relative_to(REPO_ROOT)} imports {name}")
            if top == "dagster" and package not in DAGSTER_ALLOWED:
                offences.append(f"{path.relative_to(REPO_ROOT)} imports dagster")
    assert offences == []


def test_warehouse_never_imports_transforms_or_ingest() -> None:
    names = {name for path in _modules("warehouse") for name in _imports(path)}
    assert not {n for n in names if n.split(".")[0] in ("transforms", "ingest")}


def test_cli_imports_no_reader() -> None:
    for path in _modules("cli"):
        for name in _imports(path):
            if name.startswith("transforms"):
                assert name in ("transforms.readers", "transforms.readers.UnreadableFileError"), (
                    f"{path.name} imports {name}: the CLI reads files only through `ingest`"
                )


def test_one_module_decides_routing() -> None:
    """Which spec a file uses and its report date are decided in ingest/route.py alone."""
    deciders = []
    for package in PROJECT_PACKAGES:
        for path in _modules(package):
            text = path.read_text(encoding="utf-8")
            if path.name != "route.py" and (
                "def report_date_of" in text or "def spec_for" in text or "def match_spec" in text
            ):
                deciders.append(str(path.relative_to(REPO_ROOT)))
    assert deciders == []


def test_only_retention_and_erasure_change_landing() -> None:
    """Landing changes after the fact only through `ingest/retention.py` and `ingest/forget.py`,
    each recording the change (docs/architecture.md, "What may change landing")."""
    changers = sorted(
        str(path.relative_to(REPO_ROOT))
        for package in PROJECT_PACKAGES
        for path in _modules(package)
        if {"warehouse.retention.remove_landed", "warehouse.retention.record_changes"} & set(_imports(path))
    )
    assert changers == ["ingest/forget.py", "ingest/retention.py"]
