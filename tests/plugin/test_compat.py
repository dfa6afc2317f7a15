"""algorithms/compat.py picks an API by QGIS version: the same fields and field names on QGIS 3.22
to 3.44, and none of the deprecation warnings that 3.44 gives for the old forms (QgsField with a
QVariant type, parameterAsFields), through the front door too."""
import os
import warnings

import pytest
from qgis.core import QgsFeature, QgsGeometry, QgsPointXY, QgsVectorLayer

PLUGIN_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Qt's type numbers, the same in QVariant::Type and QMetaType::Type.
QT_TYPE_NUMBERS = {"int": 2, "int64": 4, "double": 6, "string": 10}


@pytest.mark.parametrize("kind", sorted(QT_TYPE_NUMBERS))
def test_new_field_has_the_type_and_length_without_warnings(qgis_app, kind):
    from demsr.algorithms.compat import new_field

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        field = new_field("x", kind, length=12)
    assert field.name() == "x"
    assert int(field.type()) == QT_TYPE_NUMBERS[kind]
    assert field.length() == 12
    assert field.isNumeric() == (kind != "string")


def test_new_field_refuses_an_unknown_kind(qgis_app):
    from demsr.algorithms.compat import new_field

    with pytest.raises(KeyError):
        new_field("x", "float128")


def plugin_warnings(record):
    """Warnings whose location is one of the plugin's files."""
    return [f"{w.filename}:{w.lineno}: {w.category.__name__}: {w.message}" for w in record
            if os.path.realpath(w.filename).startswith(PLUGIN_DIR + os.sep)]


def test_tables_and_field_parameter_warn_nothing_in_the_plugin(run_alg, jacksboro, tmp_path):
    layer = QgsVectorLayer("Point?crs=EPSG:4326&field=elev:double", "survey", "memory")
    feature = QgsFeature(layer.fields())
    feature.setGeometry(QgsGeometry.fromPointXY(QgsPointXY(-84.25, 36.6)))
    feature.setAttributes([300.0])
    layer.dataProvider().addFeatures([feature])
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        landforms = run_alg("demsr:landforms", {
            "INPUT": jacksboro, "OUTPUT": str(tmp_path / "lf.tif"),
            "OUTPUT_TABLE": str(tmp_path / "lf_table.gpkg")})
        survey = run_alg("demsr:surveyrmse", {
            "DEMS": [jacksboro], "POINTS": layer, "ELEVATION_FIELD": "elev",
            "OUTPUT_RESIDUALS": str(tmp_path / "res.gpkg"),
            "OUTPUT_TABLE": str(tmp_path / "acc.gpkg"),
            "OUTPUT_HTML": str(tmp_path / "acc.html")})
    assert plugin_warnings(record) == []
    table = QgsVectorLayer(landforms["OUTPUT_TABLE"], "t", "ogr")
    assert table.fields().names()[-5:] == ["code", "class", "cells", "area_km2", "percent"]
    residuals = QgsVectorLayer(survey["OUTPUT_RESIDUALS"], "r", "ogr")
    assert residuals.featureCount() == 1
