"""Attraction-model sub-pixel upscaling (Mokarram and Hojati 2018; docs/DESIGN.md §4),
vectorised over the raster.

Each coarse cell P (value z0) is split into S × S sub-pixels p_ab. A neighbour P_k of the 3 × 3
window attracts p_ab with A_k = z_k / d_k, d_k being the distance from the sub-pixel centre to
the neighbour's centre in coarse-cell units (S = 2: 0.790569 to an edge neighbour, 1.06066 to a
corner neighbour).

Geometry (exact, integer arithmetic in units of half a sub-pixel, 1 / 2S of a coarse cell):
sub-pixel (a, b) (row, column) has its centre at (u, v) = (2b + 1 − S, 2a + 1 − S) from P's
centre; neighbour (di, dj) has its centre at (2S·dj, 2S·di).

- ``touching``: neighbours whose closed square shares an edge or a corner with the sub-pixel's
  square: |u − 2S·dj| ≤ S + 1 and |v − 2S·di| ≤ S + 1.
- ``quadrant``: the neighbours of the closed quadrant(s) of P holding the sub-pixel centre:
  three, five for a centre on an axis (odd S), all eight for the centre sub-pixel.
- ``surrounding``: all eight.

Assignment:

- ``max_attraction`` (the paper): p_ab takes the value of the neighbour with the highest A_k.
  Ties: the nearer neighbour wins; among equally near ones the higher value (equal attraction at
  equal distance means equal elevation, so this only settles float rounding). A sub-pixel whose
  neighbourhood is empty or all nodata keeps z0.
- ``weighted_mean``: p_ab = (z0/d0 + Σ z_k/d_k) / (1/d0 + Σ 1/d_k) over the neighbourhood plus the
  centre cell, d0 being the distance from the sub-pixel centre to P's own centre, measured like
  every other distance. That is the continuous reading of the paper's equation (4): every cell of
  the window, the centre included, pulls with weight 1/d, no free parameter is added, and as
  d0 → 0 (the centre sub-pixel for odd S) the value tends to z0, which is what that sub-pixel
  gets. An inverse-distance mean is exact on a constant surface and keeps p_ab between the window's
  extremes.

Negative elevations: z / d is not an attraction when z < 0 (a deeper neighbour would attract
*less* the nearer it is). The max rule therefore ranks (z_k − m) / d_k with m = min(0, the lowest
valid value of the 3 × 3 window). Where the window has no negative value m = 0 and this is the
paper's rule exactly; where it has, every shifted value is ≥ 0 and "higher and nearer attracts
more" holds again; m is continuous in the data, so results do not jump when a value crosses 0.
The weighted mean needs no such care: it is shift-invariant (adding c to every z adds c to p_ab).

Nodata (NaN) neighbours, and cells outside the raster, are left out of the neighbourhood; a
nodata cell is nodata in all its sub-pixels. With ``preserve_mean`` each S × S block is shifted
so that its mean equals z0 (averaging the result back to the coarse grid returns the input).

Speed: the raster is processed in strips of rows that fit the CPU cache (threads share the
strips). The weighted mean is a linear map of the window's anomalies z_k − z0 wherever the window
is full: one small matrix product per sub-pixel row, mean preservation folded into its
coefficients; only cells with nodata in their window are redone in the renormalised form. The
max rule loops over the S² sub-pixel positions and their neighbours (grouped by equal
distance), never over cells. 3601² in memory: about 0.34 s at S = 2 and 1.3 s at S = 4 for the
default mode on 2 shared cores (benchmarks/results/attraction.md). Float32 stores the mean to
half an ulp: 3e-5 m below 1024 m, 1.2e-4 m between 2048 and 4096 m.
"""
from __future__ import annotations

import functools
import math
import numbers
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from .errors import DemError
from .grid.progress import Monitor
from .grid.raster import DEFAULT_BLOCK, Block, RasterInfo, read_info
from .grid.writing import GeoTiffWriter, process_blocks

NEIGHBOURHOODS = ("touching", "quadrant", "surrounding")
ASSIGNMENTS = ("max_attraction", "weighted_mean")
# The mode that measured best under docs/DESIGN.md §7 (benchmarks/results/attraction.md), chosen on
# files that the reported ranking does not use.
DEFAULT_NEIGHBOURHOOD = "quadrant"
DEFAULT_ASSIGNMENT = "weighted_mean"
DEFAULT_PRESERVE_MEAN = True

# The 8 neighbours (row offset, column offset) in a fixed order: N, W, E, S, NW, NE, SW, SE.
OFFSETS = ((-1, 0), (0, -1), (0, 1), (1, 0), (-1, -1), (-1, 1), (1, -1), (1, 1))

# Cells per strip: a handful of float arrays of this size stay in a 2 MB L2 cache.
_STRIP_CELLS = 48_000
# GDAL cannot address a raster side longer than INT_MAX cells.
MAX_SIDE = 2**31 - 1


def check_scale(scale) -> int:
    """The scale factor as an int ≥ 2, or a DemError saying what is wrong with it."""
    if isinstance(scale, bool) or not isinstance(scale, numbers.Real):
        raise DemError(f"The scale factor must be an integer ≥ 2, not {scale!r}.")
    if isinstance(scale, numbers.Integral):
        value = int(scale)
    elif math.isfinite(scale) and float(scale).is_integer():
        value = int(scale)
    else:
        raise DemError(
            f"The scale factor must be a whole number of sub-pixels per cell (≥ 2), not {scale}."
        )
    if value < 2:
        raise DemError(f"The scale factor must be at least 2 (got {value}).")
    return value


def _check_choice(value: str, choices: tuple[str, ...], what: str) -> str:
    if value not in choices:
        raise DemError(f"Unknown {what} {value!r}; choose one of {', '.join(choices)}.")
    return value


# --------------------------------------------------------------------------------------------
# Geometry


def subpixel_offset(scale: int, a: int, b: int) -> tuple[int, int]:
    """Centre of sub-pixel (a, b) from the coarse cell's centre, in units of 1 / (2·scale):
    (u, v) = (x to the right, y downwards)."""
    return 2 * b + 1 - scale, 2 * a + 1 - scale


def neighbour_distance(scale: int, a: int, b: int, di: int, dj: int) -> float:
    """Distance in coarse-cell units from sub-pixel (a, b)'s centre to the centre of the cell
    at row/column offset (di, dj) ((0, 0) is the coarse cell itself)."""
    return math.sqrt(_squared_distance(scale, a, b, di, dj)) / (2 * scale)


def _squared_distance(scale: int, a: int, b: int, di: int, dj: int) -> int:
    # An integer (distance · 2·scale)², so equal distances compare exactly.
    u, v = subpixel_offset(scale, a, b)
    return (u - 2 * scale * dj) ** 2 + (v - 2 * scale * di) ** 2


def _touches(scale: int, a: int, b: int, di: int, dj: int) -> bool:
    # Closed squares meet iff their centres are at most the sum of half-widths apart on both
    # axes; half-widths are 1 (sub-pixel) and scale (coarse cell) in these units.
    u, v = subpixel_offset(scale, a, b)
    return abs(u - 2 * scale * dj) <= scale + 1 and abs(v - 2 * scale * di) <= scale + 1


def _in_quadrant(scale: int, a: int, b: int, di: int, dj: int) -> bool:
    # The quadrant(s) holding the centre reach the neighbours on the centre's side of each
    # axis; a centre on an axis belongs to both sides.
    u, v = subpixel_offset(scale, a, b)
    return (u == 0 or dj == 0 or (dj > 0) == (u > 0)) and (
        v == 0 or di == 0 or (di > 0) == (v > 0)
    )


def neighbour_set(scale: int, a: int, b: int, neighbourhood: str) -> list[tuple[int, int]]:
    """The neighbours (di, dj) in sub-pixel (a, b)'s neighbourhood, in OFFSETS order."""
    _check_choice(neighbourhood, NEIGHBOURHOODS, "neighbourhood")
    if neighbourhood == "touching":
        return [o for o in OFFSETS if _touches(scale, a, b, *o)]
    if neighbourhood == "quadrant":
        return [o for o in OFFSETS if _in_quadrant(scale, a, b, *o)]
    return list(OFFSETS)


@dataclass(frozen=True)
class _Plan:
    """What the vectorised passes need, worked out once per (scale, neighbourhood)."""

    scale: int
    # per sub-pixel (a, b): groups of neighbour indexes (into OFFSETS) of equal distance,
    # nearest group first, with that group's distance
    groups: tuple[tuple[tuple[tuple[int, ...], float], ...], ...]
    weights: np.ndarray  # (8, S²) 1/d_k for k in the set, else 0
    centre_weight: np.ndarray  # (S²,) 1/d0; 0 where d0 = 0 (value = z0)
    centre_only: np.ndarray  # (S²,) bool: d0 = 0, the sub-pixel is z0 whatever the neighbours

    def coefficients(self, preserve_mean: bool, dtype) -> np.ndarray:
        """(8, S²) map from the window's anomalies z_k − z0 to the sub-pixels' z − z0 when
        every neighbour is valid. Mean preservation is linear too: centre each map's output."""
        total = self.weights.sum(axis=0) + self.centre_weight
        total[self.centre_only] = 1.0
        coef = self.weights / total
        if preserve_mean:
            coef = coef - coef.mean(axis=1, keepdims=True)
        return coef.astype(dtype)


@functools.lru_cache(maxsize=32)
def _plan(scale: int, neighbourhood: str) -> _Plan:
    n = scale * scale
    weights = np.zeros((8, n))
    centre_weight = np.zeros(n)
    centre_only = np.zeros(n, dtype=bool)
    groups = []
    for a in range(scale):
        for b in range(scale):
            ab = a * scale + b
            members = neighbour_set(scale, a, b, neighbourhood)
            by_distance: dict[int, list[int]] = {}
            for o in members:
                k = OFFSETS.index(o)
                by_distance.setdefault(_squared_distance(scale, a, b, *o), []).append(k)
                weights[k, ab] = 1.0 / neighbour_distance(scale, a, b, *o)
            groups.append(tuple(
                (tuple(ks), math.sqrt(q) / (2 * scale)) for q, ks in sorted(by_distance.items())
            ))
            d0 = neighbour_distance(scale, a, b, 0, 0)
            if d0 == 0:
                centre_only[ab] = True
                weights[:, ab] = 0.0
            else:
                centre_weight[ab] = 1.0 / d0
    return _Plan(scale, tuple(groups), weights, centre_weight, centre_only)


# --------------------------------------------------------------------------------------------
# Vectorised passes over one strip of padded rows


def _views(zp: np.ndarray):
    """The centre and its 8 neighbours as views of a padded (h + 2, w + 2) array."""
    h, w = zp.shape[0] - 2, zp.shape[1] - 2
    centre = zp[1 : h + 1, 1 : w + 1]
    return centre, [zp[1 + di : h + 1 + di, 1 + dj : w + 1 + dj] for di, dj in OFFSETS]


def _bad_cells(zp: np.ndarray) -> np.ndarray:
    """(h, w) bool: the cells whose 3 × 3 window holds nodata (or reaches past the raster)."""
    m = np.isnan(zp)
    rows = m[:-2] | m[1:-1] | m[2:]
    return rows[:, :-2] | rows[:, 1:-1] | rows[:, 2:]


def _weighted_sum(terms: np.ndarray, weights: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """Σ_k weights[k] · terms[k] over the first axis, always in the order k = 0, 1, …: each
    cell's sum is then the same however many cells a strip holds. (A BLAS product picks its
    kernel and summation order by the matrix shape, which made a blocked run differ from a
    whole-raster run by an ulp on some CPUs.) Zero weights are skipped: they add exactly 0."""
    total = np.zeros(terms.shape[1:], dtype=terms.dtype)
    for term, weight in zip(terms, weights):
        if weight != 0:
            np.multiply(term, weight, out=scratch)
            total += scratch
    return total


def _weighted_mean_strip(zp: np.ndarray, out4: np.ndarray, plan: _Plan, preserve_mean: bool,
                         bad: np.ndarray) -> None:
    z0, neighbours = _views(zp)
    h, w = z0.shape
    s = plan.scale
    # Anomalies z_k − z0 keep the sums accurate in float32 (metres of relief, not of altitude).
    anomaly = np.empty((8, h, w), dtype=zp.dtype)
    for k, zk in enumerate(neighbours):
        np.subtract(zk, z0, out=anomaly[k])
    coef = plan.coefficients(preserve_mean, zp.dtype)
    idx = np.flatnonzero(bad)
    fix = None
    if idx.size:
        # Windows with nodata: renormalise over the valid neighbours. The centre always counts;
        # a nodata centre comes out NaN through z0 below.
        sub = anomaly.reshape(8, h * w)[:, idx]
        valid = ~np.isnan(sub)
        sub[~valid] = 0.0
        valid = valid.astype(zp.dtype)
        wts = plan.weights.astype(zp.dtype)
        scratch = np.empty(idx.size, dtype=zp.dtype)
        fix = np.empty((s * s, idx.size), dtype=zp.dtype)
        for ab in range(s * s):
            if plan.centre_only[ab]:
                fix[ab] = 0.0
                continue
            den = _weighted_sum(valid, wts[:, ab], scratch) + plan.centre_weight[ab].astype(
                zp.dtype)
            fix[ab] = _weighted_sum(sub, wts[:, ab], scratch) / den
        if preserve_mean:
            fix -= fix.mean(axis=0, keepdims=True)
    scratch = np.empty((h, w), dtype=zp.dtype)
    for a in range(s):
        for b in range(s):
            ab = a * s + b
            # Full windows: a fixed linear map of the window's anomalies.
            delta = _weighted_sum(anomaly, coef[:, ab], scratch)
            if fix is not None:
                delta.reshape(-1)[idx] = fix[ab]
            np.add(z0, delta, out=out4[:, a, :, b])


def _select(wins: np.ndarray, new: np.ndarray, old: np.ndarray) -> np.ndarray:
    """np.where(wins, new, old) through the bits: numpy 1.x's where is a branchy scalar loop,
    several times slower than these SIMD integer operations."""
    itype = np.int64 if new.dtype.itemsize == 8 else np.int32
    mask = wins.view(np.int8).astype(itype)
    np.negative(mask, out=mask)  # 0 or all bits set
    o = old.view(itype)
    bits = np.bitwise_xor(new.view(itype), o)
    np.bitwise_and(bits, mask, out=bits)
    np.bitwise_xor(bits, o, out=bits)
    return bits.view(new.dtype)


def _max_attraction_strip(zp: np.ndarray, out4: np.ndarray, plan: _Plan, preserve_mean: bool,
                          bad: np.ndarray) -> None:
    any_bad = bool(bad.any())
    # Nodata attracts nothing: −inf loses every strict comparison and every maximum.
    zi = np.where(np.isnan(zp), -np.inf, zp) if any_bad else zp
    z0, neighbours = _views(zi)
    h, w = z0.shape
    shift = None
    if bool((zp < 0).any()):
        # m = min(0, lowest valid value of the 3 × 3 window), per coarse cell.
        low = np.where(np.isnan(zp), np.inf, zp)
        _, low_views = _views(low)
        shift = np.minimum(low[1:-1, 1:-1], 0.0)
        for view in low_views:
            np.minimum(shift, view, out=shift)
    cache: dict[float, np.ndarray] = {}

    def attraction(k: int, d: float) -> np.ndarray:
        if shift is not None:
            return (neighbours[k] - shift) / d
        # Without a shift, z/d of the whole padded strip serves every sub-pixel at distance d.
        if d not in cache:
            cache[d] = zi / d
        di, dj = OFFSETS[k]
        return cache[d][1 + di : h + 1 + di, 1 + dj : w + 1 + dj]

    s = plan.scale
    acc = np.zeros((h, w)) if preserve_mean else None
    for ab, groups in enumerate(plan.groups):
        a, b = divmod(ab, s)
        best = value = z0
        for n, (ks, d) in enumerate(groups):
            # Equal distance: the highest value has the highest attraction.
            g_attr = attraction(ks[0], d)
            g_value = neighbours[ks[0]]
            for k in ks[1:]:
                g_attr = np.maximum(g_attr, attraction(k, d))
                g_value = np.maximum(g_value, neighbours[k])
            if n == 0:
                best, value = g_attr, g_value
                continue
            # Strictly greater: on a tie the nearer group (seen first) keeps the sub-pixel.
            wins = g_attr > best
            if n < len(groups) - 1:
                best = np.maximum(best, g_attr)  # = where(wins, g_attr, best): no NaN here
            value = _select(wins, g_value, value)
        out4[:, a, :, b] = value
        if acc is not None:
            np.add(acc, value, out=acc)
    if any_bad:
        # Only cells with nodata in the window need it: a sub-pixel whose neighbours are all
        # nodata (still −inf) keeps z0; a nodata centre is nodata in every sub-pixel.
        ri, ci = np.nonzero(bad)
        blocks = out4[ri, :, ci, :]
        centre = zp[1:-1, 1:-1][ri, ci][:, None, None]
        blocks = np.where(np.isneginf(blocks) | np.isnan(centre), centre, blocks)
        out4[ri, :, ci, :] = blocks
        if acc is not None:
            acc[ri, ci] = blocks.sum(axis=(1, 2), dtype=np.float64)
    if acc is not None:
        # The float64 sum makes the shift, not the summation, set the error (≤ half an ulp).
        corr = np.repeat((zp[1:-1, 1:-1] - acc / (s * s)).astype(out4.dtype), s, axis=1)
        for a in range(s):
            # Row a of every cell is w·S contiguous values: a long inner loop, not one of S.
            row = out4[:, a].reshape(h, w * s)
            row += corr


def _strip(zp: np.ndarray, out4: np.ndarray, plan: _Plan, assignment: str,
           preserve_mean: bool) -> None:
    bad = _bad_cells(zp)
    if assignment == "weighted_mean":
        _weighted_mean_strip(zp, out4, plan, preserve_mean, bad)
    else:
        _max_attraction_strip(zp, out4, plan, preserve_mean, bad)


# --------------------------------------------------------------------------------------------
# Public entry points


def _float_grid(z) -> np.ndarray:
    """The grid as float32 or wider (NaN must fit; float64 input stays float64)."""
    z = np.asarray(z)
    if not np.issubdtype(z.dtype, np.floating) or z.dtype.itemsize < 4:
        return z.astype(np.float32)
    return z


def upscale_padded(
    padded: np.ndarray,
    scale: int,
    neighbourhood: str = DEFAULT_NEIGHBOURHOOD,
    assignment: str = DEFAULT_ASSIGNMENT,
    preserve_mean: bool = DEFAULT_PRESERVE_MEAN,
    threads: int | None = None,
) -> np.ndarray:
    """Upscale the inner cells of a grid padded by one cell on every side (NaN = nodata).

    Returns ((h − 2)·S, (w − 2)·S). This is the form the blocked raster core calls with a halo
    of 1, so a blocked run equals a whole-raster run.
    """
    scale = check_scale(scale)
    _check_choice(neighbourhood, NEIGHBOURHOODS, "neighbourhood")
    _check_choice(assignment, ASSIGNMENTS, "assignment")
    zp = _float_grid(padded)
    if zp.ndim != 2 or zp.shape[0] < 3 or zp.shape[1] < 3:
        raise DemError("The padded grid must be 2-D with at least one inner cell.")
    h, w = zp.shape[0] - 2, zp.shape[1] - 2
    plan = _plan(scale, neighbourhood)
    out = np.empty((h * scale, w * scale), dtype=zp.dtype)
    out4 = out.reshape(h, scale, w, scale)
    rows = max(1, _STRIP_CELLS // max(w, 1))
    starts = range(0, h, rows)

    def work(r0: int) -> None:
        r1 = min(h, r0 + rows)
        _strip(zp[r0 : r1 + 2], out4[r0:r1], plan, assignment, preserve_mean)

    threads = threads or min(len(starts), os.cpu_count() or 1, 4)
    if threads <= 1:
        for r0 in starts:
            work(r0)
    else:
        # numpy releases the GIL in its loops: strips write disjoint rows, so threads scale.
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(work, starts))
    return out


def upscale(
    z: np.ndarray,
    scale: int,
    neighbourhood: str = DEFAULT_NEIGHBOURHOOD,
    assignment: str = DEFAULT_ASSIGNMENT,
    preserve_mean: bool = DEFAULT_PRESERVE_MEAN,
    threads: int | None = None,
) -> np.ndarray:
    """Attraction-model upscaling of a whole grid (NaN = nodata); cells outside are nodata."""
    z = _float_grid(z)
    if z.ndim != 2 or z.size == 0:
        raise DemError("The elevation grid must be a non-empty 2-D array.")
    padded = np.pad(z, 1, constant_values=np.nan)
    return upscale_padded(padded, scale, neighbourhood, assignment, preserve_mean, threads)


def block_size_for(scale: int) -> int:
    """Input cells per block side: output blocks of about 2048² cells, aligned to the writer's
    256-cell tiles when that is possible, so no compressed tile is written twice."""
    tile = GeoTiffWriter.TILE
    unit = tile // math.gcd(tile, scale)
    size = max(1, min(DEFAULT_BLOCK, 2048 // scale))
    return size // unit * unit if size >= unit else size


def upscale_file(
    source: str,
    output: str,
    scale: int,
    neighbourhood: str = DEFAULT_NEIGHBOURHOOD,
    assignment: str = DEFAULT_ASSIGNMENT,
    preserve_mean: bool = DEFAULT_PRESERVE_MEAN,
    monitor: Monitor | None = None,
    block_size: int | None = None,
) -> RasterInfo:
    """Upscale band 1 of `source` into a Float32 GeoTIFF at `output`, block by block.

    The output has the input's origin and CRS, cells `scale` times smaller and the input's
    nodata value (NaN when it declares none). Raises DemError for a bad scale, an output too
    large for GDAL, or an input without a single valid cell (no file is left behind then).
    """
    scale = check_scale(scale)
    _check_choice(neighbourhood, NEIGHBOURHOODS, "neighbourhood")
    _check_choice(assignment, ASSIGNMENTS, "assignment")
    monitor = monitor or Monitor()
    info = read_info(source)
    width, height = info.width * scale, info.height * scale
    if max(width, height) > MAX_SIDE:
        raise DemError(
            f"A scale of {scale} would make a {width} × {height} output; GDAL cannot address a "
            f"raster side longer than {MAX_SIDE} cells. Use a smaller scale or clip the input."
        )
    # The writer asks for BIGTIFF=IF_SAFER, so outputs that might pass 4 GB become BigTIFF; say
    # how large the result is so that a user who asked for S = 20 by mistake notices.
    size_gb = width * height * 4 / 1e9
    monitor.info(
        f"Output {width} × {height} cells ({size_gb:.2f} GB uncompressed Float32), "
        f"{neighbourhood} neighbourhood, {assignment.replace('_', ' ')}"
        f"{', mean preserved' if preserve_mean else ''}."
    )
    def func(padded: np.ndarray, block: Block) -> np.ndarray:
        return upscale_padded(padded, scale, neighbourhood, assignment, preserve_mean)

    return process_blocks(
        source, output, func, halo=1, scale=scale,
        block_size=block_size or block_size_for(scale), data_type="Float32", monitor=monitor,
        require_valid=True,
    )
