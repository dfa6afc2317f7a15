"""Super-resolution networks: vdsr30 after Jiao et al. (2020), the LR-space fast model and a
3-layer SRCNN.

All networks take and return NORMALISED elevations, x = (z - c) / D (see ``training.dataset``),
and are offset-equivariant by construction: f(x + k) = f(x) + k away from the zero-padded tile
border, because

- the output is a linear upsampling whose weights sum to 1 (fixed bicubic, exactly reproducible
  in ONNX as a padded convolution + pixel shuffle) plus a learned residual, and
- the residual branch's first convolution has weights that sum to zero per output channel, so a
  constant offset never reaches the rest of the branch.

This is what lets the runner subtract any per-tile constant without creating seams.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812 (PyTorch's convention)
from torch import nn

from core.grid.kernels import bicubic_phase_taps as _phase_taps


def bicubic_phase_taps(scale: int) -> torch.Tensor:
    """The runner's bicubic taps (core.superres.inference), so training and inference share one
    kernel."""
    return torch.from_numpy(_phase_taps(scale))


class BicubicUpsample(nn.Module):
    """Fixed bicubic upsampling by an integer factor: edge pad 2, 5x5 conv per phase, shuffle.

    Written as a convolution rather than ``F.interpolate`` so that PyTorch and onnxruntime
    compute exactly the same thing, borders included.
    """

    def __init__(self, scale: int):
        super().__init__()
        self.scale = scale
        taps = bicubic_phase_taps(scale)
        kernel = torch.einsum("ai,bj->abij", taps, taps).reshape(scale * scale, 1, 5, 5)
        self.register_buffer("kernel", kernel.float(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (2, 2, 2, 2), mode="replicate")
        return F.pixel_shuffle(F.conv2d(x, self.kernel), self.scale)


class ZeroSumConv2d(nn.Conv2d):
    """Convolution whose weights sum to zero per output channel: blind to constant offsets.

    Reparametrised (w - mean w) rather than penalised, so the property holds exactly at any
    point of training and survives ONNX export as a constant.
    """

    def centred_weight(self) -> torch.Tensor:
        return self.weight - self.weight.mean(dim=(1, 2, 3), keepdim=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.centred_weight(), self.bias)


class Vdsr30(nn.Module):
    """Jiao et al. (2020): 30 conv 3x3 layers, 64 channels, ReLU, zero padding, residual on bicubic.

    One set of weights serves every scale; the scale only selects the bicubic front.
    """

    family = "vdsr30"
    input_space = "coarse"

    def __init__(self, scales=(2, 3, 4), depth: int = 30, channels: int = 64):
        super().__init__()
        self.scales = tuple(scales)
        self.depth = depth
        self.channels = channels
        self.upsample = nn.ModuleDict({str(s): BicubicUpsample(s) for s in self.scales})
        layers: list[nn.Module] = [ZeroSumConv2d(1, channels, 3, padding=1), nn.ReLU(True)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(True)]
        layers.append(nn.Conv2d(channels, 1, 3, padding=1))
        self.body = nn.Sequential(*layers)
        for layer in layers[:-1]:
            if isinstance(layer, nn.Conv2d):
                # He init as in VDSR: PyTorch's default shrinks the signal ~3x per layer in
                # variance, and after 28 plain layers nothing reaches the loss (measured: no
                # learning in 100 steps).
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
                nn.init.zeros_(layer.bias)
        _init_residual_output(layers[-1])

    def forward(self, x: torch.Tensor, scale: int) -> torch.Tensor:
        up = self.upsample[str(scale)](x)
        return up + self.body(up)

    def receptive_field(self, scale: int) -> int:
        """Radius in coarse cells: depth fine-grid 3x3 convs, then the 5x5 bicubic front."""
        return math.ceil(self.depth / scale) + 2

    def macs_per_output_pixel(self, scale: int) -> float:
        c = self.channels
        convs = 9 * c + (self.depth - 2) * 9 * c * c + 9 * c
        return float(convs + 25)  # + bicubic taps per output pixel

    def activation_bytes_per_output_pixel(self, scale: int) -> int:
        """Peak float32 activations: about four fine-grid feature maps alive at once."""
        return 4 * 4 * self.channels

    def config(self) -> dict:
        return {"scales": list(self.scales), "depth": self.depth, "channels": self.channels}

    def architecture(self) -> str:
        return (
            f"VDSR after Jiao et al. (2020): bicubic x S front, {self.depth} conv 3x3 layers with "
            f"{self.channels} channels, ReLU, zero padding, global residual; first conv "
            "zero-sum (offset-invariant); one set of weights for scales "
            f"{', '.join(map(str, self.scales))}"
        )


class ResBlock(nn.Module):
    """EDSR residual block without batch norm: conv-ReLU-conv plus identity."""

    def __init__(self, channels: int, res_scale: float = 1.0):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.res_scale * self.conv2(F.relu(self.conv1(x)))


class FastSR(nn.Module):
    """LR-space network (EDSR-baseline, slimmed): every conv runs on the coarse grid.

    Zero-sum head conv -> ``blocks`` residual blocks -> conv + long skip -> per-scale conv to
    S*S phases -> pixel shuffle, added to the fixed bicubic upsampling. The body is shared by all
    scales (MDSR style), so one run trains x2, x3 and x4 and the body sees three times the data;
    only the last conv is scale specific. Why this family: plain residual blocks without batch
    norm are the strongest per-parameter design that also trains quickly and exports to plain
    ONNX ops (no attention or channel-split tricks that onnxruntime runs slowly on CPU).
    """

    family = "fastsr"
    input_space = "coarse"

    def __init__(self, scales=(2, 3, 4), channels: int = 48, blocks: int = 8):
        super().__init__()
        self.scales = tuple(scales)
        self.channels = channels
        self.blocks = blocks
        self.upsample = nn.ModuleDict({str(s): BicubicUpsample(s) for s in self.scales})
        self.head = ZeroSumConv2d(1, channels, 3, padding=1)
        self.body = nn.Sequential(*[ResBlock(channels) for _ in range(blocks)])
        self.body_tail = nn.Conv2d(channels, channels, 3, padding=1)
        self.tails = nn.ModuleDict(
            {str(s): nn.Conv2d(channels, s * s, 3, padding=1) for s in self.scales}
        )
        for tail in self.tails.values():
            _init_residual_output(tail)

    def forward(self, x: torch.Tensor, scale: int) -> torch.Tensor:
        feat = self.head(x)
        feat = feat + self.body_tail(self.body(feat))
        residual = F.pixel_shuffle(self.tails[str(scale)](feat), scale)
        return self.upsample[str(scale)](x) + residual

    def receptive_field(self, scale: int) -> int:
        """Radius in coarse cells: head + 2 per block + body tail + scale tail, all 3x3."""
        return max(3 + 2 * self.blocks, 2)

    def macs_per_output_pixel(self, scale: int) -> float:
        c = self.channels
        per_coarse = 9 * c + (2 * self.blocks + 1) * 9 * c * c + 9 * c * scale * scale
        return per_coarse / (scale * scale) + 25.0

    def activation_bytes_per_output_pixel(self, scale: int) -> int:
        """Four coarse-grid feature maps alive at once, shared by S*S output pixels, plus the
        fine-grid bicubic base, residual and output."""
        return math.ceil(4 * 4 * self.channels / (scale * scale)) + 4 * 4

    def config(self) -> dict:
        return {"scales": list(self.scales), "channels": self.channels, "blocks": self.blocks}

    def architecture(self) -> str:
        return (
            f"FastSR (EDSR-baseline-lite, LR space): zero-sum conv 3x3 1->{self.channels}, "
            f"{self.blocks} residual blocks (conv-ReLU-conv, {self.channels} ch, no BN), conv + "
            "long skip, scale-specific conv 3x3 -> S*S phases, pixel shuffle, added to a fixed "
            "bicubic x S upsampling; body shared by scales "
            f"{', '.join(map(str, self.scales))}"
        )


class Srcnn3(nn.Module):
    """The 3-layer SRCNN baseline of Jiao et al. (2020) (9-1-5, 64/32 channels) on the
    bicubic-upsampled input.

    Deviation from Dong et al., stated in REPRODUCTION.md: it predicts the residual over bicubic
    (zero-sum first layer) instead of the elevation itself, because learning the identity through
    ReLUs needs far more training than a CPU session allows; this favours SRCNN, not the paper.
    """

    family = "srcnn3"
    input_space = "coarse"

    def __init__(self, scales=(2, 3, 4)):
        super().__init__()
        self.scales = tuple(scales)
        self.upsample = nn.ModuleDict({str(s): BicubicUpsample(s) for s in self.scales})
        self.body = nn.Sequential(
            ZeroSumConv2d(1, 64, 9, padding=4),
            nn.ReLU(True),
            nn.Conv2d(64, 32, 1),
            nn.ReLU(True),
            nn.Conv2d(32, 1, 5, padding=2),
        )
        _init_residual_output(self.body[-1])

    def forward(self, x: torch.Tensor, scale: int) -> torch.Tensor:
        up = self.upsample[str(scale)](x)
        return up + self.body(up)

    def receptive_field(self, scale: int) -> int:
        return math.ceil(6 / scale) + 2

    def macs_per_output_pixel(self, scale: int) -> float:
        return float(81 * 64 + 64 * 32 + 25 * 32 + 25)

    def activation_bytes_per_output_pixel(self, scale: int) -> int:
        return 4 * (64 + 32 + 4)

    def config(self) -> dict:
        return {"scales": list(self.scales)}

    def architecture(self) -> str:
        return "SRCNN 9-1-5 (64/32 ch) on bicubic x S, predicting the residual over bicubic"


NETWORKS = {"vdsr30": Vdsr30, "fastsr": FastSR, "srcnn3": Srcnn3}


def build(family: str, **config) -> nn.Module:
    """Instantiate a network by family name with the config stored in its checkpoint."""
    if family not in NETWORKS:
        raise ValueError(f"unknown model {family!r}; choose from {sorted(NETWORKS)}")
    return NETWORKS[family](**config)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _init_residual_output(conv: nn.Conv2d) -> None:
    """Start the residual at ~0 so an untrained network is exactly bicubic, never worse."""
    nn.init.normal_(conv.weight, std=1e-3)
    nn.init.zeros_(conv.bias)
