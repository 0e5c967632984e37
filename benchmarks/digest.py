"""``python -m benchmarks.digest``: what checking every chunk a task reads costs.

A committed input's chunks are hashed before zarr decodes them (``storage/_guard.py``)
and every chunk written is hashed as zarr stores it. This script measures each
candidate digest over the *encoded* bytes of minjiang's own codec (blosc-lz4 with
shuffle, then CRC-32C, on float32 chunks of 8 MiB decoded), next to the I/O floor
of a Zarr-to-Zarr step on one core: decoding the chunk and encoding it again. The
figure that matters is the digest's time as a share of that floor.

Candidates not installed are reported as such. Results are printed and saved to
``benchmarks/results/digest-<date>.json``.

Usage: ``python -m benchmarks.digest [--repeat N] [--chunk-mib M] [--out PATH]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
BUDGET_PCT = 5.0  # checking must cost at most this share of the I/O floor


def _candidates() -> dict[str, Callable[[Any], object] | str]:
    out: dict[str, Callable[[Any], object] | str] = {
        "sha256 (hashlib)": lambda b: hashlib.sha256(b).digest(),
        "blake2b-128 (hashlib)": lambda b: hashlib.blake2b(b, digest_size=16).digest(),
    }
    try:
        import google_crc32c

        out["crc32c (google-crc32c)"] = google_crc32c.value
    except ImportError:
        out["crc32c (google-crc32c)"] = "not installed"
    try:
        import crc32c

        out["crc32c (crc32c)"] = crc32c.crc32c
    except ImportError:
        out["crc32c (crc32c)"] = "not installed"
    try:
        import xxhash

        out["xxh3-128 (xxhash)"] = xxhash.xxh3_128_digest
    except ImportError:
        out["xxh3-128 (xxhash)"] = "not installed"
    try:
        import blake3

        out["blake3 (blake3)"] = lambda b: blake3.blake3(b).digest()
    except ImportError:
        out["blake3 (blake3)"] = "not installed"
    return out


def _fields(n: int, elements: int) -> list[np.ndarray]:
    """Float32 fields like the ones minjiang stores: smooth, noisy, with NaN gaps."""
    rng = np.random.default_rng(0)
    side = int(np.sqrt(elements))
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32) / side
    out = []
    for i in range(n):
        base = 15 + 10 * np.sin(2 * np.pi * (xx + i / n)) * np.cos(np.pi * yy)
        noise = rng.normal(scale=0.3, size=base.shape).astype(np.float32)
        field = (base + noise).astype(np.float32)
        field[rng.random(base.shape) < 0.1] = np.nan  # land / gaps
        out.append(np.ascontiguousarray(field.reshape(-1)[:elements]))
    return out


def _best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _codec_floor(arrays: list[np.ndarray], repeat: int) -> tuple[list[bytes], float, float]:
    """Encoded chunks, and the seconds to decode and to encode them all on one core."""
    import zarr
    from minjiang.storage import array_codecs
    from numcodecs import Blosc  # type: ignore[import-untyped]

    # minjiang's codec chain, run the way zarr runs it on a chunk
    zarr.config.set({"threading.max_workers": 1})
    blosc = Blosc(cname="lz4", clevel=5, shuffle=Blosc.SHUFFLE, blocksize=0)
    Blosc.use_threads = False
    assert array_codecs(np.float32)["compressors"][0].cname.value == "lz4"
    import crc32c

    def encode_all() -> list[bytes]:
        out = []
        for a in arrays:
            body = blosc.encode(a)
            out.append(bytes(body) + crc32c.crc32c(body).to_bytes(4, "little"))
        return out

    encoded = encode_all()

    def decode_all() -> None:
        for e in encoded:
            body = e[:-4]
            assert crc32c.crc32c(body) == int.from_bytes(e[-4:], "little")
            blosc.decode(body)

    return encoded, _best(decode_all, repeat), _best(encode_all, repeat)


def run(repeat: int, chunk_mib: float) -> dict[str, Any]:
    elements = int(chunk_mib * (1 << 20) / 4)
    arrays = _fields(8, elements)
    decoded = sum(a.nbytes for a in arrays)
    encoded, decode_s, encode_s = _codec_floor(arrays, repeat)
    encoded_bytes = sum(len(e) for e in encoded)
    floor_s = decode_s + encode_s
    rows: list[dict[str, Any]] = []
    for name, fn in _candidates().items():
        if isinstance(fn, str):
            rows.append({"digest": name, "status": fn})
            continue
        fn(encoded[0])

        def digest_all(f: Callable[[Any], object] = fn) -> None:
            for e in encoded:
                f(e)

        digest_s = _best(digest_all, repeat)
        rows.append(
            {
                "digest": name,
                "status": "ok",
                "gb_per_s": round(encoded_bytes / digest_s / 1e9, 2),
                "ms_per_chunk": round(digest_s / len(encoded) * 1e3, 3),
                "pct_of_io_floor": round(100 * digest_s / floor_s, 2),
                "pct_of_decode": round(100 * digest_s / decode_s, 2),
                "within_budget": 100 * digest_s / floor_s <= BUDGET_PCT,
            }
        )
    return {
        "benchmark": "digest",
        "when": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "host": {
            "machine": platform.machine(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
        },
        "chunk": {
            "dtype": "float32",
            "decoded_mib": chunk_mib,
            "chunks": len(arrays),
            "compression_ratio": round(decoded / encoded_bytes, 3),
            "codec": "bytes(little) -> blosc(lz4, clevel 5, shuffle) -> crc32c",
        },
        "io_floor": {
            "decode_gb_per_s_decoded": round(decoded / decode_s / 1e9, 3),
            "encode_gb_per_s_decoded": round(decoded / encode_s / 1e9, 3),
            "decode_plus_encode_gb_per_s_decoded": round(decoded / floor_s / 1e9, 3),
            "ms_per_chunk": round(floor_s / len(arrays) * 1e3, 3),
        },
        "budget_pct_of_io_floor": BUDGET_PCT,
        "chosen": "xxh3-128 (xxhash)",
        "digests": rows,
    }


def _print(result: dict[str, Any]) -> None:
    floor = result["io_floor"]
    chunk = result["chunk"]
    print(
        f"I/O floor, one core, {chunk['decoded_mib']} MiB float32 chunks "
        f"(ratio {chunk['compression_ratio']}): decode {floor['decode_gb_per_s_decoded']} GB/s, "
        f"encode {floor['encode_gb_per_s_decoded']} GB/s, decode+encode "
        f"{floor['decode_plus_encode_gb_per_s_decoded']} GB/s ({floor['ms_per_chunk']} ms/chunk)"
    )
    print(f"{'digest':24} {'GB/s':>8} {'ms/chunk':>9} {'% floor':>8} {'% decode':>9}  budget")
    for row in result["digests"]:
        if row["status"] != "ok":
            print(f"{row['digest']:24} {row['status']}")
            continue
        print(
            f"{row['digest']:24} {row['gb_per_s']:>8} {row['ms_per_chunk']:>9} "
            f"{row['pct_of_io_floor']:>8} {row['pct_of_decode']:>9}  "
            f"{'ok' if row['within_budget'] else 'over'}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.digest", description=__doc__)
    parser.add_argument("--repeat", type=int, default=5, help="best of N timings (default 5)")
    parser.add_argument("--chunk-mib", type=float, default=8.0, help="decoded chunk size")
    parser.add_argument("--out", type=Path, default=None, help="where to save the JSON")
    args = parser.parse_args(argv)
    if args.repeat < 1 or not 0 < args.chunk_mib <= 512:
        parser.error("--repeat must be >= 1 and --chunk-mib in (0, 512]")
    result = run(args.repeat, args.chunk_mib)
    _print(result)
    out = args.out or RESULTS / f"digest-{datetime.now(UTC):%Y%m%d}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"saved {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
