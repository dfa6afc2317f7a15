"""The `demsr` Processing provider: every algorithm of DESIGN.md §2 registers here."""
import importlib
import os

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

ICON = os.path.join(os.path.dirname(os.path.dirname(__file__)), "icons", "demsr.svg")


# (module, class) of each algorithm, in the order the Toolbox lists them.
ALGORITHMS = (
    ("superresolution", "SuperResolutionAlgorithm"),
    ("attraction", "AttractionAlgorithm"),
    ("tpi", "TpiAlgorithm"),
    ("landforms", "LandformsAlgorithm"),
    ("surveyrmse", "SurveyRmseAlgorithm"),
)


def _algorithm_classes():
    # TEMPORARY while the algorithms land in parallel: modules not written yet are skipped.
    here = os.path.dirname(__file__)
    classes = []
    for module, name in ALGORITHMS:
        if os.path.exists(os.path.join(here, module + ".py")):
            classes.append(getattr(importlib.import_module(f".{module}", __package__), name))
    return classes


class DemSrProvider(QgsProcessingProvider):
    def id(self):
        return "demsr"

    def name(self):
        return "DEM Super-Resolution Toolkit"

    def longName(self):  # noqa: N802 (QGIS's name)
        return self.name()

    def icon(self):
        return QIcon(ICON)

    def svgIconPath(self):  # noqa: N802 (QGIS's name)
        return ICON

    def supportedOutputRasterLayerExtensions(self):  # noqa: N802 (QGIS's name)
        return ["tif"]

    def loadAlgorithms(self):  # noqa: N802 (QGIS's name)
        for cls in _algorithm_classes():
            self.addAlgorithm(cls())
