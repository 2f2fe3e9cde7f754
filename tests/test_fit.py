"""Fitting directions: recovery of a known direction, conditional projection, the sample cache
(with a tiny StyleGAN2 and a real image measurement as the scorer), file round trip, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from latentlab.checkpoints.native import save_native
from latentlab.cli import main
from latentlab.editing.directions import Direction, apply_direction, load_direction
from latentlab.editing.fit import (CHUNK, collect_samples, condition_direction, fit_boundary, fit_direction,
                                   sample_cache_dir, sample_latents)
from latentlab.errors import LatentlabError
from latentlab.models.stylegan2 import StyleGAN2Generator


def _unit(v):
    return v / np.linalg.norm(v)


def _synthetic(n=2000, dim=32, seed=0):
    # Isotropic Gaussian latents, off-centre: InterFaceGAN's setting, where the boundary between
    # the extremes of a linear score is normal to its direction. (On strongly anisotropic latents
    # a regularised classifier of the extremes leans towards cov @ n instead.)
    rng = np.random.RandomState(seed)
    w = rng.randn(n, dim) + rng.randn(dim)
    return rng, w


def test_fit_boundary_recovers_a_known_direction():
    rng, w = _synthetic()
    n_true = _unit(rng.randn(w.shape[1]))
    proj = w @ n_true
    scores = proj + 0.1 * proj.std() * rng.randn(len(w))
    scores[:40] = np.nan  # "no face": ignored
    for method in ("svm", "logistic"):
        n, info = fit_boundary(w, scores, fraction=0.25, method=method)
        assert np.linalg.norm(n) == pytest.approx(1.0, abs=1e-6)
        assert float(n @ n_true) > 0.95, (method, float(n @ n_true))
        assert info["val_accuracy"] > 0.95 and info["n_scored"] == len(w) - 40
        assert info["n_used"] == 2 * round(0.25 * (len(w) - 40))
        assert info["projection_std"] == pytest.approx(np.std(w[40:] @ n), rel=1e-6)
    # the normal points towards higher scores whatever the sign convention of the data
    n_neg, _ = fit_boundary(w, -scores)
    assert float(n_neg @ n_true) < -0.95


def test_fit_boundary_rejects_bad_input():
    rng, w = _synthetic(200, 8)
    with pytest.raises(LatentlabError, match="too few"):
        fit_boundary(w, np.full(200, np.nan))
    with pytest.raises(LatentlabError, match="fraction"):
        fit_boundary(w, w[:, 0], fraction=0.7)
    with pytest.raises(LatentlabError, match="scores"):
        fit_boundary(w, w[:10, 0])


def test_condition_direction_is_the_interfacegan_projection():
    rng = np.random.RandomState(1)
    n1, n2, n3 = (_unit(rng.randn(32)) for _ in range(3))
    c = condition_direction(n1, [n2])
    ref = _unit(n1 - (n1 @ n2) * n2)
    assert np.allclose(c, ref, atol=1e-6)
    assert abs(float(c @ n2)) < 1e-6
    both = condition_direction(n1, [n2, n3])
    assert abs(float(both @ n2)) < 1e-6 and abs(float(both @ n3)) < 1e-6
    assert np.linalg.norm(both) == pytest.approx(1.0, abs=1e-6)
    # projecting out the span: the same result for any basis of it
    alt = condition_direction(n1, [n2 + n3, n2 - n3])
    assert np.allclose(both, alt, atol=1e-5)
    with pytest.raises(LatentlabError, match="span"):
        condition_direction(n2, [n2])


def test_conditional_fit_on_correlated_synthetic_attributes():
    """Two attributes that share a component (like age and glasses): the conditional direction
    moves the first attribute and is orthogonal to the second's fitted direction."""
    rng, w = _synthetic(2000, 32, seed=2)
    a, b = _unit(rng.randn(32)), _unit(rng.randn(32))
    shared = _unit(a + b)
    s1 = w @ _unit(a + 0.8 * shared) + 0.05 * rng.randn(len(w))
    s2 = w @ _unit(b + 0.8 * shared) + 0.05 * rng.randn(len(w))
    n1, _ = fit_boundary(w, s1)
    n2, _ = fit_boundary(w, s2)
    assert float(n1 @ n2) > 0.3  # entangled
    c = condition_direction(n1, [n2])
    assert abs(float(c @ n2)) < 1e-6
    assert float(c @ _unit(a + 0.8 * shared)) > 0.5  # still increases attribute 1


# ------------------------------------------------------------------ with a generator
def _tiny_G() -> StyleGAN2Generator:
    torch.manual_seed(3)
    G = StyleGAN2Generator(z_dim=16, w_dim=16, img_resolution=32, img_channels=3, mapping_kwargs={"num_layers": 2},
                           synthesis_kwargs={"channel_base": 256, "channel_max": 16})
    return G.eval().requires_grad_(False)


def _counting_scorer(log):
    """A real measurement of each image: mean brightness and the red-minus-blue balance."""
    def brightness(images: np.ndarray) -> dict[str, np.ndarray]:
        log.append(len(images))
        x = images.astype(np.float64)
        return {"brightness": x.mean(axis=(1, 2, 3)), "redness": (x[..., 0] - x[..., 2]).mean(axis=(1, 2))}
    return brightness


def test_fit_direction_on_a_generator_moves_the_measured_attribute(tmp_cache):
    G = _tiny_G()
    calls: list[int] = []
    n = 6 * CHUNK + 5
    d = fit_direction(G, "brightness", num_samples=n, seed=4, truncation_psi=1.0,
                      scorer=_counting_scorer(calls), scorer_id="test-brightness", model="tiny", batch=64,
                      progress=False)
    assert sum(calls) == n and d.vector.shape == (G.w_dim,) and d.model == "tiny"
    assert d.meta["samples"] == n and d.meta["attribute"] == "brightness" and d.meta["seed"] == 4
    assert d.meta["val_accuracy"] > 0.8
    # the direction really changes the rendered images' brightness, in the fitted sign
    from latentlab.editing.fit import render_small

    z = torch.from_numpy(sample_latents(G, 8, seed=99))
    ws = G.mapping(z)
    std = d.meta["projection_std"]
    lo = render_small(G, apply_direction(ws, d.vector, -2 * std), 32).astype(float).mean()
    hi = render_small(G, apply_direction(ws, d.vector, 2 * std), 32).astype(float).mean()
    assert hi > lo + 1.0

    # cached: a second fit (another attribute) renders and scores nothing
    calls.clear()
    d2 = fit_direction(G, "redness", num_samples=n, seed=4, truncation_psi=1.0, scorer=_counting_scorer(calls),
                       scorer_id="test-brightness", model="tiny", condition=["brightness"], batch=64,
                       progress=False)
    assert calls == []
    assert abs(float(d2.vector @ d.vector)) < 0.02  # conditioned on a refit of the same data
    assert d2.meta["condition"] == ["brightness"]

    # resume: a lost score chunk is recomputed alone, from the cached render
    folder = sample_cache_dir(G, "tiny", 4, 1.0)
    (folder / "scores-test-brightness_000032.npz").unlink()
    s = collect_samples(G, n, seed=4, truncation_psi=1.0, scorer=_counting_scorer(calls),
                        scorer_id="test-brightness", model="tiny", progress=False)
    assert calls == [CHUNK]
    # the cached w are the mapping of the documented latents
    z_all = torch.from_numpy(np.random.RandomState(4).randn(n, G.z_dim).astype(np.float32))
    assert np.allclose(s.w, G.mapping(z_all)[:, 0].numpy(), atol=1e-5)
    # a prefix of the same run needs nothing new
    calls.clear()
    s_small = collect_samples(G, CHUNK + 3, seed=4, truncation_psi=1.0, scorer=_counting_scorer(calls),
                              scorer_id="test-brightness", model="tiny", progress=False)
    assert calls == [] and np.array_equal(s_small.w, s.w[:CHUNK + 3])


def test_direction_file_round_trip(tmp_path):
    rng = np.random.RandomState(0)
    d = Direction("smile", _unit(rng.randn(512)).astype(np.float32), "0-5", "ffhq-mobile",
                  {"samples": 900, "val_accuracy": 0.91, "condition": ["age"]})
    p = d.save(tmp_path / "smile.npz")
    back = load_direction(p)
    assert back.name == "smile" and back.layers == "0-5" and back.model == "ffhq-mobile"
    assert np.array_equal(back.vector, d.vector) and back.meta == d.meta
    with pytest.raises(LatentlabError, match="exists"):
        d.save(p)


@pytest.mark.parametrize("meta, sigma", [
    ({"projection_std": 0.35, "truncation_psi": 0.7}, 0.5),  # truncation shrank the spread by psi
    ({"projection_std": 0.35}, 0.35),  # no psi recorded: the samples were untruncated
    ({"projection_std": 0.35, "truncation_psi": 1.0}, 0.35),
    ({}, None), ({"projection_std": 0}, None), ({"projection_std": -1}, None),
    ({"projection_std": float("nan")}, None), ({"projection_std": "x"}, None),
    ({"projection_std": 1e9}, None), ({"projection_std": 0.35, "truncation_psi": 0}, None),
])
def test_direction_sigma_formula_and_hostile_meta(meta, sigma):
    d = Direction("smile", _unit(np.ones(16)).astype(np.float32), meta=meta)
    if sigma is None:
        assert d.sigma() is None
        assert d.demo_strength() == 3.0
    else:
        assert d.sigma() == pytest.approx(sigma, rel=1e-12)
        assert d.demo_strength() == pytest.approx(round(2 * sigma, 1))
    # a file's own demo_strength is used only when no spread is recorded
    assert Direction("x", np.ones(16, np.float32), meta={"demo_strength": 2.2}).demo_strength() == 2.2


def test_cli_list_and_fit_errors(tmp_cache, tmp_path):
    G = _tiny_G()
    net = save_native("stylegan2", G.config, G.state_dict(), tmp_path / "tiny.safetensors")
    ddir = tmp_path / "dirs"
    Direction("smile", _unit(np.ones(16)).astype(np.float32), "0-5", "tiny",
              {"samples": 64, "val_accuracy": 0.875, "condition": []}).save(ddir / "tiny" / "smile.npz")
    r = CliRunner().invoke(main, ["directions", "list", "--network", str(net), "--directions-dir", str(ddir),
                                  "--json"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert [(x["attribute"], x["source"], x["val_accuracy"]) for x in rows] == [("smile", "user", 0.875)]
    r = CliRunner().invoke(main, ["directions", "list", "--network", str(net), "--directions-dir", str(ddir)])
    assert r.exit_code == 0 and "0.875" in r.output and "smile" in r.output

    r = CliRunner().invoke(main, ["directions", "fit", "--network", str(net), "--attribute", "beauty",
                                  "--out", str(tmp_path / "x.npz")])
    assert r.exit_code == 1 and "unknown attribute 'beauty'" in r.output
    r = CliRunner().invoke(main, ["directions", "fit", "--network", str(net), "--attribute", "smile,age",
                                  "--out", str(tmp_path / "x.npz")])
    assert r.exit_code == 1 and "--outdir" in r.output
    # the real scorer finds no faces in a random 32 px generator's images: a one-line error
    r = CliRunner().invoke(main, ["directions", "fit", "--network", str(net), "--attribute", "smile",
                                  "--samples", "8", "--out", str(tmp_path / "x.npz"), "--device", "cpu"])
    assert r.exit_code == 1 and "too few scored samples" in r.output, r.output
    assert not (tmp_path / "x.npz").exists()


def test_cli_components_lists_sefa_eigenvalues_and_rows(tmp_cache, tmp_path):
    G = _tiny_G()
    net = save_native("stylegan2", G.config, G.state_dict(), tmp_path / "tiny.safetensors")
    r = CliRunner().invoke(main, ["directions", "components", "--network", str(net), "--layers", "rows:2-5",
                                  "--num", "3", "--device", "cpu"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    # independent reference: eigenvalues of A^T A, A = the row-normalised affines feeding rows 2, 3, 4 (slice meaning)
    modules = dict(G.named_modules())
    mats = [modules[f"{name}.affine"].weight.double().numpy() for name, row, _ in G.layer_rows() if 2 <= row < 5]
    A = np.concatenate([m / np.linalg.norm(m, axis=1, keepdims=True) for m in mats])
    top = np.linalg.eigvalsh(A.T @ A)[::-1][:3]
    lines = [ln.split() for ln in r.output.splitlines() if ln.strip().split()[:1] in (["0"], ["1"], ["2"])]
    assert [ln[1] for ln in lines] == ["sefa"] * 3
    np.testing.assert_allclose([float(ln[2]) for ln in lines], top, rtol=1e-3)
    assert all(ln[4].startswith("rows:2-5") for ln in lines)
    r = CliRunner().invoke(main, ["directions", "components", "--network", str(net), "--method", "ganspace",
                                  "--samples", "200", "--layers", "rows:99", "--device", "cpu"])
    assert r.exit_code == 1 and r.output.startswith("latentlab: error: layer range") and len(r.output.strip().splitlines()) == 1, r.output
