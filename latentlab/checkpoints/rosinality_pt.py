"""Reader for rosinality/stylegan2-pytorch generator checkpoints.

Two layouts are read, both with ``torch.load(weights_only=True)`` (never ``weights_only=False``):

* ``train.py`` checkpoints ``{g, d, g_ema, g_optim, d_optim, args, ada_aug_p}``; ``args`` is an
  ``argparse.Namespace``, the one extra global allowed (it holds plain data). No average W is
  stored: it is estimated from mapping samples (noted in ``extra``).
* ``convert_weight.py`` output ``{g_ema, latent_avg}``.

``g_ema`` is renamed to NVIDIA's names (rosinality's ``convs.{2k}`` is ``b{2^(k+3)}.conv0``,
weights lose their leading 1, no kernel flip); the architecture (size, style dim, n_mlp,
channels, blur kernel) is inferred from tensor shapes, and the channel table is expressed as
NVIDIA's ``min(channel_base // res, channel_max)``.
"""

from __future__ import annotations

import argparse
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError, UnsafePickleError
from . import CheckpointData
from .nvidia_pkl import W_AVG_SAMPLES, W_AVG_SEED, _normalize, check_state_dict, estimate_w_avg
from .unpickle import weights_only_refusal

#: rosinality's mapping lr multiplier (``lr_mlp``; train.py never changes it, nothing stores it).
ROSINALITY_LR_MLP = 0.01


def _load(path: Path) -> Any:
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise UnsafePickleError(f"{path}: {weights_only_refusal(exc)}") from None
    except (RuntimeError, EOFError, ValueError, OSError, zipfile.BadZipFile, KeyError, TypeError,
            AttributeError, IndexError, UnicodeDecodeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({first})") from None


def _channel_formula(channels: dict[int, int], path: Path) -> tuple[int, int]:
    """Find (channel_base, channel_max) with min(base // r, max) == channels[r] for every r."""
    cmax = max(channels.values())
    lo, hi = 1, 1 << 40
    for r, c in channels.items():
        if c == cmax:
            lo = max(lo, cmax * r)  # base // r >= cmax
        else:
            lo, hi = max(lo, c * r), min(hi, c * r + r - 1)
    if lo > hi:
        table = ", ".join(f"{r}: {c}" for r, c in sorted(channels.items()))
        raise CheckpointError(f"{path}: channel table {{{table}}} does not fit min(channel_base // res, channel_max)")
    return lo, cmax


def _filter_taps(kernel: torch.Tensor | None, path: Path) -> list[float]:
    """rosinality's 2-D blur kernel -> the 1-D taps NVIDIA's ``resample_filter`` takes."""
    if kernel is None:
        return [1, 3, 3, 1]
    k = kernel.double()
    if k.ndim != 2 or k.shape[0] != k.shape[1] or float(k.sum()) == 0:
        raise CheckpointError(f"{path}: unexpected blur kernel of shape {list(kernel.shape)}")
    taps = k.sum(0)
    taps = taps / taps.abs()[taps != 0].min()
    if (torch.outer(taps, taps) / torch.outer(taps, taps).sum() - k / k.sum()).abs().max() > 1e-6:
        raise CheckpointError(f"{path}: blur kernel is not separable; NVIDIA's layout cannot hold it")
    rounded = taps.round()
    if (taps - rounded).abs().max() < 1e-6:
        return [int(v) for v in rounded.tolist()]
    return [float(v) for v in taps.tolist()]


def convert_rosinality_state(sd: dict[str, torch.Tensor], path: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """rosinality ``g_ema`` state dict -> (latentlab StyleGAN2 config, NVIDIA-named state dict)."""
    path = Path(path)
    if not all(k in sd for k in ("input.input", "conv1.conv.weight", "to_rgb1.conv.weight", "style.1.weight")):
        raise CheckpointError(f"{path}: not a rosinality StyleGAN2 generator state dict")
    used: set[str] = set()

    def take(name: str) -> torch.Tensor:
        if name not in sd:
            raise CheckpointError(f"{path}: rosinality checkpoint lacks {name}")
        used.add(name)
        t = sd[name]
        if not isinstance(t, torch.Tensor):
            raise CheckpointError(f"{path}: {name} is not a tensor")
        return t

    n_mlp = 0
    while f"style.{n_mlp + 1}.weight" in sd:
        n_mlp += 1
    w_dim = int(sd["style.1.weight"].shape[1])
    num_rgbs = 0
    while f"to_rgbs.{num_rgbs}.conv.weight" in sd:
        num_rgbs += 1
    log_size = num_rgbs + 2
    resolution = 2**log_size
    channels = {4: int(sd["input.input"].shape[1])}
    for k in range(num_rgbs):
        w = sd.get(f"convs.{2 * k}.conv.weight")
        if w is None or w.ndim != 5:
            raise CheckpointError(f"{path}: rosinality checkpoint lacks convs.{2 * k}.conv.weight")
        channels[2 ** (k + 3)] = int(w.shape[1])
    channel_base, channel_max = _channel_formula(channels, path)
    blur = sd.get("convs.0.conv.blur.kernel", sd.get("to_rgbs.0.upsample.kernel"))
    config = _normalize({
        "z_dim": w_dim,
        "c_dim": 0,
        "w_dim": w_dim,
        "img_resolution": resolution,
        "img_channels": int(sd["to_rgb1.conv.weight"].shape[1]),
        "mapping_kwargs": {"num_layers": n_mlp, "lr_multiplier": ROSINALITY_LR_MLP},
        "synthesis_kwargs": {"channel_base": channel_base, "channel_max": channel_max,
                             "resample_filter": _filter_taps(blur, path)},
    }, path)

    out: dict[str, torch.Tensor] = {}
    for i in range(n_mlp):
        out[f"mapping.fc{i}.weight"] = take(f"style.{i + 1}.weight")
        out[f"mapping.fc{i}.bias"] = take(f"style.{i + 1}.bias")
    out["synthesis.b4.const"] = take("input.input")[0]

    def styled(dst: str, src: str, noise: int) -> None:
        out[f"{dst}.weight"] = take(f"{src}.conv.weight")[0]
        out[f"{dst}.affine.weight"] = take(f"{src}.conv.modulation.weight")
        out[f"{dst}.affine.bias"] = take(f"{src}.conv.modulation.bias")
        out[f"{dst}.noise_strength"] = take(f"{src}.noise.weight").reshape(-1)[0]
        out[f"{dst}.bias"] = take(f"{src}.activate.bias")
        out[f"{dst}.noise_const"] = take(f"noises.noise_{noise}")[0, 0]

    def torgb(dst: str, src: str) -> None:
        out[f"{dst}.weight"] = take(f"{src}.conv.weight")[0]
        out[f"{dst}.affine.weight"] = take(f"{src}.conv.modulation.weight")
        out[f"{dst}.affine.bias"] = take(f"{src}.conv.modulation.bias")
        out[f"{dst}.bias"] = take(f"{src}.bias").reshape(-1)

    styled("synthesis.b4.conv1", "conv1", 0)
    torgb("synthesis.b4.torgb", "to_rgb1")
    for k in range(num_rgbs):
        r = 2 ** (k + 3)
        styled(f"synthesis.b{r}.conv0", f"convs.{2 * k}", 2 * k + 1)
        styled(f"synthesis.b{r}.conv1", f"convs.{2 * k + 1}", 2 * k + 2)
        torgb(f"synthesis.b{r}.torgb", f"to_rgbs.{k}")
    # Blur/upsample kernels are fixed buffers, rebuilt from the config.
    used.update(k for k in sd if k.endswith(".blur.kernel") or k.endswith(".upsample.kernel"))
    unused = sorted(set(sd) - used)
    if unused:
        more = f" (+{len(unused) - 3} more)" if len(unused) > 3 else ""
        raise CheckpointError(f"{path}: rosinality tensors with no place in the architecture: "
                              f"{', '.join(unused[:3])}{more}")
    return config, out


def read_rosinality_pt(path: str | Path) -> CheckpointData:
    """Read a rosinality ``train.py`` checkpoint or a ``convert_weight.py`` file (uses ``g_ema``).

    Returns CheckpointData(family "stylegan2", config, NVIDIA-named state_dict,
    source_format "rosinality-pt"). Raises UnsafePickleError / CheckpointError (one line).
    """
    path = Path(path)
    ckpt = _load(path)
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path}: a torch file holding a {type(ckpt).__name__}, not a checkpoint dict")
    extra: dict[str, Any] = {}
    if "g_ema" in ckpt:
        sd = ckpt["g_ema"]
        extra["network"] = "g_ema"
    elif "style.1.weight" in ckpt:
        sd = ckpt
        extra["network"] = "<top level>"
    else:
        raise CheckpointError(f"{path}: torch checkpoint without a rosinality generator ('g_ema')")
    if not isinstance(sd, dict):
        raise CheckpointError(f"{path}: g_ema is a {type(sd).__name__}, not a state dict")
    config, state = convert_rosinality_state(sd, path)

    latent_avg = ckpt.get("latent_avg")
    if isinstance(latent_avg, torch.Tensor):
        if latent_avg.numel() != config["w_dim"]:
            raise CheckpointError(f"{path}: latent_avg has {latent_avg.numel()} values, expected {config['w_dim']}")
        state["mapping.w_avg"] = latent_avg.reshape(-1)
        extra["w_avg"] = "latent_avg stored in the checkpoint"
    else:
        state["mapping.w_avg"] = estimate_w_avg(config, state)
        extra["w_avg"] = f"estimated from {W_AVG_SAMPLES} mapping samples (torch seed {W_AVG_SEED})"
    args = ckpt.get("args")
    if isinstance(args, argparse.Namespace):
        extra["train_args"] = {k: v for k, v in vars(args).items() if isinstance(v, (int, float, str, bool))}
    state = check_state_dict(config, state, path)
    return CheckpointData("stylegan2", config, state, "rosinality-pt", extra)


__all__ = ["convert_rosinality_state", "read_rosinality_pt"]
