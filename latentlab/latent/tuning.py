"""A latent's pivotal tuning: the generator weights that draw this person, as a delta.

Pivotal tuning (:mod:`latentlab.inversion.pti`) fine-tunes the synthesis network for one photo. The
result is kept as a compact **delta**: for each synthesis parameter that changed, ``tuned - base``.
A :class:`Tuning` holds it in memory with the values exactly as its file stores them (float16 by
default), so a latent drawn in memory and the same latent read back from disk render the same.

On disk a delta is a safetensors file beside its latent (``NAME.npz`` -> ``NAME.pti.safetensors``);
the latent names it (a plain file name) and records its SHA-256. :func:`read_delta` treats the file
as untrusted: size, hash, header, names, shapes and dtypes are checked before any tensor is read.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from ..errors import LatentlabError
from ..models.base import Generator

DELTA_FORMAT = "latentlab-pti-delta"
DELTA_VERSION = "1"
#: File-name suffix of a delta beside its latent: ``latent.npz`` -> ``latent.pti.safetensors``.
DELTA_SUFFIX = ".pti.safetensors"
#: Largest delta file read (bytes); StyleGAN2 config-f's synthesis in float32 is ~120 MB.
MAX_DELTA_BYTES = 512 * 2**20
DELTA_DTYPES = ("float16", "float32")


def _quantized(delta: Mapping[str, torch.Tensor], dtype: str) -> dict[str, torch.Tensor]:
    """float32 CPU copies of ``delta`` holding values exactly representable in ``dtype``."""
    dt = getattr(torch, dtype)
    return {k: v.detach().to("cpu", dt).float().contiguous() for k, v in sorted(delta.items())}


@dataclass(frozen=True, eq=False)
class Tuning:
    """A pivotal tuning: ``delta`` maps synthesis parameter names (as in
    ``G.synthesis_network.named_parameters()``) to ``tuned - base`` float32 CPU tensors whose values
    are exact in ``dtype`` (the file's precision); ``config``: the tuning settings that made it
    (JSON-able; None for a blend of tunings); ``sha256``: the digest of its file bytes, once known."""

    delta: Mapping[str, torch.Tensor]
    dtype: str = "float16"
    config: Mapping[str, Any] | None = None
    sha256: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.dtype not in DELTA_DTYPES:
            raise LatentlabError(f"delta dtype must be one of {', '.join(DELTA_DTYPES)}, got {self.dtype!r}")

    @classmethod
    def from_delta(cls, delta: Mapping[str, torch.Tensor], *, dtype: str = "float16",
                   config: Mapping[str, Any] | None = None) -> "Tuning":
        """A tuning whose values are ``delta`` rounded to ``dtype`` (what its file will hold)."""
        return cls(_quantized(delta, dtype), dtype, dict(config) if config is not None else None)

    def file_bytes(self, model: str) -> bytes:
        """The ``.pti.safetensors`` file of this tuning for generator ``model`` (its name): the same
        bytes for the same tuning every time, so its SHA-256 identifies it."""
        dt = getattr(torch, self.dtype)
        tensors = {k: v.detach().to("cpu", dt).contiguous() for k, v in self.delta.items()}
        meta = {"format": DELTA_FORMAT, "version": DELTA_VERSION, "model": str(model),
                "config": json.dumps(dict(self.config) if self.config is not None else {}, sort_keys=True)}
        return safetensors_bytes(tensors, meta)

    @property
    def nbytes(self) -> int:
        """Bytes the delta holds in memory."""
        return sum(int(v.numel() * v.element_size()) for v in self.delta.values())


_ST_DTYPES = {torch.float16: "F16", torch.float32: "F32"}


def safetensors_bytes(tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str]) -> bytes:
    """A safetensors file of float16/32 ``tensors`` with string ``metadata``, written
    deterministically: names sorted, the JSON header with sorted keys and no spaces, padded with
    spaces to a multiple of 8 bytes, as the format specifies (safetensors' own writer orders the
    metadata differently from call to call, which would change a delta's SHA-256 each time)."""
    header: dict[str, Any] = {"__metadata__": {str(k): str(v) for k, v in metadata.items()}}
    blobs, offset = [], 0
    for name in sorted(tensors):
        t = tensors[name]
        data = t.detach().contiguous().cpu().numpy().tobytes()
        header[name] = {"dtype": _ST_DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + b"".join(blobs)


def blend(tunings: Sequence[Tuning | None], weights: Sequence[float]) -> Tuning | None:
    """``sum_i weights[i] * tunings[i]`` over the union of their parameters (a missing tuning or
    parameter counts as zero, the base generator). None when every input is None. The blend's
    precision is the widest of its inputs'."""
    present = [t for t in tunings if t is not None]
    if not present:
        return None
    out: dict[str, torch.Tensor] = {}
    for t, w in zip(tunings, weights):
        if t is None:
            continue
        for k, v in t.delta.items():
            out[k] = out[k] + float(w) * v if k in out else float(w) * v
    dtype = "float32" if any(t.dtype == "float32" for t in present) else "float16"
    return Tuning.from_delta(out, dtype=dtype)


def apply_tuning(G: Generator, tuning: Tuning) -> Generator:
    """A copy of G whose synthesis parameters are ``base + delta`` (G is unchanged). One-line
    LatentlabError when the delta names a parameter G lacks or has another shape."""
    params = dict(G.synthesis_network.named_parameters())
    for name, d in tuning.delta.items():
        if name not in params:
            raise LatentlabError(f"tuning delta names {name!r}, which this generator does not have")
        if tuple(d.shape) != tuple(params[name].shape):
            raise LatentlabError(f"tuning delta {name!r} is {list(d.shape)}, the generator's parameter is "
                                 f"{list(params[name].shape)}")
    Gt = copy.deepcopy(G).eval().requires_grad_(False)
    tuned = dict(Gt.synthesis_network.named_parameters())
    with torch.no_grad():
        for name, d in tuning.delta.items():
            tuned[name].add_(d.to(tuned[name].device, tuned[name].dtype))
    return Gt


def delta_path_for(latent_path: "str | Path") -> Path:
    """Where a latent's delta lives: ``folder/latent.npz`` -> ``folder/latent.pti.safetensors``."""
    p = Path(latent_path)
    return p.with_name(p.stem + DELTA_SUFFIX)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_delta(path: "str | Path", G: Generator, *, sha256: str | None = None) -> Tuning:
    """Read and check a ``.pti.safetensors`` delta for generator G.

    Checks, before any tensor is read: a regular file no larger than :data:`MAX_DELTA_BYTES`, the
    SHA-256 when given (the latent's record), a safetensors header whose metadata says it is a
    latentlab delta, tensor names that are G's synthesis parameters with their shapes, float dtypes
    (one dtype for the whole file). After reading: finite values. Every failure is one line naming
    the file.
    """
    from safetensors import safe_open

    from ..checkpoints.guards import check_safetensors_header

    path = Path(path)
    try:
        st = path.lstat()
    except OSError:
        raise LatentlabError(f"{path}: tuning delta not found (it belongs beside its latent file)") from None
    if not stat.S_ISREG(st.st_mode):
        raise LatentlabError(f"{path}: tuning delta is not a regular file")
    if st.st_size > MAX_DELTA_BYTES:
        raise LatentlabError(f"{path}: tuning delta of {st.st_size} bytes is larger than the "
                             f"{MAX_DELTA_BYTES // 2**20} MiB limit")
    digest = _sha256(path)
    if sha256 is not None and digest != sha256.lower():
        raise LatentlabError(f"{path}: tuning delta does not match the SHA-256 its latent records "
                             "(it was replaced or belongs to another latent)")
    header = check_safetensors_header(path)
    meta = header.get("__metadata__") or {}
    if meta.get("format") != DELTA_FORMAT:
        raise LatentlabError(f"{path}: not a latentlab tuning delta (metadata format {meta.get('format')!r})")
    params = dict(G.synthesis_network.named_parameters())
    dtypes = set()
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if name not in params:
            raise LatentlabError(f"{path}: tuning delta names {name!r}, which this generator does not have "
                                 f"(made for {meta.get('model')!r}?)")
        if tuple(info.get("shape", ())) != tuple(params[name].shape):
            raise LatentlabError(f"{path}: tuning delta {name!r} is {info.get('shape')}, the generator's "
                                 f"parameter is {list(params[name].shape)}")
        if info.get("dtype") not in ("F16", "F32"):
            raise LatentlabError(f"{path}: tuning delta {name!r} has dtype {info.get('dtype')}, not float16/32")
        dtypes.add(info["dtype"])
    out: dict[str, torch.Tensor] = {}
    with safe_open(str(path), framework="pt") as f:
        for name in f.keys():
            t = f.get_tensor(name).float()
            if not bool(torch.isfinite(t).all()):
                raise LatentlabError(f"{path}: tuning delta {name!r} holds NaN or infinite values")
            out[name] = t
    try:
        config = json.loads(meta.get("config") or "{}")
    except ValueError:
        config = {}
    dtype = "float32" if "F32" in dtypes else "float16"
    return Tuning(out, dtype, config if isinstance(config, dict) and config else None, digest)


def tuning_config_dict(config: Any) -> dict[str, Any] | None:
    """A tuning config (dataclass or mapping) as plain JSON-able data, or None."""
    if config is None:
        return None
    return dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)


__all__ = ["DELTA_FORMAT", "DELTA_SUFFIX", "MAX_DELTA_BYTES", "Tuning", "apply_tuning", "blend", "delta_path_for",
           "read_delta", "safetensors_bytes", "tuning_config_dict"]
