"""Pulling records from a distributor's HTTP API (httpx) into one landed file per pull.

What belongs here: the token (read from the environment variable the spec names, at pull time),
cursor or page pagination, the incremental watermark, retries of 429 (honouring Retry-After), 5xx
and timeouts with bounded backoff, and the pull file: JSON lines, one raw page body per line and
nothing else, so a pull is landed, replayed and audited exactly like a dropped file. Turning the
pages into records is the readers' business (`transforms/`), not this module's.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import logging
import os
import random
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from connectors.channel import ChannelName, FetchedFile, Outcome, Poll, read_secret, redact
from schemas.sources import HttpApiSource

log = logging.getLogger(__name__)

# Characters a JSON-lines reader could take for a line end. CR and LF are whitespace outside
# strings (and illegal raw inside them), so a space keeps the body's meaning; the others may
# only appear inside strings, where their escape keeps it.
_LINE_BREAKS = {"\r": " ", "\n": " ", "\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"}
_LINE_BREAK_TABLE = str.maketrans(_LINE_BREAKS)


class ApiError(Exception):
    """A pull that failed; `path` holds the pages received before the failure (None if none were)."""

    def __init__(self, message: str, *, path: Path | None = None, pages_kept: int = 0) -> None:
        super().__init__(message)
        self.path = path
        self.pages_kept = pages_kept


class ApiAuthError(ApiError):
    """The API refused the token (401/403). Never retried."""


class ApiRequestError(ApiError):
    """A request failed for good: retries exhausted, or an answer no retry can change."""


class ApiPageError(ApiError):
    """A page that is not what the spec describes (not JSON, no records array, a stuck cursor)."""


class _RetryableError(Exception):
    """A 429 or 5xx answer: worth another try, after `retry_after` seconds if the server said so."""

    def __init__(self, status: int, retry_after: float | None) -> None:
        super().__init__(
            f"HTTP {status}" + (f" (Retry-After {retry_after:g}s)" if retry_after is not None else "")
        )
        self.status = status
        self.retry_after = retry_after


def _retryable(error: BaseException) -> bool:
    return isinstance(
        error, _RetryableError | httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError
    )


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def lookup(body: Any, dotted: str) -> tuple[bool, Any]:
    """(found, value) at a dotted path ('meta.next', 'results.0.items'); '' is the body itself."""
    value = body
    for key in dotted.split(".") if dotted else []:
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return False, None
    return True, value


def _sort_key(value: Any) -> tuple[int, Any]:
    """Order change timestamps: numbers by value, ISO 8601 texts as instants, other texts as text."""
    if isinstance(value, bool):
        return (2, str(value))
    if isinstance(value, int | float):
        return (0, float(value))
    text = str(value)
    try:
        return (0, float(text))  # a watermark kept as text may hold a number (epoch, sequence)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return (2, text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return (1, parsed.timestamp())


def later_watermark(current: str | None, candidate: Any) -> str | None:
    """The later of a watermark and a record's change timestamp (as text)."""
    if candidate is None or candidate == "":
        return current
    if current is None:
        return str(candidate)
    try:
        return str(candidate) if _sort_key(candidate) > _sort_key(current) else current
    except TypeError:  # mixed kinds: fall back to text order
        return str(candidate) if str(candidate) > current else current


def _published_at(watermark: str | None) -> int | None:
    """When the pulled records were last changed at the source (epoch seconds), from a watermark that
    is an ISO 8601 timestamp; None for any other watermark. It stands for the pull's delivery time."""
    if not watermark:
        return None
    try:
        moment = datetime.fromisoformat(watermark.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


@dataclass(frozen=True)
class PullResult:
    """One finished pull: the file holding its pages, how much came, and the next watermark."""

    path: Path
    pages: int
    records: int
    watermark: str | None
    previous_watermark: str | None
    size: int
    sha256: str


class HttpApiConnector:
    """Pulls one distributor API endpoint; `requests_sent` counts HTTP requests (retries included)."""

    def __init__(
        self,
        source: HttpApiSource,
        *,
        environ: Mapping[str, str] | None = None,
        backoff_seconds: float = 1.0,
    ) -> None:
        self.source = source
        self._environ = environ
        self._backoff = backoff_seconds
        self.requests_sent = 0

    def __repr__(self) -> str:
        return f"HttpApiConnector({self.source.base_url}{self.source.path})"

    @property
    def url(self) -> str:
        return self.source.base_url + self.source.path

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        cap = self.source.max_retry_wait_seconds
        if isinstance(error, _RetryableError) and error.retry_after is not None:
            return min(error.retry_after, cap)
        exponential = self._backoff * 2 ** (state.attempt_number - 1)
        return min(cap, exponential * (0.75 + random.random() / 2))

    def _get(self, client: httpx.Client, params: dict[str, str], page: int, token: str) -> httpx.Response:
        attempts = self.source.max_retries + 1

        def before_sleep(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            log.warning(
                "GET %s page %d failed (attempt %d of %d): %s; retrying in %.1fs",
                self.url,
                page,
                state.attempt_number,
                attempts,
                redact(f"{type(error).__name__}: {error}", token),
                state.upcoming_sleep,
            )

        try:
            for attempt in Retrying(
                stop=stop_after_attempt(attempts),
                wait=self._wait,
                retry=retry_if_exception(_retryable),
                before_sleep=before_sleep,
                reraise=True,
            ):
                with attempt:
                    self.requests_sent += 1
                    response = client.get(self.source.path, params=params)
                    status = response.status_code
                    if status == 429 or 500 <= status < 600:
                        raise _RetryableError(status, parse_retry_after(response.headers.get("Retry-After")))
                    return response
        except _RetryableError as error:
            raise ApiRequestError(
                f"GET {self.url} page {page} still answered {error} after {attempts} attempt(s); giving up"
            ) from None
        except httpx.HTTPError as error:
            raise ApiRequestError(
                redact(
                    f"GET {self.url} page {page} failed after {attempts} attempt(s): {type(error).__name__}: {error}",
                    token,
                )
            ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def pull(self, target: Path, watermark: str | None = None) -> PullResult:
        """Pull every page changed since `watermark` into `target` (JSON lines, one page body per line).

        Pages are written as they arrive to a hidden temporary name beside `target` and renamed
        to `target` at the end. If the pull fails after some pages, those pages are still renamed
        to `target` (the error's `path` and `pages_kept` say so), and the watermark is not
        advanced: the next pull asks for them again.
        """
        source = self.source
        token = read_secret(source.token_env, f"API token of {self.url}", self._environ)
        header = f"{source.auth_scheme} {token}" if source.auth_scheme else token
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.part")
        pages = records = 0
        new_watermark = watermark
        try:
            with (
                httpx.Client(
                    base_url=source.base_url,
                    headers={source.auth_header: header, "Accept": "application/json"},
                    timeout=httpx.Timeout(source.timeout_seconds),
                    follow_redirects=False,  # a redirect could carry the token to another host
                ) as client,
                temporary.open("xb") as out,
            ):
                del header
                for count, page_watermark in self._pages(client, out, watermark, token):
                    pages += 1
                    records += count
                    new_watermark = later_watermark(new_watermark, page_watermark)
                out.flush()
                os.fsync(out.fileno())
        except ApiError as error:
            error.path, error.pages_kept = self._keep(temporary, target, pages)
            if error.path is not None:
                error.args = (f"{error.args[0]}; the {pages} earlier page(s) are kept in {error.path}",)
            raise
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        temporary.replace(target)
        data = target.read_bytes()
        log.info(
            "pulled %d page(s), %d record(s) from %s into %s (watermark %s -> %s)",
            pages,
            records,
            self.url,
            target.name,
            watermark,
            new_watermark,
        )
        return PullResult(
            path=target,
            pages=pages,
            records=records,
            watermark=new_watermark,
            previous_watermark=watermark,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
        )

    @staticmethod
    def _keep(temporary: Path, target: Path, pages: int) -> tuple[Path | None, int]:
        if pages == 0 or not temporary.exists():
            temporary.unlink(missing_ok=True)
            return None, 0
        temporary.replace(target)
        return target, pages

    def _pages(self, client: httpx.Client, out: BinaryIO, watermark: str | None, token: str):
        """Fetch, check and write page after page; yields (record count, greatest change timestamp)."""
        source = self.source
        page = source.first_page
        cursor: str | None = None
        for number in range(1, source.max_pages + 1):
            params = dict(source.query)
            if source.page_size_param:
                params[source.page_size_param] = str(source.page_size)
            if source.watermark_param and watermark is not None:
                params[source.watermark_param] = watermark
            if source.pagination == "page":
                params[source.page_param] = str(page)
            elif cursor is not None:
                params[source.cursor_param] = cursor
            response = self._get(client, params, number, token)
            if response.status_code in (401, 403):
                raise ApiAuthError(
                    f"GET {self.url} answered {response.status_code}: the token in {source.token_env} was refused; "
                    "not retried. Check the token and its rights."
                )
            if response.status_code != 200:
                raise ApiRequestError(
                    f"GET {self.url} page {number} answered HTTP {response.status_code}"
                    + (
                        " (redirects are not followed: correct base_url)"
                        if 300 <= response.status_code < 400
                        else ""
                    )
                )
            text, body = self._parse(response.content, number, token)
            found, items = lookup(body, source.records_path)
            if not found or not isinstance(items, list):
                keys = sorted(body) if isinstance(body, dict) else type(body).__name__
                what = "has no" if not found else "holds no array at"
                raise ApiPageError(
                    f"page {number} of {self.url} {what} records_path {source.records_path!r} (found: {keys}); "
                    "check the feed spec's records_path"
                )
            greatest: str | None = None
            if source.watermark_path:
                missing = 0
                for item in items:
                    has, value = lookup(item, source.watermark_path)
                    if has and value is not None:
                        greatest = later_watermark(greatest, value)
                    else:
                        missing += 1
                if missing:
                    log.warning(
                        "page %d of %s: %d record(s) without %r (they do not move the watermark)",
                        number,
                        self.url,
                        missing,
                        source.watermark_path,
                    )
            next_cursor: str | None = None
            if source.pagination == "cursor":
                has_cursor, value = lookup(body, source.cursor_path)
                if has_cursor and value not in (None, ""):
                    if not isinstance(value, str | int):
                        raise ApiPageError(
                            f"page {number} of {self.url}: cursor_path {source.cursor_path!r} holds a "
                            f"{type(value).__name__}, not a cursor"
                        )
                    next_cursor = str(value)
                    if next_cursor == cursor:
                        raise ApiPageError(
                            f"page {number} of {self.url}: the cursor did not advance ({next_cursor!r})"
                        )
            out.write(text.translate(_LINE_BREAK_TABLE).encode("utf-8") + b"\n")
            out.flush()
            log.debug("page %d of %s: %d record(s)", number, self.url, len(items))
            yield len(items), greatest
            if source.pagination == "cursor":
                if next_cursor is None:
                    return
                cursor = next_cursor
            else:
                short = source.page_size_param is not None and len(items) < source.page_size
                if not items or short:
                    return
                page += 1
        raise ApiPageError(f"{self.url}: more than max_pages={source.max_pages} pages; stopped")

    def _parse(self, content: bytes, number: int, token: str) -> tuple[str, Any]:
        try:
            text = content.decode(json.detect_encoding(content)).removeprefix("\ufeff")
            return text, json.loads(text)
        except (UnicodeDecodeError, ValueError) as error:
            start = redact(content[:60].decode("utf-8", "replace"), token)
            raise ApiPageError(
                f"page {number} of {self.url} is not JSON ({type(error).__name__}: {error}); "
                f"it starts with {start!r}"
            ) from None


class ApiChannel:
    """A distributor's API as a `connectors.channel.Channel`: each poll is one pull, landed as one file.

    Its state is JSON `{"watermark": ..., "pulled_at": ...}`. A pull that brings no record
    fetches no file (the watermark stays).
    """

    name: ChannelName = "api"

    def __init__(
        self,
        source_id: str,
        source: HttpApiSource,
        *,
        environ: Mapping[str, str] | None = None,
        backoff_seconds: float = 1.0,
    ) -> None:
        self.source_id = source_id
        self.source = source
        self._environ = environ
        self._backoff = backoff_seconds
        self.requests_sent = 0

    def __repr__(self) -> str:
        return f"ApiChannel({self.source_id!r}, {self.source.base_url}{self.source.path})"

    def poll(self, state: str | None, target_dir: Path) -> Poll:
        previous = json.loads(state) if state else {}
        watermark = previous.get("watermark")
        pulled_at = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        target = target_dir / self.source.landing_name.format(pulled_at=pulled_at)
        connector = HttpApiConnector(self.source, environ=self._environ, backoff_seconds=self._backoff)
        try:
            result = connector.pull(target, watermark)
        finally:
            self.requests_sent += connector.requests_sent
        next_state = json.dumps({"watermark": result.watermark, "pulled_at": pulled_at}, sort_keys=True)
        if result.records == 0:
            result.path.unlink(missing_ok=True)
            return Poll(fetched=[], state=next_state)
        fetched = FetchedFile(
            channel="api",
            source_id=self.source_id,
            remote_name=target.name,
            local_path=result.path,
            size=result.size,
            sha256=result.sha256,
            remote_mtime=_published_at(result.watermark),
        )
        return Poll(fetched=[fetched], state=next_state)

    def settle(self, fetched: FetchedFile, outcome: Outcome, error: str | None = None) -> None:
        """Nothing to do at the API; a pull that could not be landed is removed locally."""
        if outcome != "landed":
            fetched.local_path.unlink(missing_ok=True)
