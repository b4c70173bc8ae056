"""docs/connectors.md: its example feed specs are valid, complete, and use every source setting."""

from __future__ import annotations

import re

import yaml

from schemas.feed_spec import spec_problems
from schemas.sources import HttpApiSource, SftpSource
from tests.conftest import REPO_ROOT

DOC = REPO_ROOT / "docs" / "connectors.md"


def _examples() -> list[dict]:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)
    return [yaml.safe_load(block) for block in blocks]


def test_the_examples_are_valid_feed_specs_with_a_source() -> None:
    examples = _examples()
    assert [example["source"]["type"] for example in examples] == ["sftp", "api"]
    for example in examples:
        spec, problems = spec_problems(example)
        assert problems == [] and spec is not None
    sftp, api = (spec_problems(example)[0] for example in examples)
    assert isinstance(sftp.source, SftpSource) and isinstance(api.source, HttpApiSource)


def test_the_examples_show_every_source_setting() -> None:
    sftp, api = (set(example["source"]) for example in _examples())
    assert set(SftpSource.model_fields) - sftp == {"private_key_passphrase_env"}
    assert set(HttpApiSource.model_fields) - api == {"page_param", "first_page", "max_pages"}
    text = DOC.read_text(encoding="utf-8")
    for name in [*SftpSource.model_fields, *HttpApiSource.model_fields]:
        assert f"`{name}`" in text or f"{name}:" in text, f"docs/connectors.md does not mention {name}"
