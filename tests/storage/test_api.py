"""The public surface: light to import, every name resolves, descriptions pickle."""

from __future__ import annotations

import pickle
import subprocess
import sys

import minjiang.storage as storage

HEAVY = (
    "zarr",
    "numcodecs",
    "pyarrow",
    "xarray",
    "pydantic",
    "s3fs",
    "fsspec",
    "numpy",
    "pandas",
    "dask",
)


def test_import_storage_is_light() -> None:
    code = (
        "import sys, minjiang.storage\n"
        f"print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import minjiang.storage pulled in: {out.stdout.strip()}"


def test_every_public_name_resolves() -> None:
    for name in storage.__all__:
        assert getattr(storage, name) is not None, name
    assert sorted(dir(storage)) == sorted(storage.__all__)


def test_descriptions_pickle(store: storage.Store) -> None:
    info = storage.ArrayInfo(
        "v", "datasets/d/arrays.zarr/v", ("x",), (4,), "float32", (2,), {"u": 1}, "d"
    )
    ds = storage.DatasetInfo("d", "datasets/d", {}, {"v": info}, {}, {})
    assert pickle.loads(pickle.dumps(info)) == info
    assert pickle.loads(pickle.dumps(ds)) == ds
    assert ds["v"] is info
    assert pickle.loads(pickle.dumps(store)) == store
