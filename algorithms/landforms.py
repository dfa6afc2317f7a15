"""demsr:landforms — Weiss TPI landforms (10 classes) or slope positions (6 classes)."""
from qgis.core import (
    QgsFeature,
    QgsFeatureSink,
    QgsFields,
    QgsProcessingException,
    QgsWkbTypes,
)

from ..core.declarations.landforms import SPEC
from ..core.terrain import landforms as core_lf
from ..core.terrain import tpi as core_tpi
from .base import DemAlgorithm, OutputFiles
from .compat import new_field
from .declared import add_parameters, values
from .engine import engine_of, run_chunked
from .styling import LandformStyler
from .tpi import no_crs_note

TABLE_FIELDS = (("code", "int"), ("class", "string"), ("cells", "int64"),
                ("area_km2", "double"), ("percent", "double"))


class LandformsAlgorithm(DemAlgorithm):
    ALG_ID = "landforms"
    DISPLAY_NAME = "TPI landform classification"
    GROUP = "terrain"
    ICON = "landforms.svg"
    SHORT = SPEC.summary
    SPEC = SPEC
    TAGS = ("tpi", "landforms", "landform classification", "slope position", "weiss",
            "geomorphology", "saga")
    HELP = SPEC.help_text()

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS's name)
        add_parameters(self, SPEC)

    def run_core(self, parameters, context, monitor):
        v = values(self, SPEC, parameters, context)
        units = v["units"]
        path, info = self.input_dem(parameters, "INPUT", context, monitor, no_crs_note(units))
        if units == "map units" and info.is_geographic:
            monitor.info("Geographic CRS: radii in map units are read as metres.")
        settings = core_lf.Settings(
            *(core_tpi.neighbourhood(v["shape"], v[key], 0.0, units, info)
              for key in ("small_radius", "large_radius")),
            v["scheme"], v["slope_threshold"],
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
                result = run_chunked("landforms", path, output, v, engine, monitor).stats
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
        self.style_on_load(context, output, LandformStyler(v["scheme"]))
        return {"OUTPUT": output, "OUTPUT_TABLE": table_id}
