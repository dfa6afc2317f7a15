"""Terrain derivatives shared by the landform classifier and the accuracy scores."""
from __future__ import annotations

import numpy as np


def _axis_difference(z: np.ndarray, axis: int) -> np.ndarray:
    """Elevation change across one cell along `axis`, as SAGA's Get_Gradient takes it.

    Central difference (z[+1] − z[−1]) / 2 where both neighbours are valid; one-sided where
    only one is (grid edge, nodata beside); 0 where neither is. Values at NaN cells are
    meaningless (the central difference skips the centre): callers mask them.
    """
    zt = z if axis == 0 else z.T  # work along the first axis of a view
    n = zt.shape[0]
    diff = np.zeros_like(zt)
    if n < 2:
        diff[np.isnan(zt)] = np.nan
        return diff if axis == 0 else diff.T
    diff[1:-1] = (zt[2:] - zt[:-2]) / 2
    diff[0] = zt[1] - zt[0]
    diff[-1] = zt[-1] - zt[-2]
    # Central differences are NaN beside nodata: redo only those cells with the fallbacks
    # (one-sided, then 0), so a raster without holes pays for slicing alone.
    redo = np.isnan(diff) & ~np.isnan(zt)
    if redo.any():
        i, j = np.nonzero(redo)
        centre = zt[i, j]
        after = np.where(i + 1 < n, zt[np.minimum(i + 1, n - 1), j] - centre, np.nan)
        before = np.where(i > 0, centre - zt[np.maximum(i - 1, 0), j], np.nan)
        # Both neighbours valid never lands here: then the central difference was finite.
        diff[i, j] = np.where(np.isnan(after), np.where(np.isnan(before), 0.0, before), after)
    return diff if axis == 0 else diff.T


def slope_gradient(z: np.ndarray, dx_m: float, dy_m: float) -> np.ndarray:
    """tan(slope): the gradient's magnitude from 4-neighbour finite differences (SAGA's rule).

    Cheaper than :func:`slope_degrees` where only comparisons with a threshold are needed
    (tan is monotonic). NaN cells stay NaN.
    """
    z = np.asarray(z, dtype=np.float64)
    gradient = np.hypot(_axis_difference(z, 1) / dx_m, _axis_difference(z, 0) / dy_m)
    gradient[np.isnan(z)] = np.nan
    return gradient


def slope_degrees(z: np.ndarray, dx_m: float, dy_m: float) -> np.ndarray:
    """Slope in degrees from 4-neighbour finite differences (SAGA's default gradient).

    `dx_m`, `dy_m` are the ground cell width and height in metres. NaN cells stay NaN.
    """
    return np.degrees(np.arctan(slope_gradient(z, dx_m, dy_m)))
