"""Screenshots of the plugin in QGIS desktop, for docs/images (run by scripts/screenshots.sh
inside `qgis --code`, on a virtual screen).

Opens an algorithm dialog the way the Toolbox does, runs the algorithms on the bundled Mandakini
DEM and loads their results the way the dialog does (styled by the plugin, legend in the Layers
panel), and saves what the user sees. Writes to $DEMSR_SHOTS and quits QGIS.
"""
import os
import traceback

import numpy as np
import processing
from osgeo import gdal
from qgis.core import (
    QgsApplication,
    QgsFeature,
    QgsGeometry,
    QgsPointXY,
    QgsProcessingContext,
    QgsProcessingFeedback,
    QgsProject,
    QgsRasterLayer,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import QCoreApplication, Qt
from qgis.PyQt.QtWidgets import QDockWidget
from qgis.utils import iface, loadPlugin, plugins, startPlugin

ROOT = os.environ["DEMSR_ROOT"]
OUT = os.environ["DEMSR_SHOTS"]
WORK = os.environ["DEMSR_SHOTS_WORK"]
DEM = os.path.join(ROOT, "data", "mandakini_srtm90_utm44.tif")


def settle(rounds=20):
    for _ in range(rounds):
        QCoreApplication.processEvents()


def save(widget, name):
    settle()
    path = os.path.join(OUT, name)
    widget.grab().save(path)
    print(f"wrote {path}", flush=True)


def run_and_load(alg, params):
    """processing.runAndLoadResults: QGIS's result loader, so the plugin's styles apply."""
    context = QgsProcessingContext()
    context.setProject(QgsProject.instance())
    return processing.runAndLoadResults(alg, params, context=context,
                                        feedback=QgsProcessingFeedback())


def layer_named(name):
    return QgsProject.instance().mapLayersByName(name)[0]


def show_only(*layers):
    """Only these layers visible and their legends open; map zoomed to the first."""
    root = QgsProject.instance().layerTreeRoot()
    keep = {layer.id() for layer in layers}
    for node in root.findLayers():
        node.setItemVisibilityChecked(node.layerId() in keep)
        node.setExpanded(node.layerId() in keep)
    iface.setActiveLayer(layers[0])
    canvas = iface.mapCanvas()
    canvas.setDestinationCrs(layers[0].crs())
    canvas.setExtent(layers[0].extent())
    canvas.refresh()
    canvas.waitWhileRendering()
    settle()


def survey_points():
    """Synthetic survey points over the DEM: the DEM's own height plus noise, a few blunders."""
    ds = gdal.Open(DEM)
    z = ds.GetRasterBand(1).ReadAsArray().astype(float)
    x0, dx, _, y0, _, dy = ds.GetGeoTransform()
    rng = np.random.default_rng(25)
    rows = rng.integers(5, z.shape[0] - 5, 400)
    cols = rng.integers(5, z.shape[1] - 5, 400)
    keep = z[rows, cols] > -9999
    rows, cols = rows[keep], cols[keep]
    heights = z[rows, cols] + rng.normal(0, 12, rows.size)
    heights[:4] += np.array([80.0, -70.0, 60.0, -90.0])
    layer = QgsVectorLayer("Point?crs=EPSG:32644&field=elev:double", "survey", "memory")
    features = []
    for r, c, h in zip(rows, cols, heights):
        f = QgsFeature(layer.fields())
        f.setGeometry(QgsGeometry.fromPointXY(QgsPointXY(x0 + (c + 0.5) * dx,
                                                         y0 + (r + 0.5) * dy)))
        f.setAttributes([float(h)])
        features.append(f)
    layer.dataProvider().addFeatures(features)
    return layer


def main():
    if QgsApplication.processingRegistry().providerById("demsr") is None:
        loadPlugin("demsr")
        startPlugin("demsr")
    assert "demsr" in plugins and QgsApplication.processingRegistry().providerById("demsr")
    window = iface.mainWindow()
    window.resize(1280, 800)
    # The Layers panel alone on the left, wide enough for the class names.
    docks = {dock.objectName(): dock for dock in window.findChildren(QDockWidget)}
    for name, dock in docks.items():
        if dock.isVisible() and name != "Layers":
            dock.hide()
    window.resizeDocks([docks["Layers"]], [400], Qt.Orientation.Horizontal)
    settle()

    # The landforms dialog, as the Toolbox opens it on a DEM of the project: parameters left,
    # help right.
    dem = QgsRasterLayer(DEM, "mandakini_srtm90_utm44")
    QgsProject.instance().addMapLayer(dem)
    dialog = processing.createAlgorithmDialog("demsr:landforms", {"INPUT": dem.id()})
    dialog.resize(1100, 720)
    dialog.show()
    save(dialog, "dialog_landforms.png")
    dialog.close()

    run_and_load("demsr:superresolution", {"INPUT": DEM, "OUTPUT": os.path.join(WORK, "x2.tif")})
    run_and_load("demsr:tpi", {"INPUT": DEM, "RADIUS": 10, "OUTPUT": os.path.join(WORK, "tpi.tif")})
    run_and_load("demsr:landforms", {"INPUT": DEM, "OUTPUT": os.path.join(WORK, "lf.tif"),
                                     "OUTPUT_TABLE": "TEMPORARY_OUTPUT"})
    run_and_load("demsr:surveyrmse", {"DEMS": [DEM], "POINTS": survey_points(),
                                      "ELEVATION_FIELD": "elev",
                                      "OUTPUT_RESIDUALS": "TEMPORARY_OUTPUT"})

    by_source = {os.path.basename(layer.source()): layer
                 for layer in QgsProject.instance().mapLayers().values()}
    show_only(by_source["lf.tif"])
    save(window, "result_landforms.png")
    show_only(by_source["tpi.tif"])
    save(window, "result_tpi.png")
    residuals = layer_named("Residuals")
    show_only(residuals, by_source["x2.tif"])
    save(window, "result_residuals.png")


try:
    main()
except Exception:  # the shell script reports the missing files; the reason goes to its log
    traceback.print_exc()
finally:
    QgsProject.instance().setDirty(False)
    os._exit(0)  # no "save the project?" question, no waiting for the window system
