"""Hostile names and store URLs: each is refused with a typed error, and nothing is
created outside the temporary store.

Over 2,000 cases: strings with NUL and control characters, ``..`` segments, absolute
and Windows paths, backslashes, Unicode look-alikes that NFKC-normalise to ``..`` or
``/``, bidi overrides, over-long strings, ``file://`` and ``s3://`` URLs, empty and
blank strings. Each goes where a user can put a name: a dataset reference, the name a
step publishes, a step id, an operator name, a reader name, an ingest path, a catalog
lookup, and the command line (``minjiang catalog show``, ``minjiang plan -i``).
Store URLs go through :func:`minjiang.storage.open_store` and ``minjiang.Runtime``.
"""

from __future__ import annotations

import collections
import contextlib
import io
import os
import re
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from minjiang.core.errors import MinjiangError

pytestmark = pytest.mark.fuzz

# Unicode that NFKC-normalises to '.', '..', '/' or '\': look-alikes of path syntax.
_LOOKALIKE_DOTS = ["\uff0e\uff0e", "\u2025", "\u2024\u2024", "\ufe52\ufe52", ".\u2024"]
_LOOKALIKE_SLASHES = ["\uff0f", "\uff3c", "\ufe68"]
# slashes that only look alike (no normalisation makes them '/')
_OTHER_SLASHES = ["\u2215", "\u2044", "\u29f8"]


def _fragments(outside: Path) -> list[str]:
    frags = [
        "",
        " ",
        "\t",
        "\x00",
        "a\x00b",
        "..",
        ".",
        "../x",
        "x/../../y",
        "a/./b",
        "a//b",
        "/",
        str(outside / "abs"),
        "/etc/passwd",
        "C:\\windows\\x",
        "\\\\server\\share\\x",
        "a\\b",
        "..\\..\\x",
        "file:///etc/passwd",
        "file://" + str(outside / "f"),
        "s3://bucket/../x",
        "s3://Bad_Bucket/x",
        "~root/x",
        "%2e%2e%2fx",
        "\u202ecod.exe",
        "\ufeffbom",
        "a\u200bb",
        "名前/データ",
        "emoji-\U0001f600",
        "x" * 300,
        "y" * 5000,
        "a/" * 40 + "b",
        "a:b:c",
        "*",
        "a?b",
        "<x>",
        "|x",
        '"x"',
        "x;rm -rf",
        "$(id)",
        "`id`",
        "[red]x[/]",
        "-x",
        "_x",
        ".hidden",
        "x.",
        "x ",
        " x",
    ]
    frags += [chr(c) for c in (*range(1, 32), 127, 0x85, 0x2028, 0x2029)]
    frags += [f"a{chr(c)}b" for c in (1, 8, 10, 13, 27, 31, 127)]
    frags += _LOOKALIKE_DOTS + [f"a/{d}/b" for d in _LOOKALIKE_DOTS]
    frags += [f"a{s}b" for s in _LOOKALIKE_SLASHES + _OTHER_SLASHES] + [
        f"{d}{s}x" for d in _LOOKALIKE_DOTS for s in _LOOKALIKE_SLASHES
    ]
    return frags


def hostile_strings(outside: Path) -> list[str]:
    """Distinct hostile strings: each fragment alone and wrapped in plausible names."""
    out: list[str] = []
    for frag in _fragments(outside):
        for wrap in ("{}", "ok/{}", "{}/ok", "ok-{}", "ok/{}/ok"):
            out.append(wrap.format(frag))
    seen: set[str] = set()
    return [s for s in out if not (s in seen or seen.add(s))]  # type: ignore[func-returns-value]


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}(/[A-Za-z0-9][A-Za-z0-9._-]{0,63}){0,7}")


def _is_plain_name(s: str) -> bool:
    """Legitimate dataset names after all: wrapping a blank can make one, and a
    look-alike inside a segment normalises to a harmless name (``ok-．．`` is ``ok-..``)."""
    n = unicodedata.normalize("NFKC", s)
    return bool(_NAME.fullmatch(n)) and not any(p in (".", "..") for p in n.split("/"))


def _is_step_id(s: str) -> bool:
    return bool(re.fullmatch(r"[a-z_][a-z0-9_]{0,63}", s))


class Outcomes:
    def __init__(self) -> None:
        self.cases = 0
        self.typed: collections.Counter[str] = collections.Counter()
        self.by_sink: collections.Counter[str] = collections.Counter()
        self.untyped: list[tuple[str, str, str]] = []
        self.accepted: list[tuple[str, str]] = []

    def expect_typed(self, sink: str, value: str, call: Callable[[], Any]) -> None:
        self.cases += 1
        self.by_sink[sink] += 1
        try:
            call()
        except MinjiangError as err:
            self.typed[type(err).__name__] += 1
            return
        except Exception as err:
            self.untyped.append((sink, repr(value[:80]), f"{type(err).__name__}: {str(err)[:160]}"))
            return
        self.accepted.append((sink, repr(value[:80])))


def _tree(root: Path) -> set[str]:
    return {
        os.path.relpath(os.path.join(d, n), root)
        for d, dirs, files in os.walk(root)
        for n in dirs + files
    }


@pytest.fixture
def hostile_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    import minjiang
    from minjiang.core._demo import make_demo_inputs

    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    outside = tmp_path / "outside"
    outside.mkdir()
    cube, _ = make_demo_inputs(tmp_path / "data", years=1, ny=8, nx=8)
    store = tmp_path / "store"
    rt = minjiang.Runtime(store=store, executor="local", memory_budget="1GiB")
    rt.ingest("array.zarr", str(cube), name="hz/sst")
    yield {"rt": rt, "root": tmp_path, "store": store, "outside": outside, "cwd": cwd}
    rt.close()


def _pipeline(step: dict[str, Any]) -> dict[str, Any]:
    return {"name": "hostile", "steps": [step]}


def test_hostile_names_get_typed_errors(hostile_world: dict[str, Any], reliability_report) -> None:
    from minjiang.core.cli import main

    rt = hostile_world["rt"]
    root: Path = hostile_world["root"]
    store: Path = hostile_world["store"]
    before = _tree(root) - {p for p in _tree(root) if p.startswith("store")}
    strings = [s for s in hostile_strings(hostile_world["outside"]) if not _is_plain_name(s)]
    out = Outcomes()
    reduce = {"operator": "array.reduce", "params": {"dims": ["time"]}}
    for s in strings:
        out.expect_typed(
            "dataset_ref",
            s,
            lambda s=s: rt.plan(_pipeline({"id": "r", **reduce, "inputs": {"x": s}})),
        )
        out.expect_typed(
            "publish_name",
            s,
            lambda s=s: rt.plan(
                _pipeline({"id": "r", **reduce, "inputs": {"x": "hz/sst"}, "name": s})
            ),
        )
        if not _is_step_id(s):
            out.expect_typed(
                "step_id",
                s,
                lambda s=s: rt.plan(_pipeline({"id": s, **reduce, "inputs": {"x": "hz/sst"}})),
            )
        out.expect_typed(
            "operator",
            s,
            lambda s=s: rt.plan(_pipeline({"id": "r", "operator": s, "inputs": {"x": "hz/sst"}})),
        )
        out.expect_typed(
            "reader",
            s,
            lambda s=s: rt.plan(_pipeline({"id": "r", "reader": s, "paths": ["x.zarr"]})),
        )
        out.expect_typed("ingest_path", s, lambda s=s: rt.ingest("array.zarr", [s]))
        out.expect_typed("catalog_lookup", s, lambda s=s: rt.result(s))
    for s in strings[::4]:  # the command line: one red line, exit status 2
        for args in (["catalog", "show", "--", s], ["plan", "missing.yaml", "-i", f"x={s}"]):
            err = io.StringIO()

            def cli(args: list[str] = args, err: io.StringIO = err) -> None:
                # the console writes to whatever sys.stderr is when it prints: redirect
                # that (setting the console's file would pin it to this test's stream)
                try:
                    with contextlib.redirect_stderr(err):
                        main(_with_store(args, store))
                except SystemExit as stop:
                    if stop.code != 2 or err.getvalue().count("\n") != 1:
                        raise AssertionError(f"exit {stop.code}: {err.getvalue()!r}") from None
                    raise CliRefusedWithExit2 from None

            out.expect_typed("cli", s, cli)
    after = _tree(root) - {p for p in _tree(root) if p.startswith("store")}
    created = sorted(after - before)
    reliability_report(
        cases=out.cases,
        distinct_strings=len(strings),
        typed_errors=sum(out.typed.values()),
        typed_by_class=dict(sorted(out.typed.items())),
        by_sink=dict(sorted(out.by_sink.items())),
        untyped=len(out.untyped),
        accepted=len(out.accepted),
        created_outside_store=len(created),
    )
    assert out.untyped == [], out.untyped[:10]
    assert out.accepted == [], out.accepted[:10]
    assert created == []
    assert out.cases >= 2000


def _with_store(args: list[str], store: Path) -> list[str]:
    if "--" in args:
        k = args.index("--")
        return [*args[:k], "--store", str(store), *args[k:]]
    return [*args, "--store", str(store)]


class CliRefusedWithExit2(MinjiangError):
    """The command line refused the input with one red line and exit status 2."""


# ---------------------------------------------------------------------- store URLs
def hostile_store_urls(root: Path) -> list[str]:
    urls = [
        "",
        " ",
        "\t\n",
        "\x00",
        f"{root}/st\x00ore",
        "s3://",
        "s3:///prefix",
        "file://",
        "file://host/path",
        "ftp://example.org/x",
        "gs://bucket/x",
        "http://example.org/store",
        "javascript:alert(1)",
        "data:text/plain,x",
        "x" * 5000,
        f"{root}/" + "y" * 300,
        f"{root}/" + "a/" * 2100,
        "s3://bucket/\x00",
        "s3://bucket/" + "k" * 5000,
    ]
    for c in [*range(1, 32), 127]:
        urls.append(f"{root}/ctl{chr(c)}store")
        urls.append(f"file://{root}/f{chr(c)}x")
    for bucket in [
        "A_B",
        "ab",
        "-bad",
        "bad-",
        "bucket..x",
        "192.168.0.1",
        "b" * 64,
        "UPPER",
        "xn--a",
        "a b",
    ]:
        urls.append(f"s3://{bucket}/prefix")
    return urls


def test_hostile_store_urls_get_typed_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reliability_report
) -> None:
    import minjiang
    from minjiang.storage import open_store

    monkeypatch.chdir(tmp_path)
    # no credentials: a bucket name must be refused by its form, never by the network
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    before = _tree(tmp_path)
    out = Outcomes()
    for url in hostile_store_urls(tmp_path):
        out.expect_typed("open_store", url, lambda url=url: open_store(url))
        out.expect_typed(
            "Runtime",
            url,
            lambda url=url: minjiang.Runtime(store=url, executor="local", entry_points=False),
        )
    created = sorted(_tree(tmp_path) - before)
    reliability_report(
        cases=out.cases,
        typed_errors=sum(out.typed.values()),
        typed_by_class=dict(sorted(out.typed.items())),
        by_sink=dict(sorted(out.by_sink.items())),
        untyped=len(out.untyped),
        accepted=len(out.accepted),
        created_outside_store=len(created),
    )
    assert out.untyped == [], out.untyped[:10]
    assert out.accepted == [], out.accepted[:10]
    assert created == []


def test_lookalikes_do_not_become_dot_dot() -> None:
    """The look-alikes used above really do normalise to path syntax (so the test
    exercises what it claims to)."""
    assert all(".." in unicodedata.normalize("NFKC", d) for d in _LOOKALIKE_DOTS)
    assert all(unicodedata.normalize("NFKC", s) in ("/", "\\") for s in _LOOKALIKE_SLASHES)
