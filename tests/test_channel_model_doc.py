"""docs/CHANNEL_MODEL.md stays in step with the code: every column of every analyst-facing view is named there."""

from __future__ import annotations

import re

import pytest

from schemas.tables import TABLE_COLUMNS
from tests.conftest import REPO_ROOT
from warehouse.catalog import HIDDEN_COLUMNS, LEDGER_VIEWS, VIEW_TABLES

DOC = (REPO_ROOT / "docs" / "CHANNEL_MODEL.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("view", sorted(VIEW_TABLES))
def test_every_view_column_is_documented(view: str) -> None:
    columns = [c for c in TABLE_COLUMNS[VIEW_TABLES[view]] if c not in HIDDEN_COLUMNS.get(view, ())]
    section = DOC[DOC.index(f"`{view}`") :]
    missing = [c for c in columns if not re.search(rf"\b{re.escape(c)}\b", section)]
    assert missing == [], f"docs/CHANNEL_MODEL.md does not name {view}.{missing}"


@pytest.mark.parametrize("view", sorted(LEDGER_VIEWS))
def test_every_ledger_view_column_is_documented(view: str) -> None:
    section = DOC[DOC.index(f"### `{view}`") :]
    missing = [c for c in LEDGER_VIEWS[view] if not re.search(rf"\b{re.escape(c)}\b", section)]
    assert missing == [], f"docs/CHANNEL_MODEL.md does not name {view}.{missing}"


def test_the_shared_contract_names_are_all_kept() -> None:
    shared = REPO_ROOT.parent / "shared" / "CHANNEL_MODEL.md"
    if not shared.exists():  # a bare clone: the copy is the contract
        return
    for name in re.findall(r"^### `(\w+)`", shared.read_text(encoding="utf-8"), flags=re.M):
        assert f"### `{name}`" in DOC
