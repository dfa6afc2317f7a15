"""Running chunk functions: the in-process engine (the Dask one is core.largearea.cluster),
the job's result and the failure of a chunk."""
from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

from ..errors import Cancelled, DemError
from ..grid.progress import Monitor
from ..grid.raster import (
    RasterInfo,
    open_raster,
)
from .chunks import Kernel, ModelBlob, cached_session, release_datasets


@dataclass
class JobResult:
    output: str
    info: RasterInfo  # of the output
    folder: str
    chunks_total: int
    chunks_empty: int
    computed: list[str]  # chunk names computed by this run (map pass)
    reduced: list[str]  # chunk names whose statistics this run computed
    seconds: float
    stats: dict = field(default_factory=dict)
    states: dict = field(default_factory=dict)  # chunk name → done, empty or pending

    def summary(self) -> str:
        """Chunks computed now, taken from an earlier run, and empty: a chunk this run found
        empty counts as empty only, so the three add up to the chunk count."""
        done_now = sum(self.states.get(name) == "done" for name in self.computed)
        done = sum(state == "done" for state in self.states.values())
        return (f"{done_now} chunk(s) computed by this run, {done - done_now} from an earlier "
                f"run, {self.chunks_empty} empty")


class InProcessEngine:
    """Runs the chunk functions one after the other in this process (no Dask)."""

    name = "in-process"

    def describe(self) -> str:
        return "in this process"

    def put(self, value):
        return value

    def check_workers(self, blob: ModelBlob | None, kernel: Kernel, paths: list[str],
                      folder: str) -> dict:
        if blob is not None:
            session = cached_session(kernel.card, blob, kernel.device, 0)
            return {"in-process": session.provider}
        return {}

    def map(self, func: Callable, calls: Iterable[tuple[object, tuple]], monitor: Monitor,
            threads_arg: bool = False):
        try:
            yield from self._map(func, calls, monitor)
        finally:
            release_datasets()

    def _map(self, func: Callable, calls: Iterable[tuple[object, tuple]], monitor: Monitor):
        for key, args in calls:
            monitor.check()
            t0 = time.perf_counter()
            try:
                result = func(*args)
            except (Cancelled, KeyboardInterrupt):
                raise
            except Exception as err:  # any failure of one chunk is reported with its chunk
                raise ChunkFailed(key, f"{type(err).__name__}: {err}"
                                  if not isinstance(err, DemError) else str(err)) from err
            result.setdefault("worker", "in-process")
            result.setdefault("wall", time.perf_counter() - t0)
            yield key, result

    def close(self) -> None:
        pass


class ChunkFailed(Exception):
    """One chunk's computation raised; `key` names the chunk, `message` says why."""

    def __init__(self, key, message: str):
        super().__init__(message)
        self.key = key
        self.message = message


def worker_check(needs: dict) -> dict:
    """What a worker reports before a job: its host, whether it can read the input and write the
    output folder, and for super-resolution whether onnxruntime loads the model."""
    report = {"host": socket.gethostname(), "pid": os.getpid(), "problems": []}
    for path in needs.get("read", []):
        try:
            open_raster(path)
        except DemError as err:
            report["problems"].append(f"cannot read the input ({err})")
    folder = needs.get("write")
    if folder and not (os.path.isdir(folder) and os.access(folder, os.W_OK)):
        report["problems"].append(
            f"cannot write to the output folder '{folder}' (it must be on storage every worker "
            "sees under the same path)")
    blob, kernel = needs.get("model"), needs.get("kernel")
    if blob is not None:
        try:
            session = cached_session(kernel.card, blob, kernel.device, needs.get("threads", 0))
            report["provider"] = session.provider
        except DemError as err:
            report["problems"].append(str(err))
    return report
