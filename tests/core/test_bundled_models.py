"""The bundled models: one file per set of weights, and each file works at every scale its card
lists (a network run at the wrong scale's front would lose to bicubic)."""
import glob
import hashlib
import os

import numpy as np
import onnx
import pytest

from core.grid import raster, writing
from core.superres import inference, models, scoring

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
DEM = os.path.join(ROOT, "data", "jacksboro_fault_srtm3.tif")


def _weights_digest(path):
    graph = onnx.load(path).graph
    return hashlib.sha1(b"".join(i.raw_data for i in graph.initializer)).hexdigest()


def test_no_two_bundled_files_hold_the_same_weights():
    paths = sorted(glob.glob(os.path.join(models.MODELS_DIR, "*.onnx")))
    digests = [_weights_digest(p) for p in paths]
    assert len(set(digests)) == len(digests), dict(zip(paths, digests))


def test_one_vdsr30_file_serves_every_scale():
    paths = {models.bundled_model("vdsr30", s).path for s in (2, 3, 4)}
    assert paths == {os.path.join(models.MODELS_DIR, "vdsr30.onnx")}
    card = models.read_card(paths.pop())
    assert card.scales == (2, 3, 4) and card.input_space == "upsampled"


@pytest.mark.parametrize("family", ["fastsr", "vdsr30"])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_each_bundled_model_beats_bicubic_at_each_scale(tmp_path, family, scale):
    truth, _ = raster.read_array(DEM)
    truth = truth[:96, :96].astype(np.float64)
    coarse = scoring.block_mean(truth, scale)
    src = str(tmp_path / "coarse.tif")
    cell = 90.0 * scale
    writing.write_array(src, coarse.astype(np.float32),
                       raster.RasterInfo(coarse.shape[1], coarse.shape[0],
                                         (0.0, cell, 0.0, 0.0, 0.0, -cell)))
    out = str(tmp_path / "fine.tif")
    inference.superresolve(src, out, scale, model=family, device="cpu")
    fine, _ = raster.read_array(out)
    bicubic = scoring.upsample_baseline(coarse, scale, "bicubic")
    inner = (slice(2 * scale, -2 * scale),) * 2

    def rmse(z):
        return float(np.sqrt(np.mean((z[inner] - truth[inner]) ** 2)))

    assert rmse(fine) < 0.9 * rmse(bicubic)
