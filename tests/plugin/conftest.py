"""QGIS-side fixtures: the plugin imported as the package `demsr` and its provider registered.

The repository root is the plugin folder; scripts/setup.sh links it as build/plugins/demsr, the
way QGIS sees it, so the tests import it under the same name QGIS does.
"""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLUGINS = os.path.join(ROOT, "build", "plugins")
DATA = os.path.join(ROOT, "data")
if not os.path.isdir(os.path.join(PLUGINS, "demsr")):
    os.makedirs(PLUGINS, exist_ok=True)
    os.symlink(ROOT, os.path.join(PLUGINS, "demsr"))
if PLUGINS not in sys.path:
    sys.path.insert(0, PLUGINS)


# PyQGIS keeps only the C++ side of a registered provider alive: without a Python reference
# its Python subclass (and so every algorithm) would be garbage-collected.
_KEEP_ALIVE = []


@pytest.fixture
def demsr_provider(qgis_app, qgis_processing):
    """The demsr provider, registered in the processing registry if it is not (a test of the
    plugin shell unloads it)."""
    from demsr.algorithms.provider import DemSrProvider
    from qgis.core import QgsApplication

    registry = QgsApplication.processingRegistry()
    provider = registry.providerById("demsr")
    if provider is None:
        provider = DemSrProvider()
        registry.addProvider(provider)
        _KEEP_ALIVE.append(provider)
    return provider


@pytest.fixture
def log_feedback(qgis_app):
    """A QgsProcessingFeedback that keeps every message; `.lines` and `.text`."""
    from qgis.core import QgsProcessingFeedback

    class LogFeedback(QgsProcessingFeedback):
        def __init__(self):
            super().__init__()
            self.lines = []

        def pushInfo(self, info):  # noqa: N802 (QGIS's name)
            self.lines.append(info)

        def pushWarning(self, warning):  # noqa: N802 (QGIS's name)
            self.lines.append(warning)

        def reportError(self, error, fatalError=False):  # noqa: N802,N803 (QGIS's names)
            self.lines.append(error)

        @property
        def text(self):
            return "\n".join(self.lines)

    return LogFeedback()


@pytest.fixture
def run_alg(demsr_provider):
    """processing.run on a demsr algorithm, returning its results dict."""
    import processing

    def run(alg_id, params, feedback=None):
        return processing.run(alg_id, params, feedback=feedback)

    return run


@pytest.fixture
def mandakini():
    return os.path.join(DATA, "mandakini_srtm90_utm44.tif")


@pytest.fixture
def jacksboro():
    return os.path.join(DATA, "jacksboro_fault_srtm3.tif")
