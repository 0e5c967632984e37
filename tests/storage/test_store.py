"""Store conformance (local folder and S3 on loopback) and open_store."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from minjiang.core.errors import StoreError
from minjiang.storage import LocalStore, ObjectStore, Store, open_store
from minjiang.storage.testing import StoreTests


class TestLocalStore(StoreTests):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Store:
        return open_store(tmp_path / "local")


class TestObjectStore(StoreTests):
    @pytest.fixture
    def store(self, s3_store: Store) -> Store:
        return s3_store


def test_open_store_default_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MINJIANG_STORE", raising=False)
    st = open_store()
    assert isinstance(st, LocalStore)
    assert st.root == tmp_path / "minjiang-store"
    assert (tmp_path / "minjiang-store" / "minjiang.json").read_text() == '{"format":1}'
    monkeypatch.setenv("MINJIANG_STORE", str(tmp_path / "from-env"))
    assert open_store().root == tmp_path / "from-env"


def test_open_store_file_url_and_path(tmp_path: Path) -> None:
    a = open_store(f"file://{tmp_path}/s")
    b = open_store(tmp_path / "s")
    c = open_store(str(tmp_path / "s"))
    assert a == b == c
    assert a.url == (tmp_path / "s").as_uri()
    assert open_store(a) is a


def test_open_store_unknown_scheme_lists_supported() -> None:
    with pytest.raises(StoreError) as info:
        open_store("gs://bucket/x")
    msg = str(info.value)
    assert "'gs'" in msg and "s3://" in msg and "file://" in msg


def test_open_store_remote_file_host_refused() -> None:
    with pytest.raises(StoreError, match="only local paths"):
        open_store("file://otherhost/x")


def test_open_store_root_is_a_file(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_text("x")
    with pytest.raises(StoreError, match="not a folder"):
        open_store(f)


def test_open_store_other_format(tmp_path: Path) -> None:
    root = tmp_path / "s"
    root.mkdir()
    (root / "minjiang.json").write_text('{"format": 2}')
    with pytest.raises(StoreError, match="format 2"):
        open_store(root)


def test_local_temporary_files_are_hidden_and_cleaned(store: Store) -> None:
    store.write_bytes("a/b", b"1")
    path = store.local_path("a/b")
    assert path is not None
    assert sorted(p.name for p in path.parent.iterdir()) == ["b"]
    # a stray temporary file of a killed writer is never listed
    (path.parent / ".tmp-b.deadbeef").write_bytes(b"partial")
    assert store.list("a") == ["a/b"]
    assert store.list_dir("a") == ["b"]


def test_object_store_options_and_url(s3_store: Store) -> None:
    assert isinstance(s3_store, ObjectStore)
    assert s3_store.url.startswith("s3://minjiang-test/")
    assert s3_store.storage_options["endpoint_url"] == os.environ["AWS_ENDPOINT_URL"]
    assert s3_store.local_path("x") is None
    assert s3_store.supports_exclusive_create is True
    assert s3_store.supports_rename is False


def test_object_store_without_conditional_writes(s3_endpoint: str) -> None:
    st = ObjectStore("s3://minjiang-test/no-cond", exclusive_create=False)
    assert st.supports_exclusive_create is False
    assert st.create_bytes("k", b"1") is True
    assert st.create_bytes("k", b"2") is False
    assert st.read_bytes("k") == b"1"


def test_object_store_bad_url() -> None:
    with pytest.raises(StoreError, match="s3://bucket/prefix"):
        ObjectStore("s3:///nobucket")


def test_object_store_shares_its_settings_but_never_its_credentials() -> None:
    from minjiang.storage import ObjectStore

    store = ObjectStore(
        "s3://bucket/prefix",
        {
            "key": "AKIDSECRETKEYID",
            "secret": "s3cr3t-value",
            "token": "session-token",
            "endpoint_url": "http://127.0.0.1:9000",
            "client_kwargs": {"region_name": "eu-west-1", "aws_secret_access_key": "s3cr3t-2"},
            "config_kwargs": {"read_timeout": 3},
            "retries": 2,
        },
    )
    shared = store.shared_options()
    assert "s3cr3t" not in repr(shared) and "AKID" not in repr(shared)
    assert "session-token" not in repr(shared)
    assert shared["endpoint_url"] == "http://127.0.0.1:9000"
    assert shared["client_kwargs"] == {"region_name": "eu-west-1"}
    assert shared["config_kwargs"]["read_timeout"] == 3
    assert shared["config_kwargs"]["retries"]["total_max_attempts"] == 4
    # another process opens the store configured as this one
    again = ObjectStore(store.url, shared)
    assert (
        again.call_retries == 2
        and again.storage_options["config_kwargs"] == shared["config_kwargs"]
    )
    assert again.shared_options() == shared


def test_a_folder_store_shares_nothing_but_its_url(tmp_path) -> None:
    from minjiang.storage import open_store

    assert open_store(tmp_path / "s").shared_options() == {}
