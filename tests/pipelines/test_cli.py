"""The `throughline` CLI as a user runs it: output formats, inspect, feeds, errors that say what to do."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.cli import main
from sampledata.generator import copy_feed_specs, generate_samples


@pytest.fixture
def samples(home: Path, tmp_path: Path) -> Path:
    copy_feed_specs(home / "feeds")
    drop = tmp_path / "drop"
    generate_samples(drop)
    return drop


def test_help_lists_every_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "--help"], capture_output=True, text=True, check=True
    )
    for command in ("demo", "ingest", "inspect", "query", "feeds", "status", "reprocess", "samples"):
        assert command in result.stdout


def test_inspect_prints_valid_records_and_reasons(samples: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = samples / "northwind_us" / "NW_SALES_20261102.csv"
    assert main(["inspect", str(path), "--format", "csv"]) == 0
    captured = capsys.readouterr()
    rows = list(csv.DictReader(io.StringIO(captured.out)))
    assert len(rows) == 42
    assert {"line_id", "transaction_date", "quantity", "net_amount", "source_row"} <= set(rows[0])
    assert "quantity_not_integral" in captured.err
    assert "1 of 43 record(s) would be quarantined" in captured.err


def test_inspect_writes_nothing(samples: Path, home: Path) -> None:
    main(["inspect", str(samples / "albion_uk" / "Albion_SellOut_20261019.xlsx")])
    assert not (home / "warehouse" / "tables").exists()
    assert not (home / "landing").exists() or not any((home / "landing").iterdir())


def test_query_csv_is_rfc4180_with_plain_numbers(samples: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["ingest", str(samples / "rheinland_de" / "RH_Abverkauf_20261019.csv"), "--format", "json"]) == 0
    )
    ingest_out = json.loads(capsys.readouterr().out)
    assert ingest_out[0]["status"] == "loaded" and ingest_out[0]["rows_quarantined"] == 1
    sql = "select reseller_name, sum(net_amount) as net, count(*) as n from sellout group by 1 order by 1"
    assert main(["query", sql, "--format", "csv"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("reseller_name,net,n\r\n")
    rows = list(csv.reader(io.StringIO(out)))
    assert all(float(row[1]) and row[2].isdigit() for row in rows[1:])
    assert any("\n" in row[0] for row in rows[1:]) or all("," not in row[1] for row in rows[1:])


def test_query_error_exits_nonzero_with_message(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["query", "select nope from sellout"]) == 2
    assert "query failed" in capsys.readouterr().err


def test_feeds_list_and_check(samples: Path, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["feeds", "list", "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {f["id"] for f in listed} >= {
        "northwind_us",
        "rheinland_de",
        "albion_uk",
        "nordic_fw",
        "pacific_jsonl",
    }
    (home / "feeds" / "broken.yaml").write_text("id: Bad Id\nname: x\n", encoding="utf-8")
    assert main(["feeds", "check"]) == 2
    err = capsys.readouterr().err
    assert "broken.yaml" in err and "id" in err


def test_ingest_without_secret_says_how_to_set_it(
    samples: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("THROUGHLINE_CUSTOMER_KEY_SECRET")
    assert main(["ingest", str(samples / "northwind_us" / "NW_SALES_20261102.csv")]) == 2
    assert "export THROUGHLINE_CUSTOMER_KEY_SECRET" in capsys.readouterr().err
