"""Noise regularisation and pixel metrics against hand-computed formulas and scikit-image."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from latentlab.errors import LatentlabError
from latentlab.losses import mse, noise_regularization, normalize_noise_, psnr, ssim


def _autocorr_terms(n: np.ndarray) -> float:
    """Squared mean products with the neighbour one step left and one step up (wrapping), by loops."""
    h, w = n.shape
    horiz = sum(n[i, j] * n[i, (j - 1) % w] for i in range(h) for j in range(w)) / (h * w)
    vert = sum(n[i, j] * n[(i - 1) % h, j] for i in range(h) for j in range(w)) / (h * w)
    return horiz**2 + vert**2


def _pool2(n: np.ndarray) -> np.ndarray:
    h, w = n.shape
    return np.array(
        [[(n[2 * i, 2 * j] + n[2 * i + 1, 2 * j] + n[2 * i, 2 * j + 1] + n[2 * i + 1, 2 * j + 1]) / 4
          for j in range(w // 2)] for i in range(h // 2)]
    )


def test_noise_regularization_hand_computed():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((32, 32))  # levels 32, 16, 8
    b = rng.standard_normal((4, 4))  # a single level
    expected = _autocorr_terms(a) + _autocorr_terms(_pool2(a)) + _autocorr_terms(_pool2(_pool2(a)))
    expected += _autocorr_terms(b)
    bufs = {"b0": torch.from_numpy(a), "b1": torch.from_numpy(b)}
    got = noise_regularization(bufs)
    assert got.ndim == 0
    assert got.item() == pytest.approx(expected, rel=1e-10)
    # a list works too, and gradient reaches the buffers
    ta = torch.from_numpy(a).requires_grad_(True)
    noise_regularization([ta]).backward()
    assert ta.grad is not None and ta.grad.abs().max() > 0


def test_noise_regularization_tiny_exact():
    # 2x2 map [[1, 2], [3, 4]]: horizontal products 1*2+2*1+3*4+4*3 = 28 -> mean 7;
    # vertical 1*3+2*4+3*1+4*2 = 22 -> mean 5.5; one level (2 <= 8): 49 + 30.25
    n = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)
    assert noise_regularization([n]).item() == pytest.approx(79.25, rel=1e-12)
    # a +-1 checkerboard: every neighbour product is -1 -> (-1)^2 + (-1)^2 at its single level
    checker = torch.tensor([[(-1.0) ** (i + j) for j in range(8)] for i in range(8)])
    assert noise_regularization([checker]).item() == pytest.approx(2.0)


def test_noise_regularization_per_sample_hand_computed():
    # [N, 1, H, W] maps, one per projected photo: each sample's penalty is its own loop-formula value.
    rng = np.random.default_rng(1)
    maps = [rng.standard_normal((3, 1, 16, 16)), rng.standard_normal((3, 1, 4, 4))]
    got = noise_regularization([torch.from_numpy(m) for m in maps], per_sample=True)
    assert got.shape == (3,)
    for i in range(3):
        a, b = maps[0][i, 0], maps[1][i, 0]
        expected = _autocorr_terms(a) + _autocorr_terms(_pool2(a)) + _autocorr_terms(b)
        assert got[i].item() == pytest.approx(expected, rel=1e-10)
    with pytest.raises(LatentlabError):
        noise_regularization([torch.zeros(4, 4)], per_sample=True)


def test_normalize_noise_in_place():
    g = torch.Generator().manual_seed(0)
    bufs = {"a": torch.randn(16, 16, generator=g) * 3 + 5, "b": torch.rand(8, 8, generator=g)}
    ids = {k: v.data_ptr() for k, v in bufs.items()}
    normalize_noise_(bufs)
    for k, v in bufs.items():
        assert v.data_ptr() == ids[k]
        assert v.mean().item() == pytest.approx(0.0, abs=1e-6)
        assert v.square().mean().item() == pytest.approx(1.0, abs=1e-5)
    const = torch.full((4, 4), 2.0)
    normalize_noise_([const])
    assert torch.equal(const, torch.zeros(4, 4))
    with pytest.raises(LatentlabError):
        normalize_noise_([torch.zeros(4)])


def test_mse_psnr_formulas():
    x = torch.tensor([[[[0.0, 0.5], [-0.5, 1.0]]]])  # [1,1,2,2]
    y = torch.tensor([[[[0.0, 0.0], [0.5, 1.0]]]])
    # squared errors 0, 0.25, 1, 0 -> mean 0.3125
    assert mse(x, y).item() == pytest.approx(0.3125)
    assert psnr(x, y).item() == pytest.approx(10 * math.log10(4 / 0.3125))  # [-1,1]: range 2
    assert psnr(x, y, data_range=1.0).item() == pytest.approx(10 * math.log10(1 / 0.3125))
    assert torch.isinf(psnr(x, x)).all()
    batch = torch.cat([x, y])
    assert mse(batch, y).shape == (2,)  # target broadcast over the batch
    with pytest.raises(LatentlabError):
        mse(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 5))
    with pytest.raises(LatentlabError):
        psnr(x, y, data_range=0)


def test_ssim_matches_skimage(shared_dir):
    skm = pytest.importorskip("skimage.metrics", reason="scikit-image not installed (test dependency)")
    from PIL import Image

    a = np.asarray(Image.open(shared_dir / "photos" / "ffhq" / "00000.png").convert("RGB"), np.float64)
    b = np.asarray(Image.open(shared_dir / "photos" / "ffhq" / "00001.png").convert("RGB"), np.float64)
    rng = np.random.default_rng(0)
    a, b = a[:96, :80] / 127.5 - 1, b[:96, :80] / 127.5 - 1  # [-1, 1], non-square
    c = np.clip(a + 0.2 * rng.standard_normal(a.shape), -1, 1)
    x = torch.from_numpy(np.stack([a, a])).permute(0, 3, 1, 2)
    y = torch.from_numpy(np.stack([b, c])).permute(0, 3, 1, 2)
    got = ssim(x, y)
    for i, other in enumerate((b, c)):
        ref = skm.structural_similarity(
            a, other, data_range=2.0, channel_axis=2, gaussian_weights=True, sigma=1.5,
            use_sample_covariance=False,
        )
        assert got[i].item() == pytest.approx(ref, abs=1e-10)
    # SSIM is scale-invariant when data_range scales along (not shift-invariant: the means matter)
    torch.testing.assert_close(ssim(x * 127.5, y * 127.5, data_range=255.0), got)
    assert not torch.allclose(ssim((x + 1) / 2, (y + 1) / 2, data_range=1.0), got)
    torch.testing.assert_close(ssim(x.float(), y.float()), got.float(), atol=1e-5, rtol=0)
    assert ssim(x, x).tolist() == pytest.approx([1.0, 1.0])


def test_ssim_hand_computed_constant_images():
    # constant images: mu = value, var = cov = 0 -> SSIM = (2ab + C1) / (a^2 + b^2 + C1)
    a, b = 0.2, -0.4
    x = torch.full((1, 3, 16, 16), a, dtype=torch.float64)
    y = torch.full((1, 3, 16, 16), b, dtype=torch.float64)
    c1 = (0.01 * 2.0) ** 2
    assert ssim(x, y).item() == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), rel=1e-9)
    with pytest.raises(LatentlabError, match="window"):
        ssim(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))


def test_other_device_matches_cpu(device):
    if device.type == "cpu":
        pytest.skip("compares an accelerator with the CPU results")
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 32, 32, generator=g)
    y = torch.rand(2, 3, 32, 32, generator=g)
    torch.testing.assert_close(ssim(x.to(device), y.to(device)).cpu(), ssim(x, y), atol=1e-5, rtol=0)
    torch.testing.assert_close(psnr(x.to(device), y.to(device)).cpu(), psnr(x, y))
    n = torch.randn(64, 64, generator=g)
    torch.testing.assert_close(noise_regularization([n.to(device)]).cpu(), noise_regularization([n]))
    bufs = [n.to(device)]
    normalize_noise_(bufs)
    assert bufs[0].device == device and abs(bufs[0].mean().item()) < 1e-5
