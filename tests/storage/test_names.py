"""Names, keys and content ids: hostile inputs are rejected with a useful message."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from minjiang.core.errors import InvalidNameError
from minjiang.storage import (
    canonical_json,
    content_id,
    hash_files,
    validate_key,
    validate_name,
    validate_segment,
)


@pytest.mark.parametrize(
    "name",
    ["ocean/oisst-2020", "a", "A1/b_2/c.3", "x" * 64, "/".join(["s"] * 8), "med/ct-001.v2"],
)
def test_valid_names(name: str) -> None:
    assert validate_name(name) == name


def test_nfkc_normalisation() -> None:
    # full-width letters are the same name once normalised
    assert validate_name("ｏｃｅａｎ/ｓｓｔ") == "ocean/sst"
    assert validate_segment("ｓｓｔ") == "sst"


HOSTILE = [
    ("../x", "'..'"),
    ("a/../../etc", "'..'"),
    ("/abs", "empty segment"),
    ("a/", "empty segment"),
    ("a//b", "empty segment"),
    ("./a", "'.'"),
    ("a\\b", "backslash"),
    ("..\\..\\x", "backslash"),
    ("a\x00b", "NUL"),
    ("\u2025/x", "'..'"),  # TWO DOT LEADER normalises to '..'
    ("\uff0e\uff0e/x", "'..'"),  # FULLWIDTH FULL STOPs normalise to '..'
    ("caf\u00e9", "outside"),
    ("a b", "outside"),
    ("-lead", "outside"),
    (".hidden", "outside"),
    ("x" * 65, "longer than 64"),
    ("/".join(["s"] * 9), "9 segments"),
    ("/".join(["a" * 30] * 7), "more than 200"),
    ("", "empty"),
    ("a/\u202eexe", "outside"),  # right-to-left override
    ("ok-\n", "outside"),  # a regex '$' would let a trailing newline through
    ("ok/b\n", "outside"),
]


@pytest.mark.parametrize(("name", "why"), HOSTILE)
def test_hostile_names_rejected(name: str, why: str) -> None:
    with pytest.raises(InvalidNameError) as info:
        validate_name(name)
    msg = str(info.value)
    assert why in msg
    assert "segments" in msg  # the rule
    assert "try " in msg or "use ASCII" in msg  # a fix


def test_message_shows_value_and_suggestion() -> None:
    with pytest.raises(InvalidNameError) as info:
        validate_name("ocean/../OISST 2020")
    msg = str(info.value)
    assert repr("ocean/../OISST 2020") in msg
    assert "try 'ocean/OISST-2020'" in msg
    assert isinstance(info.value, ValueError)


def test_very_long_name_message_is_bounded() -> None:
    with pytest.raises(InvalidNameError) as info:
        validate_name("a" * 100_000)
    assert len(str(info.value)) < 1000


def test_non_string_rejected() -> None:
    with pytest.raises(InvalidNameError, match="expected a str"):
        validate_name(3)  # type: ignore[arg-type]


@pytest.mark.parametrize("seg", ["a/b", "..", ".", "", "x" * 65, "a\x00", "é"])
def test_segments(seg: str) -> None:
    with pytest.raises(InvalidNameError, match="array name"):
        validate_segment(seg, kind="array name")


def test_keys() -> None:
    assert validate_key("datasets/ab/arrays.zarr/c/0/1") == "datasets/ab/arrays.zarr/c/0/1"
    assert validate_key(".tmp-x") == ".tmp-x"
    assert validate_key("", allow_empty=True) == ""
    for bad in ["", "/a", "a/../b", "a//b", "a\\b", "a\x00", "a/./b", "x" * 1025, "é"]:
        with pytest.raises(InvalidNameError):
            validate_key(bad)


def test_canonical_json() -> None:
    payload = {
        "b": np.float32(1.5),
        "a": [np.int64(2), np.arange(3)],
        "c": {"z": float("inf")},
        "p": Path("x/y"),
        "n": None,
        "t": (1, 2),
    }
    assert canonical_json(payload) == (
        b'{"a":[2,[0,1,2]],"b":1.5,"c":{"z":"Infinity"},"n":null,"p":"x/y","t":[1,2]}'
    )
    with pytest.raises(TypeError, match="cannot convert"):
        canonical_json({"x": object()})


def test_content_id_is_stable_and_order_free() -> None:
    a = content_id(
        {"operator": "ocean.x", "params": {"a": 1, "b": np.float64(0.5)}, "inputs": ["i"]}
    )
    b = content_id({"inputs": ["i"], "params": {"b": 0.5, "a": np.int32(1)}, "operator": "ocean.x"})
    assert a == b
    assert len(a) == 32 and int(a, 16) >= 0
    assert content_id({"operator": "ocean.x", "params": {"a": 2}, "inputs": ["i"]}) != a
    # the definition itself: ids name stored data, so it must never drift
    assert content_id({"k": 1}) == hashlib.sha256(b'{"k":1}').hexdigest()[:32]


def test_hash_files(tmp_path: Path) -> None:
    (tmp_path / "d1").mkdir()
    (tmp_path / "d2").mkdir()
    a = tmp_path / "d1" / "a.nc"
    b = tmp_path / "d2" / "b.nc"
    a.write_bytes(b"alpha" * 1000)
    b.write_bytes(b"beta")
    h = hash_files([a, b], extra={"reader": "ocean.netcdf", "version": "1"})
    assert len(h) == 32
    assert hash_files([b, a], extra={"version": "1", "reader": "ocean.netcdf"}) == h  # order-free
    moved = tmp_path / "a.nc"
    moved.write_bytes(a.read_bytes())
    assert (
        hash_files([moved, b], extra={"reader": "ocean.netcdf", "version": "1"}) == h
    )  # folder-free
    assert hash_files([a, b], extra={"reader": "ocean.netcdf", "version": "2"}) != h
    renamed = tmp_path / "c.nc"
    renamed.write_bytes(b"beta")
    assert hash_files([a, renamed]) != hash_files([a, b])  # names count
    b.write_bytes(b"betA")
    assert hash_files([a, b], extra={"reader": "ocean.netcdf", "version": "1"}) != h
