"""What a chunk kernel is: the interface between the large-area engine (core.mosaic) and the
algorithms (core/declarations/), which each implement one.

Everything here is small and picklable: a Dask worker receives a Kernel, a Chunk and, for
super-resolution, the model's bytes (ModelBlob), and needs nothing else from the driver.
"""
from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from . import inference
from .raster import block_windows
from .tpi import Moments


@dataclass(frozen=True)
class ModelBlob:
    """An ONNX model's bytes and their SHA-256: what travels to the workers (see docs)."""

    sha256: str
    data: bytes = field(repr=False)

    @classmethod
    def read(cls, path: str) -> ModelBlob:
        with open(path, "rb") as f:
            data = f.read()
        return cls(hashlib.sha256(data).hexdigest(), data)


_SESSIONS: dict[tuple, inference.Session] = {}
_SESSIONS_LOCK = threading.Lock()


def cached_session(card, blob: ModelBlob, device: str, threads: int) -> inference.Session:
    """One onnxruntime session per model, device and thread count in each process: a worker
    loads the model once, not once per chunk."""
    key = (blob.sha256, device, threads)
    with _SESSIONS_LOCK:
        if key not in _SESSIONS:
            _SESSIONS[key] = inference.open_session(card, device, threads, model_bytes=blob.data)
        return _SESSIONS[key]


@dataclass(frozen=True)
class Chunk:
    """One output chunk: its core window in input cells and its file name stem."""

    index: int
    name: str
    row: int
    col: int
    height: int
    width: int


class Kernel:
    """What one algorithm does to a chunk read with `halo` cells around its core."""

    algorithm = ""
    scale: int  # output cells per input cell side
    data_type = "Float32"
    nodata: float | None = None  # None: the input's (core.raster.default_nodata)
    # Names of further rasters a chunk yields beside its result (same grid, type and nodata);
    # pieces() then yields a tuple of arrays, the result first.
    extras: tuple[str, ...] = ()

    @property
    def halo(self) -> int:
        raise NotImplementedError

    @property
    def needs_moments(self) -> bool:
        """Whether a reduction pass over the raster must come first."""
        return False

    def moments(self, padded: np.ndarray) -> list[Moments]:
        raise NotImplementedError

    def moment_labels(self) -> list[str]:
        """What each of moments()' statistics is of, for the log."""
        return []

    def pieces(self, padded: np.ndarray, chunk: Chunk, moments: list[Moments] | None,
               model: ModelBlob | None, threads: int, summary: dict,
               ) -> Iterator[tuple[int, int, np.ndarray]]:
        """(row, column, values) of the chunk's output, in output cells from its corner; values
        is a tuple (result, *extras) when the kernel has extras."""
        raise NotImplementedError

    def describe_output(self, path: str) -> None:
        """Add to the bound result (a VRT) what it carries beside its cells, e.g. a legend."""

    def stats(self, summaries: list[dict]) -> dict:
        """The job's statistics from the summaries pieces() left in each finished chunk."""
        return {}


def sub_windows(padded: np.ndarray, chunk: Chunk, chunk_halo: int, size: int, halo: int):
    """Blocks of at most size × size of the chunk's core, each with its own `halo`, sliced out of
    the chunk's padded window (which holds them all, as halo ≤ chunk_halo)."""
    offset = chunk_halo - halo
    for block in block_windows(chunk.height, chunk.width, size, halo):
        r, c = block.row + offset, block.col + offset
        yield block, padded[r : r + block.height + 2 * halo, c : c + block.width + 2 * halo]

