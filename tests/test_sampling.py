"""Seeds, latents, slerp/lerp, image conversion and grids."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from latentlab.errors import LatentlabError
from latentlab.figures import image_grid
from latentlab.sampling import class_labels, keyframe_path, lerp, parse_seeds, slerp, to_uint8, z_from_seed, z_from_seeds


# ------------------------------------------------------------------------------------- seeds
@pytest.mark.parametrize("spec, expected", [
    ("0-7", list(range(8))),
    ("1,3,5-9", [1, 3, 5, 6, 7, 8, 9]),
    ("42", [42]),
    (" 2 , 4 - 5 ", [2, 4, 5]),
    ("5,1-3,2", [5, 1, 2, 3]),  # order kept, duplicates dropped
    ("4294967295", [2**32 - 1]),
    (7, [7]),
])
def test_parse_seeds(spec, expected):
    assert parse_seeds(spec) == expected


@pytest.mark.parametrize("spec", ["", "  ", "a", "1,,2", "3-1", "-1", "1-", "1.5", "4294967296",
                                  "0-4294967296", "1;2", "0-2000000"])
def test_parse_seeds_rejects(spec):
    with pytest.raises(LatentlabError):
        parse_seeds(spec)


def test_z_from_seed_is_numpy_randomstate():
    z = z_from_seed(123, 16)
    assert z.shape == (1, 16) and z.dtype == np.float64
    # Independent check: the legacy Mersenne-Twister stream for that seed.
    np.testing.assert_array_equal(z, np.random.RandomState(123).randn(16)[None])
    with pytest.raises(LatentlabError):
        z_from_seed(-1, 4)


@pytest.mark.parametrize("name", ["nvidia_tiny_ref.npz", "nvidia_tiny_tf_ref.npz", "rosinality_tiny_ref.npz"])
def test_z_from_seed_matches_fixture(shared_dir, name):
    ref = np.load(shared_dir / "fixtures" / "stylegan2" / name)
    seeds, z_ref = ref["z_seeds"], ref["z"]
    for i, s in enumerate(seeds):
        np.testing.assert_array_equal(z_from_seed(int(s), z_ref.shape[1])[0].astype(np.float32), z_ref[i])
    z = z_from_seeds([int(s) for s in seeds], z_ref.shape[1])
    assert z.dtype == torch.float32
    np.testing.assert_array_equal(z.numpy(), z_ref)


def test_z_from_seed_matches_mobilestylegan_fixture(shared_dir):
    path = shared_dir / "fixtures" / "mobilestylegan" / "reference.npz"
    if not path.is_file():
        pytest.skip("mobilestylegan fixture missing")
    ref = np.load(path)
    z = z_from_seeds([int(s) for s in ref["seeds"]], 512)
    np.testing.assert_array_equal(z.numpy(), ref["z"].astype(np.float32))


def test_class_labels():
    assert class_labels(None, 0, 3) is None
    c = class_labels(2, 4, 3)
    assert c.shape == (3, 4) and c[:, 2].eq(1).all() and c.sum() == 3
    for bad in [(1, 0), (None, 4), (4, 4)]:
        with pytest.raises(LatentlabError):
            class_labels(bad[0], bad[1], 1)


# ------------------------------------------------------------------------------------- lerp / slerp
def _angle(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    cos = (u * v).sum(-1) / (u.norm(dim=-1) * v.norm(dim=-1))
    return torch.arccos(cos.clamp(-1, 1))


def test_lerp():
    a, b = torch.tensor([1.0, 2.0]), torch.tensor([3.0, -2.0])
    torch.testing.assert_close(lerp(a, b, 0.25), torch.tensor([1.5, 1.0]))


def test_slerp_endpoints_and_textbook_formula():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(512, generator=g, dtype=torch.float64)
    b = torch.randn(512, generator=g, dtype=torch.float64)
    torch.testing.assert_close(slerp(a, b, 0.0), a)
    torch.testing.assert_close(slerp(a, b, 1.0), b)
    # Unit vectors: Shoemake's formula sin((1-t)W)/sin W * a + sin(tW)/sin W * b.
    ua, ub = a / a.norm(), b / b.norm()
    omega = math.acos(float(ua @ ub))
    for t in (0.1, 0.5, 0.83):
        expect = (math.sin((1 - t) * omega) * ua + math.sin(t * omega) * ub) / math.sin(omega)
        torch.testing.assert_close(slerp(ua, ub, t), expect)


def test_slerp_norm_and_angle():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(64, generator=g, dtype=torch.float64)
    b = 2.5 * torch.randn(64, generator=g, dtype=torch.float64)
    omega = _angle(a, b)
    for t in torch.linspace(0, 1, 7, dtype=torch.float64):
        p = slerp(a, b, float(t))
        # Norm is interpolated linearly; angle to a grows linearly; p stays in span(a, b).
        torch.testing.assert_close(p.norm(), (1 - t) * a.norm() + t * b.norm())
        torch.testing.assert_close(_angle(a, p), t * omega, atol=1e-6, rtol=0)
        torch.testing.assert_close(_angle(p, b), (1 - t) * omega, atol=1e-6, rtol=0)
        basis, _ = torch.linalg.qr(torch.stack([a, b], dim=1))
        resid = p - basis @ (basis.T @ p)
        assert resid.norm() < 1e-9 * p.norm()
    # Equal norms stay on the sphere, unlike lerp which cuts inside it.
    b2 = b / b.norm() * a.norm()
    assert torch.allclose(slerp(a, b2, 0.5).norm(), a.norm())
    assert lerp(a, b2, 0.5).norm() < 0.99 * a.norm()


def test_slerp_batched_t():
    g = torch.Generator().manual_seed(2)
    a = torch.randn(3, 8, generator=g)
    b = torch.randn(3, 8, generator=g)
    t = torch.tensor([0.0, 0.5, 1.0])
    out = slerp(a, b, t)
    assert out.shape == (3, 8)
    torch.testing.assert_close(out[0], a[0])
    torch.testing.assert_close(out[1], slerp(a[1], b[1], 0.5))
    torch.testing.assert_close(out[2], b[2])


def test_slerp_near_parallel_and_opposite():
    a = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    b = a * 2 + torch.tensor([1e-9, 0.0, 0.0], dtype=torch.float64)
    p = slerp(a, b, 0.5)
    assert torch.isfinite(p).all()
    torch.testing.assert_close(p, 1.5 * a, atol=1e-8, rtol=1e-8)
    torch.testing.assert_close(slerp(a, a, 0.3), a)
    with pytest.raises(LatentlabError):
        slerp(a, -a, 0.5)
    with pytest.raises(LatentlabError):
        slerp(a, torch.zeros(3, dtype=torch.float64), 0.5)


def test_keyframe_path():
    path = keyframe_path(3, 4, loop=False)
    assert len(path) == 4 * 2 + 1
    assert path[0] == (0, 1, 0.0) and path[4] == (1, 2, 0.0) and path[-1] == (1, 2, 1.0)
    looped = keyframe_path(3, 4, loop=True)
    assert len(looped) == 12 and looped[-1] == (2, 0, 0.75)
    with pytest.raises(LatentlabError):
        keyframe_path(1, 4, loop=False)


# ------------------------------------------------------------------------------------- images
def test_to_uint8_convention():
    x = torch.tensor([-1.0, 1.0, 0.0, -3.0, 3.0, 0.5]).reshape(1, 1, 2, 3).repeat(1, 3, 1, 1)
    u = to_uint8(x)
    assert u.shape == (1, 2, 3, 3) and u.dtype == np.uint8
    # floor(clip(x * 127.5 + 128, 0, 255))
    np.testing.assert_array_equal(u[0, :, :, 0].ravel(), [0, 255, 128, 0, 255, 191])
    np.testing.assert_array_equal(u[..., 0], u[..., 2])


def test_to_uint8_channel_order():
    x = torch.full((1, 3, 2, 2), -1.0)
    x[0, 1] = 1.0  # green channel
    u = to_uint8(x)
    assert (u[0, :, :, 1] == 255).all() and (u[0, :, :, 0] == 0).all() and (u[0, :, :, 2] == 0).all()


def test_image_grid():
    imgs = np.stack([np.full((2, 3, 3), k + 1, dtype=np.uint8) for k in range(5)])
    grid = image_grid(imgs, cols=3)
    assert grid.shape == (4, 9, 3)
    assert (grid[0:2, 3:6] == 2).all() and (grid[2:4, 0:3] == 4).all() and (grid[2:4, 6:9] == 0).all()
    assert image_grid(imgs).shape == (4, 9, 3)  # ceil(sqrt(5)) = 3 columns
    assert image_grid(imgs[:1]).shape == (2, 3, 3)
