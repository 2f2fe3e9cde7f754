"""Face detection, FFHQ alignment, paste-back, masks and identity, on real photos in ../shared.

References are independent of the code under test: FFHQ images (aligned by NVIDIA's pipeline)
must come out of a second alignment unchanged; hand-computed quads; re-detected landmarks.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from latentlab.errors import LatentlabError
from latentlab.faces import (AlignedFace, FaceTransform, NoFaceError, align_face, as_aligned,
                             detect_faces, detect_landmarks, face_embedding, face_mask, ffhq_quad,
                             identity_similarity, paste_back, region_mask)
from latentlab.faces.align import apply_matrix, quad_to_matrix, warp_affine
from latentlab.faces.identity import compare_embeddings
from latentlab.imageio import load_image, save_image

# FFHQ samples whose faces are unoccluded (00005 holds a microphone over the mouth, which moves
# dlib's mouth landmarks; 00003/7/8/9 have strong pose or hair over the face).
CLEAN_FFHQ = ["00000", "00001", "00002", "00004", "00006"]


@pytest.fixture(scope="module")
def photos(shared_dir):
    return shared_dir / "photos"


@pytest.fixture(scope="module")
def portrait(photos):
    path = photos / "portraits" / "003f.jpg"
    return path, load_image(path)


@pytest.fixture(scope="module")
def portrait_aligned(portrait):
    return align_face(portrait[1], 256)


@pytest.fixture(scope="module")
def ffhq_eyes(photos):
    """Mean eye centres of FFHQ-aligned 256 px images (dlib landmarks, detected here)."""
    eyes = []
    for name in CLEAN_FFHQ:
        lm = detect_landmarks(load_image(photos / "ffhq" / f"{name}.png")).landmarks
        eyes.append([lm[36:42].mean(0), lm[42:48].mean(0)])
    return np.mean(eyes, 0)


def _synthetic_landmarks(eye_l, eye_r, mouth_l, mouth_r):
    lm = np.zeros((68, 2))
    lm[36:42], lm[42:48], lm[48], lm[54] = eye_l, eye_r, mouth_l, mouth_r
    return lm


# --------------------------------------------------------------------------- geometry


def test_ffhq_quad_by_hand():
    # Eyes (70,100) (130,100), mouth corners (80,160) (120,160): eye_to_eye (60,0),
    # eye_to_mouth (0,60); x = (60,0) - rot90(0,60) = (60,0) - (-60,0) = (120,0), length
    # max(60*2, 60*1.8) = 120; y = (0,120); centre (100,100) + 0.1*(0,60) = (100,106).
    lm = _synthetic_landmarks((70, 100), (130, 100), (80, 160), (120, 160))
    q = ffhq_quad(lm)
    np.testing.assert_allclose(q, [[-20, -14], [-20, 226], [220, 226], [220, -14]])
    # At 240 px one aligned pixel is one original pixel; the aligned image's outer edges
    # (-0.5 and 239.5) land on the quad corners, so pixel centres sit half a pixel inside.
    m = quad_to_matrix(q, 240)
    np.testing.assert_allclose(apply_matrix(m, [[0, 0], [239, 239], [-0.5, 239.5]]),
                               [[-19.5, -13.5], [219.5, 225.5], [-20, 226]], atol=1e-12)
    # A long face: |eye_to_mouth| * 1.8 wins: e2m (0,100) -> x = (160,0) scaled to 180.
    lm = _synthetic_landmarks((70, 100), (130, 100), (80, 200), (120, 200))
    q = ffhq_quad(lm)
    np.testing.assert_allclose(q[2] - q[0], [360, 360])
    np.testing.assert_allclose(q.mean(0), [100, 110])


def test_ffhq_quad_rotates_with_the_face():
    lm = _synthetic_landmarks((70, 100), (130, 100), (80, 160), (120, 160))
    th = np.deg2rad(30)
    rot = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    centre = np.array([100.0, 120.0])
    lm_r = (lm - centre) @ rot.T + centre
    np.testing.assert_allclose(ffhq_quad(lm_r), (ffhq_quad(lm) - centre) @ rot.T + centre,
                               atol=1e-9)


def test_warp_is_antialiased():
    # A 4x reduction must equal the 4x4 block mean (area filter); point sampling, even with
    # Lanczos, keeps most of the noise.
    rs = np.random.RandomState(3)
    src = rs.randint(0, 256, (256, 256)).astype(np.uint8)
    src[:128] = ((np.indices((128, 256)).sum(0) % 2) * 255).astype(np.uint8)  # 1-px checkerboard
    ref = src.reshape(64, 4, 64, 4).astype(np.float64).mean((1, 3))
    m = np.array([[4.0, 0, 1.5], [0, 4.0, 1.5], [0, 0, 1]])  # output px centre -> block centre
    out = warp_affine(src, m, (64, 64)).astype(np.float64)
    assert np.abs(out - ref).max() <= 1.0
    # Rotated by 90 degrees as well (the reduction must not depend on an axis-aligned map).
    rot = np.array([[0, 4.0, 1.5], [4.0, 0, 1.5], [0, 0, 1]])
    out_r = warp_affine(src, rot, (64, 64)).astype(np.float64)
    assert np.abs(out_r - ref.T)[2:-2, 2:-2].max() <= 1.0

# --------------------------------------------------------------------------- detection


def test_no_face_raises_naming_file(tmp_path):
    for name, arr in [("flat.png", np.full((300, 300, 3), 128, np.uint8)),
                      ("noise.png", np.random.RandomState(0).randint(0, 256, (300, 300, 3),
                                                                     dtype=np.uint8))]:
        p = tmp_path / name
        save_image(arr, p)
        with pytest.raises(NoFaceError, match="no face") as ei:
            align_face(p, 256)
        assert str(p) in str(ei.value) and "\n" not in str(ei.value)
        assert isinstance(ei.value, LatentlabError)


def test_face_index(portrait):
    path, img = portrait
    faces = detect_faces(img)
    assert len(faces) == 1
    with pytest.raises(NoFaceError, match="face_index 1"):
        align_face(path, 256, face_index=1)


def test_two_faces_sorted_by_size(photos):
    big = load_image(photos / "ffhq" / "00000.png")
    small = cv2.resize(load_image(photos / "ffhq" / "00001.png"), (180, 180),
                       interpolation=cv2.INTER_AREA)
    canvas = np.full((300, 500, 3), 255, np.uint8)
    canvas[20:276, 10:266] = big
    canvas[60:240, 300:480] = small
    faces = detect_faces(canvas)
    assert len(faces) == 2
    assert faces[0].area > faces[1].area
    assert faces[0].box[0] < 266 and faces[1].box[0] >= 280  # largest = the left (big) one
    second = align_face(canvas, 128, face_index=1)
    assert second.landmarks[:, 0].min() > 280


def test_large_image_detection_scales_back(portrait):
    _, img = portrait
    big = cv2.resize(img, (img.shape[1] * 2, img.shape[0] * 2), interpolation=cv2.INTER_CUBIC)
    lm = detect_landmarks(img).landmarks
    lm2 = detect_landmarks(big).landmarks  # 2700x3600: detected on a downscaled copy
    eyes = [slice(36, 42), slice(42, 48)]
    for s in eyes:
        assert np.linalg.norm(lm2[s].mean(0) - (2 * lm[s].mean(0) + 0.5)) < 6.0


# --------------------------------------------------------------------------- alignment


def test_realigning_ffhq_is_identity(photos):
    for name in CLEAN_FFHQ:
        img = load_image(photos / "ffhq" / f"{name}.png")
        af = align_face(img, 256)
        assert af.image.shape == (256, 256, 3)
        moved = np.linalg.norm(af.aligned_landmarks - af.landmarks, axis=1)
        assert moved.mean() < 2.0 and moved.max() < 4.0, (name, moved.mean(), moved.max())
        # The crop square is the image itself, to a few pixels.
        frame = np.array([[-0.5, -0.5], [-0.5, 255.5], [255.5, 255.5], [255.5, -0.5]])
        assert np.abs(af.quad - frame).max() < 4.0, name
        # ... so the pixels barely change (resampling + landmark noise).
        assert np.abs(af.image.astype(float) - img).mean() < 12.0


def test_portrait_lands_on_ffhq_eyes(portrait_aligned, ffhq_eyes):
    af = portrait_aligned
    assert isinstance(af, AlignedFace) and af.image.shape == (256, 256, 3)
    redetected = detect_landmarks(af.image).landmarks
    for i, s in enumerate([slice(36, 42), slice(42, 48)]):
        assert np.linalg.norm(redetected[s].mean(0) - ffhq_eyes[i]) < 3.5
        assert np.linalg.norm(af.aligned_landmarks[s].mean(0) - ffhq_eyes[i]) < 3.5
    # The portrait's face is ~5x larger than the output: aligned = downscaled original.
    assert 4.0 < af.transform.scale < 7.0


def test_transform_roundtrip_and_serialisation(portrait_aligned, tmp_path):
    tf = portrait_aligned.transform
    pts = np.random.RandomState(1).uniform(-50, 300, (100, 2))
    np.testing.assert_allclose(tf.to_aligned(tf.to_original(pts)), pts, atol=1e-6)
    # Same crop at the generator's 1024: aligned coords scale about pixel edges.
    tf4 = tf.at_resolution(1024)
    np.testing.assert_allclose(tf4.to_original((pts + 0.5) * 4 - 0.5), tf.to_original(pts),
                               atol=1e-6)
    p = tmp_path / "align.npz"
    np.savez(p, **tf.to_arrays())
    with np.load(p) as z:
        back = FaceTransform.from_arrays(z)
    np.testing.assert_array_equal(back.matrix, tf.matrix)
    np.testing.assert_array_equal(back.quad, tf.quad)
    np.testing.assert_array_equal(back.landmarks, tf.landmarks)
    assert back.original_size == tf.original_size == (1800, 1350)
    assert back.resolution == 256
    with pytest.raises(LatentlabError, match="missing"):
        FaceTransform.from_arrays({"align_matrix": tf.matrix})


def test_aligned_pixels_match_the_transform(portrait, portrait_aligned):
    # Sampling the original at transformed points (blurred to the aligned scale) gives the
    # aligned pixels: checks matrix and resampling agree, independently of warp_affine.
    _, img = portrait
    af = portrait_aligned
    blurred = cv2.GaussianBlur(img.astype(np.float32), (0, 0), af.transform.scale * 0.5)
    rs = np.random.RandomState(2)
    pts = rs.uniform(60, 200, (200, 2))
    src = af.transform.to_original(pts)
    xy = np.rint(src).astype(int)
    ref = blurred[xy[:, 1], xy[:, 0]]
    got = af.image[np.rint(pts[:, 1]).astype(int), np.rint(pts[:, 0]).astype(int)]
    assert np.abs(ref - got).mean() < 8.0


def test_border_fill_is_faded(portrait):
    _, img = portrait
    crop = img[650:1500, 330:1200]  # head cut at the top and sides
    af = align_face(crop, 256)
    assert af.quad.min() < -100  # the square extends far outside the crop
    outside = af.transform.to_original(np.array([[8.0, 8.0]]))[0]
    assert outside[0] < 0 and outside[1] < 0
    # Far outside the photo the fill is blurred: little local detail left.
    lap_out = np.abs(cv2.Laplacian(af.image[:30, :30].astype(np.float32), cv2.CV_32F)).mean()
    lap_face = np.abs(cv2.Laplacian(af.image[100:160, 90:170].astype(np.float32),
                                    cv2.CV_32F)).mean()
    assert lap_out < 0.5 * lap_face


def test_as_aligned(photos):
    img = load_image(photos / "ffhq" / "00000.png")
    same = as_aligned(img, 256)
    np.testing.assert_array_equal(same.image, img)
    np.testing.assert_allclose(same.matrix, np.eye(3), atol=1e-12)
    up = as_aligned(img, 512)
    assert up.image.shape == (512, 512, 3)
    np.testing.assert_allclose(up.transform.to_original([[-0.5, -0.5], [511.5, 511.5]]),
                               [[-0.5, -0.5], [255.5, 255.5]])
    back = paste_back(img, up.image, up, color_transfer=False)
    inner = slice(64, 192)
    assert np.abs(back[inner, inner].astype(float) - img[inner, inner]).mean() < 3


# --------------------------------------------------------------------------- masks + paste-back


def test_face_mask(portrait_aligned):
    lm = portrait_aligned.aligned_landmarks
    hard = region_mask(lm, (256, 256))
    soft = face_mask(lm, (256, 256))
    assert soft.dtype == np.float32 and 0.0 <= soft.min() and soft.max() <= 1.0
    nose = np.rint(lm[30]).astype(int)
    assert hard[nose[1], nose[0]] and soft[nose[1], nose[0]] > 0.99
    assert not hard[0, 0] and not hard[255, 128]
    # Forehead covered: a point halfway between brows and the top of the hull.
    brow = lm[17:27].mean(0)
    up = lm[36:48].mean(0) - 0.5 * (lm[48] + lm[54])
    fh = np.rint(brow + 0.4 * up).astype(int)
    assert hard[fh[1], fh[0]]
    # Feathered: soft mask vanishes outside the hard region.
    assert soft[~hard].max() < 0.05
    eyes = region_mask(lm, (256, 256), ["eyes"])
    assert eyes.sum() < 0.05 * hard.sum() and (eyes & ~hard).sum() == 0
    with pytest.raises(LatentlabError, match="unknown face region"):
        region_mask(lm, (256, 256), ["ears"])


def test_paste_back_unchanged_reproduces_photo(portrait, portrait_aligned):
    _, img = portrait
    af = portrait_aligned
    out = paste_back(img, af.image, af)
    assert out.shape == img.shape and out.dtype == np.uint8
    hard = region_mask(af.landmarks, img.shape[:2])
    diff = np.abs(out.astype(float) - img)
    assert diff[hard].mean() < 3.0  # 256 px face upsampled ~5x: only fine detail is lost
    assert diff[~hard].mean() < 0.5
    # Outside the crop square nothing changes at all.
    x0, y0 = np.floor(af.quad.min(0)).astype(int)
    assert np.array_equal(out[:, : max(x0 - 2, 0)], img[:, : max(x0 - 2, 0)])
    # At the generator's 1024 px the same face is reproduced more closely.
    af4 = align_face(img, 1024, landmarks=af.landmarks)
    out4 = paste_back(img, af4.image, af4)
    assert np.abs(out4.astype(float) - img)[hard].mean() < diff[hard].mean()


def test_paste_back_replaces_face_and_matches_colour(portrait, portrait_aligned):
    _, img = portrait
    af = portrait_aligned
    hard = region_mask(af.landmarks, img.shape[:2])
    core = cv2.erode(hard.astype(np.uint8), np.ones((101, 101), np.uint8)).astype(bool)
    flipped = np.ascontiguousarray(255 - af.image)
    out = paste_back(img, flipped, af, color_transfer=False)
    assert np.abs(out.astype(float) - img)[core].mean() > 60
    # A global colour cast of the generated face is removed by the colour transfer...
    cast = np.clip(af.image.astype(int) + [-35, -10, 15], 0, 255).astype(np.uint8)
    out_ct = paste_back(img, cast, af)
    out_raw = paste_back(img, cast, af, color_transfer=False)
    err_ct = np.abs(out_ct.astype(float) - img)[core].mean(0)
    err_raw = np.abs(out_raw.astype(float) - img)[core].mean(0)
    assert err_raw[0] > 30 and err_ct.max() < 4 and err_ct.max() < err_raw.max() / 5
    # ... and a generated image of another size (the generator's) is accepted.
    out_big = paste_back(img, cv2.resize(af.image, (512, 512), interpolation=cv2.INTER_CUBIC), af)
    assert np.abs(out_big.astype(float) - img)[hard].mean() < 4.0
    with pytest.raises(LatentlabError, match="aligned from"):
        paste_back(img[:-1], af.image, af)


# --------------------------------------------------------------------------- identity


def test_identity(photos):
    a = load_image(photos / "ffhq" / "00000.png")
    b = load_image(photos / "ffhq" / "00001.png")
    c = load_image(photos / "ffhq" / "00002.png")
    shifted = cv2.resize(np.roll(a, 12, axis=1), (320, 320), interpolation=cv2.INTER_CUBIC)
    emb = face_embedding(a)
    assert emb.shape == (128,) and emb.dtype == np.float32
    same = identity_similarity(a, shifted)
    assert same.same_person and same.distance < 0.2 and same.cosine > 0.99
    for other in (b, c):
        diff = identity_similarity(a, other)
        assert not diff.same_person and diff.cosine < same.cosine - 0.05
    # cosine and distance as defined, from the raw descriptors
    eb = face_embedding(b)
    r = compare_embeddings(emb, eb)
    assert r.distance == pytest.approx(float(np.linalg.norm(emb.astype(float) - eb)), rel=1e-6)
    with pytest.raises(NoFaceError):
        face_embedding(np.full((200, 200, 3), 90, np.uint8))
    # a strided view (e.g. a permuted tensor's .numpy()) gives the same descriptor
    view = np.ascontiguousarray(a.transpose(1, 0, 2)).transpose(1, 0, 2)
    assert not view.flags["C_CONTIGUOUS"]
    np.testing.assert_allclose(face_embedding(view), emb, atol=1e-6)
