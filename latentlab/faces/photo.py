"""A photo and its aligned face: what inversion takes and what results are pasted back into."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
import numpy as np

from ..errors import LatentlabError
from .align import AlignedFace, FaceTransform, align_face, as_aligned, fade_border, warp_affine


@dataclass(frozen=True, eq=False)
class Photo:
    """A photo (``original``: uint8 [H, W, 3]), its aligned face (``face``: the crop uint8
    [R, R, 3] and the :class:`~latentlab.faces.FaceTransform` back into the photo), where it came
    from (``path``, None for pixels) and its short ``name`` (for output files)."""

    original: np.ndarray
    face: AlignedFace
    path: Path | None = None
    name: str = "photo"

    @property
    def aligned(self) -> np.ndarray:
        """The aligned crop, uint8 [R, R, 3]."""
        return self.face.image

    @property
    def transform(self) -> FaceTransform:
        return self.face.transform

    @property
    def resolution(self) -> int:
        return self.face.resolution


def load_photo(photo: "str | os.PathLike | np.ndarray | Photo", resolution: int, *, align: bool = True,
               face_index: int = 0, name: str | None = None) -> Photo:
    """A photo file (any format :func:`latentlab.imageio.load_image` reads) or uint8 pixels
    [H, W, 3], with its ``face_index``-th largest face FFHQ-aligned to ``resolution`` px (or, with
    ``align=False``, the whole image resized). A :class:`Photo` of another resolution is aligned
    again from its pixels. One-line LatentlabError when it cannot be read or holds no face."""
    from ..imageio import load_image

    if isinstance(photo, Photo):
        if photo.resolution == resolution:
            return photo
        path, img, name = photo.path, photo.original, name or photo.name
    elif isinstance(photo, np.ndarray):
        path, img = None, photo
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise LatentlabError(f"a photo must be uint8 [H, W, 3] pixels, got {img.dtype} {list(img.shape)}")
    else:
        path = Path(photo)
        img = load_image(path)
    name = name or (path.stem if path is not None else "photo")
    source = str(path) if path is not None else name
    face = (align_face(img, resolution, face_index=face_index, source=source) if align
            else as_aligned(img, resolution, source=source))
    return Photo(img, face, path, name)


def photo_for_transform(photo: "str | os.PathLike", transform: FaceTransform, resolution: int, *,
                        what: str = "the latent") -> Photo:
    """The original photo of a latent that records ``transform``: read from ``photo``, checked to
    have the size it was aligned from, and its aligned crop made again at ``resolution`` px."""
    from ..imageio import load_image

    path = Path(photo)
    img = load_image(path)
    if tuple(img.shape[:2]) != tuple(transform.original_size):
        h, w = transform.original_size
        raise LatentlabError(f"--photo {path}: is {img.shape[1]}x{img.shape[0]} px but {what} was aligned from a "
                             f"{w}x{h} photo (not its original)")
    tf = transform.at_resolution(resolution)
    out = warp_affine(img, tf.matrix, (resolution, resolution))
    out = fade_border(np.ascontiguousarray(out.reshape(resolution, resolution, -1)[:, :, :3]), tf.matrix,
                      img.shape[:2])
    return Photo(img, AlignedFace(out, tf, str(path)), path, path.stem)


__all__ = ["Photo", "load_photo", "photo_for_transform"]
