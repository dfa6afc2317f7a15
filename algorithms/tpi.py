"""demsr:tpi — topographic position index with square, circle or annulus neighbourhoods."""
from qgis.core import (
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
)

from ..core import tpi as core_tpi
from .base import DemAlgorithm
from .engine import ENGINE_HELP, add_engine_parameter, engine_of, run_chunked
from .styling import TpiStyler

SHAPES = list(core_tpi.SHAPES)
UNITS = list(core_tpi.UNITS)


def no_crs_note(units: str) -> str:
    """What radii mean on a raster without CRS (shared by TPI and landforms)."""
    if units == "cells":
        return "Radii are in cells."
    return ("Radii in map units are taken in the geotransform's own units, whatever they are "
            "(no CRS says); give them in cells if that is not what you mean.")


class TpiAlgorithm(DemAlgorithm):
    ALG_ID = "tpi"
    DISPLAY_NAME = "Topographic position index (TPI)"
    GROUP = "terrain"
    ICON = "tpi.svg"
    SHORT = "Elevation minus the mean of a square, circle or annulus around each cell."
    TAGS = ("tpi", "topographic position index", "geomorphology", "terrain", "relief")
    HELP = (
        "TPI = elevation minus the mean elevation of the neighbourhood (Guisan et al. 1999, "
        "Weiss 2001). Positive on ridges, negative in valleys, near 0 on flats and even slopes.\n\n"
        "SHAPE: square ((2r+1)×(2r+1) cells), circle (cells whose centre lies within r, centre "
        "included, as SAGA and ArcGIS) or annulus (the ring INNER_RADIUS ≤ d ≤ RADIUS).\n"
        "UNITS: radii in cells, or in map units. For a geographic CRS (degrees) map units mean "
        "METRES, converted at the raster's central latitude; cells that are not square on the "
        "ground then give an elliptical window in cells that is circular on the ground.\n"
        "Nodata cells are left out of every mean; near the raster edge only the cells inside the "
        "grid are averaged. The cost per cell does not depend on the radius.\n"
        "STANDARDIZE: (TPI − mean) / sd over the whole valid raster (population sd, SAGA's "
        "convention); a flat raster (sd = 0) gives 0 everywhere.\n"
        "Output: Float32 GeoTIFF, nodata −9999.\n"
        "Without a CRS, map units are the geotransform's own units.\n"
        "Guisan, Weiss and Weiss (1999), GLM versus CCA spatial modeling of plant species "
        "distribution, Plant Ecology 143. Weiss (2001), Topographic position and landforms "
        "analysis, poster, ESRI User Conference, San Diego."
    )

    HELP += ENGINE_HELP

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS's name)
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", self.tr("DEM")))
        self.addParameter(QgsProcessingParameterNumber(
            "RADIUS", self.tr("Radius (outer radius for an annulus)"),
            QgsProcessingParameterNumber.Double, 2.0, minValue=0.0))
        self.addParameter(QgsProcessingParameterNumber(
            "INNER_RADIUS", self.tr("Inner radius (annulus only)"),
            QgsProcessingParameterNumber.Double, 0.0, minValue=0.0))
        self.addParameter(QgsProcessingParameterEnum(
            "SHAPE", self.tr("Neighbourhood shape"), SHAPES, defaultValue=0))
        self.addParameter(QgsProcessingParameterEnum(
            "UNITS", self.tr("Radius units"), UNITS, defaultValue=0))
        self.addParameter(QgsProcessingParameterBoolean(
            "STANDARDIZE", self.tr("Standardise (mean 0, sd 1)"), False))
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT", self.tr("TPI")))
        add_engine_parameter(self)

    def run_core(self, parameters, context, monitor):
        shape = SHAPES[self.parameterAsEnum(parameters, "SHAPE", context)]
        units = UNITS[self.parameterAsEnum(parameters, "UNITS", context)]
        path, info = self.input_dem(parameters, "INPUT", context, monitor, no_crs_note(units))
        inner = self.parameterAsDouble(parameters, "INNER_RADIUS", context)
        if inner > 0 and shape != "annulus":
            monitor.warn("INNER_RADIUS only applies to the annulus; it is ignored.")
        if units == "map units" and info.is_geographic:
            monitor.info("Geographic CRS: radii in map units are read as metres.")
        nb = core_tpi.neighbourhood(
            shape, self.parameterAsDouble(parameters, "RADIUS", context), inner, units, info)
        output = self.output_path(parameters, "OUTPUT", context)
        standardise = self.parameterAsBoolean(parameters, "STANDARDIZE", context)
        engine = engine_of(self, parameters, context)
        if engine:
            stats = run_chunked("tpi", path, output, {
                "radius": self.parameterAsDouble(parameters, "RADIUS", context),
                "inner_radius": inner, "shape": shape, "units": units,
                "standardize": standardise}, engine, monitor).stats
        else:
            stats = core_tpi.tpi_raster(path, output, nb, standardise, monitor=monitor)
        spread = 2.5 if standardise else 2.5 * stats["sd"]
        self.style_on_load(context, output, TpiStyler(spread))
        return {"OUTPUT": output}
