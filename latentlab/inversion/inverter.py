"""The one inversion entry point: a photo in, a :class:`~latentlab.latent.Latent` out.

:func:`invert` aligns each photo (unless given aligned), projects the batch into W or W+
(:func:`~latentlab.inversion.project.project`), fine-tunes the generator for each photo when the
settings ask for pivotal tuning (:func:`~latentlab.inversion.pti.pivotal_tuning`), and measures the
result against the aligned photo with networks the optimiser never saw (:mod:`latentlab.metrics`).
``latentlab project``, ``latentlab evaluate``, the folder and Ray engines, the editing commands'
photo inputs, the web UI and the API all call it.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ..errors import LatentlabError
from ..faces.photo import Photo, load_photo
from ..latent import Latent, generator_for
from ..metrics import METRIC_RESOLUTION
from ..models.base import Generator
from ..progress import CancelArg, Progress, ProgressArg, as_callback
from ..registry import network_name
from .config import PRESETS, ProjectorConfig, preset_config
from .pti import pivotal_tuning, tuning_identity_loss
from .project import project

PhotoInput = "str | os.PathLike | np.ndarray | Photo"


def resolve_config(config: "str | ProjectorConfig", **overrides: Any) -> tuple[ProjectorConfig, str | None]:
    """(settings, preset name or None) from a preset name or a :class:`ProjectorConfig`, with
    ``overrides`` (ProjectorConfig fields; ``tuning_<field>`` for pivotal tuning) applied."""
    if isinstance(config, ProjectorConfig):
        cfg = config.replace(**{k: v for k, v in overrides.items() if v is not None}) if overrides else config
        preset = next((k for k, v in PRESETS.items() if v == config), None)
        return cfg, preset
    if not isinstance(config, str):
        raise LatentlabError(f"config must be a preset name or a ProjectorConfig, got {type(config).__name__}")
    return preset_config(config, **overrides), config


def reconstruction_metrics(recon: torch.Tensor, target: torch.Tensor, recon_u8: np.ndarray, aligned: np.ndarray,
                           resolution: int) -> dict[str, Any]:
    """How close a reconstruction [1, 3, R, R] is to its aligned photo [1, 3, R, R] (both in
    [-1, 1]; uint8 copies for the face networks): PSNR, MSE, MS-SSIM, LPIPS-Alex and, for reference,
    the loss network's own distance at ``resolution``; dlib's descriptor distance and verdict; the
    FaceRes ID cosine and verdict; the cheeks' texture at full resolution (:mod:`latentlab.metrics`)."""
    from ..metrics import identity_metrics_dlib, identity_metrics_faceres, image_metrics, texture_metrics

    return {**image_metrics(recon, target, resolution=resolution, include_loss_net=True)[0],
            **identity_metrics_dlib(aligned, recon_u8), **identity_metrics_faceres(aligned, recon_u8),
            **texture_metrics(aligned, recon_u8)}


def invert(photos: "PhotoInput | Sequence[PhotoInput]", G: Generator, config: "str | ProjectorConfig" = "pti", *,
           network: str | None = None, align: bool = True, face_index: int = 0, metrics: bool = True,
           lpips_model: torch.nn.Module | None = None,
           identity_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
           progress: ProgressArg = None, cancel: CancelArg = None,
           start: Latent | None = None, rows: Sequence[int] | None = None) -> "Latent | list[Latent]":
    """Invert face photos into G's latent space: one :class:`~latentlab.latent.Latent` per photo.

    photos: a photo (file path, uint8 pixels [H, W, 3] or a :class:`~latentlab.faces.Photo`) or a
    list of them, projected together as one batch (each tuned on its own). config: a preset name
    (:data:`~latentlab.inversion.PRESETS`: ``pti`` (default), ``fast``, ``paper``, ``nvidia``) or a
    :class:`ProjectorConfig`. network: G's name, recorded in the latents. align: FFHQ-align the
    ``face_index``-th largest face (``False``: the photos are aligned already and only resized).
    metrics: measure each result (:func:`reconstruction_metrics`; with tuning also the pivot's
    figures as ``pivot_*``), kept in ``Latent.metrics`` with ``steps``, ``seconds`` and the
    precision that ran. progress / cancel: :mod:`latentlab.progress`; a cancelled or interrupted
    inversion returns what it has, with ``settings["interrupted"]`` true: stopped while projecting,
    the best latents so far, untuned; stopped while tuning, that photo's tuning so far (photos of
    the batch not tuned yet stay untuned).

    start: begin at this latent instead of the mean latent, drawn by its generator (its tuning
    included) with its noise maps (``config`` should not tune; :data:`~latentlab.inversion.FOLLOW`
    is made for it): the result is the photo as a change of ``start``, carrying start's tuning;
    ``rows``: only these W+ rows move (the others keep start's).

    Returns a Latent for one photo, a list for a list. Seeded (``config.seed``): the same photo,
    settings and seed give the same latent on the same machine.
    """
    from ..imageio import image_to_tensor, tensor_to_images
    from ..metrics import loss_network

    single = not isinstance(photos, (list, tuple))
    items = [photos] if single else list(photos)
    if not items:
        raise LatentlabError("no photos to invert")
    cfg, preset = resolve_config(config)
    report = as_callback(progress)
    prepared: list[Photo] = []
    for i, p in enumerate(items):
        if report is not None and not isinstance(p, Photo):
            report(Progress("align", i, len(items), message=f"aligning {getattr(p, 'name', None) or p}"
                            if not isinstance(p, np.ndarray) else "aligning"))
        prepared.append(load_photo(p, G.img_resolution, align=align, face_index=face_index))
    net = network or network_name(G)
    if lpips_model is None and (cfg.lpips_weight > 0 or (cfg.tuning is not None)):
        lpips_model = loss_network(G.device)

    targets = torch.cat([image_to_tensor(p.aligned) for p in prepared]).to(G.device)
    n = len(prepared)
    start_kw: dict[str, Any] = {}
    G_draw = G
    if start is not None:
        if not isinstance(start, Latent):
            raise LatentlabError(f"start must be a latentlab Latent, got {type(start).__name__}")
        if cfg.tuning is not None:
            raise LatentlabError("a projection from a start latent keeps the start's tuning; use settings "
                                 "without tuning (e.g. latentlab.inversion.FOLLOW)")
        G.check_ws(start.ws)
        G_draw = generator_for(G, start)
        start_kw = {"start": start.ws.to(G.device).expand(n, -1, -1),
                    "start_noise": {k: v.to(G.device) for k, v in start.noise.items()}, "rows": rows}
    elif rows is not None:
        raise LatentlabError("rows= is for a projection from a start latent")
    t0 = time.perf_counter()
    result = project(G_draw, targets, cfg, lpips_model=lpips_model, identity_loss=identity_loss, progress=report,
                     cancel=cancel, **start_kw)
    seconds = [(time.perf_counter() - t0) / n] * n
    tunings: list[Any] = [None] * n
    interrupted = result.interrupted
    if cfg.tuning is not None and not interrupted:
        id_loss = tuning_identity_loss(cfg.tuning, G.device)
        for i in range(n):
            t1 = time.perf_counter()
            noise_i = {k: v[i:i + 1] for k, v in result.noise.items()}

            def tune_report(ev: Progress, i: int = i) -> None:
                if report is not None:
                    ev.state["index"] = i
                    ev.message = f"photo {i + 1}/{n}" if n > 1 else ev.message
                    report(ev)

            tr = pivotal_tuning(G, targets[i:i + 1], result.ws[i:i + 1], noise_i, cfg.tuning, lpips_model=lpips_model,
                                identity_loss=id_loss, progress=tune_report, cancel=cancel)
            seconds[i] += time.perf_counter() - t1
            tunings[i] = tr
            if tr.interrupted:
                interrupted = True
                break
    # metrics at one fixed resolution, whatever the loss ran at, so that settings compare
    resolution = min(METRIC_RESOLUTION, G.img_resolution)
    out: list[Latent] = []
    for i, photo in enumerate(prepared):
        noise = {k: v[i:i + 1] for k, v in result.noise.items()}
        tr = tunings[i]
        settings: dict[str, Any] = {"config": dataclasses.asdict(result.config), "preset": preset,
                                    "network": net, "photo": str(photo.path) if photo.path else photo.name,
                                    "aligned": align, "face_index": face_index}
        if interrupted:
            settings["interrupted"] = True
        m: dict[str, Any] = {}
        if metrics:
            if report is not None:
                report(Progress("metrics", i, n, message=f"measuring {photo.name}"))
            target = targets[i:i + 1]
            gen = tr.G if tr is not None else G_draw
            recon = _render_tensor(gen, result.ws[i:i + 1], noise)
            recon_u8 = tensor_to_images(recon)[0]
            m = reconstruction_metrics(recon, target, recon_u8, photo.aligned, resolution)
            m.update({"best_step": result.best_step[i], "steps": result.steps_run, "seconds": seconds[i],
                      "batch_seconds": sum(seconds), "batch_size": n, "interrupted": interrupted,
                      "space": cfg.space, "precision": result.config.precision,
                      "tuning_steps": tr.steps_run if tr is not None else None,
                      "tuning_precision": tr.config.precision if tr is not None else None})
            if tr is not None:
                pivot = _render_tensor(G, result.ws[i:i + 1], noise)
                pm = reconstruction_metrics(pivot, target, tensor_to_images(pivot)[0], photo.aligned, resolution)
                m.update({f"pivot_{k}": v for k, v in pm.items() if k != "metric_resolution"})
        if start is not None:
            settings["start"] = start.name
        tuning = tr.tuning if tr is not None else (start.tuning if start is not None else None)
        out.append(Latent(result.ws[i:i + 1], noise, photo.transform, photo, tuning, net, photo.name, settings, m))
    if report is not None and metrics:
        report(Progress("metrics", n, n, message="done"))
    return out[0] if single else out


@torch.no_grad()
def _render_tensor(G: Generator, ws: torch.Tensor, noise: dict[str, torch.Tensor]) -> torch.Tensor:
    """G(ws) with the noise maps, clamped to [-1, 1]: [1, 3, R, R] float32 on G's device."""
    from ..models.base import override_noise

    with override_noise(G, {k: v.to(G.device) for k, v in noise.items()}):
        return G.synthesis(ws.to(G.device, torch.float32), noise_mode="const").float().clamp(-1, 1)


__all__ = ["invert", "reconstruction_metrics", "resolve_config"]
