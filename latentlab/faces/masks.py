"""Masks from 68-point landmarks: the face region (for paste-back) and facial parts (for masked
losses). All masks are built in whatever pixel frame the landmarks are given in.

Regions (iBUG 300-W indices): ``jaw`` 0-16, ``brows`` 17-26, ``nose`` 27-35, ``eyes`` 36-47,
``mouth`` 48-67, and ``face``: the convex hull of the jaw line and the brows raised by
``forehead`` times the eye-to-mouth distance, so that it covers the forehead.
"""

from __future__ import annotations

from typing import Iterable

import cv2
import numpy as np

from ..errors import LatentlabError

REGIONS: dict[str, list[tuple[int, int]]] = {
    "jaw": [(0, 17)],
    "brows": [(17, 22), (22, 27)],
    "nose": [(27, 36)],
    "eyes": [(36, 42), (42, 48)],
    "mouth": [(48, 60)],
}
"""Landmark index ranges ``[start, stop)``; each range is filled as its own convex polygon."""


def _check_landmarks(landmarks: np.ndarray) -> np.ndarray:
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (68, 2) or not np.all(np.isfinite(lm)):
        raise LatentlabError(f"masks need finite 68-point landmarks [68, 2], got {lm.shape}")
    return lm


def face_outline(landmarks: np.ndarray, *, forehead: float = 0.8) -> np.ndarray:
    """Points whose convex hull is the face region: jaw (0-16) plus brows (17-26) moved "up"
    (from the mouth towards the eyes) by ``forehead * |eye_to_mouth|``. float64 ``[27, 2]``."""
    lm = _check_landmarks(landmarks)
    eye_avg = lm[36:48].mean(0)
    mouth_avg = 0.5 * (lm[48] + lm[54])
    up = eye_avg - mouth_avg
    brows = lm[17:27] + forehead * up
    return np.concatenate([lm[0:17], brows], 0)


def _fill_hull(mask: np.ndarray, points: np.ndarray) -> None:
    shift = 4  # sub-pixel precision for OpenCV's fill
    pts = np.rint(np.asarray(points) * (1 << shift)).astype(np.int32)
    hull = cv2.convexHull(pts.reshape(-1, 1, 2))
    cv2.fillConvexPoly(mask, hull, 1, lineType=cv2.LINE_8, shift=shift)


def region_mask(landmarks: np.ndarray, size_hw: tuple[int, int],
                regions: Iterable[str] = ("face",), *, forehead: float = 0.8) -> np.ndarray:
    """Hard mask bool ``[H, W]``: union of the named regions (see module doc)."""
    lm = _check_landmarks(landmarks)
    h, w = int(size_hw[0]), int(size_hw[1])
    mask = np.zeros((h, w), np.uint8)
    for name in regions:
        if name == "face":
            _fill_hull(mask, face_outline(lm, forehead=forehead))
        elif name in REGIONS:
            for a, b in REGIONS[name]:
                _fill_hull(mask, lm[a:b])
        else:
            raise LatentlabError(f"unknown face region {name!r}; choose from face, "
                                 + ", ".join(REGIONS))
    return mask.astype(bool)


def feather(mask: np.ndarray, *, erode_px: float, blur_px: float) -> np.ndarray:
    """Soft mask float32 ``[H, W]`` in [0, 1]: ``mask`` eroded by ``erode_px`` (elliptical
    kernel) then Gaussian-blurred with sigma ``blur_px``."""
    m = np.asarray(mask).astype(np.uint8)
    k = int(round(erode_px))
    if k > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))
        m = cv2.erode(m, kernel)
    out = m.astype(np.float32)
    if blur_px > 0:
        out = cv2.GaussianBlur(out, (0, 0), sigmaX=float(blur_px))
    return np.clip(out, 0.0, 1.0)


def face_mask(landmarks: np.ndarray, size_hw: tuple[int, int], *, forehead: float = 0.8,
              erode: float = 0.05, blur: float = 0.025) -> np.ndarray:
    """Feathered face-region mask float32 ``[H, W]`` in [0, 1] for blending.

    ``erode`` and ``blur`` (sigma) are fractions of the face size (square root of the face
    region's area), so the mask looks the same at any resolution; with the defaults it is ~1
    well inside the face and falls to ~0 at the region's edge.
    """
    hard = region_mask(landmarks, size_hw, ("face",), forehead=forehead)
    size = float(np.sqrt(max(hard.sum(), 1)))
    return feather(hard, erode_px=erode * size, blur_px=blur * size)


def default_aligned_mask(resolution: int, *, blur: float = 0.025) -> np.ndarray:
    """Feathered ellipse float32 ``[R, R]`` covering the face of an FFHQ-aligned image, for when
    no landmarks are known (centre (0.5, 0.54) R, semi-axes (0.30, 0.38) R)."""
    r = int(resolution)
    m = np.zeros((r, r), np.uint8)
    shift = 4
    centre = (int(round(0.5 * r * 16)), int(round(0.54 * r * 16)))
    axes = (int(round(0.30 * r * 16)), int(round(0.38 * r * 16)))
    cv2.ellipse(m, centre, axes, 0, 0, 360, 1, thickness=-1, lineType=cv2.LINE_8, shift=shift)
    size = float(np.sqrt(max(m.sum(), 1)))
    return feather(m, erode_px=0.05 * size, blur_px=blur * size)


__all__ = ["REGIONS", "face_outline", "region_mask", "feather", "face_mask", "default_aligned_mask"]
