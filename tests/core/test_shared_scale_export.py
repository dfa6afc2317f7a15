"""A network whose weights serve every scale (vdsr30) exports as one file for all its scales:
the card says so, the export's parity check passes at each scale, and the runner and the
evaluation script agree on it."""
import numpy as np
import pytest

from training.dataset import Dem


def _dem(name, size, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    walk = np.cumsum(rng.normal(0, 3, (size, size)), 0)
    z = 600 + 250 * np.sin(x / 13.0) * np.cos(y / 9.0) + walk
    return Dem(name, z.astype(np.float32), 90.0, 90.0)


@pytest.fixture(scope="module")
def tiny_vdsr30(tmp_path_factory):
    pytest.importorskip("torch")
    from training.export import export_checkpoint
    from training.train import parse_args, train

    out = tmp_path_factory.mktemp("vdsr30")
    args = parse_args(["--model", "vdsr30", "--channels", "4", "--steps", "2", "--epoch-steps",
                       "2", "--batch", "2", "--patch", "48", "--threads", "1", "--out", str(out)])
    train(args, [_dem("train.tif", 120, 0)], [_dem("val.tif", 120, 1)], lambda _: None)
    return export_checkpoint(out / "last.pt", out / "models", log=lambda _: None)


def test_one_file_with_every_scale_in_its_card(tiny_vdsr30):
    from core.superres.models import read_card

    assert [p.name for p in tiny_vdsr30] == ["vdsr30.onnx"]
    card = read_card(str(tiny_vdsr30[0]))
    assert card.scales == (2, 3, 4) and card.input_space == "upsampled"
    assert card.input_name == "upsampled"
    assert card.receptive_field == 30 // 2 + 2  # the largest: x2's
    assert set(card.extra["validation"]) == {"x2", "x3", "x4"}


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_runner_and_evaluation_agree_at_every_scale(tiny_vdsr30, tmp_path, scale):
    from core.grid import raster, writing
    from core.superres import inference
    from training.evaluate import OnnxModel
    from training.export import PARITY_TOLERANCE_M

    z = _dem("x.tif", 60, 3).z
    src, out = str(tmp_path / "in.tif"), str(tmp_path / "out.tif")
    writing.write_array(src, z, raster.RasterInfo(60, 60, (0.0, 90.0, 0.0, 0.0, 0.0, -90.0)))
    inference.superresolve(src, out, scale, model_file=str(tiny_vdsr30[0]), device="cpu",
                           tile_size=24)
    tiled, _ = raster.read_array(out)
    whole = OnnxModel(tiny_vdsr30[0], threads=1).upscale(z.astype(np.float64), 90.0, scale)
    assert tiled.shape == (60 * scale, 60 * scale)
    assert np.nanmax(np.abs(tiled - whole)) < PARITY_TOLERANCE_M
