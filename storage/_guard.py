"""The two zarr store wrappers every minjiang array write and read goes through.

:class:`DigestingStore` wraps the zarr store a :class:`~minjiang.storage.DatasetWriter`
writes through and digests each chunk's *encoded* bytes as zarr hands them to the
store, so checksums cost no read-back (one PUT per chunk on object storage, never a
PUT and a GET).

:class:`GuardedStore` wraps the zarr store every read opens (``read_region``, the GPU
read path built on it, and :func:`~minjiang.storage.open_xarray` behind
``minjiang.open``). It is the one place two invariants are enforced:

* a read never invents data: a chunk key that is not in the store raises
  :class:`~minjiang.errors.MissingChunkError` instead of zarr's fill value,
  unless the record lists the chunk as fill by design;
* what is read from a committed dataset is what its record says: every chunk and
  Zarr metadata document is hashed and compared with the record's digest before
  zarr decodes it, so a swapped, stale, truncated or flipped chunk (or an edited
  ``zarr.json``) raises :class:`~minjiang.errors.ChecksumMismatchError` naming
  the dataset, array and key.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncGenerator, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from minjiang.errors import ChecksumMismatchError, MissingChunkError
from minjiang.storage._digest import CHUNK_ALGORITHM, FILL, digest_bytes, digest_matches
from zarr.storage import WrapperStore

if TYPE_CHECKING:
    from zarr.abc.store import ByteRequest
    from zarr.core.buffer import Buffer, BufferPrototype

__all__ = ["DigestingStore", "GuardedStore", "is_metadata_key", "settle"]


def is_metadata_key(key: str) -> bool:
    """Whether a key inside a Zarr hierarchy is a metadata document (not a chunk)."""
    leaf = key.rsplit("/", 1)[-1]
    return leaf == "zarr.json" or leaf.startswith(".z")


class DigestingStore(WrapperStore[Any]):
    """A zarr store that digests every chunk as it is written.

    ``take(key)`` returns (and forgets) the digest and size of the last write of
    ``key``; metadata documents are passed through undigested (they are digested
    from the store at publish time, once, when they are final).
    """

    def __init__(self, store: Any) -> None:
        super().__init__(store)
        self._written: dict[str, tuple[str, int]] = {}
        self._lock = threading.Lock()

    def _with_store(self, store: Any) -> DigestingStore:
        return type(self)(store)

    def __eq__(self, value: object) -> bool:
        return isinstance(value, DigestingStore) and self._store == value._store

    __hash__ = None  # type: ignore[assignment]

    async def set(self, key: str, value: Buffer) -> None:
        if not is_metadata_key(key):
            digest = digest_bytes(value.as_buffer_like(), CHUNK_ALGORITHM)
            with self._lock:
                self._written[key] = (digest, len(value))
        await self._store.set(key, value)

    async def _set_many(self, values: Iterable[tuple[str, Buffer]]) -> None:
        for key, value in values:
            await self.set(key, value)

    def take(self, key: str) -> tuple[str, int] | None:
        """The ``(digest, encoded size)`` of the last write of ``key``, forgotten after."""
        with self._lock:
            return self._written.pop(key, None)


class GuardedStore(WrapperStore[Any]):
    """A read-only zarr store that refuses missing chunks and checks digests.

    Parameters
    ----------
    store : zarr.abc.store.Store
        The store to read.
    dataset_id : str
        The dataset, for messages.
    base : str
        The store key of the wrapped store's root (for messages), e.g.
        ``"datasets/<id>/arrays.zarr"``.
    expected : Mapping of str to str, optional
        Key (relative to the wrapped store's root) to the digest the record gives it,
        for chunks and metadata documents; ``None`` for data that has no record
        (staging, scratch), where only missing chunks are refused.
    where : str
        Where the data lives, for messages (the store URL).
    """

    def __init__(
        self,
        store: Any,
        *,
        dataset_id: str,
        base: str,
        expected: Mapping[str, str] | None = None,
        where: str = "",
    ) -> None:
        super().__init__(store)
        self.dataset_id = dataset_id
        self.base = base
        self.expected = dict(expected) if expected is not None else None
        self.where = where

    def _with_store(self, store: Any) -> GuardedStore:
        return type(self)(
            store,
            dataset_id=self.dataset_id,
            base=self.base,
            expected=self.expected,
            where=self.where,
        )

    def __eq__(self, value: object) -> bool:
        return (
            isinstance(value, GuardedStore)
            and self._store == value._store
            and self.expected == value.expected
        )

    __hash__ = None  # type: ignore[assignment]

    # ---------------------------------------------------------------- messages
    def _name(self, key: str) -> tuple[str, str]:
        """(array, key within the array) of a key, as messages name them."""
        full = f"{self.base}/{key}" if self.base else key
        marker = "/arrays.zarr/"
        if marker in full:
            rest = full.split(marker, 1)[1]
            if "/" in rest:
                array, inner = rest.split("/", 1)
                return array, inner
            return "", rest
        return "", key

    def _missing(self, key: str) -> MissingChunkError:
        array, chunk = self._name(key)
        return MissingChunkError(
            f"chunk {chunk!r} of array {array!r} in dataset {self.dataset_id!r} is missing from "
            f"store {self.where!r} ({self.base}/{key}); minjiang never fills a missing chunk "
            f"in. Run `minjiang verify {self.dataset_id}` and re-run the step that produced "
            "the dataset, or restore the chunk from a copy"
        )

    def _mismatch(self, key: str, why: str) -> ChecksumMismatchError:
        array, chunk = self._name(key)
        what = (
            f"metadata {chunk!r} of array {array!r}"
            if array and is_metadata_key(key)
            else f"group metadata {chunk!r}"
            if is_metadata_key(key)
            else f"chunk {chunk!r} of array {array!r}"
        )
        return ChecksumMismatchError(
            f"{what} in dataset {self.dataset_id!r} (store {self.where!r}) {why}; the stored "
            "bytes are not those its catalog record lists (damaged, truncated, swapped, stale "
            f"or edited). Run `minjiang verify {self.dataset_id}` and re-run the step that "
            "produced the dataset, or restore it from a copy"
        )

    # ---------------------------------------------------------------- reads
    async def _checked(self, key: str, prototype: BufferPrototype) -> Buffer | None:
        from zarr.core.buffer import default_buffer_prototype

        meta = is_metadata_key(key)
        want = self.expected.get(key) if self.expected is not None else None
        if not meta and want == FILL:
            return None  # fill value by design: the record says so
        host = default_buffer_prototype()
        buf = await self._store.get(key, host if want is not None else prototype)
        if buf is None:
            if meta:
                return None  # zarr probes for metadata documents that need not exist
            raise self._missing(key)
        if self.expected is None:
            return buf
        if want is None:
            if meta:
                return buf  # documents the record does not cover (zarr probes, v2 names)
            raise self._mismatch(key, "is not listed in the dataset's record")
        if not digest_matches(buf.as_buffer_like(), want):
            raise self._mismatch(key, f"does not match its recorded digest {want!r}")
        if prototype is host or prototype.buffer is host.buffer:
            return buf
        return prototype.buffer.from_bytes(buf.to_bytes())

    async def get(
        self, key: str, prototype: BufferPrototype, byte_range: ByteRequest | None = None
    ) -> Buffer | None:
        if byte_range is None:
            return await self._checked(key, prototype)
        if self.expected is None:
            buf = await self._store.get(key, prototype, byte_range)
            if buf is None and not is_metadata_key(key):
                raise self._missing(key)
            return buf
        # A digest covers whole objects: check the whole, then hand out the range.
        whole = await self._checked(key, prototype)
        if whole is None:
            return None
        return _slice(whole, byte_range, prototype)

    async def get_partial_values(
        self,
        prototype: BufferPrototype,
        key_ranges: Iterable[tuple[str, ByteRequest | None]],
    ) -> list[Buffer | None]:
        return [await self.get(k, prototype, r) for k, r in key_ranges]

    async def _get_many(
        self, requests: Iterable[tuple[str, BufferPrototype, ByteRequest | None]]
    ) -> AsyncGenerator[tuple[str, Buffer | None], None]:
        for key, prototype, byte_range in requests:
            yield key, await self.get(key, prototype, byte_range)


def settle(timeout: float = 1.0) -> None:
    """Let the reads zarr still has in flight finish, after one of them raised.

    zarr gathers a selection's chunk reads without cancelling the others when one
    fails; left alone they are destroyed half-way when the process exits, which
    prints asyncio tracebacks after the real error. Bounded by ``timeout`` seconds.
    """
    import asyncio

    from zarr.core.sync import sync

    async def wait() -> None:
        me = asyncio.current_task()
        others = [t for t in asyncio.all_tasks() if t is not me and not t.done()]
        if others:
            await asyncio.wait(others, timeout=timeout)

    try:
        sync(wait())
    except Exception:  # best effort: the caller is already raising the real error
        return


def _slice(buf: Buffer, byte_range: ByteRequest, prototype: BufferPrototype) -> Buffer:
    from zarr.abc.store import OffsetByteRequest, RangeByteRequest, SuffixByteRequest

    data = buf.to_bytes()
    if isinstance(byte_range, RangeByteRequest):
        part = data[byte_range.start : byte_range.end]
    elif isinstance(byte_range, OffsetByteRequest):
        part = data[byte_range.offset :]
    elif isinstance(byte_range, SuffixByteRequest):
        part = data[max(0, len(data) - byte_range.suffix) :]
    else:
        raise TypeError(f"unexpected byte range {byte_range!r}")
    return prototype.buffer.from_bytes(part)
