"""Projection: schedules against NVIDIA's formulas, convergence on a tiny generator, batch
independence, reproducibility, interruption, and latent files."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from latentlab.errors import LatentlabError
from latentlab.inversion import ProjectorConfig, latent_stats, override_noise, project, synthesize_projection
from latentlab.inversion.runner import load_latent, save_latent
from latentlab.inversion.schedules import latent_noise_scale, learning_rate
from latentlab.models.stylegan2 import StyleGAN2Generator


def _tiny_G() -> StyleGAN2Generator:
    torch.manual_seed(3)
    G = StyleGAN2Generator(z_dim=16, w_dim=16, img_resolution=32, img_channels=3, mapping_kwargs={"num_layers": 2},
                           synthesis_kwargs={"channel_base": 256, "channel_max": 16})
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.1)
        for buf in G.noise_buffers().values():
            buf.normal_()
    return G.eval().requires_grad_(False)


# Pixel loss only, so these tests need no VGG weights.
PIXEL = ProjectorConfig(num_steps=60, w_avg_samples=500, lpips_weight=0.0, rec_weight=1.0, loss_resolution=32)


def test_learning_rate_schedule_matches_formula():
    # NVIDIA: ramp = min(1, (1-t)/down); ramp = 0.5 - 0.5 cos(pi ramp); ramp *= min(1, t/up)
    assert learning_rate(0.0, 0.1, 0.05, 0.25) == 0.0
    assert learning_rate(0.025, 0.1, 0.05, 0.25) == pytest.approx(0.05)
    assert learning_rate(0.5, 0.1, 0.05, 0.25) == pytest.approx(0.1)
    assert learning_rate(0.875, 0.1, 0.05, 0.25) == pytest.approx(0.1 * (0.5 - 0.5 * math.cos(0.5 * math.pi)))
    assert learning_rate(1.0, 0.1, 0.05, 0.25) == pytest.approx(0.0, abs=1e-12)


def test_latent_noise_schedule_matches_formula():
    assert latent_noise_scale(0.0, 20.0, 0.05, 0.75) == pytest.approx(1.0)
    assert latent_noise_scale(0.375, 20.0, 0.05, 0.75) == pytest.approx(1.0 * 0.25)
    assert latent_noise_scale(0.8, 20.0, 0.05, 0.75) == 0.0


def test_latent_stats_against_numpy():
    G = _tiny_G()
    with torch.no_grad():  # the start is the generator's own w_avg (issue 15), the spread is around it
        G.w_avg.copy_(torch.linspace(-0.5, 0.5, G.w_dim))
    w_avg, w_std = latent_stats(G, 300, seed=5, batch=64)
    z = np.random.RandomState(5).randn(300, G.z_dim).astype(np.float32)
    w = G.mapping(torch.from_numpy(z))[:, 0].double().numpy()
    assert torch.equal(w_avg, G.w_avg)
    assert w_std == pytest.approx(np.sqrt(((w - w_avg.double().numpy()) ** 2).sum(1).mean()), rel=1e-4)


@pytest.mark.parametrize("space", ["w", "w+"])
def test_projection_recovers_a_generated_image(space):
    G = _tiny_G()
    w_true = G.mapping(torch.from_numpy(np.random.RandomState(11).randn(1, G.z_dim).astype(np.float32)))
    target = G.synthesis(w_true)
    w_avg, _ = latent_stats(G, 500)
    start_mse = float((G.synthesis(w_avg.view(1, 1, -1).expand(1, G.num_ws, -1)) - target).square().mean())
    res = project(G, target, PIXEL.replace(space=space, optimize_noise=False), progress=False)
    recon = synthesize_projection(G, res)
    end_mse = float((recon - target).square().mean())
    assert res.mse[0] == pytest.approx(end_mse, rel=0.2, abs=1e-4)  # the reported best is what renders
    assert end_mse < 0.1 * start_mse
    if space == "w":  # one w tiled to every row
        assert torch.equal(res.ws[:, :1].expand_as(res.ws), res.ws)


def test_batch_equals_separate_runs():
    # Without random draws (no latent noise, no noise maps) a batch must give each photo exactly
    # the result of projecting it alone: losses are per-sample sums and Adam is element-wise.
    G = _tiny_G()
    targets = G(torch.from_numpy(np.random.RandomState(1).randn(2, G.z_dim).astype(np.float32)))
    cfg = PIXEL.replace(num_steps=15, initial_noise_factor=0.0, optimize_noise=False)
    both = project(G, targets, cfg, progress=False)
    for i in range(2):
        alone = project(G, targets[i:i + 1], cfg, progress=False)
        assert torch.allclose(both.ws[i], alone.ws[0], atol=1e-5)
        assert both.mse[i] == pytest.approx(alone.mse[0], rel=1e-4)


def test_seeded_runs_are_reproducible_and_noise_is_restored():
    G = _tiny_G()
    before = {k: v.clone() for k, v in G.noise_buffers().items()}
    target = G(torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(2)))
    cfg = PIXEL.replace(num_steps=8, seed=7)
    a = project(G, target, cfg, progress=False)
    b = project(G, target, cfg, progress=False)
    c = project(G, target, cfg.replace(seed=8), progress=False)
    assert torch.equal(a.ws, b.ws)
    assert all(torch.equal(a.noise[k], b.noise[k]) for k in a.noise)
    assert not torch.equal(a.ws, c.ws)
    assert set(a.noise) == set(before) and all(v.shape[:2] == (1, 1) for v in a.noise.values())
    for k, v in G.noise_buffers().items():  # the generator's own buffers are untouched
        assert torch.equal(v, before[k])


def test_optimised_noise_maps_stay_normalised():
    G = _tiny_G()
    target = G(torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(4)))
    res = project(G, target, PIXEL.replace(num_steps=10), progress=False)
    for v in res.noise.values():
        assert abs(float(v.mean())) < 1e-4
        assert float(v.std(unbiased=False)) == pytest.approx(1.0, rel=1e-3)


def test_interrupt_keeps_best_so_far():
    G = _tiny_G()
    target = G(torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(9)))

    def stop(step, info):
        if step == 4:
            raise KeyboardInterrupt

    res = project(G, target, PIXEL.replace(num_steps=50), progress=False, callback=stop)
    assert res.interrupted and res.steps_run == 5
    assert 0 <= res.best_step[0] <= 4 and math.isfinite(res.mse[0])


def test_override_noise_swaps_and_restores():
    G = _tiny_G()
    name, buf = next(iter(G.noise_buffers().items()))
    z = torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(0))
    ref = G(z)
    with override_noise(G, {name: torch.zeros(1, 1, *buf.shape)}):
        changed = G(z)
    assert not torch.allclose(ref, changed)
    assert torch.equal(G(z), ref)


def test_bf16_precision_tracks_fp32_and_still_converges():
    # bf16 autocast (opt-in) must compute the same loss as fp32 to bf16's precision (8 bits of
    # mantissa, ~4e-3 relative per op) and still recover a generated image; latents stay fp32.
    G = _tiny_G()
    w_true = G.mapping(torch.from_numpy(np.random.RandomState(12).randn(1, G.z_dim).astype(np.float32)))
    target = G.synthesis(w_true)
    cfg = PIXEL.replace(optimize_noise=False, initial_noise_factor=0.0)
    ref = project(G, target, cfg, progress=False)
    low = project(G, target, cfg.replace(precision="bf16"), progress=False)
    assert low.ws.dtype == torch.float32 and torch.isfinite(low.ws).all()
    assert low.history[0]["mse"] == pytest.approx(ref.history[0]["mse"], rel=3e-2)
    w_avg, _ = latent_stats(G, 500)
    start_mse = float((G.synthesis(w_avg.view(1, 1, -1).expand(1, G.num_ws, -1)) - target).square().mean())
    end_mse = float((synthesize_projection(G, low) - target).square().mean())  # rendered in fp32
    assert end_mse < 0.1 * start_mse


def test_bad_configs_and_targets_are_clear_errors():
    with pytest.raises(LatentlabError, match="space"):
        ProjectorConfig(space="z")
    with pytest.raises(LatentlabError, match="precision"):
        ProjectorConfig(precision="fp16")
    with pytest.raises(LatentlabError):
        ProjectorConfig(rec_weight=0.0, lpips_weight=0.0)
    with pytest.raises(LatentlabError, match="targets"):
        project(_tiny_G(), torch.zeros(1, 3, 32, 16), PIXEL, progress=False)


def test_latent_file_round_trip_and_shape_checks(tmp_path):
    G = _tiny_G()
    ws = torch.randn(1, G.num_ws, G.w_dim)
    noise = {k: torch.randn(1, 1, *v.shape) for k, v in G.noise_buffers().items()}
    path = tmp_path / "latent.npz"
    save_latent(path, ws, noise, model="tiny", settings={"a": 1})
    with pytest.raises(LatentlabError, match="exists"):
        save_latent(path, ws, noise, model="tiny")
    lat = load_latent(path, G)
    assert torch.equal(lat.ws, ws) and lat.model == "tiny" and lat.settings == {"a": 1}
    assert all(torch.equal(lat.noise[k], noise[k]) for k in noise)
    other = StyleGAN2Generator(z_dim=16, w_dim=8, img_resolution=16, mapping_kwargs={"num_layers": 1},
                               synthesis_kwargs={"channel_base": 64, "channel_max": 8})
    with pytest.raises(LatentlabError, match="made with tiny"):
        load_latent(path, other)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(LatentlabError, match="not a latent .npz"):
        load_latent(tmp_path / "bad.npz")
