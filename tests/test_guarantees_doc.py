"""docs/guarantees.md stays true: every guarantee names tests that exist, and its table is the one
the figures of the last `make guarantees` give (tests/guarantees.py)."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.guarantees import DOC, END, FIGURES_ENV, FIGURES_FILE, GUARANTEES, START, Figures, record_run
from tests.guarantees import render_table as render_guarantees

TEXT = DOC.read_text(encoding="utf-8")
TABLE = TEXT.split(START, 1)[1].split(END, 1)[0].strip()


def _functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}


def test_every_guarantee_is_listed_with_its_tests() -> None:
    rows = TABLE.splitlines()[2:]
    assert len(rows) == len(GUARANTEES)
    for guarantee, row in zip(GUARANTEES, rows, strict=True):
        assert guarantee.sentence in row and guarantee.title in row
        assert guarantee.tests, guarantee.title
        for test in guarantee.tests:
            assert f"`{test}`" in row


@pytest.mark.parametrize(
    "reference",
    sorted(set(re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", TEXT))),
    ids=lambda reference: "::".join(reference),
)
def test_every_test_the_doc_names_exists(reference: tuple[str, str]) -> None:
    path, name = reference
    assert (REPO_ROOT / path).is_file(), path
    assert name in _functions(REPO_ROOT / path), f"{path} has no test {name}"
    assert name.startswith("test_")


def test_the_table_is_the_one_the_last_figures_give() -> None:
    runs = json.loads(FIGURES_FILE.read_text(encoding="utf-8"))["runs"] if FIGURES_FILE.is_file() else {}
    assert render_guarantees(runs) == TABLE, "run `make guarantees` (or `python -m tests.guarantees render`)"


def test_make_guarantees_runs_the_tests_and_renders_the_table() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    target = makefile.split("\nguarantees:", 1)[1].split("\n\n", 1)[0]
    assert FIGURES_ENV in target and "-m tests.guarantees tests" in target
    assert "-m tests.guarantees render" in target


def test_a_run_is_recorded_only_when_asked_and_summed_per_guarantee(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    test = GUARANTEES[0].tests[0]
    figures = Figures()
    figures.add(trials=2, faults=2, rows_checked=100, rows_lost=0)
    monkeypatch.delenv(FIGURES_ENV, raising=False)
    record_run(f"{test}[a]", "passed", 1.0, figures)
    assert list(tmp_path.iterdir()) == []
    target = tmp_path / "figures.json"
    monkeypatch.setenv(FIGURES_ENV, str(target))
    record_run(f"{test}[a]", "passed", 1.0, figures)
    record_run(f"{test}[b]", "failed", 2.0, figures)
    record_run("tests/test_other.py::test_not_a_guarantee", "passed", 1.0, figures)
    runs = json.loads(target.read_text(encoding="utf-8"))["runs"]
    assert sorted(runs) == [f"{test}[a]", f"{test}[b]"]
    row = render_guarantees(runs).splitlines()[2]
    assert "**1 failed**, 2 case(s), 3 s" in row
    assert row.endswith("| 4 | 4 | 200 | 0 |")
