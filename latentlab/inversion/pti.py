"""Pivotal tuning (PTI, Roich et al. 2021): after a latent "pivot" is found, fine-tune the generator.

Optimising a latent alone finds a lookalike: the generator cannot draw this person exactly. Pivotal
tuning keeps the pivot ``ws`` fixed and fine-tunes the synthesis network's weights so that
``G_tuned.synthesis(pivot)`` reproduces the photo, with PTI's losses:

* LPIPS (the projector's VGG16 network) at the loss resolution plus pixel MSE at full resolution;
* optionally an identity loss, ``1 - cos`` of face-identity embeddings of photo and render
  (``id_weight``; needs an identity network, see :func:`identity_loss_fn`);
* PTI's **locality regulariser**: for a random latent ``w_z`` from the mapping network, the point
  ``w_r = w_p + alpha * (w_z - w_p) / |w_z - w_p|`` at distance ``alpha`` from the pivot must render
  the same with the tuned and the original generator (MSE + LPIPS, weight ``locality_weight``),
  so the change stays near the pivot and edits around it keep working;
* optionally LPIPS on a random full-resolution crop of the face (``texture_weight``), for the
  skin's detail that LPIPS at the loss resolution cannot see;
* early stop when the loss network's LPIPS falls under ``early_stop_lpips``.

The result is a :class:`~latentlab.latent.Tuning`: for each synthesis parameter that changed,
``tuned - base``, rounded to the precision its file stores (float16 by default), so the tuned
generator used for the metrics is the one every later command draws with. A latent carries it and
its file is written beside the latent (:mod:`latentlab.latent`).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F

from ..errors import LatentlabError
from ..latent.tuning import Tuning, tuning_config_dict
from ..models.base import Generator, override_noise
from ..ops.cpu import resolve_precision
from ..progress import CancelArg, Progress, ProgressArg, as_callback, cancelled
from .config import TuningConfig


@dataclass
class TuningResult:
    """A tuned generator (a copy; the base is untouched), its tuning and the loss history."""

    G: Generator  # base + tuning (the rounded delta), eval mode, no gradients
    tuning: Tuning  # synthesis parameter name -> tuned - base, as its file stores it
    lpips: list[float]  # final LPIPS per photo (the loss network, loss resolution)
    mse: list[float]  # final full-resolution MSE per photo
    steps_run: int
    seconds: float
    interrupted: bool
    config: TuningConfig
    history: list[dict[str, float]] = field(default_factory=list)


def tunable_parameters(G: Generator, tune: str = "all") -> dict[str, torch.nn.Parameter]:
    """The synthesis parameters pivotal tuning changes, by their names in ``G.synthesis_network``."""
    out = {}
    for name, p in G.synthesis_network.named_parameters():
        if tune == "convs" and (".affine." in f".{name}" or name.endswith("noise_strength")):
            continue
        out[name] = p
    return out


def _area(x: torch.Tensor, res: int) -> torch.Tensor:
    return F.interpolate(x, size=(res, res), mode="area") if x.shape[-1] > res else x


def texture_crop_origin(resolution: int, crop: int, gen: torch.Generator) -> tuple[int, int]:
    """(y0, x0) of a ``crop``-px square drawn uniformly inside the central half of a
    ``resolution``-px image, [R/4, 3R/4) on both axes (the face of an FFHQ-aligned crop)."""
    lo = resolution // 4
    hi = max(lo, 3 * resolution // 4 - crop)
    y0, x0 = torch.randint(lo, hi + 1, (2,), generator=gen).tolist()
    return int(y0), int(x0)


def locality_latents(G: Generator, pivot: torch.Tensor, alpha: float, gen: torch.Generator) -> torch.Tensor:
    """PTI's regulariser latents: ``w_p + alpha * (w_z - w_p) / |w_z - w_p|`` per row, [N, num_ws, w_dim].

    ``w_z`` is one mapping-network sample per photo (no truncation), broadcast to every row.
    """
    N = pivot.shape[0]
    z = torch.randn((N, G.z_dim), generator=gen).to(G.device)
    c = torch.zeros(N, G.c_dim, device=G.device) if G.c_dim else None
    with torch.no_grad():
        w_z = G.mapping(z, c)[:, :1].float()  # [N, 1, w_dim]
    d = w_z - pivot
    return pivot + alpha * d / d.norm(dim=-1, keepdim=True).clamp_min(1e-8)


def pivotal_tuning(
    G: Generator,
    targets: torch.Tensor,
    pivot: torch.Tensor,
    noise: dict[str, torch.Tensor] | None = None,
    config: TuningConfig = TuningConfig(),
    *,
    lpips_model: torch.nn.Module | None = None,
    identity_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    progress: ProgressArg = None,
    cancel: CancelArg = None,
) -> TuningResult:
    """Fine-tune a copy of G's synthesis network so that it renders ``pivot`` as ``targets``.

    targets: [N, 3, R, R] in [-1, 1] at G's resolution (the aligned photos); pivot: [N, num_ws, w_dim]
    (the projection's ws); noise: the projection's noise maps (name -> [N, 1, H, W]), kept fixed.
    With N > 1 photos, one generator is tuned for all of them (PTI's multi-image mode): tune
    photos separately to get one generator each. ``identity_loss(render, target) -> [N]`` is
    required when ``config.id_weight > 0``. ``cancel`` (or Ctrl-C) stops early and keeps the
    tuning so far. ``progress`` gets a ``"tune"`` event after each update with ``lpips``, ``mse``
    and ``loss``, ``image`` (the render the step's loss saw) and ``state["G"]`` (the generator being
    tuned, after the update; render it under ``torch.no_grad()``).
    """
    from .schedules import learning_rate

    cfg = config
    if targets.ndim != 4 or targets.shape[-1] != G.img_resolution or targets.shape[-2] != G.img_resolution:
        raise LatentlabError(f"targets must be [N, 3, {G.img_resolution}, {G.img_resolution}], "
                             f"got {list(targets.shape)}")
    if pivot.ndim != 3 or pivot.shape[0] != targets.shape[0] or pivot.shape[1:] != (G.num_ws, G.w_dim):
        raise LatentlabError(f"pivot must be [{targets.shape[0]}, {G.num_ws}, {G.w_dim}], got {list(pivot.shape)}")
    if cfg.id_weight > 0 and identity_loss is None:
        raise LatentlabError("id_weight > 0 needs an identity network (identity_loss)")
    device = G.device
    if cfg.precision == "auto":
        cfg = cfg.replace(precision=resolve_precision(cfg.precision, device))
    t_start = time.perf_counter()
    gen = torch.Generator().manual_seed(cfg.seed)
    if lpips_model is None and (cfg.lpips_weight > 0 or cfg.locality_weight > 0 or cfg.texture_weight > 0):
        from ..losses.lpips import LPIPS

        lpips_model = LPIPS().to(device)
    if lpips_model is not None:
        lpips_model.eval().requires_grad_(False)

    G.eval()
    Gt = copy.deepcopy(G).eval().requires_grad_(False)
    params = tunable_parameters(Gt, cfg.tune)
    for p in params.values():
        p.requires_grad_(True)
    opt = torch.optim.Adam(list(params.values()), lr=cfg.learning_rate, betas=(0.9, 0.999))

    N = targets.shape[0]
    loss_res = min(cfg.loss_resolution, G.img_resolution)
    locality_res = min(cfg.locality_resolution or cfg.loss_resolution, G.img_resolution)
    targets = targets.to(device, torch.float32)
    coarse_res = min(cfg.coarse_resolution, loss_res)
    coarse_steps = round(cfg.coarse_fraction * cfg.num_steps)
    target_feats = {}  # loss resolution -> the photo's LPIPS features
    if lpips_model is not None:
        for res in {loss_res, coarse_res if coarse_steps else loss_res}:
            target_feats[res] = lpips_model.features(_area(targets, res))
    pivot = pivot.to(device, torch.float32).detach()
    noise = {k: v.to(device, torch.float32).detach() for k, v in (noise or {}).items()}
    autocast = dict(device_type=device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16")
    crop = min(cfg.texture_crop, G.img_resolution // 4)
    crop_gen = torch.Generator().manual_seed(cfg.seed + 1)  # its own stream: the locality draws stay as without it

    history: list[dict[str, float]] = []
    last_lp = [math.nan] * N
    last_mse = [math.nan] * N
    interrupted = False
    report = as_callback(progress)
    try:
        for step in range(cfg.num_steps):
            if cancelled(cancel):
                interrupted = True
                break
            lr = learning_rate(step / max(cfg.num_steps, 1), cfg.learning_rate, 0.0, cfg.lr_rampdown_length)
            for group in opt.param_groups:
                group["lr"] = lr
            with override_noise(Gt, noise), torch.autocast(**autocast):
                img = Gt.synthesis(pivot, noise_mode="const")
            img = img.float()
            res = coarse_res if step < coarse_steps else loss_res
            small = _area(img, res).contiguous(memory_format=torch.channels_last)
            mse = (img - targets).square().mean(dim=(1, 2, 3))  # [N]
            with torch.autocast(**autocast):
                lp = (lpips_model.distance_from_features(small, target_feats[res]).float() if lpips_model is not None
                      and cfg.lpips_weight > 0 else torch.zeros_like(mse))
            loss = (cfg.lpips_weight * lp + cfg.l2_weight * mse).sum()
            tex = None
            if cfg.texture_weight > 0:
                y0, x0 = texture_crop_origin(G.img_resolution, crop, crop_gen)
                box = (..., slice(y0, y0 + crop), slice(x0, x0 + crop))
                with torch.no_grad(), torch.autocast(**autocast):
                    crop_feats = lpips_model.features(targets[box].contiguous(memory_format=torch.channels_last))
                with torch.autocast(**autocast):
                    tex = lpips_model.distance_from_features(img[box].contiguous(memory_format=torch.channels_last),
                                                             crop_feats).float()
                loss = loss + cfg.texture_weight * tex.sum()
            id_term = None
            if cfg.id_weight > 0:
                id_term = identity_loss(img, targets)
                loss = loss + cfg.id_weight * id_term.sum()
            last_lp, last_mse = lp.detach().cpu().tolist(), mse.detach().cpu().tolist()
            if cfg.early_stop_lpips > 0 and step >= coarse_steps and max(last_lp) < cfg.early_stop_lpips:
                break
            reg = None
            if cfg.locality_weight > 0 and step % cfg.locality_every == 0:
                w_r = locality_latents(G, pivot, cfg.locality_alpha, gen)
                with torch.no_grad(), torch.autocast(**autocast):
                    ref = _area(G.synthesis(w_r, noise_mode="const").float(), locality_res)
                with torch.autocast(**autocast):
                    out = _area(Gt.synthesis(w_r, noise_mode="const").float(), locality_res)
                    reg_lp = lpips_model(out.contiguous(memory_format=torch.channels_last), ref).float()
                reg = (out.float() - ref).square().mean(dim=(1, 2, 3)) + reg_lp
                loss = loss + cfg.locality_weight * reg.sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            row = {"step": step, "lr": lr, "loss": float(loss.detach()), "lpips": sum(last_lp) / N, "mse": sum(last_mse) / N,
                   "seconds": time.perf_counter() - t_start}
            if reg is not None:
                row["locality"] = float(reg.detach().mean())
            if tex is not None:
                row["texture"] = float(tex.detach().mean())
            if id_term is not None:
                row["id_loss"] = float(id_term.detach().mean())
            history.append(row)
            if report is not None:
                report(Progress("tune", step + 1, cfg.num_steps,
                                values={k: row[k] for k in ("loss", "lpips", "mse")}, image=img.detach(),
                                state={"G": Gt}))
    except KeyboardInterrupt:
        interrupted = True

    Gt.requires_grad_(False)
    base = dict(G.synthesis_network.named_parameters())
    delta = {name: (p.detach() - base[name].detach()).float().cpu() for name, p in params.items()}
    delta = {k: v for k, v in delta.items() if bool(v.abs().max() > 0)}
    tuning = Tuning.from_delta(delta, dtype=cfg.delta_dtype, config=tuning_config_dict(cfg))
    # The tuned copy draws with the delta as its file stores it, so what is measured is what is saved.
    with torch.no_grad():
        for name, p in params.items():
            p.copy_(base[name].detach() + tuning.delta[name].to(p.device, p.dtype) if name in tuning.delta
                    else base[name].detach())
    return TuningResult(Gt, tuning, last_lp, last_mse, len(history), time.perf_counter() - t_start, interrupted,
                        cfg, history)


def tuning_identity_loss(config: TuningConfig, device: torch.device
                         ) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None:
    """The identity loss ``config`` asks for (``id_weight > 0``), else None."""
    return identity_loss_fn(device) if config.id_weight > 0 else None


def identity_loss_fn(device: torch.device) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``loss(render, target) -> [N]``: ``1 - cos`` of identity embeddings of the two aligned faces,
    differentiable in ``render`` ([N, 3, R, R] in [-1, 1], FFHQ-aligned)."""
    from ..faces.identity_loss import make_identity_loss

    return make_identity_loss(device)


__all__ = ["TuningResult", "identity_loss_fn", "locality_latents", "pivotal_tuning", "texture_crop_origin",
           "tunable_parameters", "tuning_identity_loss"]
