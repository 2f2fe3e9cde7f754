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
from .inputs import ResolvedLatent


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


def refuse(paths: Sequence[Path], force: bool) -> None:
    """One-line error naming the first existing output unless ``force``."""
    if force:
        return
    existing = [p for p in paths if Path(p).exists() or Path(p).is_symlink()]
    if existing:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise LatentlabError(f"{existing[0]}{more} already exists; use --force to overwrite or choose "
                             "another --outdir")


def write_result(outdir: Path, name: str, G: Generator, ws: torch.Tensor, base: ResolvedLatent, *,
                 network: str, noise: dict[str, torch.Tensor] | None = None, force: bool = False,
                 settings: dict[str, Any] | None = None, image: np.ndarray | None = None) -> dict[str, Any]:
    """Render ws [1, num_ws, w_dim] (with ``noise``, default the base latent's) and write
    ``NAME.png``, ``NAME.npz`` and, when ``base`` can be pasted, ``NAME_pasted.png``.

    Returns {"image": uint8 aligned result, "pasted": uint8 or None, "paths": [...]}.
    """
    from ..faces import paste_back
    from ..imageio import save_image
    from ..inversion.runner import save_latent

    outdir = Path(outdir)
    paths = output_paths(outdir, name, pasted=base.can_paste)
    refuse(paths, force)
    noise = base.noise if noise is None else noise
    img = render(G, ws, noise)[0] if image is None else image
    outdir.mkdir(parents=True, exist_ok=True)
    save_image(img, paths[0], force=force)
    meta = {**(base.settings or {}), "network": network, **(settings or {})}
    if base.photo is not None:
        meta["photo"] = str(Path(base.photo).resolve())
    save_latent(paths[1], ws[:1], noise, model=network, transform=base.transform, settings=meta, force=force)
    pasted = None
    if base.can_paste:
        pasted = paste_back(base.original, img, base.transform)
        save_image(pasted, paths[2], force=force)
    return {"image": img, "pasted": pasted, "paths": paths}


def write_video(frames: Sequence[np.ndarray], path: Path, fps: float = 12, force: bool = False) -> Path:
    """Write uint8 frames as MP4 (H.264) or GIF, by ``path``'s extension."""
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
        even = [f[: h - h % 2, : w - w % 2] for f in frames]
        with iio.get_writer(str(path), fps=fps, codec="libx264", quality=8, macro_block_size=1) as wr:
            for f in even:
                wr.append_data(np.ascontiguousarray(f))
    return path


__all__ = ["grid", "output_paths", "refuse", "render", "resize", "strip", "write_result", "write_video"]
