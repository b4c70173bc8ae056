"""The `source:` section of a feed spec: typed, secrets only by environment variable NAME, keys pinned."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from schemas.feed_spec import FeedSpecError, load_feed_spec
from schemas.sources import HostKeyPin, HttpApiSource, SftpSource, Source

ED25519 = "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
FINGERPRINT = "SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU"
SFTP: dict[str, Any] = {
    "type": "sftp",
    "host": "sftp.example.com",
    "username": "acme",
    "password_env": "ACME_SFTP_PASSWORD",
    "remote_dir": "/outbox",
    "host_key": f"sftp.example.com ssh-ed25519 {ED25519}",
}
API: dict[str, Any] = {"type": "api", "base_url": "https://api.example.com", "token_env": "ACME_API_TOKEN"}
SOURCE = TypeAdapter(Source)

SPEC = """\
id: acme_us
name: Acme
country: US
currency: USD
file_patterns: ["ACME_*.csv"]
format: {type: csv}
columns: {transaction_date: Date, distributor_sku: SKU, quantity: Qty}
natural_key: [transaction_date, distributor_sku]
"""


def test_the_type_chooses_the_model() -> None:
    assert isinstance(SOURCE.validate_python(SFTP), SftpSource)
    assert isinstance(SOURCE.validate_python(API), HttpApiSource)


@pytest.mark.parametrize("field", ["password_env", "private_key_env", "private_key_passphrase_env"])
def test_a_secret_where_a_name_belongs_is_refused_without_echoing_it(field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        SftpSource.model_validate({**SFTP, field: "hunter2!Secret"})
    assert f"{field} must be the NAME of an environment variable" in str(raised.value)
    assert "hunter2" not in str(raised.value)
    with pytest.raises(ValidationError) as raised:
        HttpApiSource.model_validate({**API, "token_env": "eyJhbGciOi.secret.token"})
    assert "eyJhbGciOi" not in str(raised.value)


def test_an_sftp_source_needs_a_credential() -> None:
    with pytest.raises(ValidationError, match="needs password_env or private_key_env"):
        SftpSource.model_validate({**SFTP, "password_env": None})


@pytest.mark.parametrize(
    "host_key",
    [
        f"sftp.example.com ssh-ed25519 {ED25519}",
        f"[sftp.example.com]:2222 ssh-ed25519 {ED25519} comment",
        f"|1|salt=|hash= ssh-ed25519 {ED25519}",
        f"ssh-ed25519 {ED25519}",
        FINGERPRINT,
    ],
)
def test_host_key_forms(host_key: str) -> None:
    pin = SftpSource.model_validate({**SFTP, "host_key": host_key}).host_key_pin
    assert pin.fingerprint == FINGERPRINT


@pytest.mark.parametrize(
    ("host_key", "problem"),
    [
        ("", "host_key must be a known_hosts line"),
        ("MD5:16:27:ac:a5:76:28:2d:36:63:1b:56:4d:eb:df:a6:48", "MD5 fingerprints are not accepted"),
        ("SHA256:short", "43 base64 characters"),
        (f"@cert-authority *.example.com ssh-ed25519 {ED25519}", "markers"),
        ("host ssh-ed25519 not-base64!", "not valid base64"),
        ("host ssh-rsa " + ED25519, "does not hold a ssh-rsa key"),
    ],
)
def test_bad_host_keys_are_refused(host_key: str, problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        SftpSource.model_validate({**SFTP, "host_key": host_key})


def test_host_key_is_required() -> None:
    settings = dict(SFTP)
    del settings["host_key"]
    with pytest.raises(ValidationError, match="host_key"):
        SftpSource.model_validate(settings)


def test_a_parsed_pin_keeps_the_key() -> None:
    pin = HostKeyPin.parse(f"ssh-ed25519 {ED25519}")
    assert pin.key_type == "ssh-ed25519" and pin.blob is not None


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"base_url": "http://api.example.com"}, "plain http would send the token in clear"),
        ({"base_url": "https://user:pw@api.example.com"}, "must not carry credentials"),
        ({"base_url": "ftp://api.example.com"}, "base_url must be"),
        ({"path": "v1/sellout"}, "path must start with '/'"),
        ({"schedule": "every monday"}, "cron expression of five fields"),
        ({"watermark_param": "updated_since"}, "watermark_param and watermark_path go together"),
        ({"landing_name": "pull.jsonl"}, "landing_name must be a file name holding"),
        ({"pagination": "offset"}, "pagination"),
        ({"token": "x"}, "Extra inputs are not permitted"),
    ],
)
def test_api_settings_are_checked(changes: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        HttpApiSource.model_validate({**API, **changes})


def test_plain_http_is_allowed_on_loopback_only() -> None:
    assert (
        HttpApiSource.model_validate({**API, "base_url": "http://127.0.0.1:8080/"}).base_url
        == "http://127.0.0.1:8080"
    )


def test_a_feed_spec_carries_its_source(tmp_path: Path) -> None:
    path = tmp_path / "acme.yaml"
    path.write_text(
        SPEC
        + "source:\n  type: sftp\n  host: sftp.example.com\n  username: acme\n"
        + "  password_env: ACME_SFTP_PASSWORD\n  remote_dir: /outbox\n"
        + f"  host_key: 'sftp.example.com ssh-ed25519 {ED25519}'\n  completeness: ready_marker\n"
    )
    spec = load_feed_spec(path)
    assert isinstance(spec.source, SftpSource) and spec.source.completeness == "ready_marker"
    path.write_text(SPEC)
    assert load_feed_spec(path).source is None


def test_a_secret_pasted_into_a_feed_spec_is_never_echoed(tmp_path: Path) -> None:
    path = tmp_path / "acme.yaml"
    path.write_text(
        SPEC + "source:\n  type: api\n  base_url: https://api.example.com\n  token_env: 'sk_live_51H8xyz'\n"
    )
    with pytest.raises(FeedSpecError) as raised:
        load_feed_spec(path)
    assert "token_env: token_env must be the NAME of an environment variable" in str(raised.value)
    assert "sk_live" not in str(raised.value)
