"""Two processes producing the same content id at the same moment on one store.

Both plan the same step (same operator, parameters and input, so the same id), are
released together, and write the same chunks into the same staging prefix. Exactly
one publishes the record; the other reuses it; the chunks are the bytes an
undisturbed run writes; and no temporary or partial file is left anywhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from minjiang.storage import (
    Catalog,
    LocalStore,
    Record,
    open_store,
    open_xarray,
    verify_dataset,
    write_xarray,
)
from minjiang.storage._store import is_temporary

SOURCE = "concsrc01"
PARAMS = {"sigma": 1.5}

PRODUCER = textwrap.dedent(
    """
    import json, os, sys, time
    import minjiang
    store, go, out, source, params = sys.argv[1:6]
    rt = minjiang.Runtime(store=store, executor="local")
    open(out + ".ready", "w").close()
    while not os.path.exists(go):
        time.sleep(0.005)
    started = time.time()
    res = rt.run("array.gaussian", inputs={"x": source}, params=json.loads(params))
    finished = time.time()
    with open(out, "w") as fh:
        json.dump({"id": res.id, "reused": res.reused, "started": started, "finished": finished}, fh)
    """
)


def _source(store: LocalStore) -> None:
    values = np.random.default_rng(7).normal(size=(48, 32, 32)).astype("f4")
    ds = xr.Dataset({"sst": (("time", "y", "x"), values)})
    summary = write_xarray(store, SOURCE, ds, chunks={"time": 6, "y": 32, "x": 32})
    Catalog(store).publish(
        Record(
            id=SOURCE,
            kind="ingested",
            domain="test",
            schema=summary.schema,
            producer={"reader": "test.cube", "version": "1", "params": {}},
            checksums=summary.checksums,
        )
    )


def _temporary_files(root: Path) -> list[str]:
    return sorted(
        str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and is_temporary(p.name)
    )


def _produce_together(store: LocalStore, work: Path, n: int) -> list[dict[str, Any]]:
    go = work / "go"
    outs = [work / f"producer-{i}.json" for i in range(n)]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                PRODUCER,
                str(store.root),
                str(go),
                str(out),
                SOURCE,
                json.dumps(PARAMS),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for out in outs
    ]
    deadline = time.monotonic() + 120
    while not all(Path(f"{out}.ready").exists() for out in outs):
        assert time.monotonic() < deadline, "producers did not start"
        assert all(p.poll() is None for p in procs), [p.communicate()[0] for p in procs]
        time.sleep(0.01)
    go.touch()  # release both at once
    results = []
    for proc, out in zip(procs, outs, strict=True):
        log, _ = proc.communicate(timeout=180)
        assert proc.returncode == 0, log.decode(errors="replace")
        results.append(json.loads(out.read_text()))
    return results


def test_two_processes_produce_one_id(
    tmp_path: Path, reliability_report: Callable[..., Any]
) -> None:
    store = open_store(tmp_path / "store")
    assert isinstance(store, LocalStore)
    _source(store)
    t0 = time.perf_counter()
    results = _produce_together(store, tmp_path, 2)
    seconds = time.perf_counter() - t0

    ids = {r["id"] for r in results}
    assert len(ids) == 1
    (did,) = ids
    winners = [r for r in results if not r["reused"]]
    assert len(winners) == 1, results

    records = [k for k in store.list("catalog/records") if k.endswith(".json")]
    assert records == sorted([f"catalog/records/{SOURCE}.json", f"catalog/records/{did}.json"])
    assert verify_dataset(store, did).ok  # the stored bytes are the ones the record lists

    # the bytes an undisturbed, single producer writes for this id
    oracle = open_store(tmp_path / "oracle")
    assert isinstance(oracle, LocalStore)
    _source(oracle)
    import minjiang

    with minjiang.Runtime(store=oracle.root, executor="local") as rt:
        alone = rt.run("array.gaussian", inputs={"x": SOURCE}, params=PARAMS)
    assert alone.id == did
    shared = Catalog(store).get(did)
    assert shared.checksums == Catalog(oracle).get(did).checksums
    np.testing.assert_array_equal(
        open_xarray(store, did)["sst"].values, open_xarray(oracle, did)["sst"].values
    )

    leftovers = _temporary_files(store.root)
    assert leftovers == []
    staging = [k for k in store.list(f"datasets/{did}") if "/_tasks/" in k or "/_scratch/" in k]
    assert staging == []
    reliability_report(
        producers=len(results),
        records_for_id=sum(k.endswith(f"/{did}.json") for k in records),
        overlap_s=round(
            min(r["finished"] for r in results) - max(r["started"] for r in results), 3
        ),
        winners=len(winners),
        chunks=sum(len(v) for v in shared.checksums.values()),
        identical_to_single_producer=True,
        temporary_files_left=len(leftovers),
        seconds=round(seconds, 2),
    )
