"""demsr:surveyrmse — accuracy of one or more DEMs against survey points (DESIGN.md §6).

Thin: reads the points (coordinates, survey elevation) through QGIS, reprojects them to each
DEM's CRS with the context's transform context, and hands arrays to core.sampling,
core.survey and core.report. All arithmetic is in core.
"""
import math
import re

import numpy as np
from qgis.core import (
    NULL,
    QgsCoordinateTransform,
    QgsCsException,
    QgsFeature,
    QgsFeatureSink,
    QgsField,
    QgsFields,
    QgsPointXY,
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
from qgis.PyQt.QtCore import QVariant

from ..core import report, sampling, survey
from ..core.errors import DemError
from ..core.raster import read_info
from .base import DemAlgorithm

LOG_IDS = 100  # ids listed per DEM and reason; the rest are in the residual layer's _s field

# Table field (≤ 10 characters, shapefile/DBF safe) for each AccuracyStats attribute.
TABLE_FIELDS = {
    "n_points": "n_points",
    "n_used": "n_used",
    "n_skipped": "n_skipped",
    "n_outside": "n_outside",
    "n_edge": "n_edge",
    "n_nodata": "n_nodata",
    "n_no_elevation": "n_no_elev",
    "n_no_position": "n_no_pos",
    "me": "me",
    "mae": "mae",
    "rmse": "rmse",
    "sd": "sd",
    "nmad": "nmad",
    "le90": "le90",
    "le95": "le95",
    "max_abs": "max_abs",
    "nssda95": "nssda95",
}

REASON_TEXT = {
    sampling.OUTSIDE: "outside the raster",
    sampling.EDGE: "too near the raster's edge for the sampling stencil",
    sampling.NODATA: "with nodata in the sampling stencil",
    sampling.NO_ELEVATION: "without a survey elevation (NULL/NaN)",
    sampling.NO_POSITION: "without a single position (empty or multi-part geometry, or "
                          "reprojection failed)",
}


def field_prefixes(names, taken) -> list:
    """A prefix per DEM for its residual-layer fields <prefix>_z, _e, _s.

    Derived from the layer name: ASCII letters, digits and '_' only, at most 7 characters, so
    every field name is ≤ 10 characters and survives a shapefile (DBF) unchanged. Collisions —
    with another DEM or with an input field, compared case-insensitively as DBF does — are
    resolved by replacing the tail with a number (srtm_ut, srtm_u1, srtm_u2, …).
    """
    used = {t.lower() for t in taken}
    out = []
    for name in names:
        base = re.sub(r"[^A-Za-z0-9_]", "_", name.encode("ascii", "ignore").decode()).strip("_")
        base = (base or "dem")[:7]
        if base[0].isdigit():
            base = ("d" + base)[:7]
        candidate, i = base, 0
        while any(f"{candidate}{s}".lower() in used for s in ("", "_z", "_e", "_s")):
            i += 1
            candidate = base[: 7 - len(str(i))] + str(i)
        used.update({candidate.lower(), f"{candidate}_z".lower(), f"{candidate}_e".lower(),
                     f"{candidate}_s".lower()})
        out.append(candidate)
    return out


def _as_float(value) -> float:
    # NULL attributes arrive as QVariant NULL (or None); both mean "no survey elevation".
    if value is None or value == NULL:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


class SurveyRmseAlgorithm(DemAlgorithm):
    ALG_ID = "surveyrmse"
    DISPLAY_NAME = "DEM accuracy against survey points"
    GROUP = "accuracy"
    ICON = "surveyrmse.svg"
    HELP = (
        "Samples each DEM at survey points and reports how well it fits: residual e = DEM − "
        "survey.<br><b>DEMs</b>: one or more rasters (band 1), each in its own CRS; the points "
        "are reprojected to each DEM's CRS with the project's datum transformations.<br>"
        "<b>Elevation field</b>: a numeric field with the surveyed height; empty = the "
        "geometry's Z. NULL values are skipped and counted.<br><b>Sampling</b>: nearest cell, "
        "bilinear (2 × 2 cell centres) or bicubic (Keys cubic convolution, a = −0.5, 4 × 4 "
        "cells). A point is used only if its whole stencil holds valid cells; otherwise it is "
        "skipped as outside, edge (stencil crosses the raster border) or nodata, counted in "
        "the table and listed in the log — never silently dropped.<br><b>Statistics</b> per "
        "DEM: N used/skipped, ME (bias), MAE, RMSE, SD (sample, n − 1), NMAD = 1.4826·median("
        "|e − median(e)|), LE90/LE95 (90th/95th percentile of |e|, linear interpolation), "
        "max |e|, NSSDA 95 % = 1.9600·RMSE.<br><b>Residual layer</b>: every input attribute "
        "plus, per DEM, &lt;prefix&gt;_z (sampled value), &lt;prefix&gt;_e (residual) and "
        "&lt;prefix&gt;_s (ok/outside/edge/nodata/no_elevation/no_position). The prefix comes "
        "from the layer name (≤ 7 characters, so names are shapefile-safe); the table's "
        "'prefix' column gives the mapping.<br><b>Report</b>: an HTML page with the table, "
        "a residual histogram and an observed-vs-predicted scatter per DEM.<br>Outputs RMSE, "
        "ME, MAE and NMAD hold the first DEM's values, for models."
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

    # -- inputs ---------------------------------------------------------------------------

    def _dems(self, parameters, context, monitor):
        layers = self.parameterAsLayerList(parameters, "DEMS", context)
        if not layers:
            raise DemError("Give at least one DEM.")
        dems = []
        for layer in layers:
            if not isinstance(layer, QgsRasterLayer) or not layer.isValid():
                raise DemError(f"'{layer.name()}' is not a valid raster layer.")
            path = layer.dataProvider().dataSourceUri()
            info = read_info(path)
            if info.band_count > 1:
                monitor.info(f"{layer.name()} has {info.band_count} bands; band 1 is used.")
            if not layer.crs().isValid():
                monitor.warn(f"{layer.name()} has no CRS: the point coordinates are used as "
                             "they are, as if they were in the raster's grid.")
            dems.append((layer, path))
        return dems

    def _points(self, parameters, context, monitor):
        source = self.parameterAsSource(parameters, "POINTS", context)
        if source is None:
            raise DemError("Could not load the survey points layer.")
        if QgsWkbTypes.geometryType(source.wkbType()) != QgsWkbTypes.PointGeometry:
            raise DemError(
                f"The survey layer must hold points; it holds "
                f"{QgsWkbTypes.displayString(source.wkbType())} geometries.")
        fields = self.parameterAsFields(parameters, "ELEVATION_FIELD", context)
        field_name = fields[0] if fields else ""
        field_index = -1
        if field_name:
            field_index = source.fields().lookupField(field_name)
            if field_index < 0:
                raise DemError(f"The survey layer has no field '{field_name}'.")
            if not source.fields().at(field_index).isNumeric():
                raise DemError(
                    f"The elevation field '{field_name}' is not numeric "
                    f"({source.fields().at(field_index).typeName()}); pick a numeric field "
                    "or convert it with the field calculator.")
        elif not QgsWkbTypes.hasZ(source.wkbType()):
            raise DemError("No elevation field was given and the survey points have no Z "
                           "coordinate: choose the field that holds the surveyed heights.")
        n = max(source.featureCount(), 0)
        fids, xs, ys, zs = [], [], [], []
        for i, feat in enumerate(source.getFeatures()):
            if i % 10000 == 0:
                monitor.check()
                monitor.report(0.1 * i / max(n, 1))
            x = y = z = math.nan
            geom = feat.geometry()
            if not geom.isNull() and not geom.isEmpty():
                part = geom.constGet()
                if QgsWkbTypes.isMultiType(geom.wkbType()):
                    # one position per survey point: a multi-point with several parts has none
                    part = part.geometryN(0) if part.numGeometries() == 1 else None
                if part is not None:
                    x, y = part.x(), part.y()
                    if field_index < 0:
                        z = part.z()
            if field_index >= 0:
                z = _as_float(feat.attribute(field_index))
            fids.append(feat.id())
            xs.append(x)
            ys.append(y)
            zs.append(z)
        if not fids:
            raise DemError("The survey points layer has no features.")
        return source, field_name, (np.array(fids), np.array(xs, float), np.array(ys, float),
                                    np.array(zs, float))

    @staticmethod
    def _to_crs(source, layer, xs, ys, context, monitor):
        src_crs, dst_crs = source.sourceCrs(), layer.crs()
        if not src_crs.isValid() or not dst_crs.isValid() or src_crs == dst_crs:
            if not src_crs.isValid() and dst_crs.isValid():
                monitor.warn("The survey layer has no CRS: its coordinates are taken to be in "
                             f"{dst_crs.authid() or 'the DEM CRS'}.")
            return xs, ys
        ct = QgsCoordinateTransform(src_crs, dst_crs, context.transformContext())
        tx = np.full(xs.shape, np.nan)
        ty = np.full(ys.shape, np.nan)
        ok = np.flatnonzero(np.isfinite(xs) & np.isfinite(ys))
        for k, i in enumerate(ok):
            if k % 20000 == 0:
                monitor.check()
            try:
                p = ct.transform(QgsPointXY(xs[i], ys[i]))
            except QgsCsException:
                continue  # stays NaN → NO_POSITION, counted and listed
            tx[i], ty[i] = p.x(), p.y()
        return tx, ty

    # -- run ------------------------------------------------------------------------------

    def run_core(self, parameters, context, monitor):
        dems = self._dems(parameters, context, monitor)
        method = self.METHODS[self.parameterAsEnum(parameters, "SAMPLING", context)]
        source, field_name, (fids, xs, ys, zs) = self._points(parameters, context, monitor)
        monitor.info(f"{fids.size} survey point(s); elevation from "
                     f"{'field ' + field_name if field_name else 'the geometry Z'}; "
                     f"{method} sampling.")
        names = [layer.name() for layer, _ in dems]
        comparisons = []
        cache = {}  # transformed coordinates per DEM CRS, so DEMs sharing a CRS share the work
        plans = []
        for k, (layer, path) in enumerate(dems):
            part = monitor.part(0.1 + 0.7 * k / len(dems), 0.1 + 0.7 * (k + 1) / len(dems))
            crs_key = layer.crs().authid() or layer.crs().toWkt()
            if crs_key not in cache:
                cache[crs_key] = self._to_crs(source, layer, xs, ys, context, monitor)
            px, py = cache[crs_key]
            # DEMs on the same grid (an original and its corrected copy) share one plan, so the
            # points are sorted into blocks once
            info = read_info(path)
            plan = next((p for c, p in plans if c == crs_key and p.fits(info)), None)
            if plan is None:
                plan = sampling.plan_sampling(info, px, py, method)
                plans.append((crs_key, plan))
            smp = sampling.sample_raster(path, px, py, method, monitor=part, plan=plan)
            comp = survey.compare(smp, zs, name=layer.name())
            comparisons.append(comp)
            self._log(layer.name(), comp, fids, monitor)
        prefixes = field_prefixes(names, source.fields().names())
        results = {}
        residuals_id = self._write_residuals(parameters, context, source, fids, prefixes,
                                             comparisons, monitor)
        if residuals_id is not None:
            results["OUTPUT_RESIDUALS"] = residuals_id
        table_id = self._write_table(parameters, context, dems, prefixes, method, comparisons)
        if table_id is not None:
            results["OUTPUT_TABLE"] = table_id
        html_path = self.parameterAsFileOutput(parameters, "OUTPUT_HTML", context)
        if html_path:
            report.write_html(html_path, names, comparisons, zs, method)
            results["OUTPUT_HTML"] = html_path
        first = comparisons[0].stats
        results.update(RMSE=first.rmse, ME=first.me, MAE=first.mae, NMAD=first.nmad)
        monitor.report(1.0)
        return results

    def _log(self, name, comp, fids, monitor):
        st = comp.stats
        monitor.info(
            f"{name}: N used {st.n_used} of {st.n_points}, ME {st.me:.3f}, MAE {st.mae:.3f}, "
            f"RMSE {st.rmse:.3f}, SD {st.sd:.3f}, NMAD {st.nmad:.3f}, LE90 {st.le90:.3f}, "
            f"LE95 {st.le95:.3f}, max |e| {st.max_abs:.3f}, NSSDA 95 % {st.nssda95:.3f}")
        if st.n_used == 1:
            monitor.warn(f"{name}: only one usable point; SD is undefined and left empty.")
        for code, (ids, total) in survey.skipped_ids(fids, comp.reason, LOG_IDS).items():
            more = f" … and {total - len(ids)} more (see the _s field)" if total > len(ids) else ""
            monitor.warn(f"{name}: {total} point(s) skipped {REASON_TEXT[code]}: ids "
                         f"{', '.join(str(i) for i in ids)}{more}")

    def _write_residuals(self, parameters, context, source, fids, prefixes, comps, monitor):
        fields = QgsFields(source.fields())
        for p in prefixes:
            fields.append(QgsField(f"{p}_z", QVariant.Double))
            fields.append(QgsField(f"{p}_e", QVariant.Double))
            fields.append(QgsField(f"{p}_s", QVariant.String, len=12))
        sink, dest = self.parameterAsSink(parameters, "OUTPUT_RESIDUALS", context, fields,
                                          source.wkbType(), source.sourceCrs())
        if sink is None:
            return None
        names = sampling.reason_names
        columns = []
        for comp in comps:
            columns.append((comp.predicted, comp.residuals, names(comp.reason)))
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
            for pred, res, why in columns:
                attrs += [_none_if_nan(pred[j]), _none_if_nan(res[j]), why[j]]
            out = QgsFeature(fields)
            out.setGeometry(feat.geometry())
            out.setAttributes(attrs)
            sink.addFeature(out, QgsFeatureSink.FastInsert)
        return dest

    def _write_table(self, parameters, context, dems, prefixes, method, comps):
        fields = QgsFields()
        fields.append(QgsField("dem", QVariant.String, len=254))
        fields.append(QgsField("source", QVariant.String, len=254))
        fields.append(QgsField("crs", QVariant.String, len=64))
        fields.append(QgsField("sampling", QVariant.String, len=10))
        fields.append(QgsField("prefix", QVariant.String, len=10))
        for key, name in TABLE_FIELDS.items():
            kind = QVariant.Int if key.startswith("n_") else QVariant.Double
            fields.append(QgsField(name, kind))
        sink, dest = self.parameterAsSink(parameters, "OUTPUT_TABLE", context, fields,
                                          QgsWkbTypes.NoGeometry)
        if sink is None:
            return None
        for (layer, path), prefix, comp in zip(dems, prefixes, comps):
            d = comp.stats.as_dict()
            feat = QgsFeature(fields)
            feat.setAttributes(
                [layer.name(), path, layer.crs().authid(), method, prefix]
                + [_none_if_nan(d[key]) for key in TABLE_FIELDS])
            sink.addFeature(feat, QgsFeatureSink.FastInsert)
        return dest


def _none_if_nan(value):
    # NaN is not a value a table should show: write NULL instead (skipped point, SD of n = 1).
    if isinstance(value, (int, np.integer)):
        return int(value)
    value = float(value)
    return None if math.isnan(value) else value
