"""Integrity at publish and on demand: sealing a record, verifying a dataset.

:func:`seal_record` runs inside :meth:`Catalog.publish`: it removes temporary files
killed writers left in the dataset, checks that the record lists a digest for every
chunk of the complete chunk grid of every array, digests the Zarr metadata documents
(the group's ``zarr.json`` with its consolidated metadata, and each array's) into the
record, and finally digests the record itself. :func:`verify_dataset` checks
everything a record claims against the store: the record's own digest and id, the
metadata, every chunk of the grid, every table part, and files that do not belong.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from minjiang.errors import (
    ChecksumMismatchError,
    KeyNotFoundError,
    RecordIntegrityError,
    StoreError,
)
from minjiang.storage._digest import CHUNK_ALGORITHM, FILL, digest_bytes, digest_matches
from minjiang.storage._encoding import _map
from minjiang.storage._guard import is_metadata_key
from minjiang.storage._info import ARRAYS, TABLES, ChunkProblem, VerifyReport, dataset_prefix
from minjiang.storage._names import validate_key, validate_segment
from minjiang.storage._store import Store, is_temporary

if TYPE_CHECKING:
    from minjiang.storage._catalog import Record

__all__ = ["ensure_verified", "grid_keys", "seal_record", "verify_dataset", "verify_keys"]

RECORD_PROBLEM_ARRAY = "(record)"


def grid_keys(shape: Iterable[int], chunks: Iterable[int]) -> list[str]:
    """Every chunk key of a regular grid, in Zarr v3's default encoding (``c/i/j``)."""
    shape_t, chunks_t = tuple(int(s) for s in shape), tuple(int(c) for c in chunks)
    if not shape_t:
        return ["c"]
    if any(s == 0 for s in shape_t):
        return []
    ranges = [range(-(-s // c)) for s, c in zip(shape_t, chunks_t, strict=True)]
    return ["c/" + "/".join(str(i) for i in idx) for idx in itertools.product(*ranges)]


# --------------------------------------------------------------------------- temporary files


def _walk(store: Store, prefix: str) -> list[str] | None:
    """Every file below ``prefix`` of a local store, temporary ones included."""
    root = store.local_path("")
    base = store.local_path(prefix)
    if root is None or base is None:
        return None
    if not base.is_dir():
        return []
    out: list[str] = []
    for dirpath, _dirs, files in os.walk(base):
        rel = Path(dirpath).relative_to(root).as_posix()
        out.extend(f"{rel}/{name}" for name in files)
    return sorted(out)


def sweep_temporary(store: Store, dataset_id: str) -> list[str]:
    """Delete the temporary files (``.tmp-*``, zarr's ``*.partial``) that killed writers
    left in a dataset's group and tables; returns their keys.

    Object stores write each object in one PUT and never leave any.
    """
    prefix = dataset_prefix(dataset_id)
    gone = []
    for sub in (ARRAYS, TABLES):
        for key in _walk(store, f"{prefix}/{sub}") or []:
            if is_temporary(key.rsplit("/", 1)[-1]):
                path = store.local_path(key)
                if path is not None:
                    path.unlink(missing_ok=True)
                    gone.append(key)
    return gone


# --------------------------------------------------------------------------- seal


def _metadata_documents(store: Store, prefix: str) -> dict[str, bytes]:
    """The group's and every array's ``zarr.json``, keyed relative to the group."""
    group = f"{prefix}/{ARRAYS}"
    try:
        root = store.read_bytes(f"{group}/zarr.json")
    except KeyNotFoundError:
        return {}
    docs = {"zarr.json": root}
    # Arrays are the group's immediate children: one listing of names, never of chunks.
    for name in store.list_dir(group):
        if name == "zarr.json" or is_temporary(name):
            continue
        try:
            docs[f"{name}/zarr.json"] = store.read_bytes(f"{group}/{name}/zarr.json")
        except KeyNotFoundError:
            continue
    return docs


def _array_grid(doc: bytes, where: str) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """Shape and chunk shape of an array's ``zarr.json`` (None for a group)."""
    import json

    meta = json.loads(doc)
    if meta.get("node_type") != "array":
        return None
    grid = meta.get("chunk_grid", {})
    encoding = meta.get("chunk_key_encoding", {})
    sep = encoding.get("configuration", {}).get("separator", "/")
    if grid.get("name") != "regular" or encoding.get("name") != "default" or sep != "/":
        raise StoreError(
            f"{where}: minjiang writes regular chunk grids with the default '/' chunk key "
            f"encoding, this array has {grid.get('name')!r} and "
            f"{encoding.get('name')!r}/{sep!r}; rewrite the dataset with minjiang"
        )
    shape = tuple(int(s) for s in meta["shape"])
    chunks = tuple(int(c) for c in grid["configuration"]["chunk_shape"])
    return shape, chunks


def seal_record(store: Store, record: Record) -> Record:
    """The record as it is published: complete, with its metadata and own digests.

    Called by :meth:`Catalog.publish` once the dataset is written and consolidated.
    Removes temporary files left in the dataset by killed writers, checks that
    ``record.checksums`` gives every chunk of every array's complete grid (a digest,
    or ``"fill"`` for a chunk that is fill value by design and not stored) and
    nothing else, digests each Zarr metadata document into ``metadata_digests`` and
    the record's canonical content into ``digest``.

    Raises
    ------
    StoreError
        If the record does not cover the chunk grid exactly (the message names the
        arrays and the first chunk keys), or an array is not laid out the way
        minjiang writes arrays.
    """
    sweep_temporary(store, record.id)
    docs = _metadata_documents(store, record.prefix)
    problems: list[str] = []
    arrays: set[str] = set()
    for rel, doc in sorted(docs.items()):
        if rel == "zarr.json":
            continue
        name = rel[: -len("/zarr.json")]
        grid = _array_grid(doc, f"array {name!r} of dataset {record.id!r}")
        if grid is None:
            continue
        arrays.add(name)
        want = set(grid_keys(*grid))
        have = set(record.checksums.get(name, {}))
        unlisted = sorted(want - have)
        extra = sorted(have - want)
        if unlisted:
            problems.append(
                f"array {name!r}: {len(unlisted)} of {len(want)} chunks have no digest "
                f"({', '.join(unlisted[:3])}{'...' if len(unlisted) > 3 else ''})"
            )
        if extra:
            problems.append(
                f"array {name!r}: digests for {len(extra)} keys outside its chunk grid "
                f"({', '.join(extra[:3])}{'...' if len(extra) > 3 else ''})"
            )
    for name in sorted(set(record.checksums) - arrays):
        problems.append(f"checksums name array {name!r}, which the dataset's group does not have")
    if problems:
        raise StoreError(
            f"refusing to publish record {record.id!r} in store {store.url!r}: it does not list "
            f"every chunk of the dataset exactly: {'; '.join(problems)}. Every chunk must be "
            "written (or listed as 'fill' when it is fill value by design) before the record "
            "is published"
        )
    meta = {rel: digest_bytes(doc, CHUNK_ALGORITHM) for rel, doc in sorted(docs.items())}
    sealed = record.model_copy(update={"metadata_digests": meta, "digest": ""})
    return sealed.model_copy(update={"digest": sealed.content_digest()})


# --------------------------------------------------------------------------- verify


def verify_keys(store: Store, expected: Mapping[str, str]) -> dict[str, str]:
    """Re-read each store key and compare it with the digest ``expected[key]``.

    Digests name their algorithm (``"xxh3-128:..."``; a bare hex string is sha256).
    Returns only the keys that fail, mapped to ``"missing"`` or
    ``"checksum mismatch"`` (empty when everything verifies). Reads run in parallel
    on object stores.
    """

    def check(key: str) -> tuple[str, str | None]:
        try:
            raw = store.read_bytes(key)
        except KeyNotFoundError:
            return key, "missing"
        return key, None if digest_matches(raw, expected[key]) else "checksum mismatch"

    keys = [validate_key(k) for k in expected]
    return {k: p for k, p in _map(check, keys, parallel=len(keys) > 4) if p is not None}


def _list_all(store: Store, prefix: str) -> list[str]:
    walked = _walk(store, prefix)
    return walked if walked is not None else store.list(prefix)


def _split_array_key(rel: str) -> tuple[str, str]:
    if "/" in rel:
        array, key = rel.split("/", 1)
        return array, key
    return "", rel


def verify_dataset(
    store: Store,
    dataset_id: str | Record,
    checksums: Mapping[str, Mapping[str, str]] | None = None,
    *,
    tables: Mapping[str, Mapping[str, str]] | None = None,
) -> VerifyReport:
    """Check a dataset in the store against everything its record claims.

    With a published record (loaded fresh from the store, never from a cache) this
    checks: the record's own digest and that its ``id`` is the key it is stored
    under; each Zarr metadata document against ``metadata_digests``; every chunk of
    the complete chunk grid of every array in the record's schema (a chunk without a
    digest is a problem even when it is absent); each chunk and each table part
    against its digest; and files in the group or tables that the record does not
    list (temporary files of killed writers included). Without a record (a dataset
    being staged) the grid comes from the stored metadata.

    Parameters
    ----------
    store : Store
        The store.
    dataset_id : str or Record
        The dataset id, or a record (then also checked against the stored one).
    checksums : Mapping, optional
        Array name to ``{chunk key: digest}``; defaults to the record's.
    tables : Mapping, optional
        Table name to ``{part store key: digest}``; defaults to the record's.

    Returns
    -------
    VerifyReport
        ``checked`` counts chunks, table parts, metadata documents and the record.
    """
    from minjiang.storage._catalog import load_record

    given = dataset_id if not isinstance(dataset_id, str) else None
    rid = validate_segment(given.id if given is not None else str(dataset_id), kind="dataset id")
    prefix = dataset_prefix(rid)
    group = f"{prefix}/{ARRAYS}"
    record_key = f"catalog/records/{rid}.json"
    problems: list[ChunkProblem] = []
    checked = 0

    record: Record | None
    try:
        record = load_record(store, rid, cached=False)
        checked += record is not None
    except RecordIntegrityError:
        # Nothing else can be judged against a record that is not the one published.
        record = None
        checked += 1
        problems.append(ChunkProblem(RECORD_PROBLEM_ARRAY, record_key, "record mismatch"))
        if given is None and checksums is None:
            return VerifyReport(ok=False, checked=checked, problems=problems)
    if given is not None:
        if record is not None and record.digest and given.digest and given.digest != record.digest:
            problems.append(ChunkProblem(RECORD_PROBLEM_ARRAY, record_key, "record mismatch"))
        record = given if record is None else record
    sums = {k: dict(v) for k, v in (checksums or (record.checksums if record else {})).items()}
    parts = {k: dict(v) for k, v in (tables or (record.tables if record else {})).items()}

    # metadata documents
    metadata: dict[str, str] = dict(record.metadata_digests) if record is not None else {}
    for rel, want in sorted(metadata.items()):
        checked += 1
        try:
            raw = store.read_bytes(f"{group}/{validate_key(rel)}")
        except KeyNotFoundError:
            problems.append(ChunkProblem(_split_array_key(rel)[0], rel, "missing"))
            continue
        if not digest_matches(raw, want):
            problems.append(ChunkProblem(_split_array_key(rel)[0], rel, "checksum mismatch"))

    # the complete chunk grid
    grids: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}
    if record is not None and (record.schema_.get("arrays") or record.schema_.get("coords")):
        for section in ("arrays", "coords"):
            for name, a in (record.schema_.get(section) or {}).items():
                grids[name] = (tuple(a["shape"]), tuple(a["chunks"]))
    elif record is None:
        from minjiang.storage._reader import open_dataset_info

        try:
            info = open_dataset_info(store, rid, table_schemas=False)
        except FileNotFoundError:
            info = None
        if info is not None:
            for name, a in {**info.arrays, **info.coords}.items():
                grids[name] = (a.shape, a.chunks)
    stored = set(_list_all(store, group))
    jobs: dict[str, tuple[str, str, str]] = {}  # store key -> (array, chunk key, digest)
    known: set[str] = {f"{group}/{rel}" for rel in metadata}
    for name, (shape, chunks) in sorted(grids.items()):
        recorded = sums.get(name, {})
        for ck in grid_keys(shape, chunks):
            key = f"{group}/{name}/{ck}"
            known.add(key)
            listed = recorded.get(ck)
            if listed == FILL:
                checked += 1
                if key in stored:
                    problems.append(ChunkProblem(name, ck, "stray file"))
                continue
            if listed is None:
                checked += 1
                problems.append(
                    ChunkProblem(name, ck, "missing" if key not in stored else "not recorded")
                )
                continue
            jobs[key] = (name, ck, listed)
    for name, recorded in sorted(sums.items()):
        for ck, want in recorded.items():
            key = validate_key(f"{group}/{validate_segment(name, kind='array name')}/{ck}")
            if key not in known and want != FILL:
                known.add(key)
                jobs[key] = (name, ck, want)

    # table parts
    table_keys: set[str] = set()
    for table, part_digests in sorted(parts.items()):
        validate_segment(table, kind="table name")
        for key, want in part_digests.items():
            if not validate_key(key).startswith(f"{prefix}/{TABLES}/{table}/"):
                raise ValueError(
                    f"table part key {key!r} is not below {prefix}/{TABLES}/{table}/ (dataset "
                    f"{rid!r})"
                )
            table_keys.add(key)
            jobs[key] = (table, key, want)

    found = verify_keys(store, {key: want for key, (_, _, want) in jobs.items()})
    checked += len(jobs)
    for key, (array, ck, _) in jobs.items():
        if key in found:
            problem = found[key]
            problems.append(
                ChunkProblem(array, ck, "missing" if problem == "missing" else "checksum mismatch")
            )

    # files that are not part of the dataset
    for key in sorted(stored - known):
        rel = key[len(group) + 1 :]
        if record is None and is_metadata_key(rel) and not is_temporary(rel.rsplit("/", 1)[-1]):
            continue  # without a record, every metadata document belongs
        problems.append(ChunkProblem(_split_array_key(rel)[0], rel, "stray file"))
    for key in _list_all(store, f"{prefix}/{TABLES}"):
        if key not in table_keys and (record is not None or is_temporary(key.rsplit("/", 1)[-1])):
            problems.append(ChunkProblem(key.split("/")[3], key, "stray file"))

    problems.sort(key=lambda p: (p.array, p.chunk_key, p.problem))
    unique = list(dict.fromkeys(problems))
    return VerifyReport(ok=not unique, checked=checked, problems=unique)


def ensure_verified(report: VerifyReport, dataset_id: str) -> None:
    """Raise :class:`ChecksumMismatchError` unless ``report`` is clean.

    The message names the dataset, how many items failed and the first few, each
    with what is wrong with it.
    """
    if report.ok:
        return
    first = ", ".join(f"{p.array}/{p.chunk_key} ({p.problem})" for p in report.problems[:5])
    more = f" and {len(report.problems) - 5} more" if len(report.problems) > 5 else ""
    raise ChecksumMismatchError(
        f"dataset {dataset_id!r}: {len(report.problems)} of {report.checked} chunks, parts and "
        f"documents failed verification: {first}{more}. The store differs from what the "
        "dataset's record says; re-run the step that produced the dataset (it rewrites those "
        "chunks) or restore them from a copy"
    )
