"""Progress, cancellation and log messages passed down from the caller.

The plugin adapts QgsProcessingFeedback to :class:`Monitor`; scripts and tests use the silent
default. Long loops call :meth:`Monitor.check` once per block so a cancelled run stops promptly.
"""
from __future__ import annotations

from ..errors import Cancelled


class Monitor:
    """Silent monitor: never cancelled, ignores progress and messages."""

    def report(self, fraction: float) -> None:
        """Report progress as a fraction in [0, 1]."""

    def cancelled(self) -> bool:
        return False

    def info(self, message: str) -> None:
        """Log an informational message."""

    def warn(self, message: str) -> None:
        """Log a warning the user should read."""

    def chunks(self, phase: str, done: int, total: int, cells: int) -> None:
        """A chunked job's state: `done` of `total` chunks of `phase` finished, `cells` output
        cells computed by this run so far (progress bars show throughput and ETA from it)."""

    def check(self) -> None:
        """Raise :class:`Cancelled` when the user has asked to stop."""
        if self.cancelled():
            raise Cancelled("cancelled by the user")

    def part(self, start: float, end: float) -> Monitor:
        """A monitor whose progress 0..1 maps onto start..end of this one (for multi-pass work)."""
        return _PartMonitor(self, start, end)


class _PartMonitor(Monitor):
    def __init__(self, parent: Monitor, start: float, end: float):
        self._parent = parent
        self._start = start
        self._span = end - start

    def report(self, fraction: float) -> None:
        self._parent.report(self._start + self._span * min(max(fraction, 0.0), 1.0))

    def cancelled(self) -> bool:
        return self._parent.cancelled()

    def info(self, message: str) -> None:
        self._parent.info(message)

    def warn(self, message: str) -> None:
        self._parent.warn(message)

    def chunks(self, phase: str, done: int, total: int, cells: int) -> None:
        self._parent.chunks(phase, done, total, cells)


class RecordingMonitor(Monitor):
    """Keeps every message and progress value; for tests and batch scripts."""

    def __init__(self, cancel_after: int | None = None):
        self.fractions: list[float] = []
        self.infos: list[str] = []
        self.warnings: list[str] = []
        self._cancel_after = cancel_after

    def report(self, fraction: float) -> None:
        self.fractions.append(fraction)

    def cancelled(self) -> bool:
        return self._cancel_after is not None and len(self.fractions) >= self._cancel_after

    def info(self, message: str) -> None:
        self.infos.append(message)

    def warn(self, message: str) -> None:
        self.warnings.append(message)
