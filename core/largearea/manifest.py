"""The job folder: its manifest (parameters, chunk grid, each chunk's state), which lets the
same job resume, and the lock that keeps a second job off it."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import time
import uuid

from ..errors import DemError
from ..grid.progress import Monitor
from ..grid.raster import (
    RasterInfo,
)
from .chunks import Chunk, Kernel, ModelBlob
from .inputs import _write_text_atomically, describe_input_changes

MANIFEST = "manifest.json"


MANIFEST_FORMAT = "demsr-mosaic"


MANIFEST_VERSION = 1


# The manifest is rewritten at most this often while chunks finish (and always at the end).
_MANIFEST_INTERVAL_S = 2.0


def job_folder(output: str) -> str:
    """The folder beside OUTPUT that holds its chunks and manifest: out.tif → out_chunks/."""
    stem, _ = os.path.splitext(os.path.abspath(output))
    return stem + "_chunks"


def describe_bounds(info: RasterInfo, chunk: Chunk) -> str:
    gt = info.geotransform
    xs = [gt[0] + c * gt[1] + r * gt[2] for r in (chunk.row, chunk.row + chunk.height)
          for c in (chunk.col, chunk.col + chunk.width)]
    ys = [gt[3] + c * gt[4] + r * gt[5] for r in (chunk.row, chunk.row + chunk.height)
          for c in (chunk.col, chunk.col + chunk.width)]
    return (f"input rows {chunk.row}–{chunk.row + chunk.height - 1}, columns "
            f"{chunk.col}–{chunk.col + chunk.width - 1}; x {min(xs):.10g} to {max(xs):.10g}, "
            f"y {min(ys):.10g} to {max(ys):.10g}")


class Manifest:
    """The job's record beside its output: parameters, chunk grid, each chunk's state.

    Only the process that drives the job writes it (workers return summaries), always to a
    temporary name renamed into place, so a crash leaves the previous complete manifest."""

    def __init__(self, path: str, data: dict):
        self.path = path
        self.data = data
        self._saved_at = 0.0

    @classmethod
    def new(cls, path: str, signature: dict, chunks: list[Chunk], empty: set[int]) -> Manifest:
        records = [{"name": c.name, "row": c.row, "col": c.col, "height": c.height,
                    "width": c.width, "state": "empty" if c.index in empty else "pending"}
                   for c in chunks]
        data = {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "job": signature,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "chunks": records,
                "final": {"state": "pending"}}
        return cls(path, data)

    @classmethod
    def load(cls, path: str) -> Manifest | None:
        if not os.path.exists(path):
            return None
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, json.JSONDecodeError) as err:
            raise DemError(f"The job manifest '{path}' cannot be read ({err}); delete its "
                           "folder or rerun with overwrite to start over.") from err
        if data.get("format") != MANIFEST_FORMAT or data.get("version") != MANIFEST_VERSION:
            raise DemError(f"'{path}' is not a demsr job manifest of version {MANIFEST_VERSION}.")
        return cls(path, data)

    def differences(self, signature: dict) -> list[str]:
        """What differs between the recorded job and `signature`, in words."""
        recorded = self.data["job"]
        out = []
        for key in sorted(set(recorded) | set(signature)):
            old, new = recorded.get(key), signature.get(key)
            if old == new:
                continue
            if key == "input_files":
                out.extend(describe_input_changes(old, new))
            elif isinstance(old, dict) and isinstance(new, dict):
                for sub in sorted(set(old) | set(new)):
                    if old.get(sub) != new.get(sub):
                        out.append(f"{key}.{sub}: {_short(old.get(sub))} → {_short(new.get(sub))}")
            else:
                out.append(f"{key}: {_short(old)} → {_short(new)}")
        return out

    @property
    def chunks(self) -> list[dict]:
        return self.data["chunks"]

    def save(self, force: bool = True) -> None:
        now = time.monotonic()
        if not force and now - self._saved_at < _MANIFEST_INTERVAL_S:
            return
        _write_text_atomically(self.path, json.dumps(self.data, indent=1))
        self._saved_at = now


def _short(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "…"


def _signature(algorithm: str, source, params: dict, info: RasterInfo, chunk_size: int,
               kernel: Kernel, output: str, blob: ModelBlob | None, stamps: dict,
               spread_output: str | None) -> dict:
    """What must not change between a run and its resumption."""
    if isinstance(source, (list, tuple)):
        source = [os.path.abspath(str(p)) for p in source]
    else:
        source = os.path.abspath(str(source))
    return {
        "algorithm": algorithm,
        "input": source,
        "input_files": stamps,
        "parameters": {k: v for k, v in params.items()},
        "model_sha256": blob.sha256 if blob is not None else None,
        "output": os.path.abspath(output),
        "spread_output": spread_output,
        "grid": {"width": info.width, "height": info.height,
                 "geotransform": list(info.geotransform), "crs_wkt": info.crs_wkt,
                 "nodata": info.nodata, "data_type": info.data_type,
                 "chunk_size": chunk_size, "halo": kernel.halo, "scale": kernel.scale},
    }


LOCK = "job.lock"


def _clear_job_folder(folder: str) -> None:
    """Everything in a job folder but this run's lock."""
    for name in os.listdir(folder):
        if name == LOCK:
            continue
        path = os.path.join(folder, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)


def _read_lock(path: str) -> dict | None:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def job_lock(folder: str, monitor: Monitor):
    """Hold `folder`/job.lock (host, PID, start time) while a run drives the job.

    A lock of a live process, or of another host (whose processes cannot be seen from here),
    refuses the run with the holder's name; a lock whose process is dead on this host is stale
    (a killed run) and taken over with a message. The lock goes when the run ends, and so does
    a folder the lock alone created."""
    from ..grid.files import _pid_alive

    created = not os.path.isdir(folder)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as err:
        raise DemError(f"Cannot create the job folder '{folder}': {err}") from err
    path = os.path.join(folder, LOCK)
    mine = {"host": socket.gethostname(), "pid": os.getpid(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "token": uuid.uuid4().hex}
    text = json.dumps(mine)
    while True:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _read_lock(path) or {}
            host, pid = holder.get("host", "?"), holder.get("pid")
            if host == mine["host"] and isinstance(pid, int) and not _pid_alive(pid):
                monitor.warn(f"Taking over the job in '{folder}': its lock names process {pid} "
                             f"on this host (started {holder.get('started', '?')}), which is no "
                             "longer running.")
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)
                continue
            raise DemError(
                f"Another run is computing this output: '{path}' names host {host}, process "
                f"{pid}, started {holder.get('started', '?')}. Wait for it to finish (or stop "
                "it); if that run is gone for good, delete the lock file and run again.") from None
        except OSError as err:
            raise DemError(f"Cannot lock the job folder '{folder}': {err}") from err
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        break
    try:
        yield path
    finally:
        if (_read_lock(path) or {}).get("token") == mine["token"]:
            with contextlib.suppress(OSError):
                os.remove(path)
        if created and os.path.isdir(folder) and not os.listdir(folder):
            with contextlib.suppress(OSError):
                os.rmdir(folder)
