"""Drawing latents: which generator draws a latent, and the drawing itself."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Mapping, Sequence

import numpy as np
import torch

from ..models.base import Generator, override_noise
from .tuning import Tuning, apply_tuning
from .value import Latent

#: Tuned generators kept (the most recently used), so that edits of one tuned photo build it once.
TUNED_CACHE_SIZE = 2
_tuned: "OrderedDict[tuple[int, int], tuple[Generator, Tuning, Generator]]" = OrderedDict()
_lock = threading.Lock()


def tuned_generator(G: Generator, tuning: Tuning | None) -> Generator:
    """G with ``tuning`` applied (a copy; G itself when ``tuning`` is None). The last
    :data:`TUNED_CACHE_SIZE` built are kept, keyed by the generator and tuning objects."""
    if tuning is None:
        return G
    key = (id(G), id(tuning))
    with _lock:
        hit = _tuned.get(key)
        if hit is not None and hit[0] is G and hit[1] is tuning:
            _tuned.move_to_end(key)
            return hit[2]
    Gt = apply_tuning(G, tuning)
    with _lock:
        _tuned[key] = (G, tuning, Gt)
        while len(_tuned) > TUNED_CACHE_SIZE:
            _tuned.popitem(last=False)
    return Gt


def generator_for(G: Generator, latent: Latent) -> Generator:
    """The one rule of which generator draws ``latent``: ``G`` plus the latent's tuning delta when it
    carries one (a pivotal tuning, or the blend a swap or a morph frame was given), else ``G``."""
    return tuned_generator(G, latent.tuning)


@torch.no_grad()
def render_ws(G: Generator, ws: torch.Tensor, noise: Mapping[str, torch.Tensor] | None = None,
              batch: int = 4) -> list[np.ndarray]:
    """ws [N, num_ws, w_dim] -> N uint8 images [R, R, 3], drawn by ``G`` with ``noise`` (name ->
    [1, 1, H, W] maps) in place of its constant noise buffers where given."""
    from ..imageio import tensor_to_images

    G.check_ws(ws)
    buffers = G.noise_buffers()
    use = {k: v.to(G.device, torch.float32) for k, v in (noise or {}).items() if k in buffers}
    out: list[np.ndarray] = []
    with override_noise(G, use):
        for i in range(0, ws.shape[0], batch):
            img = G.synthesis(ws[i:i + batch].to(G.device, torch.float32), noise_mode="const")
            out.extend(tensor_to_images(img.clamp(-1, 1)))
    return out


def _drawing(latent: Latent) -> tuple[str, bool]:
    """(noise mode, NVIDIA's conversion?) of a latent: a sample (``settings["sample"]``) is drawn as
    ``latentlab sample`` / NVIDIA's ``gen_images.py`` draw it (its noise mode, the truncating uint8
    conversion); everything else with its own noise maps or G's constant ones, rounded."""
    sample = latent.settings.get("sample")
    if isinstance(sample, dict) and sample.get("noise_mode") in ("const", "random", "none"):
        return sample["noise_mode"], True
    return "const", False


def render(G: Generator, latents: "Latent | Sequence[Latent]", *, batch: int = 4) -> "np.ndarray | list[np.ndarray]":
    """Draw latents with the generator :func:`generator_for` picks: uint8 [R, R, 3] for one latent,
    a list for several. A latent with noise maps of its own is drawn with them; consecutive latents
    without, that share a generator and a way of drawing, ``batch`` per forward pass (equal to one
    at a time within one level)."""
    from ..imageio import tensor_to_images
    from ..sampling import to_uint8

    one = isinstance(latents, Latent)
    items = [latents] if one else list(latents)
    out: list[np.ndarray] = []
    i = 0
    while i < len(items):
        gen = generator_for(G, items[i])
        if items[i].noise:
            out += render_ws(gen, items[i].ws, items[i].noise)
            i += 1
            continue
        how = _drawing(items[i])
        j = i + 1
        while (j < len(items) and j - i < batch and not items[j].noise and _drawing(items[j]) == how
               and generator_for(G, items[j]) is gen):
            j += 1
        ws = torch.cat([x.ws for x in items[i:j]]).to(gen.device)
        with torch.no_grad():
            img = gen.synthesis(ws, noise_mode=how[0])
        out += [np.ascontiguousarray(x) for x in to_uint8(img)] if how[1] else tensor_to_images(img.clamp(-1, 1))
        i = j
    return out[0] if one else out


__all__ = ["TUNED_CACHE_SIZE", "generator_for", "render", "render_ws", "tuned_generator"]
