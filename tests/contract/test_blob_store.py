"""The blob-store contract: the same behaviour on a local directory and on S3.

The model store and the registry journal rely on exactly these properties: atomic whole-object
writes, create-only writes that one of two racing writers wins, sorted listing by prefix, and
idempotent deletes. Run on the directory adapter and on the S3 adapter against an S3-compatible
server (``tests/object_store.py``).
"""

from __future__ import annotations

import threading

import pytest

from models.adapters.directory_blobs import DirectoryBlobStore
from models.adapters.s3_blobs import S3BlobStore
from models.blobs import BlobNotFoundError, BlobStore, BlobStoreError


@pytest.fixture(params=["directory", "s3"])
def blobs(request: pytest.FixtureRequest, tmp_path) -> BlobStore:
    if request.param == "directory":
        return DirectoryBlobStore(tmp_path / "store")
    s3 = request.getfixturevalue("s3")
    return S3BlobStore.from_url(f"s3://{s3.new_bucket()}/deployment/a", s3.endpoint_url)


def test_put_get_and_replace(blobs):
    blobs.put("v1/model.ubj", b"first")
    assert blobs.get("v1/model.ubj") == b"first"
    blobs.put("v1/model.ubj", b"second")
    assert blobs.get("v1/model.ubj") == b"second"


def test_a_missing_object_is_not_found(blobs):
    with pytest.raises(BlobNotFoundError):
        blobs.get("nothing/here.json")


def test_create_writes_only_a_new_name(blobs):
    assert blobs.create("registry/000000000001.json", b"one")
    assert not blobs.create("registry/000000000001.json", b"other")
    assert blobs.get("registry/000000000001.json") == b"one"


def test_one_of_many_racing_creators_wins(blobs):
    results: list[bool] = []
    threads = [
        threading.Thread(target=lambda i=i: results.append(blobs.create("race", f"{i}".encode())))
        for i in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]
    assert blobs.get("race") in {f"{i}".encode() for i in range(8)}


def test_names_are_sorted_and_filtered_by_prefix(blobs):
    for name in ("b/2", "a/1", "registry/000000000002.json", "registry/000000000001.json"):
        blobs.put(name, b"x")
    assert blobs.names() == [
        "a/1",
        "b/2",
        "registry/000000000001.json",
        "registry/000000000002.json",
    ]
    assert blobs.names("registry/") == ["registry/000000000001.json", "registry/000000000002.json"]
    assert blobs.names("zzz") == []


def test_delete_is_idempotent_and_hides_the_object(blobs):
    blobs.put("v/metadata.json", b"{}")
    blobs.delete("v/metadata.json")
    blobs.delete("v/metadata.json")
    assert blobs.names() == []
    with pytest.raises(BlobNotFoundError):
        blobs.get("v/metadata.json")


@pytest.mark.parametrize("name", ["", "../escape", "a/../../b", "/abs"])
def test_names_cannot_escape_the_store(blobs, name):
    with pytest.raises(BlobStoreError):
        blobs.put(name, b"x")


def test_two_stores_on_one_location_see_each_other(blobs, tmp_path, request):
    """What makes a store shared: a second client (another host) sees every write."""
    other = (
        DirectoryBlobStore(blobs.root)
        if isinstance(blobs, DirectoryBlobStore)
        else S3BlobStore.from_url(blobs.location, request.getfixturevalue("s3").endpoint_url)
    )
    blobs.put("v/model.ubj", b"bytes")
    assert other.get("v/model.ubj") == b"bytes"
    assert not other.create("v/model.ubj", b"late")


def test_an_unreachable_store_is_an_error_not_a_hang():
    down = S3BlobStore.from_url("s3://bucket/p", "http://127.0.0.1:1", timeout_s=1)
    with pytest.raises(BlobStoreError, match="cannot read"):
        down.get("x")
    with pytest.raises(BlobStoreError, match="cannot list"):
        down.names()
