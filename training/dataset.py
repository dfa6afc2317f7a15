"""Training data from real DEM GeoTIFFs: nodata-free patches, augmentation, degradation, scaling.

Normalisation (the same rule everywhere, recorded in every model card):

    x = (z - c) / D,   D = scale_m + scale_per_cell * coarse_cell_m

(one definition: core.superres.models.normalisation_scale).

c is any constant per tile (the runner uses the mean of the tile's valid coarse cells; training
uses the patch's coarse mean), so no per-tile min/max and no seams. D grows with the coarse
ground cell size because the residual that bicubic leaves grows with it (measured in
``python -m training.normstats``): the network then sees terrain in units of the grid, which
transfers between 30 m and 90 m data and across scales.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.superres.models import normalisation_scale
from core.superres.scoring import block_mean

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "dem" / "train"
# Whole files never trained on: a high plateau (30 m-ish SRTM3 crop, Anatolia), temperate
# mountains (White Mountains, SRTM3) and a Himalayan UTM basin with a large nodata mask.
VALIDATION_FILES = (
    "srtm_ref_N39E040.tif",
    "N44W072_srtm3.tif",
    "mandakini_srtm90_utm44.tif",
)
# Chosen from the measurement in training/normstats.py (see models/MODELS.md).
SCALE_M = 0.0
SCALE_PER_CELL = 0.1


@dataclass
class Dem:
    """One elevation grid in memory: float32 with NaN for nodata, and its ground cell size."""

    name: str
    z: np.ndarray
    dx_m: float
    dy_m: float

    @property
    def cell_m(self) -> float:
        """The card's cell size: mean of the ground dx and dy in metres."""
        return (self.dx_m + self.dy_m) / 2


def load_dem(path: Path | str) -> Dem:
    # GDAL only here: a packed corpus (load_packed) trains where GDAL is not installed.
    from core.grid.raster import ground_pixel_size_m, read_array

    z, info = read_array(str(path))
    dx, dy = ground_pixel_size_m(info)
    return Dem(Path(path).name, z.astype(np.float32), float(dx), float(dy))


def coarsened(dem: Dem, factor: int) -> Dem:
    """The DEM as a sensor with `factor` times larger cells would record it (block mean).

    Terrain is roughly self-similar, so a 30 m tile averaged to 90 m is a plausible 90 m tile:
    this adds training examples of the steep-per-cell regime (Himalayan 90 m SRTM) that the
    corpus otherwise holds little of. NaN blocks stay NaN.
    """
    if factor == 1:
        return dem
    return Dem(f"{dem.name}/{factor}", block_mean(dem.z, factor).astype(np.float32),
               dem.dx_m * factor, dem.dy_m * factor)


def split_files(data_dir: Path | str = DATA_DIR, validation=VALIDATION_FILES):
    """Training and validation file lists; a validation file is never in the training list."""
    files = sorted(Path(data_dir).glob("*.tif"))
    names = {f.name for f in files}
    missing = set(validation) - names
    if missing:
        raise FileNotFoundError(f"validation files not found in {data_dir}: {sorted(missing)}")
    train = [f for f in files if f.name not in validation]
    val = [f for f in files if f.name in validation]
    return train, val


def valid_corners(z: np.ndarray, size: int) -> np.ndarray:
    """Flat indices of the top-left corners of every size x size window free of NaN."""
    bad = np.isnan(z).astype(np.int32)
    integral = np.zeros((z.shape[0] + 1, z.shape[1] + 1), np.int32)
    integral[1:, 1:] = bad.cumsum(0).cumsum(1)
    counts = (integral[size:, size:] - integral[:-size, size:]
              - integral[size:, :-size] + integral[:-size, :-size])
    rows, cols = np.nonzero(counts == 0)
    return rows.astype(np.int64) * z.shape[1] + cols


def augment(patch: np.ndarray, k: int, flip: bool) -> np.ndarray:
    """One of the 8 dihedral transforms; values are only moved, never changed."""
    out = np.rot90(patch, k)
    return np.ascontiguousarray(out[:, ::-1] if flip else out)


def bicubic_downsample(z: np.ndarray, scale: int) -> np.ndarray:
    """Jiao et al. (2020)'s degradation: antialiased bicubic shrink by 1/S (imresize-like)."""
    import torch
    import torch.nn.functional as F  # noqa: N812 (PyTorch's convention)

    t = torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32)).reshape(-1, 1, *z.shape[-2:])
    small = F.interpolate(t, scale_factor=1 / scale, mode="bicubic", antialias=True,
                          align_corners=False)
    return small.numpy().reshape(*z.shape[:-2], *small.shape[-2:])


DEGRADATIONS = {"block_mean": block_mean, "bicubic": bicubic_downsample}


class PatchSampler:
    """Random nodata-free, augmented (coarse, fine) patch pairs, normalised, from whole files.

    Files are drawn in proportion to how many valid windows they hold, windows uniformly among
    those, so every valid cell has about the same chance to be seen. With `groups` (one label
    per DEM, e.g. its product) every group is drawn equally often instead, or as often as
    `shares` says (relative weights by label), files within a group in proportion to their
    windows: a few small LiDAR tiles then weigh as much as the SRTM tiles, which hold over two
    hundred times more windows.
    """

    def __init__(self, dems: list[Dem], fine_size: int, seed: int = 0,
                 degradation: str = "block_mean", augment_data: bool = True,
                 groups: list[str] | None = None, shares: dict[str, float] | None = None):
        if fine_size % 12:
            raise ValueError("fine patch size must be a multiple of 12 (scales 2, 3 and 4)")
        self.dems = dems
        self.size = fine_size
        self.degrade = DEGRADATIONS[degradation]
        self.augment_data = augment_data
        self.rng = np.random.default_rng(seed)
        self.corners = [valid_corners(d.z, fine_size) for d in dems]
        counts = np.array([len(c) for c in self.corners], dtype=np.float64)
        if counts.sum() == 0:
            raise ValueError(f"no nodata-free {fine_size}x{fine_size} window in the data")
        self.weights = counts / counts.sum()
        if groups is not None:
            if len(groups) != len(dems):
                raise ValueError("one group label per DEM")
            labels = np.array(groups)
            live = [g for g in dict.fromkeys(groups) if counts[labels == g].sum() > 0]
            share = {g: 1.0 for g in live} if shares is None else {g: shares.get(g, 0.0)
                                                                    for g in live}
            if sum(share.values()) <= 0:
                raise ValueError(f"no positive share for any of the groups {live}")
            weights = np.zeros_like(counts)
            for g in live:
                member = labels == g
                weights[member] = counts[member] / counts[member].sum() * share[g]
            self.weights = weights / weights.sum()

    def fine_patch(self) -> tuple[np.ndarray, float]:
        """One augmented fine patch (no NaN) and its fine cell size in metres."""
        i = self.rng.choice(len(self.dems), p=self.weights)
        dem = self.dems[i]
        flat = self.corners[i][self.rng.integers(len(self.corners[i]))]
        r, c = divmod(int(flat), dem.z.shape[1])
        patch = dem.z[r:r + self.size, c:c + self.size]
        if self.augment_data:
            patch = augment(patch, int(self.rng.integers(4)), bool(self.rng.integers(2)))
        return patch, dem.cell_m

    def batch(self, n: int, scale: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Normalised (coarse, fine) arrays of shape (n, 1, h, w) and each sample's D in metres."""
        fine, cells = zip(*(self.fine_patch() for _ in range(n)))
        fine = np.stack(fine)[:, None].astype(np.float64)
        coarse = self.degrade(fine, scale)
        offset = coarse.mean(axis=(1, 2, 3), keepdims=True)
        d = normalisation_scale(np.array(cells) * scale, SCALE_M, SCALE_PER_CELL)
        d = d.reshape(-1, 1, 1, 1)
        return ((coarse - offset) / d).astype(np.float32), ((fine - offset) / d).astype(
            np.float32), d.ravel()


def validation_crops(dems: list[Dem], size: int = 192, per_file: int = 4, seed: int = 1):
    """Fixed nodata-free fine crops of the held-out files for the per-epoch validation table.

    A file smaller than `size` on a side (the 5 m LiDAR tiles) gives crops as large as fit,
    rounded down to a multiple of 12, so that no held-out product drops out of the table.
    """
    rng = np.random.default_rng(seed)
    crops = []
    for dem in dems:
        side = min(size, min(dem.z.shape) // 12 * 12)
        if side < 48:
            continue
        corners = valid_corners(dem.z, side)
        if len(corners) == 0:
            continue
        for flat in rng.choice(corners, size=min(per_file, len(corners)), replace=False):
            r, c = divmod(int(flat), dem.z.shape[1])
            crops.append(Dem(dem.name, dem.z[r:r + side, c:c + side].copy(), dem.dx_m,
                             dem.dy_m))
    return crops
