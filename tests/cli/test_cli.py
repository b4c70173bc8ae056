"""The `throughline` CLI as a user runs it: output formats, inspect, feeds, errors that say what to do."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from cli.main import main
from sampledata.generator import copy_feed_specs, generate_samples


@pytest.fixture
def samples(home: Path, tmp_path: Path) -> Path:
    copy_feed_specs(home / "feeds")
    drop = tmp_path / "drop"
    generate_samples(drop)
    return drop


def test_help_lists_every_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", "--help"], capture_output=True, text=True, check=True
    )
    for command in (
        "demo",
        "ingest",
        "inspect",
        "query",
        "feeds",
        "status",
        "reprocess",
        "confirm",
        "samples",
        "retention",
        "forget",
    ):
        assert command in result.stdout


def test_inspect_prints_valid_records_and_reasons(samples: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = samples / "northwind_us" / "NW_SALES_20261102.csv"
    code = main(["inspect", str(path), "--format", "csv"])
    assert code == 0
    captured = capsys.readouterr()
    rows = list(csv.DictReader(io.StringIO(captured.out)))
    assert len(rows) == 42
    assert {"line_id", "transaction_date", "quantity", "net_amount", "source_row"} <= set(rows[0])
    assert "quantity_not_integral" in captured.err
    assert "1 of 43 record(s) would be quarantined" in captured.err


def test_inspect_writes_nothing(samples: Path, home: Path) -> None:
    before = sorted(p.relative_to(home) for p in home.rglob("*"))
    assert main(["inspect", str(samples / "albion_uk" / "Albion_SellOut_20261019.xlsx")]) == 0
    assert sorted(p.relative_to(home) for p in home.rglob("*")) == before


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
    assert all("," not in row[1] for row in rows[1:])  # plain numbers: no thousands separators


def test_query_error_exits_nonzero_with_message(samples: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ingest", str(samples / "northwind_us" / "NW_SALES_20261019.csv")]) == 0
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
    assert main(["feeds", "list", "--format", "json"]) == 0  # the other distributors still work
    assert {f["id"] for f in json.loads(capsys.readouterr().out)} >= {"northwind_us", "albion_uk"}


def test_ingest_without_secret_says_how_to_set_it(
    samples: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("THROUGHLINE_CUSTOMER_KEY_SECRET")
    assert main(["ingest", str(samples / "northwind_us" / "NW_SALES_20261102.csv")]) == 2
    assert "export THROUGHLINE_CUSTOMER_KEY_SECRET" in capsys.readouterr().err


def test_a_demo_home_uses_its_key_file_everywhere(
    samples: Path, home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("THROUGHLINE_CUSTOMER_KEY_SECRET")
    home.mkdir(parents=True, exist_ok=True)
    (home / "demo-customer-key.secret").write_text("d" * 64, encoding="utf-8")
    assert main(["ingest", str(samples / "pacific_jsonl" / "pacific_sellout_20261019.jsonl")]) == 0
    capsys.readouterr()
    assert (
        main(
            ["inspect", str(samples / "pacific_jsonl" / "pacific_sellout_20261019.jsonl"), "--format", "json"]
        )
        == 0
    )
    inspected = {r["end_customer_key"] for r in json.loads(capsys.readouterr().out)} - {None}
    assert (
        main(
            [
                "query",
                "select distinct end_customer_key from sellout where end_customer_key is not null",
                "--format",
                "json",
            ]
        )
        == 0
    )
    assert inspected == {r["end_customer_key"] for r in json.loads(capsys.readouterr().out)}


def test_inspect_without_a_key_says_its_hashes_are_throwaway(
    samples: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("THROUGHLINE_CUSTOMER_KEY_SECRET")
    assert main(["inspect", str(samples / "pacific_jsonl" / "pacific_sellout_20261019.jsonl")]) == 0
    assert "throwaway key" in capsys.readouterr().err


def test_a_different_key_is_refused(
    samples: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ingest", str(samples / "northwind_us" / "NW_SALES_20261019.csv")]) == 0
    monkeypatch.setenv("THROUGHLINE_CUSTOMER_KEY_SECRET", "another-key-0123456789abcdef")
    assert main(["ingest", str(samples / "northwind_us" / "NW_SALES_20261026.csv")]) == 2
    assert "not the one this warehouse was built with" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["query", "select 1"], ["status"], ["feeds", "list"]])
def test_reading_commands_create_nothing_in_a_fresh_home(
    home: Path, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(command)
    assert not home.exists()
    if command[0] == "feeds":
        assert code == 0
    else:
        assert code == 2 and "no warehouse in" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("sql", "refused"),
    [
        ("COPY (select 1) TO '{tmp}/x.csv'", "COPY statement is refused"),
        ("ATTACH '{tmp}/x.duckdb' AS x", "ATTACH statement is refused"),
        ("INSTALL httpfs", "statement is refused"),
        ("select * from read_csv('/etc/passwd')", "Permission Error"),
        ("select * from read_json_auto('{home}/landing/*/*')", "Permission Error"),
        ("SET enable_external_access = true", "SET statement is refused"),
        (
            "COPY (select 1) TO '{home}/warehouse/tables/sellout/_delta_log/x.json'",
            "COPY statement is refused",
        ),
    ],
)
def test_query_is_truly_read_only(
    samples: Path, home: Path, tmp_path: Path, sql: str, refused: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ingest", str(samples / "northwind_us" / "NW_SALES_20261019.csv")]) == 0
    capsys.readouterr()
    before = sorted(str(p) for p in [*home.rglob("*"), *tmp_path.rglob("*")])
    assert main(["query", sql.format(tmp=tmp_path, home=home)]) == 2
    assert refused in capsys.readouterr().err
    assert sorted(str(p) for p in [*home.rglob("*"), *tmp_path.rglob("*")]) == before
    assert main(["query", "select count(*) as n from sellout", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["n"] > 0


def test_table_output_never_cuts_a_fix_hint() -> None:
    import polars as pl

    from cli.output import write_frame

    hint = (
        "the file has no column(s) ['Qty'] that feed spec 'acme' maps; its columns are [...]; fix `columns:`"
    )
    stream = io.StringIO()
    write_frame(pl.DataFrame({"source_name": ["x.csv"], "error": [hint * 3]}), "table", stream)
    assert hint * 3 in stream.getvalue()


def test_csv_output_writes_lists_as_json_text() -> None:
    import io

    from cli.output import write_frame

    frame = pl.DataFrame({"partner_id": ["P1", "P2"], "missing": [["Security, Pro", "Wireless"], []]})
    out = io.StringIO()
    write_frame(frame, "csv", out)
    assert out.getvalue() == 'partner_id,missing\r\nP1,"[""Security, Pro"", ""Wireless""]"\r\nP2,[]\r\n'
