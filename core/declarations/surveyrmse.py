"""demsr:surveyrmse declared: accuracy of DEMs against survey points (no large-area kernel).

New parameters go into `PARAMS` in the order the dialog shows them; `SPEC` is built from it."""
from __future__ import annotations

from .. import sampling
from ..params import (
    ENUM,
    FIELD,
    HTML_OUT,
    NUMBER_OUT,
    POINTS,
    POINTS_OUT,
    RASTERS,
    TABLE_OUT,
    AlgorithmSpec,
    Choice,
    Output,
    Param,
)

PARAMS = (
    Param("DEMS", RASTERS, "DEMs",
          "one or more rasters (band 1), each in its own CRS; the points are reprojected to "
          "each with the project's datum transformations.", option=False),
    Param("POINTS", POINTS, "Survey points",
          "the surveyed points, in any CRS.", option=False),
    Param("ELEVATION_FIELD", FIELD, "Survey elevation field (empty: geometry Z)",
          "a numeric field with the surveyed heights; empty uses the points' Z. Empty values "
          "are skipped and counted.", optional=True, parent="POINTS", option=False,
          default_text="the geometry's Z"),
    Param("SAMPLING", ENUM, "Sampling",
          "how a DEM is read at a point: nearest cell, bilinear (2 × 2 cells) or bicubic "
          "(4 × 4 cells). A point whose cells are not all valid is skipped and counted as "
          "outside, edge or nodata, never silently dropped.",
          default="bilinear", choices=tuple(Choice(m) for m in sampling.METHODS)),
)

OUTPUTS = (
    Output("OUTPUT_RESIDUALS", POINTS_OUT, "Residuals",
           "the points with every input attribute plus, per DEM, the sampled value (_z), the "
           "residual DEM − survey (_e) and its status (_s); the table's prefix column says "
           "which prefix is which DEM.", optional=True),
    Output("OUTPUT_TABLE", TABLE_OUT, "Accuracy table",
           "one row per DEM: points used and skipped, ME (bias), MAE, RMSE, SD, NMAD, LE90, "
           "LE95, max |e| and NSSDA 95 %.", optional=True),
    Output("OUTPUT_HTML", HTML_OUT, "Accuracy report",
           "the table, a residual histogram and an observed-versus-predicted plot per DEM.",
           optional=True),
    *(Output(key, NUMBER_OUT, f"{label} of the first DEM", "for models; always returned.")
      for key, label in (("RMSE", "RMSE"), ("ME", "ME (bias)"), ("MAE", "MAE"),
                         ("NMAD", "NMAD"))),
)

SPEC = AlgorithmSpec(
    id="surveyrmse",
    summary="RMSE, bias, NMAD, LE90 and more of one or more DEMs against survey points.",
    about=(
        "Samples each DEM at survey points and reports how well it fits, with the residual e = "
        "DEM − survey. Statistics per DEM: points used and skipped, ME (bias), MAE, RMSE, SD "
        "(sample, n − 1), NMAD = 1.4826 × median(|e − median(e)|), LE90 and LE95 (90th and "
        "95th percentile of |e|), max |e| and NSSDA 95 % = 1.96 × RMSE (FGDC-STD-007.3-1998)."
    ),
    params=PARAMS,
    outputs=OUTPUTS,
)
