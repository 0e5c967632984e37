"""Names, keys and content ids.

Every name that becomes part of a store key passes through here, so nothing a user
types can reach outside the store root: dataset names (``ocean/oisst-2020``), array,
table and part names (one segment), and the raw keys the stores accept.

Content ids are sha256 over *canonical JSON* (sorted keys, no whitespace, UTF-8,
numpy values converted, non-finite floats spelt ``"NaN"``/``"Infinity"``/``"-Infinity"``
as Zarr v3 spells fill values), so the same payload gives the same id on every machine.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import hashlib
import json
import math
import os
import re
import sys
import unicodedata
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePath
from typing import Any

from minjiang.errors import InvalidNameError

__all__ = [
    "canonical_json",
    "content_id",
    "hash_files",
    "jsonable",
    "validate_key",
    "validate_name",
    "validate_segment",
]

SEGMENT_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
MAX_SEGMENTS = 8
MAX_NAME_CHARS = 200

_SEGMENT_RE = re.compile(rf"^{SEGMENT_PATTERN}$")
_NAME_RULE = (
    f"a name is 1-{MAX_SEGMENTS} '/'-separated segments, each matching "
    f"{SEGMENT_PATTERN} (ASCII letters and digits first, then letters, digits, '.', '_' "
    f"or '-', at most 64 characters), not '.' or '..', at most {MAX_NAME_CHARS} "
    "characters in all"
)
_SEGMENT_RULE = (
    f"a single segment matching {SEGMENT_PATTERN} (ASCII letters and digits first, "
    "then letters, digits, '.', '_' or '-', at most 64 characters), not '.' or '..'"
)

# Store keys are broader than names (``zarr.json``, ``c/0/3/1``, ``.part-0.tmp``) but
# still plain: no absolute paths, no backslashes, no '.'/'..', no empty segments.
_KEY_SEGMENT_RE = re.compile(r"^[A-Za-z0-9._@=+-]{1,255}$")
MAX_KEY_CHARS = 1024


def _suggest(value: str, *, single: bool) -> str | None:
    parts = re.split(r"[/\\]+", value)
    fixed: list[str] = []
    for part in parts:
        part = re.sub(r"[^A-Za-z0-9._-]+", "-", part)
        part = re.sub(r"^[^A-Za-z0-9]+", "", part)[:64].rstrip("-")
        if part and part not in {".", ".."}:
            fixed.append(part)
    if single:
        suggestion = "-".join(fixed)[:64].rstrip("-._")
    else:
        suggestion = "/".join(fixed[:MAX_SEGMENTS])[:MAX_NAME_CHARS].rstrip("/-._")
    if not suggestion or suggestion == value:
        return None
    if single and not _SEGMENT_RE.fullmatch(suggestion):
        return None
    return suggestion


def _fail(
    kind: str, value: object, why: str, rule: str, suggestion: str | None
) -> InvalidNameError:
    fix = (
        f"try {suggestion!r}"
        if suggestion
        else "use ASCII letters, digits, '.', '_' or '-' (starting with a letter or digit)"
    )
    return InvalidNameError(f"invalid {kind} {value!r}: {why}; {rule}; {fix}")


def validate_name(name: str) -> str:
    """Check a dataset name and return its normal form.

    Parameters
    ----------
    name : str
        A human name such as ``"ocean/oisst-2020"``. It is NFKC-normalised first, so
        look-alike characters (full-width letters, the two-dot leader) are judged by
        what they normalise to.

    Returns
    -------
    str
        The NFKC-normalised name.

    Raises
    ------
    InvalidNameError
        If the name is not 1-8 ``/``-separated segments matching
        ``[A-Za-z0-9][A-Za-z0-9._-]{0,63}``, contains ``.`` or ``..``, or is longer than
        200 characters. The message names the value, the rule and a suggested fix.
    """
    if not isinstance(name, str):
        raise InvalidNameError(
            f"invalid dataset name {name!r}: expected a str, got {type(name).__name__}; "
            f"{_NAME_RULE}"
        )
    norm = unicodedata.normalize("NFKC", name)
    if not norm:
        raise _fail("dataset name", name, "it is empty", _NAME_RULE, None)
    if len(norm) > MAX_NAME_CHARS:
        raise _fail(
            "dataset name",
            name if len(name) <= 80 else name[:80] + "...",
            f"it is {len(norm)} characters long, more than {MAX_NAME_CHARS}",
            _NAME_RULE,
            _suggest(norm, single=False),
        )
    segments = norm.split("/")
    if len(segments) > MAX_SEGMENTS:
        raise _fail(
            "dataset name",
            name,
            f"it has {len(segments)} segments, more than {MAX_SEGMENTS}",
            _NAME_RULE,
            _suggest(norm, single=False),
        )
    for seg in segments:
        why = _segment_problem(seg)
        if why is not None:
            raise _fail("dataset name", name, why, _NAME_RULE, _suggest(norm, single=False))
    return norm


def validate_segment(name: str, *, kind: str = "name") -> str:
    """Check an array, table or part name (a single path segment).

    Parameters
    ----------
    name : str
        The name, for example ``"sst"`` or ``"events"``.
    kind : str, optional
        What the name is for, used in the error message (``"array name"``...).

    Returns
    -------
    str
        The NFKC-normalised name.

    Raises
    ------
    InvalidNameError
        If the name is not one segment matching ``[A-Za-z0-9][A-Za-z0-9._-]{0,63}``.
    """
    if not isinstance(name, str):
        raise InvalidNameError(
            f"invalid {kind} {name!r}: expected a str, got {type(name).__name__}; {_SEGMENT_RULE}"
        )
    norm = unicodedata.normalize("NFKC", name)
    why = _segment_problem(norm) if "/" not in norm else "it contains '/'"
    if why is not None:
        shown = name if len(name) <= 80 else name[:80] + "..."
        raise _fail(kind, shown, why, _SEGMENT_RULE, _suggest(norm, single=True))
    return norm


def _segment_problem(seg: str) -> str | None:
    if seg == "":
        return "it has an empty segment (a leading, trailing or doubled '/')"
    if seg in {".", ".."}:
        return f"segment {seg!r} is not allowed"
    if "\x00" in seg:
        return "it contains a NUL character"
    if "\\" in seg:
        return "it contains a backslash"
    if len(seg) > 64:
        return f"segment of {len(seg)} characters is longer than 64"
    if not _SEGMENT_RE.fullmatch(seg):
        return f"segment {seg!r} has characters outside [A-Za-z0-9._-] or does not start with a letter or digit"
    return None


def validate_key(key: str, *, allow_empty: bool = False) -> str:
    """Check a store key (a ``/``-separated relative path) and return it.

    Parameters
    ----------
    key : str
        For example ``"catalog/records/<id>.json"`` or ``"datasets/<id>/arrays.zarr"``.
    allow_empty : bool, optional
        Accept ``""`` (the store root), for listing.

    Raises
    ------
    InvalidNameError
        If the key is absolute, contains ``.``/``..``/empty segments, backslashes, NUL
        or characters outside ``[A-Za-z0-9._@=+-]``, or is longer than 1024 characters.
    """
    if not isinstance(key, str):
        raise InvalidNameError(
            f"invalid store key {key!r}: expected a str, got {type(key).__name__}"
        )
    if key == "":
        if allow_empty:
            return key
        raise InvalidNameError("invalid store key '': a key names a file below the store root")
    if len(key) > MAX_KEY_CHARS:
        raise InvalidNameError(
            f"invalid store key {key[:80] + '...'!r}: {len(key)} characters, more than {MAX_KEY_CHARS}"
        )
    if key.startswith("/"):
        raise InvalidNameError(
            f"invalid store key {key!r}: keys are relative to the store root; drop the leading '/'"
        )
    for seg in key.split("/"):
        if seg in {"", ".", ".."} or not _KEY_SEGMENT_RE.fullmatch(seg):
            raise InvalidNameError(
                f"invalid store key {key!r}: segment {seg!r} is not allowed; key segments are "
                "1-255 characters of [A-Za-z0-9._@=+-], not '.' or '..', separated by single '/'"
            )
    return key


# --------------------------------------------------------------------------- JSON


def jsonable(obj: Any, *, nonfinite: str = "string") -> Any:
    """Convert ``obj`` to plain JSON types (dict with str keys, list, str, int, float, bool, None).

    Parameters
    ----------
    obj : Any
        Mappings, sequences, numpy scalars and arrays, paths, dates, enums, dataclasses
        and pydantic models are converted; anything else raises ``TypeError``.
    nonfinite : {"string", "keep"}, optional
        ``"string"`` spells NaN and infinities as ``"NaN"``, ``"Infinity"``,
        ``"-Infinity"`` (strict JSON, as Zarr v3 spells fill values); ``"keep"`` leaves
        them as floats (for Zarr attributes, which zarr serialises itself).
    """
    if obj is None or isinstance(obj, bool | str):
        return obj
    if isinstance(obj, int) and not isinstance(obj, bool):
        return int(obj)
    if isinstance(obj, float):
        if nonfinite == "string" and not math.isfinite(obj):
            return "NaN" if math.isnan(obj) else ("Infinity" if obj > 0 else "-Infinity")
        return float(obj)
    np = sys.modules.get("numpy")
    if np is not None:
        if isinstance(obj, np.ndarray):
            return jsonable(obj.tolist(), nonfinite=nonfinite)
        if isinstance(obj, np.datetime64 | np.timedelta64):
            return str(obj)
        if isinstance(obj, np.generic):
            return jsonable(obj.item(), nonfinite=nonfinite)
        if isinstance(obj, np.dtype):
            return str(obj)
    if isinstance(obj, Mapping):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            key = jsonable(k, nonfinite="string")
            if not isinstance(key, str):
                key = json.dumps(key, sort_keys=True, separators=(",", ":"))
            out[key] = jsonable(v, nonfinite=nonfinite)
        return out
    if isinstance(obj, list | tuple):
        return [jsonable(v, nonfinite=nonfinite) for v in obj]
    if isinstance(obj, set | frozenset):
        items = [jsonable(v, nonfinite=nonfinite) for v in obj]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(obj, PurePath):
        return obj.as_posix()
    if isinstance(obj, _dt.datetime | _dt.date | _dt.time):
        return obj.isoformat()
    if isinstance(obj, enum.Enum):
        return jsonable(obj.value, nonfinite=nonfinite)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return jsonable(dataclasses.asdict(obj), nonfinite=nonfinite)
    dump = getattr(obj, "model_dump", None)
    if callable(dump):  # a pydantic model
        return jsonable(dump(mode="json", by_alias=True), nonfinite=nonfinite)
    raise TypeError(
        f"cannot convert a {type(obj).__module__}.{type(obj).__qualname__} to JSON; "
        "use str, numbers, bools, None, lists, dicts, numpy values, paths or dates"
    )


def canonical_json(obj: Any) -> bytes:
    """Serialise ``obj`` as canonical UTF-8 JSON (sorted keys, no whitespace, strict JSON).

    Parameters
    ----------
    obj : Any
        Anything :func:`jsonable` accepts.

    Returns
    -------
    bytes
        The same bytes for equal payloads on every machine.
    """
    return json.dumps(
        jsonable(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def content_id(payload: Mapping[str, Any]) -> str:
    """Content hash of a payload: sha256 over its canonical JSON, first 32 hex characters.

    Parameters
    ----------
    payload : Mapping
        For computed data: operator name and version, parameters, input ids, code
        version. numpy scalars and arrays are converted to plain JSON first.

    Returns
    -------
    str
        32 lowercase hex characters (128 bits).
    """
    if not isinstance(payload, Mapping):
        raise TypeError(f"content_id expects a mapping, got {type(payload).__name__}")
    return hashlib.sha256(canonical_json(payload)).hexdigest()[:32]


def hash_files(
    paths: Sequence[str | os.PathLike[str]], extra: Mapping[str, Any] | None = None
) -> str:
    """Content hash of a set of files, streamed (files are never read whole).

    The hash covers each file's base name, size and bytes, in order of base name (and
    then of content, so two files with one base name in different folders still hash
    the same whatever order they come in), then ``extra`` as canonical JSON. Folders
    and the order of ``paths`` do not matter.

    Parameters
    ----------
    paths : sequence of path-like
        The source files (for example the NetCDF files an ingest reads).
    extra : Mapping, optional
        Anything else the id must depend on (reader name and version, options).

    Returns
    -------
    str
        32 lowercase hex characters.
    """
    entries: list[tuple[str, int, str]] = []
    for p in paths:
        path = Path(p)
        h = hashlib.sha256()
        size = 0
        with path.open("rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
                size += len(block)
        entries.append((path.name, size, h.hexdigest()))
    entries.sort()
    total = hashlib.sha256()
    for name, size, digest in entries:
        total.update(
            name.encode("utf-8") + b"\x00" + str(size).encode() + b"\x00" + digest.encode() + b"\n"
        )
    total.update(b"\x00extra\x00" + canonical_json(dict(extra or {})))
    return total.hexdigest()[:32]
