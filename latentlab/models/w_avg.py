"""The average W: the one estimator, and a generator's own.

``w_avg`` is the projection start and the truncation centre. A checkpoint that stores it is taken
as stored; one that does not gets :func:`mapping_mean` when it is read (the checkpoint readers call
it), and ``latentlab ... --w-avg-samples N`` re-estimates it (:func:`latentlab.registry.estimate_w_avg`,
which caches it).
"""

from __future__ import annotations

from typing import Any

import torch

#: The w_avg convention: samples, and the seed of the ``torch.Generator`` that draws z (and, for
#: conditional models, the class labels).
W_AVG_SAMPLES = 10_000
W_AVG_SEED = 0
_DRAW = 2000  # z rows drawn per call of torch.randn (labels drawn after each draw)


@torch.no_grad()
def mapping_mean(map_fn: Any, z_dim: int, c_dim: int, w_dim: int, num_samples: int = W_AVG_SAMPLES,
                 seed: int = W_AVG_SEED, *, batch: int = 1000, device: "str | torch.device" = "cpu") -> torch.Tensor:
    """The one estimator of the average W: mean of ``map_fn(z, c)`` (no truncation) over
    ``num_samples`` latents, float32 [w_dim] on ``device``.

    z ~ N(0, I) comes from ``torch.Generator().manual_seed(seed)`` on the CPU, 2000 rows per draw;
    a conditional model (``c_dim > 0``) gets uniform one-hot labels drawn from the same generator
    after each z draw. ``map_fn(z [n, z_dim], c [n, c_dim] | None) -> [n, w_dim]`` runs on chunks
    of ``batch``; the mean is accumulated in float64.
    """
    gen = torch.Generator().manual_seed(int(seed))
    total = torch.zeros(w_dim, dtype=torch.float64, device=device)
    done = 0
    while done < num_samples:
        n = min(_DRAW, num_samples - done)
        z = torch.randn([n, z_dim], generator=gen)
        c = None
        if c_dim > 0:
            c = torch.nn.functional.one_hot(torch.randint(c_dim, [n], generator=gen), c_dim).to(torch.float32)
        for k in range(0, n, batch):
            ck = None if c is None else c[k:k + batch].to(device)
            total += map_fn(z[k:k + batch].to(device), ck).to(torch.float64).sum(dim=0)
        done += n
    return (total / num_samples).to(torch.float32)


def w_avg_of(G: Any, num_samples: int = W_AVG_SAMPLES) -> torch.Tensor:
    """G's average W [w_dim] float32: ``G.w_avg`` as its checkpoint stores it (or as the reader
    estimated it); for a generator whose buffer was never filled (all zeros: built in memory, not
    trained) :func:`mapping_mean` of its mapping network over ``num_samples`` (G is not changed)."""
    w = G.w_avg.detach()
    if bool(torch.any(w != 0)):
        return w.float()
    return mapping_mean(G._map, G.z_dim, G.c_dim, G.w_dim, num_samples, W_AVG_SEED, device=w.device)


__all__ = ["W_AVG_SAMPLES", "W_AVG_SEED", "mapping_mean", "w_avg_of"]
