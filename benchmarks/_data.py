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

import numba
import numpy as np

__all__ = [
    "CHUNKINGS",
    "GENERATOR_VERSION",
    "INPUTS",
    "SIZES",
    "ArrayRef",
    "BenchData",
    "Size",
    "array_codecs",
    "chunk_blocks",
    "codec_description",
    "ensure_data",
    "mask_values",
    "parse_bytes",
    "read_window",
    "stored_bytes",
    "time_coord",
    "xarray_encoding",
]

GENERATOR_VERSION = "2"
CHUNKINGS = ("pencil", "slab")
TIME_START = "2001-01-01"
N_LABELS = 64
LABEL_DTYPE = "uint8"
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
        "tiny",
        (64, 24, 32),
        {"pencil": (64, 12, 16), "slab": (8, 24, 32)},
        reps=2,
        warmup=True,
        stream_elements=1 << 21,
        micro_shape=(32, 64, 64),
        hidden=True,
    ),
    "small": Size(
        "small",
        (730, 96, 160),
        {"pencil": (730, 32, 32), "slab": (10, 96, 160)},
        reps=3,
        warmup=True,
        stream_elements=1 << 25,
        micro_shape=(365, 96, 160),
    ),
    "medium": Size(
        "medium",
        (1095, 512, 448),
        {"pencil": (1095, 64, 64), "slab": (15, 512, 448)},
        reps=3,
        warmup=True,
        stream_elements=1 << 25,
        micro_shape=(365, 256, 256),
    ),
    "large": Size(
        "large",
        (1095, 2048, 3584),
        {"pencil": (1095, 64, 128), "slab": (1, 2048, 3584)},
        reps=3,
        warmup=False,
        stream_elements=1 << 26,
        micro_shape=(365, 256, 256),
    ),
}


def parse_bytes(text: str | int) -> int:
    """``"4GiB"`` -> 4294967296; ``"500MB"`` -> 500000000 (minjiang's own parser)."""
    from minjiang.core._units import parse_bytes as parse

    return parse(text)


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


def array_codecs(dtype: Any = "float32") -> tuple[dict[str, Any], str]:
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
        return _split_codecs(_mj_codecs(dtype)), "minjiang.storage.array_codecs()"
    from zarr.codecs import BloscCodec, BytesCodec, Crc32cCodec

    shuffle = "bitshuffle" if np.dtype(dtype).itemsize == 1 else "shuffle"
    kw = {
        "serializer": BytesCodec(),
        "compressors": (BloscCodec(cname="lz4", clevel=5, shuffle=shuffle), Crc32cCodec()),
    }
    return kw, "blosc lz4 clevel 5 + shuffle + crc32c (built by the benchmarks)"


def codec_description() -> dict[str, Any]:
    kw, source = array_codecs()
    return {
        "source": source,
        **{
            k: [repr(c) for c in v] if isinstance(v, list | tuple) else repr(v)
            for k, v in kw.items()
        },
    }


def xarray_encoding(chunks: tuple[int, ...], dtype: Any = "float32") -> dict[str, Any]:
    """``to_zarr`` encoding for one variable: the chunks and the minjiang codec."""
    kw, _ = array_codecs(dtype)
    enc: dict[str, Any] = {"chunks": tuple(chunks)}
    enc.update(kw)
    return enc


def stored_bytes(path: Path) -> int:
    """Bytes on disk under ``path`` (a Zarr array or group)."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


# --------------------------------------------------------------------------- values


@numba.njit(inline="always", cache=True)
def _mix(z: np.uint64) -> np.uint64:  # pragma: no cover - numba
    # splitmix64 finaliser: a good 64-bit hash of the cell index
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@numba.njit(parallel=True, cache=True)
def _fill_cube(out, t0, y0, x0, ny, nx, seed, kind):  # pragma: no cover - numba
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
                idx = np.uint64(((t * ny + y) * nx + x) * 2) + np.uint64(seed) * np.uint64(
                    0x9E3779B97F4A7C15
                )
                u1 = (_mix(idx) >> np.uint64(11)) * scale
                u2 = (_mix(idx + np.uint64(1)) >> np.uint64(11)) * scale
                noise = u1 + u2 - 1.0
                if kind == 0:
                    v = (
                        14.0
                        + 12.0 * np.cos(np.pi * (lat - 0.5))
                        + 3.0 * np.sin(season + two_pi * lat)
                        + 0.8 * np.sin(two_pi * 3.0 * x / nx)
                        + 1.5 * noise
                    )
                else:
                    v = (
                        6.0
                        + 4.0 * np.cos(np.pi * (lat - 0.5))
                        - 2.0 * np.cos(season + two_pi * x / nx)
                        + 1.0 * noise
                    )
                out[i, j, k] = v


@numba.njit(parallel=True, cache=True)
def _fill_labels(out, t0, y0, x0, nt, ny, nx):  # pragma: no cover - numba
    # 4 x 4 x 4 regions with wavy faces (a segmentation-like label volume), plus
    # background (label 0) in a few blobs
    nt_, ny_, nx_ = out.shape
    two_pi = 2.0 * np.pi
    for i in numba.prange(nt_):
        ft = (t0 + i + 0.5) / nt
        for j in range(ny_):
            fy = (y0 + j + 0.5) / ny
            for k in range(nx_):
                fx = (x0 + k + 0.5) / nx
                if np.sin(two_pi * 3.0 * fx) * np.sin(two_pi * 3.0 * fy) > 0.8:
                    out[i, j, k] = 0
                    continue
                wt = ft + 0.08 * np.sin(two_pi * (fy + fx))
                wy = fy + 0.08 * np.sin(two_pi * (fx + 2.0 * ft))
                wx = fx + 0.08 * np.sin(two_pi * (ft + 2.0 * fy))
                bt = min(3, max(0, int(wt * 4.0)))
                by = min(3, max(0, int(wy * 4.0)))
                bx = min(3, max(0, int(wx * 4.0)))
                out[i, j, k] = 1 + bt * 16 + by * 4 + bx


@numba.njit(parallel=True, cache=True)
def _fill_mask(out, z0, y0, x0, nz, ny, nx, seed):  # pragma: no cover - numba
    # a lattice of smooth blobs (a few hundred components) plus isolated specks (noise)
    nz_, ny_, nx_ = out.shape
    two_pi = 2.0 * np.pi
    scale = 1.0 / 9007199254740992.0
    for i in numba.prange(nz_):
        fz = (z0 + i + 0.5) / nz
        for j in range(ny_):
            fy = (y0 + j + 0.5) / ny
            for k in range(nx_):
                fx = (x0 + k + 0.5) / nx
                v = (
                    np.sin(two_pi * (3.0 * fz + fy))
                    * np.sin(two_pi * 4.0 * fy)
                    * np.sin(two_pi * 5.0 * fx + 1.3 * fz)
                )
                idx = np.uint64(((z0 + i) * ny + y0 + j) * nx + x0 + k) + np.uint64(
                    seed
                ) * np.uint64(0x9E3779B97F4A7C15)
                u = (_mix(idx) >> np.uint64(11)) * scale
                out[i, j, k] = 1 if (v > 0.3 or u < 0.0005) else 0


_KIND = {"a": (0, SEED), "b": (1, SEED + 1)}


def cube_values(
    var: str, shape: tuple[int, int, int], region: tuple[slice, slice, slice]
) -> np.ndarray:
    """The values of cube ``var`` (``"a"`` or ``"b"``) over ``region`` of ``shape``."""
    kind, seed = _KIND[var]
    sl = [s.indices(n) for s, n in zip(region, shape, strict=True)]
    out = np.empty(tuple(stop - start for start, stop, _ in sl), dtype=np.float32)
    _fill_cube(out, sl[0][0], sl[1][0], sl[2][0], shape[1], shape[2], seed, kind)
    return out


def label_values(shape: tuple[int, int, int], region: tuple[slice, slice, slice]) -> np.ndarray:
    """The label volume (``0`` background, ``1..N_LABELS`` regions) over ``region``."""
    sl = [s.indices(n) for s, n in zip(region, shape, strict=True)]
    out = np.empty(tuple(stop - start for start, stop, _ in sl), dtype=LABEL_DTYPE)
    _fill_labels(out, sl[0][0], sl[1][0], sl[2][0], *shape)
    return out


def mask_values(shape: tuple[int, int, int], region: tuple[slice, slice, slice]) -> np.ndarray:
    """The binary ``(z, y, x)`` mask (blobs and specks) over ``region``."""
    sl = [s.indices(n) for s, n in zip(region, shape, strict=True)]
    out = np.empty(tuple(stop - start for start, stop, _ in sl), dtype=np.uint8)
    _fill_mask(out, sl[0][0], sl[1][0], sl[2][0], *shape, SEED + 2)
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
    """The stored inputs of one (size, chunking): ``a``, ``b``, ``labels`` and ``mask``.

    ``datasets`` maps input names to minjiang dataset ids once the inputs are ingested;
    ``arrays`` then point at the ingested Zarr arrays, so every engine reads the same
    files.
    """

    size: Size
    chunking: str
    root: str
    arrays: Mapping[str, ArrayRef]
    datasets: Mapping[str, str] = dataclasses.field(default_factory=dict)

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


def chunk_blocks(
    shape: tuple[int, ...], chunks: tuple[int, ...], target: int
) -> Iterator[tuple[slice, ...]]:
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
    return np.arange(np.datetime64(TIME_START), np.datetime64(TIME_START) + n).astype(
        "datetime64[ns]"
    )


def _write_group(
    path: Path,
    var: str,
    dims: tuple[str, ...],
    shape: tuple[int, ...],
    chunks: tuple[int, ...],
    dtype: str,
    fill: Any,
    attrs: dict[str, Any],
) -> None:
    """Write the group's metadata and coords with xarray, then fill the data with zarr."""
    import dask.array as da
    import xarray as xr
    import zarr

    coords: dict[str, Any] = {}
    full = dict(zip(dims, shape, strict=True))
    if "time" in full:
        coords["time"] = ("time", time_coord(full["time"]))
    if "z" in full:
        coords["z"] = ("z", np.arange(full["z"], dtype=np.float64), {"units": "mm"})
    # lat/lon as coordinates on the y/x dims (not index coordinates named y and x)
    if "y" in full:
        coords["lat"] = ("y", np.linspace(-60.0, 60.0, full["y"]), {"units": "degrees_north"})
    if "x" in full:
        coords["lon"] = (
            "x",
            np.linspace(0.0, 360.0, full["x"], endpoint=False),
            {"units": "degrees_east"},
        )
    lazy = da.zeros(shape, chunks=chunks, dtype=dtype)
    ds = xr.Dataset({var: (dims, lazy, attrs)}, coords=coords)
    enc = {var: xarray_encoding(chunks, dtype)}
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


INPUTS = ("a", "b", "labels", "mask")


def ensure_data(
    root: Path, size: Size, chunking: str, names: tuple[str, ...] = INPUTS, log: Any = print
) -> BenchData:
    """Generate (or reuse) the inputs ``names`` for ``size`` in ``chunking`` under ``root``.

    A group is reused when its marker file matches the requested shape, chunks,
    codec and generator version; otherwise it is rewritten.
    """
    base = Path(root) / f"{size.name}-{chunking}"
    base.mkdir(parents=True, exist_ok=True)
    cube_chunks = tuple(size.chunks[chunking])
    arrays: dict[str, ArrayRef] = {}
    for name in INPUTS:
        dtype = {"labels": LABEL_DTYPE, "mask": "uint8"}.get(name, "float32")
        dims = ("z", "y", "x") if name == "mask" else ("time", "y", "x")
        ref = ArrayRef(str(base / f"{name}.zarr"), name, dims, size.shape, cube_chunks, dtype)
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
            _write_group(
                Path(ref.group),
                "labels",
                ref.dims,
                ref.shape,
                ref.chunks,
                dtype,
                lambda r: label_values(size.shape, r),
                {"long_name": "region label"},
            )
        elif name == "mask":
            _write_group(
                Path(ref.group),
                "mask",
                ref.dims,
                ref.shape,
                ref.chunks,
                dtype,
                lambda r: mask_values(size.shape, r),
                {"long_name": "segmentation mask"},
            )
        else:
            attrs = {
                "units": "degC" if name == "a" else "1",
                "long_name": f"synthetic field {name}",
            }
            _write_group(
                Path(ref.group),
                name,
                ref.dims,
                ref.shape,
                ref.chunks,
                dtype,
                lambda r, n=name: cube_values(n, size.shape, r),
                attrs,
            )
        marker.write_text(json.dumps(spec))
    return BenchData(size=size, chunking=chunking, root=str(base), arrays=arrays)


def read_window(ref: ArrayRef, window: Mapping[str, slice]) -> np.ndarray:
    """Read ``window`` (dim -> slice; missing dims whole) of a stored input with zarr."""
    import zarr

    arr = zarr.open_array(ref.group, path=ref.var, mode="r")
    return np.asarray(arr[tuple(window.get(d, slice(None)) for d in ref.dims)])
