"""MobileStyleGAN (Belousov 2021) as a native PyTorch generator.

The layout is what the published OpenVINO export of the FFHQ-1024 model computes (see
:mod:`latentlab.checkpoints.openvino_ir`), written as real layers:

* **mapping**: pixel norm, then ``num_mapping_layers`` fully connected layers, each followed by
  leaky ReLU (slope 0.2) times sqrt(2). The equalised-learning-rate scales are already folded into
  the stored weights, so ``fc{i}`` is a plain affine map.
* **synthesis**: a learned 4x4 constant; ``b4.conv1`` (a modulated 3x3 conv); then one block per
  resolution 8..512, each ``up`` (modulate, then a Haar inverse wavelet transform that turns C
  channels at HxW into C/4 channels at 2Hx2W), ``conv0`` and ``conv1`` (modulated
  depthwise-separable convs: depthwise 3x3 + pointwise 1x1); finally ``torgb`` (a modulated 1x1
  conv) predicts the 4 Haar sub-bands of each RGB channel at 512x512, and one more inverse
  wavelet transform gives the 1024x1024 image.

Modulation scales the input activations by the style (``affine(w) * 1/sqrt(fan_in)``); there is
no weight demodulation in this network (the distilled model's export has none). Each conv adds
per-pixel noise (``noise_const * noise_strength``), a bias, then leaky ReLU(0.2) (no gain).

W+ has 23 rows, one per style affine in execution order: ``b4.conv1``, then ``up``, ``conv0``,
``conv1`` of each block b8..b512, then ``b512.torgb``.

Noise: the IR has no noise input; its 15 convs each add a baked constant map (one sample of
strength * N(0, 1)). The reader stores it NVIDIA-style as ``noise_const`` (that map divided by its
RMS, so about N(0, 1)) and ``noise_strength`` (the RMS, an estimate of |strength|), so
``noise_mode='const'`` reproduces the export, ``'random'`` draws fresh N(0, 1) maps at that
strength and ``'none'`` drops the noise. State-dict names: ``mapping.fc0.weight``,
``mapping.w_avg``, ``synthesis.const``, ``synthesis.b8.up.affine.weight``,
``synthesis.b8.conv0.weight_dw``, ``synthesis.b512.torgb.weight``, ...
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .base import NOISE_MODES, Generator

LRELU_SLOPE = 0.2
PIXEL_NORM_EPS = 1e-8


def haar_idwt(x: torch.Tensor) -> torch.Tensor:
    """One level of the inverse 2D Haar wavelet transform (orthonormal, zero padding).

    x [N, 4C, H, W]: channels ``[0, C)`` are the low-pass band; channel ``C + 3c + k`` is
    detail band k of channel c, where band 0 is high-pass along H, band 1 high-pass along W and
    band 2 high-pass along both (pytorch_wavelets' ``(LH, HL, HH)`` layout).
    Returns [N, C, 2H, 2W]: ``out[2i+a, 2j+b] = (ll + s_a b0 + s_b b1 + s_a s_b b2) / 2`` with
    ``s_0 = +1, s_1 = -1``.
    """
    n, c4, h, w = x.shape
    c = c4 // 4
    ll = x[:, :c]
    bands = x[:, c:].reshape(n, c, 3, h, w)
    b0, b1, b2 = bands.unbind(2)
    p, m = ll + b0, ll - b0  # rows a = 0 / a = 1
    q, r = b1 + b2, b1 - b2
    quad = torch.stack([p + q, p - q, m + r, m - r], dim=2) * 0.5  # [N, C, 4 = (a, b), H, W]
    return F.pixel_shuffle(quad.reshape(n, 4 * c, h, w), 2)


def haar_idwt_channels_last(x: torch.Tensor) -> torch.Tensor:
    """:func:`haar_idwt` computed in NHWC: the same values, returned in channels-last memory format.

    ``pixel_shuffle`` always returns NCHW, which would make every later convolution of the
    synthesis reorder its input (a depthwise 3x3 + pointwise conv at 512 px, forward and backward,
    is 1.8x slower in NCHW at batch 1 and 4x slower at batch 4 on a 2-core CPU).
    """
    n, c4, h, w = x.shape
    c = c4 // 4
    xh = x.permute(0, 2, 3, 1)  # [N, H, W, 4C], a view when x is channels-last
    ll = xh[..., :c]
    b0, b1, b2 = xh[..., c:].reshape(n, h, w, c, 3).unbind(-1)
    p, m = ll + b0, ll - b0
    q, r = b1 + b2, b1 - b2
    rows = [torch.stack([p + q, p - q], dim=3), torch.stack([m + r, m - r], dim=3)]  # [N, H, W, b, C]
    out = torch.stack(rows, dim=2) * 0.5  # [N, H, a, W, b, C]
    return out.reshape(n, 2 * h, 2 * w, c).permute(0, 3, 1, 2)


class StyleAffine(nn.Linear):
    """w [N, w_dim] -> per-channel styles [N, channels] (a plain affine map)."""


class ModulatedConv(nn.Module):
    """A modulated conv layer: x * style -> conv -> + noise -> + bias -> leaky ReLU.

    ``depthwise=True``: depthwise 3x3 (``weight_dw`` [C_in, 1, k, k]) then pointwise 1x1
    (``weight`` [C_out, C_in, 1, 1]); else a full k x k conv (``weight`` [C_out, C_in, k, k]).
    The style is ``affine(w) / sqrt(C_in * k * k)``.
    """

    def __init__(self, w_dim: int, in_channels: int, out_channels: int, resolution: int,
                 kernel_size: int = 3, depthwise: bool = True) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.resolution, self.kernel_size, self.depthwise = resolution, kernel_size, depthwise
        self.affine = StyleAffine(w_dim, in_channels)
        self.style_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        if depthwise:
            self.weight_dw = nn.Parameter(torch.zeros(in_channels, 1, kernel_size, kernel_size))
            self.weight = nn.Parameter(torch.zeros(out_channels, in_channels, 1, 1))
        else:
            self.weight = nn.Parameter(torch.zeros(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("noise_const", torch.zeros(resolution, resolution))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "const", impl: str = "ref") -> torch.Tensor:
        """x [N, C_in, R, R], w [N, w_dim] -> [N, C_out, R, R]."""
        styles = self.affine(w) * self.style_gain
        pad = self.kernel_size // 2
        if impl == "fast":
            # Same math, fewer passes: the bias rides in the last conv, noise and activation in place
            # (the conv output is a fresh tensor that no backward formula needs). One sample: the
            # style scales the first conv's input channels, so it is folded into that conv's weight
            # (a few KB) instead of multiplying the activations, forward and backward.
            fold = x.shape[0] == 1
            if not fold:
                x = x * styles[:, :, None, None]
            if self.depthwise:
                wdw = self.weight_dw * styles[0, :, None, None, None] if fold else self.weight_dw
                x = F.conv2d(x, wdw, padding=pad, groups=self.in_channels)
                x = F.conv2d(x, self.weight, self.bias)
            else:
                wt = self.weight * styles[0, None, :, None, None] if fold else self.weight
                x = F.conv2d(x, wt, self.bias, padding=pad)
            if noise_mode == "const":
                # in the activations' dtype: a float32 addend to bfloat16 (autocast) takes a slow path
                x.add_((self.noise_const * self.noise_strength).to(x.dtype))
            elif noise_mode == "random":
                noise = torch.randn(x.shape[0], 1, x.shape[2], x.shape[3], device=x.device, dtype=x.dtype)
                x.add_(noise * self.noise_strength)
            return F.leaky_relu_(x, LRELU_SLOPE)
        x = x * styles[:, :, None, None]
        if self.depthwise:
            x = F.conv2d(x, self.weight_dw, padding=pad, groups=self.in_channels)
            x = F.conv2d(x, self.weight)
        else:
            x = F.conv2d(x, self.weight, padding=pad)
        if noise_mode == "const":
            x = x + self.noise_const * self.noise_strength
        elif noise_mode == "random":
            noise = torch.randn(x.shape[0], 1, x.shape[2], x.shape[3], device=x.device, dtype=x.dtype)
            x = x + noise * self.noise_strength
        x = x + self.bias[None, :, None, None]
        return F.leaky_relu(x, LRELU_SLOPE)


class IDWTUpsample(nn.Module):
    """Modulate (``x * affine(w)``, no gain) then inverse Haar transform: [N, C, R, R] -> [N, C/4, 2R, 2R]."""

    def __init__(self, w_dim: int, in_channels: int) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.affine = StyleAffine(w_dim, in_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor, impl: str = "ref") -> torch.Tensor:
        x = x * self.affine(w)[:, :, None, None]
        return haar_idwt_channels_last(x) if impl == "fast" else haar_idwt(x)


class ToWavelets(nn.Module):
    """``torgb``: modulated 1x1 conv + bias predicting the 4 Haar sub-bands of each image channel.

    x [N, C, R, R] -> [N, 4 * img_channels, R, R] (low-pass bands first, then the detail bands).
    """

    def __init__(self, w_dim: int, in_channels: int, img_channels: int) -> None:
        super().__init__()
        self.affine = StyleAffine(w_dim, in_channels)
        self.style_gain = 1.0 / math.sqrt(in_channels)
        self.weight = nn.Parameter(torch.zeros(4 * img_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(4 * img_channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor, impl: str = "ref", low_pass: bool = False) -> torch.Tensor:
        """``low_pass``: only the low-pass bands [N, img_channels, R, R] (the first quarter of the outputs)."""
        weight, bias = self.weight, self.bias
        if low_pass:
            c = bias.shape[0] // 4
            weight, bias = weight[:c], bias[:c]
        styles = self.affine(w) * self.style_gain
        if impl == "fast" and x.shape[0] == 1:  # the style folded into the 1x1 weight, as in ModulatedConv
            return F.conv2d(x, weight * styles[0, None, :, None, None], bias)
        x = F.conv2d(x * styles[:, :, None, None], weight)
        return x + bias[None, :, None, None]


class SynthesisBlock(nn.Module):
    """``up`` (R/2 -> R), ``conv0``, ``conv1``: three W+ rows."""

    def __init__(self, w_dim: int, in_channels: int, out_channels: int, resolution: int) -> None:
        super().__init__()
        if in_channels % 4:
            raise ValueError(f"block input channels must be a multiple of 4, got {in_channels}")
        self.resolution = resolution
        self.up = IDWTUpsample(w_dim, in_channels)
        self.conv0 = ModulatedConv(w_dim, in_channels // 4, out_channels, resolution)
        self.conv1 = ModulatedConv(w_dim, out_channels, out_channels, resolution)

    def forward(self, x: torch.Tensor, ws: torch.Tensor, noise_mode: str, impl: str = "ref") -> torch.Tensor:
        """ws [N, 3, w_dim]."""
        x = self.up(x, ws[:, 0], impl)
        x = self.conv0(x, ws[:, 1], noise_mode, impl)
        return self.conv1(x, ws[:, 2], noise_mode, impl)


class MappingNetwork(nn.Module):
    """z [N, z_dim] -> w [N, w_dim]: pixel norm + ``num_layers`` x (fc, leaky ReLU * sqrt 2)."""

    def __init__(self, z_dim: int, w_dim: int, num_layers: int) -> None:
        super().__init__()
        self.num_layers = num_layers
        dims = [z_dim] + [w_dim] * num_layers
        for i in range(num_layers):
            setattr(self, f"fc{i}", nn.Linear(dims[i], dims[i + 1]))
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = z * (z.square().mean(dim=1, keepdim=True) + PIXEL_NORM_EPS).rsqrt()
        gain = math.sqrt(2.0)
        for i in range(self.num_layers):
            x = F.leaky_relu(getattr(self, f"fc{i}")(x), LRELU_SLOPE) * gain
        return x


class SynthesisNetwork(nn.Module):
    """ws [N, num_ws, w_dim] -> images [N, img_channels, 2 * 4 * 2**(len(channels) - 1)]^2."""

    def __init__(self, w_dim: int, channels: Sequence[int], img_channels: int) -> None:
        super().__init__()
        self.const = nn.Parameter(torch.zeros(channels[0], 4, 4))
        self.b4 = nn.Module()
        self.b4.conv1 = ModulatedConv(w_dim, channels[0], channels[0], 4, depthwise=False)
        self.block_resolutions = [4 * 2 ** (i + 1) for i in range(len(channels) - 1)]
        for i, res in enumerate(self.block_resolutions):
            setattr(self, f"b{res}", SynthesisBlock(w_dim, channels[i], channels[i + 1], res))
        last = getattr(self, f"b{self.block_resolutions[-1]}")
        last.torgb = ToWavelets(w_dim, channels[-1], img_channels)
        self.num_ws = 1 + 3 * len(self.block_resolutions) + 1

    def forward(self, ws: torch.Tensor, noise_mode: str = "const", impl: str = "ref",
                bands_only: bool = False, stop_resolution: int | None = None) -> torch.Tensor:
        """Images [N, C, R, R]; ``bands_only``: the low-pass band [N, C, R/2, R/2] of the last inverse
        wavelet transform, which is exactly 2 x the 2x2 area average of the image;
        ``stop_resolution``: the feature map [N, C, r, r] of that block (4: the first level)."""
        x = self.const.unsqueeze(0).expand(ws.shape[0], -1, -1, -1)
        if impl == "fast":  # oneDNN convolves NHWC without reordering every layer
            x = x.contiguous(memory_format=torch.channels_last)
        x = self.b4.conv1(x, ws[:, 0], noise_mode, impl)
        if stop_resolution == 4:
            return x
        row = 1
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            x = block(x, ws[:, row:row + 3], noise_mode, impl)
            row += 3
            if res == stop_resolution:
                return x
        if bands_only:
            return block.torgb(x, ws[:, row], impl, low_pass=True).contiguous()
        img = haar_idwt(block.torgb(x, ws[:, row], impl))
        return img.contiguous() if impl == "fast" else img


class MobileStyleGANGenerator(Generator):
    """MobileStyleGAN: StyleGAN2-style mapping + a wavelet-based depthwise-separable synthesis.

    Defaults are the FFHQ-1024 model (``ffhq-mobile``): ``channels[0]`` is the width of the 4x4
    level, ``channels[i + 1]`` the width of block ``b{8 * 2**i}``.
    """

    family = "mobilestylegan"
    #: MobileStyleGAN's convs are not demodulated, so a W step moves activations much more than in
    #: StyleGAN2: NVIDIA's 0.1 diverges within a few steps; 0.03 reached LPIPS 0.25 in 30 W+ steps
    #: on FFHQ 00000 where 0.01 reached 0.35 (measured on this CPU, see the projection issue notes).
    projection_lr = 0.03

    def __init__(self, z_dim: int = 512, w_dim: int = 512, num_mapping_layers: int = 8,
                 channels: Sequence[int] = (512, 512, 512, 512, 512, 256, 128, 64),
                 img_channels: int = 3) -> None:
        super().__init__()
        channels = [int(c) for c in channels]
        self.z_dim, self.c_dim, self.w_dim = int(z_dim), 0, int(w_dim)
        self.img_channels = int(img_channels)
        self.img_resolution = 2 * 4 * 2 ** (len(channels) - 1)
        self.config: dict[str, Any] = {
            "z_dim": self.z_dim, "w_dim": self.w_dim, "num_mapping_layers": int(num_mapping_layers),
            "channels": channels, "img_channels": self.img_channels,
        }
        # Registered directly: the names `mapping`/`synthesis` are also the interface methods
        # (state-dict names ``mapping.fc0.weight``, ``mapping.w_avg``, ``synthesis.b8.conv0.bias``).
        self._modules["mapping"] = MappingNetwork(self.z_dim, self.w_dim, int(num_mapping_layers))
        self._modules["synthesis"] = SynthesisNetwork(self.w_dim, channels, self.img_channels)
        self.num_ws = self.synthesis_network.num_ws
        #: 'fast' (default): channels-last activations, bias/noise/activation with fewer passes;
        #: 'ref': the plain layer-by-layer code. They agree to ~1e-6 (tests/test_fast_paths.py).
        self.impl = "fast"

    # ------------------------------------------------------------------ layout
    @property
    def ws_resolutions(self) -> list[int]:
        """4 for ``b4.conv1``; the block resolution for ``up``/``conv0``/``conv1`` (``up`` modulates
        at half that, then upsamples); the last block's for ``torgb`` (its wavelets become the
        2x image)."""
        res = [4]
        for r in self.synthesis_network.block_resolutions:
            res += [r, r, r]
        return res + [self.synthesis_network.block_resolutions[-1]]

    def ws_layer_names(self) -> list[str]:
        names = ["b4.conv1"]
        for r in self.synthesis_network.block_resolutions:
            names += [f"b{r}.up", f"b{r}.conv0", f"b{r}.conv1"]
        return names + [f"b{self.synthesis_network.block_resolutions[-1]}.torgb"]

    # ------------------------------------------------------------------ networks
    def _map(self, z: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        return self.mapping_network(z.to(self.w_avg.dtype))

    def synthesis(self, ws: torch.Tensor, noise_mode: str = "const", impl: str | None = None) -> torch.Tensor:
        """ws [N, 23, w_dim] -> images [N, 3, 1024, 1024], nominally in [-1, 1].

        ``impl``: 'fast' or 'ref' (default: ``self.impl``)."""
        self.check_ws(ws)
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {', '.join(NOISE_MODES)}, got {noise_mode!r}")
        return self.synthesis_network(ws.to(self.w_avg.dtype), noise_mode=noise_mode, impl=self._check_impl(impl))

    def _check_impl(self, impl: str | None) -> str:
        impl = self.impl if impl is None else impl
        if impl not in ("ref", "fast"):
            raise ValueError(f"impl must be 'ref' or 'fast', got {impl!r}")
        return impl

    def synthesis_lowres(self, ws: torch.Tensor, resolution: int, noise_mode: str = "const",
                         approximate: bool = False, impl: str | None = None) -> torch.Tensor | None:
        """The image area-downsampled to ``resolution`` [N, 3, r, r], computed without the full image.

        Exact (not an approximation): a 2x2 average of the inverse Haar transform is half its
        low-pass band, so only the low-pass quarter of ``torgb`` is computed, then averaged further
        when ``resolution`` < R/2. Returns None when ``resolution`` does not divide R/2.
        ``approximate`` is accepted for the interface and changes nothing.
        """
        self.check_ws(ws)
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {', '.join(NOISE_MODES)}, got {noise_mode!r}")
        half = self.img_resolution // 2
        if resolution > half or half % resolution:
            return None
        ll = self.synthesis_network(ws.to(self.w_avg.dtype), noise_mode=noise_mode, impl=self._check_impl(impl),
                                    bands_only=True) * 0.5
        return F.avg_pool2d(ll, half // resolution) if resolution < half else ll

    def synthesis_features(self, ws: torch.Tensor, resolution: int, noise_mode: str = "const",
                           impl: str | None = None) -> torch.Tensor:
        """The feature map of synthesis block ``resolution`` [N, C, r, r] (4: the first level),
        computed without the blocks above it (rows feeding them get no gradient)."""
        self.check_ws(ws)
        if resolution not in self.feature_resolutions:
            raise ValueError(f"no synthesis block at {resolution} px; blocks: {self.feature_resolutions}")
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {', '.join(NOISE_MODES)}, got {noise_mode!r}")
        return self.synthesis_network(ws.to(self.w_avg.dtype), noise_mode=noise_mode, impl=self._check_impl(impl),
                                      stop_resolution=resolution)

    @property
    def feature_resolutions(self) -> list[int]:
        """Resolutions whose block features :meth:`synthesis_features` returns."""
        return [4, *self.synthesis_network.block_resolutions]

    def noise_buffers(self) -> dict[str, torch.Tensor]:
        """The 15 ``noise_const`` buffers [R, R] (unit variance; scaled by each layer's
        ``noise_strength``), keyed by their state-dict names."""
        return {name: buf for name, buf in self.named_buffers() if name.endswith("noise_const")}
