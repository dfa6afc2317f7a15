"""The plugin loads in QGIS and registers the provider with every algorithm of docs/DESIGN.md §2."""
import os

from qgis.core import QgsApplication

EXPECTED = {"superresolution", "attraction", "tpi", "landforms", "surveyrmse"}


def test_provider_registered_with_icon(demsr_provider):
    provider = QgsApplication.processingRegistry().providerById("demsr")
    assert provider is not None
    assert provider.name() == "DEM Super-Resolution Toolkit"
    assert os.path.exists(provider.svgIconPath())


def test_every_algorithm_is_listed(demsr_provider):
    ids = {alg.name() for alg in demsr_provider.algorithms()}
    assert ids == EXPECTED


def test_plugin_shell_registers_once_and_unloads(qgis_app, qgis_processing):
    import demsr

    registry = QgsApplication.processingRegistry()
    existing = registry.providerById("demsr")
    if existing is not None:
        registry.removeProvider(existing)
    plugin = demsr.classFactory(None)
    plugin.initProcessing()
    plugin.initGui()  # the desktop calls both; the provider must be added only once
    assert registry.providerById("demsr") is plugin.provider
    plugin.unload()
    assert registry.providerById("demsr") is None
