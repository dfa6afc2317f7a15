"""Styles applied when QGIS loads an output layer: hillshade for DEMs, TPI ramp, class legends,
residual colours.

Each styler is made per run and handed to Processing, which calls it in the main thread once the
layer is loaded (desktop and processing.runAndLoadResults; never in qgis_process).
"""
import math
import os

from qgis.core import (
    QgsBasicNumericFormat,
    QgsColorBrewerColorRamp,
    QgsColorRampLegendNodeSettings,
    QgsGraduatedSymbolRenderer,
    QgsMarkerSymbol,
    QgsProcessingLayerPostProcessorInterface,
    QgsRendererRange,
)

from ..core.grid.raster import ground_pixel_size_m, read_info
from .base import STYLES, used


class _Styler(QgsProcessingLayerPostProcessorInterface):
    QML = ""

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 (QGIS's name)
        try:
            if layer is not None and layer.isValid():
                if self.QML:
                    layer.loadNamedStyle(os.path.join(STYLES, self.QML))
                # QGIS has already added the layer and built its legend: adjust a copy of the
                # renderer and hand it back through setRenderer, which tells the Layers panel
                # (legend) and the canvas. Changed in place, the legend kept the QML's numbers.
                renderer = self.adjust(layer, layer.renderer().clone())
                layer.setRenderer(renderer)
                layer.triggerRepaint()
        finally:
            used(self)

    def adjust(self, layer, renderer):
        """The renderer, changed for what the QML cannot know in advance about this layer."""
        return renderer


class DemStyler(_Styler):
    """Multidirectional hillshade, the view that shows a finer DEM's relief best."""

    QML = "dem_hillshade.qml"

    def adjust(self, layer, renderer):
        # QGIS shades elevation (metres) over cell size in CRS units; in degrees every slope
        # would come out ~1e5 times too steep, so the z factor turns metres into CRS units.
        info = read_info(layer.source())
        dx_m, _ = ground_pixel_size_m(info)
        dx = info.pixel_size[0]
        if dx > 0 and dx_m > 0 and math.isfinite(dx_m / dx):
            renderer.setZFactor(dx / dx_m)
        return renderer


def _decimals(span: float) -> int:
    """Decimals that show about three significant figures of numbers up to `span`."""
    return max(0, 2 - math.floor(math.log10(span))) if span > 0 else 2


def _stretch(renderer, low: float, high: float):
    """The QML's pseudocolour ramp spread over low … high, its legend labels rounded."""
    if hasattr(renderer, "setClassificationMin") and high > low:
        ramp = renderer.shader().rasterShaderFunction().sourceColorRamp()
        renderer.setClassificationMin(low)
        renderer.setClassificationMax(high)
        renderer.createShader(ramp.clone() if ramp else None)
        shader = renderer.shader().rasterShaderFunction()
        if hasattr(shader, "legendSettings"):  # the continuous legend's end labels
            legend = QgsColorRampLegendNodeSettings(shader.legendSettings())
            label_format = QgsBasicNumericFormat()
            label_format.setNumberDecimalPlaces(_decimals(max(abs(low), abs(high))))
            legend.setNumericFormat(label_format)
            shader.setLegendSettings(legend)
    return renderer


class TpiStyler(_Styler):
    """Diverging TPI ramp spread over ±`spread` (2.5 sd of the result)."""

    QML = "tpi.qml"

    def __init__(self, spread: float):
        super().__init__()
        self.spread = spread

    def adjust(self, layer, renderer):
        return _stretch(renderer, -self.spread, self.spread)


class SpreadStyler(_Styler):
    """Sequential ramp for the self-ensemble's spread, from 0 to its 98th percentile (a few
    cells at breaks of slope spread far more than the rest and would wash the ramp out)."""

    QML = "spread.qml"

    def adjust(self, layer, renderer):
        _, upper = layer.dataProvider().cumulativeCut(1, 0.0, 0.98, layer.extent(), 250_000)
        return _stretch(renderer, 0.0, upper) if math.isfinite(upper) else renderer


class LandformStyler(_Styler):
    """The class legend of a scheme (names and stable colours)."""

    def __init__(self, scheme: str):
        super().__init__()
        self.QML = f"{scheme}.qml"


class ResidualStyler(_Styler):
    """Survey points graduated by a residual field e = DEM − survey: a diverging ramp centred on
    0, blue where the DEM is too low, red where it is too high, white where it fits.

    Five equal classes span ±`limit` (the data's LE95, so that a few blunders do not wash every
    other point into the centre class) and two more hold the rest, out to ±`extreme` (the
    largest |e|): every point with a residual has a class. Points without one (skipped: outside,
    edge, nodata) have no colour; their _s field says why."""

    QML = ""
    INNER_CLASSES = 5  # odd: one class straddles 0

    def __init__(self, field: str, limit: float, extreme: float):
        super().__init__()
        self.field = field
        self.limit = limit if limit > 0 else max(extreme, 1e-3)
        self.extreme = max(extreme, self.limit)

    def breaks(self) -> list:
        """Class bounds from −extreme to +extreme, symmetric about 0."""
        n, m = self.INNER_CLASSES, self.limit
        return [-self.extreme] + [-m + 2 * m * i / n for i in range(n + 1)] + [self.extreme]

    def adjust(self, layer, renderer):
        bounds = self.breaks()
        classes = len(bounds) - 1
        ramp = QgsColorBrewerColorRamp("RdBu", classes, True)  # blue … red
        digits = _decimals(self.limit)
        ranges = []
        for i, (low, high) in enumerate(zip(bounds[:-1], bounds[1:])):
            symbol = QgsMarkerSymbol.createSimple({
                "name": "circle", "size": "2.6", "outline_color": "60,60,60",
                "outline_width": "0.2"})
            symbol.setColor(ramp.color(i / (classes - 1)))
            ranges.append(QgsRendererRange(low, high, symbol,
                                           f"{low:+.{digits}f} to {high:+.{digits}f}"))
        graduated = QgsGraduatedSymbolRenderer(self.field, ranges)
        graduated.setSourceColorRamp(ramp)
        return graduated
