"""The PyTorch checkpoint that benchmarks fine-tune as "the bundled fastsr" is that network.

bench_internal_adaptation.py and bench_same_file_bound.py start from
training.train.bundled_fastsr(); if a new default model were kept without updating
BUNDLED_FASTSR, they would measure an old network. Same input, same output as the shipped
ONNX files.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

# Without torch (scripts/setup.sh installs only a local CPU build) the module skips, never errs.
torch = pytest.importorskip("torch", reason="needs torch, which is not installed here")
ort = pytest.importorskip("onnxruntime")

from training.train import bundled_fastsr  # noqa: E402 (needs torch)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def network():
    return bundled_fastsr()


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
