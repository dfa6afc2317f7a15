"""DEM super-resolution with an ONNX network, tile by tile (docs/DESIGN.md §3).

The runner knows nothing about any particular network: scales, input convention, normalisation
and receptive field come from the model card (core.superres.models). One onnxruntime session serves
every tile of a run. onnxruntime is imported lazily so that the plugin loads without it.

Why the result does not depend on the tiling:

- Normalisation x = (z − c) / D with c the tile's valid mean and D fixed for the whole raster;
  the networks are offset-equivariant (f(x + k) = f(x) + k away from their zero-padded border),
  so two tiles with different c agree up to float rounding.
- Each tile is run with `receptive_field + 2` coarse cells of context and only its centre is kept,
  so the networks' zero-padded border never reaches a kept cell.
- Nodata (and the outside of the raster) is filled with the nearest valid cell before inference.
  A cell q within the receptive field RF of a valid cell v has a valid cell within √2·RF, so its
  fill comes from within (1 + √2)·RF of v: reading that much halo makes every value a kept,
  valid output depends on identical in every tiling. Fill-only halo costs reading, not inference.
"""
from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

import numpy as np
from osgeo import gdal
from scipy import ndimage

from ..errors import Cancelled, DemError
from ..grid import raster, writing
from ..grid.kernels import bicubic_phase_taps
from ..grid.progress import Monitor
from .models import ModelCard, bundled_families, bundled_model, read_card, require_scale

DEVICES = ("auto", "cuda", "cpu")
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
INSTALL_STEPS = {
    "linux": (
        "install it for the Python QGIS runs on: in a terminal, python3 -m pip install --user "
        f"--break-system-packages onnxruntime \"numpy=={np.__version__}\" (Debian and Ubuntu "
        "refuse a plain pip install into the system Python; --user keeps it in your home folder "
        f"and numpy=={np.__version__}, the numpy this QGIS already runs with, keeps pip from "
        "replacing the one QGIS and GDAL are built against), then restart QGIS"
    ),
    "win32": (
        "install it into QGIS's Python: open the OSGeo4W Shell from the Start menu (as "
        "administrator when QGIS is installed for all users) and run python -m pip install "
        "onnxruntime, then restart QGIS"
    ),
    "darwin": (
        "install it into the Python inside QGIS.app: in QGIS's Python console run "
        "import sys; print(sys.prefix), then in a terminal run <that folder>/bin/python3 -m pip "
        "install --user onnxruntime, and restart QGIS"
    ),
}


def install_hint(platform: str = sys.platform) -> str:
    """How to install onnxruntime on this platform, where QGIS's Python differs the most."""
    key = "win32" if platform.startswith("win") else platform if platform in INSTALL_STEPS \
        else "linux"
    return (f"Super-resolution needs the Python package onnxruntime (onnxruntime-gpu for an "
            f"NVIDIA GPU); {INSTALL_STEPS[key]}.")


INSTALL_HINT = install_hint()

MIN_TILE = 8
MAX_TILE = 2048
# Activation memory per output pixel when the card does not say: 64 float32 feature maps on the
# fine grid, about four alive at once (VDSR-like, the most memory-hungry bundled design).
DEFAULT_BYTES_PER_OUTPUT_PIXEL = 1024
# On CPU a tile should take a few seconds so progress moves and cancellation is prompt.
CPU_MACS_PER_SECOND = 5e10
CPU_SECONDS_PER_TILE = 6.0
# How often a running network pass looks for a cancel (Session.run).
CANCEL_POLL_SECONDS = 0.05


def onnxruntime_available() -> tuple[bool, str]:
    """(True, version) when onnxruntime imports, else (False, the install hint)."""
    try:
        import onnxruntime
    except ImportError:
        return False, INSTALL_HINT
    return True, onnxruntime.__version__


def _ort():
    try:
        import onnxruntime
    except ImportError as err:
        raise DemError(f"onnxruntime is not installed. {INSTALL_HINT}") from err
    return onnxruntime


# Devices -----------------------------------------------------------------------------------


def providers_for(device: str) -> list:
    """Execution providers to ask onnxruntime for; DemError when `cuda` cannot work here."""
    if device not in DEVICES:
        raise DemError(f"Unknown device '{device}'; choose from {', '.join(DEVICES)}.")
    ort = _ort()
    available = ort.get_available_providers()
    if device == "cpu":
        return [CPU]
    if CUDA not in available:
        if device == "cuda":
            raise DemError(
                f"DEVICE=cuda, but the installed onnxruntime {ort.__version__} has no CUDA "
                f"provider (it offers {', '.join(available)}): it is the CPU build. Install "
                "onnxruntime-gpu on a machine with an NVIDIA GPU, or choose DEVICE=cpu or auto."
            )
        return [CPU]
    cuda_options = {
        "device_id": 0,
        # Tiles have one shape per run, so the exhaustive cuDNN search is paid once.
        "cudnn_conv_algo_search": "EXHAUSTIVE",
        # TF32 keeps ~1e-3 relative precision on normalised elevations of order 1-100: the
        # error in metres stays far below the 1e-3 m seam tolerance times D (≈ 3-9 m).
        "use_tf32": 1,
    }
    return [(CUDA, cuda_options), CPU]


def _gpu_free_bytes() -> int | None:
    """Free memory of GPU 0 from nvidia-smi (onnxruntime does not expose it); None if unknown."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return None
    try:
        out = subprocess.run(
            [exe, "--query-gpu=memory.free", "--format=csv,noheader,nounits", "-i", "0"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout
        return int(float(out.strip().splitlines()[0])) * 2**20
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def _host_available_bytes() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 2 * 2**30


def _free_bytes(provider: str) -> int:
    """Memory free for activations: the GPU's (8 GiB when nvidia-smi cannot say) or the host's."""
    return (_gpu_free_bytes() or 8 * 2**30) if provider == CUDA else _host_available_bytes()


# Model session -----------------------------------------------------------------------------


@dataclass
class Session:
    """An onnxruntime session checked against its card, and the provider it really uses."""

    card: ModelCard
    session: object
    input_name: str
    output_name: str
    provider: str

    @property
    def device_used(self) -> str:
        return self.provider

    def run(self, x: np.ndarray, monitor: Monitor | None = None) -> np.ndarray:
        """The network on x; with a `monitor`, a cancel stops the pass at the next layer.

        A CPU pass over a tile takes seconds (tiles are sized so, for throughput), far too
        long to wait for a cancel. onnxruntime checks its RunOptions.terminate flag between
        graph nodes; a watcher thread raises it as soon as the monitor says cancelled. The
        computation itself is untouched, so results are the same to the bit."""
        feeds = {self.input_name: x}
        options = None
        finished = threading.Event()
        watcher = None
        if monitor is not None:
            monitor.check()
            options = _ort().RunOptions()

            def watch():
                while not finished.wait(CANCEL_POLL_SECONDS):
                    if monitor.cancelled():
                        options.terminate = True
                        return

            watcher = threading.Thread(target=watch, name="demsr-cancel-watch", daemon=True)
            watcher.start()
        try:
            return self.session.run([self.output_name], feeds, options)[0]
        except Exception as err:  # onnxruntime raises its own Fail/InvalidArgument/... classes
            if options is not None and options.terminate:
                raise Cancelled("cancelled by the user") from err
            raise DemError(
                f"onnxruntime could not run the model '{os.path.basename(self.card.path)}' on a "
                f"tile of shape {tuple(x.shape)}: {err}") from err
        finally:
            finished.set()
            if watcher is not None:
                watcher.join()


def load_card(scale: int, model: str | None = None, model_file: str | None = None) -> ModelCard:
    """The card of MODEL_FILE when given, else of the bundled family `model` (default family if
    None), checked to support `scale`."""
    if model_file:
        card = read_card(model_file)
    else:
        if not model:
            _, model = bundled_families()
            if model is None:
                raise DemError(
                    "No bundled model is installed (models/ holds no .onnx file with a card); "
                    "give a custom model file (MODEL_FILE)."
                )
        card = bundled_model(model, scale)
    require_scale(card, scale)
    return card


def open_session(card: ModelCard, device: str = "auto", threads: int = 0,
                 model_bytes: bytes | None = None) -> Session:
    """One onnxruntime session for the whole run; checks the graph's single input and output.

    `model_bytes`, when given, is the content of the card's file (a distributed worker gets the
    model that way instead of from a path it may not have)."""
    ort = _ort()
    providers = providers_for(device)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    options.log_severity_level = 3  # onnxruntime's warnings are not the user's business
    name = os.path.basename(card.path)
    try:
        session = ort.InferenceSession(card.path if model_bytes is None else model_bytes,
                                       sess_options=options, providers=providers)
    except Exception as err:  # onnxruntime raises its own Fail/InvalidGraph/... classes
        raise DemError(f"onnxruntime cannot load the model '{name}': {err}") from err
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or len(outputs) != 1:
        raise DemError(
            f"The model '{name}' has {len(inputs)} input(s) and {len(outputs)} output(s); a "
            "demsr model takes exactly one elevation input (N, 1, H, W) and gives one output."
        )
    inp, out = inputs[0], outputs[0]
    for wanted, actual, what in ((card.input_name, inp.name, "input"),
                                 (card.output_name, out.name, "output")):
        if wanted and wanted != actual:
            raise DemError(
                f"The card of '{name}' names the {what} '{wanted}' but the graph's {what} is "
                f"'{actual}'."
            )
    if inp.type != "tensor(float)" or (inp.shape is not None and len(inp.shape) != 4):
        raise DemError(
            f"The model '{name}' takes {inp.type} of shape {inp.shape}; a demsr model takes "
            "float32 of shape (N, 1, H, W)."
        )
    check_input_layout(name, list(inp.shape or []))
    used = session.get_providers()[0]
    if device == "cuda" and used != CUDA:
        raise DemError(
            "DEVICE=cuda, but onnxruntime could not start its CUDA provider (no usable NVIDIA "
            "GPU, or the CUDA/cuDNN libraries onnxruntime-gpu needs are missing); choose "
            "DEVICE=cpu or auto."
        )
    return Session(card, session, inp.name, out.name, used)


def check_input_layout(name: str, shape: list) -> None:
    """DemError unless a graph input of `shape` (ints fixed, strings or None free) takes what
    the runner feeds: one tile at a time, one elevation channel, any tile height and width."""
    if len(shape) != 4:
        return
    batch, channels, height, width = shape
    if isinstance(channels, int) and channels != 1:
        raise DemError(
            f"The model '{name}' takes {channels} input channels (input shape {shape}); the "
            "demsr runner feeds one elevation channel, shape (N, 1, H, W). Export the network "
            "with a single input channel.")
    if isinstance(batch, int) and batch != 1:
        raise DemError(
            f"The model '{name}' takes a fixed batch of {batch} (input shape {shape}); the "
            "runner feeds one tile at a time: export it with a batch of 1 or a dynamic one.")
    fixed = [d for d in (height, width) if isinstance(d, int) and d > 0]
    if fixed:
        raise DemError(
            f"The model '{name}' takes a fixed tile size (input shape {shape}); the runner "
            "feeds tiles of the size TILE_SIZE and the raster call for: export it with "
            "dynamic height and width (dynamic_axes in torch.onnx.export).")


# Numbers -----------------------------------------------------------------------------------


def bicubic_upsample(x: np.ndarray, scale: int) -> np.ndarray:
    """Keys bicubic ×scale, cell-centre aligned, edges replicated — the same operator as
    training.networks.BicubicUpsample, for cards with input_space "upsampled"."""
    taps = bicubic_phase_taps(scale)
    h, w = x.shape
    p = np.pad(x.astype(np.float64), 2, mode="edge")
    rows = np.empty((h, scale, w + 4))
    for i in range(scale):
        rows[:, i] = sum(taps[i, j] * p[j : j + h] for j in range(5))
    rows = rows.reshape(h * scale, w + 4)
    out = np.empty((h * scale, w, scale))
    for i in range(scale):
        out[:, :, i] = sum(taps[i, j] * rows[:, j : j + w] for j in range(5))
    return out.reshape(h * scale, w * scale).astype(x.dtype)


def fill_nearest(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Every invalid cell takes the value of its nearest valid cell (Euclidean)."""
    if valid.all():
        return values
    idx = ndimage.distance_transform_edt(~valid, return_distances=False, return_indices=True)
    return values[tuple(idx)]


@dataclass(frozen=True)
class Plan:
    """How one run is tiled."""

    tile: int  # core tile size in input cells
    context: int  # cells of context around a tile the network sees (≥ receptive field)
    halo: int  # cells read around a tile (context plus what the nodata fill needs)
    # a TILE_SIZE that did not fit in the free memory, shrunk to one that does (0: none)
    shrunk_from: int = 0


def plan_tiles(card: ModelCard, scale: int, info: raster.RasterInfo, provider: str,
               tile_size: int = 0, passes: int = 1) -> Plan:
    """Halo from the receptive field; tile size from free memory and model cost unless given.

    `passes` network runs per tile (8 for the self-ensemble) shrink CPU tiles accordingly, so a
    tile still takes a few seconds and cancel stays prompt."""
    rf = card.receptive_field
    context = rf + 2  # +2: cards round the receptive field; a cell more costs nothing visible
    halo = context + math.ceil(math.sqrt(2) * rf) + 1
    per_px = float(card.extra.get("activation_bytes_per_output_pixel",
                                  DEFAULT_BYTES_PER_OUTPUT_PIXEL))
    if tile_size:
        if tile_size < MIN_TILE:
            raise DemError(f"TILE_SIZE must be 0 (automatic) or at least {MIN_TILE} cells.")
        # A tile no bigger than the raster, and one the memory can hold (an explicit TILE_SIZE
        # of 10^7 would end in MemoryError): at most half of what is free (GPU or host).
        tile = min(int(tile_size), max(info.width, info.height))
        fits = max(int(math.sqrt(0.5 * _free_bytes(provider) / per_px) / scale) - 2 * context,
                   MIN_TILE)
        fits = fits // 16 * 16 or MIN_TILE
        return Plan(min(tile, fits), context, halo, shrunk_from=tile if fits < tile else 0)
    if provider == CUDA:
        budget = min(0.5 * _free_bytes(provider), 16 * 2**30)
        max_px = budget / per_px
    else:
        budget = min(0.25 * _free_bytes(provider), 3 * 2**30)
        max_px = budget / per_px
        macs = float(card.extra.get("macs_per_output_mp", 0)) / 1e6  # per output pixel
        if macs > 0:
            max_px = min(max_px, CPU_SECONDS_PER_TILE * CPU_MACS_PER_SECOND / (macs * passes))
    side = int(math.sqrt(max_px) / scale) - 2 * context
    # Tiles under ~4 contexts waste most of the work on context; 2048 is plenty for any device.
    side = max(min(side, MAX_TILE), 4 * context, 64)
    side = side // 16 * 16
    # A raster smaller than a tile is one tile of its own size (no wasted padding).
    side = min(side, max(info.width, info.height))
    return Plan(even_tile(max(side, MIN_TILE), info.width, info.height, halo), context, halo)


def even_tile(side: int, width: int, height: int, halo: int) -> int:
    """The tile side, at most `side`, that computes the fewest cells over a width × height
    region (the raster, or one chunk of a chunked run), halos included: a 3601-cell SRTM tile
    cut by 1184 needs 4 × 4 tiles, mostly padding in the last row and column, where 4 × 4
    tiles of 912 cover it with 40 % less work. Larger wins ties."""
    def cells(t: int) -> int:
        return math.ceil(width / t) * math.ceil(height / t) * (t + 2 * halo) ** 2

    candidates = range(side, max(MIN_TILE, side // 2) - 1, -16)
    return min(candidates, key=lambda t: (cells(t), -t))


# The 8 rotations and flips of the square (k quarter turns, then an optional left-right flip).
DIHEDRAL = tuple((k, flip) for k in range(4) for flip in (False, True))


def dihedral(a: np.ndarray, k: int, flip: bool) -> np.ndarray:
    a = np.rot90(a, k)
    return a[:, ::-1] if flip else a


def undo_dihedral(a: np.ndarray, k: int, flip: bool) -> np.ndarray:
    return np.rot90(a[:, ::-1] if flip else a, -k)


class TileRunner:
    """Turns one halo-padded coarse block (NaN = nodata) into its fine core (NaN = nodata).

    With `ensemble` the network runs on the 8 rotations and flips of each tile and the result is
    their mean; with `spread` as well, the runner returns (mean, sd of the 8) per block.
    """

    def __init__(self, session: Session, scale: int, plan: Plan, info: raster.RasterInfo,
                 ensemble: bool = False, spread: bool = False, monitor: Monitor | None = None):
        self.session = session
        self.monitor = monitor  # a cancel then stops a pass midway (Session.run)
        self.card = session.card
        self.scale = scale
        self.plan = plan
        self.ensemble = ensemble or spread
        self.spread = spread
        dx, dy = raster.ground_pixel_size_m(info)
        self.coarse_cell_m = (dx + dy) / 2
        self.d = self.card.normalisation_scale(self.coarse_cell_m)
        # Every tile is padded to one shape: cuDNN picks its algorithms once and the CPU arena
        # reuses its buffers; values beyond the context never reach a kept cell.
        c = plan.context
        self.shape = (min(plan.tile, info.height) + 2 * c, min(plan.tile, info.width) + 2 * c)
        self.tiles_run = 0
        self.seconds = 0.0

    def _run(self, x: np.ndarray) -> np.ndarray:
        """One network pass on a normalised tile (H, W) → (H·s, W·s)."""
        s = self.scale
        t0 = time.perf_counter()
        y = self.session.run(np.ascontiguousarray(x, dtype=np.float32)[None, None],
                             self.monitor)
        self.seconds += time.perf_counter() - t0
        rows, cols = x.shape if self.card.input_space != "upsampled" else \
            (x.shape[0] // s, x.shape[1] // s)
        expected = (1, 1, rows * s, cols * s)
        if y.shape != expected:
            raise DemError(
                f"The model '{os.path.basename(self.card.path)}' returned shape {y.shape} for "
                f"input {x.shape} at x{s}; expected {expected}. Its card's scales or "
                "input_space do not match the network."
            )
        return y[0, 0]

    def _predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Normalised prediction of a tile and, for the ensemble, the sd of its 8 members."""
        self.tiles_run += 1
        if not self.ensemble:
            return self._run(x), None
        total = total_sq = 0.0
        for k, flip in DIHEDRAL:
            y = undo_dihedral(self._run(dihedral(x, k, flip)), k, flip).astype(np.float64)
            total = total + y
            total_sq = total_sq + y * y
        mean = total / len(DIHEDRAL)
        return mean, np.sqrt(np.maximum(total_sq / len(DIHEDRAL) - mean * mean, 0.0))

    def __call__(self, padded: np.ndarray, block: raster.Block):
        s, h, c = self.scale, block.halo, self.plan.context
        core = (slice(h, h + block.height), slice(h, h + block.width))
        valid = np.isfinite(padded)
        core_valid = valid[core]
        if not core_valid.any():
            empty = np.full((block.height * s, block.width * s), np.nan, np.float32)
            return (empty, empty) if self.spread else empty
        filled = fill_nearest(padded, valid)
        offset = float(np.mean(padded[valid], dtype=np.float64))
        window = filled[h - c : h + block.height + c, h - c : h + block.width + c]
        x = (window.astype(np.float64) - offset) / self.d
        x = np.pad(x, ((0, self.shape[0] - x.shape[0]), (0, self.shape[1] - x.shape[1])),
                   mode="edge")
        if self.card.input_space == "upsampled":
            x = bicubic_upsample(x, s)
        y, sd = self._predict(x)
        kept = (slice(c * s, (c + block.height) * s), slice(c * s, (c + block.width) * s))
        # Each nodata input cell is nodata over its whole s × s footprint, nothing more.
        mask = np.repeat(np.repeat(~core_valid, s, axis=0), s, axis=1)
        z = y[kept].astype(np.float64) * self.d + offset
        bad = int(np.count_nonzero(~np.isfinite(z) & ~mask))
        if bad:
            raise DemError(
                f"The model '{os.path.basename(self.card.path)}' returned NaN or infinite "
                f"values for {bad} of the {int(np.count_nonzero(~mask))} valid cells of the tile "
                f"at input row {block.row}, column {block.col}; its output cannot be used.")
        z[mask] = np.nan
        if not self.spread:
            return z.astype(np.float32)
        spread = sd[kept] * self.d
        spread[mask] = np.nan
        return z.astype(np.float32), spread.astype(np.float32)


@dataclass
class Result:
    output: str
    info: raster.RasterInfo
    card: ModelCard
    device_used: str
    plan: Plan
    tiles_run: int
    inference_seconds: float
    total_seconds: float


def superresolve(
    source: str,
    output: str,
    scale: int,
    model: str | None = None,
    model_file: str | None = None,
    device: str = "auto",
    tile_size: int = 0,
    monitor: Monitor | None = None,
    threads: int = 0,
    ensemble: bool = False,
    spread_output: str | None = None,
) -> Result:
    """Super-resolve band 1 of `source` by `scale` into a float32 GeoTIFF `output`.

    The output has the input's origin and CRS, cells `scale` times smaller, and nodata over the
    footprint of every nodata input cell. A cancelled or failed run leaves no file. With
    `ensemble` the result is the mean over the 8 rotations and flips of every tile (8× the
    cost); `spread_output` (which implies it) also gets their standard deviation in metres.
    """
    monitor = monitor or Monitor()
    t_start = time.perf_counter()
    scale = int(scale)
    card = load_card(scale, model, model_file)
    info = raster.read_info(source)
    session = open_session(card, device, threads)
    ensemble = ensemble or bool(spread_output)
    passes = len(DIHEDRAL) if ensemble else 1
    plan = plan_tiles(card, scale, info, session.provider, tile_size, passes)
    runner = TileRunner(session, scale, plan, info, ensemble, spread=bool(spread_output),
                        monitor=monitor)
    if plan.shrunk_from:
        monitor.warn(f"TILE_SIZE={tile_size} does not fit in the free memory; tiles of "
                     f"{plan.tile} cells are used instead (the result does not depend on it).")
    monitor.info(
        f"Model {os.path.basename(card.path)}: {card.describe()}; x{scale}, receptive field "
        f"{card.receptive_field} cells, normalisation D = {runner.d:.3f} m "
        f"(coarse cell {runner.coarse_cell_m:.2f} m)."
    )
    monitor.info(f"Device used: {session.provider} (DEVICE={device}).")
    monitor.info(
        f"Tiles of {plan.tile} × {plan.tile} input cells with {plan.context} cells of network "
        f"context and a {plan.halo}-cell halo for the nodata fill."
        + (" Self-ensemble: 8 rotations and flips per tile." if ensemble else "")
    )
    # DEFLATE of the S²-times larger output costs as much as a fast model's inference: let the
    # GeoTIFF driver compress on every core (only for this thread, only for this run).
    previous = gdal.GetThreadLocalConfigOption("GDAL_NUM_THREADS", None)
    gdal.SetThreadLocalConfigOption("GDAL_NUM_THREADS", "ALL_CPUS")
    try:
        out_info = writing.process_blocks(
            source, output, runner, halo=plan.halo, scale=scale, block_size=plan.tile,
            data_type="Float32", monitor=monitor, require_valid=True,
            extra_outputs=[(spread_output, "Float32", None)] if spread_output else (),
        )
    finally:
        gdal.SetThreadLocalConfigOption("GDAL_NUM_THREADS", previous)
    total = time.perf_counter() - t_start
    monitor.info(
        f"{runner.tiles_run} tile(s) inferred in {runner.seconds:.1f} s "
        f"({out_info.width * out_info.height / 1e6 / max(total, 1e-9):.2f} output MP/s overall)."
    )
    return Result(output, out_info, card, session.provider, plan, runner.tiles_run,
                  runner.seconds, total)
