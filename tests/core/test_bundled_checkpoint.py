"""The PyTorch checkpoint that benchmarks fine-tune as "the bundled fastsr" is that network.

bench_internal_adaptation.py and bench_same_file_bound.py start from
training/checkpoints/fastsr10_srtm_ft2.pt; if a new default model were kept without updating
them, they would measure an old network. Same input, same output as the shipped ONNX files.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from training.train import load_checkpoint, model_from_checkpoint

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINT = ROOT / "training" / "checkpoints" / "fastsr10_srtm_ft2.pt"


@pytest.fixture(scope="module")
def network():
    return model_from_checkpoint(load_checkpoint(CHECKPOINT)).eval()


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_checkpoint_computes_what_the_bundled_onnx_computes(network, scale):
    x = np.random.default_rng(scale).normal(scale=0.3, size=(1, 1, 24, 20)).astype(np.float32)
    session = ort.InferenceSession(str(ROOT / "models" / f"fastsr_x{scale}.onnx"),
                                   providers=["CPUExecutionProvider"])
    shipped = session.run(["fine"], {session.get_inputs()[0].name: x})[0]
    with torch.no_grad():
        ours = network(torch.from_numpy(x), scale).numpy()
    assert ours.shape == shipped.shape == (1, 1, 24 * scale, 20 * scale)
    np.testing.assert_allclose(ours, shipped, atol=1e-4)
