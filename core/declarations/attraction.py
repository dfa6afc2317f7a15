"""demsr:attraction declared: sub-pixel upscaling by the spatial attraction model, and its
chunk kernel for large areas."""
from __future__ import annotations

from dataclasses import dataclass

from .. import attraction
from ..errors import DemError
from ..largearea.chunks import Kernel, sub_windows
from ..params import BOOLEAN, ENUM, INTEGER, RASTER_OUT, AlgorithmSpec, Choice, Output, Param
from .common import ENGINE, INPUT_DEM


@dataclass(frozen=True)
class AttractionKernel(Kernel):
    """Sub-pixels of a chunk read with a one-cell halo (the 3 × 3 neighbours), in blocks."""

    scale: int
    neighbourhood: str
    assignment: str
    preserve_mean: bool
    algorithm = "attraction"

    @property
    def halo(self) -> int:
        return 1

    def pieces(self, padded, chunk, moments, model, threads, summary):
        size = attraction.block_size_for(self.scale)
        for block, sub in sub_windows(padded, chunk, 1, size, 1):
            out = attraction.upscale_padded(sub, self.scale, self.neighbourhood, self.assignment,
                                            self.preserve_mean, threads=threads or None)
            yield block.row * self.scale, block.col * self.scale, out


def kernel(values, info, chunk_size, monitor, extras=()):
    scale = attraction.check_scale(values["scale"])
    if max(info.width, info.height) * scale > attraction.MAX_SIDE:
        raise DemError(f"SCALE: {scale} makes a raster side longer than GDAL can address.")
    return AttractionKernel(scale, values["neighbourhood"], values["assignment"],
                            bool(values["preserve_mean"])), None


SPEC = AlgorithmSpec(
    id="attraction",
    summary="Splits each cell into SCALE × SCALE sub-pixels valued by the neighbours' "
            "attraction.",
    about=(
        "Splits every cell into scale × scale sub-pixels that the neighbouring cells 'attract' "
        "(Mokarram and Hojati 2018): a neighbour attracts a sub-pixel in proportion to its "
        "elevation and in inverse proportion to its distance. Nodata neighbours are ignored; "
        "nodata cells stay nodata.\n\n"
        "Measured on real SRTM DEMs (input = block means, scored against the DEMs themselves), "
        "the default mode beats nearest neighbour and bilinear but not bicubic or Lanczos; the "
        "paper's own rule (touching, max attraction) is worse than nearest neighbour, because "
        "it always hands a sub-pixel a neighbour's value and never the cell's own. The numbers "
        "are in the documentation of the algorithm."
    ),
    params=(
        INPUT_DEM,
        Param("SCALE", INTEGER, "Scale factor (sub-pixels per cell side)",
              "each cell becomes scale × scale sub-pixels.", default=2, minimum=2),
        Param("NEIGHBOURHOOD", ENUM, "Neighbourhood",
              "touching: the neighbours whose square meets the sub-pixel's (inner sub-pixels "
              "keep the cell's value); quadrant: the 3 neighbours of the sub-pixel's quarter "
              "of the cell; surrounding: all 8. At scale 2 touching and quadrant are the same.",
              default=attraction.DEFAULT_NEIGHBOURHOOD,
              choices=tuple(Choice(n) for n in attraction.NEIGHBOURHOODS)),
        Param("ASSIGNMENT", ENUM, "Assignment",
              "max_attraction: the sub-pixel takes the value of the neighbour that attracts it "
              "most (the paper's rule); weighted_mean: the attraction-weighted mean of the "
              "neighbours and the cell itself.",
              default=attraction.DEFAULT_ASSIGNMENT,
              choices=(Choice("max_attraction", "max attraction (the paper's rule)"),
                       Choice("weighted_mean",
                              "attraction-weighted mean (with the centre cell)"))),
        Param("PRESERVE_MEAN", BOOLEAN, "Preserve each cell's mean",
              "shift each cell's sub-pixels so that they average back to the cell's value.",
              default=attraction.DEFAULT_PRESERVE_MEAN),
        ENGINE,
    ),
    outputs=(
        Output("OUTPUT", RASTER_OUT, "Upscaled DEM",
               "Float32 GeoTIFF on the input's origin with cells scale times smaller, the "
               "input's CRS and nodata."),
    ),
    kernel=kernel,
    notes="Mokarram and Hojati (2018), Landform classification using a sub-pixel spatial "
          "attraction model to increase spatial resolution of digital elevation model (DEM), "
          "Egyptian Journal of Remote Sensing and Space Sciences 21.",
)
