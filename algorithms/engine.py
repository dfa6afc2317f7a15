"""The advanced ENGINE parameter of the raster algorithms: run the job chunk by chunk on Dask.

Empty (the default): the algorithm runs in this process as it always has. `local` (`local:N`):
a Dask LocalCluster on this machine with one worker process per core (N). Anything else: the
address of a Dask scheduler (tcp://host:8786) or a scheduler file. The chunked job is
core.largearea.mosaic.run_job; QGIS's progress bar and Cancel button reach it through the Monitor
(cancel stops submitting chunks and cancels the running ones; no output appears under the final
name, and the finished chunks stay beside it for a rerun to resume).

Workers import the core as the top-level package `core` (the name scripts and `dask worker`
processes use), so the job is run through that name here too: every task then names
`core.largearea.mosaic...`, whatever the plugin's own package name is.
"""
import importlib
import os
import sys

from ..core.errors import Cancelled, DemError

ENGINE = "ENGINE"  # declared in core/declarations/common.py
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def engine_of(algorithm, parameters, context) -> str:
    """The ENGINE value, stripped; empty means in-process."""
    if ENGINE not in parameters or parameters[ENGINE] is None:
        return ""
    return (algorithm.parameterAsString(parameters, ENGINE, context) or "").strip()


def _workers_core():
    """The plugin's core imported as the top-level package `core`."""
    own = os.path.realpath(os.path.join(_ROOT, "core"))
    loaded = sys.modules.get("core")
    if loaded is not None and os.path.realpath(os.path.dirname(loaded.__file__ or "")) != own:
        raise DemError(
            f"Another Python package named 'core' is loaded ({loaded.__file__}); the distributed "
            "engine needs that name for the demsr core. Leave ENGINE empty, or run "
            "`python -m core.batch` from the plugin folder."
        )
    if _ROOT not in sys.path:
        # Appended, not prepended: nothing already importable is shadowed. LocalCluster workers
        # inherit sys.path, so they find `core` the same way.
        sys.path.append(_ROOT)
    importlib.import_module("core.largearea.mosaic")
    importlib.import_module("core.largearea.cluster")
    return sys.modules["core"]


def run_chunked(algorithm: str, source: str, output: str, options: dict, engine_spec: str,
                monitor, spread_output: str | None = None):
    """core.largearea.mosaic.run_job on the engine ENGINE names; errors become the plugin's own."""
    core = _workers_core()
    try:
        engine = core.largearea.cluster.engine_for(engine_spec, monitor=monitor)
        try:
            # QGIS overwrites outputs; a recorded job with the same parameters is resumed.
            # The algorithm has warned about undeclared nodata already (base.input_dem).
            return core.largearea.mosaic.run_job(algorithm, source, output, options, engine=engine,
                                       overwrite=True, monitor=monitor,
                                       spread_output=spread_output, check_nodata=False)
        finally:
            engine.close()
    except core.errors.DemError as err:
        raise DemError(str(err)) from err
    except (core.errors.Cancelled, Cancelled) as err:
        folder = core.largearea.mosaic.job_folder(output)
        if os.path.isdir(folder):
            monitor.info(f"The finished chunks are kept in {folder}; run again with the same "
                         "parameters to compute only the missing ones.")
        raise Cancelled(str(err)) from err
