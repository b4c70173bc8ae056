"""The generated feed-spec reference: true to the models, complete, and committed as generated."""

from __future__ import annotations

import subprocess
import sys

from pydantic import BaseModel

from schemas.specdoc import render_reference, spec_models
from tests.conftest import REPO_ROOT

DOC = REPO_ROOT / "docs" / "feed-spec.md"


def _models() -> list[type[BaseModel]]:
    return list(spec_models())


def test_committed_reference_is_the_generated_one() -> None:
    assert DOC.read_text(encoding="utf-8") == render_reference(), (
        "docs/feed-spec.md is stale: run `python -m schemas.specdoc > docs/feed-spec.md`"
    )


def test_generator_runs_as_documented() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "schemas.specdoc"], capture_output=True, text=True, cwd=REPO_ROOT, check=True
    )
    assert result.stdout == render_reference()


def test_every_field_of_every_model_is_described_in_the_reference() -> None:
    reference = render_reference()
    models = {model.__name__ for model in _models()}
    assert {
        "CsvFormat",
        "ExcelFormat",
        "FixedWidthFormat",
        "FixedWidthColumn",
        "JsonFormat",
        "X12Format",
    } <= models
    assert {"ParsingRules", "ReturnsRule", "TransactionTypes", "PeriodRule", "PeriodGuards"} <= models
    for model in _models():
        assert f'<a id="{model.__name__.lower()}"></a>' in reference
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"
            assert f"| `{field.alias or name}` |" in reference


def test_reference_shows_allowed_values_defaults_and_example() -> None:
    reference = render_reference()
    assert '| `cadence` | text | `"weekly"` | `daily`, `weekly`, `monthly` |' in reference
    assert "`type`: `csv`, `xlsx`, `fixed_width`, `jsonl`, `json`, `x12`" in reference
    assert (
        "keys: `quantity`, `unit_price`, `net_amount`, `quantity_on_hand`, `quantity_on_order`; values: >= 0; <= 9"
        in reference
    )
    assert "pattern `^[a-z0-9][a-z0-9_]*$`" in reference
    assert "| `max_shrink_pct` | number | `50.0` | >= 0; <= 100 |" in reference
    assert "id: northwind_us\n" in reference and reference.rstrip().endswith("```")
