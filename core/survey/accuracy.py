"""Accuracy of a DEM against survey points (docs/DESIGN.md §6).

Residual e = DEM − survey (positive: the DEM is too high). Per DEM:

* N used, N skipped, and the skipped split by reason (outside, edge, nodata, no elevation,
  no position) — a skipped point is always counted, never silently dropped;
* ME (bias) = mean(e), MAE = mean(|e|), RMSE = sqrt(mean(e²)), max |e|;
* SD = **sample** standard deviation (divisor n − 1): the check points are a sample of the DEM's
  error population and SD estimates its spread (ASPRS 2014, Höhle & Höhle 2009 use n − 1). It is
  therefore *not* exactly sqrt(RMSE² − ME²), which uses the divisor n. One point → SD undefined
  (NaN, with a warning from the caller);
* NMAD = 1.4826 · median(|e − median(e)|) (Höhle & Höhle 2009), a robust SD;
* LE90, LE95 = 90th and 95th percentiles of |e|, defined by linear interpolation between order
  statistics (Hyndman & Fan type 7 — numpy's default, Excel PERCENTILE.INC): with the n sorted
  |e| values v₀ ≤ … ≤ v₍ₙ₋₁₎, the p-th percentile is v at rank h = (n − 1)·p/100, interpolated
  between v⌊h⌋ and v⌈h⌉;
* NSSDA vertical accuracy at 95 % = 1.9600 · RMSE (FGDC-STD-007.3-1998, normal errors, no bias).

Zero usable points raise a DemError: no statistic is ever NaN because nothing was there to count.

`assess` is the whole assessment of one or more DEMs, QGIS-free: reprojection once per CRS,
the survey heights brought into each DEM's vertical reference (core.survey.vertical), sampling with
a plan shared by DEMs on one grid, `compare`, and the log. demsr:surveyrmse and
benchmarks/bench_surveyrmse.py both call it.
"""
from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, make_dataclass
from typing import NamedTuple

import numpy as np

from ..errors import DemError
from ..grid.progress import Monitor
from ..grid.raster import read_info
from . import vertical
from .reproject import reproject_points, same_crs
from .sampling import (
    EDGE,
    NO_ELEVATION,
    NO_POSITION,
    NODATA,
    OUTSIDE,
    SAMPLED,
    Sample,
    check_method,
    plan_sampling,
    sample_raster,
)

NMAD_FACTOR = 1.4826
NSSDA_FACTOR = 1.9600


class Statistic(NamedTuple):
    """One statistic of a DEM against the survey, as every output shows it."""

    attribute: str  # the AccuracyStats attribute (and as_dict key)
    field: str  # its table field: ≤ 10 characters, so a shapefile (DBF) keeps the name
    label: str  # its column heading in the HTML report
    kind: type  # int: a number of points; float: in the DEM's vertical unit


# The one list of the statistics, in output order: AccuracyStats, the table and the report
# all follow it.
STATISTICS = (
    Statistic("n_points", "n_points", "N points", int),
    Statistic("n_used", "n_used", "N used", int),
    Statistic("n_skipped", "n_skipped", "N skipped", int),
    Statistic("n_outside", "n_outside", "outside", int),
    Statistic("n_edge", "n_edge", "edge", int),
    Statistic("n_nodata", "n_nodata", "nodata", int),
    Statistic("n_no_elevation", "n_no_elev", "no elevation", int),
    Statistic("n_no_position", "n_no_pos", "no position", int),
    Statistic("me", "me", "ME", float),
    Statistic("mae", "mae", "MAE", float),
    Statistic("rmse", "rmse", "RMSE", float),
    Statistic("sd", "sd", "SD", float),
    Statistic("nmad", "nmad", "NMAD", float),
    Statistic("le90", "le90", "LE90", float),
    Statistic("le95", "le95", "LE95", float),
    Statistic("max_abs", "max_abs", "max |e|", float),
    Statistic("nssda95", "nssda95", "NSSDA 95 %", float),
)

AccuracyStats = make_dataclass(
    "AccuracyStats",
    [(st.attribute, st.kind) for st in STATISTICS],
    frozen=True,
    namespace={
        "__doc__": "Statistics of one DEM's residuals (metres, or the DEM's vertical unit); "
                   "one attribute per entry of STATISTICS, in its order.",
        "as_dict": lambda self: asdict(self),
    },
)


@dataclass
class Comparison:
    """One DEM against the survey: per-point sampled value, residual, reason; and statistics."""

    predicted: np.ndarray
    residuals: np.ndarray  # NaN where the point was not used
    reason: np.ndarray
    stats: AccuracyStats
    observed: np.ndarray | None = None  # the survey heights compared, in the DEM's reference
    vertical: vertical.VerticalLink | None = None  # set by assess


def percentile(values: np.ndarray, q) -> np.ndarray:
    """Percentiles by linear interpolation between order statistics (type 7), see the module."""
    return np.percentile(values, q)


def residual_statistics(e: np.ndarray) -> dict:
    """ME … NSSDA of a 1-D array of used residuals (all finite, at least one)."""
    e = np.asarray(e, dtype=np.float64).ravel()
    n = e.size
    if n == 0:
        raise DemError("No usable point: the statistics cannot be computed.")
    if not np.all(np.isfinite(e)):
        raise ValueError("residual_statistics expects finite residuals only")
    abs_e = np.abs(e)
    me = float(e.mean())
    rmse = float(np.sqrt(np.mean(e * e)))
    median = np.median(e)
    le90, le95 = percentile(abs_e, [90.0, 95.0])
    return {
        "me": me,
        "mae": float(abs_e.mean()),
        "rmse": rmse,
        "sd": float(e.std(ddof=1)) if n > 1 else float("nan"),
        "nmad": float(NMAD_FACTOR * np.median(np.abs(e - median))),
        "le90": float(le90),
        "le95": float(le95),
        "max_abs": float(abs_e.max()),
        "nssda95": NSSDA_FACTOR * rmse,
    }


def compare(sample: Sample, observed, name: str = "the DEM") -> Comparison:
    """Residuals DEM − survey and their statistics; `observed` NaN = no survey elevation.

    A point with no survey elevation is counted as NO_ELEVATION whatever the DEM says, since it
    could never be used; the sampled value is kept for the residual layer.
    """
    observed = np.asarray(observed, dtype=np.float64).ravel()
    if observed.shape != sample.values.shape:
        raise DemError("The survey elevations and the points do not have the same length.")
    reason = sample.reason.copy()
    reason[~np.isfinite(observed) & (reason != NO_POSITION)] = NO_ELEVATION
    used = reason == SAMPLED
    residuals = np.full(observed.shape, np.nan)
    residuals[used] = sample.values[used] - observed[used]
    counts = np.bincount(reason, minlength=NO_POSITION + 1)
    n_used = int(counts[SAMPLED])
    if n_used == 0:
        raise DemError(
            f"No survey point can be used against {name}: {observed.size} point(s), "
            f"{counts[OUTSIDE]} outside the raster, {counts[EDGE]} too near its edge for "
            f"{sample.method} sampling, {counts[NODATA]} on nodata, {counts[NO_ELEVATION]} "
            f"without a survey elevation, {counts[NO_POSITION]} without a position. Check "
            "that the points and the DEM overlap and that their CRSs are set correctly."
        )
    stats = AccuracyStats(
        n_points=int(observed.size),
        n_used=n_used,
        n_skipped=int(observed.size - n_used),
        n_outside=int(counts[OUTSIDE]),
        n_edge=int(counts[EDGE]),
        n_nodata=int(counts[NODATA]),
        n_no_elevation=int(counts[NO_ELEVATION]),
        n_no_position=int(counts[NO_POSITION]),
        **residual_statistics(residuals[used]),
    )
    return Comparison(sample.values, residuals, reason, stats, observed)


def skipped_ids(ids, reason: np.ndarray, limit: int | None = None) -> dict[int, tuple[list, int]]:
    """For each skip reason: (the first `limit` ids, the total count), for the log."""
    ids = np.asarray(ids)
    out = {}
    for code in np.unique(reason):
        if code == SAMPLED:
            continue
        sel = ids[reason == code]
        out[int(code)] = ((sel if limit is None else sel[:limit]).tolist(), int(sel.size))
    return out


# Assessing DEMs against one survey ------------------------------------------------------------

LOG_IDS = 100  # ids listed per DEM and skip reason; the residual layer marks every point

SKIP_TEXT = {  # how the log words each reason a point was skipped
    OUTSIDE: "outside the raster",
    EDGE: "too near the raster's edge for the sampling stencil",
    NODATA: "with nodata in the sampling stencil",
    NO_ELEVATION: "without a survey elevation (NULL/NaN)",
    NO_POSITION: "without a single position (empty or multi-part geometry, or reprojection "
                 "failed)",
}


@dataclass(frozen=True)
class DemSource:
    """A DEM to assess, and how the survey points reach its CRS."""

    path: str
    name: str = ""  # for messages; the file name when empty
    crs_wkt: str | None = None  # None: the file's own CRS; "": none (coordinates used as given)
    operation: str = ""  # PROJ pipeline from the points' CRS (QGIS's choice); "": PROJ's default
    inverse: bool = False  # the operation is written from this CRS to the points' CRS
    vertical: str = ""  # its heights' reference stated by code (EPSG:5773); "": as declared

    @property
    def label(self) -> str:
        return self.name or os.path.basename(self.path)


def height_references(dems, points_crs_wkt: str = "", points_vertical: str = "") -> list:
    """Per DEM (DemSource): (the survey heights' reference, the DEM's, the assumption made or
    ""), each a vertical.HeightReference or None when neither side knows its own.

    A stated reference (`points_vertical`, DemSource.vertical: a vertical CRS code such as
    EPSG:5773, or a 3D geographic one such as EPSG:4979 for ellipsoidal heights) comes first,
    then the one the CRS declares (the DEM's layer CRS, else its file's: GeoTIFF vertical keys
    are read as a compound CRS), else the other side's. Cheap: demsr:surveyrmse calls it before
    the work to check the parameters and lay out its outputs.
    """
    points = vertical.reference(points_crs_wkt, points_vertical, "the survey points")
    out = []
    for dem in dems:
        file_crs = read_info(dem.path).crs_wkt
        crs = file_crs if dem.crs_wkt is None else dem.crs_wkt
        if dem.vertical:
            own = vertical.stated(dem.vertical, crs or file_crs, dem.label)
        else:
            own = vertical.declared(crs, "the DEM") or vertical.declared(file_crs, "the DEM")
        out.append(vertical.pair(points, own, dem.label))
    return out


def assess(dems, x, y, observed, method: str = "bilinear", points_crs_wkt: str = "",
           ids=None, monitor: Monitor | None = None,
           points_vertical: str = "") -> list[Comparison]:
    """Each DEM (DemSource) against the survey points: one Comparison per DEM, in order.

    x, y are in the points' CRS (points_crs_wkt, "" when unknown) and are reprojected once per
    distinct DEM CRS (and operation); DEMs on the same grid in the same CRS share one sampling
    plan, so the points are sorted into blocks once. The survey heights `observed` are brought
    into each DEM's vertical reference (`height_references`; `points_vertical` states the
    points', e.g. "EPSG:4979" for GNSS or ICESat-2 ellipsoidal heights) by PROJ, never with a
    silent zero correction; each Comparison keeps the heights it compared and a VerticalLink.
    Each DEM's references, correction, statistics and skipped points, by `ids` (default
    0 … n − 1), go to the monitor's log.
    """
    check_method(method)
    if not dems:
        raise DemError("Give at least one DEM.")
    monitor = monitor or Monitor()
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    observed = np.asarray(observed, dtype=np.float64).ravel()
    ids = np.arange(x.size) if ids is None else np.asarray(ids)
    references = height_references(dems, points_crs_wkt, points_vertical)
    heights = {}  # (survey reference, DEM reference) → the survey heights in the DEM's
    horizontal_points_crs = vertical.horizontal_wkt(points_crs_wkt)
    positions = {}  # CRS group key → the point coordinates in that CRS
    plans = []  # (CRS group key, SamplingPlan)
    comparisons = []
    for k, dem in enumerate(dems):
        part = monitor.part(k / len(dems), (k + 1) / len(dems))
        info = read_info(dem.path)
        crs = vertical.horizontal_wkt(info.crs_wkt if dem.crs_wkt is None else dem.crs_wkt)
        if not crs:
            monitor.warn(f"{dem.label} has no CRS: the point coordinates are used as they are, "
                         "as if they were in the raster's grid.")
        key = _crs_group(positions, crs, dem)
        if key not in positions:
            positions[key] = _points_in_crs(x, y, horizontal_points_crs, crs, dem,
                                            part.part(0.0, 0.2))
        heights_k, link = _survey_heights(x, y, observed, points_crs_wkt, references[k],
                                          heights, part.part(0.2, 0.3))
        if link.note:
            monitor.warn(link.note)
        monitor.info(vertical.link_text(dem.label, link))
        px, py = positions[key]
        plan = next((p for g, p in plans if g == key and p.fits(info)), None)
        if plan is None:
            plan = plan_sampling(info, px, py, method)
            plans.append((key, plan))
        sample = sample_raster(dem.path, px, py, method, monitor=part.part(0.3, 1.0), plan=plan)
        comparison = compare(sample, heights_k, name=dem.label)
        comparison.vertical = link
        log_comparison(dem.label, comparison, ids, monitor)
        comparisons.append(comparison)
    return comparisons


def _survey_heights(x, y, observed, points_crs_wkt: str, references: tuple, done: dict,
                    monitor: Monitor) -> tuple:
    """The survey heights in one DEM's reference (transformed once per pair of references,
    `done` caching them) and the VerticalLink that says how."""
    points, dem, note = references
    if points is None or vertical.same_reference(points, dem):
        return observed, vertical.correction_link(points, dem, note, observed)
    key = (points.crs, points.feed, dem.crs)
    if key not in done:
        done[key] = vertical.transform_heights(x, y, observed, points_crs_wkt, points, dem,
                                               monitor)
    moved = done[key]
    lost = int(np.sum(np.isfinite(observed) & ~np.isfinite(moved)))
    if lost:
        monitor.warn(f"{lost} survey height(s) could not be transformed from {points.label} to "
                     f"{dem.label} (outside the transformation's area) and count as without a "
                     "survey elevation.")
    return moved, vertical.correction_link(points, dem, note, observed, moved)


def _crs_group(groups, crs: str, dem: DemSource) -> tuple:
    """The key of the group of DEMs whose CRS (and operation) `dem` shares, or a new key."""
    for key in groups:
        if key[1:] == (dem.operation, dem.inverse) and (
                key[0] == crs or (key[0] and crs and same_crs(key[0], crs))):
            return key
    return (crs, dem.operation, dem.inverse)


def _points_in_crs(x, y, points_crs: str, crs: str, dem: DemSource, monitor: Monitor):
    """The points in `crs`: reprojected, or as they are when a CRS is unknown or both agree."""
    if not crs:
        return x, y
    if not points_crs:
        monitor.warn(f"The survey points have no CRS: their coordinates are taken to be in "
                     f"the CRS of {dem.label}.")
        return x, y
    if same_crs(points_crs, crs):
        return x, y
    return reproject_points(x, y, points_crs, crs, dem.operation, dem.inverse, monitor)


def log_comparison(name: str, comparison: Comparison, ids, monitor: Monitor) -> None:
    """One DEM's statistics, and the ids of its skipped points by reason (LOG_IDS at most)."""
    st = comparison.stats
    monitor.info(
        f"{name}: N used {st.n_used} of {st.n_points}, ME {st.me:.3f}, MAE {st.mae:.3f}, "
        f"RMSE {st.rmse:.3f}, SD {st.sd:.3f}, NMAD {st.nmad:.3f}, LE90 {st.le90:.3f}, "
        f"LE95 {st.le95:.3f}, max |e| {st.max_abs:.3f}, NSSDA 95 % {st.nssda95:.3f}")
    if st.n_used == 1:
        monitor.warn(f"{name}: only one usable point; SD is undefined and left empty.")
    for code, (listed, total) in skipped_ids(ids, comparison.reason, LOG_IDS).items():
        more = (f" … and {total - len(listed)} more (see the _s field)"
                if total > len(listed) else "")
        monitor.warn(f"{name}: {total} point(s) skipped {SKIP_TEXT[code]}: ids "
                     f"{', '.join(str(i) for i in listed)}{more}")


# What field_prefixes keeps free after each prefix: the prefix itself and the residual layer's
# <prefix>_z, _e, _s and _h (the survey height in the DEM's vertical reference).
FIELD_SUFFIXES = ("", "_z", "_e", "_s", "_h")
# Longest prefix per format of the residual layer: a shapefile's DBF keeps 10 characters of a
# field name (prefix + "_z"); elsewhere 28 keeps "<prefix>_z" within MapInfo's 31 characters and
# well within GeoPackage, memory layers and PostGIS (63).
SHAPEFILE_PREFIX_LENGTH = 7
PREFIX_LENGTH = 28


def prefix_length(destination: str) -> int:
    """The longest field prefix the residual layer's format keeps unchanged: short only for a
    shapefile (a .shp or .dbf destination), readable for everything else."""
    shapefile = destination.lower().endswith((".shp", ".dbf"))
    return SHAPEFILE_PREFIX_LENGTH if shapefile else PREFIX_LENGTH


def field_prefixes(names, taken, max_length: int = SHAPEFILE_PREFIX_LENGTH) -> list:
    """A prefix per DEM for its residual-layer fields <prefix>_z, _e, _s (and _h).

    Derived from the layer name: ASCII letters, digits and '_' only, at most `max_length`
    characters (prefix_length: 7 for a shapefile, so every field name is ≤ 10 characters and
    survives the DBF unchanged). Collisions — with another DEM or with an input field, compared
    case-insensitively as DBF and GeoPackage do — are resolved by replacing the tail with a
    number (srtm_ut, srtm_u1, srtm_u2, …).
    """
    used = {t.lower() for t in taken}
    out = []
    for name in names:
        base = re.sub(r"[^A-Za-z0-9_]", "_", name.encode("ascii", "ignore").decode()).strip("_")
        base = (base or "dem")[:max_length]
        if base[0].isdigit():
            base = ("d" + base)[:max_length]
        candidate, i = base, 0
        while any(f"{candidate}{s}".lower() in used for s in FIELD_SUFFIXES):
            i += 1
            candidate = base[: max_length - len(str(i))] + str(i)
        used.update(f"{candidate}{s}".lower() for s in FIELD_SUFFIXES)
        out.append(candidate)
    return out
