"""The catalog: one immutable record per committed dataset, mutable names, lineage.

Records live in the store itself (``catalog/records/<id>.json``), created exclusively
and only after their dataset is complete, so a reader either finds a whole record of
a whole dataset or nothing. Names (``catalog/names/<name>.json``) are mutable pointers
to ids with their history, like git refs. Lineage is the graph of records linked by
their ``inputs``; it walks both ways and exports to W3C PROV-JSON and STAC.
"""

from __future__ import annotations

import builtins
import dataclasses
import datetime as _dt
import difflib
import os
import re
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal

from minjiang.errors import (
    DatasetNotFoundError,
    InvalidNameError,
    KeyNotFoundError,
    RecordIntegrityError,
    StoreError,
)
from minjiang.storage._digest import RECORD_ALGORITHM, digest_bytes, digest_matches
from minjiang.storage._index import CatalogQuery, entries, index_entry, index_key
from minjiang.storage._info import ARRAYS, dataset_prefix
from minjiang.storage._names import canonical_json, validate_name, validate_segment
from minjiang.storage._store import Store, open_store
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["Catalog", "LineageGraph", "Record", "load_record", "utc_now"]

RECORDS = "catalog/records"
NAMES = "catalog/names"
PROCESSING_EXTENSION = "https://stac-extensions.github.io/processing/v1.2.0/schema.json"
PROV_NAMESPACE = "urn:minjiang:"


def utc_now() -> str:
    """The current time as ISO 8601 UTC with microseconds (``2026-01-31T12:00:00.000000Z``)."""
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(value: str) -> _dt.datetime:
    text = value[:-1] + "+00:00" if value.endswith("Z") else value
    parsed = _dt.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError(f"time {value!r} has no time zone; use UTC ('...Z' or '+00:00')")
    return parsed.astimezone(_dt.UTC)


class Record(BaseModel):
    """The catalog record of one committed dataset.

    Attributes
    ----------
    id : str
        Dataset id (content hash).
    kind : {"computed", "ingested"}
        How it was produced.
    names : list of str
        Human names given at publication (validated dataset names).
    domain : str
        ``"ocean"``, ``"medicine"``... (the operator's or reader's namespace).
    hidden : bool
        Intermediates (rechunked copies, partial results) are hidden from listings.
    prefix : str
        Store key prefix of the dataset, ``datasets/<id>`` (filled in when omitted).
    schema_ : dict
        :func:`~minjiang.storage.dataset_schema` of the dataset (alias ``schema``).
    producer : dict
        Operator or reader name, version, params, backend, fallbacks...
    inputs : dict of str to str
        Input name to dataset id.
    software : dict of str to str
        Package name to version.
    host : dict
        Host name, CPU, GPU...
    timings : dict
        Seconds per phase; ``started``/``finished`` ISO times where known.
    checksums : dict
        Array name to ``{chunk key: digest}`` for every chunk of the array's complete
        grid; a digest names its algorithm (``"xxh3-128:<hex>"``), and ``"fill"``
        marks a chunk that is fill value by design and not stored.
    tables : dict
        Table name to ``{part store key: digest}``.
    metadata : dict
        Domain fields from ``minjiang_catalog_metadata`` hooks.
    status : {"committed"}
        Records exist only for committed datasets.
    created : str
        ISO 8601 UTC time of publication.
    metadata_digests : dict of str to str
        Digest of each Zarr metadata document of the group (``"zarr.json"``,
        ``"<array>/zarr.json"``), filled in when the record is published.
    digest : str
        ``"sha256:<hex>"`` of the record's canonical JSON without this field, filled
        in when the record is published: the catalog refuses a record whose content
        no longer matches it.
    """

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )

    id: str
    kind: Literal["computed", "ingested"]
    names: list[str] = Field(default_factory=list)
    domain: str
    hidden: bool = False
    prefix: str = ""
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema")
    producer: dict[str, Any] = Field(default_factory=dict)
    inputs: dict[str, str] = Field(default_factory=dict)
    software: dict[str, str] = Field(default_factory=dict)
    host: dict[str, Any] = Field(default_factory=dict)
    timings: dict[str, Any] = Field(default_factory=dict)
    checksums: dict[str, dict[str, str]] = Field(default_factory=dict)
    tables: dict[str, dict[str, str]] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)
    status: Literal["committed"] = "committed"
    created: str = Field(default_factory=utc_now)
    metadata_digests: dict[str, str] = Field(default_factory=dict)
    digest: str = ""

    @model_validator(mode="before")
    @classmethod
    def _fill_prefix(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("prefix") and isinstance(data.get("id"), str):
            data = dict(data)
            try:
                data["prefix"] = dataset_prefix(data["id"])
            except InvalidNameError:
                pass  # the id validator reports it
        return data

    @field_validator("id")
    @classmethod
    def _check_id(cls, v: str) -> str:
        return validate_segment(v, kind="dataset id")

    @field_validator("names")
    @classmethod
    def _check_names(cls, v: list[str]) -> list[str]:
        return list(dict.fromkeys(validate_name(n) for n in v))

    @field_validator("inputs")
    @classmethod
    def _check_inputs(cls, v: dict[str, str]) -> dict[str, str]:
        return {k: validate_segment(i, kind=f"id of input {k!r}") for k, i in v.items()}

    @field_validator("created")
    @classmethod
    def _check_created(cls, v: str) -> str:
        _parse_time(v)
        return v

    @model_validator(mode="after")
    def _check_prefix(self) -> Record:
        if self.prefix != dataset_prefix(self.id):
            raise ValueError(
                f"prefix {self.prefix!r} of record {self.id!r} must be {dataset_prefix(self.id)!r}"
            )
        return self

    @property
    def operator(self) -> str | None:
        """The producing operator (or reader) name."""
        value = self.producer.get("operator") or self.producer.get("reader")
        return str(value) if value is not None else None

    @property
    def created_at(self) -> _dt.datetime:
        """``created`` as an aware UTC datetime."""
        return _parse_time(self.created)

    def to_json(self) -> bytes:
        """The record as canonical UTF-8 JSON (what the store holds)."""
        return canonical_json(self.model_dump(mode="json", by_alias=True))

    def content_digest(self) -> str:
        """``"sha256:<hex>"`` of the canonical JSON of everything but ``digest``."""
        content = self.model_dump(mode="json", by_alias=True)
        content.pop("digest", None)
        return digest_bytes(canonical_json(content), RECORD_ALGORITHM)


# Records are immutable once published: one cache per process, shared by every
# Catalog and by the read path, holding only records that passed their checks. A
# record's key can be published again only after the record (or the whole store) was
# removed, so a process that outlives runs (a notebook, the run service, a warm
# worker) empties it when the next run begins (``forget_cached``).
_CACHE: dict[tuple[str, str], Record] = {}
_CACHE_LOCK = threading.Lock()


def forget_records() -> None:
    """Empty this process's record cache (see :func:`minjiang.storage.forget_cached`)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def _record_key(dataset_id: str) -> str:
    return f"{RECORDS}/{validate_segment(dataset_id, kind='dataset id')}.json"


def load_record(store: Store, dataset_id: str, *, cached: bool = True) -> Record | None:
    """The published record of a dataset, checked, or None when there is none.

    A record is accepted only if it parses, its ``id`` is the id it is stored under,
    and its ``digest`` matches its content. Accepted records are cached for the
    life of the process (they are immutable); ``cached=False`` reads and checks the
    stored file again (what ``verify_dataset`` does).

    Raises
    ------
    RecordIntegrityError
        If the stored record is not valid JSON or not a valid record, claims another
        id, has no digest, or its content does not match its digest.
    """
    key = (store.url, validate_segment(dataset_id, kind="dataset id"))
    if cached:
        with _CACHE_LOCK:
            hit = _CACHE.get(key)
        if hit is not None:
            return hit
    where = f"catalog record {dataset_id!r} in store {store.url!r} ({_record_key(dataset_id)})"
    fix = (
        "it was altered after publication; restore it from a copy, or delete the record and "
        "re-run the step that produced the dataset"
    )
    try:
        raw = store.read_json(_record_key(dataset_id))
    except KeyNotFoundError:
        return None
    except StoreError as err:
        raise RecordIntegrityError(f"{where} is not a valid record: {err}; {fix}") from err
    try:
        record = Record.model_validate(raw)
    except ValueError as err:
        raise RecordIntegrityError(f"{where} is not a valid record: {err}; {fix}") from err
    if record.id != dataset_id:
        raise RecordIntegrityError(
            f"{where} claims id {record.id!r}: a record must be stored under its own id; {fix}"
        )
    if not record.digest:
        raise RecordIntegrityError(
            f"{where} has no digest, so its content cannot be checked (records are sealed "
            f"by Catalog.publish); {fix}"
        )
    try:
        content = {k: v for k, v in raw.items() if k != "digest"}
        ok = digest_matches(canonical_json(content), record.digest)
    except StoreError as err:
        raise RecordIntegrityError(f"{where}: {err}") from err
    if not ok:
        raise RecordIntegrityError(
            f"{where} does not match its digest {record.digest!r}: its content (producer, "
            f"params, schema, checksums...) was changed after publication; {fix}"
        )
    with _CACHE_LOCK:
        _CACHE[key] = record
    return record


def _cache(store: Store, record: Record) -> None:
    with _CACHE_LOCK:
        _CACHE[(store.url, record.id)] = record


@dataclasses.dataclass(frozen=True)
class LineageGraph:
    """A piece of the lineage graph around one dataset.

    Attributes
    ----------
    root : str
        The dataset id the walk started from.
    nodes : dict of str to Record
        Every record reached (the root included).
    edges : list of tuple
        ``(parent_id, child_id, input_name)``, sorted.
    missing : tuple of str
        Ids named as inputs that have no record in this catalog.
    """

    root: str
    nodes: dict[str, Record]
    edges: list[tuple[str, str, str]]
    missing: tuple[str, ...] = ()

    def parents_of(self, dataset_id: str) -> list[str]:
        """Ids of the direct parents of ``dataset_id`` within this graph."""
        return sorted({p for p, c, _ in self.edges if c == dataset_id})

    def children_of(self, dataset_id: str) -> list[str]:
        """Ids of the direct children of ``dataset_id`` within this graph."""
        return sorted({c for p, c, _ in self.edges if p == dataset_id})


def _reachable(start: str, graph: dict[str, list[str]]) -> set[str]:
    """Ids reachable from ``start`` along ``graph`` (``start`` itself left out)."""
    seen: set[str] = set()
    todo = deque(graph.get(start, []))
    while todo:
        node = todo.popleft()
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, []))
    seen.discard(start)
    return seen


def _newest_first(records: Iterable[Record]) -> list[Record]:
    return sorted(records, key=lambda r: (r.created_at, r.id), reverse=True)


class Catalog:
    """The catalog of a store.

    Parameters
    ----------
    store : Store, str, path-like or None
        The store (or anything :func:`~minjiang.storage.open_store` accepts).
    """

    def __init__(self, store: Store | str | os.PathLike[str] | None = None) -> None:
        self.store = store if isinstance(store, Store) else open_store(store)

    def __repr__(self) -> str:
        return f"Catalog({self.store.url!r})"

    # -------------------------------------------------------------- records
    @staticmethod
    def _record_key(dataset_id: str) -> str:
        return _record_key(dataset_id)

    @staticmethod
    def _name_key(name: str) -> str:
        return f"{NAMES}/{validate_name(name)}.json"

    def _load(self, dataset_id: str) -> Record | None:
        return load_record(self.store, dataset_id)

    def _ids(self) -> list[str]:
        return [
            k[len(RECORDS) + 1 : -len(".json")]
            for k in self.store.list(RECORDS)
            if k.endswith(".json") and k.count("/") == RECORDS.count("/") + 1
        ]

    def _all(self) -> list[Record]:
        out = []
        for rid in self._ids():
            record = self._load(rid)
            if record is not None:
                out.append(record)
        return out

    def publish(self, record: Record) -> bool:
        """Publish a record: atomically create ``catalog/records/<id>.json``.

        Call it only once the dataset is completely written. The record becomes
        visible whole or not at all. Its ``names`` are then pointed at its id (also
        when another job published the same id first: the content is the same).

        Parameters
        ----------
        record : Record
            The record.

        The record is sealed first (``storage/DESIGN.md``, "Integrity"): temporary
        files of killed writers are removed from the dataset, the record must list a
        digest for every chunk of every array's complete grid, the Zarr metadata
        documents are digested into ``metadata_digests`` and the record's content
        into ``digest``. What is stored is that sealed record.

        Returns
        -------
        bool
            True if this call created the record, False if a record with that id
            already existed (another job won; it is left as it is).

        Raises
        ------
        StoreError
            If the record says the dataset has arrays but the store has none for it,
            or its checksums do not cover the dataset's chunk grid exactly.
        """
        if (record.schema_.get("arrays") or record.schema_.get("coords")) and not self.store.exists(
            f"{record.prefix}/{ARRAYS}/zarr.json"
        ):
            raise StoreError(
                f"refusing to publish record {record.id!r}: its schema lists arrays but store "
                f"{self.store.url!r} has no {record.prefix}/{ARRAYS}/zarr.json; write and "
                "commit the dataset before publishing its record"
            )
        from minjiang.storage._verify import seal_record

        record = seal_record(self.store, record)
        created = self.store.create_bytes(self._record_key(record.id), record.to_json())
        if created:
            _cache(self.store, record)
            # the search index entry (a search builds it from the record if this
            # process dies before writing it)
            self.store.write_bytes(index_key(record.id), canonical_json(index_entry(record)))
        for name in record.names:
            self.set_name(name, record.id)
        return created

    def exists(self, dataset_id: str) -> bool:
        """Whether a record with that id is published."""
        return self.store.exists(self._record_key(dataset_id))

    def resolve(self, ref: str | Record) -> str | None:
        """The dataset id ``ref`` refers to: an id, a name, or a unique id prefix (6+ hex).

        Returns None when nothing matches.

        Raises
        ------
        InvalidNameError
            If ``ref`` is neither a valid id nor a valid name.
        """
        if isinstance(ref, Record):
            return ref.id
        as_id: str | None
        try:
            as_id = validate_segment(ref, kind="dataset id")
        except InvalidNameError:
            as_id = None
        if as_id is not None and self.exists(as_id):
            return as_id
        name = validate_name(ref)
        try:
            pointer = self.store.read_json(self._name_key(name))
        except KeyNotFoundError:
            pointer = None
        if isinstance(pointer, dict) and isinstance(pointer.get("id"), str):
            return str(pointer["id"])
        if as_id is not None and re.fullmatch(r"[0-9a-f]{6,}", as_id):
            matches = [i for i in self._ids() if i.startswith(as_id)]
            if len(matches) == 1:
                return matches[0]
        return None

    def get(self, ref: str | Record) -> Record:
        """The record of a dataset by id, name or unique id prefix.

        Raises
        ------
        DatasetNotFoundError
            If nothing matches; the message suggests close names and ids.
        """
        rid = self.resolve(ref)
        record = self._load(rid) if rid is not None else None
        if record is None:
            known = list(self.names()) + self._ids()
            close = difflib.get_close_matches(str(ref), known, n=3, cutoff=0.6)
            hint = (
                f"did you mean {', '.join(repr(c) for c in close)}?"
                if close
                else "list datasets with `minjiang catalog ls`"
            )
            if rid is not None:
                raise DatasetNotFoundError(
                    f"name {ref!r} points to dataset {rid!r}, which has no record in store "
                    f"{self.store.url!r}; {hint}"
                )
            raise DatasetNotFoundError(
                f"no dataset {ref!r} in the catalog of store {self.store.url!r}; {hint}"
            )
        return record

    # -------------------------------------------------------------- names
    def set_name(self, name: str, dataset_id: str) -> None:
        """Point ``name`` at a dataset (atomic overwrite; the history keeps earlier ids).

        Two concurrent ``set_name`` calls on one name each leave a complete pointer;
        the later wins and the history may miss the earlier one.

        Raises
        ------
        DatasetNotFoundError
            If no record with that id is published.
        """
        name = validate_name(name)
        validate_segment(dataset_id, kind="dataset id")
        if not self.exists(dataset_id):
            raise DatasetNotFoundError(
                f"cannot name dataset {dataset_id!r} {name!r}: it has no record in store "
                f"{self.store.url!r}; publish it first"
            )
        key = self._name_key(name)
        try:
            current = self.store.read_json(key)
        except KeyNotFoundError:
            current = {}
        if not isinstance(current, dict):
            current = {}
        if current.get("id") == dataset_id:
            return
        history = [h for h in current.get("history", []) if isinstance(h, dict)]
        history.append({"id": dataset_id, "at": utc_now()})
        self.store.write_json(key, {"id": dataset_id, "history": history})

    def name_history(self, name: str) -> list[dict[str, str]]:
        """Every id ``name`` has pointed at, oldest first (``[{"id":..., "at":...}]``)."""
        try:
            pointer = self.store.read_json(self._name_key(name))
        except KeyNotFoundError:
            return []
        return list(pointer.get("history", [])) if isinstance(pointer, dict) else []

    def _pointers(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every name and its pointer document (``{"id": ..., "history": [...]}``)."""
        for key in self.store.list(NAMES):
            if not key.endswith(".json"):
                continue
            try:
                pointer = self.store.read_json(key)
            except KeyNotFoundError:
                continue
            if isinstance(pointer, dict) and isinstance(pointer.get("id"), str):
                yield key[len(NAMES) + 1 : -len(".json")], pointer

    def names(self) -> dict[str, str]:
        """Every name and the id it points at, sorted by name."""
        return dict(sorted((name, pointer["id"]) for name, pointer in self._pointers()))

    def names_by_dataset(self) -> dict[str, builtins.list[str]]:
        """Every named dataset id and the names pointing at it, in the order they were
        pointed at it (oldest first)."""
        stamped: dict[str, builtins.list[tuple[str, str]]] = {}
        for name, pointer in self._pointers():
            did = pointer["id"]
            history = [h for h in pointer.get("history", []) if isinstance(h, dict)]
            # when the name was last pointed at its current dataset
            at = next((str(h.get("at", "")) for h in reversed(history) if h.get("id") == did), "")
            stamped.setdefault(did, []).append((at, name))
        return {did: [n for _, n in sorted(pairs)] for did, pairs in sorted(stamped.items())}

    def names_of(
        self, ref: str | Record, *, pointers: Mapping[str, Sequence[str]] | None = None
    ) -> builtins.list[str]:
        """Every name of a dataset: those it was published with that still point at it,
        then the names given to it later (a reused dataset run under a second name),
        oldest first.

        Parameters
        ----------
        ref : str or Record
            The dataset (id, name or record).
        pointers : mapping, optional
            What :meth:`names_by_dataset` returned, when listing many datasets (read once).
        """
        record = ref if isinstance(ref, Record) else self.get(ref)
        if pointers is None:
            pointers = self.names_by_dataset()
        current = list(pointers.get(record.id, ()))
        elsewhere = {n for did, names in pointers.items() if did != record.id for n in names}
        published = [n for n in record.names if n not in elsewhere]
        return published + [n for n in current if n not in published]

    # -------------------------------------------------------------- queries
    def list(
        self,
        *,
        domain: str | None = None,
        operator: str | None = None,
        input: str | None = None,
        name: str | None = None,
        include_hidden: bool = False,
    ) -> builtins.list[Record]:
        """Records matching every given filter, newest first.

        Parameters
        ----------
        domain : str, optional
            Exact domain.
        operator : str, optional
            Producing operator or reader name.
        input : str, optional
            A dataset (id or name) the record used as an input.
        name : str, optional
            A name the record was published with or the name currently points at.
        include_hidden : bool, optional
            Include hidden intermediates.
        """
        input_id = None
        if input is not None:
            input_id = self.resolve(input) or input
        name_id = self.resolve(name) if name is not None else None
        out = []
        for r in self._all():
            if r.hidden and not include_hidden:
                continue
            if domain is not None and r.domain != domain:
                continue
            if operator is not None and r.operator != operator:
                continue
            if input_id is not None and input_id not in r.inputs.values():
                continue
            if name is not None and name not in r.names and r.id != name_id:
                continue
            out.append(r)
        return _newest_first(out)

    def search(
        self,
        text: str = "",
        *,
        domain: str | None = None,
        variable: str | None = None,
        bbox: tuple[float, float, float, float] | None = None,
        start: str | None = None,
        end: str | None = None,
        operator: str | None = None,
        producer: str | None = None,
        ancestor_of: str | None = None,
        descendant_of: str | None = None,
        include_hidden: bool = False,
    ) -> builtins.list[Record]:
        """Records matching every given filter, newest first, answered from the
        search index kept at commit time (``storage/_index.py``), not from the data.

        Parameters
        ----------
        text : str, optional
            Case-insensitive substring of a name, the operator or reader, the domain,
            the id, or a variable's name, CF standard name or long name.
        domain : str, optional
            Exact domain (``"ocean"``, ``"forestry"``...).
        variable : str, optional
            An array name or CF ``standard_name`` (case-insensitive, exact).
        bbox : (west, south, east, north), optional
            Degrees; datasets whose extent intersects it (those with no extent are
            left out).
        start, end : str, optional
            ISO dates; datasets whose time range overlaps ``[start, end]``.
        operator : str, optional
            Producing operator or reader name.
        producer : str, optional
            The plugin that produced it: its registered name, module or package.
        ancestor_of, descendant_of : str, optional
            A dataset (id or name): only its ancestors (what it was computed from,
            transitively) or its descendants.
        include_hidden : bool, optional
            Include hidden intermediates.

        Raises
        ------
        ValueError
            If ``bbox``, ``start`` or ``end`` is malformed.
        DatasetNotFoundError
            If ``ancestor_of``/``descendant_of`` names no dataset.
        """
        query = CatalogQuery(
            text=text,
            domain=domain,
            variable=variable,
            bbox=tuple(bbox) if bbox is not None else None,  # type: ignore[arg-type]
            start=start,
            end=end,
            operator=operator,
            producer=producer,
            include_hidden=include_hidden,
        )
        pointed: dict[str, builtins.list[str]] = {}
        for n, i in self.names().items():
            pointed.setdefault(i, []).append(n)
        found = entries(self.store, self._ids(), self._load)
        keep: set[str] | None = None
        if ancestor_of is not None or descendant_of is not None:
            parents = {e["id"]: builtins.list(e.get("inputs", [])) for e in found}
            children: dict[str, builtins.list[str]] = {}
            for cid, ps in parents.items():
                for pid in ps:
                    children.setdefault(pid, []).append(cid)
            for ref, graph in ((ancestor_of, parents), (descendant_of, children)):
                if ref is not None:
                    reach = _reachable(self.get(ref).id, graph)
                    keep = reach if keep is None else keep & reach
        ids = [
            e["id"]
            for e in found
            if (keep is None or e["id"] in keep) and query.matches(e, pointed.get(e["id"], []))
        ]
        return _newest_first(r for r in (self._load(i) for i in ids) if r is not None)

    def parents(self, dataset_id: str) -> builtins.list[Record]:
        """Records of the inputs of a dataset, in input-name order (unpublished ones left out)."""
        record = self.get(dataset_id)
        out: builtins.list[Record] = []
        for _, pid in sorted(record.inputs.items()):
            parent = self._load(pid)
            if parent is not None and parent not in out:
                out.append(parent)
        return out

    def children(self, dataset_id: str) -> builtins.list[Record]:
        """Records that used a dataset as an input, newest first."""
        rid = self.get(dataset_id).id
        return _newest_first(r for r in self._all() if rid in r.inputs.values())

    def lineage(
        self,
        dataset_id: str,
        *,
        direction: Literal["up", "down", "both"] = "up",
        depth: int | None = None,
    ) -> LineageGraph:
        """Walk the lineage graph from one dataset.

        Parameters
        ----------
        dataset_id : str
            Id or name of the starting dataset.
        direction : {"up", "down", "both"}, optional
            ``up`` follows inputs (ancestors), ``down`` follows users (descendants),
            ``both`` does both from the root.
        depth : int, optional
            Maximum number of hops (None: no limit; 0: the root alone).

        Returns
        -------
        LineageGraph
        """
        if direction not in ("up", "down", "both"):
            raise ValueError(f"direction {direction!r} must be 'up', 'down' or 'both'")
        if depth is not None and depth < 0:
            raise ValueError(f"depth {depth!r} must be None or >= 0")
        root = self.get(dataset_id)
        nodes: dict[str, Record] = {root.id: root}
        edges: set[tuple[str, str, str]] = set()
        missing: set[str] = set()

        if direction in ("up", "both"):
            queue: deque[tuple[str, int]] = deque([(root.id, 0)])
            seen = {root.id}
            while queue:
                rid, d = queue.popleft()
                rec = nodes.get(rid)
                if rec is None or (depth is not None and d >= depth):
                    continue
                for input_name, pid in rec.inputs.items():
                    edges.add((pid, rid, input_name))
                    if pid in seen:
                        continue
                    seen.add(pid)
                    parent = self._load(pid)
                    if parent is None:
                        missing.add(pid)
                        continue
                    nodes[pid] = parent
                    queue.append((pid, d + 1))

        if direction in ("down", "both"):
            users: dict[str, builtins.list[tuple[str, str]]] = {}
            for r in self._all():
                for input_name, pid in r.inputs.items():
                    users.setdefault(pid, []).append((r.id, input_name))
            queue = deque([(root.id, 0)])
            seen = {root.id}
            while queue:
                rid, d = queue.popleft()
                if depth is not None and d >= depth:
                    continue
                for cid, input_name in users.get(rid, []):
                    edges.add((rid, cid, input_name))
                    if cid in seen:
                        continue
                    seen.add(cid)
                    child = self._load(cid)
                    if child is not None:
                        nodes[cid] = child
                        queue.append((cid, d + 1))

        return LineageGraph(
            root=root.id, nodes=nodes, edges=sorted(edges), missing=tuple(sorted(missing))
        )

    # -------------------------------------------------------------- exports
    def to_prov(self, dataset_id: str) -> dict[str, Any]:
        """The upstream lineage of a dataset as a W3C PROV-JSON document.

        Datasets are ``prov:Entity``s, each production (compute or ingest) a
        ``prov:Activity`` that ``used`` its inputs (with the input name as
        ``prov:role``), and each software package a ``prov:SoftwareAgent`` associated
        with the activities that ran it.

        Returns
        -------
        dict
            With ``prefix``, ``entity``, ``activity``, ``agent``, ``used``,
            ``wasGeneratedBy``, ``wasDerivedFrom`` and ``wasAssociatedWith``.
        """
        graph = self.lineage(dataset_id, direction="up")
        doc: dict[str, Any] = {
            "prefix": {
                "minjiang": PROV_NAMESPACE + "ns#",
                "mjdata": PROV_NAMESPACE + "dataset:",
                "mjrun": PROV_NAMESPACE + "activity:",
                "mjsw": PROV_NAMESPACE + "software:",
            },
            "entity": {},
            "activity": {},
            "agent": {},
            "used": {},
            "wasGeneratedBy": {},
            "wasDerivedFrom": {},
            "wasAssociatedWith": {},
        }
        counters = {"u": 0, "g": 0, "d": 0, "a": 0}

        def blank(kind: str) -> str:
            counters[kind] += 1
            return f"_:{kind}{counters[kind]}"

        for rid in graph.missing:
            doc["entity"][f"mjdata:{rid}"] = {"prov:type": "minjiang:Dataset", "prov:label": rid}
        pointers = self.names_by_dataset()
        for rid, rec in sorted(graph.nodes.items()):
            entity = f"mjdata:{rid}"
            activity = f"mjrun:{rid}"
            names = self.names_of(rec, pointers=pointers)
            doc["entity"][entity] = {
                "prov:type": "minjiang:Dataset",
                "prov:label": names[0] if names else rid,
                "minjiang:kind": rec.kind,
                "minjiang:domain": rec.domain,
                "minjiang:names": " ".join(names),
                "minjiang:created": rec.created,
            }
            act: dict[str, Any] = {
                "prov:type": "minjiang:Ingest" if rec.kind == "ingested" else "minjiang:Compute",
                "prov:label": rec.operator or rec.kind,
                "minjiang:version": str(rec.producer.get("version", "")),
                "minjiang:params": canonical_json(rec.producer.get("params", {})).decode(),
                "prov:endTime": str(rec.timings.get("finished", rec.created)),
            }
            if "started" in rec.timings:
                act["prov:startTime"] = str(rec.timings["started"])
            if "backend" in rec.producer:
                act["minjiang:backend"] = str(rec.producer["backend"])
            steps = _substeps(rec.producer)
            if steps:
                act["minjiang:steps"] = " ".join(f"{activity}.{s['id']}" for s in steps)
            doc["activity"][activity] = act
            # a composite's sub-steps: activities of their own, part of the composite's
            for sub in steps:
                sub_activity = f"{activity}.{sub['id']}"
                doc["activity"][sub_activity] = {
                    "prov:type": "minjiang:SubStep",
                    "prov:label": str(sub.get("operator", "")),
                    "minjiang:version": str(sub.get("version", "")),
                    "minjiang:params": canonical_json(sub.get("params", {})).decode(),
                    "minjiang:partOf": activity,
                    "minjiang:dataset": str(sub.get("dataset", "")),
                }
            doc["wasGeneratedBy"][blank("g")] = {
                "prov:entity": entity,
                "prov:activity": activity,
                "prov:time": rec.created,
            }
            for input_name, pid in sorted(rec.inputs.items()):
                doc["used"][blank("u")] = {
                    "prov:activity": activity,
                    "prov:entity": f"mjdata:{pid}",
                    "prov:role": input_name,
                }
                doc["wasDerivedFrom"][blank("d")] = {
                    "prov:generatedEntity": entity,
                    "prov:usedEntity": f"mjdata:{pid}",
                    "prov:activity": activity,
                }
            for package, version in sorted(rec.software.items()):
                agent = "mjsw:" + re.sub(r"[^A-Za-z0-9._-]", "-", f"{package}-{version}")
                doc["agent"].setdefault(
                    agent,
                    {
                        "prov:type": "prov:SoftwareAgent",
                        "prov:label": package,
                        "minjiang:version": str(version),
                    },
                )
                doc["wasAssociatedWith"][blank("a")] = {
                    "prov:activity": activity,
                    "prov:agent": agent,
                }
        return doc

    def to_stac(self, dataset_id: str) -> dict[str, Any]:
        """A dataset as a STAC Item with the processing extension.

        ``processing:software`` (package to version), ``processing:lineage`` (a
        sentence naming the producer and inputs), ``processing:facility`` (the host),
        ``processing:expression`` (operator, version and parameters),
        ``processing:version`` and ``processing:datetime``; ``derived_from`` links to
        the inputs' records and assets for the Zarr group and each table. Geometry is
        null unless the record's metadata carries a ``bbox``.

        Returns
        -------
        dict
            A STAC 1.0 Item.
        """
        rec = self.get(dataset_id)
        base = self.store.url.rstrip("/")
        producer = rec.operator or rec.kind
        steps = _substeps(rec.producer)
        called = rec.producer.get("inputs") if steps else None  # a composite's own inputs
        given = called if isinstance(called, dict) else rec.inputs
        inputs = ", ".join(f"{k}={v}" for k, v in sorted(given.items()))
        shown = "; ".join(
            f"{s.get('id')}: {s.get('operator')} {s.get('version', '')}".rstrip() for s in steps
        )
        lineage = (
            f"{'Ingested' if rec.kind == 'ingested' else 'Computed'} by {producer} "
            f"{rec.producer.get('version', '')}".rstrip()
            + (f" (sub-steps {shown})" if shown else "")
            + (f" from {inputs}" if inputs else "")
            + "."
        )
        host = rec.host.get("hostname") or rec.host.get("node") or rec.host.get("name") or "unknown"
        props: dict[str, Any] = {
            "datetime": rec.metadata.get("datetime", rec.created),
            "created": rec.created,
            "processing:lineage": lineage,
            "processing:facility": str(host),
            "processing:software": dict(rec.software),
            "processing:expression": {
                "format": "minjiang",
                "expression": {
                    "operator": producer,
                    "version": rec.producer.get("version"),
                    "params": rec.producer.get("params", {}),
                    **({"steps": steps} if steps else {}),
                },
            },
            "processing:datetime": rec.created,
            "minjiang:kind": rec.kind,
            "minjiang:domain": rec.domain,
            "minjiang:names": self.names_of(rec),
            "minjiang:inputs": dict(rec.inputs),
        }
        if "version" in rec.producer:
            props["processing:version"] = str(rec.producer["version"])
        if "level" in rec.metadata:
            props["processing:level"] = str(rec.metadata["level"])
        item: dict[str, Any] = {
            "type": "Feature",
            "stac_version": "1.0.0",
            "stac_extensions": [PROCESSING_EXTENSION],
            "id": rec.id,
            "geometry": None,
            "properties": props,
            "links": [
                {
                    "rel": "self",
                    "href": f"{base}/{RECORDS}/{rec.id}.json",
                    "type": "application/json",
                }
            ]
            + [
                {
                    "rel": "derived_from",
                    "href": f"{base}/{RECORDS}/{pid}.json",
                    "type": "application/json",
                    "title": input_name,
                }
                for input_name, pid in sorted(rec.inputs.items())
            ],
            "assets": {},
        }
        bbox = rec.metadata.get("bbox")
        if isinstance(bbox, list | tuple) and len(bbox) == 4:
            w, s, e, n = (float(v) for v in bbox)
            item["bbox"] = [w, s, e, n]
            item["geometry"] = {
                "type": "Polygon",
                "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]],
            }
        if rec.schema_.get("arrays") or rec.schema_.get("coords"):
            item["assets"]["arrays"] = {
                "href": f"{base}/{rec.prefix}/{ARRAYS}",
                "type": "application/vnd+zarr",
                "title": "Zarr v3 group",
                "roles": ["data"],
            }
        for table in sorted(rec.tables or rec.schema_.get("tables", {})):
            item["assets"][f"table-{table}"] = {
                "href": f"{base}/{rec.prefix}/tables/{table}/",
                "type": "application/vnd.apache.parquet",
                "title": f"Parquet table {table}",
                "roles": ["data"],
            }
        return item


def _substeps(producer: Mapping[str, Any]) -> builtins.list[dict[str, Any]]:
    """A composite's sub-steps as its record lists them (none for other records)."""
    steps = producer.get("steps")
    if not isinstance(steps, builtins.list):
        return []
    return [s for s in steps if isinstance(s, dict) and "id" in s]
