"""One storage suite, run against every backend: a local folder and a real S3 API server (moto)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import zarr

from fairimage.model.errors import NotFoundError, StorageError
from fairimage.storage import LocalStore, Store, open_store


class StoreTests:
    """What fairimage relies on from a Store, whatever holds the bytes."""

    @pytest.fixture
    def store(self) -> Store:
        raise NotImplementedError

    def test_put_then_stat_read_and_open(self, store: Store) -> None:
        store.put("images/a.ome.zarr/0/c/0/0", b"chunk bytes")
        info = store.stat("images/a.ome.zarr/0/c/0/0")
        assert info.size == len(b"chunk bytes")
        assert store.read("images/a.ome.zarr/0/c/0/0") == b"chunk bytes"
        with store.open("images/a.ome.zarr/0/c/0/0") as f:
            assert f.read() == b"chunk bytes"

    def test_read_byte_ranges(self, store: Store) -> None:
        store.put("k", bytes(range(100)))
        assert store.read("k", 10, 20) == bytes(range(10, 20))
        assert store.read("k", 90) == bytes(range(90, 100))
        assert store.read("k", 0, 1) == b"\x00"

    def test_write_replaces_an_object(self, store: Store) -> None:
        store.write("manifests/x.json", b"old")
        store.write("manifests/x.json", b"new and longer")
        assert store.read("manifests/x.json") == b"new and longer"

    @pytest.mark.parametrize("key", ["nothing/here", "images"])
    def test_missing_objects_and_folders_are_not_found(self, store: Store, key: str) -> None:
        store.put("images/a/zarr.json", b"{}")
        with pytest.raises(NotFoundError):
            store.stat(key)
        if key != "images":
            with pytest.raises(NotFoundError):
                store.read(key)

    @pytest.mark.parametrize("key", ["../escape", "/absolute", "a//b", "a/./b", ""])
    def test_keys_cannot_leave_the_store(self, store: Store, key: str) -> None:
        with pytest.raises(NotFoundError):
            store.put(key, b"x")

    def test_list_is_recursive_with_sizes_and_children_are_one_level(self, store: Store) -> None:
        for key, size in [("p/zarr.json", 2), ("p/0/c/0/0", 5), ("p/0/c/0/1", 7), ("q/other", 1)]:
            store.put(key, b"x" * size)
        assert {(i.key, i.size) for i in store.list("p")} == {
            ("p/zarr.json", 2),
            ("p/0/c/0/0", 5),
            ("p/0/c/0/1", 7),
        }
        assert store.list_children("p") == ["0", "zarr.json"]
        assert store.list_children("absent") == []

    def test_delete_a_prefix_and_deleting_nothing_is_fine(self, store: Store) -> None:
        store.put("p/a", b"1")
        store.put("p/b/c", b"2")
        store.put("keep", b"3")
        store.delete("p")
        store.delete("p")
        assert list(store.list("p")) == []
        assert store.read("keep") == b"3"

    def test_move_a_prefix(self, store: Store) -> None:
        store.put("staging/run/img.ome.zarr/zarr.json", b"{}")
        store.put("staging/run/img.ome.zarr/0/c/0", b"pixels")
        store.move("staging/run/img.ome.zarr", "images/img.ome.zarr")
        assert store.read("images/img.ome.zarr/0/c/0") == b"pixels"
        assert list(store.list("staging/run")) == []

    def test_puts_from_many_threads(self, store: Store) -> None:
        def put_range(first: int) -> None:
            for index in range(first, first + 10):
                store.put(f"t/c/{index}", index.to_bytes(2, "little"))

        threads = [threading.Thread(target=put_range, args=(first,)) for first in range(0, 40, 10)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(int(i.key.rsplit("/", 1)[1]) for i in store.list("t")) == list(range(40))
        assert store.read("t/c/17") == (17).to_bytes(2, "little")

    def test_zarr_python_reads_and_writes_through_the_store(self, store: Store) -> None:
        pixels = np.arange(600, dtype=np.uint16).reshape(20, 30)
        array = zarr.create_array(
            store.zarr_store("z.ome.zarr"), shape=(20, 30), chunks=(8, 8), dtype="uint16"
        )
        array[...] = pixels
        reread = zarr.open_array(store.zarr_store("z.ome.zarr", read_only=True), mode="r")
        np.testing.assert_array_equal(reread[...], pixels)
        assert "z.ome.zarr/zarr.json" in {info.key for info in store.list("z.ome.zarr")}


class TestLocalStore(StoreTests):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Store:
        return LocalStore(tmp_path / "objects")

    def test_a_symlink_out_of_the_store_is_not_followed(self, tmp_path: Path) -> None:
        store = LocalStore(tmp_path / "objects")
        (tmp_path / "secret").write_text("do not serve")
        (tmp_path / "objects" / "link").symlink_to(tmp_path / "secret")
        with pytest.raises(NotFoundError):
            store.read("link")


class TestS3Store(StoreTests):
    @pytest.fixture
    def store(self, s3_bucket: str, s3_endpoint: str) -> Store:
        return open_store(f"s3://{s3_bucket}/repo", s3_endpoint)

    def test_a_missing_bucket_is_a_clear_error(self, s3_endpoint: str) -> None:
        with pytest.raises(StorageError, match="bucket 'no-such-bucket' does not exist"):
            open_store("s3://no-such-bucket/x", s3_endpoint)
