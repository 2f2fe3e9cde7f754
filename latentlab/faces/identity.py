"""Face identity embeddings with dlib's face-recognition ResNet (128-d).

dlib cuts a 150x150 face chip from the image using the face's landmarks (5- or 68-point shape),
and its ResNet maps the chip to a 128-d descriptor. dlib's rule: two faces are the same person
when the **euclidean distance** of their descriptors is below 0.6 (:data:`SAME_PERSON_DISTANCE`).
:func:`identity_similarity` reports that distance and the cosine similarity.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import LatentlabError
from .align import load_input
from .landmarks import (FACE_RECOGNITION_RESNET, dlib_module, detect_landmarks, full_object_detection,
                        model_path)

SAME_PERSON_DISTANCE = 0.6
"""dlib's threshold: descriptor distance below this means "same person"."""


@functools.lru_cache(maxsize=None)
def face_recognition_model():
    """dlib's face-recognition ResNet (cached)."""
    return dlib_module().face_recognition_model_v1(str(model_path(FACE_RECOGNITION_RESNET)))


def face_embedding(image: "np.ndarray | str | os.PathLike", *, landmarks: np.ndarray | None = None,
                   face_index: int = 0, upsample: int | None = None,
                   num_jitters: int = 0) -> np.ndarray:
    """128-d float32 identity descriptor of one face of ``image`` (path or uint8 RGB [H, W, 3]).

    landmarks: ``[68, 2]`` or ``[5, 2]`` to use instead of detecting the ``face_index``-th
    largest face. num_jitters: dlib's test-time augmentation (0 = one pass).
    Raises :class:`~latentlab.faces.landmarks.NoFaceError` if no face is found.
    """
    img, name = load_input(image)
    if landmarks is None:
        landmarks = detect_landmarks(img, face_index=face_index, upsample=upsample,
                                     source=name).landmarks
    shape = full_object_detection(landmarks)
    desc = face_recognition_model().compute_face_descriptor(img, shape, int(num_jitters))
    return np.asarray(desc, dtype=np.float32)


@dataclass(frozen=True)
class IdentitySimilarity:
    """cosine: cosine similarity of the descriptors (1 = identical); distance: dlib euclidean
    distance; same_person: ``distance < 0.6`` (dlib's threshold)."""

    cosine: float
    distance: float

    @property
    def same_person(self) -> bool:
        return self.distance < SAME_PERSON_DISTANCE


def compare_embeddings(a: np.ndarray, b: np.ndarray) -> IdentitySimilarity:
    """Cosine similarity and euclidean distance of two 128-d descriptors."""
    a = np.asarray(a, np.float64).reshape(-1)
    b = np.asarray(b, np.float64).reshape(-1)
    if a.shape != b.shape:
        raise LatentlabError(f"descriptors differ in size: {a.shape} vs {b.shape}")
    cos = float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))
    return IdentitySimilarity(cosine=cos, distance=float(np.linalg.norm(a - b)))


def identity_similarity(img_a: Any, img_b: Any, **kwargs: Any) -> IdentitySimilarity:
    """Compare the (largest) faces of two images (paths or uint8 RGB arrays). ``kwargs`` go to
    :func:`face_embedding` for both."""
    return compare_embeddings(face_embedding(img_a, **kwargs), face_embedding(img_b, **kwargs))


__all__ = ["SAME_PERSON_DISTANCE", "IdentitySimilarity", "face_embedding", "face_recognition_model",
           "compare_embeddings", "identity_similarity"]
