"""`import minjiang` stays light: no numba, Ray, CuPy, zarr codecs or plugins."""

from __future__ import annotations

import subprocess
import sys

HEAVY = (
    "numba",
    "ray",
    "cupy",
    "zarr",
    "numcodecs",
    "xarray",
    "dask",
    "pyarrow",
    "pydantic",
    "minjiang.plugins",
    "minjiang.kernels",
    "minjiang.storage._dataset",
)


def test_import_minjiang_is_light() -> None:
    code = (
        "import sys, minjiang\n"
        "assert minjiang.__version__\n"
        f"heavy = {HEAVY!r}\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {h.split('.')[0] for h in heavy if '.' not in h}"
        " or any(m == h or m.startswith(h + '.') for h in heavy if '.' in h))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import minjiang pulled in: {out.stdout.strip()}"


def test_public_api_resolves_lazily() -> None:
    """Each lazy name is imported from its module on first use, then cached."""
    import importlib

    import minjiang

    for name, module in minjiang._LAZY.items():
        value = getattr(minjiang, name)
        assert value is getattr(importlib.import_module(module), name), name
        assert vars(minjiang)[name] is value, f"{name} is not cached after the first lookup"
    assert sorted(minjiang.__all__) == dir(minjiang)
