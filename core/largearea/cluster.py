"""The Dask engine of core.largearea.mosaic: a LocalCluster on this machine or an existing cluster.

Dask (`dask.distributed`) is imported only here and only when a distributed run is asked for,
so the plugin and in-process runs work without it. The engine does three things for a job:
scatter the model bytes once to every worker, check every worker before any work (input
readable, output folder writable, onnxruntime loads the model), and keep a bounded window of
chunk tasks in flight, handing results back in completion order while watching for
cancellation. Dask itself reschedules the task of a worker that dies (a LocalCluster's nanny
also restarts the worker); a chunk whose own computation raises fails the job.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import socket
import sys
import time
import uuid

from ..errors import Cancelled, DemError
from ..grid.progress import Monitor
from .engine import ChunkFailed, worker_check

INSTALL_HINT = 'pip install "dask[distributed]"'
# An unreachable scheduler is reported after this long, not after Dask's default 30 s.
CONNECT_TIMEOUT_S = 5.0
# How long to wait for the first worker (or for --workers N of them) of an existing cluster.
WORKER_TIMEOUT_S = 60.0
# Polling interval of the result loop: how soon a cancel request is acted upon.
POLL_S = 0.25


def distributed_module():
    """dask.distributed, or a DemError that says what to install."""
    try:
        import distributed
    except ImportError as err:
        raise DemError(
            f"Dask is not installed, so no distributed run is possible: {INSTALL_HINT} into the "
            "Python that runs this (the venv, or QGIS's Python). Runs in this process need "
            "nothing more (leave ENGINE empty in QGIS, --workers 0 on the command line)."
        ) from err
    return distributed


def _use_python_for_workers() -> None:
    """LocalCluster starts workers with multiprocessing's spawn, which runs sys.executable; in
    QGIS that is the QGIS binary, not Python: point it at the Python beside it instead."""
    if os.path.basename(sys.executable).lower().startswith("python"):
        return
    for candidate in (os.path.join(sys.exec_prefix, "bin", "python3"),
                      os.path.join(sys.exec_prefix, "python.exe"), shutil.which("python3")):
        if candidate and os.path.isfile(candidate):
            multiprocessing.set_executable(candidate)
            return


class WorkerError(DemError):
    """A chunk task raised on a worker; the message names the worker."""


def _run_on_worker(func, args: tuple, pass_threads: bool):
    """The task Dask runs: one core.largearea.mosaic chunk function, with the worker's thread count
    and its identity added to the result (and to any error)."""
    from distributed import get_worker

    worker = get_worker()
    threads = getattr(getattr(worker, "state", None), "nthreads", None) or worker.nthreads
    t0 = time.perf_counter()
    try:
        result = func(*args, threads=threads) if pass_threads else func(*args)
    except DemError as err:
        raise WorkerError(f"{err} (on worker {worker.address}, host {socket.gethostname()})") \
            from None
    except Exception as err:  # any failure: the user needs the type, the message and the worker
        raise WorkerError(f"{type(err).__name__}: {err} (on worker {worker.address}, host "
                          f"{socket.gethostname()})") from None
    result["worker"] = worker.address
    result["pid"] = os.getpid()
    result["wall"] = time.perf_counter() - t0
    return result


def _check_worker(needs: dict, dask_worker=None) -> dict:
    needs = dict(needs)
    if dask_worker is not None:
        needs["threads"] = dask_worker.state.nthreads
    return worker_check(needs)


class DaskEngine:
    """Runs chunk functions as Dask tasks on a client's cluster."""

    name = "dask"

    def __init__(self, client, cluster=None, memory_limit: str | None = None):
        self.client = client
        self.cluster = cluster  # ours to close, or None for someone else's cluster
        self.memory_limit = memory_limit

    @classmethod
    def connect(cls, scheduler: str | None = None, workers: int | None = None,
                memory_limit: str = "auto", monitor: Monitor | None = None,
                connect_timeout: float = CONNECT_TIMEOUT_S,
                worker_timeout: float = WORKER_TIMEOUT_S) -> DaskEngine:
        """A LocalCluster of `workers` processes (default: one per core) with one thread each,
        or the cluster of `scheduler` (tcp://host:8786 or a scheduler file), waiting for
        `workers` workers (default: at least one) to be there."""
        monitor = monitor or Monitor()
        d = distributed_module()
        if not scheduler or scheduler == "local":
            n = workers or os.cpu_count() or 1
            _use_python_for_workers()
            limit = "RAM / workers" if memory_limit == "auto" else memory_limit
            monitor.info(f"Starting a Dask LocalCluster: {n} worker process(es) × 1 thread, "
                         f"memory limit {limit} per worker.")
            cluster = d.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                     memory_limit=memory_limit, dashboard_address=None,
                                     silence_logs=logging.ERROR)
            try:
                client = d.Client(cluster, timeout=connect_timeout)
            except Exception:
                cluster.close()
                raise
            return cls(client, cluster, memory_limit)
        is_file = os.path.isfile(scheduler)
        try:
            client = d.Client(scheduler_file=scheduler, timeout=connect_timeout) if is_file \
                else d.Client(scheduler, timeout=connect_timeout)
        except (OSError, TimeoutError, ValueError) as err:
            what = f"scheduler file '{scheduler}'" if is_file else f"'{scheduler}'"
            raise DemError(
                f"Cannot reach the Dask scheduler at {what} within {connect_timeout:g} s ({err}). "
                "Start one with `dask scheduler` and give its address (tcp://host:8786), or "
                "use a LocalCluster (no --scheduler; ENGINE=local in QGIS)."
            ) from err
        try:
            client.wait_for_workers(workers or 1, timeout=worker_timeout)
        except (TimeoutError, OSError) as err:
            have = len(client.scheduler_info().get("workers", {}))
            client.close()
            raise DemError(
                f"The Dask scheduler at {scheduler} has {have} worker(s), {workers or 1} wanted, "
                f"after {worker_timeout:g} s; start workers with `dask worker {scheduler} "
                "--nworkers N --nthreads 1`."
            ) from err
        return cls(client, None)

    def describe(self) -> str:
        nthreads = self.client.nthreads()
        kind = "LocalCluster" if self.cluster is not None else "Dask cluster"
        return (f"{kind} at {self.client.scheduler.address} with {len(nthreads)} worker(s), "
                f"{sum(nthreads.values())} thread(s)")

    def put(self, value):
        """`value` once on every worker (a future each task resolves to the value there)."""
        return self.client.scatter(value, broadcast=True)

    def check_workers(self, blob, kernel, paths: list[str], folder: str) -> dict:
        """Every worker's provider; DemError naming each worker that cannot do the job."""
        needs = {"read": paths, "write": folder, "model": blob, "kernel": kernel}
        reports = self.client.run(_check_worker, needs, on_error="return")
        problems = []
        providers = {}
        for address, report in sorted(reports.items()):
            if isinstance(report, BaseException):
                problems.append(f"worker {address}: cannot run the demsr core "
                                f"({type(report).__name__}: {report}); it needs GDAL, numpy, "
                                "scipy and this package on its PYTHONPATH")
            elif report["problems"]:
                problems.append(f"worker {address} (host {report['host']}): "
                                + "; ".join(report["problems"]))
            elif "provider" in report:
                providers[address] = report["provider"]
        if problems:
            raise DemError("Some Dask workers cannot run this job:\n  " + "\n  ".join(problems))
        return providers

    def map(self, func, calls, monitor: Monitor, threads_arg: bool = False):
        """Yield (key, result) as tasks finish, with at most about two tasks per worker thread
        submitted at once (so cancelling or failing wastes little, and the scheduler stays
        small). Cancellation stops submitting and cancels what is queued or running."""
        d = distributed_module()
        calls = iter(calls)
        running: dict = {}
        exhausted = False
        try:
            while True:
                if monitor.cancelled():
                    raise Cancelled("cancelled by the user")
                window = max(2, 2 * sum(self.client.nthreads().values()))
                while not exhausted and len(running) < window:
                    try:
                        key, args = next(calls)
                    except StopIteration:
                        exhausted = True
                        break
                    label = getattr(key, "name", str(key))
                    future = self.client.submit(
                        _run_on_worker, func, args, threads_arg, pure=False,
                        key=f"demsr-{func.__name__}-{label}-{uuid.uuid4().hex[:8]}")
                    running[future] = key
                if not running:
                    return
                try:
                    done, _ = d.wait(list(running), timeout=POLL_S, return_when="FIRST_COMPLETED")
                except TimeoutError:
                    continue
                for future in done:
                    key = running.pop(future)
                    if future.status == "error":
                        raise ChunkFailed(key, self._explain(future.exception()))
                    if future.status == "cancelled":
                        raise ChunkFailed(key, "its task was cancelled by the Dask scheduler")
                    yield key, future.result()
        finally:
            if running:
                self.client.cancel(list(running), force=True)

    def _explain(self, err: BaseException) -> str:
        if type(err).__name__ == "KilledWorker":
            limit = f" (memory limit {self.memory_limit} per worker)" if self.memory_limit else ""
            return (f"the workers computing it died several times, the last one "
                    f"{getattr(err, 'last_worker', None) or '?'}: out of memory{limit}? See the "
                    "worker logs")
        return str(err)

    def close(self) -> None:
        try:
            self.client.close()
        finally:
            if self.cluster is not None:
                self.cluster.close()

    def __enter__(self) -> DaskEngine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def engine_for(spec: str | None, workers: int | None = None, memory_limit: str = "auto",
               monitor: Monitor | None = None):
    """The engine a user asked for: '' → in this process (core.largearea.mosaic.InProcessEngine);
    'local' or 'local:N' → a LocalCluster (N workers, default one per core); anything else →
    the scheduler at that address or scheduler file."""
    from .mosaic import InProcessEngine

    spec = (spec or "").strip()
    if not spec:
        return InProcessEngine()
    if spec == "local" or spec.startswith("local:"):
        count = spec.partition(":")[2]
        if count and not count.isdigit():
            raise DemError(f"'{spec}': write local or local:N with N a number of workers.")
        return DaskEngine.connect(None, int(count) if count else workers, memory_limit, monitor)
    return DaskEngine.connect(spec, workers, memory_limit, monitor)
