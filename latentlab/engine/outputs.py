"""What a folder run writes per photo, and which files a run takes as photos.

Per photo, in ``outdir/<stem>/``:

* ``aligned.png``: the aligned photo at the generator's resolution;
* ``reconstruction.png``: the latent drawn at full resolution (with its tuned generator when tuned);
* ``compare.png``: aligned | reconstruction;
* ``pasted.png``: the reconstruction pasted back into the original photo (original size);
* ``latent.npz`` (and ``latent.pti.safetensors`` when tuned): the :class:`~latentlab.latent.Latent`;
* ``metrics.json``: the inversion's metrics (:func:`latentlab.inversion.invert`) and the photo path;
* ``progress.mp4`` with ``save_video``: the optimisation, one frame per 1 % of the steps.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import LatentlabError
from ..latent import DELTA_SUFFIX, Latent, render, save_latent
from ..models.base import Generator

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}
OUTPUT_NAMES = ("aligned.png", "reconstruction.png", "compare.png", "pasted.png", "latent.npz", "metrics.json")


def output_names(*, tuned: bool, save_video: bool) -> list[str]:
    """The files a photo's folder holds when it is done."""
    return [*OUTPUT_NAMES, *(["latent" + DELTA_SUFFIX] if tuned else []), *(["progress.mp4"] if save_video else [])]


def collect_photos(paths: Sequence["str | Path"]) -> list[Path]:
    """Expand folders into their image files (sorted; hidden files such as macOS ``._x.jpg`` are
    left out); keep files as given. One-line errors for a missing path, an empty folder, or two
    photos whose outputs would share a folder name."""
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


def write_photo_outputs(folder: Path, latent: Latent, G: Generator, *,
                        frames: Sequence[np.ndarray] = ()) -> dict[str, Any]:
    """Write one inverted photo's files (module docstring) into ``folder`` (which must not hold
    them yet); returns its metrics row (``photo`` and :attr:`Latent.metrics`)."""
    from ..faces import paste_back
    from ..figures import side_by_side
    from ..imageio import save_image, save_video, write_bytes_atomic

    photo = latent.photo
    if photo is None:
        raise LatentlabError("internal: an inverted latent carries its photo")
    recon = render(G, latent)
    folder.mkdir(parents=True, exist_ok=True)
    save_image(photo.aligned, folder / "aligned.png")
    save_image(recon, folder / "reconstruction.png")
    save_image(side_by_side([photo.aligned, recon], height=512), folder / "compare.png")
    if latent.settings.get("aligned", True):
        pasted = paste_back(photo.original, recon, photo.face)
    else:
        import cv2

        h, w = photo.original.shape[:2]
        pasted = cv2.resize(recon, (w, h), interpolation=cv2.INTER_AREA)
    save_image(pasted, folder / "pasted.png")
    save_latent(latent, folder / "latent.npz")
    row = {"photo": str(photo.path) if photo.path is not None else photo.name, **latent.metrics}
    write_bytes_atomic(folder / "metrics.json", json.dumps(row, indent=2, default=str) + "\n")
    if frames:
        save_video(list(frames), folder / "progress.mp4", fps=20)
    return row


class FrameCollector:
    """A progress callback that keeps 256 px frames of a batch's projection for ``progress.mp4``:
    one per 1 % of the steps (``frames[i]``: photo i's), passing every event on to ``then``."""

    def __init__(self, batch: int, num_steps: int, then: Any = None) -> None:
        self.frames: list[list[np.ndarray]] = [[] for _ in range(batch)]
        self.every = max(1, num_steps // 100)
        self.then = then

    def __call__(self, ev: Any) -> None:
        if ev.stage == "project" and ev.image is not None and (ev.step - 1) % self.every == 0:
            from ..imageio import tensor_to_images
            from ..inversion.project import resize_to

            small = resize_to(ev.image.float(), 256).clamp(-1, 1)
            for i, im in enumerate(tensor_to_images(small)):
                self.frames[i].append(im)
        if self.then is not None:
            self.then(ev)


__all__ = ["FrameCollector", "IMAGE_SUFFIXES", "OUTPUT_NAMES", "collect_photos", "output_names", "write_photo_outputs"]
