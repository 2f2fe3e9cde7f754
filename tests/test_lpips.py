"""LPIPS (shift-tolerant VGG16) against the stlpips-pytorch package's own forward pass."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import stlpips_reference
from latentlab.errors import CheckpointError, DownloadError, LatentlabError
from latentlab.losses.lpips import (
    LPIPS,
    MIN_SIZE,
    STLPIPS_VERSION,
    convert_stlpips_state_dict,
    default_weights_path,
    downsample_area,
)


@pytest.fixture(scope="module")
def weights_path() -> Path:
    try:
        return default_weights_path(quiet=True)
    except DownloadError as e:
        pytest.skip(f"stlpips-pytorch=={STLPIPS_VERSION} weights unavailable (no PyPI access?): {e}")


@pytest.fixture(scope="module")
def lpips(weights_path) -> LPIPS:
    return LPIPS(weights_path)


@pytest.fixture(scope="module")
def reference_lpips(tmp_path_factory, weights_path):
    """The stlpips package's own forward pass (see conftest.stlpips_reference)."""
    return stlpips_reference(tmp_path_factory, "vgg", weights_path)


def _photo(shared_dir: Path, i: int) -> torch.Tensor:
    from PIL import Image

    a = np.asarray(Image.open(shared_dir / "photos" / "ffhq" / f"{i:05d}.png").convert("RGB"))
    return torch.from_numpy(a.astype(np.float32)).permute(2, 0, 1)[None] / 127.5 - 1.0


def test_matches_stlpips_package(lpips, reference_lpips, shared_dir):
    p = [_photo(shared_dir, i) for i in range(4)]
    g = torch.Generator().manual_seed(0)
    # two real pairs at 256 px: different faces, and a face against itself shifted by (3, -2) px
    x = torch.cat([p[0], torch.roll(p[3], shifts=(3, -2), dims=(2, 3))])
    y = torch.cat([p[1], p[3]])
    noise = [torch.rand(2, 3, 64, 96, generator=g) * 2 - 1 for _ in range(2)]
    # the cached-target path at 128 px (area-downsampled), one target broadcast over the batch
    xs = downsample_area(torch.cat([p[0], (p[2] + 0.1 * torch.randn(p[2].shape, generator=g)).clamp(-1, 1)]), 128)
    target = downsample_area(p[2], 128)
    with torch.no_grad():
        ref = reference_lpips(x, y).flatten()
        ours = lpips(x, y)
        ref_n = reference_lpips(noise[0], noise[1]).flatten()
        ours_n = lpips(noise[0], noise[1])
        cached = lpips.distance_from_features(xs, lpips.features(target))
        ref_cached = reference_lpips(xs, target.expand(2, -1, -1, -1)).flatten()
    assert ours.shape == (2,) and ours_n.shape == (2,) and cached.shape == (2,)
    assert ref.min() > 0.01 and ref_cached.min() > 0.01  # real, distinct pairs
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(ours_n, ref_n, atol=1e-5, rtol=0)
    torch.testing.assert_close(cached, ref_cached, atol=1e-5, rtol=0)


def test_bfloat16_autocast_keeps_the_distance(lpips, reference_lpips, shared_dir):
    # Projection's opt-in bf16 mode runs the VGG convolutions in bfloat16; the distance head (norms,
    # differences, means, weights) stays float32, so the distance stays within ~1e-3 of the
    # package's float32 value (a bfloat16 head was 5e-3 off) and comes back as float32.
    p = [_photo(shared_dir, i) for i in range(4)]
    x = torch.cat([p[0], p[2], torch.roll(p[3], shifts=(3, -2), dims=(2, 3))])
    with torch.no_grad():
        for y in (p[1], p[3]):
            ref = reference_lpips(x, y.expand(3, -1, -1, -1)).flatten()
            feats = lpips.features(y)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                low = lpips.distance_from_features(x, feats)
            assert low.dtype == torch.float32
            torch.testing.assert_close(low, ref, rtol=2e-3, atol=0)


def test_identity_symmetry_and_gradient(lpips):
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 64, 64, generator=g) * 2 - 1
    y = torch.rand(2, 3, 64, 64, generator=g) * 2 - 1
    with torch.no_grad():
        assert torch.equal(lpips(x, x), torch.zeros(2))
        # float64 input is computed in the network's float32
        torch.testing.assert_close(lpips(x.double(), y.double()), lpips(x, y))
        torch.testing.assert_close(lpips(x, y), lpips(y, x), atol=1e-6, rtol=0)
    xg = x.clone().requires_grad_(True)
    d = lpips(xg, y)
    d.sum().backward()
    assert xg.grad is not None and torch.isfinite(xg.grad).all() and xg.grad.abs().max() > 0
    assert all(p.grad is None for p in lpips.parameters())
    with torch.no_grad():  # a small step against the gradient lowers the distance
        d2 = lpips(x - 0.5 * xg.grad / xg.grad.norm(), y)
    assert (d2 < d.detach()).all()


def test_min_size_and_bad_input(lpips):
    with torch.no_grad():
        assert lpips(torch.zeros(1, 3, MIN_SIZE, MIN_SIZE), torch.ones(1, 3, MIN_SIZE, MIN_SIZE)).shape == (1,)
    with pytest.raises(LatentlabError, match="RGB"):
        lpips(torch.zeros(1, 1, 64, 64), torch.zeros(1, 1, 64, 64))
    with pytest.raises(LatentlabError, match="at least"):
        lpips(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 16))
    with pytest.raises(LatentlabError, match="64x64"):
        lpips(torch.zeros(1, 3, 64, 64), torch.zeros(1, 3, 48, 48))
    with pytest.raises(LatentlabError, match="do not match"):
        lpips.distance_from_features(torch.zeros(1, 3, 64, 64), lpips.features(torch.zeros(1, 3, 32, 32)))


def test_checkpoint_conversion_rejects_wrong_files(weights_path):
    sd = torch.load(weights_path, map_location="cpu", weights_only=True)
    assert len(convert_stlpips_state_dict(sd)) == 2 + 2 * 13 + 5
    missing = {k: v for k, v in sd.items() if k != "lin4.model.1.weight"}
    with pytest.raises(CheckpointError, match="lin4"):
        convert_stlpips_state_dict(missing)
    bad_blur = dict(sd)
    bad_blur["net.slice2.5.filt"] = torch.full_like(sd["net.slice2.5.filt"], 1 / 9)
    with pytest.raises(CheckpointError, match="blur"):
        convert_stlpips_state_dict(bad_blur)
    with pytest.raises(CheckpointError, match="scaling_layer"):
        convert_stlpips_state_dict({})


def test_downsample_area():
    g = torch.Generator().manual_seed(2)
    img = torch.rand(2, 3, 1024, 1024, generator=g) * 2 - 1
    out = downsample_area(img)
    assert out.shape == (2, 3, 256, 256)
    blocks = img.reshape(2, 3, 256, 4, 256, 4).mean(dim=(3, 5))  # each pixel = mean of a 4x4 block
    torch.testing.assert_close(out, blocks, atol=1e-6, rtol=0)
    small = torch.rand(1, 3, 256, 256, generator=g)
    assert downsample_area(small) is small
    with pytest.raises(LatentlabError):
        downsample_area(torch.zeros(3, 64, 64))


def test_other_device_matches_cpu(device, lpips):
    if device.type == "cpu":
        pytest.skip("compares an accelerator with the CPU results")
    import copy

    g = torch.Generator().manual_seed(3)
    x = torch.rand(2, 3, 64, 64, generator=g) * 2 - 1
    y = torch.rand(1, 3, 64, 64, generator=g) * 2 - 1
    net = copy.deepcopy(lpips).to(device)
    with torch.no_grad():
        on_dev = net.distance_from_features(x.to(device), net.features(y.to(device))).cpu()
        on_cpu = lpips.distance_from_features(x, lpips.features(y))
    torch.testing.assert_close(on_dev, on_cpu, atol=1e-4, rtol=1e-3)
    with pytest.raises(LatentlabError, match="move one"):
        net(x, y)
