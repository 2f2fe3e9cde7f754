"""Reconstruction metrics (latentlab.metrics) and LPIPS-AlexNet (latentlab.losses.lpips_alex).

References are independent of the code under test: MSE / PSNR by hand in NumPy; MS-SSIM composed
from scikit-image's single-scale SSIM at each scale; LPIPS-Alex against the stlpips-pytorch
package's own forward pass (its code imported from the PyPI wheel).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import stlpips_reference
from latentlab import metrics
from latentlab.errors import CheckpointError, DownloadError, LatentlabError
from latentlab.losses.lpips import downsample_area
from latentlab.losses.lpips_alex import (
    MIN_SIZE,
    STLPIPS_VERSION,
    LPIPSAlex,
    convert_stlpips_alex_state_dict,
    default_weights_path,
)


@pytest.fixture(scope="module")
def alex_weights() -> Path:
    try:
        return default_weights_path(quiet=True)
    except DownloadError as e:
        pytest.skip(f"stlpips-pytorch=={STLPIPS_VERSION} weights unavailable (no PyPI access?): {e}")


@pytest.fixture(scope="module")
def alex(alex_weights) -> LPIPSAlex:
    return LPIPSAlex(alex_weights)


@pytest.fixture(scope="module")
def reference_alex(tmp_path_factory, alex_weights):
    """The stlpips package's own forward pass (see conftest.stlpips_reference)."""
    return stlpips_reference(tmp_path_factory, "alex", alex_weights)


def _ffhq(shared_dir: Path, i: int) -> torch.Tensor:
    """FFHQ photo i as [1, 3, 256, 256] in [-1, 1]."""
    from PIL import Image

    a = np.asarray(Image.open(shared_dir / "photos" / "ffhq" / f"{i:05d}.png").convert("RGB"))
    return torch.from_numpy(a.astype(np.float32)).permute(2, 0, 1)[None] / 127.5 - 1.0


def _noisy(x: torch.Tensor, sigma: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (x + sigma * torch.randn(x.shape, generator=g)).clamp(-1, 1)


# --------------------------------------------------------------------------- MSE / PSNR


def test_mse_and_psnr_match_numpy(shared_dir):
    p = [_ffhq(shared_dir, i) for i in range(3)]
    x = torch.cat([p[0], _noisy(p[1], 0.1, 0), p[2]])
    y = torch.cat([p[1], p[1], p[2]])
    xn, yn = x.double().numpy(), y.double().numpy()
    mse_11 = ((xn - yn) ** 2).mean(axis=(1, 2, 3))  # on the [-1, 1] values
    x01, y01 = (xn + 1) / 2, (yn + 1) / 2
    mse_01 = ((x01 - y01) ** 2).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(metrics.mse(x, y).numpy(), mse_11, rtol=1e-6)
    np.testing.assert_allclose(mse_11[:2], 4 * mse_01[:2], rtol=1e-12)
    got = metrics.psnr(x, y)
    assert got.dtype == torch.float32 and got.shape == (3,)
    np.testing.assert_allclose(got[:2].numpy(), 10 * np.log10(1.0 / mse_01[:2]), rtol=1e-6)
    assert got[2] == float("inf") and metrics.mse(x, y)[2] == 0
    # a reference of batch 1 is compared with every image
    torch.testing.assert_close(metrics.psnr(x[:2], p[1]), got[:2])
    # a known value: a constant offset of 0.1 on [-1, 1] is 0.05 on [0, 1] -> 26.0206 dB
    z = torch.zeros(1, 3, 8, 8)
    assert metrics.psnr(z + 0.1, z).item() == pytest.approx(20 * np.log10(1 / 0.05), rel=1e-6)
    assert metrics.mse(z + 0.1, z).item() == pytest.approx(0.01, rel=1e-6)


# --------------------------------------------------------------------------- MS-SSIM


def _ms_ssim_skimage(a: np.ndarray, b: np.ndarray) -> float:
    """MS-SSIM of two [3, H, W] images in [0, 1] composed from skimage's single-scale SSIM.

    Per channel: the contrast-structure mean at scales 1-4 is skimage's SSIM with the luminance
    term switched off (K1 so large that (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1) = 1 to 1e-12),
    the full SSIM at scale 5; 2x2 block means between scales; the channel values are averaged.
    """
    from skimage.metrics import structural_similarity

    kw = dict(data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    out = []
    for c in range(3):
        u, v = a[c].astype(np.float64), b[c].astype(np.float64)
        val = 1.0
        for j, w in enumerate(metrics.MS_SSIM_WEIGHTS):
            if j < 4:
                cs = structural_similarity(u, v, K1=1e6, K2=0.03, **kw)
                val *= max(cs, 0.0) ** w
                h, wd = u.shape
                u = u.reshape(h // 2, 2, wd // 2, 2).mean(axis=(1, 3))
                v = v.reshape(h // 2, 2, wd // 2, 2).mean(axis=(1, 3))
            else:
                val *= max(structural_similarity(u, v, K1=0.01, K2=0.03, **kw), 0.0) ** w
        out.append(val)
    return float(np.mean(out))


def test_ms_ssim_matches_skimage_composition(shared_dir):
    p = [_ffhq(shared_dir, i) for i in range(3)]
    x = torch.cat([p[0], _noisy(p[1], 0.15, 1), torch.roll(p[2], shifts=(2, 1), dims=(2, 3))])
    y = torch.cat([p[1], p[1], p[2]])
    got = metrics.ms_ssim(x, y)
    assert got.dtype == torch.float32 and got.shape == (3,)
    ref = [_ms_ssim_skimage(((x[i] + 1) / 2).double().numpy(), ((y[i] + 1) / 2).double().numpy())
           for i in range(3)]
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-5, atol=0)
    assert 0.05 < ref[0] < ref[2] < 1  # real, distinct values: a different face scores lowest


def test_ms_ssim_identity_monotonicity_and_size_limit(shared_dir):
    p = _ffhq(shared_dir, 4)
    same = metrics.ms_ssim(torch.cat([p, p]), p)
    torch.testing.assert_close(same, torch.ones(2), atol=1e-6, rtol=0)
    noisy = torch.cat([_noisy(p, s, 2) for s in (0.01, 0.03, 0.1, 0.3)])
    vals = metrics.ms_ssim(noisy, p)
    assert (vals[1:] < vals[:-1]).all(), vals  # more noise, lower MS-SSIM
    assert vals[0] > 0.99 and vals[-1] < 0.9  # measured: 0.9992 ... 0.792
    small = torch.zeros(1, 3, metrics.MS_SSIM_MIN_SIZE - 1, 200)
    with pytest.raises(LatentlabError, match="at least 161 px"):
        metrics.ms_ssim(small, small)
    ok = torch.zeros(1, 3, metrics.MS_SSIM_MIN_SIZE, metrics.MS_SSIM_MIN_SIZE)
    assert metrics.ms_ssim(ok, ok).item() == pytest.approx(1.0)


def test_pixel_metrics_reject_bad_input():
    x = torch.zeros(2, 3, 32, 32)
    with pytest.raises(LatentlabError, match="RGB"):
        metrics.mse(torch.zeros(2, 1, 32, 32), x)
    with pytest.raises(LatentlabError, match="32x32"):
        metrics.psnr(x, torch.zeros(2, 3, 16, 16))
    with pytest.raises(LatentlabError, match="batch 3"):
        metrics.mse(x, torch.zeros(3, 3, 32, 32))
    with pytest.raises(LatentlabError, match="float"):
        metrics.mse(x.to(torch.uint8), x.to(torch.uint8))


# --------------------------------------------------------------------------- LPIPS-Alex


def test_lpips_alex_matches_stlpips_package(alex, reference_alex, shared_dir):
    p = [_ffhq(shared_dir, i) for i in range(4)]
    g = torch.Generator().manual_seed(0)
    # real pairs at 256 px: two different faces, and a face against itself shifted by (3, -2) px
    x = torch.cat([p[0], torch.roll(p[3], shifts=(3, -2), dims=(2, 3))])
    y = torch.cat([p[1], p[3]])
    # odd, non-square noise images at 61x96
    noise = [torch.rand(2, 3, 61, 96, generator=g) * 2 - 1 for _ in range(2)]
    # the cached-target path at 128 px (area-downsampled), one target broadcast over the batch
    xs = downsample_area(torch.cat([p[0], _noisy(p[2], 0.1, 3)]), 128)
    target = downsample_area(p[2], 128)
    with torch.no_grad():
        ref = reference_alex(x, y).flatten()
        ours = alex(x, y)
        ref_n = reference_alex(noise[0], noise[1]).flatten()
        ours_n = alex(noise[0], noise[1])
        cached = alex.distance_from_features(xs, alex.features(target))
        ref_cached = reference_alex(xs, target.expand(2, -1, -1, -1)).flatten()
        tiny = [torch.rand(1, 3, MIN_SIZE, MIN_SIZE + 4, generator=g) * 2 - 1 for _ in range(2)]
        ours_tiny, ref_tiny = alex(*tiny), reference_alex(*tiny).flatten()
    assert ours.shape == (2,) and ours_n.shape == (2,) and cached.shape == (2,)
    assert ref.min() > 0.01 and ref_cached.min() > 0.01  # real, distinct pairs (weights loaded)
    for a, b in ((ours, ref), (ours_n, ref_n), (cached, ref_cached), (ours_tiny, ref_tiny)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_lpips_alex_identity_symmetry_and_min_size(alex):
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 64, 64, generator=g) * 2 - 1
    y = torch.rand(2, 3, 64, 64, generator=g) * 2 - 1
    with torch.no_grad():
        assert torch.equal(metrics.lpips_alex(x, x), torch.zeros(2))
        torch.testing.assert_close(metrics.lpips_alex(x, y), metrics.lpips_alex(y, x), atol=1e-6, rtol=0)
        torch.testing.assert_close(metrics.lpips_alex(x, y), alex(x, y))
        # float64 input is computed in float32
        torch.testing.assert_close(alex(x.double(), y.double()), alex(x, y))
    with pytest.raises(LatentlabError, match="at least 21"):
        alex(torch.zeros(1, 3, MIN_SIZE - 1, 64), torch.zeros(1, 3, MIN_SIZE - 1, 64))
    with pytest.raises(LatentlabError, match="RGB"):
        alex(torch.zeros(1, 1, 64, 64), torch.zeros(1, 1, 64, 64))
    with pytest.raises(LatentlabError, match="64x64"):
        alex(torch.zeros(1, 3, 64, 64), torch.zeros(1, 3, 48, 48))


def test_lpips_alex_ignores_bf16_autocast(alex, shared_dir):
    p = [_ffhq(shared_dir, i) for i in range(3)]
    x = torch.cat([p[0], _noisy(p[2], 0.05, 4)])
    with torch.no_grad():
        full = metrics.lpips_alex(x, p[2])
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = metrics.lpips_alex(x, p[2])
            feats = alex.features(p[2])
    assert low.dtype == torch.float32 and feats[0].dtype == torch.float32
    torch.testing.assert_close(low, full, rtol=1e-3, atol=0)


def test_lpips_alex_checkpoint_conversion_rejects_wrong_files(alex_weights):
    sd = torch.load(alex_weights, map_location="cpu", weights_only=True)
    assert len(convert_stlpips_alex_state_dict(sd)) == 2 + 2 * 5 + 5
    with pytest.raises(CheckpointError, match="lin4"):
        convert_stlpips_alex_state_dict({k: v for k, v in sd.items() if k != "lin4.model.1.weight"})
    bad_blur = dict(sd)
    bad_blur["net.slice2.4.filt"] = torch.full_like(sd["net.slice2.4.filt"], 1 / 9)
    with pytest.raises(CheckpointError, match="binomial"):
        convert_stlpips_alex_state_dict(bad_blur)
    vgg_like = dict(sd)
    vgg_like["net.slice1.0.weight"] = torch.zeros(64, 3, 3, 3)
    with pytest.raises(CheckpointError, match=r"net.slice1.0.weight has shape \[64, 3, 3, 3\]"):
        convert_stlpips_alex_state_dict(vgg_like)
    with pytest.raises(CheckpointError, match="unexpected tensor net.slice1.2.weight"):
        convert_stlpips_alex_state_dict({**sd, "net.slice1.2.weight": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="scaling_layer"):
        convert_stlpips_alex_state_dict({})


# --------------------------------------------------------------------------- image_metrics


def test_image_metrics_at_256(shared_dir):
    from PIL import Image

    path = sorted((shared_dir / "photos" / "celebahq").glob("*.jpg"))[0]
    a = np.asarray(Image.open(path).convert("RGB"))
    target = torch.from_numpy(a.astype(np.float32)).permute(2, 0, 1)[None] / 127.5 - 1.0
    assert target.shape[2:] == (1024, 1024)
    recon = torch.cat([_noisy(target, 0.1, 5), torch.roll(target, shifts=(8, -8), dims=(2, 3))])
    recon[1, :, :4, :4] = 1.5  # out of range: clamped like a saved image
    rows = metrics.image_metrics(recon, target)
    assert len(rows) == 2
    for row in rows:
        assert set(row) == {"psnr", "mse", "ms_ssim", "lpips_alex", "metric_resolution"}
        assert row["metric_resolution"] == 256
        assert all(isinstance(row[k], float) for k in ("psnr", "mse", "ms_ssim", "lpips_alex"))
    r = downsample_area(recon, 256).clamp(-1, 1)
    t = downsample_area(target, 256)
    for key, fn in (("psnr", metrics.psnr), ("mse", metrics.mse), ("ms_ssim", metrics.ms_ssim),
                    ("lpips_alex", metrics.lpips_alex)):
        np.testing.assert_allclose([row[key] for row in rows], fn(r, t).numpy(), rtol=1e-6)
    # a target at another size is shrunk to the same metric resolution
    rows_small_target = metrics.image_metrics(recon, downsample_area(target, 512))
    assert rows_small_target[0]["mse"] == pytest.approx(rows[0]["mse"], rel=1e-4)


def test_image_metrics_small_images_and_loss_net():
    g = torch.Generator().manual_seed(6)
    target = torch.rand(1, 3, 64, 64, generator=g) * 2 - 1
    recon = (target + 0.1 * torch.randn(2, 3, 64, 64, generator=g)).clamp(-1, 1)
    rows = metrics.image_metrics(recon, target, include_loss_net=True)
    assert set(rows[0]) == {"psnr", "mse", "ms_ssim", "lpips_alex", "metric_resolution",
                            "lpips_vgg_loss_net"}
    assert rows[0]["metric_resolution"] == 64
    assert rows[0]["ms_ssim"] is None  # below 161 px: no MS-SSIM with fewer scales
    assert rows[0]["lpips_alex"] > 0 and rows[0]["lpips_vgg_loss_net"] > 0
    from latentlab.losses.lpips import LPIPS

    with torch.no_grad():
        torch.testing.assert_close(metrics.loss_lpips_vgg(recon, target), LPIPS()(recon, target))
    np.testing.assert_allclose([r["lpips_vgg_loss_net"] for r in rows],
                               metrics.loss_lpips_vgg(recon, target).numpy(), rtol=1e-6)
    with pytest.raises(LatentlabError, match="reconstruction is 64x64 but the target is 64x32"):
        metrics.image_metrics(recon, torch.zeros(1, 3, 64, 32))
    with pytest.raises(LatentlabError, match="resolution"):
        metrics.image_metrics(recon, target, resolution=0)


# --------------------------------------------------------------------------- dlib identity


def test_identity_metrics_dlib(shared_dir):
    from latentlab.imageio import load_image

    blank = np.full((256, 256, 3), 128, np.uint8)
    face = load_image(shared_dir / "photos" / "ffhq" / "00000.png")
    other = load_image(shared_dir / "photos" / "ffhq" / "00001.png")
    assert metrics.identity_metrics_dlib(face, blank) == {"dlib_distance": None, "dlib_same_person": None}
    assert metrics.identity_metrics_dlib(blank, face) == {"dlib_distance": None, "dlib_same_person": None}
    rng = np.random.default_rng(7)
    noisy = np.clip(face.astype(np.int16) + rng.integers(-6, 7, face.shape), 0, 255).astype(np.uint8)
    same = metrics.identity_metrics_dlib(face, noisy)
    diff = metrics.identity_metrics_dlib(face, other)
    assert set(same) == {"dlib_distance", "dlib_same_person"}
    assert same["dlib_same_person"] is True and 0 <= same["dlib_distance"] < 0.3
    assert diff["dlib_distance"] > same["dlib_distance"]
    assert diff["dlib_same_person"] == (diff["dlib_distance"] < 0.6)
    with pytest.raises(LatentlabError, match="uint8"):
        metrics.identity_metrics_dlib(face.astype(np.float32), face)


def test_identity_metrics_faceres(shared_dir):
    """ID cosine against the formula (cosine of the unit embeddings of each face's own crop) and the
    verdict at FaceRes's measured threshold: a noisy copy is the same person, others are not."""
    import torch

    from latentlab.faces.faceres import SAME_PERSON_COSINE, identity_embedding_faceres
    from latentlab.faces.landmarks import detect_landmarks
    from latentlab.imageio import image_to_tensor, load_image

    blank = np.full((256, 256, 3), 128, np.uint8)
    face = load_image(shared_dir / "photos" / "ffhq" / "00000.png")
    assert metrics.identity_metrics_faceres(face, blank) == {"id_cosine": None, "id_same_person": None}
    rng = np.random.default_rng(7)
    noisy = np.clip(face.astype(np.int16) + rng.integers(-6, 7, face.shape), 0, 255).astype(np.uint8)
    same = metrics.identity_metrics_faceres(face, noisy)
    assert same["id_same_person"] is True and same["id_cosine"] > 0.9
    for i in (1, 2, 3):
        other = load_image(shared_dir / "photos" / "ffhq" / f"{i:05d}.png")
        diff = metrics.identity_metrics_faceres(face, other)
        assert diff["id_same_person"] is False and diff["id_cosine"] < SAME_PERSON_COSINE
        e = [identity_embedding_faceres(image_to_tensor(x), detect_landmarks(x).landmarks[None]) for x in (face, other)]
        e = [torch.nn.functional.normalize(v, dim=1) for v in e]
        assert diff["id_cosine"] == pytest.approx(float((e[0] * e[1]).sum()), abs=1e-5)


# --------------------------------------------------------------------------- accelerators


def test_metrics_on_other_device_match_cpu(device):
    if device.type == "cpu":
        pytest.skip("compares an accelerator with the CPU results")
    g = torch.Generator().manual_seed(8)
    target = torch.rand(1, 3, 512, 512, generator=g) * 2 - 1
    recon = (target + 0.2 * torch.randn(2, 3, 512, 512, generator=g)).clamp(-1, 1)
    on_cpu = metrics.image_metrics(recon, target)
    on_dev = metrics.image_metrics(recon.to(device), target.to(device))
    for a, b in zip(on_dev, on_cpu):
        assert a["metric_resolution"] == b["metric_resolution"] == 256
        for key in ("psnr", "mse", "ms_ssim"):
            assert a[key] == pytest.approx(b[key], rel=1e-5)
        # cuDNN runs float32 convolutions as TF32 by default (torch.backends.cudnn.allow_tf32)
        assert a["lpips_alex"] == pytest.approx(b["lpips_alex"], rel=5e-3)
    with pytest.raises(LatentlabError, match="on"):
        metrics.mse(recon.to(device), target)


def test_identity_loss_is_one_minus_cosine_and_differentiable(shared_dir):
    """The projector's identity loss: 1 - cos of FaceRes embeddings cropped at the photo's landmarks
    (0 for the photo itself, larger for another person than for a noisy copy; gradients reach the render)."""
    import torch

    from latentlab.faces.faceres import identity_embedding_faceres
    from latentlab.faces.identity_loss import IdentityLoss
    from latentlab.faces.landmarks import detect_landmarks
    from latentlab.imageio import image_to_tensor, load_image

    face = load_image(shared_dir / "photos" / "ffhq" / "00000.png")
    other = load_image(shared_dir / "photos" / "ffhq" / "00001.png")
    target = image_to_tensor(face)
    loss = IdentityLoss("cpu")
    assert float(loss(target.clone(), target)[0]) == pytest.approx(0.0, abs=1e-5)
    noisy = (target + 0.03 * torch.randn_like(target)).requires_grad_(True)
    l_noisy = loss(noisy, target)
    l_noisy.sum().backward()
    assert noisy.grad is not None and float(noisy.grad.abs().sum()) > 0
    l_other = loss(image_to_tensor(other), target)
    assert float(l_other[0]) > float(l_noisy[0]) + 0.2
    # the formula, with the crop at the *target's* landmarks for both images
    lm = detect_landmarks(face).landmarks[None]
    e = [torch.nn.functional.normalize(identity_embedding_faceres(x, lm), dim=1)
         for x in (image_to_tensor(other), target)]
    assert float(l_other[0]) == pytest.approx(1 - float((e[0] * e[1]).sum()), abs=1e-5)
    # a render at another resolution is resized to the target's first
    big = torch.nn.functional.interpolate(target, scale_factor=2, mode="bilinear", align_corners=False)
    assert float(loss(big, target)[0]) < 0.05


# ------------------------------------------------------------------------------------------ texture
def _skin(seed: int = 0, size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """A grey 'skin' texture (smoothed noise around 150) as uint8 RGB, and 68 landmarks whose cheek
    centres ((2 + 31) / 2 and (14 + 35) / 2) fall at (300, 600) and (724, 600)."""
    import cv2

    rng = np.random.RandomState(seed)
    grey = 150 + 6 * cv2.GaussianBlur(rng.randn(size, size), (0, 0), 0.8)
    img = np.repeat(np.clip(np.round(grey), 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    lm = np.full((68, 2), 512.0)
    lm[2], lm[31], lm[14], lm[35] = (250, 620), (350, 580), (774, 620), (674, 580)
    return img, lm


def test_texture_metrics_against_a_direct_computation_and_known_changes():
    from scipy.ndimage import gaussian_filter

    photo, lm = _skin()
    same = metrics.texture_metrics(photo, photo, lm)
    assert same == {"texture_hf_ratio": 1.0, "texture_peak_ratio": 1.0}
    # the high-pass energy, computed here with SciPy's Gaussian filter, on the two 64 px cheek patches
    g = photo[..., 0].astype(np.float64)

    def energy(img):
        out = 0.0
        for cx in (300, 724):
            patch = img[568:632, cx - 32:cx + 32]
            out += np.mean((patch - gaussian_filter(patch, 1.5, mode="mirror", truncate=4.0)) ** 2)
        return out

    half = np.clip(np.round(gaussian_filter(g, 1.5, mode="mirror") + 0.5 * (g - gaussian_filter(g, 1.5, mode="mirror"))),
                   0, 255)
    half_u8 = np.repeat(half.astype(np.uint8)[..., None], 3, axis=2)
    m = metrics.texture_metrics(photo, half_u8, lm)
    assert m["texture_hf_ratio"] == pytest.approx(energy(half) / energy(g), rel=1e-6)
    assert 0.15 < m["texture_hf_ratio"] < 0.4  # half the band's amplitude: about a quarter of its energy
    # a faint diagonal pattern of period 5 px is a sharp peak; fresh noise of the same texture is not
    yy, xx = np.mgrid[:1024, :1024]
    pattern = np.clip(photo + 3 * np.sin(2 * np.pi * (xx + yy) / 5)[..., None], 0, 255).astype(np.uint8)
    assert metrics.texture_metrics(photo, pattern, lm)["texture_peak_ratio"] > 20
    other, _ = _skin(seed=1)
    assert metrics.texture_metrics(photo, other, lm)["texture_peak_ratio"] < 3
    assert 0.8 < metrics.texture_metrics(photo, other, lm)["texture_hf_ratio"] < 1.25


def test_texture_metrics_refuse_bad_input_and_report_none_without_a_face():
    photo, lm = _skin()
    assert metrics.texture_metrics(np.zeros((1024, 1024, 3), np.uint8), photo) == {
        "texture_hf_ratio": None, "texture_peak_ratio": None}
    assert metrics.texture_metrics(photo[:200, :200], photo[:200, :200], lm / 5.12) == {
        "texture_hf_ratio": None, "texture_peak_ratio": None}  # patches under 16 px
    with pytest.raises(LatentlabError, match="of one size"):
        metrics.texture_metrics(photo, photo[:512, :512], lm)
    with pytest.raises(LatentlabError, match="68 finite points"):
        metrics.texture_metrics(photo, photo, lm[:5])
