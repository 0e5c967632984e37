"""Conformance tests for :class:`minjiang.storage.Store` implementations.

Subclass :class:`StoreTests` in a test module and provide a ``store`` fixture that
returns a fresh store (opened with :func:`~minjiang.storage.open_store`, so holding
only its ``minjiang.json`` marker)::

    from minjiang.storage.testing import StoreTests

    class TestMyStore(StoreTests):
        @pytest.fixture
        def store(self, tmp_path):
            return open_store(f"mine://{tmp_path}")

Every test runs against that store; a store that lacks a capability (for example
atomic exclusive create) is skipped for that test with the reason shown, never
silently.
"""

from __future__ import annotations

import pickle
import threading

import pytest
from minjiang.errors import InvalidNameError, KeyNotFoundError, StoreError
from minjiang.storage._store import MARKER_KEY, Store, open_store

__all__ = ["HOSTILE_KEYS", "StoreTests"]

HOSTILE_KEYS = [
    "../escape",
    "a/../../escape",
    "/etc/passwd",
    "a//b",
    "a/./b",
    "a\\b",
    "..\\escape",
    "a\x00b",
    ".",
    "..",
    "\u2025/x",  # TWO DOT LEADER, NFKC-normalises to '..'
    "ｘ/../y",
    "a b",
    "x" * 2000,
]


def _race_create(store: Store, key: str, *, writers: int) -> list[int]:
    """Let ``writers`` threads create ``key`` at once; return the indices of the winners."""
    barrier = threading.Barrier(writers)
    wins: list[int] = []
    errors: list[BaseException] = []

    def go(i: int) -> None:
        try:
            barrier.wait()
            if store.create_bytes(key, f"writer-{i}".encode()):
                wins.append(i)
        except BaseException as err:  # reported by the assertion below
            errors.append(err)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return wins


class StoreTests:
    """The contract every store kind must meet (zarr's ``StoreTests`` pattern)."""

    # -------------------------------------------------------------- basics
    def test_marker(self, store: Store) -> None:
        assert store.exists(MARKER_KEY)
        assert store.read_json(MARKER_KEY) == {"format": 1}

    def test_capability_flags(self, store: Store) -> None:
        assert isinstance(store.supports_rename, bool)
        assert isinstance(store.supports_exclusive_create, bool)
        assert isinstance(store.url, str) and "://" in store.url

    def test_reopen_by_url(self, store: Store) -> None:
        store.write_bytes("reopen/k", b"v")
        again = open_store(store.url)
        assert type(again) is type(store)
        assert again.url == store.url
        assert again.read_bytes("reopen/k") == b"v"

    def test_pickle(self, store: Store) -> None:
        store.write_bytes("p/k", b"pickled")
        clone = pickle.loads(pickle.dumps(store))
        assert clone == store
        assert clone.read_bytes("p/k") == b"pickled"

    # -------------------------------------------------------------- bytes
    @pytest.mark.parametrize("data", [b"", b"\x00\xff" * 3, bytes(range(256)) * 40])
    def test_write_read_roundtrip(self, store: Store, data: bytes) -> None:
        store.write_bytes("a/b/c.bin", data)
        assert store.read_bytes("a/b/c.bin") == data

    def test_overwrite(self, store: Store) -> None:
        store.write_bytes("k", b"one")
        store.write_bytes("k", b"two-longer")
        store.write_bytes("k", b"3")
        assert store.read_bytes("k") == b"3"
        assert store.list("") == sorted([MARKER_KEY, "k"])

    def test_read_missing(self, store: Store) -> None:
        with pytest.raises(KeyNotFoundError, match="no/such") as info:
            store.read_bytes("no/such/key")
        assert isinstance(info.value, FileNotFoundError)
        assert isinstance(info.value, StoreError)

    def test_read_folder_is_missing(self, store: Store) -> None:
        store.write_bytes("folder/inside", b"x")
        with pytest.raises(KeyNotFoundError):
            store.read_bytes("folder")

    def test_create_bytes(self, store: Store) -> None:
        assert store.create_bytes("c/k", b"first") is True
        assert store.create_bytes("c/k", b"second") is False
        assert store.read_bytes("c/k") == b"first"

    def test_create_race_has_one_winner(self, store: Store) -> None:
        if not store.supports_exclusive_create:
            pytest.skip(f"{type(store).__name__} at {store.url} has no atomic exclusive create")
        for trial in range(5):
            wins = _race_create(store, f"race/{trial}", writers=8)
            assert len(wins) == 1, f"trial {trial}: {len(wins)} writers won: {wins}"
            assert store.read_bytes(f"race/{trial}") == f"writer-{wins[0]}".encode()

    def test_concurrent_overwrites_never_torn(self, store: Store) -> None:
        payloads = [bytes([i]) * 200_000 for i in range(4)]
        store.write_bytes("torn", payloads[0])
        stop = threading.Event()
        seen: list[bytes] = []
        errors: list[BaseException] = []

        def writer(p: bytes) -> None:
            try:
                for _ in range(5):
                    store.write_bytes("torn", p)
            except BaseException as err:
                errors.append(err)

        def reader() -> None:
            try:
                while not stop.is_set():
                    seen.append(store.read_bytes("torn"))
            except BaseException as err:
                errors.append(err)

        r = threading.Thread(target=reader)
        r.start()
        ws = [threading.Thread(target=writer, args=(p,)) for p in payloads]
        for w in ws:
            w.start()
        for w in ws:
            w.join()
        stop.set()
        r.join()
        assert not errors, errors
        assert seen
        assert all(s in payloads for s in seen)

    def test_exists(self, store: Store) -> None:
        store.write_bytes("e/x/y", b"1")
        assert store.exists("e/x/y")
        assert not store.exists("e/x")  # a folder is not a key
        assert not store.exists("e/nope")

    # -------------------------------------------------------------- listing
    def test_list_recursive_sorted(self, store: Store) -> None:
        for key in ["l/b/2", "l/a", "l/b/1", "l/c/d/e", "m/x"]:
            store.write_bytes(key, b"")
        assert store.list("l") == ["l/a", "l/b/1", "l/b/2", "l/c/d/e"]
        assert store.list("l/") == store.list("l")
        assert store.list("l/b") == ["l/b/1", "l/b/2"]
        assert store.list("") == sorted(["l/a", "l/b/1", "l/b/2", "l/c/d/e", "m/x", MARKER_KEY])
        assert store.list("nothing/here") == []

    def test_list_prefix_is_a_folder(self, store: Store) -> None:
        store.write_bytes("ab/x", b"")
        store.write_bytes("abc/y", b"")
        assert store.list("ab") == ["ab/x"]

    def test_list_dir(self, store: Store) -> None:
        for key in ["d/f1", "d/sub/f2", "d/sub/deeper/f3", "d/g/h"]:
            store.write_bytes(key, b"")
        assert store.list_dir("d") == ["f1", "g", "sub"]
        assert store.list_dir("d/sub") == ["deeper", "f2"]
        assert store.list_dir("missing") == []
        assert "d" in store.list_dir("")

    def test_no_temporary_files_left(self, store: Store) -> None:
        store.write_bytes("t/a", b"1")
        store.create_bytes("t/b", b"2")
        store.create_bytes("t/b", b"3")
        store.write_json("t/c", {"x": 1})
        assert store.list("t") == ["t/a", "t/b", "t/c"]

    def test_temporary_files_are_never_listed(self, store: Store) -> None:
        from zarr.core.buffer import default_buffer_prototype
        from zarr.core.sync import sync

        # what a writer killed between its temporary file and the rename leaves
        zs = store.zarr_store("u")

        async def put() -> None:
            buf = default_buffer_prototype().buffer.from_bytes(b"half")
            await zs.set("v/c/0.0123abcd.partial", buf)
            await zs.set(".tmp-zarr.json.0011", buf)
            await zs.set("v/c/1", buf)

        sync(put())  # on zarr's own event loop, which its stores are bound to
        assert store.list("u") == ["u/v/c/1"]
        assert store.list_dir("u") == ["v"]
        assert store.list_dir("u/v/c") == ["1"]

    # -------------------------------------------------------------- deletion
    def test_delete(self, store: Store) -> None:
        store.write_bytes("del/k", b"1")
        store.delete("del/k")
        assert not store.exists("del/k")
        store.delete("del/k")  # deleting what is gone is fine

    def test_delete_prefix(self, store: Store) -> None:
        for key in ["dp/a/1", "dp/a/2/3", "dp/ab/4", "dp/b"]:
            store.write_bytes(key, b"")
        store.delete_prefix("dp/a")
        assert store.list("dp") == ["dp/ab/4", "dp/b"]
        store.delete_prefix("dp/a")  # again: nothing to do
        store.delete_prefix("dp/")
        assert store.list("dp") == []
        assert store.exists(MARKER_KEY)

    def test_delete_prefix_refuses_root(self, store: Store) -> None:
        with pytest.raises(StoreError, match="whole store"):
            store.delete_prefix("")
        with pytest.raises(StoreError, match="whole store"):
            store.delete_prefix("/")
        assert store.exists(MARKER_KEY)

    # -------------------------------------------------------------- JSON
    def test_json_helpers(self, store: Store) -> None:
        obj = {"b": [1, 2.5, None], "a": "π", "c": {"z": True, "y": float("nan")}}
        store.write_json("j/obj.json", obj)
        raw = store.read_bytes("j/obj.json")
        assert raw == '{"a":"π","b":[1,2.5,null],"c":{"y":"NaN","z":true}}'.encode()
        assert store.read_json("j/obj.json")["a"] == "π"
        assert store.create_json("j/new.json", {"v": 1}) is True
        assert store.create_json("j/new.json", {"v": 2}) is False
        assert store.read_json("j/new.json") == {"v": 1}

    def test_read_json_invalid(self, store: Store) -> None:
        store.write_bytes("j/bad.json", b"{not json")
        with pytest.raises(StoreError, match="not valid JSON"):
            store.read_json("j/bad.json")

    # -------------------------------------------------------------- hostile keys
    @pytest.mark.parametrize("key", HOSTILE_KEYS, ids=range(len(HOSTILE_KEYS)))
    def test_hostile_keys_rejected(self, store: Store, key: str) -> None:
        root = store.local_path("")
        outside = sorted(root.parent.iterdir()) if root is not None else []
        calls = [
            lambda: store.read_bytes(key),
            lambda: store.write_bytes(key, b"x"),
            lambda: store.create_bytes(key, b"x"),
            lambda: store.exists(key),
            lambda: store.delete(key),
            lambda: store.delete_prefix(key),
            lambda: store.list(key),
            lambda: store.list_dir(key),
            lambda: store.local_path(key),
            lambda: store.zarr_store(key),
            lambda: store.write_json(key, {}),
            lambda: store.create_json(key, {}),
        ]
        for call in calls:
            with pytest.raises(InvalidNameError):
                call()
        assert store.list("") == [MARKER_KEY]
        if root is not None:
            assert sorted(root.parent.iterdir()) == outside

    # -------------------------------------------------------------- zarr
    def test_zarr_store_roundtrip(self, store: Store) -> None:
        import numpy as np
        import zarr

        zs = store.zarr_store("z/arrays.zarr")
        arr = zarr.create_array(zs, name="v", shape=(4, 6), chunks=(2, 3), dtype="int32")
        arr[:] = np.arange(24, dtype="int32").reshape(4, 6)
        keys = store.list("z/arrays.zarr/v")
        assert "z/arrays.zarr/v/zarr.json" in keys
        assert "z/arrays.zarr/v/c/1/1" in keys
        assert store.read_bytes("z/arrays.zarr/v/c/1/1")
        ro = zarr.open_array(store.zarr_store("z/arrays.zarr", read_only=True), path="v", mode="r")
        np.testing.assert_array_equal(ro[:], np.arange(24).reshape(4, 6))
        with pytest.raises(ValueError, match="read-only"):
            ro[0, 0] = 5

    def test_local_path(self, store: Store) -> None:
        store.write_bytes("lp/k", b"local")
        path = store.local_path("lp/k")
        if path is None:
            return  # not a folder-backed store
        assert path.read_bytes() == b"local"
        assert path.is_absolute()
