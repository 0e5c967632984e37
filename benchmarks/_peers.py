"""Single-node domain tools as engines: the peers of minjiang's domain workloads.

============== ================================================================
scipy-label    ``scipy.ndimage.label`` (6-connectivity) of the whole mask in memory
cc3d           ``cc3d.connected_components`` (connected-components-3d) in memory
heatwave3      ``heatwave3.detect3``: climatology + events, NetCDF to NetCDF (C++)
============== ================================================================

Each reads its input whole (the labelling tools work on an array in memory), runs the
tool, and writes what it computes; the wall time covers all three, as minjiang's
covers reading and writing Zarr. ``details`` splits it into ``read_s``, ``compute_s``
and ``write_s`` (with the compute step's CPU-seconds), so that the tools' in-memory
figures can be compared with minjiang's kernels as well as file to file.

``heatwave3`` reads NetCDF only: the input cube is written once as a NetCDF file
before the workload's runs (untimed, like minjiang's ingest). It pools day-of-year
windows by heatwaveR's convention (29 February and year ends differ from the
marineHeatWaves convention of the reference) and writes event tables, not yearly
grids, so its outputs are not compared with the reference: it returns none.
"""

from __future__ import annotations

import abc
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._data import BenchData, read_window, time_coord
from benchmarks._engines import Engine, RunOutput, _create_outputs, _fetch_zarr_group
from benchmarks._workloads import Workload, mhw_years

__all__ = ["CC3DEngine", "Heatwave3Engine", "ScipyLabelEngine"]


def _timed(f: Any, *args: Any, **kwargs: Any) -> tuple[Any, float, float]:
    """``f(*args, **kwargs)`` with its wall time and this process's CPU-seconds."""
    t0 = time.perf_counter()
    c0 = time.process_time()
    out = f(*args, **kwargs)
    return out, time.perf_counter() - t0, time.process_time() - c0


class _InMemoryLabelEngine(Engine):
    """Read the mask whole, label it in memory, write the labels with minjiang's layout."""

    threads = 1

    def supports(self, wl: Workload) -> str | None:
        return None if wl.key == "medicine_label" else f"{self.name} only labels masks"

    def setup(self) -> dict[str, Any]:
        return {"threads": self.threads}

    @abc.abstractmethod
    def _label(self, mask: np.ndarray) -> np.ndarray:
        """The labels of ``mask`` (held whole in memory), by the engine's tool."""

    def run(self, wl: Workload, data: BenchData, out_dir: Path) -> RunOutput:
        path = out_dir / "out.zarr"
        mask, read_s, read_cpu = _timed(read_window, data.arrays["mask"], {})
        labels, compute_s, compute_cpu = _timed(self._label, mask)
        outs = _create_outputs(wl, data, path, store_every_chunk=True)
        arr = outs["labels"]

        def write() -> None:
            arr[...] = labels.astype(arr.dtype, copy=False)

        _, write_s, write_cpu = _timed(write)
        return RunOutput(
            str(path),
            {
                "read_s": read_s,
                "compute_s": compute_s,
                "write_s": write_s,
                "read_cpu_s": read_cpu,
                "compute_cpu_s": compute_cpu,
                "write_cpu_s": write_cpu,
                "components": int(labels.max(initial=0)),
                "threads": self.threads,
            },
        )

    def fetch(self, wl: Workload, handle: Any, window: dict[str, slice]) -> dict[str, Any]:
        return _fetch_zarr_group(wl, handle, window)


class ScipyLabelEngine(_InMemoryLabelEngine):
    """``scipy.ndimage.label`` with the 6-connected structure (one thread)."""

    name = "scipy-label"
    description = "scipy.ndimage.label in memory (1 thread)"

    def _label(self, mask: np.ndarray) -> np.ndarray:
        from scipy import ndimage

        labels, _ = ndimage.label(mask, structure=ndimage.generate_binary_structure(3, 1))
        return labels


class CC3DEngine(_InMemoryLabelEngine):
    """connected-components-3d, 6-connectivity, 32-bit labels (one thread)."""

    name = "cc3d"
    description = "connected-components-3d in memory (1 thread)"

    def _label(self, mask: np.ndarray) -> np.ndarray:
        import cc3d

        out: np.ndarray = cc3d.connected_components(mask, connectivity=6, out_dtype=np.uint32)
        return out.view(np.int32)  # fewer labels than cells, and cells < 2**31 here


class Heatwave3Engine(Engine):
    """``heatwave3.detect3`` on ``cores`` threads, from a NetCDF copy of the cube."""

    name = "heatwave3"
    description = "heatwave3.detect3 (C++), NetCDF to NetCDF"
    # heatwaveR's pooling convention and event tables, not the reference's yearly grids
    validates = False

    def setup(self) -> dict[str, Any]:
        import heatwave3

        self._inputs: dict[str, str] = {}
        return {"threads": self.options.cores, "version": getattr(heatwave3, "__version__", None)}

    def supports(self, wl: Workload) -> str | None:
        return None if wl.key == "ocean_mhw" else "heatwave3 only detects marine heatwaves"

    def prepare(self, data: BenchData, names: tuple[str, ...]) -> dict[str, Any]:
        """Write the cube ``a`` once as NetCDF (time, lat, lon), uncompressed."""
        import xarray as xr

        if data.tag in self._inputs:
            return {"netcdf": self._inputs[data.tag]}
        folder = Path(self.options.work_dir) / "heatwave3" / data.tag
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "sst.nc"
        if not path.exists():
            a = read_window(data.arrays["a"], {})
            _, ny, nx = a.shape
            ds = xr.Dataset(
                {"sst": (("time", "lat", "lon"), a, {"units": "degree_C"})},
                coords={
                    "time": ("time", time_coord(a.shape[0])),
                    "lat": ("lat", np.linspace(-60.0, 60.0, ny), {"units": "degrees_north"}),
                    "lon": ("lon", np.linspace(0.0, 300.0, nx), {"units": "degrees_east"}),
                },
            )
            ds.time.encoding.update(units="days since 1970-01-01", calendar="standard")
            tmp = path.with_suffix(".tmp.nc")
            ds.to_netcdf(tmp)
            tmp.rename(path)
        self._inputs[data.tag] = str(path)
        return {"netcdf": str(path), "bytes": path.stat().st_size}

    def run(self, wl: Workload, data: BenchData, out_dir: Path) -> RunOutput:
        import heatwave3

        y0, y1 = mhw_years(data.shape[0])
        out_dir.mkdir(parents=True, exist_ok=True)
        written, wall, cpu = _timed(
            heatwave3.detect3,
            self._inputs[data.tag],
            str(out_dir / "hw3"),
            (f"{y0}-01-01", f"{y1}-12-31"),
            n_threads=self.options.cores,
            quiet=True,
        )
        return RunOutput(
            str(out_dir),
            {
                "compute_s": wall,
                "compute_cpu_s": cpu,
                "threads": self.options.cores,
                "written": {k: str(v) for k, v in dict(written).items()},
                "note": "heatwaveR pooling convention; events as tables, no yearly grids",
            },
        )

    def fetch(self, wl: Workload, handle: Any, window: dict[str, slice]) -> dict[str, Any]:
        return {}  # other conventions and outputs than the reference's: not compared


# --------------------------------------------------------------------------- in memory


def label_in_memory(shape: tuple[int, int, int], threads: int = 2) -> dict[str, Any]:
    """Label the benchmark mask of ``shape`` in memory with each tool, back to back.

    minjiang's kernels run on the whole volume on one thread (``label_global``) and
    blocked in z-slabs of 64 planes on ``threads`` threads (local labels, face
    equivalences, union-find, relabel: the composite's steps without storage). Every
    result is checked against ``scipy.ndimage.label``. Returns wall and CPU seconds.
    """
    import os
    from concurrent.futures import ThreadPoolExecutor

    import cc3d
    from minjiang.kernels.label import (
        face_equivalences,
        label_global,
        labels_present,
        relabel,
        union_find_relabel,
    )
    from scipy import ndimage

    from benchmarks._data import mask_values

    mask = mask_values(shape, tuple(slice(0, n) for n in shape))
    label_global(mask[:8, :8, :8], 6, (0, 0, 0), (8, 8, 8), dtype=np.int32)  # compile
    slab = 64
    starts = list(range(0, shape[0], slab))

    def blocked() -> np.ndarray:
        out = np.empty(shape, np.int32)

        def local(z0: int) -> None:
            out[z0 : z0 + slab] = label_global(
                mask[z0 : z0 + slab], 6, (z0, 0, 0), shape, dtype=np.int32
            )[0]

        def pairs(z0: int) -> np.ndarray:  # the slab's last plane, the next as halo
            return face_equivalences(out[z0 - 1 : z0 + 1], 6, ((0, 1), (0, 0), (0, 0)))

        final = np.empty(shape, np.int32)
        with ThreadPoolExecutor(threads) as ex:
            list(ex.map(local, starts))
            found = np.concatenate([np.zeros((0, 2), np.int64), *ex.map(pairs, starts[1:])])
            present = np.unique(
                np.concatenate(list(ex.map(lambda z0: labels_present(out[z0 : z0 + slab]), starts)))
            )
            old, new = union_find_relabel(found, present)

            def remap(z0: int) -> None:
                final[z0 : z0 + slab] = relabel(out[z0 : z0 + slab], old, new, dtype=np.int32)

            list(ex.map(remap, starts))
        return final

    tools = {
        "scipy.ndimage.label (1 thread)": lambda: ndimage.label(mask)[0],
        "cc3d (1 thread)": lambda: cc3d.connected_components(
            mask, connectivity=6, out_dtype=np.uint32
        ),
        "minjiang label_global (1 thread)": lambda: label_global(
            mask, 6, (0, 0, 0), shape, dtype=np.int32
        )[0],
        f"minjiang blocked ({threads} threads)": blocked,
    }
    out: dict[str, Any] = {
        "shape": list(shape),
        "foreground": float(mask.mean()),
        "load_average": list(os.getloadavg()),
        "tools": {},
    }
    ref = None
    for name, run in tools.items():
        labels, wall, cpu = _timed(run)
        if ref is None:
            ref = labels
        if name.startswith(("cc3d", "minjiang label_global")):
            # own numbering (consecutive from 1; first-cell ids): the same foreground and
            # the same number of components
            same = bool(np.array_equal(labels > 0, ref > 0)) and (
                labels_present(labels).size == int(ref.max())
            )
        else:
            same = bool(np.array_equal(labels, ref))
        out["tools"][name] = {"wall_s": wall, "cpu_s": cpu, "equals_scipy": same}
        print(f"{name:36s} wall {wall:7.2f} s  cpu {cpu:7.2f} s  equals scipy: {same}", flush=True)
        del labels
    return out


if __name__ == "__main__":
    import argparse
    import json

    p = argparse.ArgumentParser(description="in-memory 3-D labelling: minjiang vs SciPy, cc3d")
    p.add_argument("--shape", default="1095x512x448", help="Z x Y x X (default: medium)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", type=Path, help="write the figures here")
    a = p.parse_args()
    shape3 = tuple(int(v) for v in a.shape.split("x"))
    res = label_in_memory((shape3[0], shape3[1], shape3[2]), a.threads)
    if a.json:
        a.json.write_text(json.dumps(res, indent=1))
