"""Staging: everything of a dataset that is being produced, in one object.

A computed dataset is staged under its own prefix (``storage/DESIGN.md`` has the
layout): the final array group its tasks write, a scratch group for intermediates
(rechunked pencils, partial reduction states), partial table parts of aggregations,
the table parts of its outputs, and one manifest per finished task. The runtime and
the tasks reach all of these through :class:`Staging` only, so no store path is spelt
outside ``storage/``.

A *recompute* staging (``recompute=True``) is used when a dataset whose record exists
is computed again on purpose (``reuse=False``). It lives in a separate area below the
dataset's prefix and never touches the committed group or tables: what it produced is
compared with the record (:meth:`Staging.differences`) and then removed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from minjiang.storage._info import ARRAYS, TABLES, dataset_prefix
from minjiang.storage._names import validate_key, validate_segment

if TYPE_CHECKING:
    import pyarrow as pa
    import zarr
    from minjiang.storage import DatasetWriter
    from minjiang.storage._store import Store

__all__ = ["Staging", "arrays_group_key"]

_SCRATCH = "_scratch"
_TASKS = "_tasks"
_RECOMPUTE = "_recompute"
_PARTIALS = "partials"


def arrays_group_key(dataset_id: str) -> str:
    """Store key of a dataset's Zarr group: ``datasets/<id>/arrays.zarr``."""
    return f"{dataset_prefix(dataset_id)}/{ARRAYS}"


def _area(dataset_id: str, recompute: bool) -> str:
    prefix = dataset_prefix(dataset_id)
    return f"{prefix}/{_RECOMPUTE}" if recompute else prefix


class Staging:
    """The staging area of one dataset being produced.

    Parameters
    ----------
    store : Store
        The store.
    dataset_id : str
        The dataset's content id (one name segment).
    recompute : bool, optional
        Stage in a separate area that never touches a committed dataset's group or
        tables (used to recompute a dataset whose record exists and compare).
    """

    def __init__(self, store: Store, dataset_id: str, *, recompute: bool = False) -> None:
        self.store = store
        self.dataset_id = validate_segment(dataset_id, kind="dataset id")
        self.recompute = recompute
        self.prefix = dataset_prefix(self.dataset_id)
        self.area = _area(self.dataset_id, recompute)
        self._writer: DatasetWriter | None = None
        self._scratch: DatasetWriter | None = None

    def __repr__(self) -> str:
        return f"Staging({self.store.url!r}, {self.dataset_id!r}, recompute={self.recompute!r})"

    # ------------------------------------------------------------------ keys
    @staticmethod
    def array_path(
        dataset_id: str, name: str, *, scratch: bool = False, recompute: bool = False
    ) -> str:
        """Store key prefix of an array staged for ``dataset_id`` (final or scratch).

        The planner gives intermediates this path before they exist; for the final
        group of an ordinary staging it is the committed array's key.
        """
        name = validate_segment(name, kind="array name")
        return f"{_area(dataset_id, recompute)}/{_group(scratch)}/{name}"

    def checksum_path(self, name: str, *, scratch: bool = False) -> str:
        """The key under which a task reports the chunk digests of an array it wrote."""
        return self.array_path(self.dataset_id, name, scratch=scratch, recompute=self.recompute)

    def _manifest_key(self, task_key: str) -> str:
        return validate_key(f"{self.area}/{_TASKS}/{task_key}.json")

    # ------------------------------------------------------------------ writers
    def _make_writer(self, scratch: bool) -> DatasetWriter:
        from minjiang.storage import DatasetWriter

        group = _group(scratch)
        if self.recompute:
            group = f"{_RECOMPUTE}/{group}"
        # Table parts go below the staging area too (never a committed table).
        tables = f"{self.area}/{_SCRATCH}" if scratch else self.area
        return DatasetWriter(self.store, self.dataset_id, group=group, tables_prefix=tables)

    @property
    def writer(self) -> DatasetWriter:
        """Writer of the dataset's final array group (and its table parts)."""
        if self._writer is None:
            self._writer = self._make_writer(scratch=False)
        return self._writer

    @property
    def scratch(self) -> DatasetWriter:
        """Writer of the scratch group (intermediates; removed after commit)."""
        if self._scratch is None:
            self._scratch = self._make_writer(scratch=True)
        return self._scratch

    def scratch_group(self) -> zarr.Group:
        """The scratch group, read-only and guarded (partial states read back by
        combine tasks).

        A chunk that is not stored raises :class:`~minjiang.errors.MissingChunkError`
        naming the dataset, array and chunk: a lost partial state is never folded into
        a result as fill values.
        """
        from minjiang.storage._reader import open_staged_group

        return open_staged_group(self.store, f"{self.area}/{_group(True)}", self.dataset_id)

    # ------------------------------------------------------------------ tables
    def write_table_part(self, table: str, part: str, data: Any) -> tuple[str, str]:
        """Write one Parquet part of an output table; returns its key and digest."""
        return self.writer.write_table_part(table, part, data)

    def write_partial_part(self, part: str, data: Any) -> tuple[str, str]:
        """Write one aggregation partial state (a table) to scratch; key and digest."""
        return self.scratch.write_table_part(_PARTIALS, part, data)

    def read_partial_part(self, part: str) -> pa.Table:
        """Read back one partial state written by :meth:`write_partial_part`."""
        import io

        import pyarrow.parquet as pq

        part = validate_segment(part, kind="table part name")
        key = f"{self.area}/{_SCRATCH}/{TABLES}/{_PARTIALS}/part-{part}.parquet"
        return pq.read_table(io.BytesIO(self.store.read_bytes(key)))

    # ------------------------------------------------------------------ manifests
    def write_manifest(self, task_key: str, doc: Mapping[str, Any]) -> None:
        """Write a finished task's manifest (its last act)."""
        self.store.write_json(self._manifest_key(task_key), dict(doc))

    def manifests(self, stage: str) -> Iterator[dict[str, Any]]:
        """The readable manifests of one stage (unreadable ones are skipped: their
        tasks simply run again)."""
        stage = validate_segment(stage, kind="stage name")
        for key in self.store.list(f"{self.area}/{_TASKS}/{stage}"):
            if not key.endswith(".json"):
                continue
            try:
                doc = self.store.read_json(key)
            except Exception:
                continue
            if isinstance(doc, dict):
                yield doc

    def verify(
        self, checksums: Mapping[str, Mapping[str, str]], tables: Mapping[str, Mapping[str, str]]
    ) -> bool:
        """Whether every chunk and part a manifest lists still has its recorded digest."""
        from minjiang.storage import verify_keys

        expected = {
            f"{path}/{ck}": digest
            for path, chunks in checksums.items()
            for ck, digest in chunks.items()
        }
        expected.update({key: d for parts in tables.values() for key, d in parts.items()})
        return not verify_keys(self.store, expected)

    # ------------------------------------------------------------------ commit
    def final_checksums(
        self, checksums: Mapping[str, Mapping[str, str]]
    ) -> dict[str, dict[str, str]]:
        """Digests of the final group's arrays, by array name (what a record keeps),
        from the ``{checksum path: {chunk: digest}}`` that tasks report."""
        base = f"{self.area}/{ARRAYS}/"
        out: dict[str, dict[str, str]] = {}
        for path, sums in checksums.items():
            if path.startswith(base):
                out.setdefault(path[len(base) :], {}).update(sums)
        return out

    def final_tables(self, tables: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, str]]:
        """Digests of the output tables' parts, by table name (partial states left out)."""
        base = f"{self.area}/{TABLES}/"
        return {
            name: {k: d for k, d in parts.items() if k.startswith(base)}
            for name, parts in tables.items()
            if any(k.startswith(base) for k in parts)
        }

    def differences(
        self,
        checksums: Mapping[str, Mapping[str, str]],
        tables: Mapping[str, Mapping[str, str]],
        record_checksums: Mapping[str, Mapping[str, str]],
        record_tables: Mapping[str, Mapping[str, str]],
    ) -> list[str]:
        """Where a recomputed dataset differs from its committed record.

        ``checksums`` and ``tables`` are what this staging produced (record form:
        :meth:`final_checksums`, :meth:`final_tables`); the result names each array
        chunk or table part whose digest differs, is missing or is extra (empty when
        the two are identical).
        """
        out: list[str] = []
        for name in sorted(set(checksums) | set(record_checksums)):
            mine, theirs = checksums.get(name, {}), record_checksums.get(name, {})
            for ck in sorted(set(mine) | set(theirs)):
                if mine.get(ck) != theirs.get(ck):
                    out.append(f"{name}/{ck}")
        base, committed = f"{self.area}/", f"{self.prefix}/"

        def rel(parts: Mapping[str, str], root: str) -> dict[str, str]:
            return {k[len(root) :] if k.startswith(root) else k: d for k, d in parts.items()}

        for name in sorted(set(tables) | set(record_tables)):
            mine = rel(tables.get(name, {}), base)
            theirs = rel(record_tables.get(name, {}), committed)
            for key in sorted(set(mine) | set(theirs)):
                if mine.get(key) != theirs.get(key):
                    out.append(key)
        return out

    def cleanup(self) -> None:
        """Remove what only staging needed: scratch, partial parts and manifests (or,
        for a recompute, the whole separate area)."""
        if self.recompute:
            self.store.delete_prefix(self.area)
            return
        self.store.delete_prefix(f"{self.prefix}/{_SCRATCH}")
        self.store.delete_prefix(f"{self.prefix}/{_TASKS}")


def _group(scratch: bool) -> str:
    return f"{_SCRATCH}/{ARRAYS}" if scratch else ARRAYS
