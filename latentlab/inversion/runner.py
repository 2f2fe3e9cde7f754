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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import LatentlabError
from ..models.base import Generator
from .project import ProjectionResult, ProjectorConfig, _resize_to, project, synthesize_projection

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}
OUTPUT_NAMES = ("aligned.png", "reconstruction.png", "compare.png", "pasted.png", "latent.npz",
                "metrics.json")


def collect_photos(paths: "list[Path] | tuple[Path, ...]") -> list[Path]:
    """Expand folders into their image files (sorted); keep files as given. Errors are one line."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.suffix.lower() in IMAGE_SUFFIXES and q.is_file())
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


def save_latent(path: Path, ws: torch.Tensor, noise: dict[str, torch.Tensor], *, model: str,
                transform: Any = None, settings: dict[str, Any] | None = None, force: bool = False) -> None:
    """Write a projection latent ``.npz`` (ws [1, num_ws, w_dim], noise maps, transform, settings)."""
    if (path.exists() or path.is_symlink()) and not force:
        raise LatentlabError(f"{path} already exists; use --force to overwrite")
    arrays: dict[str, Any] = {"ws": ws.detach().cpu().float().numpy()}
    for k, v in noise.items():
        arrays[f"noise/{k}"] = v.detach().cpu().float().numpy()
    if transform is not None:
        arrays.update(transform.to_arrays())
    arrays["settings"] = np.array(json.dumps(settings or {}, sort_keys=True))
    arrays["model"] = np.array(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A temporary name, then a rename: a symbolic link planted at ``path`` is replaced, not followed,
    # and an interrupted write leaves no truncated latent under the real name.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        with open(tmp, "xb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except OSError as e:
        raise LatentlabError(f"{path}: cannot write ({e.strerror or e})") from None
    finally:
        if tmp.exists() or tmp.is_symlink():
            tmp.unlink()


@dataclass
class Latent:
    """A latent read from ``latent.npz`` (or ``samples.npz``): ws [N, num_ws, w_dim]."""

    ws: torch.Tensor
    noise: dict[str, torch.Tensor]
    model: str | None
    transform: Any
    settings: dict[str, Any]


def load_latent(path: "str | Path", G: Generator | None = None) -> Latent:
    """Read a latent file; with ``G``, check that its shape fits that generator (one-line errors)."""
    from ..faces import FaceTransform

    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise LatentlabError(f"{path}: not a readable latent .npz ({' '.join(str(exc).split())})") from None
    if "ws" not in data:
        raise LatentlabError(f"{path}: no 'ws' array (write it with latentlab project or sample)")
    ws = torch.from_numpy(np.asarray(data["ws"], np.float32))
    if ws.ndim == 2:
        ws = ws[None]
    if ws.ndim != 3:
        raise LatentlabError(f"{path}: ws must be [N, num_ws, w_dim], got {list(ws.shape)}")
    model = str(data["model"]) if "model" in data else None
    if G is not None and (ws.shape[1] != G.num_ws or ws.shape[2] != G.w_dim):
        hint = f" (it was made with {model})" if model else ""
        raise LatentlabError(f"{path}: ws is {list(ws.shape[1:])} but this generator takes "
                             f"[{G.num_ws}, {G.w_dim}]{hint}")
    noise = {k[len("noise/"):]: torch.from_numpy(v) for k, v in data.items() if k.startswith("noise/")}
    transform = FaceTransform.from_arrays(data) if "align_matrix" in data else None
    settings = json.loads(str(data["settings"])) if "settings" in data else {}
    return Latent(ws, noise, model, transform, settings)


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
    """dlib descriptor distance of target and reconstruction and dlib's verdict (distance < 0.6);
    None values when no face is found. (dlib's cosine is not reported: different people score ~0.94.)"""
    from ..metrics import identity_metrics_dlib

    return identity_metrics_dlib(aligned, recon)


def _side_by_side(*images: np.ndarray, height: int = 512) -> np.ndarray:
    import cv2

    tiles = [cv2.resize(im, (height, height), interpolation=cv2.INTER_AREA if im.shape[0] > height
                        else cv2.INTER_LANCZOS4) for im in images]
    return np.concatenate(tiles, axis=1)


def project_photos(files: list[Path], *, network: str = "ffhq-mobile", config: ProjectorConfig = ProjectorConfig(),
                   outdir: Path, align: bool = True, face_index: int = 0, batch: int | None = None,
                   save_video: bool = False, compare_methods: bool = False, force: bool = False,
                   device: str = "auto", preset: str | None = None, G: Generator | None = None,
                   progress: bool = True) -> list[dict[str, Any]]:
    """Project photo files and write the outputs described in the module docstring.

    ``batch``: photos optimised together; None: 4 on a GPU, 1 on CPU (on a 2-core CPU a batch of 4
    took the same time per photo as one photo at a time, with 8.0 instead of 2.4 GiB peak memory).

    Returns one metrics dict per photo. With ``compare_methods`` it also writes
    ``outdir/compare_methods.png`` (input | method 1 | method 2 per photo) and each method's
    outputs in ``outdir/method1`` / ``outdir/method2``.
    """
    from tqdm.auto import tqdm

    from ..imageio import save_image, tensor_to_images
    from ..losses import LPIPS

    outdir = Path(outdir)
    if compare_methods:
        m1 = config.replace(lpips_weight=0.0, rec_weight=config.rec_weight or 0.5)
        m2 = config.replace(rec_weight=0.0, lpips_weight=config.lpips_weight or 1.0)
        _refuse([outdir / "compare_methods.png"], force)
        res1 = project_photos(files, network=network, config=m1, outdir=outdir / "method1", align=align,
                              face_index=face_index, batch=batch, save_video=save_video, force=force,
                              device=device, preset=preset, G=G, progress=progress)
        res2 = project_photos(files, network=network, config=m2, outdir=outdir / "method2", align=align,
                              face_index=face_index, batch=batch, save_video=save_video, force=force,
                              device=device, preset=preset, G=G, progress=progress)
        from ..imageio import load_image

        rows = []
        for f in files:
            d1, d2 = outdir / "method1" / f.stem, outdir / "method2" / f.stem
            rows.append(_side_by_side(load_image(d1 / "aligned.png"), load_image(d1 / "reconstruction.png"),
                                      load_image(d2 / "reconstruction.png"), height=256))
        save_image(np.concatenate(rows, axis=0), outdir / "compare_methods.png", force=force)
        return [{"method1": a, "method2": b} for a, b in zip(res1, res2)]

    if not files:
        raise LatentlabError("no photos given")
    out_dirs = [outdir / f.stem for f in files]
    names = list(OUTPUT_NAMES) + (["progress.mp4"] if save_video else [])
    _refuse([d / n for d in out_dirs for n in names], force)

    if G is None:
        from ..registry import load_generator, resolve_device

        G = load_generator(network, resolve_device(device), progress=progress)
    if batch is None:
        batch = 4 if G.device.type == "cuda" else 1
    res = G.img_resolution
    prepared = [prepare_photo(f, res, align=align, face_index=face_index) for f in files]  # fail early
    lpips_model = LPIPS().to(G.device).eval()
    loss_res = min(config.loss_resolution, res)
    all_metrics: list[dict[str, Any]] = []

    for start in tqdm(range(0, len(prepared), batch), desc="batches", disable=not progress or len(prepared) <= batch):
        chunk = prepared[start:start + batch]
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
        recon = synthesize_projection(G, result)
        seconds = time.perf_counter() - t0
        recon_u8 = tensor_to_images(recon.clamp(-1, 1))
        for i, p in enumerate(chunk):
            d = out_dirs[start + i]
            d.mkdir(parents=True, exist_ok=True)
            save_image(p.aligned.image, d / "aligned.png", force=force)
            save_image(recon_u8[i], d / "reconstruction.png", force=force)
            save_image(_side_by_side(p.aligned.image, recon_u8[i]), d / "compare.png", force=force)
            from ..faces import paste_back

            pasted = paste_back(p.original, recon_u8[i], p.aligned) if align else _resize_back(recon_u8[i], p)
            save_image(pasted, d / "pasted.png", force=force)
            settings = {"config": dataclasses.asdict(config), "preset": preset, "network": network,
                        "photo": str(p.path), "aligned": align, "face_index": face_index}
            save_latent(d / "latent.npz", result.ws[i:i + 1],
                        {k: v[i:i + 1] for k, v in result.noise.items()}, model=network,
                        transform=p.aligned.transform, settings=settings, force=True)
            m = {"photo": str(p.path), **image_metrics(recon[i:i + 1], targets[i:i + 1], lpips_model, loss_res),
                 **identity_metrics(p.aligned.image, recon_u8[i]),
                 "best_step": result.best_step[i], "steps": result.steps_run,
                 "seconds": seconds / len(chunk), "batch_seconds": seconds, "batch_size": len(chunk),
                 "interrupted": result.interrupted, "space": config.space}
            (d / "metrics.json").write_text(json.dumps(m, indent=2) + "\n")
            if save_video and frames[i]:
                _write_video(frames[i], d / "progress.mp4")
            all_metrics.append(m)
        if result.interrupted:
            break
    return all_metrics


def _refuse(paths: list[Path], force: bool) -> None:
    if force:
        return
    existing = [p for p in paths if p.exists()]
    if existing:
        raise LatentlabError(f"{existing[0]} already exists; use --force to overwrite or choose another --outdir")


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
