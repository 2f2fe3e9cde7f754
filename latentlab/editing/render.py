"""Render edited latents and write the editing commands' outputs.

Each result ``NAME`` is written as ``NAME.png`` (the aligned crop at the generator's resolution),
``NAME_pasted.png`` (pasted back into the original photo at its size, when the input latent has an
alignment transform and its photo is available) and ``NAME.npz`` (the edited latent in the
``latentlab project`` format: ws, noise maps, transform, settings with the photo path; every
editing command accepts it, so edits chain).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import LatentlabError
from ..models.base import Generator


@torch.no_grad()
def render(G: Generator, ws: torch.Tensor, noise: dict[str, torch.Tensor] | None = None,
           batch: int = 4) -> list[np.ndarray]:
    """ws [N, num_ws, w_dim] -> N uint8 images [R, R, 3], rendered with ``noise`` (name ->
    [1, 1, H, W] maps, e.g. a projection's) in place of the constant noise buffers when given."""
    from ..imageio import tensor_to_images
    from ..inversion import override_noise

    G.check_ws(ws)
    buffers = G.noise_buffers()
    use = {k: v.to(G.device, torch.float32) for k, v in (noise or {}).items() if k in buffers}
    out: list[np.ndarray] = []
    with override_noise(G, use):
        for i in range(0, ws.shape[0], batch):
            img = G.synthesis(ws[i:i + batch].to(G.device, torch.float32), noise_mode="const")
            out.extend(tensor_to_images(img.clamp(-1, 1)))
    return out


def resize(image: np.ndarray, size: int) -> np.ndarray:
    """Square uint8 image -> size x size (area when shrinking)."""
    import cv2

    if image.shape[0] == size and image.shape[1] == size:
        return image
    interp = cv2.INTER_AREA if image.shape[0] > size else cv2.INTER_LANCZOS4
    return cv2.resize(image, (size, size), interpolation=interp)


def strip(images: Sequence[np.ndarray], size: int = 256, gap: int = 4) -> np.ndarray:
    """Images side by side at size x size with white gaps: uint8 [size, n*size + gaps, 3]."""
    tiles = [resize(im, size) for im in images]
    return grid([tiles], gap=gap)


def grid(rows: Sequence[Sequence[np.ndarray | None]], gap: int = 4, fill: int = 255) -> np.ndarray:
    """Tile equally sized uint8 [S, S, 3] images (None = blank cell) into one image."""
    cells = [c for r in rows for c in r if c is not None]
    if not cells:
        raise LatentlabError("nothing to tile")
    s = cells[0].shape[0]
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    out = np.full((n_rows * s + (n_rows - 1) * gap, n_cols * s + (n_cols - 1) * gap, 3), fill, np.uint8)
    for i, r in enumerate(rows):
        for j, c in enumerate(r):
            if c is not None:
                out[i * (s + gap):i * (s + gap) + s, j * (s + gap):j * (s + gap) + s] = c
    return out


def output_paths(outdir: Path, name: str, *, pasted: bool) -> list[Path]:
    names = [f"{name}.png", f"{name}.npz"] + ([f"{name}_pasted.png"] if pasted else [])
    return [Path(outdir) / n for n in names]


def refuse(paths: Sequence["str | Path"], force: bool) -> None:
    """One-line LatentlabError naming the first existing output (a dangling link counts) unless
    ``force``: the overwrite guard of every command and of the API, checked before any work."""
    if force:
        return
    existing = [Path(p) for p in paths if Path(p).exists() or Path(p).is_symlink()]
    if existing:
        more = f" (and {len(existing) - 1} more output files)" if len(existing) > 1 else ""
        raise LatentlabError(f"{existing[0]}{more} already exists; use --force to overwrite or choose "
                             "another output")


def write_result(outdir: "str | Path", name: str, result: Any, *, force: bool = False,
                 compare: Sequence[np.ndarray] | None = None) -> dict[str, Any]:
    """Write a :class:`latentlab.api.Projection` as ``NAME.png`` (its ``.image``), ``NAME.npz``
    (:meth:`~latentlab.api.Projection.save`: the latent, its settings and operations, and its
    pivotal tuning as ``NAME.pti.safetensors`` when it carries one) and, when it can be pasted,
    ``NAME_pasted.png`` (:meth:`~latentlab.api.Projection.paste`); with ``compare`` (uint8 images)
    also ``NAME_compare.png``: those images and the result side by side (:func:`strip`). Every path
    is checked before anything is written; nothing is overwritten without ``force``.

    Returns {"image": uint8 [R, R, 3], "pasted": uint8 [H, W, 3] or None, "paths": [...]}.
    """
    from ..imageio import save_image
    from ..inversion.pti import delta_path_for

    outdir = Path(outdir)
    paths = output_paths(outdir, name, pasted=result.can_paste)
    extra = [delta_path_for(paths[1])] if result.resolved.delta is not None else []
    compare_path = outdir / f"{name}_compare.png"
    refuse(paths + extra + ([compare_path] if compare is not None else []), force)
    img = result.image.array
    save_image(img, paths[0], force=force)
    result.save(paths[1], force=force)
    pasted = None
    if result.can_paste:
        pasted = result.paste().array
        save_image(pasted, paths[2], force=force)
    if compare is not None:
        save_image(strip([*compare, img]), compare_path, force=force)
        paths.append(compare_path)
    return {"image": img, "pasted": pasted, "paths": paths}


def sweep_paths(stem: "str | Path", *, pasted: bool) -> list[Path]:
    """[strip .png, video .mp4, (pasted strip _pasted.png)] of a sweep written by :func:`write_sweep`."""
    stem = Path(stem)
    return [stem.with_suffix(".png"), stem.with_suffix(".mp4")] + ([stem.parent / f"{stem.name}_pasted.png"]
                                                                  if pasted else [])


def write_sweep(stem: "str | Path", frames: Any, *, force: bool = False) -> list[Path]:
    """Write :class:`latentlab.api.Frames` of a sweep: ``STEM.png`` (the aligned frames side by
    side, 256 px tiles), ``STEM.mp4`` (there and back, 512 px, 4 frames per second) and, when the
    frames can be pasted, ``STEM_pasted.png`` (each frame pasted into the photo, 384 px high, side
    by side). Returns the paths written."""
    import cv2

    from ..imageio import save_image

    can_paste = all(p.can_paste for p in frames.projections)
    paths = sweep_paths(stem, pasted=can_paste)
    refuse(paths, force)
    images = [f.array for f in frames]
    save_image(strip(images), paths[0], force=force)
    save_video([strip([f], size=512) for f in images + images[-2:0:-1]], paths[1], fps=4, force=force)
    if can_paste:
        h = 384
        small = [cv2.resize(p, (max(1, round(p.shape[1] * h / p.shape[0])), h), interpolation=cv2.INTER_AREA)
                 for p in (f.array for f in frames.paste())]
        save_image(np.concatenate(small, axis=1), paths[2], force=force)
    return paths


def identity(a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """dlib face-identity comparison of two uint8 face images: cosine, distance and the verdict
    (distance < 0.6); all None when either holds no detectable face."""
    from ..faces import identity_similarity

    try:
        sim = identity_similarity(a, b)
    except LatentlabError:
        return {"cosine": None, "distance": None, "same_person": None}
    return {"cosine": sim.cosine, "distance": sim.distance, "same_person": sim.same_person}


def write_swap(outdir: "str | Path", face: Any, onto: Any, result: Any, *, force: bool = False) -> dict[str, Any]:
    """Write a face swap (:func:`latentlab.api.swap` of ``face`` onto ``onto``) as
    ``<face>_on_<onto>.png/.npz/_pasted.png`` (:func:`write_result`) and ``..._metrics.json``: the
    swap's settings and the identity of the result compared with each input's aligned photo (or its
    rendering). Returns the metrics plus "image", "pasted" and "name"."""
    import json

    from ..imageio import write_bytes_atomic

    name = f"{face.name}_on_{onto.name}"
    metrics_path = Path(outdir) / f"{name}_metrics.json"
    refuse([metrics_path], force)
    out = write_result(outdir, name, result, force=force)
    info: dict[str, Any] = {"a": str(face.resolved.source), "b": str(onto.resolved.source),
                            **{k: v for k, v in result.history[-1].items() if k not in ("op", "face", "onto")}}
    # each input drawn by its own generator (tuned when it carries a tuning); the result by B's
    info["identity_vs_a"] = identity(face.target.array if face.target is not None else face.array, out["image"])
    info["identity_vs_b"] = identity(onto.target.array if onto.target is not None else onto.array, out["image"])
    write_bytes_atomic(metrics_path, json.dumps(info, indent=2) + "\n", force=force)
    return {**info, "image": out["image"], "pasted": out["pasted"], "name": name}


def write_video(frames: Sequence[np.ndarray], path: "str | Path", fps: float = 12, force: bool = False) -> Path:
    """Encode uint8 frames [H, W, 3] as MP4 (H.264) or GIF at ``path``, by its extension (the bare
    encoder; outputs go through :func:`save_video`, which makes the write atomic)."""
    import imageio.v2 as iio

    path = Path(path)
    refuse([path], force)
    ext = path.suffix.lower()
    if ext not in (".mp4", ".gif"):
        raise LatentlabError(f"{path}: video output must end in .mp4 or .gif")
    path.parent.mkdir(parents=True, exist_ok=True)
    if ext == ".gif":
        iio.mimsave(str(path), list(frames), duration=1.0 / fps, loop=0)
    else:
        h, w = frames[0].shape[:2]
        with iio.get_writer(str(path), fps=fps, codec="libx264", quality=8, macro_block_size=1) as wr:
            for f in frames:
                wr.append_data(np.ascontiguousarray(f[: h - h % 2, : w - w % 2]))
    return path


def save_video(frames: Sequence[np.ndarray], path: "str | Path", fps: float = 12, force: bool = False) -> Path:
    """Write a video with :func:`write_video`: encoded in a private temporary folder, then put in
    place with :func:`latentlab.imageio.write_bytes_atomic` (temporary name and rename): an
    interrupted encode (Ctrl-C, a full disk) leaves no truncated GIF/MP4 under ``path`` to block the
    rerun, and a symbolic link planted at ``path`` is replaced, never written through. Refuses an
    existing ``path`` unless ``force``."""
    import tempfile

    from ..imageio import write_bytes_atomic

    path = Path(path)
    if path.suffix.lower() not in (".mp4", ".gif"):
        raise LatentlabError(f"{path}: video output must end in .mp4 or .gif")
    refuse([path], force)
    if not len(frames):
        raise LatentlabError(f"{path}: no frames to write")
    with tempfile.TemporaryDirectory(prefix="latentlab-video-") as d:
        tmp = Path(d) / f"video{path.suffix.lower()}"
        write_video(frames, tmp, fps=fps)
        write_bytes_atomic(path, tmp.read_bytes(), force=force)
    return path


__all__ = ["grid", "identity", "output_paths", "refuse", "render", "resize", "save_video", "strip", "sweep_paths",
           "write_result", "write_swap", "write_sweep", "write_video"]
