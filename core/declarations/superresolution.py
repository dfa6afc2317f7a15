"""demsr:superresolution declared: DEM super-resolution with a residual CNN (ONNX), and its
chunk kernel for large areas."""
from __future__ import annotations

import os
from dataclasses import dataclass, replace

from ..errors import DemError
from ..grid.raster import RasterInfo
from ..largearea.chunks import Kernel, ModelBlob, cached_session, sub_windows
from ..params import (
    BOOLEAN,
    ENUM,
    FILE,
    INTEGER,
    RASTER_OUT,
    STRING_OUT,
    AlgorithmSpec,
    Choice,
    Output,
    Param,
)
from ..superres import inference
from ..superres.models import bundled_families
from .common import ENGINE, INPUT_DEM


@dataclass(frozen=True)
class SuperresolutionKernel(Kernel):
    """The network over a chunk in tiles, each read with the model's halo (wider than what the
    network sees around a cell), normalised with the whole raster's statistics."""

    card: object  # core.superres.models.ModelCard
    scale: int
    plan: inference.Plan
    device: str
    info: RasterInfo  # the whole raster: normalisation and tile shape as in-process
    ensemble: bool = False
    spread: bool = False  # also the sd of the 8 ensemble members (implies ensemble)
    algorithm = "superresolution"

    @property
    def halo(self) -> int:
        return self.plan.halo

    @property
    def extras(self) -> tuple[str, ...]:
        return ("spread",) if self.spread else ()

    def pieces(self, padded, chunk, moments, model, threads, summary):
        session = cached_session(self.card, model, self.device, threads)
        runner = inference.TileRunner(session, self.scale, self.plan, self.info, self.ensemble,
                                      spread=self.spread)
        halo = self.plan.halo
        for block, sub in sub_windows(padded, chunk, halo, self.plan.tile, halo):
            yield block.row * self.scale, block.col * self.scale, runner(sub, block)
        summary.update(provider=session.provider, tiles=runner.tiles_run,
                       inference_s=round(runner.seconds, 3))

    def stats(self, summaries):
        return {"providers": sorted({s.get("provider") for s in summaries
                                     if s.get("provider")})}


def kernel(values, info, chunk_size, monitor, extras=()):
    scale = int(values["scale"])
    device = values["device"]
    card = inference.load_card(scale, values["model"], values["model_file"])
    provider = inference.CUDA if device == "cuda" else inference.CPU
    spread = "spread" in extras
    ensemble = bool(values["ensemble"]) or spread
    passes = len(inference.DIHEDRAL) if ensemble else 1
    plan = inference.plan_tiles(card, scale, info, provider, int(values["tile_size"]), passes)
    # Tiles cut each chunk evenly: a chunk of 2048 with tiles of 1300 would run a second, mostly
    # padded 1300-tile for its last 748 cells; two of about 1024 cost less for the same result.
    # A raster smaller than a chunk is one chunk of its own size.
    width, height = min(chunk_size, info.width), min(chunk_size, info.height)
    plan = replace(plan, tile=inference.even_tile(min(plan.tile, max(width, height)), width,
                                                  height, plan.halo))
    monitor.info(
        f"Model {os.path.basename(card.path)}: {card.describe()}; x{scale}, tiles of "
        f"{plan.tile} × {plan.tile} input cells, {plan.halo}-cell halo."
    )
    return (SuperresolutionKernel(card, scale, plan, device, info, ensemble, spread),
            ModelBlob.read(card.path))


def rules(values: dict) -> None:
    # A tile narrower than the network's context is mostly halo; the runner has always refused
    # one, but only after the model was loaded: now both front doors refuse it up front.
    if 0 < values["tile_size"] < inference.MIN_TILE:
        raise DemError(f"TILE_SIZE: {values['tile_size']} is too small; allowed: 0 (automatic) "
                       f"or a whole number ≥ {inference.MIN_TILE}.")


def bundled_models() -> tuple[tuple[Choice, ...], str | None]:
    """The bundled model families (what models/ holds) and the default one."""
    families, default = bundled_families()
    return tuple(Choice(f) for f in families), default


SPEC = AlgorithmSpec(
    id="superresolution",
    summary="Makes a DEM 2, 3 or 4 times finer with a residual convolutional network (ONNX).",
    about=(
        "Makes a DEM 2, 3 or 4 times finer with a convolutional neural network trained on real "
        "DEMs. The result has the input's origin and CRS, cells scale times smaller, and "
        "nodata wherever the input cell was nodata. The raster is processed tile by tile with "
        "overlapping edges, so the result does not depend on the tile size and memory stays "
        "bounded.\n\n"
        "The bundled fastsr is the faster and more accurate network; each model file carries "
        "a card with its scales, training data and validation scores. Its held-out accuracy "
        "and speed against bicubic and Lanczos are in the documentation of the algorithm."
    ),
    params=(
        INPUT_DEM,
        Param("SCALE", INTEGER, "Scale factor (2, 3 or 4 for the bundled models)",
              "the factor itself (2 makes cells half as wide); the model's card lists the "
              "factors it supports.", default=2, minimum=2),
        Param("MODEL", ENUM, "Bundled model",
              "the network that computes the result; fastsr is the faster and more accurate.",
              choices=bundled_models),
        Param("MODEL_FILE", FILE, "Custom ONNX model (overrides the bundled model)",
              "your own .onnx file with a demsr model card; used instead of the bundled model.",
              optional=True, extension="onnx"),
        Param("DEVICE", ENUM, "Device",
              "auto uses the GPU when onnxruntime-gpu and CUDA are available, else the CPU; "
              "cuda uses the GPU or says why it cannot; cpu uses the processor. The one used "
              "is reported.", default="auto", choices=tuple(Choice(d) for d in inference.DEVICES)),
        Param("TILE_SIZE", INTEGER, "Tile size in input cells (0 = automatic)",
              f"input cells per tile side, at least {inference.MIN_TILE}; 0 chooses it from the "
              "free memory.", default=0, minimum=0),
        Param("ENSEMBLE", BOOLEAN, "Self-ensemble over 8 rotations and flips (8× the work)",
              "average the network over the 8 rotations and flips of every tile: about 0.6 % "
              "lower RMSE (median of ten held-out DEMs) at 4 to 11 times the time.",
              default=False),
        ENGINE,
    ),
    outputs=(
        Output("OUTPUT", RASTER_OUT, "Super-resolved DEM",
               "Float32 GeoTIFF, cells scale times smaller."),
        Output("OUTPUT_SPREAD", RASTER_OUT, "Ensemble spread (sd of the 8 results, m)",
               "the standard deviation of the 8 ensemble results (implies the self-ensemble). "
               "Cells with a larger spread tend to have larger errors, but it is not a "
               "standard error: the error exceeds one spread in most cells.", optional=True,
               create_by_default=False, option=True),
        Output("DEVICE_USED", STRING_OUT, "onnxruntime execution provider used",
               "the device the network ran on."),
    ),
    rules=rules,
    kernel=kernel,
    extras={"spread": "OUTPUT_SPREAD"},
    notes="The 30-layer network follows Jiao, Wang, Lv and Peng (2020), Super-resolution "
          "reconstruction of a digital elevation model based on a deep residual network, Open "
          "Geosciences 12; the fast one is an EDSR-style network on the coarse grid (Lim et "
          "al. 2017, Enhanced deep residual networks for single image super-resolution, CVPR "
          "workshops).",
)
