"""A distributor API simulator: real HTTP on 127.0.0.1 serving sell-out records as JSON pages.

For the demo and the tests. Switches make it behave like the APIs Throughline meets: cursor or
page pagination, a token, rate limiting (429 + Retry-After), failures (500), slow answers and a
malformed page. Only serving belongs here; nothing of the project is imported.

    GET /v1/sellout?page_size=N[&cursor=C | &page=P][&updated_since=ISO]
    -> {"data": [record, ...], "meta": {"next_cursor": C | null, "page": P, "total_pages": T}}

Records carry `updated_at` (ISO 8601, UTC); `updated_since` returns records changed strictly after it.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
SELLOUT_PATH = "/v1/sellout"
MAX_PAGE_SIZE = 1000


@dataclass
class SimulatorSettings:
    """The switches. Counters ('every Nth') count every request the server receives, from 1."""

    pagination: Literal["cursor", "page"] = "cursor"
    default_page_size: int = 100
    token: str | None = None
    rate_limit_every: int | None = None
    retry_after_seconds: int = 1
    fail_every: int | None = None
    slow_every: int | None = None
    slow_seconds: float = 0.0
    malformed_page: int | None = None
    malformed_kind: Literal["not_json", "no_records"] = "not_json"


def sample_records(
    count: int = 250, *, start: date = date(2025, 1, 6), seed: int = 7
) -> list[dict[str, Any]]:
    """`count` deterministic sell-out records, one line per invoice, changed one minute apart."""
    skus = ["NW-1001", "NW-1002", "NW-2040", "NW-3300", "NW-4512"]
    resellers = [
        ("Harbor Office Supply", "98101", "US"),
        ("Summit IT Partners", "80202", "US"),
        ("Lakeside Computers", "60601", "US"),
        ("Bayview Systems", "94105", "US"),
    ]
    changed = datetime(start.year, start.month, start.day, 6, 0, tzinfo=UTC)
    records = []
    for index in range(count):
        mix = (index * 7919 + seed) % 1009
        sku = skus[mix % len(skus)]
        name, postal, country = resellers[mix % len(resellers)]
        quantity = 1 + mix % 9
        price = 10 + (mix % 50) * 3.5
        records.append(
            {
                "invoice_number": f"API{100000 + index}",
                "invoice_line": 1,
                "transaction_date": (start + timedelta(days=index % 7)).isoformat(),
                "reseller_name": name,
                "reseller_postal_code": postal,
                "reseller_country": country,
                "distributor_sku": sku,
                "quantity": quantity,
                "unit_price": f"{price:.2f}",
                "net_amount": f"{price * quantity:.2f}",
                "currency": "USD",
                "updated_at": (changed + timedelta(minutes=index)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        )
    return records


@dataclass
class SimulatorLog:
    """What the simulator answered: one (status, path with query) per request."""

    entries: list[tuple[int, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, status: int, target: str) -> int:
        with self.lock:
            self.entries.append((status, target))
            return len(self.entries)

    def statuses(self) -> list[int]:
        with self.lock:
            return [status for status, _ in self.entries]


class _State:
    def __init__(self, settings: SimulatorSettings, records: list[dict[str, Any]]) -> None:
        self.settings = settings
        self.records = list(records)
        self.lock = threading.Lock()
        self.requests = 0
        self.log = SimulatorLog()

    def next_request_number(self) -> int:
        with self.lock:
            self.requests += 1
            return self.requests


def _is_due(every: int | None, number: int) -> bool:
    return bool(every) and number % every == 0  # type: ignore[operator]


def _changed_after(record: dict[str, Any], since: str | None) -> bool:
    if not since:
        return True
    try:
        instant = datetime.fromisoformat(since.replace("Z", "+00:00"))
        changed = datetime.fromisoformat(str(record["updated_at"]).replace("Z", "+00:00"))
    except ValueError:
        return True
    return changed > instant


class _Handler(BaseHTTPRequestHandler):
    server_version = "DistributorAPISimulator/1.0"
    protocol_version = "HTTP/1.1"

    @property
    def state(self) -> _State:
        return self.server.state  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("api simulator: " + format, *args)

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.state.log.add(status, self.path)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), headers)

    def do_GET(self) -> None:
        state = self.state
        settings = state.settings
        number = state.next_request_number()
        if settings.slow_seconds and (settings.slow_every is None or _is_due(settings.slow_every, number)):
            time.sleep(settings.slow_seconds)
        parts = urlsplit(self.path)
        if parts.path != SELLOUT_PATH:
            self._json(404, {"error": "not found"})
            return
        if settings.token is not None and self.headers.get("Authorization") != f"Bearer {settings.token}":
            self._json(401, {"error": "missing or invalid token"})
            return
        if _is_due(settings.rate_limit_every, number):
            self._json(429, {"error": "rate limited"}, {"Retry-After": str(settings.retry_after_seconds)})
            return
        if _is_due(settings.fail_every, number):
            self._json(500, {"error": "internal error"})
            return
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        try:
            size = min(MAX_PAGE_SIZE, max(1, int(query.get("page_size", settings.default_page_size))))
        except ValueError:
            self._json(400, {"error": "page_size must be a number"})
            return
        with state.lock:
            matching = [r for r in state.records if _changed_after(r, query.get("updated_since"))]
        matching.sort(key=lambda r: (str(r["updated_at"]), str(r.get("invoice_number", ""))))
        total_pages = max(1, -(-len(matching) // size))
        if settings.pagination == "page":
            try:
                page = max(1, int(query.get("page", "1")))
            except ValueError:
                self._json(400, {"error": "page must be a number"})
                return
            offset = (page - 1) * size
        else:
            cursor = query.get("cursor")
            try:
                offset = int(base64.urlsafe_b64decode(cursor.encode()).decode()) if cursor else 0
            except ValueError:
                self._json(400, {"error": "invalid cursor"})
                return
            page = offset // size + 1
        chunk = matching[offset : offset + size]
        if settings.malformed_page is not None and page == settings.malformed_page:
            if settings.malformed_kind == "not_json":
                self._send(200, b'{"data": [{"invoice_number": "API1", <html>upstream error</html>')
            else:
                self._json(200, {"items": chunk, "meta": {}})
            return
        next_offset = offset + size
        next_cursor = (
            base64.urlsafe_b64encode(str(next_offset).encode()).decode()
            if settings.pagination == "cursor" and next_offset < len(matching)
            else None
        )
        self._json(
            200,
            {"data": chunk, "meta": {"next_cursor": next_cursor, "page": page, "total_pages": total_pages}},
        )


@dataclass
class RunningSimulator:
    """A started simulator: its port and base URL, its log, switches to change, and stop()."""

    port: int
    settings: SimulatorSettings
    log: SimulatorLog
    _state: _State = field(repr=False)
    _server: ThreadingHTTPServer = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def records(self) -> list[dict[str, Any]]:
        with self._state.lock:
            return list(self._state.records)

    def add_records(self, records: list[dict[str, Any]]) -> None:
        """Publish more (or changed) records, as a distributor does between pulls."""
        with self._state.lock:
            self._state.records.extend(records)

    def stop(self) -> None:
        """Stop serving and end the server's thread."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> RunningSimulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def start_api_simulator(
    settings: SimulatorSettings | None = None,
    records: list[dict[str, Any]] | None = None,
    *,
    port: int = 0,
) -> RunningSimulator:
    """Serve `records` (default: `sample_records()`) on 127.0.0.1 (port 0: any free port) in a thread."""
    settings = settings or SimulatorSettings()
    state = _State(settings, sample_records() if records is None else records)
    server = _Server((LOOPBACK, port), _Handler)
    server.state = state  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return RunningSimulator(
        port=server.server_address[1],
        settings=settings,
        log=state.log,
        _state=state,
        _server=server,
        _thread=thread,
    )


def stop_api_simulator(simulator: RunningSimulator) -> None:
    """Stop a simulator started by `start_api_simulator` (same as `simulator.stop()`)."""
    simulator.stop()
