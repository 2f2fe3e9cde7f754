"""latentlab's own checkpoint format: safetensors weights + the generator config as JSON.

``model.safetensors`` carries the config in its metadata (keys ``latentlab.family`` and
``latentlab.config``), so the single file is self-describing; :func:`save_native` also writes
``<name>.json`` beside it for people to read. Loading never runs code: safetensors is data only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ..errors import CheckpointError

FORMAT_VERSION = "1"


def save_native(family: str, config: dict[str, Any], state_dict: dict[str, torch.Tensor],
                path: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Write ``path`` (.safetensors) and ``path.with_suffix('.json')``; returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state_dict.items()}
    meta = {
        "latentlab.format": FORMAT_VERSION,
        "latentlab.family": family,
        "latentlab.config": json.dumps(config, sort_keys=True),
        "latentlab.extra": json.dumps(extra or {}, sort_keys=True),
    }
    tmp = path.with_name(path.name + ".part")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.replace(path)
    doc = {"family": family, "config": config, "format": FORMAT_VERSION, **({"extra": extra} if extra else {})}
    path.with_suffix(".json").write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return path


def is_native(path: str | Path) -> bool:
    """True when ``path`` is a safetensors file written by :func:`save_native`."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return "latentlab.family" in (f.metadata() or {})
    except Exception:  # noqa: BLE001 - any failure means "not this format"
        return False


def read_native(path: str | Path) -> tuple[str, dict[str, Any], dict[str, torch.Tensor], dict[str, Any]]:
    """Read (family, config, state_dict, extra) from a native .safetensors file."""
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            if "latentlab.family" not in meta:
                raise CheckpointError(f"{path}: a safetensors file without latentlab metadata")
            state = {k: f.get_tensor(k) for k in f.keys()}
    except CheckpointError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None
    try:
        config = json.loads(meta["latentlab.config"])
        extra = json.loads(meta.get("latentlab.extra", "{}"))
    except (KeyError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: corrupt latentlab metadata ({exc})") from None
    return meta["latentlab.family"], config, state, extra
