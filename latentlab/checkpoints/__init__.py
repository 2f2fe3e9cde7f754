"""Checkpoint readers: pure functions from a file to ``(family, config, state_dict)``.

Models never parse files. Each reader sniffs its own format and raises
:class:`~latentlab.errors.CheckpointError` (one line) when the file is not what it expects.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError, LatentlabError


@dataclass
class CheckpointData:
    """What a reader returns: enough to build the generator and fill it, strictly."""

    family: str
    config: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    source_format: str
    extra: dict[str, Any] = field(default_factory=dict)


def sniff_format(path: str | Path) -> str:
    """Return one of ``native``, ``nvidia-pkl``, ``nvidia-tf-pkl``, ``rosinality-pt``, ``openvino-ir``.

    Raises CheckpointError for a missing, empty or unrecognised file.
    """
    path = Path(path)
    if path.is_dir():
        if (path / "MappingNetwork.xml").is_file() and (path / "SynthesisNetwork.xml").is_file():
            return "openvino-ir"
        raise CheckpointError(f"{path}: a folder that holds no known checkpoint")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    with open(path, "rb") as f:
        head = f.read(16)
    if not head:
        raise CheckpointError(f"{path}: empty file")
    from .native import looks_like_safetensors

    if looks_like_safetensors(head, path.stat().st_size):
        return "native"  # read_native checks the header in full and says what is wrong
    if head[:2] == b"PK":
        return "rosinality-pt"  # torch.save zip archive
    if head[0] == 0x80:  # pickle protocol >= 2
        from .unpickle import pickle_kind

        return pickle_kind(path)
    from .native import is_native

    if is_native(path):
        return "native"
    raise CheckpointError(f"{path}: unknown checkpoint format (expected a StyleGAN2 .pkl, a rosinality .pt, "
                          "or a latentlab .safetensors)")


def read_checkpoint(path: str | Path) -> CheckpointData:
    """Read any supported generator checkpoint from ``path`` without executing code it carries.

    Every failure is a one-line :class:`~latentlab.errors.CheckpointError`: the readers check
    what they can by name; anything a hostile file still manages to trip (a wrong type deep in
    the data, an impossible value) is reported the same way instead of as a traceback.
    """
    try:
        return _read(path)
    except LatentlabError:
        raise
    except RecursionError:
        raise CheckpointError(f"{path}: malformed checkpoint (nested too deeply)") from None
    except MemoryError:
        raise CheckpointError(f"{path}: malformed checkpoint (asks for more memory than is available)") from None
    except (AttributeError, TypeError, KeyError, IndexError, ValueError, RuntimeError, OverflowError,
            ZeroDivisionError, UnicodeError, struct.error) as exc:
        text = " ".join(str(exc).split())[:200]
        raise CheckpointError(f"{path}: malformed checkpoint ({type(exc).__name__}: {text})") from None


def _read(path: str | Path) -> CheckpointData:
    fmt = sniff_format(path)
    if fmt == "native":
        from .native import read_native

        family, config, state, extra = read_native(path)
        return CheckpointData(family, config, state, fmt, extra)
    if fmt == "nvidia-pkl":
        from .nvidia_pkl import read_nvidia_pkl

        return read_nvidia_pkl(path)
    if fmt == "nvidia-tf-pkl":
        from .nvidia_tf_pkl import read_nvidia_tf_pkl

        return read_nvidia_tf_pkl(path)
    if fmt == "rosinality-pt":
        from .rosinality_pt import read_rosinality_pt

        return read_rosinality_pt(path)
    if fmt == "openvino-ir":
        from .openvino_ir import read_mobilestylegan_ir

        return read_mobilestylegan_ir(Path(path) / "MappingNetwork.xml", Path(path) / "SynthesisNetwork.xml")
    raise CheckpointError(f"{path}: unsupported format {fmt}")


__all__ = ["CheckpointData", "read_checkpoint", "sniff_format"]
