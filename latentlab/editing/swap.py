"""Face swap in latent space: put A's face on B.

* ``mix``: row mixing. A's rows that carry identity and face shape (default seed rows 0-7, i.e.
  4-32 px; on MobileStyleGAN rows 0-9), B's for the rest (skin tone, lighting, hair texture,
  fine detail), so the result keeps B's colours and blends into B's photo. Rows listed in
  ``keep_layers`` are taken from B even inside the identity range (e.g. ``0-3`` keeps B's pose).
* ``masked``: masked embedding in the spirit of Image2StyleGAN++ (Abdal et al. 2020): optimise a
  W+ latent, starting from B's, so that inside A's face region the image matches A's aligned
  face and outside the (dilated) union of both face regions it matches B's, with masked pixel
  MSE + masked LPIPS at 256 px; B's noise maps stay fixed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import LatentlabError
from ..models.base import Generator
from .mixing import style_mix

#: Default rows taken from A with ``mix`` (seed layout; mapped by resolution).
DEFAULT_IDENTITY_LAYERS = "0-7"


def mix_swap(ws_a: torch.Tensor, ws_b: torch.Tensor, identity_rows: Sequence[int],
             keep_rows: Sequence[int] = ()) -> torch.Tensor:
    """B's ws with ``identity_rows`` (minus ``keep_rows``) copied from A. ws: [N, num_ws, w_dim]."""
    rows = [r for r in identity_rows if r not in set(keep_rows)]
    if not rows:
        raise LatentlabError("the identity layers are all in --keep-layers: nothing would come from A")
    return style_mix(ws_b, ws_a, rows)


@dataclass
class MaskedSwapResult:
    ws: torch.Tensor  # [1, num_ws, w_dim]
    history: list[dict[str, float]]
    seconds: float
    face_mask: np.ndarray  # [R, R] float in [0, 1], where A is matched
    background_mask: np.ndarray  # [R, R] float, where B is matched


def swap_masks(landmarks_a: np.ndarray | None, landmarks_b: np.ndarray | None, resolution: int,
               dilate: float = 0.08) -> tuple[np.ndarray, np.ndarray]:
    """(face mask from A's aligned landmarks, background mask = outside the union of both faces
    dilated by ``dilate`` x face size); float32 [R, R]. Without landmarks: the default ellipse."""
    import cv2

    from ..faces.masks import default_aligned_mask, face_mask, region_mask

    r = int(resolution)
    if landmarks_a is not None:
        face = face_mask(landmarks_a, (r, r), erode=0.0, blur=0.01)
        hard = region_mask(landmarks_a, (r, r)).astype(np.uint8)
    else:
        face = default_aligned_mask(r)
        hard = (face > 0.5).astype(np.uint8)
    if landmarks_b is not None:
        hard |= region_mask(landmarks_b, (r, r)).astype(np.uint8)
    size = float(np.sqrt(max(hard.sum(), 1)))
    k = max(1, int(round(dilate * size)))
    grown = cv2.dilate(hard, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1)))
    background = 1.0 - cv2.GaussianBlur(grown.astype(np.float32), (0, 0), sigmaX=max(1.0, 0.02 * size))
    return face.astype(np.float32), np.clip(background, 0, 1).astype(np.float32)


def masked_swap(G: Generator, ws_start: torch.Tensor, face_target: torch.Tensor, background_target: torch.Tensor,
                face_mask_np: np.ndarray, background_mask_np: np.ndarray, *, num_steps: int = 100,
                lr: float | None = None, rec_weight: float = 1.0, lpips_weight: float = 1.0,
                loss_resolution: int = 256, noise: dict[str, torch.Tensor] | None = None,
                lpips_model: torch.nn.Module | None = None, progress: bool = True,
                callback: Callable[[int, dict[str, float]], None] | None = None) -> MaskedSwapResult:
    """Optimise ws (W+, from ``ws_start`` [1, num_ws, w_dim]) so the masked regions match.

    face_target / background_target: [1, 3, R, R] in [-1, 1] (A's and B's aligned images);
    masks: float [R, R] in [0, 1]. Loss per step: for each (target, mask) pair,
    ``rec_weight * sum(m (x - t)^2) / (3 sum m) + lpips_weight * LPIPS(m x, m t)`` at
    ``loss_resolution``. Adam with the projector's cosine learning-rate ramp-down.
    """
    from tqdm.auto import tqdm

    from ..inversion import override_noise
    from ..inversion.project import _resize_to
    from ..inversion.schedules import learning_rate

    G.check_ws(ws_start)
    if num_steps < 1:
        raise LatentlabError("--steps must be >= 1")
    device = G.device
    res = min(int(loss_resolution), G.img_resolution)
    if lpips_weight > 0 and lpips_model is None:
        from ..losses import LPIPS

        lpips_model = LPIPS().to(device)
    if lpips_model is not None:
        lpips_model.eval().requires_grad_(False)

    def small_mask(m: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.asarray(m, np.float32))[None, None].to(device)
        return F.interpolate(t, size=(res, res), mode="area")

    pairs = []
    for target, mask in ((face_target, face_mask_np), (background_target, background_mask_np)):
        t = _resize_to(target.to(device, torch.float32), res)
        m = small_mask(mask)
        feats = lpips_model.features(t * m) if lpips_model is not None and lpips_weight > 0 else None
        pairs.append((t, m, feats))

    peak = float(lr if lr is not None else getattr(G, "projection_lr", 0.1))
    w = ws_start.detach().clone().to(device, torch.float32).requires_grad_(True)
    opt = torch.optim.Adam([w], lr=peak, betas=(0.9, 0.999))
    use_noise = {k: v.to(device) for k, v in (noise or {}).items() if k in G.noise_buffers()}
    best_loss, best_w = float("inf"), w.detach().clone()
    history: list[dict[str, float]] = []
    t0 = time.perf_counter()
    bar = tqdm(range(num_steps), desc="swap", unit="step", disable=not progress, leave=False)
    with override_noise(G, use_noise):
        for step in bar:
            for g in opt.param_groups:
                g["lr"] = learning_rate(step / num_steps, peak, 0.05, 0.25)
            x = _resize_to(G.synthesis(w, noise_mode="const"), res)
            terms = {}
            loss = x.new_zeros(())
            for name, (t, m, feats) in zip(("face", "background"), pairs):
                denom = (m.sum() * 3).clamp_min(1.0)
                mse = ((x - t).square() * m).sum() / denom
                lp = lpips_model.distance_from_features(x * m, feats).sum() if feats is not None else x.new_zeros(())
                loss = loss + rec_weight * mse + lpips_weight * lp
                terms[f"{name}_mse"], terms[f"{name}_lpips"] = float(mse.detach()), float(lp.detach())
            if float(loss.detach()) < best_loss:
                best_loss, best_w = float(loss.detach()), w.detach().clone()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            row = {"step": step, "loss": float(loss.detach()), **terms}
            history.append(row)
            bar.set_postfix(loss=f"{row['loss']:.4f}")
            if callback is not None:
                callback(step, row)
    return MaskedSwapResult(best_w.detach(), history, time.perf_counter() - t0, face_mask_np, background_mask_np)


__all__ = ["DEFAULT_IDENTITY_LAYERS", "MaskedSwapResult", "masked_swap", "mix_swap", "swap_masks"]
