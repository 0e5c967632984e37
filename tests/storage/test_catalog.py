"""The catalog: exclusive publication, names, queries, lineage and its exports."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from minjiang.core.errors import (
    DatasetNotFoundError,
    InvalidNameError,
    RecordIntegrityError,
    StoreError,
)
from minjiang.storage import (
    Catalog,
    DatasetWriter,
    Record,
    Store,
    dataset_schema,
    open_dataset_info,
)


def _dataset(store: Store, did: str) -> dict:
    w = DatasetWriter(store, did)
    w.create({})
    w.create_array("v", shape=(2,), dtype="f4", chunks=(2,), dims=("x",))
    sums = w.write_region("v", (slice(0, 2),), np.zeros(2, "f4"))
    w.consolidate()
    return {"schema": dataset_schema(open_dataset_info(store, did)), "checksums": {"v": sums}}


def _record(
    store: Store,
    did: str,
    *,
    inputs: dict[str, str] | None = None,
    created: str,
    operator: str = "ocean.op",
    domain: str = "ocean",
    names: list[str] | None = None,
    hidden: bool = False,
) -> Record:
    extra = _dataset(store, did)
    kind = "computed" if inputs else "ingested"
    producer = (
        {"operator": operator, "version": "1.0", "params": {"k": 1}}
        if inputs
        else {"reader": "ocean.netcdf", "version": "0.3", "params": {}}
    )
    return Record(
        id=did,
        kind=kind,
        names=names or [],
        domain=domain,
        hidden=hidden,
        producer=producer,
        inputs=inputs or {},
        software={"minjiang": "0.1.0", "numpy": "2.4"},
        host={"hostname": "node-1"},
        timings={"started": created, "seconds": 1.0},
        created=created,
        **extra,
    )


#     a ──sst──▶ c ──x──▶ e
#     b ──clim─▶ c        ▲
#     d ─────────y────────┘     (d is hidden)
@pytest.fixture
def dag(store: Store) -> Catalog:
    cat = Catalog(store)
    recs = [
        _record(store, "aaaa0001", created="2026-01-01T00:00:00.000000Z", names=["ocean/sst"]),
        _record(store, "bbbb0002", created="2026-01-02T00:00:00.000000Z", names=["ocean/clim"]),
        _record(
            store,
            "cccc0003",
            inputs={"sst": "aaaa0001", "clim": "bbbb0002"},
            created="2026-01-03T00:00:00.000000Z",
            operator="ocean.anomaly",
            names=["ocean/anom"],
        ),
        _record(
            store, "dddd0004", created="2026-01-04T00:00:00.000000Z", domain="medicine", hidden=True
        ),
        _record(
            store,
            "eeee0005",
            inputs={"x": "cccc0003", "y": "dddd0004"},
            created="2026-01-05T00:00:00.000000Z",
            operator="ocean.heatwaves",
            names=["ocean/mhw"],
        ),
    ]
    for r in recs:
        assert cat.publish(r) is True
    return cat


def test_record_model() -> None:
    r = Record(id="ab12", kind="ingested", domain="ocean", schema={"arrays": {}})
    assert r.prefix == "datasets/ab12"
    assert r.schema_ == {"arrays": {}}
    assert r.status == "committed" and r.hidden is False
    assert r.created.endswith("Z")
    dumped = r.model_dump(mode="json", by_alias=True)
    assert "schema" in dumped and "schema_" not in dumped
    assert Record.model_validate(dumped) == r
    assert Record.model_validate_json(r.to_json()) == r
    with pytest.raises(ValueError, match="extra"):
        Record(id="ab12", kind="ingested", domain="ocean", bogus=1)  # type: ignore[call-arg]
    with pytest.raises(ValueError):
        Record(id="../x", kind="ingested", domain="ocean")
    with pytest.raises(ValueError):
        Record(id="ab12", kind="ingested", domain="ocean", names=["../x"])
    with pytest.raises(ValueError, match="prefix"):
        Record(id="ab12", kind="ingested", domain="ocean", prefix="datasets/other")
    with pytest.raises(ValueError, match="time zone"):
        Record(id="ab12", kind="ingested", domain="ocean", created="2026-01-01T00:00:00")
    with pytest.raises(ValueError):
        r.hidden = True  # type: ignore[misc]  # frozen


def test_publish_is_exclusive_and_atomic(store: Store) -> None:
    cat = Catalog(store)
    rec = _record(store, "feed0001", created="2026-01-01T00:00:00.000000Z", names=["x/one"])
    assert not cat.exists("feed0001")
    assert cat.publish(rec) is True
    assert cat.exists("feed0001")
    other = rec.model_copy(update={"timings": {"seconds": 9.0}})
    assert cat.publish(other) is False
    assert Catalog(store).get("feed0001").timings == rec.timings  # the first one stays
    stored = Catalog(store).get("feed0001")
    assert store.read_bytes("catalog/records/feed0001.json") == stored.to_json()
    # what is stored is the record sealed: metadata digests and its own digest added
    assert stored.model_copy(update={"metadata_digests": {}, "digest": ""}) == rec
    assert stored.digest == stored.content_digest() and stored.digest.startswith("sha256:")
    assert set(stored.metadata_digests) == {"zarr.json", "v/zarr.json"}


def _publish_race(store: Store, did: str, written: dict) -> dict[str, bool]:
    """Two catalogs (two jobs) publish the same id at the same moment."""
    barrier = threading.Barrier(2)
    results: dict[str, bool] = {}

    def publish(who: str) -> None:
        rec = Record(id=did, kind="ingested", domain="ocean", producer={"reader": who}, **written)
        cat = Catalog(store)
        barrier.wait()
        results[who] = cat.publish(rec)

    threads = [threading.Thread(target=publish, args=(who,)) for who in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_publish_race_two_threads(any_store: Store) -> None:
    for trial in range(3):
        did = f"race000{trial}"
        results = _publish_race(any_store, did, _dataset(any_store, did))
        assert sorted(results.values()) == [False, True]
        winner = next(w for w, won in results.items() if won)
        assert Catalog(any_store).get(did).producer == {"reader": winner}


def test_publish_refuses_missing_dataset(store: Store) -> None:
    rec = Record(id="ghost01", kind="ingested", domain="ocean", schema={"arrays": {"v": {}}})
    with pytest.raises(StoreError, match="write and commit the dataset"):
        Catalog(store).publish(rec)
    assert not Catalog(store).exists("ghost01")


def test_get_resolve_and_suggestions(dag: Catalog) -> None:
    assert dag.get("cccc0003").id == "cccc0003"
    assert dag.get("ocean/anom").id == "cccc0003"
    assert dag.get("cccc00").id == "cccc0003"  # unique id prefix (6+ hex digits)
    assert dag.resolve("cccc") is None  # too short to be a prefix
    assert dag.resolve("ocean/nothing") is None
    with pytest.raises(
        DatasetNotFoundError, match=r"'ocean/anon'.*did you mean 'ocean/anom'"
    ) as info:
        dag.get("ocean/anon")
    assert isinstance(info.value, FileNotFoundError)
    with pytest.raises(InvalidNameError):
        dag.get("../etc/passwd")


def test_names_and_history(dag: Catalog) -> None:
    assert dag.names() == {
        "ocean/anom": "cccc0003",
        "ocean/clim": "bbbb0002",
        "ocean/mhw": "eeee0005",
        "ocean/sst": "aaaa0001",
    }
    dag.set_name("ocean/sst", "aaaa0001")  # no change, no history entry
    dag.set_name("ocean/sst", "bbbb0002")
    assert dag.get("ocean/sst").id == "bbbb0002"
    assert [h["id"] for h in dag.name_history("ocean/sst")] == ["aaaa0001", "bbbb0002"]
    with pytest.raises(DatasetNotFoundError, match="publish it first"):
        dag.set_name("ocean/x", "ffff9999")
    with pytest.raises(InvalidNameError):
        dag.set_name("../../x", "aaaa0001")
    pointer = dag.store.read_json("catalog/names/ocean/sst.json")
    assert pointer["id"] == "bbbb0002" and len(pointer["history"]) == 2


def test_list_and_search(dag: Catalog) -> None:
    assert [r.id for r in dag.list()] == ["eeee0005", "cccc0003", "bbbb0002", "aaaa0001"]
    assert [r.id for r in dag.list(include_hidden=True)][:2] == ["eeee0005", "dddd0004"]
    assert [r.id for r in dag.list(domain="medicine", include_hidden=True)] == ["dddd0004"]
    assert [r.id for r in dag.list(operator="ocean.anomaly")] == ["cccc0003"]
    assert [r.id for r in dag.list(operator="ocean.netcdf")] == ["bbbb0002", "aaaa0001"]
    assert [r.id for r in dag.list(input="ocean/sst")] == ["cccc0003"]
    assert [r.id for r in dag.list(input="cccc0003")] == ["eeee0005"]
    assert [r.id for r in dag.list(name="ocean/mhw")] == ["eeee0005"]
    assert [r.id for r in dag.search("HEAT")] == ["eeee0005"]
    assert [r.id for r in dag.search("ocean/")] == ["eeee0005", "cccc0003", "bbbb0002", "aaaa0001"]
    assert [r.id for r in dag.search("medicine")] == []
    assert [r.id for r in dag.search("medicine", include_hidden=True)] == ["dddd0004"]


def test_parents_children(dag: Catalog) -> None:
    assert [r.id for r in dag.parents("cccc0003")] == ["bbbb0002", "aaaa0001"]  # by input name
    assert [r.id for r in dag.children("cccc0003")] == ["eeee0005"]
    assert [r.id for r in dag.children("ocean/mhw")] == []
    assert dag.parents("aaaa0001") == []


def test_lineage(dag: Catalog) -> None:
    up = dag.lineage("eeee0005")
    assert up.root == "eeee0005"
    assert set(up.nodes) == {"aaaa0001", "bbbb0002", "cccc0003", "dddd0004", "eeee0005"}
    assert up.edges == [
        ("aaaa0001", "cccc0003", "sst"),
        ("bbbb0002", "cccc0003", "clim"),
        ("cccc0003", "eeee0005", "x"),
        ("dddd0004", "eeee0005", "y"),
    ]
    assert up.parents_of("eeee0005") == ["cccc0003", "dddd0004"]
    one = dag.lineage("eeee0005", depth=1)
    assert set(one.nodes) == {"cccc0003", "dddd0004", "eeee0005"}
    assert dag.lineage("eeee0005", depth=0).edges == []

    down = dag.lineage("aaaa0001", direction="down")
    assert set(down.nodes) == {"aaaa0001", "cccc0003", "eeee0005"}
    assert down.edges == [("aaaa0001", "cccc0003", "sst"), ("cccc0003", "eeee0005", "x")]
    assert down.children_of("aaaa0001") == ["cccc0003"]

    both = dag.lineage("cccc0003", direction="both")
    assert set(both.nodes) == {"aaaa0001", "bbbb0002", "cccc0003", "eeee0005"}
    assert ("dddd0004", "eeee0005", "y") not in both.edges  # a sibling input, not a relative
    assert dag.lineage("cccc0003", direction="both", depth=1).nodes.keys() == both.nodes.keys()
    with pytest.raises(ValueError, match="direction"):
        dag.lineage("cccc0003", direction="sideways")  # type: ignore[arg-type]


def test_lineage_reports_missing_inputs(store: Store) -> None:
    cat = Catalog(store)
    cat.publish(
        _record(store, "orph0001", inputs={"src": "gone0000"}, created="2026-01-01T00:00:00Z")
    )
    graph = cat.lineage("orph0001")
    assert graph.missing == ("gone0000",)
    assert graph.edges == [("gone0000", "orph0001", "src")]


def test_to_prov(dag: Catalog) -> None:
    doc = dag.to_prov("eeee0005")
    for section in (
        "prefix",
        "entity",
        "activity",
        "agent",
        "used",
        "wasGeneratedBy",
        "wasDerivedFrom",
        "wasAssociatedWith",
    ):
        assert section in doc
    assert set(doc["entity"]) == {
        f"mjdata:{i}" for i in ["aaaa0001", "bbbb0002", "cccc0003", "dddd0004", "eeee0005"]
    }
    assert doc["activity"]["mjrun:eeee0005"]["prov:label"] == "ocean.heatwaves"
    assert doc["activity"]["mjrun:aaaa0001"]["prov:type"] == "minjiang:Ingest"
    used = {(u["prov:activity"], u["prov:entity"], u["prov:role"]) for u in doc["used"].values()}
    assert ("mjrun:eeee0005", "mjdata:cccc0003", "x") in used
    assert ("mjrun:cccc0003", "mjdata:aaaa0001", "sst") in used
    derived = {
        (d["prov:generatedEntity"], d["prov:usedEntity"]) for d in doc["wasDerivedFrom"].values()
    }
    assert derived == {
        ("mjdata:cccc0003", "mjdata:aaaa0001"),
        ("mjdata:cccc0003", "mjdata:bbbb0002"),
        ("mjdata:eeee0005", "mjdata:cccc0003"),
        ("mjdata:eeee0005", "mjdata:dddd0004"),
    }
    assert len(doc["wasGeneratedBy"]) == 5
    agents = doc["agent"]
    assert agents["mjsw:numpy-2.4"] == {
        "prov:type": "prov:SoftwareAgent",
        "prov:label": "numpy",
        "minjiang:version": "2.4",
    }
    # every qualified name used is declared or a PROV/blank name
    import json

    text = json.dumps(doc)
    for prefix in ("mjdata", "mjrun", "mjsw", "minjiang"):
        assert prefix in doc["prefix"] and f'"{prefix}:' in text


def test_to_stac(dag: Catalog) -> None:
    item = dag.to_stac("ocean/anom")
    assert (
        item["type"] == "Feature" and item["stac_version"] == "1.0.0" and item["id"] == "cccc0003"
    )
    assert any("processing" in e for e in item["stac_extensions"])
    props = item["properties"]
    assert props["processing:software"] == {"minjiang": "0.1.0", "numpy": "2.4"}
    assert props["processing:facility"] == "node-1"
    assert (
        "ocean.anomaly" in props["processing:lineage"] and "aaaa0001" in props["processing:lineage"]
    )
    assert props["processing:expression"]["expression"]["params"] == {"k": 1}
    assert props["datetime"] == "2026-01-03T00:00:00.000000Z"
    assert item["geometry"] is None and "bbox" not in item
    rels = [(link["rel"], link.get("title")) for link in item["links"]]
    assert rels == [("self", None), ("derived_from", "clim"), ("derived_from", "sst")]
    assert item["assets"]["arrays"]["href"].endswith("datasets/cccc0003/arrays.zarr")
    assert item["assets"]["arrays"]["roles"] == ["data"]


def test_stac_bbox_from_metadata(store: Store) -> None:
    cat = Catalog(store)
    rec = _record(store, "geo00001", created="2026-01-01T00:00:00Z")
    cat.publish(rec.model_copy(update={"metadata": {"bbox": [100, -10, 130, 10]}}))
    item = cat.to_stac("geo00001")
    assert item["bbox"] == [100.0, -10.0, 130.0, 10.0]
    assert item["geometry"]["type"] == "Polygon"


def test_corrupt_record_is_reported(store: Store) -> None:
    store.write_bytes("catalog/records/bad00001.json", b'{"id": "bad00001"}')
    with pytest.raises(RecordIntegrityError, match="not a valid record"):
        Catalog(store).get("bad00001")
