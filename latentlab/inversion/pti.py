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
* early stop when the loss network's LPIPS falls under ``early_stop_lpips``.

The result is stored as a compact **delta**: for each synthesis parameter that changed, ``tuned -
base`` (float16 by default) in a safetensors file beside the latent (:func:`save_delta`,
:func:`load_delta`, :func:`apply_delta`). A latent file names its delta in ``settings["tuning"]``
(a plain file name in the same folder plus the delta's SHA-256); every command that reads such a
latent renders with the tuned generator.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

from ..errors import LatentlabError
from ..models.base import Generator
from ..ops.cpu import PRECISIONS, resolve_precision

DELTA_FORMAT = "latentlab-pti-delta"
DELTA_VERSION = "1"
#: File-name suffix of a delta beside its latent: ``latent.npz`` -> ``latent.pti.safetensors``.
DELTA_SUFFIX = ".pti.safetensors"
#: Largest delta file read (bytes); StyleGAN2 config-f's synthesis in float32 is ~120 MB.
MAX_DELTA_BYTES = 512 * 2**20
TUNE_CHOICES = ("all", "convs")
DELTA_DTYPES = ("float16", "float32")


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
    locality_every: int = 4  # apply the regulariser every k steps
    early_stop_lpips: float = 0.0  # stop when every photo's LPIPS is below this; 0 = never
    loss_resolution: int = 256
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
                     "locality_alpha", "early_stop_lpips"):
            v = getattr(self, name)
            if not math.isfinite(v) or v < 0:
                raise LatentlabError(f"pivotal tuning {name} must be a finite number >= 0, got {v}")
        if self.lpips_weight == 0 and self.l2_weight == 0 and self.id_weight == 0:
            raise LatentlabError("pivotal tuning needs one of lpips_weight, l2_weight, id_weight > 0")
        if self.locality_every < 1:
            raise LatentlabError("locality_every must be >= 1")
        if self.tune not in TUNE_CHOICES:
            raise LatentlabError(f"tune must be one of {', '.join(TUNE_CHOICES)}, got {self.tune!r}")
        if self.precision not in PRECISIONS:
            raise LatentlabError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.delta_dtype not in DELTA_DTYPES:
            raise LatentlabError(f"delta_dtype must be one of {', '.join(DELTA_DTYPES)}")

    def replace(self, **kwargs: Any) -> "TuningConfig":
        return dataclasses.replace(self, **kwargs)


@dataclass
class TuningResult:
    """A tuned generator (a copy; the base is untouched), its delta and the loss history."""

    G: Generator  # the tuned copy, eval mode, no gradients
    delta: dict[str, torch.Tensor]  # synthesis parameter name -> tuned - base (float32, CPU)
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
    progress: bool = True,
    callback: Callable[[int, dict[str, Any]], None] | None = None,
) -> TuningResult:
    """Fine-tune a copy of G's synthesis network so that it renders ``pivot`` as ``targets``.

    targets: [N, 3, R, R] in [-1, 1] at G's resolution (the aligned photos); pivot: [N, num_ws, w_dim]
    (the projection's ws); noise: the projection's noise maps (name -> [N, 1, H, W]), kept fixed.
    With N > 1 photos, one generator is tuned for all of them (PTI's multi-image mode): tune
    photos separately to get one generator each. ``identity_loss(render, target) -> [N]`` is
    required when ``config.id_weight > 0``. Ctrl-C stops early and keeps the tuning so far.
    ``callback(step, info)`` runs after each update; ``info`` holds the history row (step, lr, loss,
    lpips, mse, ...), ``image`` (the render the step's loss saw) and ``G`` (the generator being
    tuned, after the update; render it under ``torch.no_grad()``).
    """
    from tqdm.auto import tqdm

    from .project import override_noise
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
    if lpips_model is None and (cfg.lpips_weight > 0 or cfg.locality_weight > 0):
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
    targets = targets.to(device, torch.float32)
    target_small = _area(targets, loss_res)
    target_feats = lpips_model.features(target_small) if lpips_model is not None else None
    pivot = pivot.to(device, torch.float32).detach()
    noise = {k: v.to(device, torch.float32).detach() for k, v in (noise or {}).items()}
    autocast = dict(device_type=device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16")

    history: list[dict[str, float]] = []
    last_lp = [math.nan] * N
    last_mse = [math.nan] * N
    interrupted = False
    bar = tqdm(range(cfg.num_steps), disable=not progress, desc="tune", unit="step", leave=False)
    try:
        for step in bar:
            lr = learning_rate(step / max(cfg.num_steps, 1), cfg.learning_rate, 0.0, cfg.lr_rampdown_length)
            for group in opt.param_groups:
                group["lr"] = lr
            with override_noise(Gt, noise), torch.autocast(**autocast):
                img = Gt.synthesis(pivot, noise_mode="const")
            img = img.float()
            small = _area(img, loss_res).contiguous(memory_format=torch.channels_last)
            mse = (img - targets).square().mean(dim=(1, 2, 3))  # [N]
            with torch.autocast(**autocast):
                lp = (lpips_model.distance_from_features(small, target_feats).float() if lpips_model is not None
                      and cfg.lpips_weight > 0 else torch.zeros_like(mse))
            loss = (cfg.lpips_weight * lp + cfg.l2_weight * mse).sum()
            id_term = None
            if cfg.id_weight > 0:
                id_term = identity_loss(img, targets)
                loss = loss + cfg.id_weight * id_term.sum()
            last_lp, last_mse = lp.detach().cpu().tolist(), mse.detach().cpu().tolist()
            if cfg.early_stop_lpips > 0 and max(last_lp) < cfg.early_stop_lpips:
                break
            reg = None
            if cfg.locality_weight > 0 and step % cfg.locality_every == 0:
                w_r = locality_latents(G, pivot, cfg.locality_alpha, gen)
                with torch.no_grad(), torch.autocast(**autocast):
                    ref = _area(G.synthesis(w_r, noise_mode="const").float(), loss_res)
                with torch.autocast(**autocast):
                    out = _area(Gt.synthesis(w_r, noise_mode="const").float(), loss_res)
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
            if id_term is not None:
                row["id_loss"] = float(id_term.detach().mean())
            history.append(row)
            bar.set_postfix(lpips=f"{row['lpips']:.4f}", mse=f"{row['mse']:.4f}")
            if callback is not None:
                callback(step, {**row, "image": img.detach(), "G": Gt})
    except KeyboardInterrupt:
        interrupted = True
    finally:
        bar.close()

    Gt.requires_grad_(False)
    base = dict(G.synthesis_network.named_parameters())
    delta = {name: (p.detach() - base[name].detach()).float().cpu() for name, p in params.items()}
    delta = {k: v for k, v in delta.items() if bool(v.abs().max() > 0)}
    return TuningResult(Gt, delta, last_lp, last_mse, len(history), time.perf_counter() - t_start, interrupted,
                        cfg, history)


# --------------------------------------------------------------------------- deltas on disk


def apply_delta(G: Generator, delta: dict[str, torch.Tensor]) -> Generator:
    """A copy of G whose synthesis parameters are ``base + delta`` (G is unchanged)."""
    params = dict(G.synthesis_network.named_parameters())
    for name, d in delta.items():
        if name not in params:
            raise LatentlabError(f"tuning delta names {name!r}, which this generator does not have")
        if tuple(d.shape) != tuple(params[name].shape):
            raise LatentlabError(f"tuning delta {name!r} is {list(d.shape)}, the generator's parameter is "
                                 f"{list(params[name].shape)}")
    Gt = copy.deepcopy(G).eval().requires_grad_(False)
    tuned = dict(Gt.synthesis_network.named_parameters())
    with torch.no_grad():
        for name, d in delta.items():
            tuned[name].add_(d.to(tuned[name].device, tuned[name].dtype))
    return Gt


def blend_deltas(deltas: list[dict[str, torch.Tensor]], weights: list[float]) -> dict[str, torch.Tensor]:
    """``sum_i weights[i] * deltas[i]`` over the union of their names (missing names count as 0)."""
    out: dict[str, torch.Tensor] = {}
    for d, w in zip(deltas, weights):
        for k, v in d.items():
            out[k] = out[k] + w * v.float() if k in out else w * v.float()
    return out


def delta_path_for(latent_path: "str | Path") -> Path:
    """Where a latent's delta lives: ``folder/latent.npz`` -> ``folder/latent.pti.safetensors``."""
    p = Path(latent_path)
    return p.with_name(p.stem + DELTA_SUFFIX)


def delta_bytes(delta: dict[str, torch.Tensor], *, model: str, config: TuningConfig | None = None) -> bytes:
    """``delta`` as the bytes of a ``.pti.safetensors`` file (``config.delta_dtype``, latentlab metadata)."""
    from safetensors.torch import save

    dtype = getattr(torch, (config or TuningConfig()).delta_dtype)
    tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in sorted(delta.items())}
    meta = {"format": DELTA_FORMAT, "version": DELTA_VERSION, "model": str(model),
            "config": json.dumps(dataclasses.asdict(config) if config else {}, sort_keys=True)}
    return save(tensors, metadata=meta)


def save_delta(path: "str | Path", delta: dict[str, torch.Tensor], *, model: str, config: TuningConfig | None = None,
               force: bool = False) -> str:
    """Write ``delta`` (name -> tensor) as safetensors (:func:`delta_bytes`); returns its SHA-256 hex.

    Written to a temporary name, then renamed: a symbolic link at ``path`` is replaced, not followed.
    """
    from ..imageio import write_bytes_atomic

    path = Path(path)
    if (path.exists() or path.is_symlink()) and not force:
        raise LatentlabError(f"{path} already exists; use --force to overwrite")
    data = delta_bytes(delta, model=model, config=config)
    write_bytes_atomic(path, data, force=force)
    return hashlib.sha256(data).hexdigest()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_delta(path: "str | Path", G: Generator, *, sha256: str | None = None) -> dict[str, torch.Tensor]:
    """Read and check a delta written by :func:`save_delta` for generator G (float32 tensors, CPU).

    Checks, before any tensor is read: a regular file no larger than :data:`MAX_DELTA_BYTES`, the
    SHA-256 when given (the latent's record), a safetensors header whose metadata says it is a
    latentlab delta, tensor names that are G's synthesis parameters with their shapes, float dtypes.
    After reading: finite values. Every failure is one line naming the file.
    """
    from safetensors import safe_open

    from ..checkpoints.guards import check_safetensors_header

    path = Path(path)
    try:
        st = path.lstat()
    except OSError:
        raise LatentlabError(f"{path}: tuning delta not found (it belongs beside its latent file)") from None
    import stat as _stat

    if not _stat.S_ISREG(st.st_mode):
        raise LatentlabError(f"{path}: tuning delta is not a regular file")
    if st.st_size > MAX_DELTA_BYTES:
        raise LatentlabError(f"{path}: tuning delta of {st.st_size} bytes is larger than the "
                             f"{MAX_DELTA_BYTES // 2**20} MiB limit")
    if sha256 is not None and _sha256(path) != sha256.lower():
        raise LatentlabError(f"{path}: tuning delta does not match the SHA-256 its latent records "
                             "(it was replaced or belongs to another latent)")
    header = check_safetensors_header(path)
    meta = header.get("__metadata__") or {}
    if meta.get("format") != DELTA_FORMAT:
        raise LatentlabError(f"{path}: not a latentlab tuning delta (metadata format {meta.get('format')!r})")
    params = dict(G.synthesis_network.named_parameters())
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if name not in params:
            raise LatentlabError(f"{path}: tuning delta names {name!r}, which this generator does not have "
                                 f"(made for {meta.get('model')!r}?)")
        if tuple(info.get("shape", ())) != tuple(params[name].shape):
            raise LatentlabError(f"{path}: tuning delta {name!r} is {info.get('shape')}, the generator's "
                                 f"parameter is {list(params[name].shape)}")
        if info.get("dtype") not in ("F16", "BF16", "F32"):
            raise LatentlabError(f"{path}: tuning delta {name!r} has dtype {info.get('dtype')}, not a float")
    out: dict[str, torch.Tensor] = {}
    with safe_open(str(path), framework="pt") as f:
        for name in f.keys():
            t = f.get_tensor(name).float()
            if not bool(torch.isfinite(t).all()):
                raise LatentlabError(f"{path}: tuning delta {name!r} holds NaN or infinite values")
            out[name] = t
    return out


def tuning_identity_loss(config: TuningConfig, device: torch.device
                         ) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None:
    """The identity loss ``config`` asks for (``id_weight > 0``), else None."""
    return identity_loss_fn(device) if config.id_weight > 0 else None


def identity_loss_fn(device: torch.device) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``loss(render, target) -> [N]``: ``1 - cos`` of identity embeddings of the two aligned faces,
    differentiable in ``render`` ([N, 3, R, R] in [-1, 1], FFHQ-aligned)."""
    from ..faces.identity_loss import make_identity_loss

    return make_identity_loss(device)


__all__ = ["DELTA_FORMAT", "DELTA_SUFFIX", "MAX_DELTA_BYTES", "TuningConfig", "TuningResult", "apply_delta",
           "blend_deltas", "delta_bytes", "delta_path_for", "identity_loss_fn", "load_delta", "locality_latents",
           "pivotal_tuning", "save_delta", "tunable_parameters", "tuning_identity_loss"]
