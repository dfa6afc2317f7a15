"""Styles applied when QGIS loads an output layer: hillshade for DEMs, TPI ramp, class legends.

Each styler is made per run and handed to Processing, which calls it in the main thread once the
layer is loaded (desktop and processing.runAndLoadResults; never in qgis_process).
"""
import math
import os

from qgis.core import QgsProcessingLayerPostProcessorInterface

from ..core.raster import ground_pixel_size_m, read_info
from .base import STYLES, used


class _Styler(QgsProcessingLayerPostProcessorInterface):
    QML = ""

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 (QGIS's name)
        try:
            if layer is not None and layer.isValid():
                layer.loadNamedStyle(os.path.join(STYLES, self.QML))
                self.adjust(layer)
                layer.triggerRepaint()
        finally:
            used(self)

    def adjust(self, layer) -> None:
        """What the QML cannot know in advance about this layer."""


class DemStyler(_Styler):
    """Multidirectional hillshade, the view that shows a finer DEM's relief best."""

    QML = "dem_hillshade.qml"

    def adjust(self, layer) -> None:
        # QGIS shades elevation (metres) over cell size in CRS units; in degrees every slope
        # would come out ~1e5 times too steep, so the z factor turns metres into CRS units.
        info = read_info(layer.source())
        dx_m, _ = ground_pixel_size_m(info)
        dx = info.pixel_size[0]
        if dx > 0 and dx_m > 0 and math.isfinite(dx_m / dx):
            layer.renderer().setZFactor(dx / dx_m)


def _stretch(layer, low: float, high: float) -> None:
    """Spread the QML's pseudocolour ramp over low … high."""
    renderer = layer.renderer()
    if hasattr(renderer, "setClassificationMin") and high > low:
        ramp = renderer.shader().rasterShaderFunction().sourceColorRamp()
        renderer.setClassificationMin(low)
        renderer.setClassificationMax(high)
        renderer.createShader(ramp.clone() if ramp else None)


class TpiStyler(_Styler):
    """Diverging TPI ramp spread over ±`spread` (2.5 sd of the result)."""

    QML = "tpi.qml"

    def __init__(self, spread: float):
        super().__init__()
        self.spread = spread

    def adjust(self, layer) -> None:
        _stretch(layer, -self.spread, self.spread)


class SpreadStyler(_Styler):
    """Sequential ramp for the self-ensemble's spread, from 0 to its 98th percentile (a few
    cells at breaks of slope spread far more than the rest and would wash the ramp out)."""

    QML = "spread.qml"

    def adjust(self, layer) -> None:
        _, upper = layer.dataProvider().cumulativeCut(1, 0.0, 0.98, layer.extent(), 250_000)
        if math.isfinite(upper):
            _stretch(layer, 0.0, upper)


class LandformStyler(_Styler):
    """The class legend of a scheme (names and stable colours)."""

    def __init__(self, scheme: str):
        super().__init__()
        self.QML = f"{scheme}.qml"
