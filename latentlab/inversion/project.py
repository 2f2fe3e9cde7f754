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

import contextlib
import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import torch
import torch.nn.functional as F

from ..errors import LatentlabError
from ..models.base import Generator
from ..ops.cpu import PRECISIONS, resolve_precision
from .pti import TuningConfig
from .schedules import latent_noise_scale, learning_rate


SHORTCUTS = ("none", "exact", "approximate")


@dataclass(frozen=True)
class ProjectorConfig:
    """Every weight and schedule value of the projector (all exposed as CLI flags)."""

    space: str = "w+"  # "w": one w tiled to all rows; "w+": one w per row
    num_steps: int = 1000
    w_avg_samples: int = 10000
    initial_learning_rate: float | None = None  # None: the generator family's default (G.projection_lr)
    lr_rampup_length: float = 0.05
    lr_rampdown_length: float = 0.25
    initial_noise_factor: float = 0.05
    noise_ramp_length: float = 0.75
    regularize_noise_weight: float = 5e5
    rec_weight: float = 0.5  # pixel MSE on [-1, 1] images at the loss resolution
    lpips_weight: float = 1.0  # LPIPS (VGG16 features) distance
    #: identity loss, 1 - cosine of face-identity embeddings (FaceRes, :mod:`latentlab.faces.identity_loss`)
    #: of render and photo at the loss resolution; 0 = off
    id_weight: float = 0.0
    loss_resolution: int = 256
    optimize_noise: bool = True
    early_stop_patience: int = 0  # steps without LPIPS improvement before stopping; 0 = never
    early_stop_min_delta: float = 1e-4
    seed: int = 0
    #: How the image at the loss resolution is made. "none": full-resolution synthesis, then
    #: area downsampling (the reference). "exact": a family's exact shortcut when it has one
    #: (MobileStyleGAN: only the low-pass wavelet band, same loss to ~1e-6), else as "none".
    #: "approximate": also StyleGAN2's early exit, which stops at the loss-resolution block and
    #: uses its RGB skip image (a different loss; rows of higher layers stay at their start).
    synthesis_shortcut: str = "exact"
    #: Wall-time budget in seconds (0 = none). The schedules then run on the fraction of the
    #: budget used, ``t = max(step / num_steps, elapsed / time_budget)``, and the loop stops when
    #: either runs out, so a short budget still gets the full learning-rate ramp-down. Timing
    #: dependent: results are reproducible only without a budget.
    time_budget: float = 0.0
    #: "fp32" (default, the reference numerics) or "bf16": synthesis and LPIPS under
    #: ``torch.autocast`` with bfloat16 (optimiser state, noise penalty and the latents stay fp32).
    #: Faster on CPUs with AVX512-BF16 / AMX; the loss differs by ~4e-5 relative on
    #: ffhq-mobile and ~1.6e-2 on a StyleGAN2 config-f with random weights (benchmarks/README.md).
    #: "auto": bf16 where :func:`latentlab.ops.fast_bfloat16` says it is faster, else fp32 (the
    #: result's config records which ran).
    precision: str = "fp32"
    #: Pivotal tuning after the projection (:mod:`latentlab.inversion.pti`): the projected ws become
    #: the pivot and a copy of the synthesis network is fine-tuned to reproduce the photo. None: off.
    tuning: TuningConfig | None = None

    def __post_init__(self) -> None:
        if self.tuning is not None and not isinstance(self.tuning, TuningConfig):
            raise LatentlabError("tuning must be a TuningConfig or None")
        if self.space not in ("w", "w+"):
            raise LatentlabError(f"space must be 'w' or 'w+', got {self.space!r}")
        if self.num_steps < 1:
            raise LatentlabError("num_steps must be >= 1")
        if self.w_avg_samples < 1:
            raise LatentlabError("w_avg_samples must be >= 1")
        if min(self.rec_weight, self.lpips_weight, self.regularize_noise_weight, self.id_weight) < 0:
            raise LatentlabError("loss weights must be >= 0")
        if self.rec_weight == 0 and self.lpips_weight == 0:
            raise LatentlabError("at least one of rec_weight and lpips_weight must be > 0")
        if self.time_budget < 0:
            raise LatentlabError("time_budget must be >= 0 seconds")
        if self.precision not in PRECISIONS:
            raise LatentlabError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.synthesis_shortcut not in SHORTCUTS:
            raise LatentlabError(f"synthesis_shortcut must be one of {', '.join(SHORTCUTS)}, "
                                 f"got {self.synthesis_shortcut!r}")

    def replace(self, **kwargs: Any) -> "ProjectorConfig":
        """A copy with fields changed; ``tuning_<field>`` keywords change fields of ``tuning``
        (creating a default TuningConfig when it is None)."""
        tuning_changes = {k[len("tuning_"):]: kwargs.pop(k) for k in list(kwargs) if k.startswith("tuning_")}
        if tuning_changes:
            base = kwargs.get("tuning", self.tuning) or TuningConfig()
            kwargs["tuning"] = base.replace(**tuning_changes)
        return dataclasses.replace(self, **kwargs)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ProjectorConfig":
        """Inverse of ``dataclasses.asdict`` (as stored in a latent's settings); unknown keys ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        if isinstance(kw.get("tuning"), dict):
            tnames = {f.name for f in dataclasses.fields(TuningConfig)}
            kw["tuning"] = TuningConfig(**{k: v for k, v in kw["tuning"].items() if k in tnames})
        return cls(**kw)


PRESETS: dict[str, ProjectorConfig] = {
    # The seed's recipe: mean-latent start, pixel (0.5) + LPIPS (1) loss, noise reg 5e5, W+.
    "seed": ProjectorConfig(),
    # NVIDIA stylegan2-ada-pytorch projector.py defaults: W, LPIPS only, noise reg 1e5, 1000 steps.
    "nvidia": ProjectorConfig(space="w", rec_weight=0.0, lpips_weight=1.0, regularize_noise_weight=1e5,
                              num_steps=1000),
    # Quality per second on a CPU: fewer steps, shorter ramps, stop when LPIPS stalls.
    "fast": ProjectorConfig(num_steps=200, lr_rampdown_length=0.3, noise_ramp_length=0.5,
                            early_stop_patience=40),
    # Pivotal tuning (PTI, Roich et al. 2021): a short W projection as the pivot, then the synthesis
    # weights are fine-tuned to reproduce the person. The pivot is in W, PTI's choice: on the 20
    # evaluation photos it ends as close as a W+ pivot after tuning (33.2 dB / dlib 0.137 vs 33.5 /
    # 0.131, 20/20 the same person both ways) and edits far better from it (smile +1 sigma on 10
    # tuned portraits widens the mouth by 11.1% vs 6.8%; benchmarks/README.md). A 30-step pivot ends
    # as close after tuning as a 60-step one (28.4 dB / dlib 0.174 vs 28.5 / 0.182 after 70 steps).
    # precision "auto": bf16 where the CPU computes it natively (AVX512-BF16 / AMX): tuning steps
    # 2x faster there with the same fidelity (held-out portrait, 100 steps: 30.3 dB / dlib 0.181 in
    # 95 s vs 30.4 dB / 0.176 in 165 s).
    "pti": ProjectorConfig(space="w", num_steps=30, lr_rampdown_length=0.3, noise_ramp_length=0.5,
                           precision="auto", tuning=TuningConfig()),
}


def preset_config(name: str, **overrides: Any) -> ProjectorConfig:
    """``PRESETS[name]`` with the given fields changed (None values are ignored; ``tuning_<field>``
    changes a field of its pivotal tuning). Unknown presets and fields are one-line errors."""
    if name not in PRESETS:
        raise LatentlabError(f"unknown projection preset {name!r}; choose from {', '.join(PRESETS)}")
    changes = {k: v for k, v in overrides.items() if v is not None}
    names = {f.name for f in dataclasses.fields(ProjectorConfig)}
    tnames = {f.name for f in dataclasses.fields(TuningConfig)}
    for k in changes:
        if k not in names and not (k.startswith("tuning_") and k[len("tuning_"):] in tnames):
            raise LatentlabError(f"unknown projector setting {k!r}")
    try:
        return PRESETS[name].replace(**changes) if changes else PRESETS[name]
    except TypeError as exc:
        raise LatentlabError(f"bad projector setting: {exc}") from None


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
    """G's average W [w_dim] (the projection start: :func:`latentlab.registry.generator_w_avg`, the
    generator's own ``w_avg``) and the scalar spread ``sqrt(mean ||w - w_avg||^2)`` of
    ``num_samples`` mapping samples around it (the scale of the latent noise).

    The samples' z are drawn with ``np.random.RandomState(seed)`` (float32), as NVIDIA's projector
    draws them; labels are zero for conditional generators.
    """
    import numpy as np

    from ..registry import generator_w_avg

    w_avg = generator_w_avg(G, num_samples).to(G.device, torch.float32)
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


@contextlib.contextmanager
def override_noise(G: Generator, noise: dict[str, torch.Tensor]) -> Iterator[None]:
    """Temporarily replace G's constant noise buffers by ``noise`` (name -> [H,W] or [N,1,H,W])."""
    owners = {}
    modules = dict(G.named_modules())
    for name, value in noise.items():
        mod_name, _, buf = name.rpartition(".")
        mod = modules[mod_name]
        owners[name] = (mod, buf, mod._buffers[buf])
        mod._buffers[buf] = value
    try:
        yield
    finally:
        for mod, buf, old in owners.values():
            mod._buffers[buf] = old


def _resize_to(x: torch.Tensor, res: int) -> torch.Tensor:
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
        small = _resize_to(synth, loss_res)
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
    progress: bool = True,
    callback: Callable[[int, dict[str, Any]], None] | None = None,
) -> ProjectionResult:
    """Project targets [N, 3, H, W] in [-1, 1] (any H = W; resized to the loss resolution).

    ``callback(step, info)`` is called after every step with ``info`` holding ``ws`` (detached,
    [N, num_ws, w_dim]), ``loss``, ``lpips`` and ``mse`` lists, ``image`` (the synthesized image:
    full resolution, or the loss resolution when a synthesis shortcut is in use); it may raise KeyboardInterrupt
    to stop early. Ctrl-C (KeyboardInterrupt) stops the loop and returns the best latents so far.
    ``identity_loss(render, target) -> [N]`` is used when ``config.id_weight > 0`` (default: the
    FaceRes identity loss, :class:`latentlab.faces.identity_loss.IdentityLoss`).
    """
    from tqdm.auto import tqdm

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
    target_small = _resize_to(targets.to(device, torch.float32), loss_res)
    if cfg.id_weight > 0 and identity_loss is None:
        from ..faces.identity_loss import make_identity_loss

        identity_loss = make_identity_loss(device)
    target_feats = lpips_model.features(target_small) if lpips_model is not None else None

    w_avg, w_std = latent_stats(G, cfg.w_avg_samples, seed=cfg.seed)
    rows = 1 if cfg.space == "w" else G.num_ws
    w_opt = w_avg.detach().view(1, 1, -1).repeat(N, rows, 1).to(device).requires_grad_(True)

    noise_bufs = G.noise_buffers() if cfg.optimize_noise else {}
    noise = {
        name: torch.randn((N, 1, *buf.shape[-2:]), generator=gen).to(device).requires_grad_(True)
        for name, buf in noise_bufs.items()
    }
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

    bar = tqdm(range(cfg.num_steps), disable=not progress, desc="project", unit="step", leave=False)
    try:
        with override_noise(G, noise):
            for step in bar:
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
                    w_in = w_opt + torch.randn(w_opt.shape, generator=gen).to(device) * sigma
                ws = w_in.expand(N, G.num_ws, -1) if rows == 1 else w_in
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
                opt.step()
                renormalize_noise_(noise)

                row = {"step": step, "loss": float(loss.detach()), "lpips": float(lp_cpu.mean()),
                       "mse": float(mse_cpu.mean()), "lr": lr, "seconds": time.perf_counter() - t_start}
                history.append(row)
                bar.set_postfix(loss=f"{row['loss']:.4f}", lpips=f"{row['lpips']:.4f}")
                if callback is not None:
                    callback(step, {"ws": ws.detach(), "loss": row["loss"], "lpips": lp_cpu.tolist(),
                                    "mse": mse_cpu.tolist(), "image": synth.detach()})
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
    finally:
        bar.close()

    ws_best = best_w.expand(N, G.num_ws, -1).contiguous() if rows == 1 else best_w
    return ProjectionResult(
        ws=ws_best.detach(),
        noise={k: v.detach() for k, v in best_noise.items()},
        lpips=best_lpips.tolist(),
        mse=best_mse.tolist(),
        best_step=best_step.tolist(),
        steps_run=len(history),
        seconds=time.perf_counter() - t_start,
        interrupted=interrupted,
        config=cfg,
        history=history,
    )


def synthesize_projection(G: Generator, result: ProjectionResult) -> torch.Tensor:
    """Render a projection result at full resolution with its own noise maps: [N, 3, H, W]."""
    with torch.no_grad(), override_noise(G, {k: v.to(G.device) for k, v in result.noise.items()}):
        return G.synthesis(result.ws.to(G.device), noise_mode="const")
