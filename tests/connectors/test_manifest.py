"""The manifest decides what is new without trusting the clock."""

from __future__ import annotations

import json

import pytest

from connectors.manifest import MAX_HASHES, Manifest, RemoteFile

A = RemoteFile("NW_1.csv", 100, 1_700_000_000)


def test_a_version_once_taken_is_not_new_again() -> None:
    manifest = Manifest()
    assert manifest.new_files([A]) == [A]
    manifest.record_taken(A, "a" * 64)
    assert manifest.new_files([A]) == [] and manifest.is_taken(A)


def test_a_reupload_with_an_older_mtime_is_new() -> None:
    manifest = Manifest()
    manifest.record_taken(A, "a" * 64)
    older = RemoteFile(A.name, 120, A.mtime - 86400)
    same_size_older = RemoteFile(A.name, 100, A.mtime - 86400)
    assert manifest.new_files([older, same_size_older]) == [older, same_size_older]


def test_content_taken_under_another_name_is_known() -> None:
    manifest = Manifest()
    manifest.record_taken(A, "a" * 64)
    assert manifest.has_content("a" * 64) and not manifest.has_content("b" * 64)


def test_stability_needs_two_equal_looks() -> None:
    manifest = Manifest()
    assert not manifest.was_stable(A)
    manifest.observe([A])
    assert manifest.was_stable(A)
    assert not manifest.was_stable(RemoteFile(A.name, 200, A.mtime))


def test_files_gone_from_the_folder_are_forgotten_but_their_content_is_not() -> None:
    manifest = Manifest()
    manifest.record_taken(A, "a" * 64)
    manifest.observe([])
    assert manifest.taken == {} and manifest.has_content("a" * 64)


def test_forget_undoes_a_take() -> None:
    manifest = Manifest()
    manifest.record_taken(A, "a" * 64)
    manifest.forget(A)
    assert not manifest.is_taken(A) and not manifest.has_content("a" * 64)


def test_json_round_trip_is_exact_and_compact() -> None:
    manifest = Manifest()
    manifest.observe([A, RemoteFile("NW_2.csv", 5, 6)])
    manifest.record_taken(A, "a" * 64)
    manifest.record_taken(RemoteFile("NW_2.csv", 5, 6), None)
    text = manifest.to_json()
    assert Manifest.from_json(text) == manifest and Manifest.from_json(text).to_json() == text
    assert " " not in text and json.loads(text)["version"] == 1
    assert Manifest.from_json(None) == Manifest() == Manifest.from_json("")
    with pytest.raises(ValueError, match="not a manifest"):
        Manifest.from_json('{"version": 99}')


def test_remembered_hashes_are_bounded() -> None:
    manifest = Manifest()
    for number in range(MAX_HASHES + 5):
        manifest.record_taken(RemoteFile(f"f{number}", 1, 1), f"{number:064x}")
    assert len(manifest.hashes) == MAX_HASHES and manifest.hashes[0] == f"{5:064x}"
