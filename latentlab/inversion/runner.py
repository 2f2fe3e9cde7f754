"""Projection of photo files end to end: load, align, project in batches, write every output.

This is what ``latentlab project`` runs; it is a library function so that scripts, the demo and
the UI get the same files. Per photo, in ``outdir/<stem>/``:

* ``aligned.png``: the aligned target at the generator's resolution;
* ``reconstruction.png``: ``G.synthesis(ws)`` with the optimised noise, full resolution;
* ``compare.png``: aligned | reconstruction;
* ``pasted.png``: the reconstruction pasted back into the original photo (original size);
* ``latent.npz``: ``ws`` [1, num_ws, w_dim], ``noise/<name>`` maps, ``align_*`` transform,
  ``settings`` (JSON text) and ``model``; :func:`load_latent` reads it back;
* ``metrics.json``: PSNR, MSE, MS-SSIM and LPIPS-Alex at the loss resolution (networks and formulas
  the projector does not optimise, :mod:`latentlab.metrics`), the loss network's own distance as
  ``lpips_vgg_loss_net``, dlib's descriptor distance and same-person verdict, steps, seconds; ``progress.mp4`` with ``save_video``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import LatentlabError
from ..models.base import Generator
from .project import (ProjectionResult, ProjectorConfig, _resize_to, override_noise, project,
                      synthesize_projection)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}
OUTPUT_NAMES = ("aligned.png", "reconstruction.png", "compare.png", "pasted.png", "latent.npz",
                "metrics.json")


def collect_photos(paths: "list[Path] | tuple[Path, ...]") -> list[Path]:
    """Expand folders into their image files (sorted; hidden files such as macOS ``._x.jpg`` are
    left out); keep files as given. Errors are one line."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(q for q in p.iterdir()
                           if q.suffix.lower() in IMAGE_SUFFIXES and not q.name.startswith(".") and q.is_file())
            if not found:
                raise LatentlabError(f"{p}: folder holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
            out.extend(found)
        elif p.exists():
            out.append(p)
        else:
            raise LatentlabError(f"{p}: no such file or folder")
    stems = [p.stem for p in out]
    dupes = {s for s in stems if stems.count(s) > 1}
    if dupes:
        raise LatentlabError(f"several photos share the name {sorted(dupes)[0]!r}; their outputs would collide")
    return out


@dataclass
class PreparedPhoto:
    path: Path
    original: np.ndarray  # uint8 [H, W, 3]
    aligned: "Any"  # faces.AlignedFace


def prepare_photo(path: Path, resolution: int, *, align: bool = True, face_index: int = 0) -> PreparedPhoto:
    """Load a photo with clear errors and align it (or just resize it with ``align=False``)."""
    from ..faces import align_face, as_aligned
    from ..imageio import load_image

    img = load_image(path)
    face = (align_face(img, resolution, face_index=face_index, source=str(path)) if align
            else as_aligned(img, resolution, source=str(path)))
    return PreparedPhoto(Path(path), img, face)


from ..latentfile import Latent, load_latent, save_latent  # noqa: E402,F401  (the latent format lives there)


def image_metrics(recon: torch.Tensor, target: torch.Tensor, lpips_model: Any, loss_res: int) -> dict[str, float]:
    """Honest reconstruction metrics of [1,3,H,W] images in [-1, 1] at ``loss_res``
    (:func:`latentlab.metrics.image_metrics`: ``psnr``, ``mse``, ``ms_ssim``, ``lpips_alex``,
    ``metric_resolution``), plus the projector's own loss network's distance under a name that
    says so, ``lpips_vgg_loss_net``."""
    from ..metrics import image_metrics as honest

    r = _resize_to(recon.float(), loss_res).clamp(-1, 1)
    t = _resize_to(target.float(), loss_res)
    with torch.no_grad():
        lp = float(lpips_model(r, t)[0])
    return {**honest(r, t, resolution=loss_res)[0], "lpips_vgg_loss_net": lp}


def identity_metrics(aligned: np.ndarray, recon: np.ndarray) -> dict[str, Any]:
    """dlib descriptor distance of target and reconstruction and dlib's verdict (distance < 0.6), and
    the FaceRes ID cosine and its verdict; None values when no face is found. (dlib's cosine is not
    reported: different people score ~0.94.)"""
    from ..metrics import identity_metrics_dlib, identity_metrics_faceres

    return {**identity_metrics_dlib(aligned, recon), **identity_metrics_faceres(aligned, recon)}


def _side_by_side(*images: np.ndarray, height: int = 512) -> np.ndarray:
    import cv2

    tiles = [cv2.resize(im, (height, height), interpolation=cv2.INTER_AREA if im.shape[0] > height
                        else cv2.INTER_LANCZOS4) for im in images]
    return np.concatenate(tiles, axis=1)


def project_photos(files: list[Path], *, network: str = "ffhq-mobile", config: ProjectorConfig = ProjectorConfig(),
                   outdir: Path, align: bool = True, face_index: int = 0, batch: int | None = None,
                   save_video: bool = False, compare_methods: bool = False, force: bool = False,
                   device: str = "auto", preset: str | None = None, G: Generator | None = None,
                   progress: bool = True, skip_existing: bool = False, engine: str = "local",
                   ray_address: str | None = None, ray_workers: int | None = None,
                   threads_per_worker: int | None = None, on_result: Any = None) -> list[dict[str, Any]]:
    """Project photo files and write the outputs described in the module docstring.

    ``batch``: photos optimised together; None: 4 on a GPU, 1 on CPU (on a 2-core CPU a batch of 4
    took the same time per photo as one photo at a time, with 8.0 instead of 2.4 GiB peak memory).
    Photos are loaded and aligned one batch at a time.

    A folder run (:mod:`latentlab.engine.folder`): a photo that fails to load, align, project or
    be written is recorded in ``outdir/manifest.jsonl`` with its one-line reason and the run goes
    on; ``skip_existing`` skips photos the manifest records as done whose outputs exist; ``engine``
    ``"ray"`` runs on a Ray cluster (:mod:`latentlab.engine.ray_engine`). Ctrl-C keeps the photos
    finished so far and re-raises KeyboardInterrupt. For the failures and counts use
    :func:`latentlab.engine.folder.run_projection`, which returns the whole summary.

    Returns one metrics dict per photo projected in this run (input order; failed and skipped
    photos are not in it). With ``compare_methods`` it also writes ``outdir/compare_methods.png``
    (input | method 1 | method 2 per photo) and each method's outputs in ``outdir/method1`` /
    ``outdir/method2``, and returns ``{"method1": ..., "method2": ...}`` per photo.
    """
    from ..engine.folder import run_projection

    summary = run_projection(list(map(Path, files)), network=network, config=config, outdir=outdir, align=align,
                             face_index=face_index, batch=batch, save_video=save_video,
                             compare_methods=compare_methods, force=force, device=device, preset=preset, G=G,
                             progress=progress, skip_existing=skip_existing, on_result=on_result, engine=engine,
                             ray_address=ray_address, ray_workers=ray_workers,
                             threads_per_worker=threads_per_worker)
    if summary.interrupted:
        raise KeyboardInterrupt(f"interrupted: {summary.line()}")
    return summary.metrics


@dataclass
class ChunkInversion:
    """What :func:`invert_chunk` returns for a batch of N photos."""

    result: ProjectionResult  # ws [N, num_ws, w_dim], noise, per-sample losses
    targets: torch.Tensor  # [N, 3, R, R] in [-1, 1], the aligned photos
    recon: torch.Tensor  # [N, 3, R, R] in [-1, 1], rendered at full resolution with the result's noise
    seconds: float  # wall time of the whole batch (projection, tuning and rendering)
    frames: list[list[np.ndarray]]  # per photo: progress-video frames (empty without save_video)
    #: per photo: its pivotal tuning (tuned generator and delta) when ``config.tuning`` is set, else None
    tunings: list[Any] = field(default_factory=list)
    #: per photo: seconds of its own projection share plus its own tuning
    photo_seconds: list[float] = field(default_factory=list)
    #: with tuning: the pivots rendered by the base generator [N, 3, R, R] (to report what tuning added)
    pivot_recon: torch.Tensor | None = None


def invert_chunk(G: Generator, chunk: "list[PreparedPhoto]", config: ProjectorConfig, *, lpips_model: Any,
                 progress: bool = True, save_video: bool = False) -> ChunkInversion:
    """Project a batch of prepared photos together (one :func:`project` call) and render them.

    With ``config.tuning``, each photo's projection then becomes the pivot of its own pivotal
    tuning (one tuned generator per photo) and is rendered with it.
    """
    from ..imageio import tensor_to_images

    targets = torch.cat([_to_tensor(p.aligned.image) for p in chunk]).to(G.device)
    frames: list[list[np.ndarray]] = [[] for _ in chunk]
    every = max(1, config.num_steps // 100)

    def on_step(step: int, info: dict[str, Any]) -> None:
        if save_video and step % every == 0:
            small = _resize_to(info["image"], 256).clamp(-1, 1)
            for i, im in enumerate(tensor_to_images(small)):
                frames[i].append(im)

    t0 = time.perf_counter()
    result = project(G, targets, config, lpips_model=lpips_model, progress=progress, callback=on_step)
    n = len(chunk)
    photo_seconds = [(time.perf_counter() - t0) / n] * n
    tunings: list[Any] = [None] * n
    pivot_recon = None
    if config.tuning is None or result.interrupted:
        recon = synthesize_projection(G, result)
    else:
        pivot_recon = synthesize_projection(G, result)
        from .pti import pivotal_tuning, tuning_identity_loss

        recon_list = []
        id_loss = tuning_identity_loss(config.tuning, G.device)
        for i in range(n):
            t1 = time.perf_counter()
            noise_i = {k: v[i:i + 1] for k, v in result.noise.items()}
            tr = pivotal_tuning(G, targets[i:i + 1], result.ws[i:i + 1], noise_i, config.tuning,
                                lpips_model=lpips_model, identity_loss=id_loss, progress=progress)
            tunings[i] = tr
            with torch.no_grad(), override_noise(tr.G, {k: v.to(G.device) for k, v in noise_i.items()}):
                recon_list.append(tr.G.synthesis(result.ws[i:i + 1].to(G.device), noise_mode="const"))
            photo_seconds[i] += time.perf_counter() - t1
            if tr.interrupted:
                result.interrupted = True
                recon_list += [pivot_recon[j:j + 1] for j in range(i + 1, n)]  # untuned: the pivots
                break
        recon = torch.cat(recon_list)
    return ChunkInversion(result, targets, recon, time.perf_counter() - t0, frames, tunings, photo_seconds,
                          pivot_recon)


def write_photo_outputs(d: Path, p: PreparedPhoto, inv: ChunkInversion, i: int, *, network: str,
                        config: ProjectorConfig, preset: str | None, align: bool, face_index: int,
                        lpips_model: Any, loss_res: int, force: bool) -> dict[str, Any]:
    """Write photo ``i`` of a batch's outputs into folder ``d`` (module docstring); its metrics dict."""
    from ..faces import paste_back
    from ..imageio import save_image, tensor_to_images

    result, recon, targets = inv.result, inv.recon, inv.targets
    recon_u8 = tensor_to_images(recon[i:i + 1].clamp(-1, 1))[0]
    d.mkdir(parents=True, exist_ok=True)
    save_image(p.aligned.image, d / "aligned.png", force=force)
    save_image(recon_u8, d / "reconstruction.png", force=force)
    save_image(_side_by_side(p.aligned.image, recon_u8), d / "compare.png", force=force)
    pasted = paste_back(p.original, recon_u8, p.aligned) if align else _resize_back(recon_u8, p)
    save_image(pasted, d / "pasted.png", force=force)
    settings = {"config": dataclasses.asdict(config), "preset": preset, "network": network,
                "photo": str(p.path), "aligned": align, "face_index": face_index}
    tuning = inv.tunings[i] if inv.tunings else None
    if tuning is not None:
        from .pti import delta_path_for, save_delta

        delta_file = delta_path_for(d / "latent.npz")
        digest = save_delta(delta_file, tuning.delta, model=network, config=tuning.config, force=True)
        settings["tuning"] = {"file": delta_file.name, "sha256": digest}
    save_latent(d / "latent.npz", result.ws[i:i + 1], {k: v[i:i + 1] for k, v in result.noise.items()},
                model=network, transform=p.aligned.transform, settings=settings, force=True)
    n = len(inv.frames)
    m = {"photo": str(p.path), **image_metrics(recon[i:i + 1], targets[i:i + 1], lpips_model, loss_res),
         **identity_metrics(p.aligned.image, recon_u8),
         "best_step": result.best_step[i], "steps": result.steps_run,
         "seconds": inv.photo_seconds[i] if inv.photo_seconds else inv.seconds / n,
         "batch_seconds": inv.seconds, "batch_size": n,
         "interrupted": result.interrupted, "space": config.space,
         "precision": result.config.precision,  # what ran ("auto" resolved)
         "tuning_steps": tuning.steps_run if tuning is not None else None,
         "tuning_precision": tuning.config.precision if tuning is not None else None}
    if tuning is not None and inv.pivot_recon is not None:
        # What the projection alone gave (the pivot drawn by the base generator), for comparison.
        pivot_u8 = tensor_to_images(inv.pivot_recon[i:i + 1].clamp(-1, 1))[0]
        pm = {**image_metrics(inv.pivot_recon[i:i + 1], targets[i:i + 1], lpips_model, loss_res),
              **identity_metrics(p.aligned.image, pivot_u8)}
        m.update({f"pivot_{k}": v for k, v in pm.items() if k != "metric_resolution"})
    from ..imageio import write_bytes_atomic

    write_bytes_atomic(d / "metrics.json", json.dumps(m, indent=2) + "\n", force=True)
    if inv.frames[i]:
        _write_video(inv.frames[i], d / "progress.mp4")
    return m


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    from ..imageio import image_to_tensor

    return image_to_tensor(image)


def _resize_back(recon: np.ndarray, p: PreparedPhoto) -> np.ndarray:
    import cv2

    h, w = p.original.shape[:2]
    return cv2.resize(recon, (w, h), interpolation=cv2.INTER_AREA)


def _write_video(frames: list[np.ndarray], path: Path, fps: int = 20) -> None:
    import imageio.v2 as iio

    with iio.get_writer(str(path), fps=fps, codec="libx264", quality=8, macro_block_size=1) as w:
        for f in frames:
            w.append_data(f)
