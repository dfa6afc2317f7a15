"""Point coordinates from one CRS to another, vectorised with PROJ (through osr), QGIS-free.

Coordinates are in the traditional GIS order, x = easting or longitude, y = northing or
latitude, whatever axis order the CRS's authority declares: the order QGIS hands coordinates
out in. A point PROJ cannot transform (outside the projection's domain, non-finite input)
comes back as NaN, so the sampler can count it as having no position.
"""
from __future__ import annotations

import numpy as np
from osgeo import gdal, osr

from ..errors import DemError
from ..grid.progress import Monitor
from ..grid.raster import spatial_reference

CHUNK = 100_000  # points per PROJ call: osr returns a list of tuples, so memory stays bounded
_SPLIT = 16  # how many pieces a call is split into when one of its points fails




def same_crs(a_wkt: str, b_wkt: str) -> bool:
    """Whether two CRS definitions describe the same CRS (so no reprojection is needed)."""
    if a_wkt == b_wkt:
        return True
    return bool(spatial_reference(a_wkt).IsSame(spatial_reference(b_wkt)))


def _transformation(src_wkt: str, dst_wkt: str, operation: str = "",
                    inverse: bool = False) -> osr.CoordinateTransformation:
    try:
        if operation:
            # No CRS objects: the pipeline is run exactly as written, with no axis swap.
            options = osr.CoordinateTransformationOptions()
            options.SetOperation(operation, inverse)
            ct = osr.CoordinateTransformation(None, None, options)
        else:
            ct = osr.CoordinateTransformation(spatial_reference(src_wkt),
                                              spatial_reference(dst_wkt))
    except (RuntimeError, TypeError) as err:
        ct, reason = None, f" ({err})"
    else:
        reason = ""
    if ct is None or not ct.this:  # without osr exceptions a failure is an empty proxy
        what = f"the operation '{operation}'" if operation else "a transformation"
        raise DemError(f"PROJ cannot create {what} between the survey points' CRS and the "
                       f"DEM's{reason}.")
    return ct


def _transform_block(ct: osr.CoordinateTransformation, xy: np.ndarray) -> np.ndarray:
    """Transformed coordinates, as many columns as `xy` has (x, y or x, y, z), NaN rows where
    the point cannot be transformed."""
    try:
        out = np.asarray(ct.TransformPoints(xy), dtype=np.float64)[:, :xy.shape[1]]
    except RuntimeError:
        # With osr exceptions on (core.grid.raster turns them on), one failing point fails the whole
        # call: split it until the failing points stand alone.
        if len(xy) == 1:
            return np.full((1, xy.shape[1]), np.nan)
        return np.vstack([_transform_block(ct, part)
                          for part in np.array_split(xy, min(len(xy), _SPLIT))])
    out[~np.isfinite(out).all(axis=1)] = np.nan  # without exceptions PROJ marks failures inf
    return out


def _transform(ct: osr.CoordinateTransformation, x: np.ndarray, y: np.ndarray,
               monitor: Monitor) -> tuple[np.ndarray, np.ndarray]:
    out = np.full((x.size, 2), np.nan)
    todo = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
    gdal.PushErrorHandler("CPLQuietErrorHandler")  # failures are counted, not printed
    try:
        for start in range(0, todo.size, CHUNK):
            monitor.check()
            sel = todo[start:start + CHUNK]
            out[sel] = _transform_block(ct, np.column_stack([x[sel], y[sel]]))
            monitor.report(min(start + CHUNK, todo.size) / todo.size)
    finally:
        gdal.PopErrorHandler()
    return out[:, 0], out[:, 1]


def reproject_points(x, y, src_wkt: str, dst_wkt: str, operation: str = "",
                     inverse: bool = False,
                     monitor: Monitor | None = None) -> tuple[np.ndarray, np.ndarray]:
    """x, y (traditional GIS order) from the CRS src_wkt to dst_wkt; NaN where not possible.

    `operation`: a PROJ pipeline in traditional GIS order, e.g. the one a QGIS transform
    context chose (a datum transformation the user picked), run as written, or backwards when
    `inverse`. Points it cannot transform are retried with PROJ's default operation between
    the two CRSs, as QGIS falls back; so is every point, with a warning, when PROJ cannot create
    the operation at all (a grid it needs is not installed). Without it, PROJ's default
    operation is used. CRSs may be WKT or anything osr's SetFromUserInput reads ("EPSG:32644").
    """
    monitor = monitor or Monitor()
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise DemError("The x and y coordinates do not have the same length.")
    if not operation:
        return _transform(_transformation(src_wkt, dst_wkt), x, y, monitor)
    try:
        chosen = _transformation(src_wkt, dst_wkt, operation, inverse)
    except DemError as err:
        if not (src_wkt and dst_wkt):
            raise
        monitor.warn(f"{err} PROJ's default transformation between the two CRSs is used "
                     "instead, as QGIS does when a datum transformation's grid is missing; "
                     "heights may be off by up to the datum shift.")
        return _transform(_transformation(src_wkt, dst_wkt), x, y, monitor)
    tx, ty = _transform(chosen, x, y, monitor.part(0.0, 0.9))
    retry = np.flatnonzero(np.isnan(tx) & np.isfinite(x) & np.isfinite(y))
    if retry.size and src_wkt and dst_wkt:
        tx[retry], ty[retry] = _transform(_transformation(src_wkt, dst_wkt), x[retry],
                                          y[retry], monitor.part(0.9, 1.0))
    return tx, ty
