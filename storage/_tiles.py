"""Table parts named by the grid tile they cover (tiled tables).

A reader that partitions a table by the cells of a grid (a point cloud by raster
tile) names each part :func:`tile_part_name` of its tile; a task that needs only the
rows near its block reads the parts whose tiles overlap it (:func:`tile_overlaps`),
never the whole table.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from minjiang.storage._names import validate_segment

__all__ = ["parse_tile_part", "tile_overlaps", "tile_part_name"]

_DIM_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RANGE_RE = re.compile(r"^(?P<dim>[A-Za-z_][A-Za-z0-9_]*?)(?P<lo>\d{9})-(?P<hi>\d{9})$")
_MAX = 10**9 - 1


def tile_part_name(tile: Mapping[str, tuple[int, int]], seq: int = 0) -> str:
    """The table part name of rows inside ``tile``.

    Parameters
    ----------
    tile : mapping of str to (int, int)
        Half-open cell ranges per grid dimension, in the grid's dim order, e.g.
        ``{"y": (0, 256), "x": (256, 512)}``.
    seq : int, optional
        Sequence number of this part among the parts of the same tile (a streaming
        reader writes a tile's rows in several parts).

    Returns
    -------
    str
        ``y000000000-000000256.x000000256-000000512.00000``: zero-padded, so parts sort
        in row-major tile order, then by ``seq``.

    Raises
    ------
    ValueError
        If a range is empty or negative, a dim is not an identifier, or the name would
        be longer than a part name may be.
    """
    fields = []
    for dim, rng in tile.items():
        lo, hi = (int(v) for v in rng)
        if not _DIM_RE.match(dim):
            raise ValueError(f"tile dim {dim!r} is not an identifier; name grid dims like 'y', 'x'")
        if not 0 <= lo < hi <= _MAX:
            raise ValueError(
                f"tile range {dim}=({lo}, {hi}) is not a non-empty range of cells in "
                f"[0, {_MAX}]; pass half-open (start, stop) cell indices"
            )
        fields.append(f"{dim}{lo:09d}-{hi:09d}")
    if not fields or not 0 <= seq <= 99999:
        raise ValueError(
            f"a tile needs at least one dim and a seq in [0, 99999]; got {dict(tile)!r}, {seq}"
        )
    name = ".".join([*fields, f"{seq:05d}"])
    return validate_segment(name, kind="tile part name")


def parse_tile_part(name: str) -> dict[str, tuple[int, int]] | None:
    """The tile a part of :func:`tile_part_name` covers; ``None`` for another name.

    ``name`` is the part name or the part's store key (``.../part-<name>.parquet``).
    """
    name = name.rsplit("/", 1)[-1]
    if name.startswith("part-") and name.endswith(".parquet"):
        name = name[len("part-") : -len(".parquet")]
    fields = name.split(".")
    if len(fields) < 2 or not fields[-1].isdigit():
        return None
    tile: dict[str, tuple[int, int]] = {}
    for f in fields[:-1]:
        m = _RANGE_RE.match(f)
        if m is None:
            return None
        tile[m["dim"]] = (int(m["lo"]), int(m["hi"]))
    return tile


def tile_overlaps(name: str, region: Mapping[str, tuple[int, int]]) -> bool:
    """Whether the part ``name`` holds rows of a tile overlapping ``region`` (half-open
    cell ranges by dim; dims the region does not name match any range).

    Raises
    ------
    ValueError
        If ``name`` is not a tile part name (a table not written by tiles).
    """
    tile = parse_tile_part(name)
    if tile is None:
        raise ValueError(
            f"table part {name!r} is not named by a grid tile; a tiled table input needs "
            "parts named with minjiang.storage.tile_part_name"
        )
    return all(
        lo < region[d][1] and region[d][0] < hi for d, (lo, hi) in tile.items() if d in region
    )
