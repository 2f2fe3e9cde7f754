"""ArcFace alignment (latentlab.faces.arcface): the similarity fit, the 5 points from dlib's 68,
and the differentiable crop (geometry, gradients, borders, dtypes, devices). No weights needed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from latentlab.errors import ShapeError
from latentlab.faces.arcface import ARCFACE_TEMPLATE_112, CROP_SIZE, arcface_crop, five_points, similarity_transform


def _rot_scale(angle_deg: float, scale: float, t: tuple[float, float]) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    m = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]) * scale
    return np.hstack([m, np.array(t)[:, None]])


def test_similarity_transform_recovers_known_transform():
    src = np.random.default_rng(0).uniform(0, 200, (5, 2))
    m = _rot_scale(17.0, 0.37, (12.5, -40.0))
    dst = src @ m[:, :2].T + m[:, 2]
    np.testing.assert_allclose(similarity_transform(src, dst), m, atol=1e-9)
    # a mirrored target: the best proper similarity, never a reflection
    got = similarity_transform(src, dst * np.array([-1.0, 1.0]))
    assert np.linalg.det(got[:, :2]) > 0
    with pytest.raises(ShapeError):
        similarity_transform(src, dst[:4])


def test_five_points_numpy_and_torch():
    lm = np.random.default_rng(1).uniform(0, 100, (2, 68, 2))
    p = five_points(lm)
    assert p.shape == (2, 5, 2)
    np.testing.assert_allclose(p[:, 0], lm[:, 36:42].mean(1))
    np.testing.assert_allclose(p[:, 1], lm[:, 42:48].mean(1))
    np.testing.assert_allclose(p[:, 2:], lm[:, [30, 48, 54]])
    pt = five_points(torch.from_numpy(lm))
    assert isinstance(pt, torch.Tensor)
    np.testing.assert_allclose(pt.numpy(), p)


def _dots_image(h: int, w: int, points: np.ndarray, sigma: float) -> torch.Tensor:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.zeros((h, w))
    for x, y in points:
        img += np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma ** 2))
    t = torch.from_numpy(img * 2 - 1).float()
    return t.expand(3, h, w).clone()


def _blob_centres(crop: np.ndarray, near: np.ndarray, radius: int = 6) -> np.ndarray:
    v = crop + 1.0  # background 0
    yy, xx = np.mgrid[0:v.shape[0], 0:v.shape[1]]
    out = []
    for x, y in near:
        mask = (np.abs(xx - x) <= radius) & (np.abs(yy - y) <= radius)
        wgt = v * mask
        out.append([(wgt * xx).sum() / wgt.sum(), (wgt * yy).sum() / wgt.sum()])
    return np.array(out)


@pytest.mark.parametrize("size, scale", [(300, 2.3), (1024, 8.5)])
def test_arcface_crop_puts_points_on_the_template(size, scale):
    # points in the image = the template under a known similarity (the face is `scale` x larger)
    m = _rot_scale(12.0, scale, (0.0, 0.0))
    m[:, 2] = (size - 1) / 2 - ARCFACE_TEMPLATE_112.mean(0) @ m[:, :2].T  # centre the face
    pts = ARCFACE_TEMPLATE_112 @ m[:, :2].T + m[:, 2]
    assert pts.min() > 0 and pts.max() < size - 1
    img = _dots_image(size, size, pts, sigma=1.5 * scale).requires_grad_(True)
    crop = arcface_crop(img[None], torch.from_numpy(pts)[None].float())
    assert crop.shape == (1, 3, 112, 112)
    found = _blob_centres(crop[0, 0].detach().numpy(), ARCFACE_TEMPLATE_112)
    assert np.abs(found - ARCFACE_TEMPLATE_112).max() < 0.5
    crop[0, :, 50:60, 35:45].sum().backward()  # around the left eye
    g = img.grad.abs().sum(0).numpy()
    assert np.isfinite(g).all() and g.sum() > 0
    ys, xs = np.nonzero(g)  # gradient lands around the left eye in the source image
    assert np.hypot(xs.mean() - pts[0, 0], ys.mean() - pts[0, 1]) < 8 * scale


def test_arcface_crop_batch_and_out_of_image_border():
    img = torch.zeros(2, 3, 64, 64)
    # first: the crop covers image x, y in [-15, 41) -> its top-left reads outside (-1, black);
    # second: the crop covers [5, 39) -> all inside
    pts = torch.from_numpy(np.stack([ARCFACE_TEMPLATE_112 * 0.5 - 15,
                                     ARCFACE_TEMPLATE_112 * 0.3 + 5]))
    crop = arcface_crop(img, pts)
    assert crop.shape == (2, 3, 112, 112)
    assert crop[0, :, :20, :20].max() == -1.0 and crop[0, :, 60:, 60:].abs().max() < 1e-6
    assert crop[1].abs().max() < 1e-6
    crop16 = arcface_crop(img.bfloat16(), pts)  # sampled in float32, returned in bf16
    assert crop16.dtype == torch.bfloat16
    torch.testing.assert_close(crop16.float(), crop, atol=1e-2, rtol=0)
    with pytest.raises(ShapeError):
        arcface_crop(img, pts[:1])


def test_crop_size_and_template_scale():
    """``size`` scales the template: a face placed on the 112 px template lands on it scaled."""
    img = torch.rand(1, 3, 200, 200, generator=torch.Generator().manual_seed(5)) * 2 - 1
    pts = torch.from_numpy(ARCFACE_TEMPLATE_112 * 1.5 + 20.0)[None]
    assert CROP_SIZE == 112 and arcface_crop(img, pts).shape == (1, 3, 112, 112)
    big = arcface_crop(img, pts, 224)
    same = arcface_crop(img, pts, 224, template=ARCFACE_TEMPLATE_112 * 2.0)
    assert big.shape == (1, 3, 224, 224)
    torch.testing.assert_close(big, same)
    with pytest.raises(ShapeError):
        arcface_crop(img, pts, 224, template=ARCFACE_TEMPLATE_112[:4])
    with pytest.raises(ShapeError):
        arcface_crop(img[0], pts)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_crop_on_cuda_matches_cpu():
    pts = torch.from_numpy(ARCFACE_TEMPLATE_112 * 2.0 + 10.0)[None]
    img = torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(4)) * 2 - 1
    torch.testing.assert_close(arcface_crop(img.to("cuda"), pts).cpu(), arcface_crop(img, pts), atol=1e-5, rtol=0)
