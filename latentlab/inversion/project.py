"""GAN inversion by optimisation: find ws (W or W+) and noise maps that reproduce target photos.

The loop follows NVIDIA's StyleGAN2 projector (Karras et al. 2020): start at the mean latent,
Adam with a cosine learning-rate schedule, decaying Gaussian noise on the latent early on, and
(for generators with noise inputs) per-layer noise maps optimised with a multi-scale
autocorrelation penalty and renormalised after every step. The loss is a weighted sum of
LPIPS (VGG16 features, "encoder outputs"), pixel MSE and the noise penalty.

Several targets are optimised together in one batch: Adam is element-wise and every loss term is
a per-sample sum, so a batch of N gives the same per-photo results as N separate runs, faster.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F

from ..errors import LatentlabError
from ..models.base import Generator, override_noise
from ..ops.cpu import resolve_precision
from ..progress import CancelArg, Progress, ProgressArg, as_callback, cancelled
from .config import ProjectorConfig
from .schedules import latent_noise_scale, learning_rate


@dataclass
class ProjectionResult:
    """ws [N, num_ws, w_dim]; noise name -> [N, 1, H, W]; per-step history rows; best per sample."""

    ws: torch.Tensor
    noise: dict[str, torch.Tensor]
    lpips: list[float]  # best LPIPS per sample (at the loss resolution)
    mse: list[float]  # pixel MSE per sample at the best step
    best_step: list[int]
    steps_run: int
    seconds: float
    interrupted: bool
    config: ProjectorConfig
    history: list[dict[str, float]] = field(default_factory=list)


def latent_stats(G: Generator, num_samples: int = 10000, seed: int = 0, batch: int = 1000
                 ) -> tuple[torch.Tensor, float]:
    """G's average W [w_dim] (the projection start: :func:`latentlab.models.w_avg.w_avg_of`, the
    generator's own ``w_avg``) and the scalar spread ``sqrt(mean ||w - w_avg||^2)`` of
    ``num_samples`` mapping samples around it (the scale of the latent noise).

    The samples' z are drawn with ``np.random.RandomState(seed)`` (float32), as NVIDIA's projector
    draws them; labels are zero for conditional generators.
    """
    import numpy as np

    from ..models.w_avg import w_avg_of

    w_avg = w_avg_of(G, num_samples).to(G.device, torch.float32)
    rng = np.random.RandomState(seed)
    z_all = torch.from_numpy(rng.randn(num_samples, G.z_dim).astype(np.float32))
    sq = torch.zeros((), dtype=torch.float64)
    with torch.no_grad():
        for i in range(0, num_samples, batch):
            z = z_all[i:i + batch].to(G.device)
            c = torch.zeros(z.shape[0], G.c_dim, device=G.device) if G.c_dim else None
            w = G.mapping(z, c)[:, 0].float()
            sq += (w - w_avg).double().square().sum().cpu()
    w_std = float((sq / num_samples).sqrt())
    return w_avg, w_std


def resize_to(x: torch.Tensor, res: int) -> torch.Tensor:
    if x.shape[-1] > res:
        return F.interpolate(x, size=(res, res), mode="area")
    if x.shape[-1] < res:
        return F.interpolate(x, size=(res, res), mode="bilinear", align_corners=False, antialias=False)
    return x


def synthesize_for_loss(G: Generator, ws: torch.Tensor, loss_res: int, shortcut: str = "exact"
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """(image as synthesized, image at ``loss_res``), both [N, C, *, *], for the projection loss.

    ``shortcut`` as :attr:`ProjectorConfig.synthesis_shortcut`; the second image is returned in
    channels-last layout (oneDNN runs the VGG convolutions faster on it; values are unchanged).
    """
    small = None
    lowres = getattr(G, "synthesis_lowres", None)
    if shortcut != "none" and lowres is not None and loss_res < G.img_resolution:
        small = lowres(ws, loss_res, noise_mode="const", approximate=(shortcut == "approximate"))
    if small is None:
        synth = G.synthesis(ws, noise_mode="const")
        small = resize_to(synth, loss_res)
    else:
        synth = small
    return synth, small.contiguous(memory_format=torch.channels_last)


def renormalize_noise_(noise: dict[str, torch.Tensor]) -> None:
    """In place, per sample and map: zero mean and unit variance of each [N, 1, H, W] noise map."""
    with torch.no_grad():
        for v in noise.values():
            v -= v.mean(dim=(2, 3), keepdim=True)
            v /= v.square().mean(dim=(2, 3), keepdim=True).sqrt()


def noise_penalty(maps: list[torch.Tensor]) -> torch.Tensor:
    """Per-sample multi-scale autocorrelation penalty; maps are [N, 1, H, W] -> [N]."""
    from ..losses.noise_reg import noise_regularization

    return noise_regularization(maps, per_sample=True)


def project(
    G: Generator,
    targets: torch.Tensor,
    config: ProjectorConfig = ProjectorConfig(),
    *,
    lpips_model: torch.nn.Module | None = None,
    identity_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    progress: ProgressArg = None,
    cancel: CancelArg = None,
    start: torch.Tensor | None = None,
    start_noise: dict[str, torch.Tensor] | None = None,
    rows: "Sequence[int] | None" = None,
) -> ProjectionResult:
    """Project targets [N, 3, H, W] in [-1, 1] (any H = W; resized to the loss resolution).

    ``progress`` (:mod:`latentlab.progress`) gets a ``"project"`` event after every step with the
    step's ``loss`` and mean ``lpips``, ``image`` (the synthesized image: full resolution, or the
    loss resolution when a synthesis shortcut is in use), ``state["ws"]`` (detached,
    [N, num_ws, w_dim]) and ``state["lpips"]`` (per target). ``cancel`` (or Ctrl-C) stops the loop;
    the result then holds the best latents so far with ``interrupted`` set.
    ``identity_loss(render, target) -> [N]`` is used when ``config.id_weight > 0`` (default: the
    FaceRes identity loss, :class:`latentlab.faces.identity_loss.IdentityLoss`).
    ``start`` ([N, num_ws, w_dim]; all rows equal for ``space="w"``): begin there instead of at the
    mean latent. ``start_noise`` (name -> [N or 1, 1, H, W]): the noise maps to begin from when
    ``optimize_noise`` is on, and to hold fixed when it is off. ``rows`` (W+ only, with ``start``):
    the W+ rows that may move; the others stay at the start's.
    """
    if targets.ndim != 4 or targets.shape[1] != 3 or targets.shape[2] != targets.shape[3]:
        raise LatentlabError(f"targets must be [N, 3, H, H] images, got {list(targets.shape)}")
    device = G.device
    N = targets.shape[0]
    cfg = config
    if cfg.initial_learning_rate is None:
        cfg = cfg.replace(initial_learning_rate=float(getattr(G, "projection_lr", 0.1)))
    if cfg.precision == "auto":  # the result's config records what ran
        cfg = cfg.replace(precision=resolve_precision(cfg.precision, device))
    gen = torch.Generator().manual_seed(cfg.seed)
    t_start = time.perf_counter()

    if cfg.lpips_weight > 0 and lpips_model is None:
        from ..losses.lpips import LPIPS

        lpips_model = LPIPS().to(device)
    if lpips_model is not None:
        lpips_model.eval().requires_grad_(False)

    loss_res = min(cfg.loss_resolution, G.img_resolution)
    target_small = resize_to(targets.to(device, torch.float32), loss_res)
    if cfg.id_weight > 0 and identity_loss is None:
        from ..faces.identity_loss import make_identity_loss

        identity_loss = make_identity_loss(device)
    target_feats = lpips_model.features(target_small) if lpips_model is not None else None

    w_avg, w_std = latent_stats(G, cfg.w_avg_samples, seed=cfg.seed)
    n_rows = 1 if cfg.space == "w" else G.num_ws
    if start is None:
        w_opt = w_avg.detach().view(1, 1, -1).repeat(N, n_rows, 1).to(device).requires_grad_(True)
    else:
        start = _check_start(G, start, N, cfg.space)
        w_opt = start[:, :n_rows].detach().clone().to(device, torch.float32).requires_grad_(True)
    frozen = None
    if rows is not None:
        if start is None or cfg.space != "w+":
            raise LatentlabError("rows= needs a W+ projection from a start latent")
        picked = sorted({int(r) for r in rows})
        if not picked or picked[0] < 0 or picked[-1] >= G.num_ws:
            raise LatentlabError(f"rows must be W+ row indices in 0..{G.num_ws - 1}, got {list(rows)}")
        frozen = torch.ones(G.num_ws, dtype=torch.bool, device=device)
        frozen[picked] = False

    noise_bufs = G.noise_buffers()
    fixed_noise: dict[str, torch.Tensor] = {}
    if start_noise:
        unknown = sorted(set(start_noise) - set(noise_bufs))
        if unknown:
            raise LatentlabError(f"start_noise has maps the generator lacks: {', '.join(unknown[:3])}")
        fixed_noise = {k: v.detach().to(device, torch.float32).expand(N, 1, *noise_bufs[k].shape[-2:]).clone()
                       for k, v in start_noise.items()}
    if cfg.optimize_noise:
        noise = {name: (fixed_noise[name] if name in fixed_noise else
                        torch.randn((N, 1, *buf.shape[-2:]), generator=gen).to(device)).requires_grad_(True)
                 for name, buf in noise_bufs.items()}
        fixed_noise = {}
    else:
        noise = {}
    params = [w_opt] + list(noise.values())
    opt = torch.optim.Adam(params, betas=(0.9, 0.999), lr=cfg.initial_learning_rate)

    best_score = torch.full((N,), math.inf)
    best_lpips = torch.full((N,), math.nan)
    best_mse = torch.full((N,), math.nan)
    best_step = torch.zeros(N, dtype=torch.long)
    best_w = w_opt.detach().clone()
    best_noise = {k: v.detach().clone() for k, v in noise.items()}
    history: list[dict[str, float]] = []
    since_improved = 0
    best_mean_lpips = math.inf
    interrupted = False
    step = 0

    report = as_callback(progress)
    try:
        with override_noise(G, noise or fixed_noise):
            for step in range(cfg.num_steps):
                if cancelled(cancel):
                    interrupted = True
                    break
                t = step / cfg.num_steps
                if cfg.time_budget > 0:
                    # The budget counts from the start of the call (setup included).
                    t = max(t, (time.perf_counter() - t_start) / cfg.time_budget)
                    if t >= 1.0 and step > 0:
                        break
                lr = learning_rate(t, cfg.initial_learning_rate, cfg.lr_rampup_length, cfg.lr_rampdown_length)
                for group in opt.param_groups:
                    group["lr"] = lr
                sigma = latent_noise_scale(t, w_std, cfg.initial_noise_factor, cfg.noise_ramp_length)
                w_in = w_opt
                if sigma > 0:
                    jitter = torch.randn(w_opt.shape, generator=gen).to(device) * sigma
                    w_in = w_opt + (jitter if frozen is None else jitter * (~frozen).view(1, -1, 1))
                ws = w_in.expand(N, G.num_ws, -1) if n_rows == 1 else w_in
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16"):
                    synth, synth_small = synthesize_for_loss(G, ws, loss_res, cfg.synthesis_shortcut)
                    lp = (lpips_model.distance_from_features(synth_small, target_feats).float()  # any lpips_model
                          if lpips_model is not None else None)
                synth, synth_small = synth.float(), synth_small.float()
                mse = (synth_small - target_small).square().mean(dim=(1, 2, 3))  # [N]
                if lp is None:
                    lp = torch.zeros_like(mse)
                score = cfg.lpips_weight * lp + cfg.rec_weight * mse  # [N]
                loss = score.sum()
                if cfg.id_weight > 0:
                    loss = loss + cfg.id_weight * identity_loss(synth_small.float(), target_small).sum()
                if noise and cfg.regularize_noise_weight > 0:
                    loss = loss + cfg.regularize_noise_weight * noise_penalty(list(noise.values())).sum()

                # Track the best latent per sample (the one that produced this step's image).
                s_cpu, lp_cpu, mse_cpu = score.detach().cpu(), lp.detach().cpu(), mse.detach().cpu()
                better = s_cpu < best_score
                if bool(better.any()):
                    idx = better.nonzero().flatten()
                    best_score[idx] = s_cpu[idx]
                    best_lpips[idx] = lp_cpu[idx]
                    best_mse[idx] = mse_cpu[idx]
                    best_step[idx] = step
                    best_w[idx.to(device)] = w_in.detach()[idx.to(device)]
                    for k, v in noise.items():
                        best_noise[k][idx.to(device)] = v.detach()[idx.to(device)]

                opt.zero_grad(set_to_none=True)
                loss.backward()
                if frozen is not None and w_opt.grad is not None:
                    w_opt.grad[:, frozen] = 0  # Adam moves a parameter whose gradients were all zero by 0
                opt.step()
                renormalize_noise_(noise)

                row = {"step": step, "loss": float(loss.detach()), "lpips": float(lp_cpu.mean()),
                       "mse": float(mse_cpu.mean()), "lr": lr, "seconds": time.perf_counter() - t_start}
                history.append(row)
                if report is not None:
                    report(Progress("project", step + 1, cfg.num_steps,
                                    values={"loss": row["loss"], "lpips": row["lpips"]}, image=synth.detach(),
                                    state={"ws": ws.detach(), "lpips": lp_cpu.tolist(), "mse": mse_cpu.tolist()}))
                if cfg.early_stop_patience > 0:
                    m = float(best_lpips.nanmean()) if lpips_model is not None else float(best_score.mean())
                    if m < best_mean_lpips - cfg.early_stop_min_delta:
                        best_mean_lpips, since_improved = m, 0
                    else:
                        since_improved += 1
                        if since_improved >= cfg.early_stop_patience and t > cfg.noise_ramp_length:
                            break
    except KeyboardInterrupt:
        interrupted = True

    ws_best = best_w.expand(N, G.num_ws, -1).contiguous() if n_rows == 1 else best_w
    return ProjectionResult(
        ws=ws_best.detach(),
        noise={k: v.detach() for k, v in (best_noise or fixed_noise).items()},
        lpips=best_lpips.tolist(),
        mse=best_mse.tolist(),
        best_step=best_step.tolist(),
        steps_run=len(history),
        seconds=time.perf_counter() - t_start,
        interrupted=interrupted,
        config=cfg,
        history=history,
    )


def _check_start(G: Generator, start: Any, N: int, space: str) -> torch.Tensor:
    """The starting latent as a float tensor [N, num_ws, w_dim], or a one-line error."""
    shape = (N, G.num_ws, G.w_dim)
    if not isinstance(start, torch.Tensor) or tuple(start.shape) != shape:
        got = list(start.shape) if isinstance(start, torch.Tensor) else type(start).__name__
        raise LatentlabError(f"start must be a latent {list(shape)}, got {got}")
    start = start.detach().float()
    if not bool(torch.isfinite(start).all()):
        raise LatentlabError("start holds NaN or infinite values")
    if space == "w" and bool((start - start[:, :1]).abs().max() > 1e-5):
        raise LatentlabError("a W projection needs a start whose rows are all equal (a W latent); use space w+")
    return start


def synthesize_projection(G: Generator, result: ProjectionResult) -> torch.Tensor:
    """Render a projection result at full resolution with its own noise maps: [N, 3, H, W]."""
    with torch.no_grad(), override_noise(G, {k: v.to(G.device) for k, v in result.noise.items()}):
        return G.synthesis(result.ws.to(G.device), noise_mode="const")


__all__ = ["ProjectionResult", "latent_stats", "noise_penalty", "project", "renormalize_noise_", "resize_to",
           "synthesize_for_loss", "synthesize_projection"]
