"""latentlab's own checkpoint format: safetensors weights + the generator config as JSON.

``model.safetensors`` carries the config in its metadata (keys ``latentlab.family`` and
``latentlab.config``), so the single file is self-describing; :func:`save_native` also writes
``<name>.json`` beside it for people to read. Loading never runs code: safetensors is data only.

Reading checks the header against the file first (:func:`~latentlab.checkpoints.guards.
check_safetensors_header`: every tensor's declared size within the file), then the config's
bounds for the families that have them, before any tensor is read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ..errors import CheckpointError, LatentlabError
from .guards import check_safetensors_header

FORMAT_VERSION = "1"


def save_native(family: str, config: dict[str, Any], state_dict: dict[str, torch.Tensor],
                path: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Write ``path`` (.safetensors) and ``path.with_suffix('.json')``; returns ``path``.

    The weights go to ``path.part`` first and are renamed into place. A destination that cannot
    be written (missing permission, a folder in the way, a full disk) raises a one-line
    :class:`~latentlab.errors.LatentlabError`, and no ``.part`` file is left behind.
    """
    path = Path(path)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
    meta = {
        "latentlab.format": FORMAT_VERSION,
        "latentlab.family": family,
        "latentlab.config": json.dumps(config, sort_keys=True),
        "latentlab.extra": json.dumps(extra or {}, sort_keys=True),
    }
    doc = {"family": family, "config": config, "format": FORMAT_VERSION, **({"extra": extra} if extra else {})}
    doc_text = json.dumps(doc, indent=2, sort_keys=True) + "\n"
    tmp = path.with_name(path.name + ".part")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file(tensors, str(tmp), metadata=meta)
        tmp.replace(path)
        path.with_suffix(".json").write_text(doc_text)
    except Exception as exc:  # noqa: BLE001 - OSError, or safetensors' own SafetensorError
        if not isinstance(exc, OSError) and type(exc).__name__ != "SafetensorError":
            raise
        try:
            if tmp.is_file():
                tmp.unlink()
        except OSError:
            pass
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise LatentlabError(f"cannot write {path}: {reason[:300]}") from None
    return path


def looks_like_safetensors(head: bytes, size: int) -> bool:
    """True when the first bytes of a file look like the start of a safetensors header.

    (An 8-byte little-endian header length, then ``{``; pickles and zip archives never have ``{``
    there.) Checked before the pickle and zip magic numbers, which a header length's low bytes
    can mimic. Whether the length fits the file is :func:`read_native`'s to check and report.
    """
    if len(head) < 9 or head[8:9] != b"{":
        return False
    return int.from_bytes(head[:8], "little") >= 2


def is_native(path: str | Path) -> bool:
    """True when ``path`` is a safetensors file written by :func:`save_native`."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return "latentlab.family" in (f.metadata() or {})
    except Exception:  # noqa: BLE001 - any failure means "not this format"
        return False


#: Bounds on a MobileStyleGAN config (the FFHQ model: 512-d, 8 layers, channels <= 512, 1024 px).
_MOBILE_LIMITS = {"z_dim": 8192, "w_dim": 8192, "num_mapping_layers": 64, "img_channels": 16,
                  "channel": 8192, "levels": 10}  # 10 levels: 4096 px


def _check_mobilestylegan_config(config: dict[str, Any], path: Path) -> None:
    """Bounds on a MobileStyleGAN config, before its module tree is built (even on the meta device)."""
    L = _MOBILE_LIMITS

    def bounded(name: str, value: Any, hi: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= hi:
            raise CheckpointError(f"{path}: mobilestylegan {name} must be an integer in [1, {hi}]")

    for key in ("z_dim", "w_dim", "num_mapping_layers", "img_channels"):
        if key in config:
            bounded(key, config[key], L[key])
    channels = config.get("channels", [1, 1])
    if not isinstance(channels, list) or not 2 <= len(channels) <= L["levels"]:
        raise CheckpointError(f"{path}: mobilestylegan channels must be a list of 2..{L['levels']} widths")
    for c in channels:
        bounded("channel width", c, L["channel"])


def check_config(family: Any, config: Any, path: Path) -> None:
    """Family-specific bounds on the config, so that nothing oversized is ever built from it."""
    if not isinstance(family, str) or not family:
        raise CheckpointError(f"{path}: latentlab.family is not a family name")
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: latentlab.config is a {type(config).__name__}, not a JSON object")
    if family == "stylegan2":
        from .nvidia_pkl import checked_config

        checked_config(config, path)
    elif family == "mobilestylegan":
        _check_mobilestylegan_config(config, path)


def read_native(path: str | Path) -> tuple[str, dict[str, Any], dict[str, torch.Tensor], dict[str, Any]]:
    """Read (family, config, state_dict, extra) from a native .safetensors file.

    The header (tensor sizes against the file) and the config's bounds are checked before any
    tensor is read; every failure is a one-line CheckpointError.
    """
    path = Path(path)
    header = check_safetensors_header(path)
    meta = header.get("__metadata__") or {}
    if "latentlab.family" not in meta:
        raise CheckpointError(f"{path}: a safetensors file without latentlab metadata")
    try:
        config = json.loads(meta["latentlab.config"])
        extra = json.loads(meta.get("latentlab.extra", "{}"))
    except (KeyError, ValueError, RecursionError) as exc:
        msg = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path}: corrupt latentlab metadata ({type(exc).__name__}: {msg})") from None
    family = meta["latentlab.family"]
    check_config(family, config, path)
    if not isinstance(extra, dict):
        extra = {}
    try:
        with safe_open(str(path), framework="pt") as f:
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error type
        msg = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise CheckpointError(f"{path}: not a readable safetensors file ({msg})") from None
    return family, config, state, extra
