"""Noise regularisation for projection with optimised noise maps (as in NVIDIA's StyleGAN2 projector).

When a projector optimises the per-layer noise buffers, it keeps them noise-like by penalising
their spatial autocorrelation at every scale of an average-pooling pyramid, and renormalises them
to zero mean and unit variance after each step.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
import torch.nn.functional as F

from ..errors import LatentlabError

#: The pyramid stops once a level is this small (NVIDIA's projector: 8x8).
MIN_NOISE_RES = 8


def _as_list(noise_bufs: Mapping[str, torch.Tensor] | Iterable[torch.Tensor]) -> list[torch.Tensor]:
    bufs = list(noise_bufs.values()) if isinstance(noise_bufs, Mapping) else list(noise_bufs)
    for b in bufs:
        if not isinstance(b, torch.Tensor) or b.ndim < 2 or not b.is_floating_point():
            desc = list(b.shape) if isinstance(b, torch.Tensor) else type(b).__name__
            raise LatentlabError(f"noise buffers must be float tensors [..., H, W], got {desc}")
    return bufs


def noise_regularization(
    noise_bufs: Mapping[str, torch.Tensor] | Iterable[torch.Tensor],
    *,
    per_sample: bool = False,
) -> torch.Tensor:
    """Multi-scale autocorrelation penalty of noise maps -> scalar tensor.

    With ``per_sample=True`` every buffer must be [N, 1, H, W] (one map per projected photo) and
    the result is [N]: each sample's own penalty, so a batch optimises like N separate runs.

    For each buffer ([H, W], or [..., H, W] whose leading dims are treated as a batch), and at
    each level of a 2x2 average-pooling pyramid from H x W down to 8 x 8 (the first level whose
    height is <= 8 is the last one)::

        loss += mean(n * roll(n, 1, W))^2 + mean(n * roll(n, 1, H))^2

    i.e. the squared autocorrelation at a shift of one pixel, horizontally and vertically, with
    wrap-around. For unit-variance noise that is the normalised autocorrelation. Buffers of any
    device/dtype; accepts ``G.noise_buffers()`` (a dict) or a list.
    """
    bufs = _as_list(noise_bufs)
    if not bufs:
        raise LatentlabError("noise_regularization: no noise buffers given")
    if per_sample and any(b.ndim != 4 or b.shape[1] != 1 for b in bufs):
        raise LatentlabError("noise_regularization(per_sample=True) needs [N, 1, H, W] buffers")
    dims = (1, 2, 3) if per_sample else (0, 1, 2, 3)
    total = bufs[0].new_zeros((bufs[0].shape[0],) if per_sample else ())
    for buf in bufs:
        h, w = buf.shape[-2:]
        n = buf.reshape(-1, 1, h, w)
        while True:
            total = total + (n * torch.roll(n, shifts=1, dims=3)).mean(dim=dims).square()
            total = total + (n * torch.roll(n, shifts=1, dims=2)).mean(dim=dims).square()
            if n.shape[2] <= MIN_NOISE_RES or min(n.shape[2:]) < 2:
                break
            n = F.avg_pool2d(n, kernel_size=2)
    return total


@torch.no_grad()
def normalize_noise_(noise_bufs: Mapping[str, torch.Tensor] | Iterable[torch.Tensor]) -> None:
    """In place: shift and scale each noise buffer to zero mean and unit variance.

    Variance is the population one, ``mean((n - mean(n))^2)``, over all of the buffer's elements.
    A constant buffer (zero variance) is left at zero mean rather than divided by zero.
    """
    for buf in _as_list(noise_bufs):
        buf.sub_(buf.mean())
        var = buf.square().mean()
        # no host sync: a zero variance scales by 1 instead of inf
        buf.mul_(torch.where(var > 0, var.rsqrt(), torch.ones_like(var)))
