"""``minjiang serve``: loopback by default, a warning for any other host, no store
created, and the web package's templates and CSS shipped as package data."""

from __future__ import annotations

import fnmatch
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("uvicorn", reason="the web extra is not installed (pip install minjiang[web])")

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def uvicorn_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """uvicorn.run recorded instead of serving (it would block)."""
    import uvicorn

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append({"app": app, **kw}))
    return calls


def _serve(*args: str) -> None:
    """``minjiang serve ARGS`` through the console entry point; a clean exit passes."""
    from minjiang.core.cli import main

    try:
        main(["serve", *args])
    except SystemExit as done:
        if done.code not in (0, None):
            raise


def test_serve_binds_loopback_by_default(tmp_path, uvicorn_calls, capsys) -> None:
    from minjiang.storage import open_store

    open_store(tmp_path / "store")
    _serve("--store", str(tmp_path / "store"))
    (call,) = uvicorn_calls
    assert call["host"] == "127.0.0.1" and call["port"] == 8765
    assert call["app"].state.catalog.store.url.endswith("/store")
    assert call["app"].state.max_download_bytes == 256 * 2**20
    out = capsys.readouterr()
    assert "http://127.0.0.1:8765/" in out.out and "authentication" not in out.err


def test_another_host_is_explicit_and_warned(tmp_path, uvicorn_calls, capsys) -> None:
    from minjiang.storage import open_store

    open_store(tmp_path / "store")
    _serve("--store", str(tmp_path / "store"), "--host", "0.0.0.0", "--port", "9001")
    assert uvicorn_calls[0]["host"] == "0.0.0.0" and uvicorn_calls[0]["port"] == 9001
    err = capsys.readouterr().err
    assert "warning" in err and "no authentication" in err and "0.0.0.0:9001" in err


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--port", "70000"), "--port 70000 must be between 1 and 65535"),
        (("--max-download-mib", "0"), "--max-download-mib 0"),
    ],
)
def test_bad_options_are_refused(tmp_path, uvicorn_calls, capsys, args, words) -> None:
    from minjiang.storage import open_store

    open_store(tmp_path / "store")
    with pytest.raises(SystemExit) as exit_:
        _serve("--store", str(tmp_path / "store"), *args)
    assert exit_.value.code == 2 and words in capsys.readouterr().err
    assert uvicorn_calls == []


@pytest.mark.parametrize("scheme", ["", "file://"])
def test_a_missing_store_is_not_created(tmp_path, uvicorn_calls, capsys, scheme) -> None:
    with pytest.raises(SystemExit):
        _serve("--store", scheme + str(tmp_path / "typo"))
    err = capsys.readouterr().err
    assert "no store at" in err and "--store" in err
    assert not (tmp_path / "typo").exists() and uvicorn_calls == []


def test_is_loopback() -> None:
    from minjiang.web._app import is_loopback

    for host in ("127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "::", "192.168.1.10", "example.org", ""):
        assert not is_loopback(host), host


def test_web_package_is_mapped_and_ships_its_templates_and_css() -> None:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    tool = data["tool"]["setuptools"]
    assert tool["package-dir"]["minjiang.web"] == "web"
    assert "minjiang.web" in tool["packages"]
    assert (ROOT / "web" / "py.typed").exists()
    patterns = tool["package-data"]["minjiang.web"] + tool["package-data"]["*"]
    shipped = [
        p.relative_to(ROOT / "web").as_posix()
        for p in (ROOT / "web").rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts
    ]
    assert {"templates/base.html", "templates/dataset.html", "static/style.css"} <= set(shipped)
    for rel in shipped:
        assert any(fnmatch.fnmatch(rel, pat) for pat in patterns), (
            f"web/{rel} is not package data: add its pattern to "
            "[tool.setuptools.package-data] 'minjiang.web'"
        )
    web_extra = " ".join(data["project"]["optional-dependencies"]["web"])
    for package in ("fastapi", "uvicorn", "jinja2"):
        assert package in web_extra


def test_bare_import_of_the_folder_fails_loudly() -> None:
    out = subprocess.run(
        [sys.executable, "-c", "import web"], cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode != 0 and "minjiang.web" in out.stderr


def test_import_minjiang_web_is_light() -> None:
    code = (
        "import sys, minjiang.web\n"
        "print(','.join(m for m in ('fastapi', 'uvicorn', 'starlette', 'jinja2') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
