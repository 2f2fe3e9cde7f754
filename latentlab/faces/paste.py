"""Paste an aligned (generated or edited) face back into the original photo.

Steps: the aligned image is warped back with the inverse of the alignment transform (Lanczos-4,
area-reduced first when the face is smaller in the photo than in the aligned frame); a feathered
face mask (landmark hull extended over the forehead, eroded, Gaussian-blurred; see
:mod:`latentlab.faces.masks`) is warped the same way; the warped face's colours are matched to
the photo inside the face region (Reinhard-style: per-channel mean and standard deviation in
CIE L*a*b*, std ratio limited to [0.5, 2]); then ``out = photo * (1 - m) + face * m``.

Colour matching removes the small colour/contrast drift of GAN reconstructions, which would
otherwise show as a seam at the feathered edge. It also cancels deliberate global colour edits
of the whole face (e.g. a tan); pass ``color_transfer=False`` to keep those.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from ..errors import LatentlabError
from .align import AlignedFace, FaceTransform, warp_affine
from .masks import default_aligned_mask, face_mask


def _as_uint8_rgb(image: Any, what: str) -> np.ndarray:
    try:
        import torch

        if isinstance(image, torch.Tensor):
            from ..imageio import tensor_to_image

            image = tensor_to_image(image)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise LatentlabError(f"{what}: expected uint8 RGB [H, W, 3], got {arr.dtype} {arr.shape}")
    return np.ascontiguousarray(arr)


def _weighted_stats(x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ws = w.sum()
    mean = (x * w[..., None]).sum((0, 1)) / ws
    var = (((x - mean) ** 2) * w[..., None]).sum((0, 1)) / ws
    return mean, np.sqrt(np.maximum(var, 1e-6))


def match_colors(face: np.ndarray, photo: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Shift ``face`` (uint8 RGB ``[H, W, 3]``) so its L*a*b* mean/std under ``weight``
    (float ``[H, W]``) equal those of ``photo``. Returns uint8 RGB."""
    if weight.sum() < 16:
        return face
    f = cv2.cvtColor(face.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    p = cv2.cvtColor(photo.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    mf, sf = _weighted_stats(f, weight)
    mp, sp = _weighted_stats(p, weight)
    ratio = np.clip(sp / sf, 0.5, 2.0)
    out = (f - mf) * ratio + mp
    rgb = cv2.cvtColor(out.astype(np.float32), cv2.COLOR_Lab2RGB)
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def aligned_face_mask(transform: FaceTransform, resolution: int | None = None, *,
                      forehead: float = 0.8) -> np.ndarray:
    """The feathered blend mask in the aligned frame, float32 ``[R, R]``: from the landmarks if
    known, else :func:`~latentlab.faces.masks.default_aligned_mask`."""
    tf = transform if resolution is None else transform.at_resolution(resolution)
    lm = tf.aligned_landmarks
    if lm is None:
        return default_aligned_mask(tf.resolution)
    return face_mask(lm, (tf.resolution, tf.resolution), forehead=forehead)


def paste_back(original: np.ndarray, generated_aligned: Any,
               face: "AlignedFace | FaceTransform", *, mask: np.ndarray | None = None,
               color_transfer: bool = True, forehead: float = 0.8) -> np.ndarray:
    """Put ``generated_aligned`` (uint8 RGB ``[G, G, 3]`` or a ``[-1, 1]`` tensor, any G) back
    where ``face`` was cut from ``original`` (uint8 RGB ``[H, W, 3]``). Returns uint8 ``[H, W, 3]``.

    mask: optional float/bool ``[G, G]`` blend mask in the aligned frame (default: landmark face
    mask, see :func:`aligned_face_mask`). color_transfer: match colours inside the face region.
    """
    tf = face.transform if isinstance(face, AlignedFace) else face
    if not isinstance(tf, FaceTransform):
        raise LatentlabError("paste_back needs an AlignedFace or FaceTransform")
    photo = _as_uint8_rgb(original, "original")
    gen = _as_uint8_rgb(generated_aligned, "generated image")
    if tuple(photo.shape[:2]) != tuple(tf.original_size):
        raise LatentlabError(f"original is {photo.shape[1]}x{photo.shape[0]} px but the face was "
                             f"aligned from a {tf.original_size[1]}x{tf.original_size[0]} image")
    g = gen.shape[0]
    if gen.shape[1] != g:
        raise LatentlabError(f"generated image must be square, got {gen.shape[1]}x{g}")
    tfg = tf.at_resolution(g) if g != tf.resolution else tf
    if mask is None:
        m_aligned = aligned_face_mask(tfg, forehead=forehead)
    else:
        m_aligned = np.asarray(mask, dtype=np.float32)
        if m_aligned.shape != (g, g):
            raise LatentlabError(f"mask must be [{g}, {g}] like the generated image, "
                                 f"got {m_aligned.shape}")

    # Only the part of the photo under the crop square changes.
    h, w = photo.shape[:2]
    q = tfg.quad
    x0, y0 = (int(np.clip(np.floor(q[:, i].min()) - 1, 0, s)) for i, s in ((0, w), (1, h)))
    x1, y1 = (int(np.clip(np.ceil(q[:, i].max()) + 2, 0, s)) for i, s in ((0, w), (1, h)))
    out = photo.copy()
    if x1 <= x0 or y1 <= y0:
        return out
    region_to_aligned = tfg.inverse @ np.array([[1.0, 0, x0], [0, 1.0, y0], [0, 0, 1.0]])
    size = (y1 - y0, x1 - x0)
    face_px = warp_affine(gen, region_to_aligned, size, interpolation=cv2.INTER_LANCZOS4,
                          border=cv2.BORDER_REPLICATE)
    alpha = warp_affine(m_aligned, region_to_aligned, size, interpolation=cv2.INTER_LINEAR,
                        border=cv2.BORDER_CONSTANT)
    alpha = np.clip(alpha.reshape(size), 0.0, 1.0)
    region = photo[y0:y1, x0:x1]
    if color_transfer:
        face_px = match_colors(face_px, region, (alpha > 0.5).astype(np.float32))
    a = alpha[..., None]
    blended = region.astype(np.float32) * (1.0 - a) + face_px.astype(np.float32) * a
    out[y0:y1, x0:x1] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return out


__all__ = ["paste_back", "aligned_face_mask", "match_colors"]
