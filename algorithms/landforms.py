"""demsr:landforms — Weiss TPI landforms (10 classes) or slope positions (6 classes)."""
from qgis.core import (
    QgsFeature,
    QgsFeatureSink,
    QgsFields,
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsWkbTypes,
)

from ..core import landforms as core_lf
from ..core import tpi as core_tpi
from .base import DemAlgorithm, OutputFiles
from .compat import new_field
from .engine import ENGINE_HELP, add_engine_parameter, engine_of, run_chunked
from .styling import LandformStyler
from .tpi import SHAPES, UNITS, no_crs_note

SCHEMES = list(core_lf.SCHEMES)
TABLE_FIELDS = (("code", "int"), ("class", "string"), ("cells", "int64"),
                ("area_km2", "double"), ("percent", "double"))


class LandformsAlgorithm(DemAlgorithm):
    ALG_ID = "landforms"
    DISPLAY_NAME = "TPI landform classification"
    GROUP = "terrain"
    ICON = "landforms.svg"
    SHORT = "Weiss's ten TPI landform classes or six slope positions, with area per class."
    TAGS = ("tpi", "landforms", "landform classification", "slope position", "weiss",
            "geomorphology", "saga")
    HELP = (
        "Landforms from the topographic position index (Weiss 2001), the same rules and codes "
        "as SAGA's 'TPI Based Landform Classification'.\n"
        "SCHEME 0 = landforms10: standardised TPI of a small (SN) and a large (LN) "
        "neighbourhood: 1 canyons (SN ≤ −1, LN ≤ −1), 2 midslope drainages, 3 upland "
        "drainages, 4 U-shaped valleys, 5 plains (−1 < SN, LN < 1, slope ≤ threshold), 6 open "
        "slopes (slope > threshold), 7 upper slopes, 8 local ridges, 9 midslope ridges, "
        "10 mountain tops.\n"
        "SCHEME 1 = slopeposition6: standardised TPI t of the large neighbourhood: 1 valley "
        "(t < −1), 2 lower slope, 3 flat (|t| ≤ 0.5, slope ≤ threshold), 4 middle slope, "
        "5 upper slope, 6 ridge (t > 1).\n"
        "SMALL_RADIUS, LARGE_RADIUS: the two neighbourhoods; the defaults are squares of 5×5 "
        "and 45×45 cells (radius 2 and 22). SHAPE: 0 = square, 1 = circle, 2 = annulus (no "
        "inner radius here, so the same as circle). UNITS: 0 = cells, 1 = map units; for a "
        "geographic CRS map units are METRES (converted at the raster's central latitude), "
        "without a CRS they are the geotransform's own units. For SAGA's results use SHAPE 1 "
        "and radii in map units.\n"
        "SLOPE_THRESHOLD: degrees (default 5) between plains and open slopes, or flat and "
        "middle slope; slope from ground cell sizes. Standardisation uses the mean and "
        "population sd of the whole valid raster; a flat raster (sd = 0) is all plains / flat, "
        "said in the log. TPI and standardised TPI are held in float32, as SAGA holds them, so "
        "that cells on a class boundary fall on the same side as in SAGA.\n"
        "OUTPUT: Byte GeoTIFF, nodata 0, with colour table and class names in the file and an "
        "attribute table beside it. OUTPUT_TABLE (optional): cells, area (km², from ground cell "
        "sizes) and percent of the valid area per class; the same numbers are always in the "
        "log.\n"
        "Weiss (2001), Topographic position and landforms analysis, poster, ESRI User "
        "Conference, San Diego."
    )

    HELP += ENGINE_HELP

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS's name)
        self.addParameter(QgsProcessingParameterRasterLayer("INPUT", self.tr("DEM")))
        self.addParameter(QgsProcessingParameterNumber(
            "SMALL_RADIUS", self.tr("Small neighbourhood radius"),
            QgsProcessingParameterNumber.Double, 2.0, minValue=0.0))
        self.addParameter(QgsProcessingParameterNumber(
            "LARGE_RADIUS", self.tr("Large neighbourhood radius"),
            QgsProcessingParameterNumber.Double, 22.0, minValue=0.0))
        self.addParameter(QgsProcessingParameterEnum(
            "SHAPE", self.tr("Neighbourhood shape"), SHAPES, defaultValue=0))
        self.addParameter(QgsProcessingParameterEnum(
            "UNITS", self.tr("Radius units"), UNITS, defaultValue=0))
        self.addParameter(QgsProcessingParameterNumber(
            "SLOPE_THRESHOLD", self.tr("Slope threshold (degrees)"),
            QgsProcessingParameterNumber.Double, 5.0, minValue=0.0, maxValue=90.0))
        self.addParameter(QgsProcessingParameterEnum(
            "SCHEME", self.tr("Classification"), SCHEMES, defaultValue=0))
        self.addParameter(QgsProcessingParameterRasterDestination(
            "OUTPUT", self.tr("Landforms")))
        self.addParameter(QgsProcessingParameterFeatureSink(
            "OUTPUT_TABLE", self.tr("Area per class"), QgsProcessing.TypeVector,
            optional=True, createByDefault=True))
        add_engine_parameter(self)

    def run_core(self, parameters, context, monitor):
        shape = SHAPES[self.parameterAsEnum(parameters, "SHAPE", context)]
        units = UNITS[self.parameterAsEnum(parameters, "UNITS", context)]
        scheme = SCHEMES[self.parameterAsEnum(parameters, "SCHEME", context)]
        path, info = self.input_dem(parameters, "INPUT", context, monitor, no_crs_note(units))
        if units == "map units" and info.is_geographic:
            monitor.info("Geographic CRS: radii in map units are read as metres.")
        settings = core_lf.Settings(
            *(core_tpi.neighbourhood(
                shape, self.parameterAsDouble(parameters, name, context), 0.0, units, info)
              for name in ("SMALL_RADIUS", "LARGE_RADIUS")),
            scheme,
            self.parameterAsDouble(parameters, "SLOPE_THRESHOLD", context),
        )
        output = self.output_path(parameters, "OUTPUT", context)
        # The table is opened before any work, so an unwritable one fails at once.
        fields = QgsFields()
        for name, kind in TABLE_FIELDS:
            fields.append(new_field(name, kind))
        outputs = OutputFiles(self, parameters, context)
        sink, table_id = outputs.sink("OUTPUT_TABLE", "the class table", fields,
                                      QgsWkbTypes.NoGeometry)
        # All or nothing: neither a raster without its table nor an empty table.
        with outputs.all_or_nothing():
            engine = engine_of(self, parameters, context)
            if engine:
                result = run_chunked("landforms", path, output, {
                    "small_radius": self.parameterAsDouble(parameters, "SMALL_RADIUS", context),
                    "large_radius": self.parameterAsDouble(parameters, "LARGE_RADIUS", context),
                    "shape": shape, "units": units, "scheme": scheme,
                    "slope_threshold": settings.slope_threshold}, engine, monitor).stats
            else:
                result = core_lf.landforms_raster(path, output, settings, monitor=monitor)
            outputs.raster(output)
            for code, name, cells, area, pct in result["rows"]:
                monitor.info(f"{code:2d} {name}: {cells} cells, {area:.3f} km², {pct:.2f} %")
            for row in result["rows"] if sink is not None else ():
                feature = QgsFeature(fields)
                feature.setAttributes(list(row))
                if not sink.addFeature(feature, QgsFeatureSink.FastInsert):
                    raise QgsProcessingException(
                        f"Could not write the OUTPUT_TABLE: {sink.lastError()}")
        self.style_on_load(context, output, LandformStyler(scheme))
        return {"OUTPUT": output, "OUTPUT_TABLE": table_id}
