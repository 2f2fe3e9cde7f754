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
from .guards import check_tensor_fits_storage, check_torch_legacy, check_torch_zip
from .nvidia_pkl import checked_config, checked_with_w_avg
from .unpickle import weights_only_refusal

#: rosinality's mapping lr multiplier (``lr_mlp``; train.py never changes it, nothing stores it).
ROSINALITY_LR_MLP = 0.01


def _check_declared_sizes(path: Path) -> None:
    """The storages the file declares must fit in it (checked before torch allocates them)."""
    with open(path, "rb") as f:
        head = f.read(4)
    if head[:2] == b"PK":
        check_torch_zip(path, str(path))
    else:
        with open(path, "rb") as f:
            check_torch_legacy(f, path.stat().st_size, str(path))


def _load(path: Path) -> Any:
    _check_declared_sizes(path)
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
    from ..models.stylegan2 import LIMITS

    if kernel is None:
        return [1, 3, 3, 1]
    if not isinstance(kernel, torch.Tensor) or not kernel.is_floating_point() or kernel.ndim != 2 \
            or kernel.shape[0] != kernel.shape[1] or not 0 < kernel.shape[0] <= LIMITS["filter_taps"]:
        shape = list(kernel.shape)[:8] if isinstance(kernel, torch.Tensor) else type(kernel).__name__
        raise CheckpointError(f"{path}: unexpected blur kernel {shape} (expected a square floating-point "
                              f"kernel of at most {LIMITS['filter_taps']} taps a side)")
    k = kernel.double()
    if float(k.sum()) == 0:
        raise CheckpointError(f"{path}: blur kernel sums to zero")
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
    from ..models.stylegan2 import LIMITS

    path = Path(path)
    if not all(k in sd for k in ("input.input", "conv1.conv.weight", "to_rgb1.conv.weight", "style.1.weight")):
        raise CheckpointError(f"{path}: not a rosinality StyleGAN2 generator state dict")
    # Every tensor must fit in its storage before any of them is reshaped or copied.
    for key, t in sd.items():
        if not isinstance(key, str):
            raise CheckpointError(f"{path}: rosinality state dict has a key that is not a string")
        if isinstance(t, torch.Tensor):
            check_tensor_fits_storage(t, key[:80], str(path))
    used: set[str] = set()

    def take(name: str, ndim: int, lead1: int = 0) -> torch.Tensor:
        """sd[name], checked: a tensor of ``ndim`` dims whose first ``lead1`` dims are 1."""
        if name not in sd:
            raise CheckpointError(f"{path}: rosinality checkpoint lacks {name}")
        used.add(name)
        t = sd[name]
        if not isinstance(t, torch.Tensor):
            raise CheckpointError(f"{path}: {name} is not a tensor")
        if t.ndim != ndim or any(d != 1 for d in t.shape[:lead1]) or t.numel() == 0:
            need = "[" + ", ".join(["1"] * lead1 + ["N"] * (ndim - lead1)) + "]"
            raise CheckpointError(f"{path}: {name} has shape {list(t.shape)[:8]}, expected {need}")
        return t

    n_mlp = 0
    while f"style.{n_mlp + 1}.weight" in sd:
        n_mlp += 1
        if n_mlp > LIMITS["num_layers"]:
            raise CheckpointError(f"{path}: more than {LIMITS['num_layers']} mapping layers (style.N.weight)")
    num_rgbs = 0
    while f"to_rgbs.{num_rgbs}.conv.weight" in sd:
        num_rgbs += 1
        if 2 ** (num_rgbs + 2) > LIMITS["img_resolution"]:
            raise CheckpointError(f"{path}: more toRGB layers than a {LIMITS['img_resolution']} px generator has")
    w_dim = int(take("style.1.weight", 2).shape[1])
    used.clear()
    log_size = num_rgbs + 2
    resolution = 2**log_size
    channels = {4: int(take("input.input", 4, lead1=1).shape[1])}
    for k in range(num_rgbs):
        channels[2 ** (k + 3)] = int(take(f"convs.{2 * k}.conv.weight", 5, lead1=1).shape[1])
    used.clear()
    channel_base, channel_max = _channel_formula(channels, path)
    blur = sd.get("convs.0.conv.blur.kernel", sd.get("to_rgbs.0.upsample.kernel"))
    config = checked_config({
        "z_dim": w_dim,
        "c_dim": 0,
        "w_dim": w_dim,
        "img_resolution": resolution,
        "img_channels": int(take("to_rgb1.conv.weight", 5, lead1=1).shape[1]),
        "mapping_kwargs": {"num_layers": n_mlp, "lr_multiplier": ROSINALITY_LR_MLP},
        "synthesis_kwargs": {"channel_base": channel_base, "channel_max": channel_max,
                             "resample_filter": _filter_taps(blur, path)},
    }, path)

    used.clear()
    out: dict[str, torch.Tensor] = {}
    for i in range(n_mlp):
        out[f"mapping.fc{i}.weight"] = take(f"style.{i + 1}.weight", 2)
        out[f"mapping.fc{i}.bias"] = take(f"style.{i + 1}.bias", 1)
    out["synthesis.b4.const"] = take("input.input", 4, lead1=1)[0]

    def styled(dst: str, src: str, noise: int) -> None:
        out[f"{dst}.weight"] = take(f"{src}.conv.weight", 5, lead1=1)[0]
        out[f"{dst}.affine.weight"] = take(f"{src}.conv.modulation.weight", 2)
        out[f"{dst}.affine.bias"] = take(f"{src}.conv.modulation.bias", 1)
        out[f"{dst}.noise_strength"] = take(f"{src}.noise.weight", 1, lead1=1).reshape(-1)[0]
        out[f"{dst}.bias"] = take(f"{src}.activate.bias", 1)
        out[f"{dst}.noise_const"] = take(f"noises.noise_{noise}", 4, lead1=2)[0, 0]

    def torgb(dst: str, src: str) -> None:
        out[f"{dst}.weight"] = take(f"{src}.conv.weight", 5, lead1=1)[0]
        out[f"{dst}.affine.weight"] = take(f"{src}.conv.modulation.weight", 2)
        out[f"{dst}.affine.bias"] = take(f"{src}.conv.modulation.bias", 1)
        out[f"{dst}.bias"] = take(f"{src}.bias", 4, lead1=1).reshape(-1)

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
                              f"{', '.join(u[:80] for u in unused[:3])}{more}")
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
    if latent_avg is not None:
        if not isinstance(latent_avg, torch.Tensor):
            raise CheckpointError(f"{path}: latent_avg is a {type(latent_avg).__name__}, not a tensor")
        if latent_avg.numel() != config["w_dim"]:
            raise CheckpointError(f"{path}: latent_avg has {latent_avg.numel()} values, expected {config['w_dim']}")
        state["mapping.w_avg"] = latent_avg.reshape(-1)
        extra["w_avg"] = "latent_avg stored in the checkpoint"
    args = ckpt.get("args")
    if isinstance(args, argparse.Namespace):
        extra["train_args"] = {str(k): v for k, v in vars(args).items() if isinstance(v, (int, float, str, bool))}
    state = checked_with_w_avg(config, state, path, extra)  # estimates w_avg when none is stored
    return CheckpointData("stylegan2", config, state, "rosinality-pt", extra)


__all__ = ["convert_rosinality_state", "read_rosinality_pt"]
