"""Fuzzed pipelines and parameters: every one is planned or refused with a typed error.

Over 10,000 generated cases, each loaded and *planned* (never run) on a local-executor
runtime whose store holds a few small ingested datasets:

* parameters drawn by hypothesis from each registered operator's JSON schema, valid
  and deliberately invalid (NaN, infinities, huge numbers, wrong types, unknown and
  missing keys), in pipelines of one to three steps wired to real, missing and
  hostile inputs;
* byte-level mutations of valid pipeline YAML files (flips, insertions, deletions,
  duplicated and spliced spans, stray control and non-UTF-8 bytes);
* YAML alias bombs, deep nesting, huge documents, non-UTF-8 text, wrong types at every
  level of the document.

The promise: each case ends in a plan or a :class:`~minjiang.core.errors.MinjiangError`
(0 untyped exceptions), none runs past its time limit (0 hangs), and nothing is
created outside the store (the temporary folder and the working directory are
compared before and after).
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import random
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from minjiang.core.errors import MinjiangError

pytestmark = pytest.mark.fuzz

CASE_SECONDS = 20  # a plan of these small datasets takes milliseconds; this is a hang
SCHEMA_EXAMPLES = 3000
MUTATIONS = 5000
SHAPED = 2400


class _Hang(BaseException):
    """Raised by the alarm inside a case that ran past CASE_SECONDS."""


def _alarm(signum: int, frame: Any) -> None:
    raise _Hang


class Tally:
    """Outcomes of the cases, by kind."""

    def __init__(self) -> None:
        self.cases = 0
        self.plans = 0
        self.typed: collections.Counter[str] = collections.Counter()
        self.untyped: list[tuple[str, str, str]] = []
        self.hangs: list[str] = []
        self.by_source: collections.Counter[str] = collections.Counter()
        self.slowest = 0.0

    def attempt(
        self, rt: Any, source: Any, kind: str, inputs: dict[str, Any] | None = None
    ) -> None:
        self.cases += 1
        self.by_source[kind] += 1
        t0 = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, CASE_SECONDS)
        try:
            rt.plan(source, inputs=inputs)
            self.plans += 1
        except MinjiangError as err:
            self.typed[type(err).__name__] += 1
        except _Hang:
            self.hangs.append(f"{kind}: {_show(source)}")
        except Exception as err:
            self.untyped.append((kind, f"{type(err).__name__}: {str(err)[:200]}", _show(source)))
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        self.slowest = max(self.slowest, time.perf_counter() - t0)

    def figures(self) -> dict[str, Any]:
        return {
            "cases": self.cases,
            "plans": self.plans,
            "typed_errors": sum(self.typed.values()),
            "typed_by_class": dict(sorted(self.typed.items())),
            "untyped": len(self.untyped),
            "hangs": len(self.hangs),
            "by_source": dict(sorted(self.by_source.items())),
            "slowest_case_s": round(self.slowest, 3),
        }


def _show(source: Any) -> str:
    if isinstance(source, bytes | bytearray):
        return repr(bytes(source[:160]))
    if isinstance(source, str):
        return repr(source[:160])
    try:
        return json.dumps(source, default=repr)[:200]
    except Exception:
        return repr(source)[:200]


def _tree(root: Path, skip: Path | None = None) -> set[str]:
    out = set()
    for dirpath, dirnames, filenames in os.walk(root):
        if skip is not None and Path(dirpath) == skip:
            dirnames[:] = []
            continue
        for name in dirnames + filenames:
            out.add(os.path.relpath(os.path.join(dirpath, name), root))
    return out


# ---------------------------------------------------------------------- the world
class World:
    def __init__(self, root: Path) -> None:
        import minjiang
        import numpy as np
        import xarray as xr
        from minjiang.core._demo import make_demo_inputs

        self.root = root
        cube, regions = make_demo_inputs(root / "data", years=1, ny=8, nx=8)
        z = np.linspace(-1000, 400, 6 * 10 * 12, dtype=np.float32).reshape(6, 10, 12)
        image = root / "data" / "image.zarr"
        xr.Dataset(
            {"image": (("z", "y", "x"), z, {"spacing": [2.0, 1.0, 1.0], "units": "HU"})}
        ).to_zarr(image, mode="w", zarr_format=3, consolidated=False)
        mask = root / "data" / "mask.zarr"
        xr.Dataset({"mask": (("z", "y", "x"), (z > 0).astype(np.uint8))}).to_zarr(
            mask, mode="w", zarr_format=3, consolidated=False
        )
        self.store = root / "store"
        self.rt = minjiang.Runtime(store=self.store, executor="local", memory_budget="1GiB")
        for source, name in (
            (cube, "fz/sst"),
            (regions, "fz/regions"),
            (image, "fz/image"),
            (mask, "fz/mask"),
        ):
            self.rt.ingest("array.zarr", str(source), name=name)
        self.cube = str(cube)
        self.operators = dict(self.rt.operators)
        self.readers = sorted(self.rt.readers)
        # pipeline files that are not UTF-8, empty, a folder, too large
        self.files = root / "files"
        self.files.mkdir()
        (self.files / "latin1.yaml").write_bytes("name: café\nsteps: []\n".encode("latin-1"))
        (self.files / "empty.yaml").write_bytes(b"")
        (self.files / "folder.yaml").mkdir()
        (self.files / "big.yaml").write_bytes(b"#" * ((1 << 20) + 1))
        # the working directory of the cases: relative paths land here, if anywhere
        self.cwd = root / "cwd"
        self.cwd.mkdir()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    old = signal.signal(signal.SIGALRM, _alarm)
    w = World(tmp_path_factory.mktemp("fuzz"))
    here = os.getcwd()
    os.chdir(w.cwd)
    try:
        yield w
    finally:
        os.chdir(here)
        w.rt.close()
        signal.signal(signal.SIGALRM, old)


@pytest.fixture(scope="module")
def tally() -> Tally:
    return Tally()


@contextlib.contextmanager
def _nothing_outside(world: World) -> Iterator[dict[str, list[str]]]:
    """Compare the temporary folder (store excluded) and the working directory."""
    found: dict[str, list[str]] = {}
    cwd = Path.cwd()
    before_tmp, before_cwd = _tree(world.root, skip=world.store), set(os.listdir(cwd))
    yield found
    found["tmp"] = sorted(_tree(world.root, skip=world.store) - before_tmp)
    found["cwd"] = sorted(set(os.listdir(cwd)) - before_cwd)


# ---------------------------------------------------------------------- strategies
_JUNK = st.one_of(
    st.sampled_from(
        [
            float("nan"),
            float("inf"),
            float("-inf"),
            1e308,
            -1e308,
            10**30,
            -(10**30),
            2**63,
            0,
            -1,
            "",
            "\x00",
            "../..",
            "a" * 5000,
            True,
            None,
            [],
            {},
            [[[[1]]]],
            {"x": {"y": {"z": 1}}},
        ]
    ),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(),
    st.text(max_size=20),
)


def _number(schema: dict[str, Any], integer: bool) -> st.SearchStrategy[Any]:
    lo = schema.get("minimum", schema.get("exclusiveMinimum"))
    hi = schema.get("maximum", schema.get("exclusiveMaximum"))
    if integer:
        lo_i = None if lo is None else int(lo) + (1 if "exclusiveMinimum" in schema else 0)
        hi_i = None if hi is None else int(hi) - (1 if "exclusiveMaximum" in schema else 0)
        small = st.integers(
            min_value=lo_i if lo_i is not None else -5,
            max_value=min(hi_i, (lo_i or 0) + 10) if hi_i is not None else (lo_i or 0) + 10,
        )
        return st.one_of(small, st.integers(min_value=lo_i, max_value=hi_i))
    full = st.floats(
        min_value=lo,
        max_value=hi,
        exclude_min="exclusiveMinimum" in schema,
        exclude_max="exclusiveMaximum" in schema,
        allow_nan=False,
        allow_infinity=False,
    )
    low = lo if lo is not None else -5.0
    high = min(hi, low + 5.0) if hi is not None else low + 5.0
    small_floats = st.floats(
        min_value=low,
        max_value=high,
        exclude_min="exclusiveMinimum" in schema,
        exclude_max="exclusiveMaximum" in schema and high == hi,
    )
    return st.one_of(small_floats, full)  # mostly sizes a plan can hold, sometimes any


def from_schema(
    schema: dict[str, Any], defs: dict[str, Any], depth: int = 0
) -> st.SearchStrategy[Any]:
    """A strategy for values valid under a pydantic JSON schema (the subset pydantic writes)."""
    if depth > 6:
        return st.none()
    if "$ref" in schema:
        return from_schema(defs[schema["$ref"].rsplit("/", 1)[-1]], defs, depth + 1)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return st.one_of([from_schema(s, defs, depth + 1) for s in schema[key]])
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return from_schema(schema["allOf"][0], defs, depth + 1)
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if isinstance(kind, list):
        return st.one_of([from_schema({**schema, "type": k}, defs, depth) for k in kind])
    if kind == "number":
        return _number(schema, integer=False)
    if kind == "integer":
        return _number(schema, integer=True)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "string":
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True).filter(
                lambda s: len(s) <= schema.get("maxLength", 64)
            )
        return st.one_of(
            st.sampled_from(["time", "y", "x", "z"]),  # the datasets' dims, for dim parameters
            st.text(
                alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)),
                min_size=schema.get("minLength", 0),
                max_size=min(schema.get("maxLength", 12), 12),
            ),
        )
    if kind == "array":
        if "prefixItems" in schema:
            return st.tuples(*(from_schema(s, defs, depth + 1) for s in schema["prefixItems"])).map(
                list
            )
        lo = schema.get("minItems", 0)
        return st.lists(
            from_schema(schema.get("items", {}), defs, depth + 1),
            min_size=lo,
            max_size=max(lo, min(schema.get("maxItems", 4), 4)),
        )
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        required = set(schema.get("required", ()))
        extra = schema.get("additionalProperties")
        base = st.fixed_dictionaries(
            {k: from_schema(v, defs, depth + 1) for k, v in props.items() if k in required},
            optional={
                k: from_schema(v, defs, depth + 1) for k, v in props.items() if k not in required
            },
        )
        if isinstance(extra, dict) and not props:
            return st.dictionaries(
                st.sampled_from(["time", "y", "x", "z", "lat", "q", ""]),
                from_schema(extra, defs, depth + 1),
                max_size=3,
            )
        return base
    return _JUNK


def _spoil(params: dict[str, Any], draw: Any) -> dict[str, Any]:
    """Make valid parameters invalid in one of the ways users and attackers do."""
    out = dict(params)
    how = draw(st.sampled_from(["junk_value", "unknown_key", "drop_key", "wrong_container"]))
    if how == "junk_value" and out:
        out[draw(st.sampled_from(sorted(out)))] = draw(_JUNK)
    elif how == "unknown_key":
        out[draw(st.sampled_from(["sigmma", "", "\x00", "a" * 300, "__class__"]))] = draw(_JUNK)
    elif how == "drop_key" and out:
        out.pop(draw(st.sampled_from(sorted(out))))
    else:
        out = draw(st.sampled_from([[out], "params", 3.5]))  # type: ignore[assignment]
    return out


_REFS = ["fz/sst", "fz/regions", "fz/image", "fz/mask", "fz/sst:sst", "fz/image:image"]


def _refs_for(inp: Any) -> list[str]:
    """Datasets of the fuzz store that meet an input's contract (so that plans happen)."""
    ints = inp.dtypes is not None and set(inp.dtypes) <= {"i", "u"}
    if inp.dims and inp.dims[0] == "z":
        return ["fz/mask"] if ints else ["fz/image", "fz/mask"]
    if inp.dims == ("y", "x") or ints:
        return ["fz/regions"] if inp.dims else ["fz/regions", "fz/mask"]
    if inp.dtypes == ("f",):
        return ["fz/sst", "fz/image"]
    return _REFS


_BAD_REFS: list[Any] = [
    "nope/none",
    "fz/sst:nope",
    "",
    "../../etc/passwd",
    "/abs/path",
    "C:\\x",
    "a\x00b",
    "ｆｚ/sst",
    "a" * 300,
    5,
    2.5,
    None,
    ["fz/sst"],
    {"x": 1},
]


@st.composite
def schema_pipelines(draw: Any, operators: dict[str, Any]) -> dict[str, Any]:
    steps = []
    for k in range(draw(st.integers(1, 3))):
        op = operators[draw(st.sampled_from(sorted(operators)))]
        schema = op.json_schema()
        params = draw(from_schema(schema, schema.get("$defs", {})))
        if draw(st.integers(0, 4)) == 0:
            params = _spoil(params, draw)
        earlier = [s["id"] for s in steps]
        inputs = {}
        for inp in op.inputs:
            if inp.optional and draw(st.integers(0, 3)):
                continue
            roll = draw(st.integers(0, 9))
            if roll == 0:
                inputs[inp.name] = draw(st.sampled_from(_BAD_REFS))
            elif roll <= 2:
                inputs[inp.name] = draw(st.sampled_from(_REFS + earlier))
            else:
                inputs[inp.name] = draw(st.sampled_from(_refs_for(inp) + earlier[-1:]))
        step: dict[str, Any] = {"id": f"s{k}", "operator": op.name, "inputs": inputs}
        if params or draw(st.booleans()):
            step["params"] = params
        if draw(st.integers(0, 9)) == 0:
            step["backend"] = draw(st.sampled_from(["auto", "cpu", "gpu", "tpu", 3]))
        if draw(st.integers(0, 9)) == 0:
            step["name"] = draw(
                st.sampled_from(["fz/out", "fz/out-" + str(k), "..", "/x", "a\x00"])
            )
        steps.append(step)
    return {"name": "fuzz", "steps": steps}


# ---------------------------------------------------------------------- mutation seeds
def _seed_documents(world: World) -> list[bytes]:
    from minjiang.core._demo import DEMO_PIPELINE

    docs = [
        "name: fz.a\nsteps:\n  - id: smooth\n    operator: array.gaussian\n    inputs: {x: fz/sst}\n"
        "    params: {sigma: {time: 0, y: 1.5, x: 1.5}}\n  - id: mean\n    operator: array.reduce\n"
        "    inputs: {x: smooth}\n    params: {dims: [time], stat: mean}\n",
        "name: fz.b\nsteps:\n  - id: p90\n    operator: array.quantile\n    inputs: {x: fz/sst}\n"
        "    params: {dim: time, q: [0.1, 0.9]}\n  - id: zones\n    operator: array.label_stats\n"
        "    inputs: {values: fz/sst, labels: fz/regions}\n",
        "name: fz.c\nsteps:\n  - id: win\n    operator: medicine.hu_window\n    inputs: {image: fz/image}\n"
        "    params: {center: 40, width: 400}\n  - id: smooth\n    operator: medicine.gaussian\n"
        "    inputs: {image: win}\n    params: {sigma_mm: [1.0, 1.0, 1.0]}\n",
        "name: fz.d\nsteps:\n  - id: clim\n    operator: ocean.climatology\n    inputs: {sst: fz/sst}\n"
        "    params: {window_half_width: 5, percentile: 90}\n  - id: anom\n    operator: ocean.anomaly\n"
        "    inputs: {sst: fz/sst, seas: clim}\n",
        "name: fz.e\ninputs: [cube]\nsteps:\n  - id: sst\n    reader: array.zarr\n    paths: $cube\n"
        "  - id: band\n    operator: array.band_math\n    inputs: {a: sst}\n"
        "    params: {expression: '(a - 20) * 2'}\n",
        DEMO_PIPELINE.replace("$cube", world.cube).replace("  - id: zones", "  - id: zones2"),
    ]
    return [d.encode() for d in docs]


_SPECIALS = [
    b"\x00",
    b"\xff",
    b"\xc3",
    b"\t",
    b"\r",
    b"&a ",
    b"*a",
    b"!!python/object ",
    b"{",
    b"[",
    b"]",
    b"}",
    b":",
    b"- ",
    b"'",
    b'"',
    b"\n  ",
    b"$",
    b"..",
    b"\xef\xbb\xbf",
    b"\xe2\x80\xae",
    b"%YAML 1.1\n",
]


def _mutate(doc: bytes, rng: random.Random) -> bytes:
    data = bytearray(doc)
    for _ in range(rng.choice([1, 1, 1, 2, 3, 6])):
        if not data:
            data += rng.choice(_SPECIALS)
            continue
        i = rng.randrange(len(data))
        op = rng.randrange(7)
        if op == 0:
            data[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            data[i] = rng.randrange(256)
        elif op == 2:
            del data[i : i + rng.randint(1, 8)]
        elif op == 3:
            data[i:i] = rng.choice(_SPECIALS)
        elif op == 4:
            j = rng.randrange(len(data))
            data[i:i] = data[j : j + rng.randint(1, 40)]
        elif op == 5:
            j = rng.randrange(len(data))
            a, b = sorted((i, j))
            data[a:b] = data[a:b][::-1]
        else:
            data[i:i] = str(rng.choice([0, -1, 1e309, 10**40, "nan", ".inf", "~", "null"])).encode()
    return bytes(data)


def _shaped_documents(rng: random.Random, n: int) -> Iterator[tuple[str, Any]]:
    """Alias bombs, deep nesting, huge documents, non-UTF-8 and wrong types."""
    bombs = [
        "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
        "steps: [*d]\n",
        "steps:\n  - &s {id: a, operator: array.gaussian, inputs: {x: fz/sst}, params: {sigma: 1}}\n"
        "  - *s\n",
        "steps: &x\n  - *x\n",
        "<<: {steps: []}\nsteps: []\n",
    ]
    wrong_types: list[Any] = [
        {"steps": 5},
        {"steps": "s"},
        {"steps": [5]},
        {"steps": [None]},
        {"steps": [{"id": 5, "operator": "array.gaussian"}]},
        {"steps": [{"id": "s", "operator": 3.5}]},
        {"steps": [{"id": "s", "operator": "array.gaussian", "inputs": 5}]},
        {"steps": [{"id": "s", "operator": "array.gaussian", "inputs": {"x": 5}}]},
        {
            "steps": [
                {"id": "s", "operator": "array.gaussian", "inputs": {"x": "fz/sst"}, "params": 5}
            ]
        },
        {"steps": [{"id": "s", "reader": "array.zarr", "paths": 5}]},
        {"steps": [{"id": "s", "reader": "array.zarr", "paths": [5, None]}]},
        {"steps": [{"id": "s", "reader": "array.zarr", "paths": "a\x00b"}]},
        {"name": 5, "steps": []},
        {"version": [1], "steps": []},
        {"inputs": "cube", "steps": []},
        {"inputs": [1, 2], "steps": []},
        {"report": "os:system", "steps": [{"id": "s", "operator": "array.gaussian"}]},
        {"report": "builtins.eval", "steps": [{"id": "s", "operator": "array.gaussian"}]},
        {5: "x", "steps": []},
        {None: "x"},
        {
            "steps": [
                {
                    "id": "s",
                    "operator": "array.reduce",
                    "inputs": {"x": "fz/sst"},
                    "params": {"dims": 5},
                }
            ]
        },
    ]
    kinds = ["bomb", "deep", "bytes", "types", "scalar", "keys"]
    for k in range(n):
        kind = "huge" if k % 40 == 0 else kinds[k % len(kinds)]
        if kind == "bomb":
            yield kind, rng.choice(bombs)
        elif kind == "deep":
            depth = rng.choice([20, 40, 100, 1000, 5000, 20000])
            opener, closer = rng.choice([("[", "]"), ("{a: ", "}"), ("- ", "")])
            if closer:
                body = opener * depth + "1" + closer * depth
            else:
                body = "".join("  " * i + "-\n" for i in range(min(depth, 3000)))
            where = rng.choice(["steps: ", "params_holder: ", ""])
            if where == "params_holder: ":
                yield (
                    kind,
                    (
                        "steps:\n  - id: s\n    operator: array.gaussian\n    inputs: {x: fz/sst}\n"
                        f"    params: {{sigma: {body}}}\n"
                    ),
                )
            else:
                yield kind, where + body + "\n"
        elif kind == "huge":
            if k % 400 == 0:  # a few whole-size documents, over and under 1 MiB
                size = rng.choice([(1 << 20) + 10, 900_000])
                yield kind, "steps:\n" + "  - {id: s, operator: array.gaussian}\n" * (size // 36)
            else:
                yield kind, "steps: [" + ", ".join(["1"] * rng.randint(1000, 60_000)) + "]\n"
        elif kind == "bytes":
            base = b"steps:\n  - {id: s, operator: array.gaussian, inputs: {x: fz/sst}, params: {sigma: 1}}\n"
            i = rng.randrange(len(base))
            junk = bytes(
                rng.choice([0x80, 0xC0, 0xFE, 0xFF, 0xED, 0xA0]) for _ in range(rng.randint(1, 4))
            )
            text = base[:i] + junk + base[i:]
            yield kind, text if rng.random() < 0.5 else text.decode("latin-1").encode("utf-16")
        elif kind == "types":
            yield kind, rng.choice(wrong_types)
        elif kind == "scalar":
            yield (
                kind,
                rng.choice(
                    ["", "~", "5", "[]", "{}", "- a\n- b\n", "'steps'", "---\n---\n", "...", "\x00"]
                ),
            )
        else:
            key = rng.choice(["1", "null", "true", "[a]", "{a: b}", "on", "2020-01-01"])
            yield kind, f"{key}: x\nsteps: []\n"


# ---------------------------------------------------------------------- the test
def test_fuzzed_pipelines_plan_or_fail_typed(
    world: World, tally: Tally, reliability_report
) -> None:
    t0 = time.perf_counter()
    with _nothing_outside(world) as outside:

        @settings(
            max_examples=SCHEMA_EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(doc=schema_pipelines(world.operators), as_yaml=st.booleans())
        def schema_cases(doc: dict[str, Any], as_yaml: bool) -> None:
            source: Any = doc
            if as_yaml:
                try:
                    source = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)
                except yaml.YAMLError:
                    source = doc
            tally.attempt(world.rt, source, "schema")

        schema_cases()
        schema_seconds = time.perf_counter() - t0

        rng = random.Random(20261206)
        seeds = _seed_documents(world)
        for k in range(MUTATIONS):
            doc = _mutate(seeds[k % len(seeds)], rng)
            source: Any = doc if k % 3 else doc.decode("utf-8", "replace")
            inputs = {"cube": world.cube} if b"$cube" in doc and k % 2 else None
            tally.attempt(world.rt, source, "mutation", inputs)

        for kind, source in _shaped_documents(rng, SHAPED):
            tally.attempt(world.rt, source, kind)

        # files: a pipeline path that is not UTF-8, not a file, or over-long
        files = world.files
        for path in [
            files / "latin1.yaml",
            files / "empty.yaml",
            files / "folder.yaml",
            files / "big.yaml",
            files / "missing.yaml",
            files / ("a" * 300 + ".yaml"),
            str(files / "nul\x00.yaml"),
            "/" + "a/" * 3000 + "x.yaml",
        ]:
            tally.attempt(world.rt, path, "file")
    figures = tally.figures()
    figures["schema_seconds"] = round(schema_seconds, 1)
    figures["seconds"] = round(time.perf_counter() - t0, 1)
    figures["created_outside_store"] = len(outside["tmp"]) + len(outside["cwd"])
    reliability_report(**figures)
    assert tally.untyped == [], "untyped exceptions:\n" + "\n".join(map(str, tally.untyped[:20]))
    assert tally.hangs == [], f"cases past {CASE_SECONDS} s: {tally.hangs[:5]}"
    assert outside == {"tmp": [], "cwd": []}
    assert tally.cases >= 10_000
    assert tally.plans >= 100, "the generator should also produce plannable pipelines"
    assert tally.typed["PipelineError"] > 1000 and tally.typed["ParameterError"] > 100
