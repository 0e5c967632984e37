"""Local thickness of the pore phase: the radius of the largest inscribed sphere covering
each voxel, from the Euclidean distance transform.

``lt[x] = max{R_c : |x - c| < R_c}``, ``R_c = floor(dt[c])`` over pore voxels ``c`` with
``R_c >= 1``, ``dt`` the distance of a pore voxel to the nearest solid voxel (in
voxels; the array boundary is not solid, as ``scipy.ndimage.distance_transform_edt``
and porespy count it). Integer radii and the open ball are porespy's
``local_thickness(method="bf", smooth=True)``. :func:`local_thickness_block` does it
on a block with a halo and checks that the halo was wide enough.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from minjiang.kernels import resolve_backend

__all__ = ["halo_for", "local_thickness", "local_thickness_block"]


def halo_for(max_radius: int) -> int:
    """Halo (voxels per side) that makes a block exact for pores up to ``max_radius``.

    A voxel can be painted by centres up to ``max_radius`` away, and such a centre's
    distance transform is exact when its nearest solid lies inside the block with its
    halo: twice ``max_radius + 1``.
    """
    return 2 * (int(max_radius) + 1)


def _as3(x: np.ndarray) -> np.ndarray:
    return x.reshape((1,) * (3 - x.ndim) + x.shape)


def local_thickness(pores: Any, *, backend: str | None = None) -> np.ndarray:
    """Local thickness (voxels) of a whole 2-D or 3-D pore image.

    Parameters
    ----------
    pores : numpy.ndarray
        Boolean image, True in the pore phase.
    backend : {"reference", "cpu"}, optional
        Brute-force NumPy painting, or the numba kernel (default).

    Returns
    -------
    numpy.ndarray
        float64, same shape; 0 in the solid.
    """
    from scipy import ndimage  # type: ignore[import-untyped]  # scipy ships no type information

    chosen = resolve_backend(backend, pores, kernel="materials.local_thickness")
    p = np.asarray(pores, dtype=bool)
    if p.ndim not in (2, 3):
        raise ValueError(f"the image must be 2-D or 3-D, got {p.ndim}-D")
    dt = ndimage.distance_transform_edt(p)
    return _paint(chosen, _as3(dt), _as3(p)).reshape(p.shape)


def _paint(chosen: str, dt: np.ndarray, centres: np.ndarray) -> np.ndarray:
    if chosen == "reference":
        from minjiang.plugins.materials.thickness._reference import paint
    else:
        from minjiang.plugins.materials.thickness._cpu import paint
    return paint(dt, centres)


def local_thickness_block(
    pores: np.ndarray, real: np.ndarray, halo: tuple[tuple[int, int], ...], max_radius: int
) -> np.ndarray:
    """Local thickness of a block's interior from the block padded with its halo.

    Parameters
    ----------
    pores : numpy.ndarray
        Padded block, True in the pore phase.
    real : numpy.ndarray
        Padded block, True where a cell lies inside the image (padding beyond the image
        edge is False and counts as neither solid nor centre).
    halo : tuple of (int, int)
        Cells of padding before and after the interior, per axis.
    max_radius : int
        Declared largest pore radius (voxels); the halo must be ``halo_for(max_radius)``.

    Returns
    -------
    numpy.ndarray
        float64 local thickness of the interior.

    Raises
    ------
    ValueError
        When a centre that can reach the interior has a radius of ``max_radius + 1`` or
        more (the pore is larger than declared, and the halo too narrow to be exact).
    """
    from scipy import ndimage

    p = np.asarray(pores, dtype=bool) | ~np.asarray(real, dtype=bool)
    dt = ndimage.distance_transform_edt(p)
    centres = np.asarray(pores, dtype=bool) & np.asarray(real, dtype=bool)
    reach = int(max_radius) + 1
    zone = tuple(
        slice(max(lo - reach, 0), p.shape[i] - max(hi - reach, 0))
        for i, (lo, hi) in enumerate(halo)
    )
    if centres[zone].any() and np.floor(dt[zone][centres[zone]]).max() > max_radius:
        raise ValueError(
            f"a pore is wider than max_radius {max_radius} voxels; raise max_radius (the halo "
            "grows with it)"
        )
    lt = _paint("cpu", _as3(dt), _as3(centres)).reshape(p.shape)
    inner = tuple(slice(lo, p.shape[i] - hi) for i, (lo, hi) in enumerate(halo))
    return lt[inner]
