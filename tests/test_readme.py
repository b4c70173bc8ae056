"""The README's promises, run as a new user would: `throughline demo` (what `make run` runs), twice,
then every query snippet of the README against the warehouse it built.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

BIN = Path(sys.executable).parent
README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=900, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def _query(sql: str, env: dict[str, str]) -> list[str]:
    return _run([str(BIN / "throughline"), "query", sql, "--format", "csv"], env).stdout.splitlines()


@pytest.fixture(scope="module")
def demo_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("readme") / "home"
    env = {
        k: v for k, v in os.environ.items() if k not in ("THROUGHLINE_CUSTOMER_KEY_SECRET", "DAGSTER_HOME")
    }
    env["THROUGHLINE_HOME"] = str(home)
    first = _run([str(BIN / "throughline"), "demo"], env)
    assert "rows_quarantined" in first.stdout  # the per-distributor summary
    return env


def test_make_run_acceptance_and_idempotence(demo_env: dict[str, str]) -> None:
    assert int(_query("select count(distinct distributor_id) from sellout", demo_env)[1]) >= 5
    assert (
        _query(
            "select count(*) from loads where status = 'loaded' and rows_read - rows_loaded - rows_quarantined <> 0",
            demo_env,
        )[1]
        == "0"
    )
    assert int(_query("select count(*) from quarantine", demo_env)[1]) > 0
    before = _query("select count(*), sum(net_amount) from sellout", demo_env)
    _run([str(BIN / "throughline"), "demo"], demo_env)  # `make run` again
    assert _query("select count(*), sum(net_amount) from sellout", demo_env) == before


def test_readme_shell_snippets(demo_env: dict[str, str]) -> None:
    home = demo_env["THROUGHLINE_HOME"]
    commands = [
        line.strip()
        for block in re.findall(r"```sh\n(.*?)```", README, flags=re.S)
        for line in block.splitlines()
        if line.strip().startswith(
            (".venv/bin/throughline query", ".venv/bin/throughline status", ".venv/bin/duckdb")
        )
    ]
    assert len(commands) >= 3
    for command in commands:
        command = command.split("  #")[0].replace("~/.throughline", home).replace(".venv/bin/", f"{BIN}/")
        result = subprocess.run(
            command, shell=True, env=demo_env, capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0, f"{command}\n{result.stderr}"
        assert result.stdout.strip(), command


def test_readme_python_snippets(demo_env: dict[str, str]) -> None:
    snippets = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    assert len(snippets) >= 2
    for snippet in snippets:
        result = subprocess.run(
            [sys.executable, "-c", snippet], env=demo_env, capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0, f"{snippet}\n{result.stderr}"
        assert result.stdout.strip()
