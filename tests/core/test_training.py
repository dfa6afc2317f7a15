"""The training pipeline: data invariants, network properties, a tiny train + ONNX export.

Quick on a CPU (CI): the tiny model has a few thousand parameters and trains for a few steps.
"""
from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from training.dataset import (
    DATA_DIR,
    SCALE_M,
    SCALE_PER_CELL,
    Dem,
    PatchSampler,
    augment,
    block_mean,
    coarsened,
    load_dem,
    split_files,
    valid_corners,
)

REAL_FILE = DATA_DIR / "N49E011_srtm.tif"


def synthetic_dem(name: str, size: int, seed: int, holes: bool = False) -> Dem:
    """Rough terrain in metres (smooth ridges + random-walk detail), optionally with voids."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    z = 600 + 250 * np.sin(x / 13.0) * np.cos(y / 9.0) + np.cumsum(rng.normal(0, 3, (size, size)),
                                                                     axis=0)
    z = z.astype(np.float32)
    if holes:
        z[10:30, 40:90] = np.nan
        z[size // 2:, : size // 3] = np.nan
    return Dem(name, z, 85.0, 92.0)


def small_real_or_synthetic(name: str, seed: int, size: int = 240) -> Dem:
    """A crop of a real training DEM when the data are present (dev machines), else synthetic."""
    if REAL_FILE.exists():
        dem = load_dem(REAL_FILE)
        corners = valid_corners(dem.z, size)
        r, c = divmod(int(corners[len(corners) * (seed + 1) // 3]), dem.z.shape[1])
        return Dem(name, dem.z[r:r + size, c:c + size].copy(), dem.dx_m, dem.dy_m)
    return synthetic_dem(name, size, seed)


# --- dataset invariants (no torch) ------------------------------------------------------------

def test_block_mean_of_known_array():
    z = np.arange(16, dtype=np.float64).reshape(4, 4)
    np.testing.assert_array_equal(block_mean(z, 2), [[2.5, 4.5], [10.5, 12.5]])
    batch = np.stack([z, z + 1])[:, None]
    np.testing.assert_array_equal(block_mean(batch, 4)[:, 0, 0, 0], [7.5, 8.5])


def test_augment_moves_values_only():
    patch = np.random.default_rng(0).normal(size=(6, 6)).astype(np.float32)
    seen = set()
    for k in range(4):
        for flip in (False, True):
            out = augment(patch, k, flip)
            assert Counter(out.ravel().tolist()) == Counter(patch.ravel().tolist())
            seen.add(out.tobytes())
    assert len(seen) == 8  # the eight dihedral transforms are all different


def test_valid_corners_avoid_nodata():
    z = np.zeros((10, 10), np.float32)
    z[4, 4] = np.nan
    corners = valid_corners(z, 5)
    rows, cols = np.divmod(corners, 10)
    for r, c in zip(rows, cols):
        assert not np.isnan(z[r:r + 5, c:c + 5]).any()
    assert len(corners) == 36 - 25  # 6x6 corners, the 5x5 of them covering (4, 4) excluded


def test_patches_have_no_nan_and_are_normalised():
    dem = synthetic_dem("holes.tif", 160, 0, holes=True)
    sampler = PatchSampler([dem], 48, seed=3)
    for scale in (2, 3, 4):
        coarse, fine, d = sampler.batch(8, scale)
        assert coarse.shape == (8, 1, 48 // scale, 48 // scale)
        assert fine.shape == (8, 1, 48, 48)
        assert np.isfinite(coarse).all() and np.isfinite(fine).all()
        np.testing.assert_allclose(coarse.mean(axis=(1, 2, 3)), 0, atol=1e-4)  # tile-mean offset
        np.testing.assert_allclose(d, SCALE_M + SCALE_PER_CELL * dem.cell_m * scale)
        # coarse is the block mean of fine (both shifted and scaled the same way)
        np.testing.assert_allclose(block_mean(fine, scale), coarse, atol=1e-4)


def test_coarsened_copy_is_the_block_mean_with_larger_cells():
    dem = synthetic_dem("hills.tif", 31, 2, holes=False)
    dem.z[0, 0] = np.nan
    twice = coarsened(dem, 2)
    assert twice.z.shape == (15, 15)  # the odd last row and column are dropped
    assert (twice.dx_m, twice.dy_m) == (170.0, 184.0)
    assert np.isnan(twice.z[0, 0])  # a block touching nodata is nodata
    np.testing.assert_allclose(twice.z[3, 5], dem.z[6:8, 10:12].mean(), rtol=1e-6)
    assert coarsened(dem, 1) is dem


def test_whole_files_are_held_out(tmp_path):
    for name in ("a.tif", "b.tif", "c.tif"):
        (tmp_path / name).write_bytes(b"")
    train, val = split_files(tmp_path, ("b.tif",))
    assert [p.name for p in train] == ["a.tif", "c.tif"]
    assert [p.name for p in val] == ["b.tif"]
    with pytest.raises(FileNotFoundError):
        split_files(tmp_path, ("missing.tif",))


# --- networks ----------------------------------------------------------------------------------

def _randomise(model, seed: int = 0):
    """Non-trivial weights everywhere (the trained-from-zero residual would hide bugs)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    return model.eval()


def test_vdsr30_parameter_count():
    torch = pytest.importorskip("torch")  # noqa: F841
    from training.networks import Vdsr30, count_parameters

    expected = 64 * 9 + 64 + 28 * (64 * 64 * 9 + 64) + 64 * 9 + 1
    assert count_parameters(Vdsr30()) == expected == 1_035_201


def test_bicubic_front_reproduces_linear_ramps():
    torch = pytest.importorskip("torch")
    from training.networks import BicubicUpsample

    for scale in (2, 3, 4):
        coarse = torch.arange(12.0).reshape(1, 1, 1, 12).repeat(1, 1, 9, 1) * 3 + 5
        fine = BicubicUpsample(scale)(coarse)[0, 0]
        # fine sub-cell i of coarse column k sits at k + (i + 0.5)/S - 0.5 (cell-centre grids)
        centres = (torch.arange(12 * scale) + 0.5) / scale - 0.5
        inner = slice(2 * scale, -2 * scale)
        torch.testing.assert_close(fine[4, inner], (centres * 3 + 5)[inner], atol=1e-4, rtol=0)


@pytest.mark.parametrize("family", ["vdsr30", "fastsr", "srcnn3"])
def test_offset_equivariance(family):
    torch = pytest.importorskip("torch")
    from training.networks import build

    config = {"fastsr": {"channels": 8, "blocks": 2}, "vdsr30": {"depth": 6, "channels": 8}}
    model = _randomise(build(family, **config.get(family, {})))
    x = torch.randn(1, 1, 30, 34)
    for scale in (2, 3):
        with torch.no_grad():
            shifted = model(x + 7.5, scale) - 7.5
            plain = model(x, scale)
        rf = model.receptive_field(scale) * scale  # zero padding only reaches this far in
        torch.testing.assert_close(shifted[..., rf:-rf, rf:-rf], plain[..., rf:-rf, rf:-rf],
                                   atol=1e-4, rtol=0)
        assert (shifted - plain).abs().max() > 1e-3  # the border does see the zero padding


def test_receptive_field_is_honest():
    torch = pytest.importorskip("torch")
    from training.networks import build

    config = {"fastsr": {"channels": 8, "blocks": 2}, "vdsr30": {"depth": 6, "channels": 8}}
    for family in ("fastsr", "vdsr30"):
        model = _randomise(build(family, **config[family]))
        scale = 2
        x = torch.randn(1, 1, 41, 41)
        y = x.clone()
        y[..., 20, 20] += 10.0  # a change in one coarse cell
        with torch.no_grad():
            diff = (model(y, scale) - model(x, scale)).abs()[0, 0]
        rows = torch.nonzero(diff.amax(dim=1) > 0).ravel()
        # distance in coarse cells from the changed cell to the parent cell of an affected pixel
        reach = max(20 - int(rows.min()) // scale, int(rows.max()) // scale - 20)
        assert reach == model.receptive_field(scale)


# --- tiny training run, export, parity, card ---------------------------------------------------

@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    pytest.importorskip("torch")
    pytest.importorskip("onnxruntime")
    from training.export import export_checkpoint
    from training.train import parse_args, train

    out = tmp_path_factory.mktemp("run")
    args = parse_args(["--model", "fastsr", "--channels", "8", "--blocks", "1", "--steps", "6",
                       "--epoch-steps", "3", "--batch", "4", "--patch", "48",
                       "--threads", "1", "--out", str(out)])
    logs: list[str] = []
    ckpt = train(args, [small_real_or_synthetic("train.tif", 0)],
                 [small_real_or_synthetic("val.tif", 1)], logs.append)
    paths = export_checkpoint(out / "last.pt", out / "models", log=logs.append)
    return ckpt, paths, logs, args


def test_tiny_training_logs_and_checkpoints(tiny_run):
    ckpt, _, logs, args = tiny_run
    assert ckpt["step"] == 6
    assert ckpt["train_files"] == ["train.tif"] and ckpt["validation_files"] == ["val.tif"]
    assert any("validation after epoch 2" in line for line in logs)
    assert len(ckpt["history"]) == 2 and ckpt["history"][-1]["validation"][0]["scale"] == 2
    assert (args.out / "last.pt").exists()


def test_resume_continues_from_checkpoint(tiny_run, tmp_path):
    import shutil

    from training.train import parse_args, train

    _, _, _, args = tiny_run
    shutil.copy(args.out / "last.pt", tmp_path / "last.pt")
    resumed = parse_args(["--model", "fastsr", "--channels", "8", "--blocks", "1", "--steps",
                          "8", "--epoch-steps", "100", "--batch", "2", "--patch", "48",
                          "--threads", "1", "--out", str(tmp_path), "--resume"])
    logs: list[str] = []
    ckpt = train(resumed, [small_real_or_synthetic("train.tif", 0)], [], logs.append)
    assert "resumed" in logs[0] and ckpt["step"] == 8


def test_losses_by_hand():
    torch = pytest.importorskip("torch")
    from training.train import training_loss

    target = torch.zeros(1, 1, 2, 2)
    pred = torch.tensor([[[[1.0, 3.0], [1.0, 3.0]]]])
    # elevation errors 1, 3, 1, 3; x differences 2, 2 against 0; y differences 0, 0
    assert training_loss(pred, target, 0.0, "l1").item() == pytest.approx(2.0)
    assert training_loss(pred, target, 0.0, "mse").item() == pytest.approx(5.0)
    assert training_loss(pred, target, 0.5, "l1").item() == pytest.approx(2.0 + 0.5 * (2 + 0))
    assert training_loss(pred, target, 0.5, "mse").item() == pytest.approx(5.0 + 0.5 * (4 + 0))


def test_init_starts_from_checkpoint_weights(tiny_run, tmp_path):
    import torch

    from training.train import load_checkpoint, parse_args, train

    _, _, _, args = tiny_run
    fine_tune = parse_args(["--model", "fastsr", "--channels", "8", "--blocks", "1", "--steps",
                            "1", "--epoch-steps", "100", "--batch", "2", "--patch", "48",
                            "--lr", "1e-12", "--loss", "mse", "--coarsen", "1", "2",
                            "--threads", "1", "--out", str(tmp_path),
                            "--init", str(args.out / "last.pt")])
    logs: list[str] = []
    ckpt = train(fine_tune, [small_real_or_synthetic("train.tif", 0)], [], logs.append)
    start = load_checkpoint(args.out / "last.pt")["model"]
    assert any("initialised from" in line for line in logs) and ckpt["step"] == 1
    for name, weight in ckpt["model"].items():  # one step at lr 1e-12 moves nothing visibly
        torch.testing.assert_close(weight, start[name], atol=1e-6, rtol=0)
    # the card counts the parent's training too, oldest stage first
    from training.export import training_stages

    stages = training_stages(ckpt)
    assert [st["steps"] for st in stages] == [6, 1]
    assert [st["loss"] for st in stages] == ["l1", "mse"]
    assert stages[1]["coarsen"] == [1, 2]


def test_onnx_files_contract_and_parity(tiny_run):
    import onnxruntime as ort

    from training.export import PARITY_TOLERANCE_M, check_parity
    from training.train import model_from_checkpoint

    ckpt, paths, _, _ = tiny_run
    assert [p.name for p in paths] == ["fastsr_x2.onnx", "fastsr_x3.onnx", "fastsr_x4.onnx"]
    model = model_from_checkpoint(ckpt)
    for scale, path in zip((2, 3, 4), paths):
        assert path.stat().st_size < 10e6
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        assert [i.name for i in session.get_inputs()] == ["coarse"]
        assert [o.name for o in session.get_outputs()] == ["fine"]
        for h, w in ((17, 23), (32, 9)):  # dynamic height and width
            x = np.random.default_rng(h).normal(size=(2, 1, h, w)).astype(np.float32)
            (y,) = session.run(["fine"], {"coarse": x})
            assert y.shape == (2, 1, h * scale, w * scale)
        assert check_parity(path, model, scale, ckpt["normalisation"]) <= PARITY_TOLERANCE_M


def test_onnx_is_offset_equivariant(tiny_run):
    import onnxruntime as ort

    from core.superres.models import read_card

    _, paths, _, _ = tiny_run
    for path in paths:
        card = read_card(str(path))
        scale, rf = card.scales[0], card.receptive_field
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        x = np.random.default_rng(1).normal(size=(1, 1, 30, 30)).astype(np.float32) * 5
        (a,) = session.run(["fine"], {"coarse": x})
        (b,) = session.run(["fine"], {"coarse": x + 40.0})
        inner = (0, 0, slice(rf * scale, -rf * scale), slice(rf * scale, -rf * scale))
        np.testing.assert_allclose(b[inner] - 40.0, a[inner], atol=1e-3)


def test_card_content(tiny_run):
    from core.superres.models import read_card_items

    ckpt, paths, _, _ = tiny_run
    card = read_card_items(str(paths[1]))
    assert card["card_version"] == 1
    assert card["family"] == "fastsr" and card["scales"] == [3]
    assert card["input_space"] == "coarse"
    assert card["input_name"] == "coarse" and card["output_name"] == "fine"
    assert card["normalisation"] == {"offset": "tile_mean", "scale_m": SCALE_M,
                                     "scale_per_cell": SCALE_PER_CELL}
    assert card["receptive_field"] == 3 + 2 * 1
    assert card["degradation"] == "block_mean"
    assert card["training_data"] == ["train.tif"] and card["validation_files"] == ["val.tif"]
    # shared body + the x3 tail only (8*9+8 head, 2*(8*8*9+8) block, 8*8*9+8 tail, 8*9*9+9)
    assert card["parameters"] == 80 + 2 * 584 + 584 + 657
    assert card["macs_per_output_mp"] > 0
    assert {"bicubic", "fastsr"} <= set(card["validation"])
    assert card["trained_on"]["steps"] == ckpt["step"]
    for key in ("architecture", "license"):
        assert isinstance(card[key], str) and card[key]
    json.dumps(card)


def test_runner_reads_the_card_and_tiles_like_whole_file_inference(tiny_run, tmp_path):
    """The exported file works in the plugin's runner: card accepted, tiled result equal to
    whole-array inference (what training.evaluate does) to the parity tolerance."""
    from core.grid import raster, writing
    from core.superres import inference
    from core.superres.models import read_card as runner_card
    from training.evaluate import OnnxModel
    from training.export import PARITY_TOLERANCE_M

    _, paths, _, _ = tiny_run
    path = paths[0]
    card = runner_card(str(path))
    assert card.family == "fastsr" and card.scales == (2,) and card.receptive_field == 5
    dem = synthetic_dem("r.tif", 64, 4)
    info = raster.RasterInfo(64, 64, (500000.0, 90.0, 0.0, 4000000.0, 0.0, -90.0),
                             _utm_wkt())
    src, out = str(tmp_path / "in.tif"), str(tmp_path / "out.tif")
    writing.write_array(src, dem.z, info)
    inference.superresolve(src, out, 2, model_file=str(path), device="cpu", tile_size=24)
    tiled, _ = raster.read_array(out)
    whole = OnnxModel(path, threads=1).upscale(dem.z.astype(np.float64), 90.0, 2)
    assert np.nanmax(np.abs(tiled - whole)) < PARITY_TOLERANCE_M


def _utm_wkt() -> str:
    from osgeo import osr

    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32633)
    return srs.ExportToWkt()
