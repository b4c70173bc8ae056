"""The SFTP channel against real servers (asyncssh in process, and OpenSSH sshd) over real TCP.

Each scenario of issue 10 runs against both servers: first pull, nothing new, a new file, a
re-upload with an older mtime, a growing file, a disconnect mid-download, a wrong password, an
unknown host key, symlinks and names that try to leave the target folder.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

import asyncssh
import pytest

from connectors.channel import MissingSecretError
from connectors.manifest import Manifest, RemoteFile
from connectors.sftp import (
    HostKeyError,
    SftpAuthError,
    SftpChannel,
    SftpConnector,
    SftpTransferError,
    UnsafeRemoteNameError,
)
from tests.connectors.servers import PASSWORD_ENV, SFTP_PASSWORD, SftpUnderTest, listing
from tests.guarantees import Figures

FAST = {"backoff_seconds": 0.05, "max_backoff_seconds": 0.2}
OTHER_HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _channel(sftp: SftpUnderTest, **overrides: object) -> SftpChannel:
    return SftpChannel("acme", sftp.source(**overrides), environ=sftp.environ, **FAST)


def test_first_pull_waits_for_a_second_look_then_takes_every_file(sftp: SftpUnderTest, landing: Path) -> None:
    files = {"NW_20250106.csv": b"a,b\n1,2\n", "NW_20250113.csv": b"a,b\n3,4\n5,6\n"}
    for name, data in files.items():
        sftp.put(name, data)
    channel = _channel(sftp)

    first = channel.poll(None, landing)
    assert first.fetched == [] and sorted(first.waiting) == sorted(files)

    second = channel.poll(first.state, landing)
    assert sorted(f.remote_name for f in second.fetched) == sorted(files)
    for fetched in second.fetched:
        assert fetched.channel == "sftp" and fetched.source_id == "acme"
        assert fetched.local_path.read_bytes() == files[fetched.remote_name]
        assert fetched.sha256 == _sha(files[fetched.remote_name])
        assert fetched.size == len(files[fetched.remote_name])
    assert listing(landing) == sorted(files)

    third = channel.poll(second.state, landing)
    assert third.fetched == [] and third.waiting == []


def test_a_new_file_is_taken_and_nothing_else(sftp: SftpUnderTest, landing: Path) -> None:
    sftp.put("NW_20250106.csv", b"old\n")
    channel = _channel(sftp)
    state = channel.poll(channel.poll(None, landing).state, landing).state
    sftp.put("NW_20250113.csv", b"new\n")

    seen = channel.poll(state, landing)
    assert seen.fetched == [] and seen.waiting == ["NW_20250113.csv"]
    taken = channel.poll(seen.state, landing)
    assert [f.remote_name for f in taken.fetched] == ["NW_20250113.csv"]
    assert channel.poll(taken.state, landing).fetched == []


def test_a_reupload_with_an_older_mtime_is_still_found(sftp: SftpUnderTest, landing: Path) -> None:
    now = int(time.time())
    sftp.put("NW_20250106.csv", b"first version\n", mtime=now - 3600)
    channel = _channel(sftp)
    state = channel.poll(channel.poll(None, landing).state, landing).state
    (landing / "NW_20250106.csv").unlink()  # landed and moved on by the caller

    # The distributor re-sends the file with a corrected body, stamped a day older.
    sftp.put("NW_20250106.csv", b"corrected version\n", mtime=now - 86400)
    state = channel.poll(state, landing).state
    again = channel.poll(state, landing)
    assert [f.remote_name for f in again.fetched] == ["NW_20250106.csv"]
    assert again.fetched[0].local_path.read_bytes() == b"corrected version\n"

    # Same size, different bytes, older mtime still: a new version too.
    (landing / "NW_20250106.csv").unlink()
    sftp.put("NW_20250106.csv", b"CORRECTED VERSION\n", mtime=now - 2 * 86400)
    state = channel.poll(again.state, landing).state
    third = channel.poll(state, landing)
    assert [f.sha256 for f in third.fetched] == [_sha(b"CORRECTED VERSION\n")]


def test_a_file_still_growing_is_not_taken_until_it_holds_still(sftp: SftpUnderTest, landing: Path) -> None:
    path = sftp.put("NW_20250106.csv", b"x" * 1000, mtime=int(time.time()) - 60)
    channel = _channel(sftp)
    state = channel.poll(None, landing).state
    with path.open("ab") as growing:
        growing.write(b"y" * 1000)
    os.utime(path, (int(time.time()), int(time.time())))

    still_growing = channel.poll(state, landing)
    assert still_growing.fetched == [] and still_growing.waiting == ["NW_20250106.csv"]
    assert listing(landing) == []
    complete = channel.poll(still_growing.state, landing)
    assert [f.size for f in complete.fetched] == [2000]
    assert complete.fetched[0].local_path.read_bytes() == b"x" * 1000 + b"y" * 1000


def test_ready_marker_and_part_suffix_conventions(sftp: SftpUnderTest, landing: Path) -> None:
    sftp.put("NW_20250106.csv", b"data\n")
    marked = _channel(sftp, completeness="ready_marker")
    unmarked = marked.poll(None, landing)
    assert unmarked.fetched == [] and unmarked.waiting == ["NW_20250106.csv"]
    sftp.put("NW_20250106.csv.ready", b"")
    ready = marked.poll(unmarked.state, landing)
    assert [f.remote_name for f in ready.fetched] == ["NW_20250106.csv"]

    for name in ("NW_20250106.csv", "NW_20250106.csv.ready"):
        (sftp.outbox / name).unlink()
    sftp.put("NW_20250113.csv.part", b"half")
    parts = _channel(sftp, completeness="part_suffix")
    first = parts.poll(ready.state, landing)
    assert first.fetched == [] and first.waiting == []
    (sftp.outbox / "NW_20250113.csv.part").rename(sftp.outbox / "NW_20250113.csv")
    renamed = parts.poll(first.state, landing)
    assert [f.remote_name for f in renamed.fetched] == ["NW_20250113.csv"]


def test_include_exclude_and_hidden_files(sftp: SftpUnderTest, landing: Path) -> None:
    for name in ("NW_1.csv", "NW_2.CSV", "NW_3.tmp", "other.csv", ".NW_4.csv"):
        sftp.put(name, name.encode())
    channel = _channel(sftp, include=["nw_*.csv", "NW_*.tmp"], exclude=["*.tmp"], completeness="part_suffix")
    assert sorted(f.remote_name for f in channel.poll(None, landing).fetched) == ["NW_1.csv", "NW_2.CSV"]


def test_content_already_taken_is_not_handed_on_again(sftp: SftpUnderTest, landing: Path) -> None:
    sftp.put("NW_20250106.csv", b"same bytes\n")
    channel = _channel(sftp, completeness="part_suffix")
    first = channel.poll(None, landing)
    assert len(first.fetched) == 1
    first.fetched[0].local_path.unlink()
    sftp.put("NW_20250106_resent.csv", b"same bytes\n")
    second = channel.poll(first.state, landing)
    assert second.fetched == [] and listing(landing) == []
    assert channel.poll(second.state, landing).fetched == []


def test_landed_files_are_archived_on_the_server(sftp: SftpUnderTest, landing: Path) -> None:
    archive = sftp.outbox.parent / f"{sftp.outbox.name}-archive"
    remote_archive = sftp.remote_dir + "-archive"
    sftp.put("NW_20250106.csv", b"data\n")
    channel = _channel(sftp, completeness="part_suffix", archive_dir=remote_archive)
    polled = channel.poll(None, landing)
    channel.settle(polled.fetched[0], "landed")
    assert listing(sftp.outbox) == []
    assert (archive / "NW_20250106.csv").read_bytes() == b"data\n"
    assert channel.poll(polled.state, landing).fetched == []

    sftp.put("NW_20250106.csv", b"data again\n")  # same name again: archived beside the first
    again = channel.poll(polled.state, landing)
    channel.settle(again.fetched[0], "landed")
    assert len(listing(archive)) == 2


def test_a_failed_landing_leaves_the_remote_file(sftp: SftpUnderTest, landing: Path) -> None:
    sftp.put("NW_20250106.csv", b"data\n")
    channel = _channel(sftp, completeness="part_suffix", archive_dir=sftp.remote_dir + "-archive")
    polled = channel.poll(None, landing)
    channel.settle(polled.fetched[0], "failed", "disk full")
    assert listing(sftp.outbox) == ["NW_20250106.csv"] and listing(landing) == []
    # The state was not committed: the next poll takes the file again.
    assert [f.remote_name for f in channel.poll(None, landing).fetched] == ["NW_20250106.csv"]


def test_a_disconnect_mid_download_is_retried_and_leaves_no_partial_file(
    sftp: SftpUnderTest, landing: Path, proxy_to
) -> None:
    data = os.urandom(3 * 1024 * 1024)
    sftp.put("NW_big.csv", data)
    proxy = proxy_to(sftp.port)
    proxy.cut_after, proxy.faulty = 400_000, 1  # the first connection dies mid-file
    channel = SftpChannel(
        "acme", sftp.source(port=proxy.port, completeness="part_suffix"), environ=sftp.environ, **FAST
    )

    polled = channel.poll(None, landing)
    assert [f.sha256 for f in polled.fetched] == [_sha(data)]
    assert listing(landing) == ["NW_big.csv"]
    assert proxy.connections == 2 and channel.connection_attempts == 2


def test_a_connection_cut_every_time_fails_clearly_and_leaves_nothing(
    sftp: SftpUnderTest, landing: Path, proxy_to
) -> None:
    sftp.put("NW_big.csv", os.urandom(2 * 1024 * 1024))
    proxy = proxy_to(sftp.port)
    channel = SftpChannel(
        "acme",
        sftp.source(port=proxy.port, completeness="part_suffix", max_retries=2),
        environ=sftp.environ,
        **FAST,
    )
    connector = channel.connector()
    try:
        files = connector.list_remote().files
        connector.close()  # the download opens its own connections, each cut mid-file
        proxy.cut_after, proxy.faulty = 300_000, 100
        with pytest.raises(
            SftpTransferError, match=r"download of 'NW_big.csv' at sftp 127\.0\.0\.1:\d+ failed after 3"
        ):
            connector.download(files[0], landing)
    finally:
        connector.close()
    assert listing(landing) == []
    assert proxy.connections == 1 + 3  # the listing, then three download attempts


def test_a_stalled_transfer_times_out_and_is_retried(sftp: SftpUnderTest, landing: Path, proxy_to) -> None:
    data = os.urandom(1024 * 1024)
    sftp.put("NW_big.csv", data)
    proxy = proxy_to(sftp.port)
    proxy.cut_after, proxy.faulty, proxy.stall = 200_000, 1, True
    channel = SftpChannel(
        "acme",
        sftp.source(port=proxy.port, completeness="part_suffix", timeout_seconds=1),
        environ=sftp.environ,
        **FAST,
    )
    polled = channel.poll(None, landing)
    assert [f.sha256 for f in polled.fetched] == [_sha(data)]
    assert listing(landing) == ["NW_big.csv"] and proxy.connections == 2


def test_a_wrong_password_is_a_clear_error_and_never_retried(
    sftp: SftpUnderTest, landing: Path, proxy_to
) -> None:
    proxy = proxy_to(sftp.port)
    source = sftp.source(port=proxy.port, password_env=PASSWORD_ENV, private_key_env=None, max_retries=5)
    channel = SftpChannel("acme", source, environ={PASSWORD_ENV: "not-the-password"}, **FAST)
    with pytest.raises(SftpAuthError) as raised:
        channel.poll(None, landing)
    message = str(raised.value)
    assert f"sftp user {sftp.username!r} at 127.0.0.1:{proxy.port} refused the login" in message
    assert PASSWORD_ENV in message and "not retried" in message
    assert "not-the-password" not in message
    assert proxy.connections == 1 and channel.connection_attempts == 1
    if sftp.server is not None:
        assert sftp.server.stats.failed_auths == 1


def test_an_unknown_host_key_is_refused_and_never_retried(
    sftp: SftpUnderTest, landing: Path, proxy_to, figures: Figures
) -> None:
    proxy = proxy_to(sftp.port)
    channel = SftpChannel(
        "acme",
        sftp.source(port=proxy.port, host_key=OTHER_HOST_KEY, max_retries=5),
        environ=sftp.environ,
        **FAST,
    )
    with pytest.raises(HostKeyError) as raised:
        channel.poll(None, landing)
    message = str(raised.value)
    offered = sftp.known_hosts_line.split()
    assert f"127.0.0.1:{proxy.port}" in message
    assert (
        "ssh-ed25519 SHA256:" in message
        and "the spec expects ssh-ed25519 SHA256:+DiY3wvvV6TuJJhbpZisF" in message
    )
    assert asyncssh.import_public_key(" ".join(offered[1:3])).get_fingerprint("sha256") in message
    assert proxy.connections == 1 and channel.connection_attempts == 1
    assert listing(landing) == []
    figures.add(faults=1)


def test_a_pinned_fingerprint_is_accepted_and_a_wrong_one_refused(
    sftp: SftpUnderTest, landing: Path, figures: Figures
) -> None:
    offered = sftp.known_hosts_line.split()
    fingerprint = asyncssh.import_public_key(" ".join(offered[1:3])).get_fingerprint("sha256")
    sftp.put("NW_1.csv", b"1\n")
    assert (
        len(_channel(sftp, host_key=fingerprint, completeness="part_suffix").poll(None, landing).fetched) == 1
    )
    wrong = "SHA256:" + "A" * 43
    with pytest.raises(HostKeyError, match="the spec expects SHA256:AAAA"):
        _channel(sftp, host_key=wrong).poll(None, landing)
    figures.add(faults=1)


def test_a_missing_secret_names_the_variable(sftp: SftpUnderTest, landing: Path) -> None:
    channel = SftpChannel("acme", sftp.source(), environ={}, **FAST)
    with pytest.raises(
        MissingSecretError, match=r"environment variable TL_TEST_SFTP_(PASSWORD|KEY) is not set"
    ):
        channel.poll(None, landing)


def test_the_private_key_may_be_given_as_text(sftp: SftpUnderTest, landing: Path) -> None:
    sftp.put("NW_1.csv", b"1\n")
    source = sftp.source(private_key_env="TL_KEY_TEXT", password_env=None, completeness="part_suffix")
    channel = SftpChannel("acme", source, environ={"TL_KEY_TEXT": sftp.extra["key_pem"]}, **FAST)
    assert len(channel.poll(None, landing).fetched) == 1


def test_symbolic_links_are_refused(sftp: SftpUnderTest, landing: Path, tmp_path: Path) -> None:
    secret = tmp_path / "elsewhere.csv"
    secret.write_text("not for the distributor\n")
    (sftp.outbox / "NW_link.csv").symlink_to(secret)
    sftp.put("NW_real.csv", b"1\n")
    polled = _channel(sftp, completeness="part_suffix").poll(None, landing)
    assert [f.remote_name for f in polled.fetched] == ["NW_real.csv"]
    assert any("NW_link.csv" in refused and "symbolic link" in refused for refused in polled.refused)
    assert listing(landing) == ["NW_real.csv"]


def test_a_name_that_would_leave_the_folder_is_refused_before_any_connection(
    sftp: SftpUnderTest, landing: Path
) -> None:
    connector = SftpConnector(sftp.source(), environ=sftp.environ, **FAST)
    for name in ("../escape.csv", "/etc/passwd", "a/../../b.csv", "..", "a\\..\\b.csv"):
        with pytest.raises(UnsafeRemoteNameError, match="refused"):
            connector.download(RemoteFile(name, 1, 1), landing)
    assert connector.connection_attempts == 0 and listing(landing) == []


class _HostileServer(asyncssh.SFTPServer):
    """Lists names no real file system holds: they try to climb out of the target folder."""

    async def scandir(self, path: bytes):  # type: ignore[override]
        async for entry in super().scandir(path):
            yield entry
        attrs = asyncssh.SFTPAttrs(type=asyncssh.FILEXFER_TYPE_REGULAR, size=5, permissions=0o100644, mtime=1)
        for name in (b"../escape.csv", b"sub/../../escape.csv", b"/etc/passwd"):
            yield asyncssh.SFTPName(name, attrs=attrs)


def test_listed_names_with_dot_dot_or_slashes_are_refused(asyncssh_server_with, landing: Path) -> None:
    sftp = asyncssh_server_with(_HostileServer)
    sftp.put("NW_real.csv", b"1\n")
    polled = _channel(sftp, completeness="part_suffix").poll(None, landing)
    assert [f.remote_name for f in polled.fetched] == ["NW_real.csv"]
    assert sorted(r.split(":")[0] for r in polled.refused) == [
        "'../escape.csv'",
        "'/etc/passwd'",
        "'sub/../../escape.csv'",
    ]
    assert listing(landing) == ["NW_real.csv"]
    assert not (landing.parent / "escape.csv").exists()


def test_the_manifest_survives_as_json_between_polls(sftp: SftpUnderTest, landing: Path) -> None:
    sftp.put("NW_1.csv", b"1\n")
    channel = _channel(sftp, completeness="part_suffix")
    state = channel.poll(None, landing).state
    manifest = Manifest.from_json(state)
    assert manifest.to_json() == state
    assert manifest.has_content(_sha(b"1\n"))


def test_secrets_never_reach_a_log_line_or_a_message(
    sftp: SftpUnderTest, landing: Path, caplog: pytest.LogCaptureFixture, figures: Figures
) -> None:
    caplog.set_level("DEBUG")
    sftp.put("NW_1.csv", b"1\n")
    key_text = sftp.extra["key_pem"]
    messages: list[str] = []
    channels = [
        _channel(sftp, completeness="part_suffix"),
        SftpChannel(
            "acme",
            sftp.source(private_key_env="TL_KEY_TEXT", password_env=None, completeness="part_suffix"),
            environ={"TL_KEY_TEXT": key_text},
            **FAST,
        ),
    ]
    for channel in channels:
        channel.poll(None, landing)
        messages += [repr(channel), repr(channel.connector()), channel.source.model_dump_json()]
    for bad in (
        SftpChannel(
            "acme",
            sftp.source(password_env=PASSWORD_ENV, private_key_env=None),
            environ={PASSWORD_ENV: SFTP_PASSWORD + "x"},
            **FAST,
        ),
        SftpChannel("acme", sftp.source(host_key=OTHER_HOST_KEY), environ=sftp.environ, **FAST),
    ):
        with pytest.raises(Exception) as raised:
            bad.poll(None, landing)
        messages += [str(raised.value), repr(raised.value)]
    logged = [record.getMessage() for record in caplog.records] + [
        record.exc_text or "" for record in caplog.records
    ]
    assert any("paramiko" in record.name for record in caplog.records), (
        "paramiko's DEBUG log was not captured"
    )
    key_body = "".join(key_text.strip().splitlines()[1:-1])
    for text in logged + messages:
        assert SFTP_PASSWORD not in text
        for line in key_text.strip().splitlines()[1:-1]:
            assert line not in text
        assert key_body[:40] not in text
    figures.add(faults=2)  # a wrong password, a wrong host key


def test_connections_per_host_are_limited(asyncssh_server_with) -> None:
    sftp = asyncssh_server_with(asyncssh.SFTPServer)
    source = sftp.source(max_connections_per_host=1)
    first = SftpConnector(source, environ=sftp.environ, **FAST)
    second = SftpConnector(source, environ=sftp.environ, **FAST)
    done = threading.Event()
    try:
        first.list_remote()
        waiting = threading.Thread(target=lambda: (second.list_remote(), done.set()), daemon=True)
        waiting.start()
        assert not done.wait(0.5), "a second connection opened beyond max_connections_per_host"
        first.close()
        assert done.wait(10)
        waiting.join(timeout=10)
    finally:
        first.close()
        second.close()
    assert sftp.server is not None and sftp.server.stats.connections == 2
