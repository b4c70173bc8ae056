"""The one channel interface: the folder, SFTP and API channels all satisfy it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from connectors.channel import (
    Channel,
    FolderChannel,
    MissingSecretError,
    load_state,
    open_channel,
    read_secret,
    redact,
    save_state,
)
from connectors.http_api import ApiChannel
from connectors.sftp import SftpChannel
from schemas.sources import HttpApiSource, SftpSource

SFTP = SftpSource(
    type="sftp",
    host="sftp.example.com",
    username="acme",
    password_env="ACME_SFTP_PASSWORD",
    remote_dir="/outbox",
    host_key="SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU",
)
API = HttpApiSource(type="api", base_url="https://api.example.com", token_env="ACME_API_TOKEN")


def test_every_channel_satisfies_the_interface(tmp_path: Path) -> None:
    channels = [
        FolderChannel("acme", tmp_path / "inbox", tmp_path / "rejected"),
        open_channel("acme", SFTP),
        open_channel("acme", API),
    ]
    assert [type(c) for c in channels] == [FolderChannel, SftpChannel, ApiChannel]
    assert [c.name for c in channels] == ["folder", "sftp", "api"]
    assert all(isinstance(c, Channel) for c in channels)


def test_the_folder_channel_takes_a_file_once_it_holds_still(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox" / "acme"
    inbox.mkdir(parents=True)
    (inbox / "ACME_1.csv").write_bytes(b"a\n")
    os.utime(inbox / "ACME_1.csv", (1_700_000_000, 1_700_000_000))
    channel = FolderChannel("acme", tmp_path / "inbox", tmp_path / "rejected")
    first = channel.poll(None, tmp_path / "unused")
    assert first.fetched == [] and first.waiting == ["ACME_1.csv"]
    second = channel.poll(first.state, tmp_path / "unused")
    [fetched] = second.fetched
    assert fetched.local_path == inbox / "ACME_1.csv" and fetched.size == 2 and fetched.channel == "folder"
    assert fetched.run_key.startswith("folder/acme/ACME_1.csv@")
    channel.settle(fetched, "landed")
    assert not fetched.local_path.exists()


def test_the_folder_channel_moves_a_failed_file_aside(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox" / "acme"
    inbox.mkdir(parents=True)
    (inbox / "ACME_1.csv").write_bytes(b"a\n")
    channel = FolderChannel("acme", tmp_path / "inbox", tmp_path / "rejected")
    state = json.dumps({"ACME_1.csv": [2, (inbox / "ACME_1.csv").stat().st_mtime_ns]})
    [fetched] = channel.poll(state, tmp_path).fetched
    channel.settle(fetched, "failed", "unreadable")
    assert (tmp_path / "rejected" / "acme" / "ACME_1.csv.error.txt").read_text() == "unreadable\n"


def test_read_secret_names_the_variable_never_the_value() -> None:
    assert read_secret("X_TOKEN", "API token", {"X_TOKEN": "v"}) == "v"
    for environ in ({}, {"X_TOKEN": ""}):
        with pytest.raises(MissingSecretError, match=r"environment variable X_TOKEN is not set .*API token"):
            read_secret("X_TOKEN", "API token", environ)
    assert redact("token abc in abc", "abc", None) == "token *** in ***"


def test_a_state_is_saved_atomically_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "state" / "acme.json"
    assert load_state(path) is None
    save_state(path, '{"watermark": "x"}')
    save_state(path, '{"watermark": "y"}')
    assert load_state(path) == '{"watermark": "y"}' and sorted(p.name for p in path.parent.iterdir()) == [
        "acme.json"
    ]
