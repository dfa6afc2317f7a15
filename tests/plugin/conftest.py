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
def headless_loading(monkeypatch):
    """processing.runAndLoadResults as a script or qgis_process runs it: without a QGIS
    interface. pytest-qgis's stand-in interface answers layerTreeView() with a MagicMock, which
    QGIS 3.44's result loading hands to C++ (a TypeError); 3.22 does not ask for it."""
    from processing.gui import Postprocessing

    if hasattr(Postprocessing, "iface"):
        monkeypatch.setattr(Postprocessing, "iface", None)


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
    """processing.run on a demsr algorithm through the inputs guard, returning its results."""

    from tests.helpers_guard import guarded_run

    def run(alg_id, params, feedback=None, context=None):
        return guarded_run(alg_id, params, feedback=feedback, context=context)

    return run


@pytest.fixture
def mandakini():
    return os.path.join(DATA, "mandakini_srtm90_utm44.tif")


@pytest.fixture
def jacksboro():
    return os.path.join(DATA, "jacksboro_fault_srtm3.tif")


QGIS_PROCESS = "/usr/bin/qgis_process.bin"


@pytest.fixture(scope="session")
def qgis_process_env(tmp_path_factory):
    """Environment for qgis_process.bin: the plugin on QGIS_PLUGINPATH, enabled in a throwaway
    profile, the venv's packages visible (what scripts/env.sh sets up for users)."""
    import glob
    import subprocess

    if not os.path.exists(QGIS_PROCESS):
        pytest.skip("no qgis_process.bin")
    profile = tmp_path_factory.mktemp("qgis-profile")
    env = dict(os.environ)
    site = glob.glob(os.path.join(ROOT, ".venv", "lib", "python3*", "site-packages"))
    env.update(
        QT_QPA_PLATFORM="offscreen",
        QGIS_PLUGINPATH=PLUGINS,
        QGIS_CUSTOM_CONFIG_PATH=str(profile),
        PYTHONPATH=os.pathsep.join(site + [env.get("PYTHONPATH", "")]).strip(os.pathsep),
    )
    enable = subprocess.run([QGIS_PROCESS, "plugins", "enable", "demsr"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert enable.returncode == 0, enable.stdout + enable.stderr
    return env


@pytest.fixture
def qgis_process(qgis_process_env):
    """Run qgis_process.bin with arguments; returns the CompletedProcess."""
    import subprocess

    from tests.helpers_guard import cli_params, untouched

    def run(*args, timeout=300):
        # `run` commands go through the inputs guard; list, help and plugins read nothing.
        params = cli_params(args) if "run" in args else {}
        with untouched(params):
            return subprocess.run([QGIS_PROCESS, *args], env=qgis_process_env,
                                  capture_output=True, text=True, timeout=timeout)

    return run
