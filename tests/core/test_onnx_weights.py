"""Fine-tuning a bundled model: its weights rebuilt from the ONNX files, the card's training
history carried into the new checkpoint, and patch shares per product."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from core.superres.models import read_card_items  # noqa: E402
from training.dataset import Dem, PatchSampler  # noqa: E402

MODELS = Path(__file__).resolve().parents[2] / "models"
FASTSR = [MODELS / f"fastsr_x{s}.onnx" for s in (2, 3, 4)]


def _bundled_blocks() -> int:
    """The residual blocks the bundled fastsr's card names ("… 10 residual blocks …")."""
    words = read_card_items(str(FASTSR[0]))["architecture"].split()
    return int(words[words.index("residual") - 1])


def test_fastsr_rebuilt_from_onnx_predicts_what_onnxruntime_does():
    from training.export import PARITY_TOLERANCE_M, check_parity
    from training.onnx_weights import fastsr_from_onnx

    model = fastsr_from_onnx(FASTSR)
    assert (model.scales, model.channels, model.blocks) == ((2, 3, 4), 32, _bundled_blocks())
    shared = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("tails."))
    own = sum(p.numel() for n, p in model.named_parameters() if n.startswith("tails.2."))
    assert shared + own == read_card_items(str(FASTSR[0]))["parameters"]
    for scale, path in zip((2, 3, 4), FASTSR):
        norm = read_card_items(str(path))["normalisation"]
        assert check_parity(path, model, scale, norm) < PARITY_TOLERANCE_M


def test_files_of_different_networks_are_refused(tmp_path):
    import onnx

    from training.onnx_weights import fastsr_from_onnx

    altered = onnx.load(str(FASTSR[1]))
    head = next(i for i in altered.graph.initializer if i.name == "model.head.weight")
    values = onnx.numpy_helper.to_array(head).copy()
    values[0, 0, 0, 0] += 1.0
    head.CopyFrom(onnx.numpy_helper.from_array(values, head.name))
    onnx.save(altered, str(tmp_path / "fastsr_x3.onnx"))
    with pytest.raises(ValueError, match="shared body differs"):
        fastsr_from_onnx([FASTSR[0], tmp_path / "fastsr_x3.onnx"])


def test_vdsr30_rebuilt_from_onnx_matches_it():
    from training.export import PARITY_TOLERANCE_M, check_parity
    from training.onnx_weights import vdsr30_from_onnx

    path = MODELS / "vdsr30.onnx"
    model = vdsr30_from_onnx(path)
    norm = read_card_items(str(path))["normalisation"]
    assert check_parity(path, model, 3, norm) < PARITY_TOLERANCE_M


def _rough_dem(name: str, size: int = 120) -> Dem:
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:size, 0:size]
    z = 400 + 80 * np.sin(x / 11.0) * np.cos(y / 7.0) + np.cumsum(rng.normal(0, 2, (size, size)),
                                                                  axis=0)
    return Dem(name, z.astype(np.float32), 30.0, 30.0)


def test_fine_tune_from_the_bundled_onnx_files_keeps_their_history(tmp_path):
    from training.export import training_stages
    from training.train import parse_args, train

    args = parse_args(["--model", "fastsr", "--channels", "32", "--blocks", str(_bundled_blocks()),
                       "--steps", "1", "--epoch-steps", "100", "--batch", "2", "--patch", "48",
                       "--lr", "1e-12", "--loss", "mse", "--threads", "1",
                       "--out", str(tmp_path / "run"),
                       "--init", *map(str, FASTSR)])
    ckpt = train(args, [_rough_dem("new_file.tif")], [], lambda _: None)
    shipped = read_card_items(str(FASTSR[0]))
    from training.onnx_weights import fastsr_from_onnx

    start = fastsr_from_onnx(FASTSR).state_dict()
    for name, weight in ckpt["model"].items():  # one step at lr 1e-12 moves nothing visibly
        torch.testing.assert_close(weight, start[name], atol=1e-6, rtol=0)
    stages = training_stages(ckpt)
    assert stages[:-1] == shipped["trained_on"]["stages"]
    assert stages[-1]["steps"] == 1 and stages[-1]["loss"] == "mse"
    assert set(ckpt["train_files"]) == set(shipped["training_data"]) | {"new_file.tif"}


def test_fine_tune_refuses_another_architecture(tmp_path):
    from training.train import parse_args, train

    args = parse_args(["--model", "fastsr", "--channels", "16", "--blocks", "8", "--steps", "1",
                       "--out", str(tmp_path / "run"), "--init", *map(str, FASTSR)])
    with pytest.raises(SystemExit, match="channels.: 32"):
        train(args, [_rough_dem("a.tif")], [], lambda _: None)


def test_product_shares_weight_the_groups():
    rng = np.random.default_rng(1)
    big = Dem("big.tif", rng.normal(size=(300, 300)).astype(np.float32), 90.0, 90.0)
    small = Dem("small.tif", rng.normal(size=(72, 96)).astype(np.float32), 5.0, 5.0)
    other = Dem("other.tif", rng.normal(size=(72, 72)).astype(np.float32), 5.0, 5.0)
    groups = ["SRTM", "LiDAR", "LiDAR"]
    sampler = PatchSampler([big, small, other], 48, groups=groups,
                           shares={"SRTM": 3.0, "LiDAR": 1.0})
    # 3 : 1 between the groups, files within LiDAR by their 25x49 and 25x25 windows
    np.testing.assert_allclose(sampler.weights, [0.75, 0.25 * 49 / 74, 0.25 * 25 / 74])
    unnamed = PatchSampler([big, small, other], 48, groups=groups, shares={"SRTM": 1.0})
    np.testing.assert_allclose(unnamed.weights, [1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="no positive share"):
        PatchSampler([big, small], 48, groups=["SRTM", "LiDAR"], shares={"ASTER": 1.0})


def test_product_shares_on_the_command_line(tmp_path):
    from training.train import parse_args, product_share

    args = parse_args(["--model", "fastsr", "--steps", "1", "--out", str(tmp_path),
                       "--manifest", "training/corpus.csv",
                       "--product-shares", "SRTM=0.5", "LiDAR-derived=0.2"])
    assert args.product_shares == {"SRTM": 0.5, "LiDAR-derived": 0.2}
    for bad, message in (("SRTM", "must be a number"), ("ASTER=1", "unknown product"),
                         ("SRTM=-1", "not be negative")):
        with pytest.raises(argparse.ArgumentTypeError, match=message):
            product_share(bad)
    with pytest.raises(SystemExit):  # shares need the manifest that names the products
        parse_args(["--model", "fastsr", "--steps", "1", "--out", str(tmp_path),
                    "--product-shares", "SRTM=1"])



def test_deepened_fastsr_starts_as_the_bundled_one(tmp_path):
    from training.onnx_weights import fastsr_from_onnx
    from training.train import parse_args, train

    blocks = _bundled_blocks()
    args = parse_args(["--model", "fastsr", "--channels", "32", "--blocks", str(blocks + 2),
                       "--steps", "1", "--epoch-steps", "100", "--batch", "2", "--patch", "48",
                       "--lr", "1e-12", "--threads", "1", "--out", str(tmp_path / "run"),
                       "--init", *map(str, FASTSR)])
    logs: list[str] = []
    ckpt = train(args, [_rough_dem("a.tif")], [], logs.append)
    assert any(f"deepened from {blocks} to {blocks + 2}" in line for line in logs)
    from training.train import model_from_checkpoint

    deeper, bundled = model_from_checkpoint(ckpt), fastsr_from_onnx(FASTSR)
    assert deeper.blocks == blocks + 2
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(1, 1, 20, 17)).astype("float32"))
    with torch.no_grad():
        for scale in (2, 3, 4):
            torch.testing.assert_close(deeper(x, scale), bundled(x, scale), atol=1e-5, rtol=0)
