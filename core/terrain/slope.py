"""Terrain derivatives shared by the landform classifier and the accuracy scores."""
from __future__ import annotations

import math

import numpy as np


def _axis_double_difference(z: np.ndarray, axis: int, has_nodata: bool) -> np.ndarray:
    """Twice the elevation change across one cell along `axis`, as SAGA's Get_Gradient takes it.

    z[+1] − z[−1] where both neighbours are valid; twice the one-sided difference where only one
    is (grid edge, nodata beside); 0 where neither is. Twice, so that the interior needs one
    subtraction and no halving: callers divide by 2·cell size. Computed in float64 whatever the
    input's type (differences of float32 elevations are then exact). Values at NaN cells are
    meaningless (the central difference skips the centre): callers mask them.
    """
    out = np.zeros(z.shape, dtype=np.float64)
    # Work along the first axis of views; `out` itself stays C-ordered like z for later passes.
    zt, diff = (z, out) if axis == 0 else (z.T, out.T)
    n = zt.shape[0]
    if n < 2:
        diff[np.isnan(zt)] = np.nan
        return out
    np.subtract(zt[2:], zt[:-2], out=diff[1:-1])
    np.subtract(zt[1], zt[0], out=diff[0])
    np.subtract(zt[-1], zt[-2], out=diff[-1])
    diff[0] *= 2
    diff[-1] *= 2
    if has_nodata:
        # Central differences are NaN beside nodata: redo only those cells with the fallbacks
        # (one-sided, then 0), so a raster without holes pays for slicing alone.
        redo = np.isnan(diff) & ~np.isnan(zt)
        i, j = np.nonzero(redo)
        centre = zt[i, j].astype(np.float64)
        after = np.where(i + 1 < n, zt[np.minimum(i + 1, n - 1), j] - centre, np.nan)
        before = np.where(i > 0, centre - zt[np.maximum(i - 1, 0), j], np.nan)
        # Both neighbours valid never lands here: then the central difference was finite.
        diff[i, j] = 2 * np.where(np.isnan(after), np.where(np.isnan(before), 0.0, before), after)
    return out


def _has_nodata(z: np.ndarray) -> bool:
    return bool(np.isnan(z).any())


def slope_gradient(z: np.ndarray, dx_m: float, dy_m: float) -> np.ndarray:
    """tan(slope): the gradient's magnitude from 4-neighbour finite differences (SAGA's rule).

    NaN cells stay NaN.
    """
    z = np.asarray(z)
    nodata = _has_nodata(z)
    gradient = np.hypot(_axis_double_difference(z, 1, nodata) / (2 * dx_m),
                        _axis_double_difference(z, 0, nodata) / (2 * dy_m))
    gradient[np.isnan(z)] = np.nan
    return gradient


def steeper_than(z: np.ndarray, dx_m: float, dy_m: float, threshold_deg: float) -> np.ndarray:
    """Boolean grid: slope > threshold (SAGA's 4-neighbour gradient); False at NaN cells.

    Compared on squares, (Δx / 2dx)² + (Δy / 2dy)² > tan²(threshold), written as
    Δx² + (Δy·dx/dy)² > (2·dx·tan threshold)² so that the grid sees no division, square root or
    arctangent: the Δ are exact and their squares lose at most one rounding each, so the test
    differs from comparing atan(√…) with the threshold only for slopes within ~1e-16 of it.
    """
    z = np.asarray(z)
    nodata = _has_nodata(z)
    across = _axis_double_difference(z, 1, nodata)
    np.square(across, out=across)
    along = _axis_double_difference(z, 0, nodata)
    np.square(along, out=along)
    if dx_m != dy_m:
        along *= (dx_m / dy_m) ** 2
    across += along
    del along
    steep = np.greater(across, (2 * dx_m * math.tan(math.radians(threshold_deg))) ** 2)
    if nodata:
        steep[np.isnan(z)] = False
    return steep


def slope_degrees(z: np.ndarray, dx_m: float, dy_m: float) -> np.ndarray:
    """Slope in degrees from 4-neighbour finite differences (SAGA's default gradient).

    `dx_m`, `dy_m` are the ground cell width and height in metres. NaN cells stay NaN.
    """
    return np.degrees(np.arctan(slope_gradient(z, dx_m, dy_m)))
