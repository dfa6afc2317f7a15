"""Plugin shell: registers the Processing provider once and removes it on unload."""
from qgis.core import QgsApplication

from .algorithms.provider import DemSrProvider


class DemSrPlugin:
    def __init__(self, iface):
        self.iface = iface
        self.provider = None

    def initProcessing(self):  # noqa: N802 (QGIS's name)
        # qgis_process calls initProcessing without initGui; the desktop calls both.
        if self.provider is None:
            self.provider = DemSrProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self):  # noqa: N802 (QGIS's name)
        self.initProcessing()

    def unload(self):
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
