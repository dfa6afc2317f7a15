"""Accuracy of a DEM against survey points (DESIGN.md §6).

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
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .errors import DemError
from .sampling import EDGE, NO_ELEVATION, NO_POSITION, NODATA, OUTSIDE, SAMPLED, Sample

NMAD_FACTOR = 1.4826
NSSDA_FACTOR = 1.9600


@dataclass(frozen=True)
class AccuracyStats:
    """Statistics of one DEM's residuals (metres, or the DEM's vertical unit)."""

    n_points: int
    n_used: int
    n_skipped: int
    n_outside: int
    n_edge: int
    n_nodata: int
    n_no_elevation: int
    n_no_position: int
    me: float
    mae: float
    rmse: float
    sd: float
    nmad: float
    le90: float
    le95: float
    max_abs: float
    nssda95: float

    def as_dict(self) -> dict:
        return asdict(self)


# Column order and labels of the table and the report (field name, label).
COLUMNS = (
    ("n_points", "N points"),
    ("n_used", "N used"),
    ("n_skipped", "N skipped"),
    ("n_outside", "outside"),
    ("n_edge", "edge"),
    ("n_nodata", "nodata"),
    ("n_no_elevation", "no elevation"),
    ("n_no_position", "no position"),
    ("me", "ME"),
    ("mae", "MAE"),
    ("rmse", "RMSE"),
    ("sd", "SD"),
    ("nmad", "NMAD"),
    ("le90", "LE90"),
    ("le95", "LE95"),
    ("max_abs", "max |e|"),
    ("nssda95", "NSSDA 95 %"),
)


@dataclass
class Comparison:
    """One DEM against the survey: per-point sampled value, residual, reason; and statistics."""

    predicted: np.ndarray
    residuals: np.ndarray  # NaN where the point was not used
    reason: np.ndarray
    stats: AccuracyStats


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
    return Comparison(sample.values, residuals, reason, stats)


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
