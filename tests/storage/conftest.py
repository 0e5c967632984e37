"""Fixtures for the storage tests: a local store, and an S3 store on a loopback moto server."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from minjiang.storage import LocalStore, ObjectStore, Store, open_store

BUCKET = "minjiang-test"


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    """A fresh local store in a temporary folder."""
    st = open_store(tmp_path / "store")
    assert isinstance(st, LocalStore)
    return st


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """An S3-compatible server (moto) on 127.0.0.1, with a bucket and dummy credentials."""
    server_mod = pytest.importorskip(
        "moto.server", reason="moto[server] is needed for the S3 store tests"
    )
    boto3 = pytest.importorskip("boto3")
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "minjiang-test",
        "AWS_SECRET_ACCESS_KEY": "minjiang-test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "NO_PROXY": ",".join(filter(None, [os.environ.get("NO_PROXY"), "127.0.0.1", "localhost"])),
    }
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        mp.delenv("AWS_PROFILE", raising=False)
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(
            Bucket=BUCKET
        )
        try:
            yield endpoint
        finally:
            server.stop()


@pytest.fixture
def s3_store(s3_endpoint: str) -> Store:
    """A fresh S3 store under a unique prefix of the test bucket."""
    st = open_store(f"s3://{BUCKET}/{uuid.uuid4().hex}")
    assert isinstance(st, ObjectStore)
    return st


@pytest.fixture(params=["local", "s3"])
def any_store(request: pytest.FixtureRequest) -> Store:
    """Each store kind in turn."""
    if request.param == "local":
        return request.getfixturevalue("store")
    return request.getfixturevalue("s3_store")
