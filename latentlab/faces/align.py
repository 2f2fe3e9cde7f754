"""FFHQ-style face alignment, with the transform kept so results can be pasted back.

The FFHQ dataset recipe (Karras et al. 2019), from its published facts:

* from dlib's 68 landmarks take the two eye centres (means of points 36-41 and 42-47) and the two
  mouth corners (48 and 54);
* ``eye_to_eye`` = right eye - left eye (image left/right), ``eye_to_mouth`` = mouth midpoint -
  eye midpoint;
* the crop is an oriented square: its half-side vector ``x = eye_to_eye - rot90(eye_to_mouth)``
  (normalised, then scaled to ``max(|eye_to_eye| * 2.0, |eye_to_mouth| * 1.8)``), ``y`` is ``x``
  turned 90 degrees, and its centre is ``eye_avg + 0.1 * eye_to_mouth``;
* the square (the "quad") is resampled to the output resolution; parts of it outside the photo
  are filled by mirror-reflecting the photo and fading that fill towards a blur and the photo's
  median colour, so no hard edge appears.

Here that becomes one similarity transform, stored as a 3x3 matrix ``matrix`` that maps
**aligned pixel coordinates to original pixel coordinates** (pixel centres on integers, as dlib and
OpenCV use; the aligned image's outer edges ``-0.5`` and ``R - 0.5`` land on the quad's corners).
Resampling is anti-aliased: when the face is larger than the output, the photo is first reduced
with area averaging (``cv2.INTER_AREA``) to about the output's pixel density, then warped with
Lanczos-4 interpolation.

:func:`as_aligned` is the ``--no-align`` path: the input is already aligned and is only resized.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from ..errors import LatentlabError
from ..imageio import load_image
from .landmarks import detect_landmarks, source_name

# --------------------------------------------------------------------------- geometry


def ffhq_quad(landmarks: np.ndarray) -> np.ndarray:
    """The FFHQ crop square for 68 landmarks: float64 ``[4, 2]`` corners in original pixels,
    ordered top-left, bottom-left, bottom-right, top-right (as the face is seen upright)."""
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (68, 2):
        raise LatentlabError(f"FFHQ alignment needs 68 landmarks [68, 2], got {tuple(lm.shape)}")
    eye_left = lm[36:42].mean(0)
    eye_right = lm[42:48].mean(0)
    eye_avg = 0.5 * (eye_left + eye_right)
    eye_to_eye = eye_right - eye_left
    mouth_avg = 0.5 * (lm[48] + lm[54])
    eye_to_mouth = mouth_avg - eye_avg

    # rot90 of (a, b) in image coordinates (y down) is (-b, a).
    x = eye_to_eye - np.array([-eye_to_mouth[1], eye_to_mouth[0]])
    norm = np.hypot(*x)
    if not np.isfinite(norm) or norm < 1e-6:
        raise LatentlabError("degenerate landmarks: eyes and mouth do not define a face")
    x = x / norm * max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.array([-x[1], x[0]])
    c = eye_avg + eye_to_mouth * 0.1
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y])


def quad_to_matrix(quad: np.ndarray, resolution: int) -> np.ndarray:
    """3x3 affine mapping aligned pixel coords (``resolution`` px square) to original coords."""
    q = np.asarray(quad, dtype=np.float64)
    ex = (q[3] - q[0]) / resolution  # original-px step per aligned px along x
    ey = (q[1] - q[0]) / resolution  # ... along y
    origin = q[0] + 0.5 * (ex + ey)  # centre of aligned pixel (0, 0)
    return np.array([[ex[0], ey[0], origin[0]],
                     [ex[1], ey[1], origin[1]],
                     [0.0, 0.0, 1.0]])


def apply_matrix(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map ``[..., 2]`` points with a 3x3 (projective or affine) matrix."""
    pts = np.asarray(points, dtype=np.float64)
    m = np.asarray(matrix, dtype=np.float64)
    num = pts @ m[:2, :2].T + m[:2, 2]
    if np.array_equal(m[2], [0.0, 0.0, 1.0]):
        return num
    return num / (pts @ m[2, :2] + m[2, 2])[..., None]


def _resize_matrix(src_hw: tuple[int, int], dst_hw: tuple[int, int]) -> np.ndarray:
    """3x3 mapping dst pixel coords to src pixel coords for a plain resize (``cv2.resize``)."""
    sy, sx = src_hw[0] / dst_hw[0], src_hw[1] / dst_hw[1]
    return np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5], [0.0, 0.0, 1.0]])


def warp_affine(src: np.ndarray, matrix: np.ndarray, out_hw: tuple[int, int], *,
                interpolation: int = cv2.INTER_LANCZOS4,
                border: int = cv2.BORDER_REFLECT) -> np.ndarray:
    """Resample ``src`` [H, W, (C)] into an ``out_hw`` image, where ``matrix`` (3x3 affine) maps
    output pixel coords to ``src`` pixel coords. Anti-aliased: if one output pixel covers more
    than one source pixel, the needed part of ``src`` is first area-reduced to about the output
    density. ``border`` is the OpenCV border mode for samples outside ``src``."""
    m = np.asarray(matrix, dtype=np.float64)
    oh, ow = out_hw
    sh, sw = src.shape[:2]
    scale = float(np.sqrt(abs(np.linalg.det(m[:2, :2]))))  # src px per output px
    if scale > 1.0 + 1e-6:
        # Bounding box (in src) of the output rectangle, with a margin for the kernel.
        corners = apply_matrix(m, np.array([[-0.5, -0.5], [ow - 0.5, -0.5],
                                            [-0.5, oh - 0.5], [ow - 0.5, oh - 0.5]]))
        margin = 4.0 * scale + 2.0
        x0 = int(np.clip(np.floor(corners[:, 0].min() - margin), 0, sw - 1))
        y0 = int(np.clip(np.floor(corners[:, 1].min() - margin), 0, sh - 1))
        x1 = int(np.clip(np.ceil(corners[:, 0].max() + margin), x0 + 1, sw))
        y1 = int(np.clip(np.ceil(corners[:, 1].max() + margin), y0 + 1, sh))
        crop = src[y0:y1, x0:x1]
        ch, cw = crop.shape[:2]
        nh, nw = max(1, round(ch / scale)), max(1, round(cw / scale))
        small = cv2.resize(crop, (nw, nh), interpolation=cv2.INTER_AREA)
        to_src = np.array([[1.0, 0.0, x0], [0.0, 1.0, y0], [0.0, 0.0, 1.0]]) @ \
            _resize_matrix((ch, cw), (nh, nw))
        m = np.linalg.inv(to_src) @ m
        src = small
    out = cv2.warpAffine(np.ascontiguousarray(src), m[:2], (ow, oh),
                         flags=interpolation | cv2.WARP_INVERSE_MAP, borderMode=border)
    if src.ndim == 3 and out.ndim == 2:
        out = out[..., None]
    return out


# --------------------------------------------------------------------------- result


@dataclass(frozen=True)
class FaceTransform:
    """Where an aligned face came from.

    matrix: float64 ``[3, 3]``, aligned pixel ``(x, y)`` -> original pixel ``(x, y)``;
    resolution: aligned image side (px); original_size: ``(height, width)`` of the original;
    quad: float64 ``[4, 2]`` the crop square in original pixels (TL, BL, BR, TR);
    landmarks: float64 ``[68, 2]`` in original pixels, or None when unknown.
    """

    matrix: np.ndarray
    resolution: int
    original_size: tuple[int, int]
    quad: np.ndarray
    landmarks: np.ndarray | None = None

    @property
    def inverse(self) -> np.ndarray:
        """3x3 original pixel -> aligned pixel."""
        return np.linalg.inv(self.matrix)

    def to_original(self, points: np.ndarray) -> np.ndarray:
        """Aligned ``[..., 2]`` points -> original pixel coordinates."""
        return apply_matrix(self.matrix, points)

    def to_aligned(self, points: np.ndarray) -> np.ndarray:
        """Original ``[..., 2]`` points -> aligned pixel coordinates."""
        return apply_matrix(self.inverse, points)

    @property
    def aligned_landmarks(self) -> np.ndarray | None:
        """The landmarks in aligned pixel coordinates ``[68, 2]`` (None if unknown)."""
        return None if self.landmarks is None else self.to_aligned(self.landmarks)

    @property
    def scale(self) -> float:
        """Original pixels per aligned pixel."""
        return float(np.sqrt(abs(np.linalg.det(self.matrix[:2, :2]))))

    def at_resolution(self, resolution: int) -> "FaceTransform":
        """The same crop for an aligned image of another side (e.g. the generator's 1024)."""
        m = self.matrix @ _resize_matrix((self.resolution, self.resolution), (resolution, resolution))
        return FaceTransform(m, int(resolution), self.original_size, self.quad, self.landmarks)

    def to_arrays(self, prefix: str = "align_") -> dict[str, np.ndarray]:
        """Plain numpy arrays (for ``np.savez``); :meth:`from_arrays` reads them back."""
        d = {
            f"{prefix}matrix": np.asarray(self.matrix, np.float64),
            f"{prefix}resolution": np.array(self.resolution, np.int64),
            f"{prefix}original_size": np.array(self.original_size, np.int64),
            f"{prefix}quad": np.asarray(self.quad, np.float64),
        }
        if self.landmarks is not None:
            d[f"{prefix}landmarks"] = np.asarray(self.landmarks, np.float64)
        return d

    @classmethod
    def from_arrays(cls, arrays: Any, prefix: str = "align_") -> "FaceTransform":
        """Inverse of :meth:`to_arrays`; ``arrays`` is a dict or an ``np.load`` result."""
        try:
            matrix = np.asarray(arrays[f"{prefix}matrix"], np.float64)
            resolution = int(arrays[f"{prefix}resolution"])
            size = tuple(int(v) for v in np.asarray(arrays[f"{prefix}original_size"]))
            quad = np.asarray(arrays[f"{prefix}quad"], np.float64)
        except KeyError as e:
            raise LatentlabError(f"alignment data is missing {e.args[0]!r}") from None
        keys = arrays.files if hasattr(arrays, "files") else arrays.keys()
        lm = arrays[f"{prefix}landmarks"] if f"{prefix}landmarks" in keys else None
        if matrix.shape != (3, 3) or quad.shape != (4, 2) or len(size) != 2 or resolution <= 0:
            raise LatentlabError("alignment data has wrong shapes (matrix [3,3], quad [4,2], "
                                 "original_size [2])")
        return cls(matrix, resolution, (size[0], size[1]), quad,
                   None if lm is None else np.asarray(lm, np.float64))


@dataclass(frozen=True)
class AlignedFace:
    """An aligned face crop and how to map it back.

    image: uint8 ``[R, R, 3]``; transform: :class:`FaceTransform`; source: name for messages.
    """

    image: np.ndarray
    transform: FaceTransform
    source: str = field(default="image", compare=False)

    @property
    def resolution(self) -> int:
        return self.transform.resolution

    @property
    def matrix(self) -> np.ndarray:
        """3x3 aligned pixel -> original pixel."""
        return self.transform.matrix

    @property
    def quad(self) -> np.ndarray:
        return self.transform.quad

    @property
    def landmarks(self) -> np.ndarray | None:
        """68 landmarks in original pixels."""
        return self.transform.landmarks

    @property
    def aligned_landmarks(self) -> np.ndarray | None:
        """68 landmarks in aligned pixels."""
        return self.transform.aligned_landmarks

    @property
    def original_size(self) -> tuple[int, int]:
        """(height, width) of the original image."""
        return self.transform.original_size


# --------------------------------------------------------------------------- alignment


def load_input(image: Any) -> tuple[np.ndarray, str]:
    name = source_name(image)
    if isinstance(image, (str, os.PathLike)):
        return load_image(image), name
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise LatentlabError(f"expected uint8 RGB [H, W, 3] pixels, got {arr.dtype} {arr.shape}")
    return np.ascontiguousarray(arr), name  # dlib refuses strided views (e.g. a permuted tensor)


def _check_resolution(resolution: int) -> int:
    if not isinstance(resolution, (int, np.integer)) or resolution < 8:
        raise LatentlabError(f"alignment resolution must be an integer >= 8, got {resolution!r}")
    return int(resolution)


def fade_border(out: np.ndarray, matrix: np.ndarray, original_hw: tuple[int, int]) -> np.ndarray:
    """Blend the mirrored fill outside the original photo towards a blur and the median colour,
    growing with the distance from the photo's edge (full effect at 10% of the side)."""
    r = out.shape[0]
    h, w = original_hw
    ys, xs = np.mgrid[0:r, 0:r].astype(np.float64)
    pts = apply_matrix(matrix, np.stack([xs, ys], -1))
    dx = np.maximum(np.maximum(-0.5 - pts[..., 0], pts[..., 0] - (w - 0.5)), 0.0)
    dy = np.maximum(np.maximum(-0.5 - pts[..., 1], pts[..., 1] - (h - 0.5)), 0.0)
    dist = np.maximum(dx, dy) / float(np.sqrt(abs(np.linalg.det(matrix[:2, :2]))))  # aligned px
    if not np.any(dist > 0):
        return out
    t = np.clip(dist / (0.1 * r), 0.0, 1.0)[..., None].astype(np.float32)
    img = out.astype(np.float32)
    blurred = cv2.GaussianBlur(img, (0, 0), sigmaX=max(0.02 * r, 0.5))
    inside = dist <= 0
    median = np.median(img[inside], axis=0) if inside.any() else np.median(img.reshape(-1, 3), 0)
    img = img + (blurred - img) * np.clip(3.0 * t, 0.0, 1.0)
    img = img + (median - img) * (0.5 * t)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def align_face(image: "np.ndarray | str | os.PathLike", resolution: int = 1024, *,
               face_index: int = 0, landmarks: np.ndarray | None = None,
               upsample: int | None = None, source: str | None = None) -> AlignedFace:
    """FFHQ-align one face of a photo (path or uint8 RGB ``[H, W, 3]``) to ``resolution`` px.

    face_index: which face, 0 = largest (faces are sorted by detection box area, descending).
    landmarks: ``[68, 2]`` to use instead of detecting. upsample: see
    :func:`~latentlab.faces.landmarks.detect_faces`. source: the name errors and the result
    carry (default: the path, or "image" for pixels). Raises
    :class:`~latentlab.faces.landmarks.NoFaceError` (naming the file) if no face is found.
    """
    resolution = _check_resolution(resolution)
    img, name = load_input(image)
    name = source or name
    if landmarks is None:
        lm = detect_landmarks(img, face_index=face_index, upsample=upsample, source=name).landmarks
    else:
        lm = np.asarray(landmarks, dtype=np.float64)
    quad = ffhq_quad(lm)
    matrix = quad_to_matrix(quad, resolution)
    out = warp_affine(img, matrix, (resolution, resolution))
    out = fade_border(out, matrix, img.shape[:2])
    tf = FaceTransform(matrix, resolution, (img.shape[0], img.shape[1]), quad, lm)
    return AlignedFace(out, tf, name)


def as_aligned(image: "np.ndarray | str | os.PathLike", resolution: int = 1024, *,
               landmarks: np.ndarray | None = None, source: str | None = None) -> AlignedFace:
    """``--no-align``: treat ``image`` as already aligned and only resize it to ``resolution``.

    The transform is the plain resize (identity when the sizes match); the quad is the image's
    outline. ``landmarks`` (``[68, 2]`` in the input's pixels) are stored if given, for masks.
    ``source``: as in :func:`align_face`.
    """
    resolution = _check_resolution(resolution)
    img, name = load_input(image)
    name = source or name
    h, w = img.shape[:2]
    matrix = _resize_matrix((h, w), (resolution, resolution))
    if (h, w) == (resolution, resolution):
        out = img.copy()
    else:
        interp = cv2.INTER_AREA if min(h, w) > resolution else cv2.INTER_LANCZOS4
        out = cv2.resize(img, (resolution, resolution), interpolation=interp)
    quad = np.array([[-0.5, -0.5], [-0.5, h - 0.5], [w - 0.5, h - 0.5], [w - 0.5, -0.5]])
    lm = None if landmarks is None else np.asarray(landmarks, dtype=np.float64)
    return AlignedFace(out, FaceTransform(matrix, resolution, (h, w), quad, lm), name)


__all__ = [
    "AlignedFace",
    "FaceTransform",
    "align_face",
    "as_aligned",
    "ffhq_quad",
    "quad_to_matrix",
    "apply_matrix",
    "warp_affine",
]
