"""demsr:surveyrmse — accuracy of one or more DEMs against survey points (docs/DESIGN.md §6).

Thin: reads the points (coordinates, survey elevation) and asks QGIS which coordinate operation
takes them to each DEM's CRS (the project's datum transformations); core.survey.assess does the
reprojection, sampling, statistics and log; this module writes the residual layer, the table
and the report (core.report). Every output is created before the work starts and removed again
if the run fails.
"""
import math

import numpy as np
from qgis.core import (
    NULL,
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsFeature,
    QgsFeatureSink,
    QgsFields,
    QgsProcessing,
    QgsProcessingOutputNumber,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterMultipleLayers,
    QgsRasterLayer,
    QgsWkbTypes,
)

from ..core import report, sampling, survey
from ..core.errors import DemError
from ..core.raster import read_info
from .base import DemAlgorithm, OutputFiles
from .compat import new_field, parameter_as_strings

# The table's columns before the statistics (survey.STATISTICS).
TABLE_COLUMNS = (("dem", 254), ("source", 254), ("crs", 64), ("sampling", 10), ("prefix", 10))


def _as_float(value) -> float:
    # NULL attributes arrive as QGIS's NULL (or None); both mean "no survey elevation".
    if value is None or value == NULL:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _crs_wkt(crs: QgsCoordinateReferenceSystem) -> str:
    return crs.toWkt(QgsCoordinateReferenceSystem.WKT_PREFERRED) if crs.isValid() else ""


def _operation(src, dst, transform_context) -> tuple:
    """(PROJ pipeline, backwards?) QGIS would use from src to dst: the project's datum
    transformation when one is set, else the operation QGIS picks itself ("" when none)."""
    if not src.isValid() or not dst.isValid() or src == dst:
        return "", False
    chosen = transform_context.calculateCoordinateOperation(src, dst)
    if chosen:
        return chosen, transform_context.mustReverseCoordinateOperation(src, dst)
    ct = QgsCoordinateTransform(src, dst, transform_context)
    return ct.instantiatedCoordinateOperationDetails().proj, False


def _position(feat, field_index: int) -> tuple:
    """(x, y, z) of a survey feature; NaN for what it lacks. A multi-point with several parts
    has no position: one survey height cannot belong to two places."""
    x = y = z = math.nan
    geom = feat.geometry()
    if not geom.isNull() and not geom.isEmpty():
        part = geom.constGet()
        if QgsWkbTypes.isMultiType(geom.wkbType()):
            part = part.geometryN(0) if part.numGeometries() == 1 else None
        if part is not None:
            x, y = part.x(), part.y()
            if field_index < 0:
                z = part.z()
    if field_index >= 0:
        z = _as_float(feat.attribute(field_index))
    return x, y, z


def _elevation_field(source, field_name: str) -> int:
    """Index of the survey elevation field, -1 for the geometry's Z; DemError when unusable."""
    if not field_name:
        if not QgsWkbTypes.hasZ(source.wkbType()):
            raise DemError("No elevation field was given and the survey points have no Z "
                           "coordinate: choose the field that holds the surveyed heights.")
        return -1
    index = source.fields().lookupField(field_name)
    if index < 0:
        raise DemError(f"The survey layer has no field '{field_name}'.")
    field = source.fields().at(index)
    if not field.isNumeric():
        raise DemError(f"The elevation field '{field_name}' is not numeric ({field.typeName()});"
                       " pick a numeric field or convert it with the field calculator.")
    return index


def _none_if_nan(value):
    # NaN is not a value a table should show: write NULL instead (skipped point, SD of n = 1).
    if isinstance(value, (int, np.integer)):
        return int(value)
    value = float(value)
    return None if math.isnan(value) else value


def _residual_sink(outputs, source, prefixes):
    """Every input attribute, then <prefix>_z, _e, _s per DEM."""
    fields = QgsFields(source.fields())
    for p in prefixes:
        fields.append(new_field(f"{p}_z", "double"))
        fields.append(new_field(f"{p}_e", "double"))
        fields.append(new_field(f"{p}_s", "string", length=12))
    return outputs.sink("OUTPUT_RESIDUALS", "the residual layer", fields, source.wkbType(),
                        source.sourceCrs())


def _table_sink(outputs):
    fields = QgsFields()
    for name, length in TABLE_COLUMNS:
        fields.append(new_field(name, "string", length=length))
    for st in survey.STATISTICS:
        fields.append(new_field(st.field, "int" if st.kind is int else "double"))
    return outputs.sink("OUTPUT_TABLE", "the accuracy table", fields, QgsWkbTypes.NoGeometry)


def _read_points(source, field_index: int, monitor) -> tuple:
    """Feature ids, x, y (the layer's CRS) and survey z of every feature, as arrays."""
    n = max(source.featureCount(), 0)
    fids, xyz = [], []
    for i, feat in enumerate(source.getFeatures()):
        if i % 10000 == 0:
            monitor.check()
            monitor.report(0.1 * i / max(n, 1))
        fids.append(feat.id())
        xyz.append(_position(feat, field_index))
    if not fids:
        raise DemError("The survey points layer has no features.")
    x, y, z = np.array(xyz, dtype=float).reshape(-1, 3).T
    return np.array(fids), x, y, z


def _write_residuals(sink, source, fids, comparisons, monitor):
    columns = [(c.predicted, c.residuals, sampling.reason_names(c.reason))
               for c in comparisons]
    index = None
    for i, feat in enumerate(source.getFeatures()):
        if i % 10000 == 0:
            monitor.check()
            monitor.report(0.8 + 0.15 * i / fids.size)
        if index is None and (i >= fids.size or feat.id() != fids[i]):
            # the provider changed the order between the two passes: match by feature id
            index = {int(f): j for j, f in enumerate(fids)}
        j = i if index is None else index[feat.id()]
        attrs = list(feat.attributes())
        for predicted, residuals, why in columns:
            attrs += [_none_if_nan(predicted[j]), _none_if_nan(residuals[j]), why[j]]
        out = QgsFeature()
        out.setGeometry(feat.geometry())
        out.setAttributes(attrs)
        sink.addFeature(out, QgsFeatureSink.FastInsert)


def _write_table(sink, dems, crs_ids, prefixes, method, comparisons):
    for dem, crs_id, prefix, comparison in zip(dems, crs_ids, prefixes, comparisons):
        stats = comparison.stats.as_dict()
        feat = QgsFeature()
        feat.setAttributes([dem.name, dem.path, crs_id, method, prefix]
                           + [_none_if_nan(stats[st.attribute]) for st in survey.STATISTICS])
        sink.addFeature(feat, QgsFeatureSink.FastInsert)


class SurveyRmseAlgorithm(DemAlgorithm):
    ALG_ID = "surveyrmse"
    DISPLAY_NAME = "DEM accuracy against survey points"
    GROUP = "accuracy"
    ICON = "surveyrmse.svg"
    SHORT = "RMSE, bias, NMAD, LE90 and more of one or more DEMs against survey points."
    TAGS = ("accuracy", "rmse", "nmad", "le90", "validation", "survey", "gnss", "checkpoints",
            "error", "statistics")
    HELP = (
        "Samples each DEM at survey points and reports how well it fits: residual e = DEM − "
        "survey.\n"
        "DEMS: one or more rasters (band 1), each in its own CRS; the points are reprojected to "
        "each DEM's CRS with the project's datum transformations.\n"
        "ELEVATION_FIELD: a numeric field with the surveyed height; empty = the geometry's Z. "
        "NULL values are skipped and counted.\n"
        "SAMPLING: 0 = nearest cell, 1 = bilinear (2 × 2 cell centres) or 2 = bicubic (Keys "
        "cubic convolution, a = −0.5, 4 × 4 cells). A point is used only if its whole stencil "
        "holds valid cells; otherwise it is skipped as outside, edge (stencil crosses the raster "
        "border) or nodata, counted in the table and listed in the log, never silently "
        "dropped.\n"
        "Statistics per DEM: N used/skipped, ME (bias), MAE, RMSE, SD (sample, n − 1), NMAD = "
        "1.4826·median(|e − median(e)|), LE90/LE95 (90th/95th percentile of |e|, linear "
        "interpolation), max |e|, NSSDA 95 % = 1.9600·RMSE (FGDC-STD-007.3-1998).\n"
        "OUTPUT_RESIDUALS (optional): every input attribute plus, per DEM, PREFIX_z (sampled "
        "value), PREFIX_e (residual) and PREFIX_s (ok/outside/edge/nodata/no_elevation/"
        "no_position). PREFIX comes from the layer name (at most 7 characters, so names are "
        "shapefile-safe); the table's 'prefix' column gives the mapping.\n"
        "OUTPUT_TABLE (optional): one row per DEM. OUTPUT_HTML (optional): a report with the "
        "table, a residual histogram and an observed-vs-predicted scatter per DEM.\n"
        "The numeric outputs RMSE, ME, MAE and NMAD hold the first DEM's values, for models; "
        "they are returned whichever outputs are written."
    )
    METHODS = sampling.METHODS

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS's name)
        self.addParameter(QgsProcessingParameterMultipleLayers(
            "DEMS", self.tr("DEMs"), QgsProcessing.TypeRaster))
        self.addParameter(QgsProcessingParameterFeatureSource(
            "POINTS", self.tr("Survey points"), [QgsProcessing.TypeVectorPoint]))
        self.addParameter(QgsProcessingParameterField(
            "ELEVATION_FIELD", self.tr("Survey elevation field (empty: geometry Z)"),
            parentLayerParameterName="POINTS", type=QgsProcessingParameterField.Numeric,
            optional=True))
        self.addParameter(QgsProcessingParameterEnum(
            "SAMPLING", self.tr("Sampling"), options=list(self.METHODS), defaultValue=1))
        self.addParameter(QgsProcessingParameterFeatureSink(
            "OUTPUT_RESIDUALS", self.tr("Residuals"), QgsProcessing.TypeVectorPoint,
            optional=True, createByDefault=True))
        self.addParameter(QgsProcessingParameterFeatureSink(
            "OUTPUT_TABLE", self.tr("Accuracy table"), QgsProcessing.TypeVector,
            optional=True, createByDefault=True))
        self.addParameter(QgsProcessingParameterFileDestination(
            "OUTPUT_HTML", self.tr("Accuracy report"), self.tr("HTML files (*.html)"),
            optional=True, createByDefault=True))
        for key, label in (("RMSE", "RMSE"), ("ME", "ME (bias)"), ("MAE", "MAE"),
                           ("NMAD", "NMAD")):
            self.addOutput(QgsProcessingOutputNumber(key, self.tr(f"{label} of the first DEM")))

    def _dems(self, parameters, context, points_crs, monitor) -> tuple:
        """The DEMs as core.survey.DemSource, and their CRS ids for the table."""
        layers = self.parameterAsLayerList(parameters, "DEMS", context)
        if not layers:
            raise DemError("Give at least one DEM.")
        dems, crs_ids = [], []
        for layer in layers:
            if not isinstance(layer, QgsRasterLayer) or not layer.isValid():
                raise DemError(f"'{layer.name()}' is not a valid raster layer.")
            path = layer.dataProvider().dataSourceUri()
            info = read_info(path)
            if info.band_count > 1:
                monitor.info(f"{layer.name()} has {info.band_count} bands; band 1 is used.")
            operation, inverse = _operation(points_crs, layer.crs(), context.transformContext())
            dems.append(survey.DemSource(path, layer.name(), _crs_wkt(layer.crs()), operation,
                                         inverse))
            crs_ids.append(layer.crs().authid())
        return dems, crs_ids

    def _source(self, parameters, context, monitor) -> tuple:
        """The survey layer and the index of its elevation field (-1: geometry Z)."""
        source = self.parameterAsSource(parameters, "POINTS", context)
        if source is None:
            raise DemError("Could not load the survey points layer.")
        if QgsWkbTypes.geometryType(source.wkbType()) != QgsWkbTypes.PointGeometry:
            raise DemError(
                f"The survey layer must hold points; it holds "
                f"{QgsWkbTypes.displayString(source.wkbType())} geometries.")
        fields = parameter_as_strings(self, parameters, "ELEVATION_FIELD", context)
        field_name = fields[0] if fields else ""
        monitor.info(f"Survey elevation from "
                     f"{'field ' + field_name if field_name else 'the geometry Z'}.")
        return source, _elevation_field(source, field_name)

    def run_core(self, parameters, context, monitor):
        source, field_index = self._source(parameters, context, monitor)
        dems, crs_ids = self._dems(parameters, context, source.sourceCrs(), monitor)
        method = self.METHODS[self.parameterAsEnum(parameters, "SAMPLING", context)]
        prefixes = survey.field_prefixes([d.name for d in dems], source.fields().names())
        outputs = OutputFiles(self, parameters, context)
        results = {}
        with outputs.all_or_nothing():  # every output is created before the work starts
            residual_sink, residual_id = _residual_sink(outputs, source, prefixes)
            table_sink, table_id = _table_sink(outputs)
            html_path = self.parameterAsFileOutput(parameters, "OUTPUT_HTML", context)
            if html_path:
                report.check_writable(html_path, "the accuracy report (OUTPUT_HTML)")
            fids, xs, ys, zs = _read_points(source, field_index, monitor)
            monitor.info(f"{fids.size} survey point(s); {method} sampling.")
            comparisons = survey.assess(dems, xs, ys, zs, method, _crs_wkt(source.sourceCrs()),
                                        fids, monitor.part(0.1, 0.8))
            if residual_sink is not None:
                _write_residuals(residual_sink, source, fids, comparisons, monitor)
                results["OUTPUT_RESIDUALS"] = residual_id
            if table_sink is not None:
                _write_table(table_sink, dems, crs_ids, prefixes, method, comparisons)
                results["OUTPUT_TABLE"] = table_id
            if html_path:
                report.write_html(outputs.file(html_path), [d.name for d in dems],
                                  comparisons, zs, method)
                results["OUTPUT_HTML"] = html_path
        first = comparisons[0].stats
        results.update(RMSE=first.rmse, ME=first.me, MAE=first.mae, NMAD=first.nmad)
        monitor.report(1.0)
        return results
