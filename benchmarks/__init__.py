"""minjiang's benchmark harness: ``python -m benchmarks --suite all --size small``.

Runs research workloads over float32 ``(time, y, x)`` Zarr cubes on minjiang and on
its peers (xarray + dask, Cubed), side by side with the I/O floor of each workload and
the machine's memory bandwidth, all in one run; records the machine, the versions and
every figure to ``benchmarks/results/<name>.json`` and renders a Markdown report and
plots beside it. See ``docs/benchmarks.md``.
"""

from __future__ import annotations

__all__: list[str] = []
