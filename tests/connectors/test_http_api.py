"""The HTTP API channel against the distributor API simulator, over real HTTP on 127.0.0.1.

Pagination (cursor and page), the incremental watermark, 429 with Retry-After, 500, timeouts,
malformed pages (earlier pages kept), a refused token, and the pull file: one raw page per line.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from connectors.channel import MissingSecretError
from connectors.http_api import (
    ApiAuthError,
    ApiChannel,
    ApiPageError,
    ApiRequestError,
    HttpApiConnector,
    later_watermark,
    parse_retry_after,
)
from sampledata.api_simulator import sample_records
from tests.connectors.servers import API_ENVIRON, API_TOKEN, TOKEN_ENV, api_source, listing
from tests.guarantees import Figures

FAST = {"backoff_seconds": 0.05}


def _pages(path: Path) -> list[dict]:
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b"", "the pull file ends with a newline"
    return [json.loads(line) for line in lines[:-1]]


def _records(path: Path) -> list[dict]:
    return [record for page in _pages(path) for record in page["data"]]


@pytest.mark.parametrize("pagination", ["cursor", "page"])
def test_a_pull_lands_every_page_as_one_json_line(api_server, tmp_path: Path, pagination: str) -> None:
    simulator = api_server(pagination=pagination)
    connector = HttpApiConnector(api_source(simulator), environ=API_ENVIRON, **FAST)
    result = connector.pull(tmp_path / "pull.jsonl")

    assert (result.pages, result.records) == (3, 250)
    assert _records(result.path) == simulator.records
    assert (
        result.watermark == max(r["updated_at"] for r in simulator.records)
        and result.previous_watermark is None
    )
    assert listing(tmp_path) == ["pull.jsonl"]
    assert connector.requests_sent == 3


def test_the_pull_file_holds_the_raw_bodies(api_server, tmp_path: Path) -> None:
    simulator = api_server()
    result = HttpApiConnector(api_source(simulator), environ=API_ENVIRON, **FAST).pull(
        tmp_path / "pull.jsonl"
    )
    first_line = result.path.read_bytes().split(b"\n")[0]
    # The simulator writes json.dumps(body) with default separators: byte for byte the same line.
    assert first_line == json.dumps(_pages(result.path)[0]).encode()


def test_the_watermark_pulls_only_what_changed(api_server, tmp_path: Path) -> None:
    simulator = api_server()
    channel = ApiChannel("northwind_api", api_source(simulator), environ=API_ENVIRON, **FAST)
    first = channel.poll(None, tmp_path / "first")
    assert len(first.fetched) == 1 and first.fetched[0].channel == "api"
    assert len(_records(first.fetched[0].local_path)) == 250

    nothing = channel.poll(first.state, tmp_path / "nothing")
    assert nothing.fetched == [] and listing(tmp_path / "nothing") == []
    assert json.loads(nothing.state)["watermark"] == json.loads(first.state)["watermark"]

    changed = sample_records(260)[250:]
    for record in changed:
        record["updated_at"] = "2025-02-01T08:00:00Z"
    simulator.add_records(changed)
    second = channel.poll(nothing.state, tmp_path / "second")
    assert [r["invoice_number"] for r in _records(second.fetched[0].local_path)] == [
        r["invoice_number"] for r in changed
    ]
    assert json.loads(second.state)["watermark"] == "2025-02-01T08:00:00Z"
    assert "updated_since=2025-01-06T10%3A09%3A00Z" in simulator.log.entries[-1][1]


def test_429_is_retried_after_the_time_retry_after_asks(api_server, tmp_path: Path) -> None:
    simulator = api_server(rate_limit_every=2, retry_after_seconds=1)
    started = time.monotonic()
    result = HttpApiConnector(api_source(simulator), environ=API_ENVIRON, **FAST).pull(
        tmp_path / "pull.jsonl"
    )
    assert result.records == 250
    assert simulator.log.statuses() == [200, 429, 200, 429, 200]
    assert time.monotonic() - started >= 2.0  # two waits of Retry-After: 1


def test_500_is_retried_with_backoff(api_server, tmp_path: Path) -> None:
    simulator = api_server(fail_every=3)
    result = HttpApiConnector(api_source(simulator), environ=API_ENVIRON, **FAST).pull(
        tmp_path / "pull.jsonl"
    )
    assert result.records == 250 and result.pages == 3
    assert simulator.log.statuses() == [200, 200, 500, 200]


def test_retries_are_bounded_and_the_error_says_so(api_server, tmp_path: Path) -> None:
    simulator = api_server(fail_every=1)
    connector = HttpApiConnector(api_source(simulator, max_retries=2), environ=API_ENVIRON, **FAST)
    with pytest.raises(
        ApiRequestError, match=r"page 1 still answered HTTP 500 after 3 attempt\(s\)"
    ) as raised:
        connector.pull(tmp_path / "pull.jsonl")
    assert connector.requests_sent == 3 and simulator.log.statuses() == [500, 500, 500]
    assert raised.value.path is None and listing(tmp_path) == []


def test_a_slow_answer_times_out_and_is_retried(api_server, tmp_path: Path) -> None:
    simulator = api_server(slow_every=2, slow_seconds=1.5)
    connector = HttpApiConnector(api_source(simulator, timeout_seconds=0.5), environ=API_ENVIRON, **FAST)
    result = connector.pull(tmp_path / "pull.jsonl")
    assert result.records == 250
    assert connector.requests_sent == 5  # pages 2 and 3 each timed out once


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("not_json", r"page 2 of http://127\.0\.0\.1:\d+/v1/sellout is not JSON"),
        (
            "no_records",
            r"page 2 of http://127\.0\.0\.1:\d+/v1/sellout has no records_path 'data' \(found: \['items', 'meta'\]\)",
        ),
    ],
)
def test_a_malformed_page_is_a_clear_error_that_keeps_earlier_pages(
    api_server, tmp_path: Path, kind: str, expected: str
) -> None:
    simulator = api_server(malformed_page=2, malformed_kind=kind)
    channel = ApiChannel("northwind_api", api_source(simulator), environ=API_ENVIRON, **FAST)
    with pytest.raises(ApiPageError, match=expected) as raised:
        channel.poll(None, tmp_path)
    error = raised.value
    assert error.pages_kept == 1 and error.path is not None
    assert "the 1 earlier page(s) are kept in" in str(error)
    assert _records(error.path) == simulator.records[:100]
    assert listing(tmp_path) == [error.path.name]  # no temporary file left beside it


def test_a_refused_token_is_not_retried(api_server, tmp_path: Path) -> None:
    simulator = api_server()
    connector = HttpApiConnector(api_source(simulator), environ={TOKEN_ENV: "wrong-token"}, **FAST)
    with pytest.raises(ApiAuthError, match=f"the token in {TOKEN_ENV} was refused; not retried") as raised:
        connector.pull(tmp_path / "pull.jsonl")
    assert "wrong-token" not in str(raised.value)
    assert connector.requests_sent == 1 and listing(tmp_path) == []


def test_a_missing_token_names_the_variable(
    api_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    simulator = api_server()
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    with pytest.raises(MissingSecretError, match=f"environment variable {TOKEN_ENV} is not set"):
        HttpApiConnector(api_source(simulator)).pull(tmp_path / "pull.jsonl")
    monkeypatch.setenv(TOKEN_ENV, API_TOKEN)  # read from the process environment by default
    assert HttpApiConnector(api_source(simulator)).pull(tmp_path / "pull.jsonl").records == 250


def test_secrets_never_reach_a_log_line_or_a_message(
    api_server, tmp_path: Path, caplog: pytest.LogCaptureFixture, figures: Figures
) -> None:
    caplog.set_level("DEBUG")
    messages: list[str] = []
    simulator = api_server(rate_limit_every=3, retry_after_seconds=0, fail_every=4)
    channel = ApiChannel("northwind_api", api_source(simulator), environ=API_ENVIRON, **FAST)
    polled = channel.poll(None, tmp_path / "ok")
    messages += [repr(channel), polled.state, channel.source.model_dump_json(), repr(polled.fetched)]
    for switches, environ in (
        ({"malformed_page": 2}, API_ENVIRON),
        ({"fail_every": 1}, API_ENVIRON),
        ({}, {TOKEN_ENV: API_TOKEN + "-revoked"}),
    ):
        bad = api_server(**switches)
        with pytest.raises(Exception) as raised:
            HttpApiConnector(api_source(bad, max_retries=1), environ=environ, **FAST).pull(
                tmp_path / "bad.jsonl"
            )
        messages += [str(raised.value), repr(raised.value)]
    assert any(record.name.startswith("httpx") for record in caplog.records), "httpx's log was not captured"
    assert any(record.name.startswith("httpcore") for record in caplog.records), (
        "httpcore's DEBUG log was not captured"
    )
    logged = [record.getMessage() for record in caplog.records] + [
        record.exc_text or "" for record in caplog.records
    ]
    for text in logged + messages:
        assert API_TOKEN not in text
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert API_TOKEN.encode() not in path.read_bytes()
    figures.add(faults=3)  # a malformed page, a failing server, a revoked token


def test_retry_after_and_watermark_helpers() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None
    assert later_watermark(None, "2025-01-02T00:00:00Z") == "2025-01-02T00:00:00Z"
    assert later_watermark("2025-01-02T00:00:00Z", "2025-01-01T23:00:00-02:00") == "2025-01-01T23:00:00-02:00"
    assert later_watermark("2025-01-02T00:00:00Z", "2025-01-01T00:00:00Z") == "2025-01-02T00:00:00Z"
    assert later_watermark("9", 10) == "10"
    assert later_watermark("x", None) == "x"
