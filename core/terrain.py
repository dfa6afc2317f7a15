"""Terrain derivatives shared by the landform classifier and the accuracy scores."""
from __future__ import annotations

import numpy as np


def _axis_difference(z: np.ndarray, axis: int) -> np.ndarray:
    """Elevation change across one cell along `axis`, as SAGA's Get_Gradient takes it.

    Central difference (z[+1] − z[−1]) / 2 where both neighbours are valid; one-sided where
    only one is (grid edge, nodata beside); 0 where neither is.
    """
    padded = np.pad(z, [(1, 1) if a == axis else (0, 0) for a in range(2)],
                    constant_values=np.nan)
    n = z.shape[axis]
    after = np.take(padded, np.arange(2, n + 2), axis=axis) - z
    before = z - np.take(padded, np.arange(0, n), axis=axis)
    after_ok = np.isfinite(after)
    before_ok = np.isfinite(before)
    # A missing neighbour is replaced by the mirror of the other, as SAGA does.
    after = np.where(after_ok, after, np.where(before_ok, before, 0.0))
    before = np.where(before_ok, before, after)
    return (after + before) / 2


def slope_degrees(z: np.ndarray, dx_m: float, dy_m: float) -> np.ndarray:
    """Slope in degrees from 4-neighbour finite differences (SAGA's default gradient).

    `dx_m`, `dy_m` are the ground cell width and height in metres. NaN cells stay NaN.
    """
    z = np.asarray(z, dtype=np.float64)
    gx = _axis_difference(z, 1) / dx_m
    gy = _axis_difference(z, 0) / dy_m
    slope = np.degrees(np.arctan(np.hypot(gx, gy)))
    slope[np.isnan(z)] = np.nan
    return slope
