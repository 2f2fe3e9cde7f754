"""Projection: schedules against NVIDIA's formulas, convergence on a tiny generator, batch
independence, reproducibility, interruption, latent files, and the one entry point ``invert``."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from conftest import make_tiny

from latentlab.errors import LatentlabError
from latentlab.inversion import ProjectorConfig, TuningConfig, invert, latent_stats, project, synthesize_projection
from latentlab.inversion.schedules import latent_noise_scale, learning_rate
from latentlab.latent import Latent, load_latent, render, save_latent
from latentlab.models.base import override_noise
from latentlab.progress import Progress


def _tiny_G():
    return make_tiny(3, noise=True)


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
    with torch.no_grad():  # the start is the generator's own w_avg, the spread is around it
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

    def stop(ev: Progress) -> None:
        if ev.step == 5:
            raise KeyboardInterrupt  # Ctrl-C inside the loop

    res = project(G, target, PIXEL.replace(num_steps=50), progress=stop)
    assert res.interrupted and res.steps_run == 5
    assert 0 <= res.best_step[0] <= 4 and math.isfinite(res.mse[0])

    steps = []
    cancel = lambda: len(steps) >= 3  # noqa: E731 - a cancel callable, checked before each step
    res = project(G, target, PIXEL.replace(num_steps=50), progress=lambda ev: steps.append(ev.step), cancel=cancel)
    assert res.interrupted and res.steps_run == 3 and steps == [1, 2, 3]


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
    save_latent(Latent(ws, noise, network="tiny", settings={"a": 1}, metrics={"psnr": 31.5}), path)
    with pytest.raises(LatentlabError, match="exists"):
        save_latent(Latent(ws, noise, network="tiny"), path)
    lat = load_latent(path, G)
    assert torch.equal(lat.ws, ws) and lat.network == "tiny" and lat.settings == {"a": 1}
    assert lat.metrics == {"psnr": 31.5}
    assert all(torch.equal(lat.noise[k], noise[k]) for k in noise)
    with pytest.raises(LatentlabError, match="not 'other'"):
        load_latent(path, G, network="other")
    smaller = make_tiny(0, w_dim=8, img_resolution=16, mapping_kwargs={"num_layers": 1},
                        synthesis_kwargs={"channel_base": 64, "channel_max": 8})
    with pytest.raises(LatentlabError, match="made with tiny"):
        load_latent(path, smaller)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(LatentlabError, match="not a latent .npz"):
        load_latent(tmp_path / "bad.npz")


# ------------------------------------------------------------------------------------------ invert
def _photo(G, seed: int) -> np.ndarray:
    """A generated face of G as uint8 pixels [R, R, 3] (an 'aligned photo' G can reach)."""
    z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim).astype(np.float32))
    with torch.no_grad():
        img = G(z, noise_mode="const")
    return ((img[0].permute(1, 2, 0).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()


def test_invert_projects_then_measures_with_independent_metrics():
    G = _tiny_G()
    lat = invert(_photo(G, 4), G, PIXEL.replace(num_steps=30), align=False, network="tiny")
    assert isinstance(lat, Latent) and lat.ws.shape == (1, G.num_ws, G.w_dim) and lat.network == "tiny"
    assert lat.tuning is None and lat.photo is not None and lat.transform is not None
    assert lat.settings["config"]["num_steps"] == 30 and lat.settings["aligned"] is False
    m = lat.metrics
    assert m["steps"] == 30 and math.isfinite(m["psnr"]) and m["seconds"] > 0 and m["lpips_alex"] is not None
    # the PSNR is that of the latent drawn as every command draws it, against the photo
    recon = torch.from_numpy(render(G, lat).astype(np.float64))
    target = torch.from_numpy(lat.photo.aligned.astype(np.float64))
    mse = float(((recon - target) / 255.0).square().mean())
    assert m["psnr"] == pytest.approx(-10 * math.log10(mse), abs=0.1)


def test_metrics_do_not_follow_the_loss_resolution():
    """A projection supervised at 16 px is still measured at the metric resolution (here the tiny
    generator's 32 px), so that settings with different loss resolutions compare."""
    G = _tiny_G()
    lat = invert(_photo(G, 4), G, PIXEL.replace(num_steps=10, loss_resolution=16), align=False, network="tiny")
    recon = torch.from_numpy(render(G, lat).astype(np.float64))
    target = torch.from_numpy(lat.photo.aligned.astype(np.float64))
    mse = float(((recon - target) / 255.0).square().mean())
    assert lat.metrics["metric_resolution"] == 32
    assert lat.metrics["psnr"] == pytest.approx(-10 * math.log10(mse), abs=0.1)


def test_invert_batch_gives_each_photo_its_own_latent_and_is_reproducible():
    G = _tiny_G()
    photos = [_photo(G, 4), _photo(G, 5)]
    cfg = PIXEL.replace(num_steps=12)
    both = invert(photos, G, cfg, align=False, metrics=False)
    assert len(both) == 2 and not torch.equal(both[0].ws, both[1].ws)
    assert [x.name for x in both] == ["photo", "photo"] and all(x.photo is not None for x in both)
    same = invert(photos, G, cfg, align=False, metrics=False)
    assert all(torch.equal(a.ws, b.ws) for a, b in zip(both, same))
    # without random noise draws (which depend on the batch size) a batch equals separate runs
    exact = cfg.replace(optimize_noise=False, initial_noise_factor=0.0)
    pair = invert(photos, G, exact, align=False, metrics=False)
    alone = invert(photos[1], G, exact, align=False, metrics=False)
    assert torch.allclose(pair[1].ws, alone.ws, atol=1e-5)


def test_invert_with_tuning_measures_what_is_saved(tmp_path):
    G = _tiny_G()
    tune = TuningConfig(num_steps=6, learning_rate=3e-3, lpips_weight=0.0, l2_weight=1.0, locality_weight=0.0,
                        precision="fp32")
    lat = invert(_photo(G, 6), G, PIXEL.replace(num_steps=8, tuning=tune), align=False, network="tiny")
    assert lat.tuning is not None and lat.tuning.dtype == "float16"
    assert lat.metrics["tuning_steps"] == 6 and "pivot_psnr" in lat.metrics
    for v in lat.tuning.delta.values():  # the delta holds exactly what a float16 file holds
        assert torch.equal(v, v.half().float())
    save_latent(lat, tmp_path / "me.npz")
    back = load_latent(tmp_path / "me.npz", G, network="tiny")
    assert back.tuning.sha256 is not None and sorted(back.tuning.delta) == sorted(lat.tuning.delta)
    assert np.array_equal(render(G, back), render(G, lat))  # drawn the same from memory and from disk
    assert back.metrics["psnr"] == pytest.approx(lat.metrics["psnr"])


def test_invert_cancelled_keeps_the_best_latent_untuned():
    G = _tiny_G()
    events = []

    def progress(ev: Progress) -> None:
        events.append((ev.stage, ev.step))

    stop = lambda: sum(1 for s, _ in events if s == "project") >= 4  # noqa: E731
    lat = invert(_photo(G, 7), G, PIXEL.replace(num_steps=40, tuning=TuningConfig(num_steps=5, precision="fp32")),
                 align=False, progress=progress, cancel=stop)
    assert lat.interrupted and lat.tuning is None and lat.metrics["steps"] == 4
    assert not any(s == "tune" for s, _ in events)


# ------------------------------------------------------------------------------ from a start latent
def _noise_maps(G, seed: int) -> dict:
    gen = torch.Generator().manual_seed(seed)
    return {k: torch.randn((1, 1, *b.shape[-2:]), generator=gen) for k, b in G.noise_buffers().items()}


def test_projection_from_a_start_begins_there_with_its_noise():
    """A target drawn from (w, noise) is met exactly at step 0 when the projection starts at w with
    those noise maps, held fixed or optimised; without them (the mean latent, G's own buffers) it is not."""
    G = _tiny_G()
    w = G.mapping(torch.from_numpy(np.random.RandomState(2).randn(1, G.z_dim).astype(np.float32)))
    noise = _noise_maps(G, 1)
    with torch.no_grad(), override_noise(G, noise):
        target = G.synthesis(w, noise_mode="const")
    cfg = PIXEL.replace(num_steps=4, optimize_noise=False, initial_noise_factor=0.0)
    held = project(G, target, cfg, start=w, start_noise=noise, progress=False)
    assert held.mse[0] < 1e-10 and held.best_step[0] == 0
    assert torch.equal(held.ws, w) and all(torch.equal(held.noise[k], noise[k]) for k in noise)
    optimised = project(G, target, cfg.replace(optimize_noise=True), start=w, start_noise=noise, progress=False)
    assert optimised.mse[0] < 1e-10 and torch.equal(optimised.ws, w)
    assert project(G, target, cfg, start=w, progress=False).mse[0] > 1e-4  # G's own noise buffers differ
    assert project(G, target, cfg, progress=False).mse[0] > 1e-3  # from the mean latent
    for kw, msg in [({"start": w[:, :2]}, "start must be a latent"),
                    ({"start": w * float("nan")}, "NaN"),
                    ({"start": w, "start_noise": {"nope": torch.zeros(1, 1, 4, 4)}}, "maps the generator lacks")]:
        with pytest.raises(LatentlabError, match=msg):
            project(G, target, cfg, progress=False, **kw)
    # only the named rows move, and they alone bring a change made on them back
    moved = w.clone()
    moved[:, :3] += 0.5 * torch.from_numpy(np.random.RandomState(3).randn(1, 1, G.w_dim).astype(np.float32))
    with torch.no_grad(), override_noise(G, noise):
        target2 = G.synthesis(moved, noise_mode="const")
    some = project(G, target2, cfg.replace(num_steps=60, space="w+", initial_learning_rate=0.02), start=w,
                   start_noise=noise, rows=[0, 1, 2], progress=False)
    assert torch.equal(some.ws[:, 3:], w[:, 3:])
    assert float((some.ws - moved).norm()) < 0.75 * float((w - moved).norm())
    with torch.no_grad(), override_noise(G, noise):
        assert some.mse[0] < 0.25 * float((G.synthesis(w, noise_mode="const") - target2).square().mean())
    with pytest.raises(LatentlabError, match="rows= needs"):
        project(G, target2, cfg, rows=[0], progress=False)
    w_plus = w.clone()
    w_plus[:, 0] += 1
    with pytest.raises(LatentlabError, match="rows are all equal"):
        project(G, target, cfg.replace(space="w"), start=w_plus, progress=False)


def test_invert_from_a_tuned_start_keeps_its_tuning_and_moves_to_the_new_photo():
    """The same person in a second photo (here: the tuned first photo's latent with its coarse rows
    moved) is met from the first photo's latent with its tuned generator, and carries that tuning."""
    from latentlab.latent import generator_for, render_ws

    G = _tiny_G()
    tune = TuningConfig(num_steps=6, learning_rate=3e-3, lpips_weight=0.0, l2_weight=1.0, locality_weight=0.0,
                        precision="fp32")
    first = invert(_photo(G, 6), G, PIXEL.replace(num_steps=8, tuning=tune), align=False, network="tiny")
    moved = first.ws.clone()
    moved[:, :3] += 0.5 * torch.from_numpy(np.random.RandomState(3).randn(1, 1, G.w_dim).astype(np.float32))
    second_photo = render_ws(generator_for(G, first), moved, first.noise)[0]
    follow = PIXEL.replace(space="w+", num_steps=40, optimize_noise=False, initial_noise_factor=0.0)
    second = invert(second_photo, G, follow, align=False, network="tiny", start=first)
    assert second.tuning is first.tuning and second.settings["start"] == first.name
    photo = second_photo.astype(np.float64)
    before = np.square(render(G, first).astype(np.float64) - photo).mean()
    after = np.square(render(G, second).astype(np.float64) - photo).mean()
    assert after < 0.3 * before
    assert second.metrics["psnr"] == pytest.approx(10 * math.log10(255.0 ** 2 / after), abs=0.1)
    with pytest.raises(LatentlabError, match="keeps the start's tuning"):
        invert(second_photo, G, follow.replace(tuning=tune), align=False, start=first)
