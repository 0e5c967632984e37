"""``minjiang doctor``: plugins and their API, backends, Ray, GPU and store checks, each
problem with its fix, exit status 1 on a problem, and ``--json``."""

from __future__ import annotations

import json
import socket
from importlib import metadata
from pathlib import Path
from typing import Any

import minjiang as mj
import pytest
from minjiang.core._doctor import Check, _ray, doctor, probe_address
from minjiang.core.cli import app
from minjiang.core.errors import ParameterError
from typer.testing import CliRunner

from tests.core._apiplugins import plugin_with_api

runner = CliRunner(env={"COLUMNS": "200"})


@pytest.fixture(autouse=True)
def _no_cluster(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No recorded minjiang cluster and no RAY_ADDRESS unless a test sets them."""
    monkeypatch.setenv("MINJIANG_CLUSTER_DIR", str(tmp_path / "cluster-state"))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)


def _by(checks: list[Check], area: str, name: str | None = None) -> list[Check]:
    return [c for c in checks if c.area == area and (name is None or c.name == name)]


def _store(tmp_path: Path) -> Any:
    from minjiang.storage import open_store

    return open_store(tmp_path / "store")


def test_a_healthy_installation(tmp_path: Path) -> None:
    _store(tmp_path)
    checks = doctor(str(tmp_path / "store"))
    assert not [c for c in checks if c.status == "problem"], checks
    plugins = {c.name for c in _by(checks, "plugins")}
    assert plugins >= {"array", "forestry", "materials", "medicine", "ocean"}
    assert all(c.status == "ok" for c in _by(checks, "api")), _by(checks, "api")
    ocean = _by(checks, "plugins", "ocean")[0]
    assert "minjiang.plugins.ocean (minjiang 0.1.0)" in ocean.detail and "operators" in ocean.detail
    assert _by(checks, "backends", "numba")[0].status == "ok"
    assert len(_by(checks, "backends", "numba.cuda")) == 1  # a device, or why none
    assert {c.status for c in _by(checks, "store")} == {"ok"}
    assert {c.name for c in _by(checks, "store")} == {"readable", "writable", "catalog"}
    assert list((tmp_path / "store").glob(".tmp-doctor-*")) == []  # the probe is removed
    for c in checks:
        if c.status in ("warning", "problem"):
            assert c.fix, c


def test_a_store_that_does_not_exist_yet_is_not_created(tmp_path: Path) -> None:
    [check] = _by(doctor(str(tmp_path / "later")), "store")
    assert check.status == "info" and "first ingest or run creates it" in check.detail
    assert not (tmp_path / "later").exists()


def test_an_unwritable_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from minjiang.storage import LocalStore

    _store(tmp_path)

    def refuse(self: Any, key: str, data: bytes) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(LocalStore, "write_bytes", refuse)
    [check] = _by(doctor(str(tmp_path / "store")), "store", "writable")
    assert check.status == "problem" and "PermissionError" in check.detail
    assert "permissions" in check.fix


def test_an_inconsistent_catalog(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.write_json("catalog/names/lab/gone.json", {"id": "0" * 32, "history": []})
    store.write_bytes("catalog/records/" + "1" * 32 + ".json", b"{not json")
    checks = doctor(str(tmp_path / "store"))
    names = _by(checks, "store", "catalog names")[0]
    assert names.status == "problem" and "lab/gone -> " + "0" * 32 in names.detail
    assert "point the name" in names.fix
    records = _by(checks, "store", "catalog records")[0]
    assert records.status == "problem" and "1" * 32 in records.detail
    assert "minjiang verify" in records.fix


def _listening() -> socket.socket:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    return server


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_ray_addresses(tmp_path: Path) -> None:
    with _listening() as server:
        port = server.getsockname()[1]
        for address in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}", f"http://127.0.0.1:{port}"):
            assert probe_address(address)[2] is None
            [check] = _by(_ray(address), "ray", "address")
            assert check.status == "ok", check
    dead = f"127.0.0.1:{_closed_port()}"
    [check] = _by(doctor(str(tmp_path / "s"), dead), "ray", "address")  # the whole command
    assert check.status == "problem" and "does not answer" in check.detail
    assert "ray start --head" in check.fix
    with pytest.raises(ParameterError, match="host:port"):
        probe_address("not an address")


def test_a_recorded_minjiang_cluster(tmp_path: Path) -> None:
    from minjiang.core._cluster import ClusterState, cluster_dir

    with _listening() as server:
        state = ClusterState(
            address=f"127.0.0.1:{server.getsockname()[1]}",
            dashboard="http://127.0.0.1:1",
            token_path="",
            temp_dir=str(tmp_path / "ray"),
            node_ip="127.0.0.1",
            num_cpus=2,
            num_gpus=0,
            started=0.0,
        )
        state.save(cluster_dir())
        [check] = _by(_ray(None), "ray", "minjiang cluster")
        assert check.status == "ok" and state.address in check.detail
    [check] = _by(_ray(None), "ray", "minjiang cluster")
    assert check.status == "warning" and "does not answer" in check.detail
    assert "minjiang cluster stop" in check.fix


def _plugin_entry_point(monkeypatch: pytest.MonkeyPatch, name: str, module: Any) -> None:
    real = metadata.entry_points

    class _EP:
        group = "minjiang"

        def __init__(self) -> None:
            self.name = name

        def load(self) -> Any:
            if isinstance(module, Exception):
                raise module
            return module

    def fake(**kw: Any) -> list[Any]:
        eps = list(real(**kw))
        return [*eps, _EP()] if kw.get("group") == "minjiang" else eps

    monkeypatch.setattr(metadata, "entry_points", fake)


def test_a_plugin_without_an_api_range_is_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _plugin_entry_point(monkeypatch, "quiet", plugin_with_api("quiet_mod", None))
    [check] = _by(doctor(str(tmp_path / "s")), "api", "quiet")
    assert check.status == "warning"
    assert "MINJIANG_API = '>=" in check.fix and "quiet_mod" in check.fix


def test_an_incompatible_or_broken_plugin_is_a_problem_and_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _plugin_entry_point(monkeypatch, "future", plugin_with_api("future_mod", ">=99.0"))
    [check] = _by(doctor(str(tmp_path / "s")), "api", "future")
    assert check.status == "problem"
    assert "'>=99.0'" in check.detail and f"provides API {mj.API_VERSION}" in check.detail
    out = runner.invoke(app, ["doctor", "--store", str(tmp_path / "s"), "--json"])
    assert out.exit_code == 1, out.output
    doc = json.loads(out.stdout)
    assert doc["ok"] is False and doc["api_version"] == mj.API_VERSION
    assert any(c["name"] == "future" and c["status"] == "problem" for c in doc["checks"])


def test_a_plugin_that_fails_to_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _plugin_entry_point(monkeypatch, "broken", ImportError("No module named 'brokendep'"))
    [check] = _by(doctor(str(tmp_path / "s")), "plugins", "broken")
    assert check.status == "problem" and "brokendep" in check.detail
    assert "fails to import" in check.fix


def test_the_command_prints_a_table_and_exits_0(tmp_path: Path) -> None:
    out = runner.invoke(app, ["doctor", "--store", str(tmp_path / "s")])
    assert out.exit_code == 0, out.output
    assert "minjiang doctor" in out.output and "no problems" in out.output
    doc = json.loads(
        runner.invoke(app, ["doctor", "--store", str(tmp_path / "s"), "--json"]).stdout
    )
    assert doc["ok"] is True
    assert {c["area"] for c in doc["checks"]} >= {
        "plugins",
        "api",
        "backends",
        "ray",
        "gpu",
        "store",
    }
