"""Survey heights in a DEM's vertical reference, with PROJ through osr (QGIS-free).

A height means nothing without its reference: GNSS and ICESat-2 give heights above the WGS84
ellipsoid, SRTM, NASADEM and ASTER GDEM above the EGM96 geoid, Copernicus GLO-30 above EGM2008.
The two differ by the geoid undulation, −106 m to +85 m over the Earth, so the survey heights
are brought into each DEM's vertical reference before any residual is computed.

Each side's reference is, in order: the one a parameter states (`stated`: a vertical CRS such as
EPSG:5773, or a 3D geographic CRS such as EPSG:4979 for ellipsoidal heights); the one its CRS
declares (`declared`: a compound CRS, GeoTIFF vertical keys read by GDAL as one, or a 3D
geographic or projected CRS, whose third axis is an ellipsoidal height); else the other side's,
said in the log (`pair`). Neither side known: heights are compared as they come, also said.

PROJ is never allowed its "ballpark" fallback, which silently applies a zero correction when a
geoid grid is missing: a missing grid is an error that names the grid and how to install it
(`missing_grid_message`), and a transformation between two different references that changes
no height at all is refused as well (`transform_heights`).
"""
from __future__ import annotations

import math
import os
import sqlite3
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np
from osgeo import gdal, osr

from ..errors import DemError
from ..grid.progress import Monitor
from ..grid.raster import spatial_reference
from .reproject import CHUNK, _transform_block, reproject_points, same_crs


class VerticalChoice(NamedTuple):
    """One option of the parameters that state a vertical reference."""

    label: str
    code: str | None  # "": as declared; None: the code parameter's value


# The options of demsr:surveyrmse's DEMS_VERTICAL and POINTS_VERTICAL, in option order.
VERTICAL_CHOICES = (
    VerticalChoice("As declared by the data (else the same as the other side)", ""),
    VerticalChoice("WGS84 ellipsoidal height (EPSG:4979)", "EPSG:4979"),
    VerticalChoice("EGM96 height (EPSG:5773)", "EPSG:5773"),
    VerticalChoice("EGM2008 height (EPSG:3855)", "EPSG:3855"),
    VerticalChoice("Vertical CRS given by code", None),
)


def choice_code(option: int, code: str, name: str) -> str:
    """The reference an option of VERTICAL_CHOICES states ("" = as declared): `code` is the
    vertical CRS code the parameter `name`_CRS gives, used with the last option or alone."""
    code = (code or "").strip()
    if not 0 <= option < len(VERTICAL_CHOICES):
        raise DemError(f"{name}: {option} is not an accepted value; use 0 to "
                       f"{len(VERTICAL_CHOICES) - 1}.")
    fixed = VERTICAL_CHOICES[option].code
    if fixed is None and not code:
        raise DemError(f"{name} = {option} ({VERTICAL_CHOICES[option].label}) needs the code in "
                       f"{name}_CRS, e.g. EPSG:5703 for NAVD88 height.")
    if fixed and code:
        raise DemError(f"{name} = {option} ({fixed}) and {name}_CRS = {code} say two things: "
                       f"leave {name}_CRS empty or set {name} to {len(VERTICAL_CHOICES) - 1}.")
    return code or fixed


@dataclass(frozen=True)
class HeightReference:
    """What one side's heights are measured from.

    `crs` is a CRS whose third axis is that height (compound, or 3D geographic/projected) and
    `feed` the horizontal CRS its x, y are given in ("" = the layer's own coordinates, else a
    2D geographic CRS the points are first converted to)."""

    crs: str
    label: str  # e.g. "EGM96 height (EPSG:5773)"
    how: str  # "declared by …", "stated by a parameter", …
    feed: str = ""


@dataclass(frozen=True)
class VerticalLink:
    """How the survey heights reached one DEM's reference, for the log, table and report."""

    points: str  # the survey heights' reference and how it was known
    dem: str  # the DEM's
    transformed: bool  # whether PROJ transformed the heights
    note: str = ""  # the assumption made, if any
    mean: float = 0.0  # correction applied, metres (transformed − original height)
    min: float = 0.0
    max: float = 0.0


def _code(srs: osr.SpatialReference, node: str | None) -> str:
    name, code = srs.GetAuthorityName(node), srs.GetAuthorityCode(node)
    return f" ({name}:{code})" if name and code else ""


def horizontal_wkt(crs_wkt: str) -> str:
    """The horizontal part of a CRS (`crs_wkt` itself when it has no third axis)."""
    if not crs_wkt:
        return crs_wkt
    srs = spatial_reference(crs_wkt)
    if srs.IsCompound():
        srs.StripVertical()
    elif srs.GetAxesCount() == 3:
        srs.DemoteTo2D()
    else:
        return crs_wkt
    return srs.ExportToWkt(["FORMAT=WKT2_2018"])


def declared(crs_wkt: str, what: str) -> HeightReference | None:
    """The height reference a CRS declares: a compound CRS's vertical part, or the ellipsoid of
    a 3D geographic or projected CRS; None for a 2D CRS (or none)."""
    if not crs_wkt:
        return None
    srs = spatial_reference(crs_wkt)
    how = f"declared by {what}"
    if srs.IsCompound():
        name = srs.GetAttrValue("COMPD_CS|VERT_CS") or "unnamed vertical CRS"
        label = name + _code(srs, "COMPD_CS|VERT_CS")
        return HeightReference(crs_wkt, label, how)
    if srs.GetAxesCount() == 3 and (srs.IsGeographic() or srs.IsProjected()):
        label = f"{srs.GetAttrValue('GEOGCS') or srs.GetName()} ellipsoidal height" + _code(
            srs, None)
        return HeightReference(crs_wkt, label, how)
    return None


def stated(code: str, crs_wkt: str, what: str) -> HeightReference:
    """The height reference a parameter states for a layer whose CRS is `crs_wkt`: a vertical
    CRS (heights above a geoid or datum) or a 3D geographic CRS (ellipsoidal heights)."""
    try:
        srs = spatial_reference(code)
    except DemError:
        srs = None
    how = "stated by a parameter"
    if srs is not None and not crs_wkt:
        raise DemError(f"A vertical reference ({code}) is stated for {what}, which has no "
                       "CRS: set its CRS first.")
    if srs is not None and srs.IsVertical():
        compound = osr.SpatialReference()
        horizontal = spatial_reference(horizontal_wkt(crs_wkt))
        compound.SetCompoundCS(f"{horizontal.GetName()} + {srs.GetName()}", horizontal, srs)
        return HeightReference(compound.ExportToWkt(["FORMAT=WKT2_2018"]),
                               f"{srs.GetName()}{_code(srs, None)}", how)
    if srs is not None and srs.IsGeographic() and srs.GetAxesCount() == 3:
        flat = srs.Clone()
        flat.DemoteTo2D()
        return HeightReference(srs.ExportToWkt(["FORMAT=WKT2_2018"]),
                               f"{srs.GetName()} ellipsoidal height{_code(srs, None)}", how,
                               feed=flat.ExportToWkt(["FORMAT=WKT2_2018"]))
    raise DemError(f"'{code}' is neither a vertical CRS (heights above a geoid, e.g. EPSG:5773 "
                   "EGM96 height, EPSG:3855 EGM2008 height, EPSG:5703 NAVD88 height) nor a 3D "
                   "geographic CRS (ellipsoidal heights, e.g. EPSG:4979 WGS 84).")


def reference(crs_wkt: str, code: str, what: str) -> HeightReference | None:
    """One side's reference: the stated one when `code` is given, else the declared one."""
    return stated(code, crs_wkt, what) if code else declared(crs_wkt, what)


def same_reference(a: HeightReference, b: HeightReference) -> bool:
    """Whether heights in `a` and in `b` are the same numbers (no transformation needed)."""
    sa, sb = spatial_reference(a.crs), spatial_reference(b.crs)
    if sa.IsCompound() and sb.IsCompound():
        return bool(sa.IsSameVertCS(sb))
    if not sa.IsCompound() and not sb.IsCompound():  # both ellipsoidal
        return bool(sa.IsSameGeogCS(sb))
    return False


def pair(points: HeightReference | None, dem: HeightReference | None,
         dem_name: str) -> tuple[HeightReference | None, HeightReference | None, str]:
    """Both sides' references with the default applied (an unknown side takes the other's),
    and the sentence that says what was assumed ("" when nothing was)."""
    if points is None and dem is None:
        return None, None, (
            f"Neither the survey points nor {dem_name} declare a vertical reference and none "
            "is stated: the heights are compared as they are, assumed to share one. State "
            "them (DEMS_VERTICAL, POINTS_VERTICAL) if they do not: a geoid (EGM96, EGM2008) "
            "and the WGS84 ellipsoid differ by up to about 100 m.")
    if points is None:
        return replace(dem, how="assumed: the points declare none"), dem, (
            f"The survey points declare no vertical reference: their heights are assumed to be "
            f"in {dem_name}'s, {dem.label}. State it (POINTS_VERTICAL) if they are not, e.g. "
            "WGS84 ellipsoidal heights from GNSS or ICESat-2.")
    if dem is None:
        return points, replace(points, how="assumed: the DEM declares none"), (
            f"{dem_name} declares no vertical reference: its heights are assumed to be in the "
            f"survey points', {points.label}. State it (DEMS_VERTICAL) if they are not, e.g. "
            "EGM96 for SRTM, NASADEM and ASTER GDEM, EGM2008 for Copernicus GLO-30.")
    return points, dem, ""


def link_text(name: str, link: VerticalLink) -> str:
    """The log's line on one DEM's vertical references and the correction applied."""
    if link.transformed:
        change = (f"survey heights transformed by PROJ, correction mean {link.mean:+.3f} m, "
                  f"min {link.min:+.3f} m, max {link.max:+.3f} m")
    else:
        change = "no height correction applied"
    return f"{name}: DEM heights: {link.dem}; survey heights: {link.points}; {change}."


# PROJ ------------------------------------------------------------------------------------------

def _no_ballpark() -> osr.CoordinateTransformationOptions:
    options = osr.CoordinateTransformationOptions()
    options.SetBallparkAllowed(False)  # no silent zero correction where a grid is missing
    return options


def _vertical_code(srs: osr.SpatialReference) -> str:
    """The EPSG code of a compound CRS's vertical part ("" when it has none or no code)."""
    node = "COMPD_CS|VERT_CS"
    if srs.IsCompound() and srs.GetAuthorityName(node) == "EPSG":
        return srs.GetAuthorityCode(node) or ""
    return ""


def _search_paths() -> list[str]:
    return [p for p in (osr.GetPROJSearchPaths() or []) if p]


def _installed(names, paths) -> bool:
    return any(n and os.path.exists(os.path.join(p, n)) for n in names for p in paths)


def missing_grids(src_crs: str, dst_crs: str) -> list[tuple[str, str, str, str]]:
    """Grids PROJ's database lists for operations into or out of either side's vertical CRS
    that are not in PROJ's data folders: (grid, old name, operation, url), best first."""
    codes = {_vertical_code(spatial_reference(crs)) for crs in (src_crs, dst_crs)} - {""}
    paths = _search_paths()
    db = next((os.path.join(p, "proj.db") for p in paths
               if os.path.exists(os.path.join(p, "proj.db"))), None)
    if not codes or db is None:
        return []
    marks = ",".join("?" * len(codes))
    query = (
        "SELECT a.proj_grid_name, a.old_proj_grid_name, g.name, a.url "
        "FROM grid_transformation g JOIN grid_alternatives a "
        "ON a.original_grid_name = g.grid_name "
        "WHERE g.deprecated = 0 AND COALESCE(a.proj_grid_name, '') <> '' AND "
        f"((g.source_crs_auth_name = 'EPSG' AND g.source_crs_code IN ({marks})) OR "
        f"(g.target_crs_auth_name = 'EPSG' AND g.target_crs_code IN ({marks}))) "
        "ORDER BY g.accuracy")
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
            rows = con.execute(query, [*codes, *codes]).fetchall()
    except sqlite3.Error:
        return []
    out, seen = [], set()
    for grid, old, operation, url in rows:
        if grid in seen or _installed((grid, old), paths):
            continue
        seen.add(grid)
        out.append((grid, old or "", operation, url or ""))
    return out


def missing_grid_message(src: HeightReference, dst: HeightReference, reason: str = "") -> str:
    """Why heights cannot go from `src` to `dst`, naming the missing grid and how to get it."""
    grids = missing_grids(src.crs, dst.crs)
    head = (f"PROJ cannot transform heights from {src.label} to {dst.label} without a grid "
            "that is not installed; no zero correction is put in its place")
    paths = ", ".join(_search_paths()) or "none"
    if not grids:
        return (f"{head}{f' ({reason})' if reason else ''}. Install the geoid grid of the "
                f"transformation (PROJ data folders searched: {paths}).")
    named = "; ".join(f"{g}{f' (formerly {o})' if o else ''} for '{op}'"
                      for g, o, op, _ in grids)
    first = grids[0]
    where = f", or download {first[3]}" if first[3] else ""
    return (f"{head}. Missing: {named}. Install it with QGIS (Settings ▸ Options ▸ "
            "Transformations: add a transformation between the two CRSs, and the dialog "
            f"offers the grid's download), with PROJ's `projsync --file {first[0]}`, with the "
            "platform's PROJ data package (Debian and Ubuntu: proj-data, which holds EGM96 but "
            f"not EGM2008){where} into one of PROJ's data folders ({paths}).")


def _transformation(src: HeightReference, dst: HeightReference) -> osr.CoordinateTransformation:
    try:
        ct = osr.CoordinateTransformation(spatial_reference(src.crs), spatial_reference(dst.crs),
                                          _no_ballpark())
    except (RuntimeError, TypeError) as err:
        raise DemError(missing_grid_message(src, dst, str(err).split("\n")[0][:200])) from err
    if ct is None or not ct.this:  # without osr exceptions a failure is an empty proxy
        raise DemError(missing_grid_message(src, dst))
    return ct


def transform_heights(x, y, z, layer_crs: str, src: HeightReference, dst: HeightReference,
                      monitor: Monitor | None = None) -> np.ndarray:
    """Heights z of points x, y (in `layer_crs`, traditional GIS order) from reference `src`
    to `dst`; NaN where PROJ cannot transform a point. DemError when the transformation needs a
    grid that is missing, or when it changes no height at all (a zero correction in disguise).
    """
    monitor = monitor or Monitor()
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    z = np.asarray(z, dtype=np.float64).ravel()
    flat = horizontal_wkt(layer_crs)
    if src.feed and not same_crs(flat, src.feed):  # stated EPSG:4979: x, y become its lon, lat
        x, y = reproject_points(x, y, flat, src.feed)
    ct = _transformation(src, dst)
    out = np.full(z.shape, np.nan)
    todo = np.flatnonzero(np.isfinite(x) & np.isfinite(y) & np.isfinite(z))
    gdal.PushErrorHandler("CPLQuietErrorHandler")  # failures are counted, not printed
    try:
        for start in range(0, todo.size, CHUNK):
            monitor.check()
            sel = todo[start:start + CHUNK]
            out[sel] = _transform_block(ct, np.column_stack([x[sel], y[sel], z[sel]]))[:, 2]
            monitor.report(min(start + CHUNK, todo.size) / todo.size)
    finally:
        gdal.PopErrorHandler()
    done = np.isfinite(out)
    if todo.size and not done.any():
        raise DemError(missing_grid_message(src, dst, "no height could be transformed"))
    if done.any() and np.all(out[done] == z[done]):
        raise DemError(f"PROJ changed no height from {src.label} to {dst.label}, two different "
                       "references: that is a zero correction, refused. "
                       + missing_grid_message(src, dst))
    return out


def correction_link(points: HeightReference | None, dem: HeightReference | None, note: str,
                    original, transformed=None) -> VerticalLink:
    """The VerticalLink of one DEM: references, assumption and the correction's mean/min/max."""
    points_text = f"{points.label}, {points.how}" if points else "undeclared"
    dem_text = f"{dem.label}, {dem.how}" if dem else "undeclared"
    if transformed is None:
        return VerticalLink(points_text, dem_text, False, note)
    shift = np.asarray(transformed, float) - np.asarray(original, float)
    shift = shift[np.isfinite(shift)]
    if not shift.size:
        return VerticalLink(points_text, dem_text, True, note, math.nan, math.nan, math.nan)
    return VerticalLink(points_text, dem_text, True, note, float(shift.mean()),
                        float(shift.min()), float(shift.max()))
