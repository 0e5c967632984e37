"""numba CPU connected-component labelling: union-find over runs of foreground along x
(by smallest index), face equivalences and relabelling."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True, inline="always")
def _find(parent, i):  # pragma: no cover - compiled
    r = i
    while parent[r] != r:
        r = parent[r]
    while parent[i] != r:  # path compression
        nxt = parent[i]
        parent[i] = r
        i = nxt
    return r


@numba.njit(cache=True, nogil=True, inline="always")
def _union(parent, a, b):  # pragma: no cover - compiled
    ra = _find(parent, a)
    rb = _find(parent, b)
    if ra < rb:
        parent[rb] = ra
    elif rb < ra:
        parent[ra] = rb


@numba.njit(cache=True, nogil=True)
def _row_runs(fg, emit, starts, ends, rowptr):  # pragma: no cover - compiled
    # Runs of foreground along x, row by row (row r = z * ny + y), in C order.
    nz, ny, nx = fg.shape
    k = 0
    for z in range(nz):
        for y in range(ny):
            x = 0
            while x < nx:
                if fg[z, y, x] == 0:
                    x += 1
                    continue
                s = x
                while x < nx and fg[z, y, x] != 0:
                    x += 1
                if emit:
                    starts[k] = s
                    ends[k] = x
                k += 1
            if emit:
                rowptr[z * ny + y + 1] = k
    return k


@numba.njit(cache=True, nogil=True)
def _join_rows(parent, starts, ends, a0, a1, b0, b1, e):  # pragma: no cover - compiled
    # Joins runs [a0, a1) of a row with runs [b0, b1) of an earlier neighbouring row:
    # half-open runs touch when they overlap after widening by e (0, or 1 where the
    # connectivity reaches diagonally along x).
    i = a0
    j = b0
    while i < a1 and j < b1:
        if ends[j] + e <= starts[i]:
            j += 1
        elif ends[i] + e <= starts[j]:
            i += 1
        else:
            _union(parent, i, j)
            if ends[i] < ends[j]:
                i += 1
            else:
                j += 1


@numba.njit(cache=True, nogil=True)
def label_runs(fg, order, out, origin, shape, global_ids, dummy):  # pragma: no cover - compiled
    # fg: 3-D, 1 byte per cell, foreground where non-zero. Connected components of
    # x-runs: each run is joined with the runs of the (up to four) earlier rows it may
    # touch, union by smallest run index, so a component's root is its first run and
    # components come in order of first cell. ``out`` (zeros, an integer dtype that
    # holds the number of cells of the whole array) receives 1..n, or with
    # ``global_ids`` 1 + the C-order index of each component's first cell in an array
    # of ``shape`` where this block starts at ``origin``. Returns n.
    # The run tables (start, end, parent, value; at most one run per two cells) and
    # the row offsets take the dtype of ``dummy`` (empty): every entry is a cell index
    # or count, so for int32 labels int32 tables (half the memory of int64) hold them.
    nz, ny = fg.shape[0], fg.shape[1]
    idx = dummy.dtype
    nrun = _row_runs(fg, False, dummy, dummy, dummy)
    starts = np.empty(nrun, dtype=idx)
    ends = np.empty(nrun, dtype=idx)
    rowptr = np.zeros(nz * ny + 1, dtype=idx)
    _row_runs(fg, True, starts, ends, rowptr)
    parent = np.empty(nrun, dtype=idx)
    for i in range(nrun):
        parent[i] = i
    e_y = 1 if order >= 2 else 0  # (0, -1, dx): faces, edges along x
    e_z = 1 if order >= 2 else 0  # (-1, 0, dx)
    e_d = 1 if order >= 3 else 0  # (-1, +-1, dx); present from order 2
    for z in range(nz):
        for y in range(ny):
            r = z * ny + y
            a0 = rowptr[r]
            a1 = rowptr[r + 1]
            if a0 == a1:
                continue
            if y > 0:
                _join_rows(parent, starts, ends, a0, a1, rowptr[r - 1], rowptr[r], e_y)
            if z > 0:
                q = r - ny
                _join_rows(parent, starts, ends, a0, a1, rowptr[q], rowptr[q + 1], e_z)
                if order >= 2:
                    if y > 0:
                        _join_rows(parent, starts, ends, a0, a1, rowptr[q - 1], rowptr[q], e_d)
                    if y < ny - 1:
                        _join_rows(parent, starts, ends, a0, a1, rowptr[q + 1], rowptr[q + 2], e_d)
    value = np.zeros(nrun, dtype=idx)
    count = 0
    for z in range(nz):
        for y in range(ny):
            r = z * ny + y
            for i in range(rowptr[r], rowptr[r + 1]):
                root = _find(parent, i)
                if value[root] == 0:
                    count += 1
                    if global_ids:
                        value[root] = (
                            ((z + origin[0]) * shape[1] + (y + origin[1])) * shape[2]
                            + (starts[i] + origin[2])
                            + 1
                        )
                    else:
                        value[root] = count
                v = value[root]
                for x in range(starts[i], ends[i]):
                    out[z, y, x] = v
    return count


@numba.njit(cache=True, nogil=True)
def relabel(lab, old, new, out):  # pragma: no cover - compiled
    # Maps flat labels through the sorted table old -> new (0 stays 0). Runs along x
    # repeat a label and the rows of a component repeat it again: the last label is
    # reused, others go through a small direct-mapped cache before a binary search of
    # the table. Returns the number of cells whose label is missing from the table.
    slots = 4096
    keys = np.full(slots, -1, dtype=np.int64)
    vals = np.zeros(slots, dtype=np.int64)
    missing = 0
    last = 0
    last_new = 0
    m = old.size
    for i in range(lab.size):
        v = lab[i]
        if v != last:
            last = v
            if v == 0:
                last_new = 0
            else:
                h = v & (slots - 1)
                if keys[h] == v:
                    last_new = vals[h]
                else:
                    lo = 0
                    hi = m
                    while lo < hi:
                        mid = (lo + hi) >> 1
                        if old[mid] < v:
                            lo = mid + 1
                        else:
                            hi = mid
                    if lo == m or old[lo] != v:
                        missing += 1
                        last = -1  # count every such cell
                        last_new = 0
                    else:
                        last_new = new[lo]
                        keys[h] = v
                        vals[h] = last_new
        out[i] = last_new
    return missing


@numba.njit(cache=True, nogil=True)
def union_find_roots(p, q, n):  # pragma: no cover - compiled
    parent = np.arange(n, dtype=np.int64)
    for i in range(p.size):
        _union(parent, p[i], q[i])
    for i in range(n):
        parent[i] = _find(parent, i)
    return parent


@numba.njit(cache=True, nogil=True)
def _row_differs(ra, rb):  # pragma: no cover - compiled
    # Whether two equal-length contiguous rows hold different non-zero labels at any
    # position; branch-free so that it vectorises: pairs are rare (block faces), most
    # rows have none.
    c = np.int64(0)
    for x in range(ra.size):
        a = ra[x]
        b = rb[x]
        c += np.int64((a != b) & (a > 0) & (b > 0))
    return c > 0


@numba.njit(cache=True, nogil=True)
def _scan_pairs(flat, shape, lo, hi, offs, out, emit):  # pragma: no cover - compiled
    # flat: the C-contiguous padded labels, raveled, of shape ``shape``.
    nz, ny, nx = shape[0], shape[1], shape[2]
    k = 0
    last_a = -1
    last_b = -1
    for j in range(offs.shape[0]):
        dz, dy, dx = offs[j, 0], offs[j, 1], offs[j, 2]
        x0 = max(lo[2], -dx)
        x1 = min(hi[2], nx - dx)
        if x1 <= x0:
            continue
        for z in range(max(lo[0], -dz), min(hi[0], nz - dz)):
            for y in range(max(lo[1], -dy), min(hi[1], ny - dy)):
                pa = (z * ny + y) * nx + x0
                pb = ((z + dz) * ny + (y + dy)) * nx + x0 + dx
                ra = flat[pa : pa + x1 - x0]
                rb = flat[pb : pb + x1 - x0]
                if not _row_differs(ra, rb):
                    continue
                for x in range(ra.size):
                    a = ra[x]
                    if a <= 0:
                        continue
                    b = rb[x]
                    if b <= 0 or a == b:
                        continue
                    if b < a:
                        a, b = b, a
                    if a == last_a and b == last_b:  # runs along a face repeat one pair
                        continue
                    last_a = a
                    last_b = b
                    if emit:
                        out[k, 0] = a
                        out[k, 1] = b
                    k += 1
    return k


@numba.njit(cache=True, nogil=True)
def face_equivalences(padded, lo, hi, offs):  # pragma: no cover - compiled
    # padded: 3-D C-contiguous labels
    flat = padded.ravel()
    shape = np.array(padded.shape, dtype=np.int64)
    dummy = np.empty((0, 2), dtype=np.int64)
    n = _scan_pairs(flat, shape, lo, hi, offs, dummy, False)
    out = np.empty((n, 2), dtype=np.int64)
    _scan_pairs(flat, shape, lo, hi, offs, out, True)
    return out


@numba.njit(cache=True, nogil=True)
def _label_runs_of(lab, out, emit):  # pragma: no cover - compiled
    # The first label of every run of equal non-zero labels in C order (3-D, any strides).
    nz, ny, nx = lab.shape
    k = 0
    last = 0
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                v = lab[z, y, x]
                if v != last:
                    last = v
                    if v != 0:
                        if emit:
                            out[k] = v
                        k += 1
    return k


@numba.njit(cache=True, nogil=True)
def labels_present(lab):  # pragma: no cover - compiled
    # The distinct non-zero labels (unsorted, with repeats): one per run, a few per
    # component, instead of one per cell.
    dummy = np.empty(0, dtype=lab.dtype)
    n = _label_runs_of(lab, dummy, False)
    out = np.empty(n, dtype=lab.dtype)
    _label_runs_of(lab, out, True)
    return out
