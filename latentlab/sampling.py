"""Seeds, latents, interpolation and image conversion shared by the CLI and the library.

Conventions follow NVIDIA's ``generate.py``: seed ``s`` gives
``z = np.random.RandomState(s).randn(1, z_dim)``, and an image tensor in [-1, 1] becomes uint8 with
``clamp(x * 127.5 + 128, 0, 255)`` truncated to an integer.
"""

from __future__ import annotations

import re

import numpy as np
import torch

from .errors import LatentlabError

#: Largest seed NumPy's legacy ``RandomState`` accepts.
MAX_SEED = 2**32 - 1

_PART = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


def parse_seeds(spec: str | int) -> list[int]:
    """Parse a seed list such as ``"0-7"``, ``"1,3,5-9"`` or ``"42"`` (NVIDIA's syntax).

    Ranges are inclusive. Order is kept and duplicates are dropped (first occurrence wins).
    Raises LatentlabError for empty parts, descending ranges, negative numbers or seeds >= 2**32.
    """
    if isinstance(spec, int):
        spec = str(spec)
    if not isinstance(spec, str) or not spec.strip():
        raise LatentlabError("empty seed list (expected e.g. '0-7' or '1,3,5-9')")
    seeds: list[int] = []
    seen: set[int] = set()
    for part in spec.split(","):
        m = _PART.match(part)
        if m is None:
            raise LatentlabError(f"bad seed list {spec!r}: cannot read {part.strip()!r} "
                                 "(expected N or A-B with non-negative integers, e.g. '1,3,5-9')")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo:
            raise LatentlabError(f"bad seed list {spec!r}: range {lo}-{hi} is descending")
        if hi > MAX_SEED:
            raise LatentlabError(f"bad seed list {spec!r}: seeds must be below 2**32")
        if hi - lo >= 1_000_000:
            raise LatentlabError(f"bad seed list {spec!r}: range {lo}-{hi} has more than a million seeds")
        for s in range(lo, hi + 1):
            if s not in seen:
                seen.add(s)
                seeds.append(s)
    return seeds


def z_from_seed(seed: int, z_dim: int) -> np.ndarray:
    """NVIDIA's latent for a seed: ``np.random.RandomState(seed).randn(1, z_dim)``, float64 [1, z_dim]."""
    if not 0 <= int(seed) <= MAX_SEED:
        raise LatentlabError(f"seed {seed} is out of range [0, 2**32)")
    return np.random.RandomState(int(seed)).randn(1, int(z_dim))


def z_from_seeds(seeds: list[int], z_dim: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Stack :func:`z_from_seed` for each seed into a float32 tensor [N, z_dim] on ``device``."""
    z = np.concatenate([z_from_seed(s, z_dim) for s in seeds], axis=0).astype(np.float32)
    return torch.from_numpy(z).to(device)


def class_labels(class_idx: int | None, c_dim: int, n: int, device: torch.device | str = "cpu") -> torch.Tensor | None:
    """One-hot labels [n, c_dim] for a conditional generator, None for an unconditional one.

    Raises LatentlabError when a class is given to an unconditional model, is missing for a
    conditional one, or is out of range.
    """
    if c_dim == 0:
        if class_idx is not None:
            raise LatentlabError("--class was given but this generator is unconditional")
        return None
    if class_idx is None:
        raise LatentlabError(f"this generator is conditional ({c_dim} classes): pass --class IDX")
    if not 0 <= class_idx < c_dim:
        raise LatentlabError(f"class {class_idx} is out of range [0, {c_dim})")
    c = torch.zeros(n, c_dim, device=device)
    c[:, class_idx] = 1
    return c


# ---------------------------------------------------------------------------------- interpolation
def lerp(a: torch.Tensor, b: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    """Linear interpolation ``a + t * (b - a)`` (use in W / W+)."""
    return a + (b - a) * t


def slerp(a: torch.Tensor, b: torch.Tensor, t: float | torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Spherical interpolation of vectors along the last dimension (use in Z).

    ``a``, ``b``: [..., D]; ``t`` a float or a tensor broadcastable to [...]. The direction moves along
    the great circle from ``a/|a|`` to ``b/|b|`` at constant angular speed (the angle to ``a`` is
    ``t * angle(a, b)``); the norm is interpolated linearly, ``(1 - t)|a| + t|b|``, so vectors of
    equal norm stay on their sphere. Nearly parallel inputs (angle below ~1e-3 rad) fall back to a
    normalised lerp of the directions. Opposite vectors have no unique great circle: LatentlabError.
    """
    t = torch.as_tensor(t, dtype=a.dtype, device=a.device)
    if t.ndim > 0:
        t = t.unsqueeze(-1)
    na = a.norm(dim=-1, keepdim=True)
    nb = b.norm(dim=-1, keepdim=True)
    if bool((na <= eps).any()) or bool((nb <= eps).any()):
        raise LatentlabError("slerp needs non-zero vectors")
    ua, ub = a / na, b / nb
    dot = (ua * ub).sum(dim=-1, keepdim=True).clamp(-1.0, 1.0)
    if bool((dot < -1 + 1e-6).any()):
        raise LatentlabError("slerp is undefined for opposite vectors")
    omega = torch.arccos(dot)
    sin_omega = torch.sin(omega)
    near = sin_omega < 1e-3
    safe_sin = torch.where(near, torch.ones_like(sin_omega), sin_omega)
    wa = torch.sin((1 - t) * omega) / safe_sin
    wb = torch.sin(t * omega) / safe_sin
    direction = wa * ua + wb * ub
    flat = ua + (ub - ua) * t
    flat = flat / flat.norm(dim=-1, keepdim=True)
    direction = torch.where(near, flat, direction)
    return direction * (na + (nb - na) * t)


def keyframe_path(num_keys: int, frames_per_segment: int, loop: bool) -> list[tuple[int, int, float]]:
    """Frame schedule for interpolating between ``num_keys`` keyframes.

    Returns one ``(i, j, t)`` per output frame: blend keyframe ``i`` to ``j`` by ``t`` in [0, 1).
    Without ``loop`` the path ends exactly on the last keyframe (``frames * (K-1) + 1`` frames);
    with ``loop`` it returns to the first keyframe (``frames * K`` frames, the last frame is not
    repeated so the video loops seamlessly).
    """
    if num_keys < 2:
        raise LatentlabError("interpolation needs at least two seeds")
    if frames_per_segment < 1:
        raise LatentlabError("--frames must be at least 1")
    segments = [(i, i + 1) for i in range(num_keys - 1)]
    if loop:
        segments.append((num_keys - 1, 0))
    out = [(i, j, k / frames_per_segment) for i, j in segments for k in range(frames_per_segment)]
    if not loop:
        out.append((num_keys - 2, num_keys - 1, 1.0))
    return out


# ---------------------------------------------------------------------------------- images
def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Images [N, C, H, W] nominally in [-1, 1] -> uint8 [N, H, W, C] (NVIDIA's conversion).

    ``clamp(x * 127.5 + 128, 0, 255)`` truncated toward zero; single-channel images keep C = 1.
    """
    if images.ndim != 4:
        raise ValueError(f"images must be [N, C, H, W], got {list(images.shape)}")
    x = (images.detach().float().permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255)
    return x.to(torch.uint8).cpu().numpy()


__all__ = [
    "MAX_SEED", "class_labels", "keyframe_path", "lerp", "parse_seeds", "slerp",
    "to_uint8", "z_from_seed", "z_from_seeds",
]
