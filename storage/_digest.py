"""Digests of stored bytes: chunks, table parts, Zarr metadata and records.

Every digest names its algorithm (``"xxh3-128:<32 hex>"``), so a record says what
its checksums mean and an older or newer algorithm is never compared with the wrong
function. A bare 64-digit hex string is read as the sha256 that minjiang wrote before
digests were prefixed.

Chunks are digested with XXH3-128: the cost of checking every chunk a task reads must
stay a small fraction of decoding it, and ``python -m benchmarks.digest`` measured
XXH3-128 at 0.75-3 % of the time blosc-lz4 float32 chunks take to decode and re-encode
on one core, against 20-31 % for sha256, 11-14 % for blake3 and 49-61 % for blake2b
(``storage/DESIGN.md``, "Digests"). The threat it guards against is accident (a lost,
truncated, swapped, stale or flipped chunk), not an adversary who can write to the
store: such a writer could rewrite records too. Records themselves, which are small,
are digested with sha256.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any

from minjiang.errors import StoreError

__all__ = ["CHUNK_ALGORITHM", "FILL", "RECORD_ALGORITHM", "digest_bytes", "digest_matches"]

CHUNK_ALGORITHM = "xxh3-128"
RECORD_ALGORITHM = "sha256"
FILL = "fill"
"""The digest a record gives a chunk that is fill value by design (not stored)."""

_LEGACY = re.compile(r"[0-9a-f]{64}")


def _xxh3_128(data: Any) -> str:
    import xxhash

    return xxhash.xxh3_128_hexdigest(data)


def _hashlib(name: str) -> Callable[[Any], str]:
    def fn(data: Any) -> str:
        return hashlib.new(name, data).hexdigest()

    return fn


_ALGORITHMS: dict[str, Callable[[Any], str]] = {
    "xxh3-128": _xxh3_128,
    "sha256": _hashlib("sha256"),
    "blake2b": _hashlib("blake2b"),
}


def digest_bytes(data: Any, algorithm: str = CHUNK_ALGORITHM) -> str:
    """The digest of ``data`` (bytes or any buffer), as ``"<algorithm>:<hex>"``."""
    try:
        fn = _ALGORITHMS[algorithm]
    except KeyError:
        raise StoreError(
            f"unknown digest algorithm {algorithm!r}; minjiang knows {sorted(_ALGORITHMS)}"
        ) from None
    return f"{algorithm}:{fn(data)}"


def _split(digest: str) -> tuple[str, str]:
    if ":" in digest:
        algorithm, value = digest.split(":", 1)
        return algorithm, value
    if _LEGACY.fullmatch(digest):
        return "sha256", digest
    raise StoreError(
        f"digest {digest!r} names no algorithm; digests look like 'xxh3-128:<hex>' "
        "(or a bare sha256 from older stores)"
    )


def digest_matches(data: Any, expected: str) -> bool:
    """Whether ``data`` hashes to ``expected`` with the algorithm ``expected`` names.

    Raises
    ------
    StoreError
        If ``expected`` names an algorithm minjiang does not know.
    """
    algorithm, value = _split(expected)
    if algorithm not in _ALGORITHMS:
        raise StoreError(
            f"digest {expected!r} uses algorithm {algorithm!r}, which this minjiang does not "
            f"know ({sorted(_ALGORITHMS)}); verify it with the minjiang version that wrote it"
        )
    return _ALGORITHMS[algorithm](data) == value
