"""Every setting of inversion: the projector's (:class:`ProjectorConfig`), pivotal tuning's
(:class:`TuningConfig`) and the named presets (:data:`PRESETS`).

Presets:

* ``paper``: the paper recipe: start at w_avg, W+, pixel MSE 0.5 + LPIPS (VGG16) 1, noise
  regularisation 5e5, 1000 steps;
* ``nvidia``: NVIDIA's StyleGAN2 projector: W, LPIPS only, noise regularisation 1e5, 1000 steps;
* ``fast``: the paper recipe with 200 steps at most, shorter ramps and an early stop;
* ``pti``: a 30-step W projection as the pivot, then pivotal tuning of the synthesis network
  (the person, not a lookalike).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from ..errors import LatentlabError
from ..ops.cpu import PRECISIONS

TUNE_CHOICES = ("all", "convs")
DELTA_DTYPES = ("float16", "float32")
SHORTCUTS = ("none", "exact", "approximate")


@dataclass(frozen=True)
class TuningConfig:
    """Every weight and schedule value of pivotal tuning (CLI flags ``--pti-*``)."""

    num_steps: int = 100  # at most; early stop may end sooner
    learning_rate: float = 3e-4  # Adam (PTI's value, constant there)
    #: cosine ramp-down of the learning rate over this last fraction of the steps (0 = constant)
    lr_rampdown_length: float = 0.0
    lpips_weight: float = 1.0  # LPIPS (VGG16) at loss_resolution
    #: pixel MSE on [-1, 1] images at the generator's full resolution. PTI uses 1; 10 converges much
    #: faster here (held-out portrait, 100 steps: 30.2 dB / dlib 0.154 vs 27.5 dB / 0.219)
    l2_weight: float = 10.0
    id_weight: float = 0.0  # 1 - cosine of identity embeddings (needs an identity network)
    #: weight of the locality regulariser's MSE and LPIPS terms (PTI: 0.1); 0 = off. With PTI's
    #: alpha = 30 it held tuning back (held-out portrait, 100 steps: dlib 0.555 vs 0.236 without);
    #: with alpha = 10 it costs no fidelity (30.1 dB / dlib 0.157 vs 30.2 / 0.154) and keeps edits
    #: stronger (smile +1 sigma: mouth +7.4% vs +5.2%).
    locality_weight: float = 0.1
    locality_alpha: float = 10.0  # distance of the regulariser's latents from the pivot (PTI: 30)
    #: apply the regulariser every k steps, its MSE and LPIPS at ``locality_resolution`` px (None:
    #: loss_resolution). Every 8 steps at 128 px: the same fidelity and edits as every 4 at 256 px,
    #: with the regulariser's cost cut from a third of a step to a twelfth (benchmarks/README.md)
    locality_every: int = 8
    locality_resolution: int | None = 128
    early_stop_lpips: float = 0.0  # stop when every photo's LPIPS is below this; 0 = never
    loss_resolution: int = 256
    #: the first ``coarse_fraction`` of the steps compute LPIPS at ``coarse_resolution`` (a quarter
    #: of the loss network's cost at 128 px), the rest at ``loss_resolution`` (and only those may
    #: stop early); 0 = off
    coarse_fraction: float = 0.0
    coarse_resolution: int = 128
    #: LPIPS (the same network) on one random ``texture_crop``-px crop of the full-resolution render
    #: per step, against the same crop of the photo, with this weight (0 = off): supervises the
    #: detail the loss-resolution LPIPS cannot see. Crops are drawn, seeded, from the central half
    #: of the image (the face, in an FFHQ-aligned crop). Off: on ffhq-mobile it brings back fine
    #: energy as the generator's periodic pattern, not skin, and costs identity (4 photos, weight
    #: 0.2-1: skin peak ratio 9-311 against 2-17, dlib +0.02 to +0.28; benchmarks/README.md)
    texture_weight: float = 0.0
    texture_crop: int = 128
    #: "all": every synthesis parameter (PTI); "convs": all but the style affines and noise strengths
    #: (the mapping from W to styles stays the base model's).
    tune: str = "all"
    #: "fp32", "bf16" (autocast for synthesis and LPIPS; weights, Adam state and the pixel loss stay
    #: fp32) or "auto": bf16 where :func:`latentlab.ops.fast_bfloat16` says it is faster (the
    #: result's config records which ran)
    precision: str = "auto"
    delta_dtype: str = "float16"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.num_steps < 0:
            raise LatentlabError("pivotal tuning steps must be >= 0")
        if not 0 <= self.lr_rampdown_length <= 1:
            raise LatentlabError(f"lr_rampdown_length must be in [0, 1], got {self.lr_rampdown_length}")
        for name in ("learning_rate", "lpips_weight", "l2_weight", "id_weight", "locality_weight",
                     "locality_alpha", "early_stop_lpips", "texture_weight"):
            v = getattr(self, name)
            if not math.isfinite(v) or v < 0:
                raise LatentlabError(f"pivotal tuning {name} must be a finite number >= 0, got {v}")
        if not 0 <= self.coarse_fraction <= 1:
            raise LatentlabError(f"coarse_fraction must be in [0, 1], got {self.coarse_fraction}")
        if isinstance(self.coarse_resolution, bool) or not isinstance(self.coarse_resolution, int) \
                or self.coarse_resolution < 16:
            raise LatentlabError(f"coarse_resolution must be an integer >= 16, got {self.coarse_resolution!r}")
        if isinstance(self.texture_crop, bool) or not isinstance(self.texture_crop, int) or self.texture_crop < 32:
            raise LatentlabError(f"texture_crop must be an integer >= 32, got {self.texture_crop!r}")
        if self.lpips_weight == 0 and self.l2_weight == 0 and self.id_weight == 0:
            raise LatentlabError("pivotal tuning needs one of lpips_weight, l2_weight, id_weight > 0")
        if self.locality_every < 1:
            raise LatentlabError("locality_every must be >= 1")
        if self.locality_resolution is not None and (isinstance(self.locality_resolution, bool) or not isinstance(
                self.locality_resolution, int) or self.locality_resolution < 16):
            raise LatentlabError(f"locality_resolution must be an integer >= 16, got {self.locality_resolution!r}")
        if self.tune not in TUNE_CHOICES:
            raise LatentlabError(f"tune must be one of {', '.join(TUNE_CHOICES)}, got {self.tune!r}")
        if self.precision not in PRECISIONS:
            raise LatentlabError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.delta_dtype not in DELTA_DTYPES:
            raise LatentlabError(f"delta_dtype must be one of {', '.join(DELTA_DTYPES)}")

    def replace(self, **kwargs: Any) -> "TuningConfig":
        return dataclasses.replace(self, **kwargs)



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


PRESETS: dict[str, ProjectorConfig] = {
    # The paper recipe: mean-latent start, pixel MSE (0.5) + LPIPS (1) loss, noise reg 5e5, W+, 1000 steps.
    "paper": ProjectorConfig(),
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
    # 95 s vs 30.4 dB / 0.176 in 165 s). The pivot's LPIPS runs at 128 px (a quarter of the loss
    # network's cost; the tuning that follows, at 256 px, ends as close: 20 photos, 33.2 dB / dlib
    # 0.136 in 96 s a photo, against 33.2 / 0.137 in 135 s with a 256 px pivot and the locality term
    # every 4 steps at 256 px).
    "pti": ProjectorConfig(space="w", num_steps=30, lr_rampdown_length=0.3, noise_ramp_length=0.5,
                           loss_resolution=128, precision="auto", tuning=TuningConfig()),
}


#: Settings of a projection that starts from another photo's latent (``invert(..., start=)``, e.g. the
#: same person smiling from their neutral latent): W+, no latent noise, noise maps held at the
#: start's, a small learning rate, so that the latent moves only as far as the photos differ.
FOLLOW = ProjectorConfig(space="w+", num_steps=60, initial_learning_rate=0.02, lr_rampdown_length=0.5,
                         initial_noise_factor=0.0, optimize_noise=False, precision="auto")


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


__all__ = ["FOLLOW", "PRESETS", "ProjectorConfig", "SHORTCUTS", "TuningConfig", "preset_config"]
