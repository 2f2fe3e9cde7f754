"""StyleGAN2 generator (config-e/f and the ADA variants) in plain PyTorch.

Matches NVIDIA stylegan2-ada-pytorch's ``training.networks.Generator`` (and stylegan3's
``training.networks_stylegan2.Generator``): same hyperparameters, same module tree and the same
parameter/buffer names (``mapping.fc0.weight``, ``mapping.w_avg``, ``synthesis.b4.const``,
``synthesis.b64.conv1.affine.weight``, ``...noise_const``, ``...noise_strength``,
``...resample_filter``), so NVIDIA state dicts load with ``load_state_dict(strict=True)`` and no
renaming. Checkpoint files are parsed elsewhere (:mod:`latentlab.checkpoints`).

Config (all JSON data, see :func:`normalize_config`)::

    {"z_dim": 512, "c_dim": 0, "w_dim": 512, "img_resolution": 1024, "img_channels": 3,
     "mapping_kwargs": {"num_layers": 8, "embed_features": None, "layer_features": None,
                        "activation": "lrelu", "lr_multiplier": 0.01, "w_avg_beta": 0.995},
     "synthesis_kwargs": {"channel_base": 32768, "channel_max": 512, "num_fp16_res": 0,
                          "architecture": "skip", "resample_filter": [1, 3, 3, 1],
                          "conv_clamp": None, "use_noise": True, "activation": "lrelu",
                          "kernel_size": 3}}

Precision: ``num_fp16_res`` is kept in the config (NVIDIA runs those blocks in fp16 on GPUs)
but latentlab always computes in float32, like NVIDIA with ``force_fp32=True``.

W+ layout: row 0 feeds the 4x4 conv; for each higher block of resolution r, its two convs use
two consecutive rows, and the toRGB of resolution r/2 shares the row of r's first (up-sampling)
conv; the last row feeds only the final toRGB. :attr:`StyleGAN2Generator.ws_resolutions` gives
each row the resolution of the conv layers it feeds (the final toRGB row: the output resolution).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import torch
from torch import nn

import torch.nn.functional as F

from ..ops import ACTIVATIONS, IMPLS, bias_act, conv2d_resample, setup_filter, upsample2d
from .base import NOISE_MODES, Generator

MAPPING_DEFAULTS: dict[str, Any] = {
    "num_layers": 8,
    "embed_features": None,
    "layer_features": None,
    "activation": "lrelu",
    "lr_multiplier": 0.01,
    "w_avg_beta": 0.995,
}
SYNTHESIS_DEFAULTS: dict[str, Any] = {
    "channel_base": 32768,
    "channel_max": 512,
    "num_fp16_res": 0,
    "architecture": "skip",
    "resample_filter": [1, 3, 3, 1],
    "conv_clamp": None,
    "use_noise": True,
    "activation": "lrelu",
    "kernel_size": 3,
}
# Accepted for compatibility with NVIDIA kwargs; they only affect speed/memory layout there.
SYNTHESIS_IGNORED = ("fp16_channels_last", "channels_last", "fused_modconv_default", "use_fp16")
ARCHITECTURES = ("orig", "skip", "resnet")


#: Sane caps on a StyleGAN2 config, checked by :func:`normalize_config` before anything is built
#: (NVIDIA's largest StyleGAN2s: 1024 px, 512-d latents, 8 mapping layers, ~30 M parameters).
LIMITS: dict[str, int] = {
    "img_resolution": 4096,      # a power of two in [4, 4096]: at most 22 W+ rows (num_ws)
    "img_channels": 16,
    "z_dim": 8192,
    "c_dim": 65536,
    "w_dim": 8192,
    "features": 8192,            # mapping embed_features / layer_features
    "num_layers": 64,            # mapping layers
    "channel_base": 1 << 26,
    "channel_max": 8192,
    "kernel_size": 15,
    "num_fp16_res": 16,
    "filter_taps": 16,           # resample_filter length (per side for a 2-D filter)
    "num_elements": 1_000_000_000,  # every parameter and buffer together (4 GB as float32)
}

#: Limits of :func:`plain_data`: nesting depth, and values counted as if shared references were copied
#: (what a JSON dump of the result would write).
PLAIN_MAX_DEPTH = 32
PLAIN_MAX_VALUES = 100_000


def _describe(value: Any) -> str:
    """A short, safe description of a config value for a one-line message."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, int):
        return repr(value) if abs(value) < 10**18 else f"an integer of {value.bit_length()} bits"
    if isinstance(value, (float, str)):
        text = repr(value)
        return text if len(text) <= 40 else text[:37] + "..."
    return f"a {type(value).__name__}"


def plain_data(value: Any, max_depth: int = PLAIN_MAX_DEPTH, max_values: int = PLAIN_MAX_VALUES) -> Any:
    """numpy scalars/arrays, tuples, sets and dict subclasses -> plain JSON-able Python data.

    Memoised: an object referenced twice is converted once and stays shared in the result. Raises a
    one-line :class:`~latentlab.errors.CheckpointError` for a cycle, nesting deeper than
    ``max_depth``, more than ``max_values`` values once shared references are counted every time
    they occur (so 1 KB of pickle cannot expand into an exponential JSON document), or anything
    that is not plain data (network objects, tensors, bytes, ...).
    """
    from ..errors import CheckpointError

    memo: dict[int, tuple[Any, int]] = {}  # id -> (converted, expanded size)
    active: set[int] = set()  # ids on the current path: meeting one again is a cycle

    def key_of(k: Any) -> str:
        if isinstance(k, np.generic):
            k = k.item()
        if isinstance(k, str):
            return k
        if k is None or isinstance(k, (bool, int, float)):
            return str(k) if not isinstance(k, int) or abs(k) < 10**18 else _describe(k)
        raise CheckpointError(f"config data has a dict key that is {_describe(k)}, not a string")

    def conv(v: Any, depth: int) -> tuple[Any, int]:
        if isinstance(v, np.generic):
            if v.dtype.kind in "biuf":
                return v.item(), 1
            if v.dtype.kind == "U":
                return str(v), 1
            raise CheckpointError(f"config data holds a numpy {v.dtype} value, not plain data")
        if v is None or isinstance(v, (bool, int, float, str)):
            return v, 1
        ident = id(v)
        if ident in memo:
            return memo[ident]
        if ident in active:
            raise CheckpointError("config data contains itself (a reference cycle)")
        if depth >= max_depth:
            raise CheckpointError(f"config data is nested more than {max_depth} levels deep")
        active.add(ident)
        try:
            size = 1
            if isinstance(v, dict):
                out: Any = {}
                for k, x in v.items():
                    cx, n = conv(x, depth + 1)
                    size += n
                    if size > max_values:
                        break
                    out[key_of(k)] = cx
            elif isinstance(v, (list, tuple, set, frozenset)):
                out = []
                for x in v:
                    cx, n = conv(x, depth + 1)
                    size += n
                    if size > max_values:
                        break
                    out.append(cx)
            elif isinstance(v, np.ndarray):
                if v.dtype.kind not in "biuf":
                    raise CheckpointError(f"config data holds a numpy array of {v.dtype}, not numbers")
                size += int(v.size)
                out = v.tolist() if size <= max_values else None
            else:
                raise CheckpointError(f"config data holds {_describe(v)} where plain data is expected")
        finally:
            active.discard(ident)
        if size > max_values:
            raise CheckpointError(f"config data holds more than {max_values} values (counting shared "
                                  "references each time they occur)")
        memo[ident] = (out, size)
        return out, size

    return conv(value, 0)[0]


def _int(name: str, value: Any, lo: int, hi: int) -> int:
    """``value`` as an int in [lo, hi] (integral floats accepted); ValueError otherwise."""
    ok = isinstance(value, int) or (isinstance(value, float) and math.isfinite(value) and value.is_integer())
    if not ok or not lo <= int(value) <= hi:
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {_describe(value)}")
    return int(value)


def _float(name: str, value: Any, lo: float, hi: float, allow_none: bool = False) -> Any:
    """``value`` unchanged when it is a finite number in [lo, hi] (or None if allowed)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not lo <= value <= hi:
        extra = " or None" if allow_none else ""
        raise ValueError(f"{name} must be a finite number in [{lo:g}, {hi:g}]{extra}, got {_describe(value)}")
    return value


def _filter_shape(taps: Any) -> tuple[int, ...]:
    """Shape of the FIR kernel :func:`setup_filter` builds from ``taps``; ValueError if unusable."""
    cap = LIMITS["filter_taps"]
    if not isinstance(taps, list) or not taps:
        raise ValueError(f"resample_filter must be a non-empty list of numbers, got {_describe(taps)}")
    if all(isinstance(row, list) for row in taps):  # a 2-D kernel
        width = len(taps[0])
        if len(taps) > cap or not 0 < width <= cap or any(len(row) != width for row in taps):
            raise ValueError(f"a 2-D resample_filter must be rectangular with sides of 1..{cap} taps")
        values = [v for row in taps for v in row]
        shape: tuple[int, ...] = (len(taps), width)
    else:
        if len(taps) > cap:
            raise ValueError(f"resample_filter has {len(taps)} taps, at most {cap} are supported")
        values = taps
        shape = (len(taps),) if len(taps) >= 8 else (len(taps), len(taps))  # setup_filter's rule
    for v in values:
        _float("resample_filter tap", v, -1e6, 1e6)
    if sum(values) == 0:
        raise ValueError("resample_filter taps sum to zero")
    return shape


def count_elements(cfg: dict[str, Any]) -> int:
    """Number of values in every parameter and buffer of ``StyleGAN2Generator(**cfg)``.

    Computed from a normalized config alone (nothing is built); equals the sum of ``numel()``
    over the model's state dict.
    """
    mk, sk = cfg["mapping_kwargs"], cfg["synthesis_kwargs"]
    z, c, w = cfg["z_dim"], cfg["c_dim"], cfg["w_dim"]
    embed = 0 if c == 0 else (mk["embed_features"] if mk["embed_features"] is not None else w)
    hidden = mk["layer_features"] if mk["layer_features"] is not None else w
    n = c * embed + embed if c > 0 else 0
    feats = [z + embed] + [hidden] * (mk["num_layers"] - 1) + [w]
    n += sum(feats[i] * feats[i + 1] + feats[i + 1] for i in range(mk["num_layers"]))
    n += w  # w_avg
    f = math.prod(_filter_shape(sk["resample_filter"]))
    k, img = sk["kernel_size"], cfg["img_channels"]
    res = cfg["img_resolution"]
    resolutions = [2**i for i in range(2, int(math.log2(res)) + 1)]
    ch = {r: min(sk["channel_base"] // r, sk["channel_max"]) for r in resolutions}

    def layer(i: int, o: int, r: int) -> int:  # SynthesisLayer: filter, affine, weight, noise, bias
        return f + w * i + i + o * i * k * k + ((r * r + 1) if sk["use_noise"] else 0) + o

    for r in resolutions:
        i, o = (ch[r // 2] if r > 4 else 0), ch[r]
        n += f  # the block's resample_filter
        n += layer(i, o, r) if i else o * r * r  # up-conv, or the 4x4 constant
        n += layer(o, o, r)
        if r == res or sk["architecture"] == "skip":
            n += w * o + o + img * o + img  # toRGB: affine, 1x1 weight, bias
        if i and sk["architecture"] == "resnet":
            n += f + o * i  # skip: filter + 1x1 weight
    return n


def normalize_config(
    z_dim: int = 512,
    c_dim: int = 0,
    w_dim: int = 512,
    img_resolution: int = 1024,
    img_channels: int = 3,
    mapping_kwargs: dict[str, Any] | None = None,
    synthesis_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Fill defaults and validate a StyleGAN2 config; returns a new plain-data dict.

    Every size is checked against :data:`LIMITS`, and the total number of parameter and buffer
    values (:func:`count_elements`) against ``LIMITS["num_elements"]``, before anything is built.
    Raises ValueError (one line) for unknown keys or impossible values.
    """
    for name, kw in (("mapping_kwargs", mapping_kwargs), ("synthesis_kwargs", synthesis_kwargs)):
        if kw is not None and not isinstance(kw, dict):
            raise ValueError(f"{name} must be a dict, got {_describe(kw)}")
    mk = plain_data(dict(mapping_kwargs or {}))
    sk = plain_data(dict(synthesis_kwargs or {}))
    unknown = sorted(set(mk) - set(MAPPING_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown StyleGAN2 mapping_kwargs: {', '.join(unknown)}")
    for key in SYNTHESIS_IGNORED:
        sk.pop(key, None)
    unknown = sorted(set(sk) - set(SYNTHESIS_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown StyleGAN2 synthesis_kwargs: {', '.join(unknown)}")
    mk = {**MAPPING_DEFAULTS, **mk}
    sk = {**SYNTHESIS_DEFAULTS, **sk}
    L = LIMITS
    cfg = {
        "z_dim": _int("z_dim", plain_data(z_dim), 0, L["z_dim"]),
        "c_dim": _int("c_dim", plain_data(c_dim), 0, L["c_dim"]),
        "w_dim": _int("w_dim", plain_data(w_dim), 1, L["w_dim"]),
        "img_resolution": _int("img_resolution", plain_data(img_resolution), 4, L["img_resolution"]),
        "img_channels": _int("img_channels", plain_data(img_channels), 1, L["img_channels"]),
        "mapping_kwargs": mk,
        "synthesis_kwargs": sk,
    }
    res = cfg["img_resolution"]
    if res < 4 or res & (res - 1):
        raise ValueError(f"img_resolution must be a power of two >= 4, got {res}")
    if cfg["z_dim"] < 0 or cfg["c_dim"] < 0 or cfg["z_dim"] + cfg["c_dim"] == 0:
        raise ValueError("StyleGAN2 needs z_dim > 0 or c_dim > 0")
    if cfg["w_dim"] <= 0 or cfg["img_channels"] <= 0:
        raise ValueError("w_dim and img_channels must be positive")
    mk["num_layers"] = _int("mapping num_layers", mk["num_layers"], 1, L["num_layers"])
    for key in ("embed_features", "layer_features"):
        if mk[key] is not None:
            mk[key] = _int(f"mapping {key}", mk[key], 1, L["features"])
    for act in (mk["activation"], sk["activation"]):
        if not isinstance(act, str) or act not in ACTIVATIONS:
            raise ValueError(f"unknown activation {_describe(act)}")
    _float("mapping lr_multiplier", mk["lr_multiplier"], 1e-8, 1e8)
    _float("mapping w_avg_beta", mk["w_avg_beta"], -1e8, 1e8, allow_none=True)
    if not isinstance(sk["architecture"], str) or sk["architecture"] not in ARCHITECTURES:
        raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {_describe(sk['architecture'])}")
    sk["channel_base"] = _int("channel_base", sk["channel_base"], 1, L["channel_base"])
    sk["channel_max"] = _int("channel_max", sk["channel_max"], 1, L["channel_max"])
    if sk["channel_base"] // res < 1:
        raise ValueError(f"channel_base {sk['channel_base']} leaves no channels at {res}x{res} "
                         "(it must be at least img_resolution)")
    sk["kernel_size"] = _int("kernel_size", sk["kernel_size"], 1, L["kernel_size"])
    sk["num_fp16_res"] = _int("num_fp16_res", sk["num_fp16_res"], 0, L["num_fp16_res"])
    _float("conv_clamp", sk["conv_clamp"], 0, 1e12, allow_none=True)
    if not isinstance(sk["use_noise"], (bool, int)) or sk["use_noise"] not in (0, 1):
        raise ValueError(f"use_noise must be true or false, got {_describe(sk['use_noise'])}")
    _filter_shape(sk["resample_filter"])
    total = count_elements(cfg)
    if total > L["num_elements"]:
        raise ValueError(f"this configuration has {total:,} parameter values, more than the "
                         f"{L['num_elements']:,} latentlab allows")
    return cfg


# ---------------------------------------------------------------------------- layers
def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """Scale ``x`` to unit mean square along ``dim`` (StyleGAN's pixel norm of z)."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


class FullyConnectedLayer(nn.Module):
    """Equalised-learning-rate dense layer: ``act(x @ (W * lr/sqrt(in)).T + b * lr)``."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, activation: str = "linear",
                 lr_multiplier: float = 1.0, bias_init: float = 0.0) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.activation = activation
        self.weight = nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)  # [OI]
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_act(x.matmul(w.t()), b, act=self.activation)


class MappingNetwork(nn.Module):
    """z [N, z_dim] (+ c [N, c_dim]) -> w [N, w_dim]; holds the running average ``w_avg``."""

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: int, num_layers: int = 8,
                 embed_features: int | None = None, layer_features: int | None = None,
                 activation: str = "lrelu", lr_multiplier: float = 0.01, w_avg_beta: float | None = 0.995) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers = num_layers
        self.w_avg_beta = w_avg_beta
        if embed_features is None:
            embed_features = w_dim
        if c_dim == 0:
            embed_features = 0
        if layer_features is None:
            layer_features = w_dim
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for idx in range(num_layers):
            layer = FullyConnectedLayer(features[idx], features[idx + 1], activation=activation,
                                        lr_multiplier=lr_multiplier)
            setattr(self, f"fc{idx}", layer)
        self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(self, z: torch.Tensor | None, c: torch.Tensor | None = None) -> torch.Tensor:
        x = None
        if self.z_dim > 0:
            x = normalize_2nd_moment(z.to(torch.float32))
        if self.c_dim > 0:
            y = normalize_2nd_moment(self.embed(c.to(torch.float32)))
            x = torch.cat([x, y], dim=1) if x is not None else y
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)
        return x


def modulated_conv2d(
    x: torch.Tensor,                  # [N, I, H, W]
    weight: torch.Tensor,             # [O, I, kh, kw]
    styles: torch.Tensor,             # [N, I]
    noise: torch.Tensor | None = None,  # broadcastable to the output [N, O, H', W']
    up: int = 1,
    padding: int = 0,
    resample_filter: torch.Tensor | None = None,
    demodulate: bool = True,
    flip_weight: bool = True,
    fused_modconv: bool = True,
) -> torch.Tensor:
    """StyleGAN2's modulated (and optionally demodulated) convolution.

    ``fused_modconv=True`` builds per-sample weights and runs one grouped convolution;
    False scales activations instead (cheaper for large batches). Both agree to ~1e-6.
    """
    n = x.shape[0]
    out_ch, in_ch, kh, kw = weight.shape
    w = None
    dcoefs = None
    if demodulate or fused_modconv:
        w = weight.unsqueeze(0) * styles.reshape(n, 1, in_ch, 1, 1)  # [NOIkk]
    if demodulate:
        dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()  # [NO]

    if not fused_modconv:
        x = x * styles.to(x.dtype).reshape(n, in_ch, 1, 1)
        x = conv2d_resample(x, weight.to(x.dtype), f=resample_filter, up=up, padding=padding,
                            flip_weight=flip_weight)
        if dcoefs is not None:
            x = x * dcoefs.to(x.dtype).reshape(n, out_ch, 1, 1)
        if noise is not None:
            x = x + noise.to(x.dtype)
        return x

    if dcoefs is not None:
        w = w * dcoefs.reshape(n, out_ch, 1, 1, 1)  # [NOIkk]
    x = x.reshape(1, n * in_ch, *x.shape[2:])
    w = w.reshape(n * out_ch, in_ch, kh, kw)
    x = conv2d_resample(x, w.to(x.dtype), f=resample_filter, up=up, padding=padding, groups=n,
                        flip_weight=flip_weight)
    x = x.reshape(n, out_ch, *x.shape[2:])
    if noise is not None:
        x = x + noise.to(x.dtype)
    return x


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv (optionally 2x up) + noise + bias + activation (+ clamp)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, kernel_size: int = 3,
                 up: int = 1, use_noise: bool = True, activation: str = "lrelu",
                 resample_filter: list[float] = (1, 3, 3, 1), conv_clamp: float | None = None) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.resolution = resolution
        self.up = up
        self.use_noise = use_noise
        self.activation = activation
        self.conv_clamp = conv_clamp
        self.register_buffer("resample_filter", setup_filter(list(resample_filter)))
        self.padding = kernel_size // 2
        self.act_gain = ACTIVATIONS[activation].def_gain
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))  # [OIkk]
        if use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "const", fused_modconv: bool | None = True,
                gain: float = 1.0, impl: str = "ref") -> torch.Tensor:
        if impl == "fast" and self.activation in _HOMOGENEOUS and gain > 0:
            return self._forward_fast(x, w, noise_mode, fused_modconv, gain)
        if fused_modconv is None:
            fused_modconv = True
        styles = self.affine(w)  # [NI]
        noise = None
        if self.use_noise and noise_mode == "random":
            noise = torch.randn([x.shape[0], 1, self.resolution, self.resolution], device=x.device,
                                dtype=x.dtype) * self.noise_strength
        elif self.use_noise and noise_mode == "const":
            noise = self.noise_const * self.noise_strength
        x = modulated_conv2d(x, self.weight, styles, noise=noise, up=self.up, padding=self.padding,
                             resample_filter=self.resample_filter, flip_weight=(self.up == 1),
                             fused_modconv=fused_modconv)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias.to(x.dtype), act=self.activation, gain=self.act_gain * gain, clamp=clamp)

    def _forward_fast(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str, fused_modconv: bool | None,
                      gain: float) -> torch.Tensor:
        """The same layer with fewer passes over the activations (equal to ~1e-6 relative).

        The demodulation coefficients come from ``styles^2 @ sum_k weight^2`` (no [N, O, I, k, k]
        tensor); the activation gain (positive, and the activation positively homogeneous) is
        folded into the per-channel scale, so output = act(conv * scale + noise * g + bias * g)
        in one multiply-add and in-place ops.
        """
        n, in_ch = x.shape[0], self.in_channels
        out_ch, _, kh, kw = self.weight.shape
        styles = self.affine(w).to(x.dtype)  # [NI]
        g = self.act_gain * gain
        wsq = self.weight.to(x.dtype).square().sum(dim=[2, 3])  # [OI]
        scale = (styles.square() @ wsq.t() + 1e-8).rsqrt() * g  # [NO] demodulation * gain
        if fused_modconv is None:
            fused_modconv = _auto_fused(n, styles)
        if fused_modconv:
            wt = self.weight.to(x.dtype).unsqueeze(0) * styles.reshape(n, 1, in_ch, 1, 1) * scale.reshape(n, out_ch, 1, 1, 1)
            y = conv2d_resample(x.reshape(1, n * in_ch, *x.shape[2:]), wt.reshape(n * out_ch, in_ch, kh, kw),
                                f=self.resample_filter, up=self.up, padding=self.padding, groups=n,
                                flip_weight=(self.up == 1), impl="fast")
            y = y.reshape(n, out_ch, *y.shape[2:])
            noise = self._noise(y, noise_mode)
            if noise is not None:
                y = y + noise * g
        else:
            y = conv2d_resample(x * styles.reshape(n, in_ch, 1, 1), self.weight.to(x.dtype), f=self.resample_filter,
                                up=self.up, padding=self.padding, flip_weight=(self.up == 1), impl="fast")
            noise = self._noise(y, noise_mode)
            if noise is not None:
                y = torch.addcmul(noise * g, y, scale.reshape(n, out_ch, 1, 1))
            else:
                y = y * scale.reshape(n, out_ch, 1, 1)
        y.add_((self.bias.to(x.dtype) * g).reshape(1, -1, 1, 1))  # y is a fresh tensor no backward needs
        y = _homogeneous_act_(y, self.activation)
        if self.conv_clamp is not None:
            c = self.conv_clamp * gain
            y = y.clamp(-c, c)
        return y

    def _noise(self, y: torch.Tensor, noise_mode: str) -> torch.Tensor | None:
        if self.use_noise and noise_mode == "random":
            return torch.randn([y.shape[0], 1, self.resolution, self.resolution], device=y.device,
                               dtype=y.dtype) * self.noise_strength
        if self.use_noise and noise_mode == "const":  # in y's dtype, or bfloat16 (autocast) would promote y
            return (self.noise_const * self.noise_strength).to(y.dtype)
        return None


#: Activations with act(g * x) = g * act(x) for g > 0: their gain can be folded into the conv scale.
_HOMOGENEOUS = ("linear", "relu", "lrelu")


def _homogeneous_act_(y: torch.Tensor, act: str) -> torch.Tensor:
    """Apply a positively homogeneous activation in place (y must be a fresh tensor)."""
    if act == "lrelu":
        return F.leaky_relu_(y, ACTIVATIONS["lrelu"].def_alpha)
    if act == "relu":
        return F.relu_(y)
    return y


def _auto_fused(n: int, styles: torch.Tensor) -> bool:
    """Per-sample (grouped) weights when no gradient flows to the styles and the batch is 1.

    With gradients, scaling activations is cheaper: the backward then needs only the
    convolution's input gradient, not a weight gradient per sample.
    """
    return n == 1 and not (torch.is_grad_enabled() and styles.requires_grad)


class ToRGBLayer(nn.Module):
    """Modulated 1x1 conv to image channels, not demodulated."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, kernel_size: int = 1,
                 conv_clamp: float | None = None) -> None:
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))  # [OIkk]
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)

    def forward(self, x: torch.Tensor, w: torch.Tensor, fused_modconv: bool | None = True,
                impl: str = "ref") -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        if impl == "fast" and self.weight.shape[-1] == 1:
            n = x.shape[0]
            styles = styles.to(x.dtype)
            if fused_modconv is None:
                fused_modconv = _auto_fused(n, styles)
            if fused_modconv and n == 1:
                y = F.conv2d(x, self.weight.to(x.dtype) * styles.reshape(1, -1, 1, 1), self.bias.to(x.dtype))
            else:
                y = F.conv2d(x * styles.reshape(n, -1, 1, 1), self.weight.to(x.dtype), self.bias.to(x.dtype))
            return y.clamp(-self.conv_clamp, self.conv_clamp) if self.conv_clamp is not None else y
        if fused_modconv is None:
            fused_modconv = True
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused_modconv=fused_modconv)
        return bias_act(x, self.bias.to(x.dtype), clamp=self.conv_clamp)


class Conv2dLayer(nn.Module):
    """Plain equalised conv (used as the resnet skip: 1x1, 2x up, no bias, linear)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True,
                 activation: str = "linear", up: int = 1, resample_filter: list[float] = (1, 3, 3, 1),
                 conv_clamp: float | None = None) -> None:
        super().__init__()
        self.activation = activation
        self.up = up
        self.conv_clamp = conv_clamp
        self.register_buffer("resample_filter", setup_filter(list(resample_filter)))
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size**2)
        self.act_gain = ACTIVATIONS[activation].def_gain
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))  # [OIkk]
        self.bias = nn.Parameter(torch.zeros([out_channels])) if bias else None

    def forward(self, x: torch.Tensor, gain: float = 1.0, impl: str = "ref") -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias.to(x.dtype) if self.bias is not None else None
        x = conv2d_resample(x, w, f=self.resample_filter, up=self.up, padding=self.padding,
                            flip_weight=(self.up == 1), impl=impl)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, b, act=self.activation, gain=self.act_gain * gain, clamp=clamp)


class SynthesisBlock(nn.Module):
    """One resolution: (const | 2x up-conv) + conv, and a toRGB for 'skip' (or the last block)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, img_channels: int,
                 is_last: bool, architecture: str = "skip", resample_filter: list[float] = (1, 3, 3, 1),
                 conv_clamp: float | None = None, use_noise: bool = True, activation: str = "lrelu",
                 kernel_size: int = 3) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.resolution = resolution
        self.is_last = is_last
        self.architecture = architecture
        self.register_buffer("resample_filter", setup_filter(list(resample_filter)))
        layer_kwargs = dict(w_dim=w_dim, resolution=resolution, kernel_size=kernel_size, use_noise=use_noise,
                            activation=activation, resample_filter=resample_filter, conv_clamp=conv_clamp)
        self.num_conv = 0
        self.num_torgb = 0
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn([out_channels, resolution, resolution]))  # [CHW]
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, up=2, **layer_kwargs)
            self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, **layer_kwargs)
        self.num_conv += 1
        if is_last or architecture == "skip":
            self.torgb = ToRGBLayer(out_channels, img_channels, w_dim=w_dim, conv_clamp=conv_clamp)
            self.num_torgb += 1
        if in_channels != 0 and architecture == "resnet":
            self.skip = Conv2dLayer(in_channels, out_channels, kernel_size=1, bias=False, up=2,
                                    resample_filter=resample_filter)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor,
                noise_mode: str = "const", fused_modconv: bool | None = True,
                impl: str = "ref") -> tuple[torch.Tensor, torch.Tensor | None]:
        """ws [N, num_conv + num_torgb, w_dim] -> (features [N, C, r, r], image [N, 3, r, r] or None)."""
        rows = iter(ws.unbind(dim=1))
        if self.in_channels == 0:
            x = self.const.to(ws.dtype).unsqueeze(0).repeat([ws.shape[0], 1, 1, 1])
            if impl == "fast":  # oneDNN convolves NHWC without reordering every layer
                x = x.contiguous(memory_format=torch.channels_last)
            x = self.conv1(x, next(rows), noise_mode=noise_mode, fused_modconv=fused_modconv, impl=impl)
        elif self.architecture == "resnet":
            y = self.skip(x, gain=math.sqrt(0.5), impl=impl)
            x = self.conv0(x, next(rows), noise_mode=noise_mode, fused_modconv=fused_modconv, impl=impl)
            x = self.conv1(x, next(rows), noise_mode=noise_mode, fused_modconv=fused_modconv, gain=math.sqrt(0.5),
                           impl=impl)
            x = y + x
        else:
            x = self.conv0(x, next(rows), noise_mode=noise_mode, fused_modconv=fused_modconv, impl=impl)
            x = self.conv1(x, next(rows), noise_mode=noise_mode, fused_modconv=fused_modconv, impl=impl)
        if img is not None:
            img = upsample2d(img, self.resample_filter, impl=impl)
        if self.is_last or self.architecture == "skip":
            y = self.torgb(x, next(rows), fused_modconv=fused_modconv, impl=impl).to(torch.float32)
            img = y if img is None else img + y
        return x, img


class SynthesisNetwork(nn.Module):
    """ws [N, num_ws, w_dim] -> image [N, img_channels, img_resolution, img_resolution]."""

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, channel_base: int = 32768,
                 channel_max: int = 512, num_fp16_res: int = 0, **block_kwargs: Any) -> None:
        super().__init__()
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.num_fp16_res = num_fp16_res  # stored only: latentlab computes in float32
        log2 = int(round(math.log2(img_resolution)))
        self.block_resolutions = [2**i for i in range(2, log2 + 1)]
        self.channels = {r: min(channel_base // r, channel_max) for r in self.block_resolutions}
        self.num_ws = 0
        for res in self.block_resolutions:
            in_channels = self.channels[res // 2] if res > 4 else 0
            block = SynthesisBlock(in_channels, self.channels[res], w_dim=w_dim, resolution=res,
                                   img_channels=img_channels, is_last=(res == img_resolution), **block_kwargs)
            self.num_ws += block.num_conv
            if res == img_resolution:
                self.num_ws += block.num_torgb
            setattr(self, f"b{res}", block)

    def layer_rows(self) -> list[tuple[str, int, int]]:
        """(layer name, W+ row, resolution) for every styled layer, in execution order."""
        out = []
        row = 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            names = (["conv0"] if block.in_channels else []) + ["conv1"]
            for i, name in enumerate(names):
                out.append((f"synthesis.b{res}.{name}", row + i, res))
            if block.num_torgb:
                out.append((f"synthesis.b{res}.torgb", row + block.num_conv, res))
            row += block.num_conv
        return sorted(out, key=lambda t: (t[1], t[2], t[0]))

    def forward(self, ws: torch.Tensor, noise_mode: str = "const", fused_modconv: bool | None = True,
                impl: str = "ref", stop_resolution: int | None = None, features: bool = False) -> torch.Tensor:
        """``stop_resolution``: stop after that block and return its skip image (only for 'skip'
        networks) or, with ``features``, its feature map [N, C, r, r]."""
        x = img = None
        row = 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            block_ws = ws.narrow(1, row, block.num_conv + block.num_torgb)
            row += block.num_conv
            if features and res == stop_resolution:
                x, _ = block(x, None, block_ws, noise_mode=noise_mode, fused_modconv=fused_modconv, impl=impl)
                return x
            x, img = block(x, img, block_ws, noise_mode=noise_mode, fused_modconv=fused_modconv, impl=impl)
            if res == stop_resolution:
                break
        return img.contiguous() if impl == "fast" else img


# ---------------------------------------------------------------------------- generator
class StyleGAN2Generator(Generator):
    """NVIDIA's StyleGAN2 generator (stylegan2-ada-pytorch ``training.networks.Generator``).

    Constructor arguments are NVIDIA's (``z_dim, c_dim, w_dim, img_resolution, img_channels,
    mapping_kwargs, synthesis_kwargs``), all plain JSON data; ``self.config`` holds them with
    every default filled in. The mapping and synthesis networks are the submodules ``mapping``
    and ``synthesis`` (reach them as :attr:`mapping_network` / :attr:`synthesis_network`;
    ``G.mapping(...)`` and ``G.synthesis(...)`` are the interface methods).
    """

    family = "stylegan2"

    def __init__(self, z_dim: int = 512, c_dim: int = 0, w_dim: int = 512, img_resolution: int = 1024,
                 img_channels: int = 3, mapping_kwargs: dict[str, Any] | None = None,
                 synthesis_kwargs: dict[str, Any] | None = None) -> None:
        super().__init__()
        cfg = normalize_config(z_dim, c_dim, w_dim, img_resolution, img_channels, mapping_kwargs, synthesis_kwargs)
        self.config = copy.deepcopy(cfg)
        self.z_dim, self.c_dim, self.w_dim = cfg["z_dim"], cfg["c_dim"], cfg["w_dim"]
        self.img_resolution, self.img_channels = cfg["img_resolution"], cfg["img_channels"]
        #: fused (grouped-conv) modulated convolutions; False scales activations instead; None:
        #: 'ref' fuses, 'fast' fuses only for a batch of 1 without gradients to the styles.
        self.fused_modconv: bool | None = None
        #: 'fast' (default): channels-last activations, fewer passes per layer, FIR upsampling as a
        #: transposed conv; equal to 'ref' (NVIDIA's op order, NCHW) to ~1e-6 (tests/test_fast_paths.py).
        self.impl = "fast"
        synthesis = SynthesisNetwork(w_dim=self.w_dim, img_resolution=self.img_resolution,
                                     img_channels=self.img_channels, **cfg["synthesis_kwargs"])
        self.num_ws = synthesis.num_ws
        mapping = MappingNetwork(z_dim=self.z_dim, c_dim=self.c_dim, w_dim=self.w_dim, num_ws=self.num_ws,
                                 **cfg["mapping_kwargs"])
        # Registered directly: the names `mapping`/`synthesis` are also the interface methods.
        self._modules["synthesis"] = synthesis
        self._modules["mapping"] = mapping

    # ------------------------------------------------------------------ layout
    def layer_rows(self) -> list[tuple[str, int, int]]:
        """(NVIDIA layer name, W+ row, layer resolution) for each styled layer."""
        return self.synthesis_network.layer_rows()

    @property
    def ws_resolutions(self) -> list[int]:
        """Per W+ row, the resolution of the conv layers it feeds (toRGB-only last row: output res)."""
        out = []
        for row in range(self.num_ws):
            layers = [(n, r) for n, i, r in self.layer_rows() if i == row]
            convs = [r for n, r in layers if not n.endswith("torgb")]
            out.append(max(convs) if convs else max(r for _, r in layers))
        return out

    def ws_layer_names(self) -> list[str]:
        """Per W+ row, the layers it feeds, e.g. ``'b4.torgb+b8.conv0'``."""
        names: list[list[str]] = [[] for _ in range(self.num_ws)]
        for name, row, _ in self.layer_rows():
            names[row].append(name.removeprefix("synthesis."))
        return ["+".join(n) for n in names]

    # ------------------------------------------------------------------ networks
    def _map(self, z: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        return self.mapping_network(z, c)

    def synthesis(self, ws: torch.Tensor, noise_mode: str = "const",
                  fused_modconv: bool | None = None, impl: str | None = None) -> torch.Tensor:
        """ws [N, num_ws, w_dim] -> images [N, img_channels, R, R] (float32, nominally [-1, 1]).

        noise_mode: 'const' (the stored ``noise_const`` buffers), 'random' or 'none'.
        """
        self.check_ws(ws)
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        fused = self.fused_modconv if fused_modconv is None else bool(fused_modconv)
        impl = self._check_impl(impl)
        return self.synthesis_network(ws.to(torch.float32), noise_mode=noise_mode, fused_modconv=fused, impl=impl)

    def _check_impl(self, impl: str | None) -> str:
        impl = self.impl if impl is None else impl
        if impl not in IMPLS:
            raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
        return impl

    def synthesis_lowres(self, ws: torch.Tensor, resolution: int, noise_mode: str = "const",
                         approximate: bool = False, impl: str | None = None) -> torch.Tensor | None:
        """An image at ``resolution`` (< img_resolution) for a loss computed there, or None.

        StyleGAN2 has no exact shortcut (the area-downsampled output mixes every block), so this
        returns None unless ``approximate``: then synthesis stops after block ``resolution`` and
        returns its skip-connection image [N, C, resolution, resolution] ('skip' architecture
        only). Rows feeding higher blocks get no gradient.
        """
        self.check_ws(ws)
        net = self.synthesis_network
        if (not approximate or resolution >= self.img_resolution or resolution not in net.block_resolutions
                or self.config["synthesis_kwargs"]["architecture"] != "skip"):
            return None
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        return net(ws.to(torch.float32), noise_mode=noise_mode, fused_modconv=self.fused_modconv,
                   impl=self._check_impl(impl), stop_resolution=resolution)

    def synthesis_features(self, ws: torch.Tensor, resolution: int, noise_mode: str = "const",
                           impl: str | None = None) -> torch.Tensor:
        """The feature map of synthesis block ``resolution`` [N, C, r, r], computed without the
        blocks above it (rows feeding them get no gradient)."""
        self.check_ws(ws)
        if resolution not in self.synthesis_network.block_resolutions:
            raise ValueError(f"no synthesis block at {resolution} px; blocks: {self.synthesis_network.block_resolutions}")
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        return self.synthesis_network(ws.to(torch.float32), noise_mode=noise_mode, fused_modconv=self.fused_modconv,
                                      impl=self._check_impl(impl), stop_resolution=resolution, features=True)

    @property
    def feature_resolutions(self) -> list[int]:
        """Resolutions whose block features :meth:`synthesis_features` returns."""
        return list(self.synthesis_network.block_resolutions)

    def noise_buffers(self) -> dict[str, torch.Tensor]:
        """The live ``noise_const`` buffers [r, r] by state-dict name, in layer order."""
        return {name: buf for name, buf in self.named_buffers() if name.endswith(".noise_const")}


__all__ = [
    "FullyConnectedLayer",
    "MappingNetwork",
    "StyleGAN2Generator",
    "SynthesisBlock",
    "SynthesisLayer",
    "SynthesisNetwork",
    "ToRGBLayer",
    "modulated_conv2d",
    "normalize_config",
]
