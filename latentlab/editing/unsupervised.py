"""Unsupervised directions: SeFa (closed form, from the style affine weights) and GANSpace (PCA of W).

* **SeFa** (Shen & Zhou 2021): the style of a layer is ``A w + b``; the directions that change
  styles the most are the top eigenvectors of ``A^T A``, with ``A`` the affine weight matrices of
  the chosen layers stacked row-wise (each output channel's weight row scaled to unit norm, as
  the paper does, so every channel counts alike and the equalised-lr gains drop out). The
  directions depend on which layers are stacked: a component computed for rows ``R`` is meant to
  be applied on rows ``R``.
* **GANSpace** (Härkönen et al. 2020): principal components of ``w = mapping(z)`` over random z;
  they are global in W and applied on a user-chosen layer range (default all).

Style affines are found generically from the module tree: row ``i`` feeds the layers named in
``G.ws_layer_names()[i]`` (``+``-separated), whose style affine is the submodule
``synthesis.<layer>.affine`` with a ``weight`` [channels, w_dim] (StyleGAN2's
``FullyConnectedLayer`` and MobileStyleGAN's ``StyleAffine``, the ported style MatMuls).
Directions are unit vectors [w_dim] with a fixed sign (largest-magnitude entry positive).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import LatentlabError
from .layers import describe_rows, parse_layers


@dataclass
class Component:
    """One unsupervised direction: ``direction`` float32 [w_dim] (unit norm), ``value`` its
    eigenvalue (SeFa) or the variance of W along it (GANSpace), ``rows`` the W+ rows it acts on."""

    method: str
    index: int
    direction: np.ndarray
    value: float
    rows: list[int]
    layers: str
    meta: dict = field(default_factory=dict)


def style_affines(G: torch.nn.Module) -> list[tuple[int, str, torch.Tensor]]:
    """(W+ row, module name, weight [channels, w_dim]) for every style affine, in row order."""
    modules = dict(G.named_modules())
    names = G.ws_layer_names()
    out: list[tuple[int, str, torch.Tensor]] = []
    for row, row_names in enumerate(names):
        for layer in str(row_names).split("+"):
            layer = layer.removeprefix("synthesis.")
            mod_name = f"synthesis.{layer}.affine"
            mod = modules.get(mod_name)
            weight = getattr(mod, "weight", None) if mod is not None else None
            if not isinstance(weight, torch.Tensor) or weight.ndim != 2 or weight.shape[1] != G.w_dim:
                raise LatentlabError(f"cannot find the style affine of W+ row {row} ({mod_name}); "
                                     f"SeFa needs a model whose rows feed '<layer>.affine' modules")
            out.append((row, mod_name, weight.detach()))
    if not out:
        raise LatentlabError("this generator has no style affine layers")
    return out


def _fix_sign(v: np.ndarray) -> np.ndarray:
    return v if v[np.argmax(np.abs(v))] >= 0 else -v


def sefa_from_weights(weights: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """SeFa on explicit weight matrices [C_i, w_dim]: returns (eigenvalues [w_dim] descending,
    directions [w_dim, w_dim], row k = k-th unit eigenvector of ``A^T A``, A = row-normalised stack)."""
    if not weights:
        raise LatentlabError("SeFa needs at least one weight matrix")
    A = np.concatenate([np.asarray(w, np.float64) for w in weights], axis=0)
    norms = np.linalg.norm(A, axis=1, keepdims=True)
    A = A / np.maximum(norms, 1e-12)
    values, vectors = np.linalg.eigh(A.T @ A)  # ascending
    order = np.argsort(values)[::-1]
    values = values[order]
    dirs = np.stack([_fix_sign(vectors[:, k]) for k in order])
    return values, dirs


def sefa(G: torch.nn.Module, layers: str = "all", *, rows_exact: bool = False,
         num_components: int | None = None) -> list[Component]:
    """SeFa components for the style affines of the rows in ``layers`` (a layer-range spec).

    Returns up to ``num_components`` (default all w_dim) components, strongest first; each acts
    on the same rows it was computed from.
    """
    rows = parse_layers(layers, G, rows_exact=rows_exact)
    chosen = [w.float().cpu().numpy() for r, _, w in style_affines(G) if r in rows]
    values, dirs = sefa_from_weights(chosen)
    n = len(values) if num_components is None else max(1, min(int(num_components), len(values)))
    total = float(np.clip(values, 0, None).sum()) or 1.0
    return [Component("sefa", k, dirs[k].astype(np.float32), float(values[k]), rows, layers,
                      {"num_affines": len(chosen), "share": float(values[k]) / total}) for k in range(n)]


@torch.no_grad()
def sample_w(G: torch.nn.Module, num_samples: int = 20000, seed: int = 0, batch: int = 2000) -> np.ndarray:
    """W samples [num_samples, w_dim] (float64) from z ~ N(0, I) drawn with RandomState(seed)."""
    rng = np.random.RandomState(seed)
    out = []
    for start in range(0, num_samples, batch):
        n = min(batch, num_samples - start)
        z = torch.from_numpy(rng.randn(n, G.z_dim).astype(np.float32)).to(G.device)
        c = torch.zeros(n, G.c_dim, device=G.device) if G.c_dim else None
        out.append(G.mapping(z, c)[:, 0].double().cpu().numpy())
    return np.concatenate(out)


def pca(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PCA of samples [S, D]: (mean [D], variances [D] descending, components [D, D] rows)."""
    x = np.asarray(samples, np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise LatentlabError(f"PCA needs samples [S >= 2, D], got {list(x.shape)}")
    mean = x.mean(0)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    variances = s ** 2 / (x.shape[0] - 1)
    comps = np.stack([_fix_sign(v) for v in vt])
    return mean, variances, comps


def ganspace(G: torch.nn.Module, layers: str = "all", *, rows_exact: bool = False, num_samples: int = 20000,
             seed: int = 0, num_components: int | None = 32) -> list[Component]:
    """GANSpace components: PCA of ``num_samples`` W samples; each applied on ``layers``.

    ``value`` is the variance of W along the component (its standard deviation is a natural
    unit for the edit strength).
    """
    rows = parse_layers(layers, G, rows_exact=rows_exact)
    mean, variances, comps = pca(sample_w(G, num_samples, seed))
    n = len(variances) if num_components is None else max(1, min(int(num_components), len(variances)))
    total = float(variances.sum())
    return [Component("ganspace", k, comps[k].astype(np.float32), float(variances[k]), rows, layers,
                      {"share": float(variances[k]) / total, "num_samples": num_samples, "seed": seed})
            for k in range(n)]


def format_components(components: list[Component], G: torch.nn.Module, limit: int = 20) -> str:
    """A text table: index, value, share of the total (eigenvalues or variance), the rows it acts on."""
    lines = ["  K   METHOD    VALUE       SHARE   ROWS"]
    for c in components[:limit]:
        lines.append(f"  {c.index:<3} {c.method:<8}  {c.value:<10.4g}  {c.meta.get('share', float('nan')):6.1%}  "
                     f"{describe_rows(c.rows, G)}")
    return "\n".join(lines)


__all__ = ["Component", "format_components", "ganspace", "pca", "sample_w", "sefa", "sefa_from_weights",
           "style_affines"]
