"""The QGIS desktop path, as a user takes it: the algorithm dialog (its help panel, the
parameters it passes), QGIS's own loading of the results into the project and the Layers
panel's legend, the styles of the loaded layers, and a cancel.

Headless: the dialog is built on the offscreen platform; runs go through the same executor and
result loader the dialog calls (processing.gui.AlgorithmExecutor.execute and
processing.gui.Postprocessing.handleAlgorithmResults), with the parameters the dialog makes.
"""
import threading
import time

import numpy as np
import pytest
from osgeo import gdal
from qgis.core import (
    Qgis,
    QgsApplication,
    QgsLayerTreeModel,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProject,
    QgsRasterDataProvider,
)
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtWidgets import QTextBrowser

from .test_surveyrmse_alg import UTM, memory_points, survey_utm

ALGORITHMS = ("superresolution", "attraction", "tpi", "landforms", "surveyrmse")

# Results are loaded as QGIS loads them, minus the main window: pytest-qgis's stand-in
# interface answers layerTreeView() with a mock that QGIS 3.44's loader refuses.
pytestmark = pytest.mark.usefixtures("headless_loading")


class LogFeedback(QgsProcessingFeedback):
    """Keeps the errors the result loader reports (the red lines of the dialog's log)."""

    def __init__(self):
        super().__init__()
        self.errors = []

    def reportError(self, error, fatalError=False):  # noqa: N802,N803 (QGIS's names)
        self.errors.append(error)


@pytest.fixture(autouse=True)
def _empty_project(demsr_provider):
    QgsProject.instance().removeAllMapLayers()
    yield
    QgsProject.instance().removeAllMapLayers()


@pytest.fixture(autouse=True)
def _iface_for_dialogs(qgis_iface, monkeypatch):
    """The dialog's parameter panel asks the QGIS interface for the browser model, which
    pytest-qgis's stand-in lacks (2.1, QGIS 3.22's) or answers with a mock that QGIS 3.40's
    panel refuses (5.x): give it a real one."""
    from qgis.gui import QgsBrowserGuiModel

    current = getattr(qgis_iface, "browserModel", None)
    if not (callable(current) and isinstance(current(), QgsBrowserGuiModel)):
        model = QgsBrowserGuiModel()
        monkeypatch.setattr(qgis_iface, "browserModel", lambda: model, raising=False)


def dialog(alg_id):
    from processing.gui.AlgorithmDialog import AlgorithmDialog

    return AlgorithmDialog(QgsApplication.processingRegistry().createAlgorithmById(alg_id))


def help_shown(alg_id) -> str:
    """The text of the dialog's help panel, as the user reads it."""
    dlg = dialog(alg_id)
    return dlg.findChild(QTextBrowser, "textShortHelp").toPlainText()


def run_as_the_dialog(alg_id, inputs):
    """Run with the parameters the dialog makes from `inputs` (every output left at its
    default: a temporary output, opened after running), then load the results the way QGIS
    does. Returns (results, feedback, the loader's verdict, the layers the run added)."""
    from processing.gui.AlgorithmExecutor import execute
    from processing.gui.Postprocessing import handleAlgorithmResults
    from processing.tools import dataobjects

    dlg = dialog(alg_id)
    dlg.setParameters(inputs)
    parameters = dlg.createProcessingParameters()
    feedback = LogFeedback()
    context = dataobjects.createContext(feedback)
    before = set(QgsProject.instance().mapLayers())
    ok, results = execute(dlg.algorithm(), parameters, context, feedback)
    assert ok, feedback.errors
    loaded = handleAlgorithmResults(dlg.algorithm(), context, feedback=feedback,
                                    parameters=results)
    added = [layer for lid, layer in QgsProject.instance().mapLayers().items()
             if lid not in before]
    return results, feedback, loaded, added


def words(text):
    return " ".join(text.split())


# Help ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("alg", ALGORITHMS)
def test_the_dialog_shows_every_word_of_the_help(demsr_provider, alg):
    algorithm = demsr_provider.algorithm(alg)
    shown = help_shown(f"demsr:{alg}")
    written = algorithm.help_text()
    assert words(written) in words(shown)
    # one paragraph per line of the help, as written
    paragraphs = [p for p in written.split("\n") if p.strip()]
    assert len([p for p in shown.split("\n") if p.strip()]) >= len(paragraphs)


def test_any_help_text_renders_whole(demsr_provider, monkeypatch):
    from demsr.algorithms.landforms import LandformsAlgorithm

    text = ("a < b and c > d, 5 plains (−1 < SN, LN < 1), <b>not bold</b>, &amp; stays, "
            "R&D & co, <!-- not a comment -->, x<y>z\nSecond paragraph: |t| ≤ 0.5 < 1.")
    monkeypatch.setattr(LandformsAlgorithm, "HELP", text)
    shown = help_shown("demsr:landforms")
    assert words(text) in words(shown)


def test_qgis_process_prints_the_help_as_written(demsr_provider, qgis_process):
    from demsr.algorithms.base import help_for_platform

    proc = qgis_process("help", "demsr:landforms")
    assert proc.returncode == 0, proc.stderr
    for line in demsr_provider.algorithm("landforms").help_text().split("\n"):
        assert line in proc.stdout
    # a terminal shows entities as they are: qgis_process gets the text unescaped
    assert help_for_platform("(−1 < SN, LN < 1) & co", "qgis_process") == "(−1 < SN, LN < 1) & co"
    assert help_for_platform("(−1 < SN) & co", "desktop") == "(−1 &lt; SN) &amp; co"


# Results loaded by QGIS ----------------------------------------------------------------------

def survey_points(path, tmp_path):
    """Survey points in a GeoPackage, as a user would pick a file in the dialog."""
    from qgis.core import QgsVectorFileWriter

    x, y, z = survey_utm(path, n=200, seed=3)
    layer = memory_points(UTM, x, y, z)
    out = str(tmp_path / "survey.gpkg")
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName = "GPKG"
    error = QgsVectorFileWriter.writeAsVectorFormatV2(
        layer, out, QgsProject.instance().transformContext(), options)
    assert error[0] == QgsVectorFileWriter.NoError, error
    return out


@pytest.mark.parametrize("alg, outputs", [("landforms", {"Landforms", "Area per class"}),
                                          ("surveyrmse", {"Residuals", "Accuracy table"})])
def test_temporary_outputs_load_without_a_phantom_layer(alg, outputs, mandakini, tmp_path):
    inputs = {"INPUT": mandakini} if alg == "landforms" else \
        {"DEMS": [mandakini], "POINTS": survey_points(mandakini, tmp_path),
         "ELEVATION_FIELD": "elev"}
    _, feedback, loaded, added = run_as_the_dialog(f"demsr:{alg}", inputs)
    assert loaded and not feedback.errors, feedback.errors  # no "not correctly generated"
    assert {layer.name() for layer in added} == outputs
    assert all(layer.isValid() for layer in added)


def legend_entries(nodes):
    """(kind, text, picture) of each legend node; a colour ramp's picture holds its labels."""
    def picture(node):
        icon = node.data(Qt.ItemDataRole.DecorationRole)
        return icon.toImage() if hasattr(icon, "toImage") else None

    return [(type(n).__name__, n.data(Qt.ItemDataRole.DisplayRole), picture(n)) for n in nodes]


def legend_as_shown(model, layer):
    """The legend entries of `layer` in a Layers panel's model."""
    node = QgsProject.instance().layerTreeRoot().findLayer(layer.id())
    return legend_entries(model.layerLegendNodes(node))


def legend_of_renderer(layer):
    """The same for a legend built afresh from the layer's renderer as it is now."""
    node = QgsProject.instance().layerTreeRoot().findLayer(layer.id())
    return legend_entries(layer.legend().createLayerTreeModelLegendNodes(node))


def test_the_tpi_legend_shows_the_renderers_range(mandakini):
    model = QgsLayerTreeModel(QgsProject.instance().layerTreeRoot())  # the Layers panel
    signalled = []  # the renderer's range each time the layer says its renderer changed

    def watch(layer):
        layer.rendererChanged.connect(lambda: signalled.append(
            layer.renderer().classificationMax()
            if hasattr(layer.renderer(), "classificationMax") else None))

    QgsProject.instance().layerWasAdded.connect(watch)
    try:
        results, _, loaded, (layer,) = run_as_the_dialog("demsr:tpi", {"INPUT": mandakini})
    finally:
        QgsProject.instance().layerWasAdded.disconnect(watch)
    assert loaded
    tpi = gdal.Open(results["OUTPUT"]).ReadAsArray()
    spread = 2.5 * tpi[tpi != -9999.0].astype(np.float64).std()
    renderer = layer.renderer()
    assert renderer.classificationMin() == pytest.approx(-spread, rel=1e-5)
    assert renderer.classificationMax() == pytest.approx(spread, rel=1e-5)
    assert signalled and signalled[-1] == renderer.classificationMax()  # after the last change
    shown = legend_as_shown(model, layer)
    assert "QgsColorRampLegendNode" in [kind for kind, _, _ in shown]
    assert shown == legend_of_renderer(layer)  # the ramp's end labels read ±spread


def test_dem_outputs_are_resampled_smoothly(mandakini):
    _, _, loaded, (layer,) = run_as_the_dialog("demsr:attraction", {"INPUT": mandakini})
    assert loaded and layer.renderer().type() == "hillshade"
    method = QgsRasterDataProvider.ResamplingMethod
    provider = layer.dataProvider()
    # early resampling: elevations are interpolated before they are shaded
    assert layer.resamplingStage() == Qgis.RasterResamplingStage.Provider
    assert provider.zoomedInResamplingMethod() == method.Cubic
    assert provider.zoomedOutResamplingMethod() == method.Bilinear
    # and the late resampler, should a provider not resample itself
    assert layer.resampleFilter().zoomedInResampler() is not None
    assert layer.resampleFilter().zoomedOutResampler() is not None


def test_the_residual_layer_is_graduated_around_zero(mandakini, tmp_path):
    results, _, loaded, added = run_as_the_dialog("demsr:surveyrmse", {
        "DEMS": [mandakini], "POINTS": survey_points(mandakini, tmp_path),
        "ELEVATION_FIELD": "elev"})
    assert loaded
    layer = next(lyr for lyr in added if lyr.name() == "Residuals")
    table = next(lyr for lyr in added if lyr.name() == "Accuracy table")
    row = next(table.getFeatures())
    renderer = layer.renderer()
    assert renderer.type() == "graduatedSymbol"
    assert renderer.classAttribute() == f"{row['prefix']}_e"
    ranges = renderer.ranges()
    bounds = [ranges[0].lowerValue()] + [r.upperValue() for r in ranges]
    assert bounds == pytest.approx([-b for b in reversed(bounds)])  # symmetric about 0
    assert len(ranges) % 2 == 1  # one class straddles 0
    middle = ranges[len(ranges) // 2]
    assert middle.lowerValue() < 0 < middle.upperValue()
    assert bounds[-1] == pytest.approx(row["max_abs"])
    assert bounds[-2] == pytest.approx(row["le95"])
    residuals = [f[renderer.classAttribute()] for f in layer.getFeatures()]
    residuals = [e for e in residuals if isinstance(e, float)]  # NULL: skipped
    assert len(residuals) == row["n_used"]
    assert all(renderer.rangeForValue(e) is not None for e in residuals)
    low, high = ranges[0].symbol().color(), ranges[-1].symbol().color()
    assert low.blue() > low.red() and high.red() > high.blue()  # too low blue, too high red


# Cancel -----------------------------------------------------------------------------------------

@pytest.fixture
def larger_dem(mandakini, tmp_path):
    """Mandakini at 4 × 4 as many cells: every algorithm runs for a few seconds, so that a
    cancel it ignored would show."""
    out = str(tmp_path / "mandakini_4x.tif")
    ds = gdal.Open(mandakini)
    gdal.Translate(out, ds, width=ds.RasterXSize * 4, height=ds.RasterYSize * 4,
                   resampleAlg="bilinear", creationOptions=["TILED=YES"])
    return out


class CancelAfter(QgsProcessingFeedback):
    """Cancels `seconds` after the timer starts, and notes when."""

    def __init__(self, seconds):
        super().__init__()
        self.asked_at = None
        self.timer = threading.Timer(seconds, self.cancel_now)

    def cancel_now(self):
        self.asked_at = time.perf_counter()
        self.cancel()


@pytest.mark.parametrize("alg", ["superresolution", "attraction", "tpi", "landforms"])
def test_a_cancel_lands_within_a_second_and_a_half(alg, mandakini, larger_dem, tmp_path):
    import processing

    params = {"INPUT": larger_dem, "OUTPUT": str(tmp_path / "out.tif")}
    if alg == "superresolution":
        # one tile of x4 on the CPU: seconds in one network pass, cancelled during it
        params.update(INPUT=mandakini, SCALE=4, DEVICE=2)
        after = 1.0
    else:  # a quarter into a run as long as this machine makes it
        t0 = time.perf_counter()
        processing.run(f"demsr:{alg}", dict(params, OUTPUT=str(tmp_path / "whole.tif")))
        after = (time.perf_counter() - t0) / 4
    feedback = CancelAfter(after)
    feedback.timer.start()
    try:
        with pytest.raises(QgsProcessingException, match="Cancelled"):
            processing.run(f"demsr:{alg}", params, feedback=feedback)
        stopped = time.perf_counter()
    finally:
        feedback.timer.cancel()
    assert stopped - feedback.asked_at < 1.5
    assert not (tmp_path / "out.tif").exists()
