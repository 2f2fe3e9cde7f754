"""Face swap in latent space: put A's face on B.

* ``mix``: row mixing. A's rows that carry identity and face shape (default reference rows 0-7, i.e.
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
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import LatentlabError
from ..latent import Latent, Tuning, blend, render, tuned_generator
from ..models.base import Generator, override_noise
from ..progress import CancelArg, Progress, ProgressArg, as_callback, cancelled
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
                lpips_model: torch.nn.Module | None = None, progress: ProgressArg = None,
                cancel: CancelArg = None) -> MaskedSwapResult:
    """Optimise ws (W+, from ``ws_start`` [1, num_ws, w_dim]) so the masked regions match.

    face_target / background_target: [1, 3, R, R] in [-1, 1] (A's and B's aligned images);
    masks: float [R, R] in [0, 1]. Loss per step: for each (target, mask) pair,
    ``rec_weight * sum(m (x - t)^2) / (3 sum m) + lpips_weight * LPIPS(m x, m t)`` at
    ``loss_resolution``. Adam with the projector's cosine learning-rate ramp-down. ``progress``
    gets a ``"swap"`` event per step; ``cancel`` stops early (the best latent so far is kept).
    """
    from ..inversion.project import resize_to
    from ..inversion.schedules import learning_rate

    G.check_ws(ws_start)
    if num_steps < 1:
        raise LatentlabError("--steps must be >= 1")
    device = G.device
    res = min(int(loss_resolution), G.img_resolution)
    if lpips_weight > 0 and lpips_model is None:
        from ..metrics import loss_network

        lpips_model = loss_network(device)
    if lpips_model is not None:
        lpips_model.eval().requires_grad_(False)

    def small_mask(m: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.asarray(m, np.float32))[None, None].to(device)
        return F.interpolate(t, size=(res, res), mode="area")

    pairs = []
    for target, mask in ((face_target, face_mask_np), (background_target, background_mask_np)):
        t = resize_to(target.to(device, torch.float32), res)
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
    report = as_callback(progress)
    with override_noise(G, use_noise):
        for step in range(num_steps):
            if cancelled(cancel):
                break
            for g in opt.param_groups:
                g["lr"] = learning_rate(step / num_steps, peak, 0.05, 0.25)
            x = resize_to(G.synthesis(w, noise_mode="const"), res)
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
            if report is not None:
                report(Progress("swap", step + 1, num_steps, values={"loss": row["loss"]}))
    return MaskedSwapResult(best_w.detach(), history, time.perf_counter() - t0, face_mask_np, background_mask_np)


#: Which generator draws a swap when the inputs carry pivotal tunings (:func:`swap_tuning`); a
#: number in [0, 1] is also accepted: A's share of a weighted blend.
SWAP_TUNINGS = ("blend", "b", "a", "none")
_TUNING_SHARE = {"blend": 0.5, "b": 0.0, "a": 1.0}


def check_swap_tuning(tuning: "str | float") -> "str | float":
    """``tuning`` as :func:`swap_tuning` takes it: one of :data:`SWAP_TUNINGS`, or A's share of the
    blend as a number in [0, 1] (also as text, ``"0.7"``). One-line error otherwise."""
    if isinstance(tuning, str) and tuning.strip().lower() in SWAP_TUNINGS:
        return tuning.strip().lower()
    try:
        share = float(tuning)
    except (TypeError, ValueError):
        share = float("nan")
    if isinstance(tuning, bool) or not 0.0 <= share <= 1.0:
        raise LatentlabError(f"unknown swap tuning {tuning!r}: {', '.join(SWAP_TUNINGS)} or A's share of the blend, "
                             f"a number in [0, 1]")
    return share


def swap_tuning(a: Tuning | None, b: Tuning | None, tuning: "str | float" = "blend") -> Tuning | None:
    """The tuning a swap of A's face onto B is drawn with, from A's and B's (None: not tuned);
    None means the base generator.

    ``blend`` (default): ``0.5 A + 0.5 B`` (an input without a tuning counts as the base
    generator, delta 0); a number t in [0, 1]: ``t A + (1 - t) B``; ``b`` (= 0): B's tuning (B's
    surroundings exactly, but it pulls the face back towards B); ``a`` (= 1): A's (A's identity
    most, but A's hair, background and clothes leak into B's photo); ``none``: the base generator.
    On 12 pairs of tuned photos (benchmarks/README.md) the even blend kept B's surroundings clean
    and made the result A by dlib in 9 of 12; t = 0.7 in 12 of 12, with faint leaks of A's
    background.
    """
    tuning = check_swap_tuning(tuning)
    if tuning == "none":
        return None
    share = _TUNING_SHARE[tuning] if isinstance(tuning, str) else tuning
    if share == 1.0 or share == 0.0:
        return a if share == 1.0 else b
    return blend([a, b], [share, 1.0 - share])


def swap_is_tuned(a_tuned: bool, b_tuned: bool, tuning: "str | float" = "blend") -> bool:
    """Whether a swap drawn with ``tuning`` (:func:`swap_tuning`) carries a tuning."""
    tuning = check_swap_tuning(tuning)
    if tuning == "none":
        return False
    share = _TUNING_SHARE[tuning] if isinstance(tuning, str) else tuning
    return a_tuned if share == 1.0 else b_tuned if share == 0.0 else (a_tuned or b_tuned)


def aligned_landmarks(latent: Latent, resolution: int, image: np.ndarray) -> np.ndarray | None:
    """Aligned-frame landmarks [68, 2] at ``resolution``: from the latent's alignment transform,
    else detected on ``image`` (uint8 [R, R, 3]); None when no face is found."""
    from ..faces import detect_landmarks

    if latent.transform is not None and getattr(latent.transform, "landmarks", None) is not None:
        return latent.transform.at_resolution(resolution).aligned_landmarks
    try:
        return detect_landmarks(image).landmarks
    except LatentlabError:
        return None


def swap(G: Generator, a: Latent, b: Latent, *, method: str = "mix", identity_rows: Sequence[int],
         keep_rows: Sequence[int] = (), steps: int = 100, lr: float | None = None, init: str = "b",
         tuning: "str | float" = "blend", lpips_model: torch.nn.Module | None = None,
         layers: dict[str, Any] | None = None, progress: ProgressArg = None, cancel: CancelArg = None) -> Latent:
    """A's face on B: a new latent in B's photo, drawn with the tuning ``tuning`` picks
    (:func:`swap_tuning`; by default the average of A's and B's). G: the base generator.

    ``mix``: B's ws with ``identity_rows`` (minus ``keep_rows``) from A. ``masked``: optimise W+
    from B's ws (``init="b"``) or from the mix (``init="mix"``) for ``steps`` steps, in the generator
    that will draw the result, so that A's face region matches A's aligned photo (or its drawing)
    and the rest matches B's drawing. ``layers``: the specs the rows came from, for the record.
    """
    from ..imageio import image_to_tensor

    if method not in ("mix", "masked"):
        raise LatentlabError(f"unknown swap method {method!r} (mix or masked)")
    if init not in ("b", "mix"):
        raise LatentlabError(f"unknown swap init {init!r} (b or mix)")
    identity_rows, keep_rows = [int(r) for r in identity_rows], [int(r) for r in keep_rows]
    mixed = mix_swap(a.ws, b.ws, identity_rows, keep_rows)
    choice = check_swap_tuning(tuning)
    drawn_with = swap_tuning(a.tuning, b.tuning, choice)
    op: dict[str, Any] = {"op": "swap", "face": a.name, "onto": b.name, "method": method, "tuning": choice,
                          "tuned": drawn_with is not None, **(layers or {})}
    if method == "mix":
        op.update(identity_rows=identity_rows, keep_rows=keep_rows)
        return b.with_op(mixed, op, name=f"{a.name}_on_{b.name}", tuning=drawn_with)
    if int(steps) < 1:
        raise LatentlabError("swap steps must be >= 1")
    rec_b = render(G, b)
    face_img = a.aligned if a.aligned is not None else render(G, a)
    fm, bm = swap_masks(aligned_landmarks(a, G.img_resolution, face_img),
                        aligned_landmarks(b, G.img_resolution, rec_b), G.img_resolution)
    start = mixed if init == "mix" else b.ws
    res = masked_swap(tuned_generator(G, drawn_with), start, image_to_tensor(face_img), image_to_tensor(rec_b), fm,
                      bm, num_steps=int(steps), lr=lr, noise=dict(b.noise), lpips_model=lpips_model,
                      progress=progress, cancel=cancel)
    op.update(steps=int(steps), init=init, seconds=res.seconds, final_loss=res.history[-1]["loss"] if res.history
              else None, best_loss=min((h["loss"] for h in res.history), default=None))
    return b.with_op(res.ws.cpu(), op, name=f"{a.name}_on_{b.name}", tuning=drawn_with)


__all__ = ["DEFAULT_IDENTITY_LAYERS", "MaskedSwapResult", "SWAP_TUNINGS", "aligned_landmarks", "check_swap_tuning",
           "masked_swap", "mix_swap", "swap", "swap_is_tuned", "swap_masks", "swap_tuning"]
