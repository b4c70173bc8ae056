"""The README's promises, run as a new user would: `throughline demo` (what `make run` runs), twice,
then every query snippet of the README against the warehouse it built.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

from sampledata.generator import generate_samples, report_weeks
from tests.conftest import REPO_ROOT

BIN = Path(sys.executable).parent
README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")

pytestmark = pytest.mark.system


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
    first = _run([str(BIN / "throughline"), "demo", "--format", "json"], env)
    env["DEMO_SUMMARY"] = first.stdout
    found = re.search(r"\(as of (\d{4}-\d{2}-\d{2})\)", first.stderr)
    assert found, first.stderr[-2000:]
    env["DEMO_AS_OF"] = found[1]  # the demo's sample follows the clock: which weeks it generated
    return env


def test_the_demo_summary_equals_what_the_views_hold(demo_env: dict[str, str]) -> None:
    summary = {row["distributor_id"]: row for row in json.loads(demo_env["DEMO_SUMMARY"])}
    lines = dict(
        line.split(",")
        for line in _query("select distributor_id, count(*) from sellout group by 1", demo_env)[1:]
    )
    assert {d: row["sellout_lines"] for d, row in summary.items() if row["sellout_lines"]} == {
        d: int(n) for d, n in lines.items()
    }
    quarantined = dict(
        line.split(",")
        for line in _query(
            "select l.distributor_id, count(*) from quarantine q join loads l using (load_id) "
            "where l.status in ('loaded', 'superseded') group by 1",
            demo_env,
        )[1:]
    )
    assert {d: row["quarantined"] for d, row in summary.items() if row["quarantined"]} == {
        d: int(n) for d, n in quarantined.items()
    }


def test_make_run_acceptance_and_idempotence(demo_env: dict[str, str]) -> None:
    truth = generate_samples(
        Path(demo_env["THROUGHLINE_HOME"]).parent / "truth", as_of=date.fromisoformat(demo_env["DEMO_AS_OF"])
    )
    assert int(_query("select count(distinct distributor_id) from sellout", demo_env)[1]) == len(
        truth.sellout
    )
    assert (
        _query(
            "select count(*) from loads where status = 'loaded' and rows_read - rows_loaded - rows_quarantined <> 0",
            demo_env,
        )[1]
        == "0"
    )
    assert int(_query("select count(*) from quarantine", demo_env)[1]) == len(truth.bad_records)
    channels = _query(
        "select channel, count(*) from loads where status = 'loaded' group by 1 order by 1", demo_env
    )[1:]
    assert [line.split(",")[0] for line in channels] == ["api", "folder", "sftp"]  # make run pulls two
    before = _query("select count(*), sum(net_amount) from sellout", demo_env)
    # `make run` again (on the same sample: a run on a later day generates the weeks of that day)
    _run([str(BIN / "throughline"), "demo", "--as-of", demo_env["DEMO_AS_OF"]], demo_env)
    assert _query("select count(*), sum(net_amount) from sellout", demo_env) == before


def test_readme_shell_snippets(demo_env: dict[str, str]) -> None:
    commands = [
        line.strip()
        for block in re.findall(r"```sh\n(.*?)```", README, flags=re.S)
        for line in block.splitlines()
        if line.strip().startswith(
            (".venv/bin/throughline query", ".venv/bin/throughline status", ".venv/bin/duckdb")
        )
    ]
    assert len(commands) == 4  # two queries, status and the DuckDB CLI
    for command in commands:
        command = command.split("  #")[0].replace(".venv/bin/", f"{BIN}/")
        result = subprocess.run(
            command, shell=True, env=demo_env, capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0, f"{command}\n{result.stderr}"
        assert result.stdout.strip(), command


def test_readme_python_snippets(demo_env: dict[str, str]) -> None:
    snippets = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    assert len(snippets) == 2  # DuckDB and Polars
    for snippet in snippets:
        result = subprocess.run(
            [sys.executable, "-c", snippet], env=demo_env, capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0, f"{snippet}\n{result.stderr}"
        assert result.stdout.strip()


FIX_ROWS = {
    "partners approve": (
        "partner_aliases.csv",
        "rheinland_de,Global Reach Solutions Deutschland GmbH,60311,DE,P0015,",
    ),
    "skus map": ("sku_map.csv", "northwind_us,NW-100336-12,CBL-C6-3M,12"),
    "rates add": ("fx_rates.csv", "2026-11-02,SEK,0.090736"),
}
"""Each README fix command, and the sample reference row it puts back (the test takes it out first)."""


def _demo_rate_row(rates: Path, as_of: date, currency: str) -> str:
    """The reference row of `currency`'s first rate in the demo sample's third week."""
    week = report_weeks(as_of)[2]
    days = {(week + timedelta(days=n)).isoformat() for n in range(7)}
    lines = rates.read_text(encoding="utf-8").splitlines()
    return min(line for line in lines if line.split(",")[0] in days and line.split(",")[1] == currency)


def test_readme_fix_commands(demo_env: dict[str, str], tmp_path: Path) -> None:
    commands = [
        line.strip()
        for block in re.findall(r"```sh\n(.*?)```", README, flags=re.S)
        for line in block.splitlines()
        if line.strip().startswith(".venv/bin/throughline ")
        and any(line.strip().split(" ", 1)[1].startswith(kind) for kind in (*FIX_ROWS, "exceptions"))
    ]
    assert [c.split()[1] for c in commands] == ["exceptions", "partners", "skus", "rates"]
    home = tmp_path / "home"
    shutil.copytree(demo_env["THROUGHLINE_HOME"], home, symlinks=True)
    env = {**demo_env, "THROUGHLINE_HOME": str(home)}
    totals = "select count(partner_id), count(sku), sum(net_amount_base), sum(quantity) from sellout"
    before = _query(totals, env)
    for command in commands:
        argv = shlex.split(command.replace(".venv/bin/", f"{BIN}/"))
        kind = " ".join(argv[1:3])
        if kind not in FIX_ROWS:
            result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
            assert result.returncode == 0, result.stderr  # nothing to fix in the sample
            assert "0 resellers without a partner_id" in result.stderr
            continue
        file_name, row = FIX_ROWS[kind]
        path = home / "reference" / file_name
        if kind == "rates add":
            # The README's rate is of the fixed sample's weeks (as the shipped set holds it); the demo's
            # weeks follow the clock, so the test takes out and puts back a rate of the demo's own weeks.
            assert row in (REPO_ROOT / "sampledata" / "reference" / file_name).read_text(encoding="utf-8")
            row = _demo_rate_row(path, date.fromisoformat(demo_env["DEMO_AS_OF"]), argv[3])
            argv[argv.index("--date") + 1], argv[argv.index("--rate") + 1] = (
                row.split(",")[0],
                row.split(",")[2],
            )
        lines = path.read_text(encoding="utf-8").splitlines()
        kept = [line for line in lines if not line.startswith(row)]
        assert len(kept) == len(lines) - 1, f"{file_name} holds {row}"
        path.write_text("\n".join(kept) + "\n", encoding="utf-8")
        _run([str(BIN / "throughline"), "reference", "refresh"], env)
        if kind != "skus map":  # no sample file reports the pack (sampledata.reference.PACKS)
            assert _query(totals, env) != before, f"taking out {row} changed no line"
        result = _run(argv, env)
        assert "applied to history" in result.stderr
        assert any(line.startswith(row) for line in path.read_text(encoding="utf-8").splitlines())
    assert _query(totals, env) == before


def test_make_run_builds_the_marts_and_scorecards(demo_env: dict[str, str], tmp_path: Path) -> None:
    home = Path(demo_env["THROUGHLINE_HOME"])
    partners = _query("select partner_id from partners order by 1", demo_env)[1:]
    months = _query(
        "select distinct date_trunc('month', transaction_date) from sellout where partner_id is not null",
        demo_env,
    )[1:]
    grid = _query(
        "select count(*), count(distinct partner_id), count(distinct month) from partner_performance",
        demo_env,
    )[1]
    assert grid == f"{len(partners) * len(months)},{len(partners)},{len(months)}"
    columns = _query("select * from partner_performance limit 0", demo_env)[0].split(",")
    for name in ("partner_id", "month", "revenue_base", "units", "quota", "attainment_pct", "tier"):
        assert name in columns
    assert {"next_tier", "gap_to_next_tier"} <= set(columns)
    totals = _query(
        "select (select sum(revenue_base) from partner_performance) = "
        "(select sum(net_amount_base) from sellout where partner_id is not null)",
        demo_env,
    )[1]
    assert totals == "true"
    not_received = _query(
        "select distributor_id, status, period_start from distributor_data_quality where status <> 'received'",
        demo_env,
    )[1:]
    last_week = report_weeks(date.fromisoformat(demo_env["DEMO_AS_OF"]))[-1]
    assert not_received == [f"albion_uk,missing,{last_week}"]  # the sample's deliberately missing report
    supply = _query(
        "select distinct distributor_id from inventory_health where weeks_of_supply is not null order by 1",
        demo_env,
    )[1:]
    assert supply == ["keystone_edi", "northwind_us"]
    pages = sorted(path.stem for path in (home / "reports" / "partners").glob("*.html"))
    assert pages == partners and (home / "reports" / "index.html").is_file()

    out = tmp_path / "export"
    _run([str(BIN / "throughline"), "export", "--partner", partners[0], "--out", str(out)], demo_env)
    exported = pl.read_csv(out / f"{partners[0]}-sellout.csv", infer_schema=False)
    assert exported.height > 0 and set(exported["partner_id"]) == {partners[0]}
    others = set(
        _query(f"select distinct reseller_name from sellout where partner_id <> '{partners[0]}'", demo_env)[
            1:
        ]
    ) - set(exported["reseller_name"])
    text = (out / f"{partners[0]}-sellout.csv").read_text(encoding="utf-8")
    assert not [name for name in others if name.strip('"') and name.strip('"') in text]


def test_readme_export_and_pull_commands(demo_env: dict[str, str], tmp_path: Path) -> None:
    lines = [
        line.strip().split("  #")[0]
        for block in re.findall(r"```sh\n(.*?)```", README, flags=re.S)
        for line in block.splitlines()
        if line.strip().startswith((".venv/bin/throughline export", ".venv/bin/throughline pull"))
    ]
    assert [line.split()[1] for line in lines] == ["pull", "export"]
    pull, export = (shlex.split(line.replace(".venv/bin/", f"{BIN}/")) for line in lines)
    refused = subprocess.run(pull, env=demo_env, capture_output=True, text=True, timeout=300)
    # The demo's servers stop with the demo, and its specs drop their `source:` sections with them.
    assert refused.returncode == 2 and "has a `source:` section" in refused.stderr
    export[export.index("--out") + 1] = str(tmp_path / "export")
    _run(export, demo_env)
    assert sorted(p.name for p in (tmp_path / "export").iterdir()) == [
        "P0001-sellout.csv",
        "P0001-sellout.parquet",
    ]


def test_readme_retention_and_forget_commands(demo_env: dict[str, str], tmp_path: Path) -> None:
    from tests.traces import files_holding

    lines = [
        line.strip().split("  #")[0]
        for block in re.findall(r"```sh\n(.*?)```", README, flags=re.S)
        for line in block.splitlines()
        if line.strip().startswith((".venv/bin/throughline retention", ".venv/bin/throughline forget"))
    ]
    assert [line.split()[1] for line in lines] == ["retention", "retention", "forget", "forget"]
    home = tmp_path / "home"
    shutil.copytree(demo_env["THROUGHLINE_HOME"], home, symlinks=True)
    env = {**demo_env, "THROUGHLINE_HOME": str(home)}
    email = next(arg for line in lines for arg in shlex.split(line) if "@" in arg)
    assert files_holding(home / "landing", [email])
    lines_before = _query("select count(*), sum(net_amount) from sellout", env)
    said = [_run(shlex.split(line.replace(".venv/bin/", f"{BIN}/")), env).stderr for line in lines]
    assert "0 file(s) received before" in said[0] and "would be deleted" in said[0]
    assert "dry run: nothing changed" in said[2] and "redacted copies replace" in said[3]
    assert files_holding(home, [email]) == {}
    assert _query("select count(*), sum(net_amount) from sellout", env) == lines_before
