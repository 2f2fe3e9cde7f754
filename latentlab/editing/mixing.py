"""W+ arithmetic: style mixing, expression transfer, row-restricted offsets, interpolation.

The tensor functions take ws tensors ``[N, num_ws, w_dim]`` (N = 1 broadcasts against larger N), a
list of W+ rows (from :func:`latentlab.editing.layers.parse_layers`; None = all rows), and return
new tensors; inputs are never modified. :func:`style` and :func:`transfer` do the same on
:class:`~latentlab.latent.Latent` values and record what they did. Shape errors are one-line
:class:`LatentlabError`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..errors import LatentlabError
from ..latent import Latent


def _check(ws: torch.Tensor, name: str) -> None:
    if not isinstance(ws, torch.Tensor) or ws.ndim != 3:
        shape = list(ws.shape) if isinstance(ws, torch.Tensor) else type(ws).__name__
        raise LatentlabError(f"{name} must be a ws tensor [N, num_ws, w_dim], got {shape}")


def _check_pair(a: torch.Tensor, b: torch.Tensor, na: str, nb: str) -> None:
    _check(a, na)
    _check(b, nb)
    if a.shape[1:] != b.shape[1:]:
        raise LatentlabError(f"{na} {list(a.shape)} and {nb} {list(b.shape)} have different W+ layouts "
                             "(latents from different models?)")
    if a.shape[0] != b.shape[0] and 1 not in (a.shape[0], b.shape[0]):
        raise LatentlabError(f"{na} and {nb} have batch sizes {a.shape[0]} and {b.shape[0]}")


def row_mask(rows: Sequence[int] | None, num_ws: int, *, device: torch.device | None = None,
             dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """[1, num_ws, 1] mask: 1 on ``rows`` (all when None), 0 elsewhere."""
    mask = torch.zeros(1, num_ws, 1, device=device, dtype=dtype)
    idx = list(range(num_ws)) if rows is None else [int(r) for r in rows]
    bad = [r for r in idx if not 0 <= r < num_ws]
    if bad:
        raise LatentlabError(f"row {bad[0]} is outside this model's W+ rows 0..{num_ws - 1}")
    mask[:, idx] = 1
    return mask


def style_mix(content_ws: torch.Tensor, style_ws: torch.Tensor, rows: Sequence[int] | None) -> torch.Tensor:
    """Content's ws with ``rows`` copied from style's: ``where(row in rows, style, content)``."""
    _check_pair(content_ws, style_ws, "content ws", "style ws")
    m = row_mask(rows, content_ws.shape[1], device=content_ws.device, dtype=content_ws.dtype)
    style_ws = style_ws.to(content_ws.device, content_ws.dtype)
    return content_ws * (1 - m) + style_ws * m


def apply_offset(ws: torch.Tensor, offset: "torch.Tensor | np.ndarray", strength: float = 1.0,
                 rows: Sequence[int] | None = None) -> torch.Tensor:
    """``ws + strength * offset`` on ``rows`` only (all when None); returns a new tensor.

    The one way a direction is applied (edits, sweeps, expression transfer, the UI's sliders).
    offset: a direction [w_dim] (the same vector on every chosen row), [num_ws, w_dim] (row-wise)
    or ws-shaped; a tensor or a NumPy array."""
    _check(ws, "ws")
    num_ws, w_dim = ws.shape[1:]
    if not isinstance(offset, torch.Tensor):
        offset = torch.from_numpy(np.asarray(offset, np.float32))
    d = offset.to(ws.device, ws.dtype)
    if d.ndim == 1:
        d = d.view(1, 1, -1)
    elif d.ndim == 2:
        d = d.unsqueeze(0)
    if d.ndim != 3 or d.shape[-1] != w_dim or d.shape[1] not in (1, num_ws):
        raise LatentlabError(f"offset of shape {list(offset.shape)} does not fit ws rows [{num_ws}, {w_dim}]")
    m = row_mask(rows, num_ws, device=ws.device, dtype=ws.dtype)
    return ws + float(strength) * d * m


def expression_transfer(target_ws: torch.Tensor, from_ws: torch.Tensor, to_ws: torch.Tensor,
                        strength: float = 1.0, rows: Sequence[int] | None = None) -> torch.Tensor:
    """``target + strength * (to - from)`` on ``rows``: move target by the change from -> to
    (e.g. a neutral and a smiling photo of anyone)."""
    _check_pair(from_ws, to_ws, "--from ws", "--to ws")
    _check_pair(target_ws, from_ws, "target ws", "--from ws")
    delta = to_ws.to(target_ws.device, target_ws.dtype) - from_ws.to(target_ws.device, target_ws.dtype)
    return apply_offset(target_ws, delta, strength, rows)


def lerp_ws(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """``a + t * (b - a)`` on every row (t in [0, 1] interpolates, outside extrapolates)."""
    _check_pair(a, b, "first ws", "second ws")
    return a + float(t) * (b.to(a.device, a.dtype) - a)


def lerp_noise(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], t: float) -> dict[str, torch.Tensor]:
    """Interpolate two noise-map dicts key by key (keys present in both with equal shapes)."""
    out = {}
    for k, va in a.items():
        vb = b.get(k)
        if vb is not None and vb.shape == va.shape:
            out[k] = va + float(t) * (vb.to(va.device, va.dtype) - va)
    return out


def style(content: Latent, style_latent: Latent, rows: Sequence[int], *, layers: str | None = None) -> Latent:
    """Style mixing: ``content`` with the W+ ``rows`` taken from ``style_latent`` (a new latent in
    content's photo, with content's noise and tuning). ``layers``: the spec the rows came from, for
    the record."""
    ws = style_mix(content.ws, style_latent.ws, rows)
    return content.with_op(ws, {"op": "style", "content": content.name, "style": style_latent.name,
                                "layers": layers, "rows": [int(r) for r in rows]},
                           name=f"{content.name}_x_{style_latent.name}")


def transfer(target: Latent, neutral: Latent, smiling: Latent, strength: float, rows: Sequence[int], *,
             layers: str | None = None) -> Latent:
    """Expression transfer (Image2StyleGAN): ``target + strength * (smiling - neutral)`` on ``rows``
    (a new latent in target's photo)."""
    ws = expression_transfer(target.ws, neutral.ws, smiling.ws, strength, rows)
    return target.with_op(ws, {"op": "transfer", "target": target.name, "from": neutral.name, "to": smiling.name,
                               "strength": float(strength), "layers": layers, "rows": [int(r) for r in rows]},
                          name=f"{target.name}_transfer")


def morph(a: Latent, b: Latent, frames: int) -> list[Latent]:
    """``frames`` (>= 2) latents from A to B: ws(t) = A + t (B - A), t = linspace(0, 1, frames);
    noise maps interpolated where both have them, else A's; when either is tuned, each frame carries
    the blended tuning ``(1 - t) tuning_A + t tuning_B`` (the generator morphs too). In A's photo."""
    from ..latent import blend

    if isinstance(frames, bool) or int(frames) < 2:
        raise LatentlabError(f"a morph needs at least 2 frames, got {frames}")
    _check_pair(a.ws, b.ws, "a ws", "b ws")
    n = int(frames)
    out = []
    for k, t in enumerate(np.linspace(0.0, 1.0, n)):
        t = float(t)
        tuning = a.tuning if t == 0.0 else b.tuning if t == 1.0 else blend([a.tuning, b.tuning], [1.0 - t, t])
        out.append(a.with_op(lerp_ws(a.ws, b.ws, t), {"op": "morph", "a": a.name, "b": b.name, "t": k / (n - 1)},
                             name=f"{a.name}_to_{b.name}", noise=lerp_noise(a.noise, b.noise, t) or a.noise,
                             tuning=tuning))
    return out


__all__ = ["apply_offset", "expression_transfer", "lerp_noise", "lerp_ws", "morph", "row_mask", "style", "style_mix",
           "transfer"]
