"""demsr:surveyrmse — accuracy of one or more DEMs against survey points (docs/DESIGN.md §6).

Thin: reads the points (coordinates, survey elevation) and asks QGIS which coordinate operation
takes them to each DEM's CRS (the project's datum transformations); core.survey.accuracy.assess does
the reprojection, the heights' vertical transformation (core.survey.vertical), sampling, statistics
and log; this module writes the residual layer, the table and the report (core.survey.report). Every
output is created before the work starts and removed again if the run fails.
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
    QgsRasterLayer,
    QgsWkbTypes,
)

from ..core.declarations.surveyrmse import SPEC
from ..core.errors import DemError
from ..core.grid.raster import read_info, warn_undeclared_nodata
from ..core.survey import accuracy as survey
from ..core.survey import report, sampling, vertical
from .base import DemAlgorithm, OutputFiles
from .compat import new_field, parameter_as_strings
from .declared import add_parameters
from .styling import ResidualStyler

# The table's columns before the statistics (survey.STATISTICS).
TABLE_COLUMNS = (("dem", 254), ("source", 254), ("crs", 64), ("sampling", 10),
                 ("prefix", survey.PREFIX_LENGTH))
# ... and after them: both vertical references and the height correction applied, in metres.
TABLE_VERTICAL_TEXT = (("dem_vref", 254), ("pts_vref", 254))
TABLE_VERTICAL_NUMBERS = (("vcorr_me", "mean"), ("vcorr_min", "min"), ("vcorr_max", "max"))


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


def _horizontal(crs: QgsCoordinateReferenceSystem) -> QgsCoordinateReferenceSystem:
    # QGIS >= 3.38 keeps a compound CRS whole; the points reach a DEM's grid by the horizontal
    # operation alone, and core.survey.vertical takes care of the heights.
    if crs.isValid() and hasattr(crs, "horizontalCrs"):
        flat = crs.horizontalCrs()
        return flat if flat.isValid() else crs
    return crs


def _operation(src, dst, transform_context) -> tuple:
    """(PROJ pipeline, backwards?) QGIS would use from src to dst: the project's datum
    transformation when one is set, else the operation QGIS picks itself ("" when none)."""
    src, dst = _horizontal(src), _horizontal(dst)
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


def _residual_sink(outputs, source, prefixes, heights: bool):
    """Every input attribute, then <prefix>_z, _e, _s per DEM, and _h (the survey height in the
    DEM's vertical reference) when `heights`: a vertical reference is known."""
    fields = QgsFields(source.fields())
    for p in prefixes:
        fields.append(new_field(f"{p}_z", "double"))
        fields.append(new_field(f"{p}_e", "double"))
        fields.append(new_field(f"{p}_s", "string", length=12))
        if heights:
            fields.append(new_field(f"{p}_h", "double"))
    return outputs.sink("OUTPUT_RESIDUALS", "the residual layer", fields, source.wkbType(),
                        source.sourceCrs())


def _table_sink(outputs):
    fields = QgsFields()
    for name, length in TABLE_COLUMNS:
        fields.append(new_field(name, "string", length=length))
    for st in survey.STATISTICS:
        fields.append(new_field(st.field, "int" if st.kind is int else "double"))
    for name, length in TABLE_VERTICAL_TEXT:
        fields.append(new_field(name, "string", length=length))
    for name, _ in TABLE_VERTICAL_NUMBERS:
        fields.append(new_field(name, "double"))
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


def _write_residuals(sink, source, fids, comparisons, heights: bool, monitor):
    columns = [(c.predicted, c.residuals, sampling.reason_names(c.reason), c.observed)
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
        for predicted, residuals, why, observed in columns:
            attrs += [_none_if_nan(predicted[j]), _none_if_nan(residuals[j]), why[j]]
            if heights:
                attrs.append(_none_if_nan(observed[j]))
        out = QgsFeature()
        out.setGeometry(feat.geometry())
        out.setAttributes(attrs)
        sink.addFeature(out, QgsFeatureSink.FastInsert)


def _write_table(sink, dems, crs_ids, prefixes, method, comparisons):
    for dem, crs_id, prefix, comparison in zip(dems, crs_ids, prefixes, comparisons):
        stats = comparison.stats.as_dict()
        link = comparison.vertical
        feat = QgsFeature()
        feat.setAttributes([dem.name, dem.path, crs_id, method, prefix]
                           + [_none_if_nan(stats[st.attribute]) for st in survey.STATISTICS]
                           + [link.dem, link.points]
                           + [_none_if_nan(getattr(link, a)) for _, a in TABLE_VERTICAL_NUMBERS])
        sink.addFeature(feat, QgsFeatureSink.FastInsert)


class SurveyRmseAlgorithm(DemAlgorithm):
    ALG_ID = "surveyrmse"
    DISPLAY_NAME = "DEM accuracy against survey points"
    GROUP = "accuracy"
    ICON = "surveyrmse.svg"
    SHORT = SPEC.summary
    TAGS = ("accuracy", "rmse", "nmad", "le90", "validation", "survey", "gnss", "checkpoints",
            "error", "statistics")
    SPEC = SPEC
    HELP = SPEC.help_text()
    METHODS = sampling.METHODS

    def initAlgorithm(self, config=None):  # noqa: N802 (QGIS's name)
        add_parameters(self, SPEC)

    def _vertical_code(self, parameters, name, context) -> str:
        """The reference a pair of vertical parameters states ("" = as declared)."""
        option = (self.parameterAsEnum(parameters, name, context)
                  if parameters.get(name) is not None else 0)
        code = self.parameterAsString(parameters, f"{name}_CRS", context)
        return vertical.choice_code(option, code, name)

    def _dems(self, parameters, context, points_crs, monitor, dems_vertical="") -> tuple:
        """The DEMs as core.survey.accuracy.DemSource, and their CRS ids for the table."""
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
            warn_undeclared_nodata(path, f"DEMS ({layer.name()})", monitor)
            operation, inverse = _operation(points_crs, layer.crs(), context.transformContext())
            dems.append(survey.DemSource(path, layer.name(), _crs_wkt(layer.crs()), operation,
                                         inverse, dems_vertical))
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
        dems, crs_ids = self._dems(parameters, context, source.sourceCrs(), monitor,
                                   self._vertical_code(parameters, "DEMS_VERTICAL", context))
        method = self.METHODS[self.parameterAsEnum(parameters, "SAMPLING", context)]
        points_crs = _crs_wkt(source.sourceCrs())
        points_vertical = self._vertical_code(parameters, "POINTS_VERTICAL", context)
        # Checked before any output exists; a known reference adds the <prefix>_h fields.
        heights = any(refs[0] is not None
                      for refs in survey.height_references(dems, points_crs, points_vertical))
        # Readable prefixes, except where the residual layer is a shapefile (10-character DBF)
        residual_file, _ = self._destination(parameters, "OUTPUT_RESIDUALS", context)
        prefixes = survey.field_prefixes([d.name for d in dems], source.fields().names(),
                                         survey.prefix_length(residual_file))
        outputs = OutputFiles(self, parameters, context)
        results = {}
        with outputs.all_or_nothing():  # every output is created before the work starts
            residual_sink, residual_id = _residual_sink(outputs, source, prefixes, heights)
            table_sink, table_id = _table_sink(outputs)
            html_path = self.parameterAsFileOutput(parameters, "OUTPUT_HTML", context)
            if html_path:
                report.check_writable(html_path, "the accuracy report (OUTPUT_HTML)")
            fids, xs, ys, zs = _read_points(source, field_index, monitor)
            monitor.info(f"{fids.size} survey point(s); {method} sampling.")
            comparisons = survey.assess(dems, xs, ys, zs, method, points_crs, fids,
                                        monitor.part(0.1, 0.8), points_vertical)
            if residual_sink is not None:
                _write_residuals(residual_sink, source, fids, comparisons, heights, monitor)
                results["OUTPUT_RESIDUALS"] = residual_id
            if table_sink is not None:
                _write_table(table_sink, dems, crs_ids, prefixes, method, comparisons)
                results["OUTPUT_TABLE"] = table_id
            if html_path:
                report.write_html(outputs.file(html_path), [d.name for d in dems],
                                  comparisons, zs, method)
                results["OUTPUT_HTML"] = html_path
        first = comparisons[0].stats
        if "OUTPUT_RESIDUALS" in results and first.n_used:
            self.style_on_load(context, residual_id, ResidualStyler(
                f"{prefixes[0]}_e", first.le95, first.max_abs))
        results.update(RMSE=first.rmse, ME=first.me, MAE=first.mae, NMAD=first.nmad)
        monitor.report(1.0)
        return results
