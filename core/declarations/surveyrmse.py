"""demsr:surveyrmse declared: accuracy of DEMs against survey points (no large-area kernel).

New parameters go into `PARAMS` in the order the dialog shows them; `SPEC` is built from it."""
from __future__ import annotations

from ..params import (
    ENUM,
    FIELD,
    HTML_OUT,
    NUMBER_OUT,
    POINTS,
    POINTS_OUT,
    RASTERS,
    STRING,
    TABLE_OUT,
    AlgorithmSpec,
    Choice,
    Output,
    Param,
)
from ..survey import sampling, vertical

# Stable short names of vertical.VERTICAL_CHOICES, in their order (option numbers).
VERTICAL_NAMES = ("declared", "ellipsoid", "egm96", "egm2008", "code")

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
    *(param for name, label, whose in (
        ("DEMS", "DEMs' vertical reference", "the DEMs'"),
        ("POINTS", "Survey points' vertical reference", "the survey points'"))
      for param in (
          Param(f"{name}_VERTICAL", ENUM, label,
                f"what {whose} heights are measured from. As declared: the data's compound or "
                "3D CRS, else the other side's reference (the log says which was assumed).",
                default=VERTICAL_NAMES[0], advanced=True, optional=True,
                choices=tuple(Choice(n, c.label)
                              for n, c in zip(VERTICAL_NAMES, vertical.VERTICAL_CHOICES))),
          Param(f"{name}_VERTICAL_CRS", STRING, f"Code of {whose} vertical CRS",
                f"with the last option of {name}_VERTICAL: any vertical CRS, e.g. EPSG:5703 "
                "(NAVD88 height).", default="", advanced=True, optional=True,
                default_text="empty"),
      )),
)

OUTPUTS = (
    Output("OUTPUT_RESIDUALS", POINTS_OUT, "Residuals",
           "the points with every input attribute plus, per DEM, the sampled value (_z), the "
           "residual DEM − survey (_e) and its status (_s); the table's prefix column says "
           "which prefix is which DEM (field names keep up to 28 characters of the DEM's name, 7 "
           "in a shapefile). Loaded in QGIS, the points are coloured by the first DEM's residual.",
           optional=True),
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
        "95th percentile of |e|), max |e| and NSSDA 95 % = 1.96 × RMSE (FGDC-STD-007.3-1998).\n\n"
        "Vertical references: GNSS and ICESat-2 heights are above the WGS84 ellipsoid, while "
        "SRTM, NASADEM and ASTER GDEM heights are above the EGM96 geoid and Copernicus GLO-30 "
        "above EGM2008; the two differ by up to about 100 m. The survey heights are transformed "
        "into each DEM's vertical reference before the residuals are computed. A geoid grid "
        "that is not installed stops the run with its name, never a silent zero correction. "
        "The log, the table and the report give both references and the correction applied; "
        "the residual layer adds the survey height in the DEM's reference (_h)."
    ),
    params=PARAMS,
    outputs=OUTPUTS,
)
