"""Benchmark data: sizes, chunkings, the codec, and the generated cubes.

Every cube is float32 ``(time, y, x)`` with a daily ``time`` coordinate, stored as a
Zarr v3 group (one data variable plus its coordinates) that opens with plain
``xarray.open_zarr``. Values are a closed-form function of the global index
(a seasonal cycle, a latitude gradient, a zonal wave and hash-based noise), so the
same cell has the same value in every chunking and at every scale, and the data are
written chunk block by chunk block in bounded memory (the ``large`` size is bigger
than RAM). The noise keeps all 23 mantissa bits: the codec sees data about as hard to
compress as real measurements, not a flattering synthetic field.

Two chunkings of the same values:

``pencil``
    time-contiguous: the whole time axis in one chunk, small ``y``/``x`` tiles.
``slab``
    full-plane: a few time steps, the whole ``y``/``x`` plane.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "CHUNKINGS",
    "GENERATOR_VERSION",
    "SIZES",
    "ArrayRef",
    "BenchData",
    "Size",
    "array_codecs",
    "chunk_blocks",
    "codec_description",
    "ensure_data",
    "parse_bytes",
    "read_window",
    "stored_bytes",
    "time_coord",
    "xarray_encoding",
]

GENERATOR_VERSION = "1"
CHUNKINGS = ("pencil", "slab")
TIME_START = "2001-01-01"
N_LABELS = 64
SEED = 20240917


@dataclasses.dataclass(frozen=True)
class Size:
    """One benchmark size: the cube shape, its two chunkings and run settings."""

    name: str
    shape: tuple[int, int, int]
    chunks: Mapping[str, tuple[int, int, int]]
    reps: int
    warmup: bool
    stream_elements: int
    micro_shape: tuple[int, int, int]
    hidden: bool = False

    @property
    def nbytes(self) -> int:
        return 4 * math.prod(self.shape)

    def scaled(self, factor: int, chunking: str) -> Size:
        """The same size with ``factor`` times the data and the same chunk shape.

        Pencils grow along ``y`` (more pencils of the same length), slabs along
        ``time`` (more slabs of the same plane).
        """
        if factor == 1:
            return self
        t, y, x = self.shape
        shape = (t, y * factor, x) if chunking == "pencil" else (t * factor, y, x)
        chunks = dict(self.chunks)
        chunks["slab"] = (chunks["slab"][0], shape[1], shape[2])  # slabs keep the plane whole
        return dataclasses.replace(self, name=f"{self.name}x{factor}", shape=shape, chunks=chunks)


SIZES: dict[str, Size] = {
    "tiny": Size(
        "tiny", (64, 24, 32), {"pencil": (64, 12, 16), "slab": (8, 24, 32)},
        reps=2, warmup=True, stream_elements=1 << 21, micro_shape=(32, 64, 64), hidden=True,
    ),
    "small": Size(
        "small", (730, 96, 160), {"pencil": (730, 32, 32), "slab": (10, 96, 160)},
        reps=3, warmup=True, stream_elements=1 << 24, micro_shape=(365, 96, 160),
    ),
    "medium": Size(
        "medium", (1095, 512, 448), {"pencil": (1095, 64, 64), "slab": (15, 512, 448)},
        reps=3, warmup=True, stream_elements=1 << 25, micro_shape=(365, 256, 256),
    ),
    "large": Size(
        "large", (1095, 2048, 3584), {"pencil": (1095, 64, 128), "slab": (1, 2048, 3584)},
        reps=3, warmup=False, stream_elements=1 << 26, micro_shape=(365, 256, 256),
    ),
}


_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_bytes(text: str | int) -> int:
    """``"4GiB"`` -> 4294967296; ``"500MB"`` -> 500000000; an int passes through."""
    if isinstance(text, int):
        return text
    s = str(text).strip().lower().replace(" ", "")
    num = s.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = s[len(num):]
    if unit not in _UNITS or not num:
        raise ValueError(f"cannot read {text!r} as a size; write it like '4GiB' or '500MB'")
    return int(float(num) * _UNITS[unit])


# --------------------------------------------------------------------------- codec


def _split_codecs(codecs: Any) -> dict[str, Any]:
    """Turn a codec list into ``create_array`` keywords (filters/serializer/compressors)."""
    from zarr.abc.codec import ArrayArrayCodec, ArrayBytesCodec, BytesBytesCodec

    if isinstance(codecs, Mapping):
        return dict(codecs)
    filters, serializer, compressors = [], None, []
    for c in codecs:
        if isinstance(c, ArrayArrayCodec):
            filters.append(c)
        elif isinstance(c, ArrayBytesCodec):
            serializer = c
        elif isinstance(c, BytesBytesCodec):
            compressors.append(c)
        else:  # pragma: no cover - zarr has no other kind
            raise TypeError(f"unexpected codec {c!r}")
    out: dict[str, Any] = {"compressors": tuple(compressors)}
    if filters:
        out["filters"] = tuple(filters)
    if serializer is not None:
        out["serializer"] = serializer
    return out


def array_codecs() -> tuple[dict[str, Any], str]:
    """The codec minjiang writes arrays with, as ``zarr.create_array`` keywords.

    Read from ``minjiang.storage.array_codecs()`` when minjiang provides it, so the
    peers write exactly what minjiang writes; otherwise blosc-lz4 + byte shuffle +
    crc32c built here. Returns the keywords and where they came from.
    """
    try:
        from minjiang.storage import array_codecs as _mj_codecs  # type: ignore[attr-defined]
    except (ImportError, AttributeError):
        _mj_codecs = None
    if _mj_codecs is not None:
        return _split_codecs(_mj_codecs()), "minjiang.storage.array_codecs()"
    from zarr.codecs import BloscCodec, BytesCodec, Crc32cCodec

    kw = {
        "serializer": BytesCodec(),
        "compressors": (BloscCodec(cname="lz4", clevel=5, shuffle="shuffle", typesize=4), Crc32cCodec()),
    }
    return kw, "blosc lz4 clevel 5 + shuffle + crc32c (built by the benchmarks)"


def codec_description() -> dict[str, Any]:
    kw, source = array_codecs()
    return {"source": source, **{k: [repr(c) for c in v] if isinstance(v, tuple) else repr(v) for k, v in kw.items()}}


def xarray_encoding(chunks: tuple[int, ...]) -> dict[str, Any]:
    """``to_zarr`` encoding for one variable: the chunks and the minjiang codec."""
    kw, _ = array_codecs()
    enc: dict[str, Any] = {"chunks": tuple(chunks)}
    enc.update(kw)
    return enc


def stored_bytes(path: Path) -> int:
    """Bytes on disk under ``path`` (a Zarr array or group)."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


# --------------------------------------------------------------------------- values


def _jit() -> Any:
    import numba

    @numba.njit(inline="always")
    def _mix(z: np.uint64) -> np.uint64:
        # splitmix64 finaliser: a good 64-bit hash of the cell index
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))

    @numba.njit(parallel=True, cache=False)
    def fill_cube(out, t0, y0, x0, ny, nx, seed, kind):  # pragma: no cover - numba
        nt_, ny_, nx_ = out.shape
        two_pi = 2.0 * np.pi
        scale = 1.0 / 9007199254740992.0  # 2**-53
        for i in numba.prange(nt_):
            t = t0 + i
            season = two_pi * ((t % 365) / 365.0)
            for j in range(ny_):
                y = y0 + j
                lat = (y + 0.5) / ny
                for k in range(nx_):
                    x = x0 + k
                    idx = np.uint64(((t * ny + y) * nx + x) * 2) + np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)
                    u1 = (_mix(idx) >> np.uint64(11)) * scale
                    u2 = (_mix(idx + np.uint64(1)) >> np.uint64(11)) * scale
                    noise = u1 + u2 - 1.0
                    if kind == 0:
                        v = (14.0 + 12.0 * np.cos(np.pi * (lat - 0.5))
                             + 3.0 * np.sin(season + two_pi * lat)
                             + 0.8 * np.sin(two_pi * 3.0 * x / nx) + 1.5 * noise)
                    else:
                        v = (6.0 + 4.0 * np.cos(np.pi * (lat - 0.5))
                             - 2.0 * np.cos(season + two_pi * x / nx) + 1.0 * noise)
                    out[i, j, k] = v

    @numba.njit(parallel=True, cache=False)
    def fill_labels(out, y0, x0, ny, nx, sy, sx):  # pragma: no cover - numba
        ny_, nx_ = out.shape
        n = sy.shape[0]
        for j in numba.prange(ny_):
            fy = (y0 + j + 0.5) / ny
            for k in range(nx_):
                fx = (x0 + k + 0.5) / nx
                best, lab = 1e30, 0
                for s in range(n):
                    d = (fy - sy[s]) ** 2 + 0.5 * (fx - sx[s]) ** 2
                    if d < best:
                        best, lab = d, s
                out[j, k] = lab + 1

    return fill_cube, fill_labels


_KERNELS: Any = None


def _kernels() -> Any:
    global _KERNELS
    if _KERNELS is None:
        _KERNELS = _jit()
    return _KERNELS


_KIND = {"a": (0, SEED), "b": (1, SEED + 1)}


def cube_values(var: str, shape: tuple[int, int, int], region: tuple[slice, slice, slice]) -> np.ndarray:
    """The values of cube ``var`` (``"a"`` or ``"b"``) over ``region`` of ``shape``."""
    fill_cube, _ = _kernels()
    kind, seed = _KIND[var]
    sl = [s.indices(n) for s, n in zip(region, shape, strict=True)]
    out = np.empty(tuple(stop - start for start, stop, _ in sl), dtype=np.float32)
    fill_cube(out, sl[0][0], sl[1][0], sl[2][0], shape[1], shape[2], seed, kind)
    return out


def label_values(shape: tuple[int, int], region: tuple[slice, slice]) -> np.ndarray:
    """The zone raster (``1..N_LABELS``, Voronoi cells) over ``region``."""
    _, fill_labels = _kernels()
    rng = np.random.default_rng(SEED)
    sy, sx = rng.random(N_LABELS), rng.random(N_LABELS)
    sl = [s.indices(n) for s, n in zip(region, shape, strict=True)]
    out = np.empty(tuple(stop - start for start, stop, _ in sl), dtype=np.int32)
    fill_labels(out, sl[0][0], sl[1][0], shape[0], shape[1], sy, sx)
    return out


# --------------------------------------------------------------------------- layout


@dataclasses.dataclass(frozen=True)
class ArrayRef:
    """One stored input: a Zarr group holding data variable ``var``."""

    group: str
    var: str
    dims: tuple[str, ...]
    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    dtype: str

    @property
    def nbytes(self) -> int:
        return int(np.dtype(self.dtype).itemsize * math.prod(self.shape))

    @property
    def array_path(self) -> str:
        return str(Path(self.group) / self.var)


@dataclasses.dataclass(frozen=True)
class BenchData:
    """The stored inputs of one (size, chunking): ``a``, ``b`` and ``labels``."""

    size: Size
    chunking: str
    root: str
    arrays: Mapping[str, ArrayRef]

    @property
    def tag(self) -> str:
        return f"{self.size.name}-{self.chunking}"

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.size.shape

    @property
    def cube_chunks(self) -> tuple[int, int, int]:
        return tuple(self.size.chunks[self.chunking])  # type: ignore[return-value]

    @property
    def pencil_chunks(self) -> tuple[int, int, int]:
        return tuple(self.size.chunks["pencil"])  # type: ignore[return-value]

    def input_bytes(self, names: tuple[str, ...]) -> int:
        return sum(self.arrays[n].nbytes for n in names)


def chunk_blocks(shape: tuple[int, ...], chunks: tuple[int, ...], target: int) -> Iterator[tuple[slice, ...]]:
    """Chunk-aligned regions of about ``target`` bytes (float32), for bounded-memory writes."""
    per_chunk = 4 * math.prod(chunks)
    group = max(1, target // per_chunk)
    # group chunks along the first axis with more than one chunk
    grid = [math.ceil(n / c) for n, c in zip(shape, chunks, strict=True)]
    axis = next((i for i, g in enumerate(grid) if g > 1), 0)
    steps = list(chunks)
    steps[axis] = chunks[axis] * min(group, grid[axis])
    for idx in np.ndindex(*[math.ceil(n / s) for n, s in zip(shape, steps, strict=True)]):
        yield tuple(
            slice(i * s, min((i + 1) * s, n)) for i, s, n in zip(idx, steps, shape, strict=True)
        )


def time_coord(n: int) -> np.ndarray:
    return np.arange(np.datetime64(TIME_START), np.datetime64(TIME_START) + n).astype("datetime64[ns]")


def _write_group(path: Path, var: str, dims: tuple[str, ...], shape: tuple[int, ...],
                 chunks: tuple[int, ...], dtype: str, fill: Any, attrs: dict[str, Any]) -> None:
    """Write the group's metadata and coords with xarray, then fill the data with zarr."""
    import dask.array as da
    import xarray as xr
    import zarr

    coords: dict[str, Any] = {}
    full = dict(zip(dims, shape, strict=True))
    if "time" in full:
        coords["time"] = ("time", time_coord(full["time"]))
    if "y" in full:
        coords["y"] = ("y", np.linspace(-60.0, 60.0, full["y"]), {"units": "degrees_north"})
    if "x" in full:
        coords["x"] = ("x", np.linspace(0.0, 360.0, full["x"], endpoint=False), {"units": "degrees_east"})
    lazy = da.zeros(shape, chunks=chunks, dtype=dtype)
    ds = xr.Dataset({var: (dims, lazy, attrs)}, coords=coords)
    enc = {var: xarray_encoding(chunks)}
    ds.to_zarr(str(path), mode="w", compute=False, zarr_format=3, consolidated=False, encoding=enc)
    arr = zarr.open_array(str(path), path=var, mode="r+")
    for region in chunk_blocks(shape, chunks, 64 << 20):
        arr[region] = fill(region)


def _spec_json(size: Size, chunking: str, var: str) -> dict[str, Any]:
    return {
        "generator": GENERATOR_VERSION,
        "shape": list(size.shape),
        "chunks": list(size.chunks[chunking]),
        "var": var,
        "codec": codec_description(),
    }


def ensure_data(root: Path, size: Size, chunking: str, names: tuple[str, ...] = ("a", "b", "labels"),
                log: Any = print) -> BenchData:
    """Generate (or reuse) the inputs ``names`` for ``size`` in ``chunking`` under ``root``.

    A group is reused when its marker file matches the requested shape, chunks,
    codec and generator version; otherwise it is rewritten.
    """
    base = Path(root) / f"{size.name}-{chunking}"
    base.mkdir(parents=True, exist_ok=True)
    cube_chunks = tuple(size.chunks[chunking])
    _, y, x = size.shape
    arrays: dict[str, ArrayRef] = {}
    for name in ("a", "b", "labels"):
        if name == "labels":
            ref = ArrayRef(str(base / "labels.zarr"), "labels", ("y", "x"), (y, x), cube_chunks[1:], "int32")
        else:
            ref = ArrayRef(str(base / f"{name}.zarr"), name, ("time", "y", "x"), size.shape, cube_chunks, "float32")
        arrays[name] = ref
        if name not in names:
            continue
        marker = Path(ref.group + ".spec.json")  # beside the group: zarr warns about strangers
        spec = _spec_json(size, chunking, name)
        if marker.exists() and json.loads(marker.read_text()) == spec:
            continue
        if Path(ref.group).exists():
            shutil.rmtree(ref.group)
        log(f"generating {ref.group} {ref.shape} chunks {ref.chunks} ({ref.nbytes / 1e9:.2f} GB)")
        if name == "labels":
            _write_group(Path(ref.group), "labels", ref.dims, ref.shape, ref.chunks, "int32",
                         lambda r: label_values((y, x), r), {"long_name": "zone label"})
        else:
            attrs = {"units": "degC" if name == "a" else "1", "long_name": f"synthetic field {name}"}
            _write_group(Path(ref.group), name, ref.dims, ref.shape, ref.chunks, "float32",
                         lambda r, n=name: cube_values(n, size.shape, r), attrs)
        marker.write_text(json.dumps(spec))
    return BenchData(size=size, chunking=chunking, root=str(base), arrays=arrays)


def read_window(ref: ArrayRef, window: Mapping[str, slice]) -> np.ndarray:
    """Read ``window`` (dim -> slice; missing dims whole) of a stored input with zarr."""
    import zarr

    arr = zarr.open_array(ref.group, path=ref.var, mode="r")
    return np.asarray(arr[tuple(window.get(d, slice(None)) for d in ref.dims)])
