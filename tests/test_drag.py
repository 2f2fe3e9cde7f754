"""Drag editing: the pieces against independent formulas (bilinear feature lookup, nearest-feature
tracking, the template distance, the photo -> aligned mapping, the motion disc), the drag moving a
handle's content to its target on a tiny generator with both ways of following the handles, the
same result from the API, the command line and the web UI, and hostile points, masks and latents
refused in one line with nothing written."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from conftest import make_tiny, save_tiny

import latentlab as ll
from latentlab.cli import main
from latentlab.editing.drag import (DragConfig, check_mask, check_points, drag, drag_rows, motion_loss, parse_points,
                                    photo_to_aligned, sample_features, template_distance, track)
from latentlab.errors import LatentlabError
from latentlab.faces import FaceTransform
from latentlab.imageio import save_image
from latentlab.latent import Latent, Tuning, delta_path_for, save_latent

#: Settings that make the 32 px tiny generator move: its 16 px block's features, a big step; only
#: rows 0-4 (4, 8, 8, 16, 16 px) move, so that rows held fixed can be checked (the default, rows of
#: 32 px and less, is every row of this model); sub-goals 1 px apart (16 px at 512).
TINY = dict(feature_resolution=16, lr=0.02, max_steps=120, rows="rows:0-5", line_step=16.0)
COARSE = [0, 1, 2, 3, 4]
POINTS = [((10.0, 12.0), (16.0, 12.0))]


@pytest.fixture(scope="module")
def G():
    return make_tiny(0, noise=True)


@pytest.fixture(scope="module")
def sample(G):
    z = torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return Latent(G.mapping(z), network="tiny")


# ------------------------------------------------------------------------------ the pieces
def test_sample_features_is_bilinear_on_the_block_grid():
    feats = torch.arange(2 * 4 * 4, dtype=torch.float32).reshape(1, 2, 4, 4)
    # image 8 px, features 4 px: image pixel centre x maps to feature coordinate (x + 0.5) / 2 - 0.5
    pts = torch.tensor([[1.5, 1.5], [3.5, 5.5], [0.5, 5.9], [2.2, 0.7]])
    got = sample_features(feats, pts, 8)
    for (x, y), row in zip(pts.tolist(), got):
        fx, fy = (x + 0.5) / 2 - 0.5, (y + 0.5) / 2 - 0.5
        x0, y0 = int(np.floor(fx)), int(np.floor(fy))
        ax, ay = fx - x0, fy - y0
        f = feats[0].numpy()
        want = ((1 - ax) * (1 - ay) * f[:, y0, x0] + ax * (1 - ay) * f[:, y0, x0 + 1]
                + (1 - ax) * ay * f[:, y0 + 1, x0] + ax * ay * f[:, y0 + 1, x0 + 1])
        np.testing.assert_allclose(row.numpy(), want, atol=1e-5)


def test_tracking_finds_the_initial_feature_within_its_square():
    feats = torch.zeros(1, 3, 32, 32)
    feats[0, :, 20, 9] = torch.tensor([1.0, -2.0, 0.5])  # the handle's feature moved to (x 9, y 20)
    initial = torch.tensor([[1.0, -2.0, 0.5]])
    moved = track(feats, torch.tensor([[5.0, 17.0]]), initial, radius=4, resolution=32)
    assert moved.tolist() == [[9.0, 20.0]]
    stays = track(feats, torch.tensor([[25.0, 5.0]]), initial, radius=4, resolution=32)  # out of reach
    assert 21 <= stays[0, 0] <= 29 and 1 <= stays[0, 1] <= 9


def test_tracking_moves_many_handles_at_once_as_one_by_one():
    feats = torch.randn(1, 5, 16, 16, generator=torch.Generator().manual_seed(0))
    handles = torch.tensor([[3.0, 4.0], [12.0, 9.0], [0.0, 31.0], [31.0, 31.0]])
    initial = torch.randn(4, 5, generator=torch.Generator().manual_seed(1))
    together = track(feats, handles, initial, radius=5, resolution=32)
    one_by_one = torch.cat([track(feats, handles[i:i + 1], initial[i:i + 1], radius=5, resolution=32)
                            for i in range(4)])
    assert torch.equal(together, one_by_one)


def _bilinear(f: np.ndarray, x: float, y: float, resolution: int) -> np.ndarray:
    """Features [C, h, w] at image point (x, y) of an R x R image, edge pixels repeated."""
    h = f.shape[1]
    fx, fy = (x + 0.5) * h / resolution - 0.5, (y + 0.5) * h / resolution - 0.5
    fx, fy = min(max(fx, 0.0), h - 1.0), min(max(fy, 0.0), h - 1.0)
    x0, y0 = min(int(np.floor(fx)), h - 2), min(int(np.floor(fy)), h - 2)
    ax, ay = fx - x0, fy - y0
    return ((1 - ax) * (1 - ay) * f[:, y0, x0] + ax * (1 - ay) * f[:, y0, x0 + 1]
            + (1 - ax) * ay * f[:, y0 + 1, x0] + ax * ay * f[:, y0 + 1, x0 + 1])


def test_motion_loss_is_the_mean_l1_of_each_disc_one_step_toward_its_target():
    feats = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(2), requires_grad=True)
    handles = torch.tensor([[10.0, 12.0], [20.5, 7.25]])
    targets = torch.tensor([[16.0, 12.0], [17.5, 11.25]])
    disc = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, -1.0], [-1.0, 0.0], [0.0, 1.0]])
    loss = motion_loss(feats, handles, targets, disc, 32)
    f0 = feats.detach()[0].numpy().astype(np.float64)

    def reference(f: np.ndarray) -> float:  # the features at q come from f0: a constant (stop-gradient)
        total = 0.0
        for (hx, hy), (tx, ty) in zip(handles.tolist(), targets.tolist()):
            dx, dy = (tx - hx) / np.hypot(tx - hx, ty - hy), (ty - hy) / np.hypot(tx - hx, ty - hy)
            total += np.mean([np.abs(_bilinear(f, hx + ox + dx, hy + oy + dy, 32) - _bilinear(f0, hx + ox, hy + oy, 32))
                              for ox, oy in disc.tolist()])
        return total

    assert abs(float(loss.detach()) - reference(f0)) < 1e-5
    loss.backward()
    grad = feats.grad[0].numpy()
    picks = [np.unravel_index(np.argmax(np.abs(grad)), grad.shape), (0, 6, 4), (1, 6, 5), (2, 3, 9), (3, 6, 6)]
    for c, y, x in picks:  # central differences of the reference
        e = np.zeros_like(f0)
        e[c, y, x] = 1e-4
        numeric = (reference(f0 + e) - reference(f0 - e)) / 2e-4
        assert abs(numeric - grad[c, y, x]) < 1e-3, (c, y, x, numeric, grad[c, y, x])


def test_template_distance_is_the_mean_l1_of_a_shifted_disc_on_linear_features():
    # features linear in position: F_c(u, v) = a_c u + b_c v on the 16 px grid, so bilinear lookup is
    # exact and a disc read (dx, dy) image px away differs by |a_c dx + b_c dy| * 16 / 32 everywhere
    a, b = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([0.25, 1.0, -3.0])
    v, u = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")
    feats = (a[:, None, None] * u + b[:, None, None] * v)[None]
    disc = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, -2.0], [-2.0, 0.0], [0.0, 2.0]])
    start = torch.tensor([[10.0, 12.0], [8.5, 9.25]])
    template = sample_features(feats, (start[:, None] + disc[None]).reshape(-1, 2), 32).reshape(2, 5, 3)
    shift = torch.tensor([[3.0, 0.0], [-1.5, 2.0]])
    got = template_distance(feats, start + shift, template, disc, 32)
    want = [(a * dx + b * dy).abs().mean() * 0.5 for dx, dy in shift.tolist()]
    torch.testing.assert_close(got, torch.stack(want))
    assert template_distance(feats, start, template, disc, 32).abs().max() < 1e-5


def test_photo_points_map_through_the_alignment():
    s = 40.0 / 32.0  # aligned 32 px frame -> a 40 px square at (30, 20) of a 120 x 100 photo
    tf = FaceTransform(np.array([[s, 0, 30.0 - 0.5 + 0.5 * s], [0, s, 20.0 - 0.5 + 0.5 * s], [0, 0, 1]]), 32,
                       (120, 100), np.array([[30.0, 20], [30, 60], [70, 60], [70, 20]]), None)
    lat = Latent(torch.zeros(1, 8, 16), transform=tf)
    got = photo_to_aligned(lat, [((30.0 - 0.5 + 0.5 * s, 20.0 - 0.5 + 0.5 * s), (50.0, 40.0))], 32)
    np.testing.assert_allclose(got[0, 0], [0, 0], atol=1e-9)  # the crop's first pixel centre
    np.testing.assert_allclose(got[0, 1], [(50.0 - 30.0 + 0.5 - 0.5 * s) / s, (40.0 - 20 + 0.5 - 0.5 * s) / s])
    got64 = photo_to_aligned(lat, [((50.0, 40.0), (50.0, 40.0))], 64)  # at twice the resolution
    np.testing.assert_allclose((got64[0, 0] + 0.5) / 2 - 0.5, got[0, 1], atol=1e-9)
    with pytest.raises(LatentlabError, match="outside the 100 x 120 photo"):
        photo_to_aligned(lat, [((99.9, 10.0), (150.0, 10.0))], 32)
    with pytest.raises(LatentlabError, match="no alignment"):
        photo_to_aligned(Latent(torch.zeros(1, 8, 16)), [((1.0, 1.0), (2.0, 2.0))], 32)


def test_bad_drag_settings_are_refused_in_one_line():
    for kw, frag in [({"follow": "jump"}, "follow must be line or track"), ({"line_accept": 1.0}, "line_accept"),
                     ({"line_budget": 0}, "line_budget"), ({"line_step": 0.0}, "line_step"),
                     ({"lr": float("nan")}, "lr"), ({"max_steps": 0}, "max_steps")]:
        with pytest.raises(LatentlabError, match=frag):
            DragConfig(**kw)


def test_rows_that_move_are_the_coarse_ones(G):
    assert list(G.ws_resolutions) == [4, 8, 8, 16, 16, 32, 32, 32]
    assert drag_rows(G, DragConfig()) == list(range(8))  # rows feeding layers of 32 px or less: all here
    assert drag_rows(G, DragConfig(max_row_resolution=8)) == [0, 1, 2]
    assert drag_rows(G, DragConfig(rows="rows:0-2")) == [0, 1]


def test_points_text_and_checks():
    assert parse_points("1,2>3,4; 5.5,6>7,8") == [((1.0, 2.0), (3.0, 4.0)), ((5.5, 6.0), (7.0, 8.0))]
    h, t = check_points([((1, 2), (3, 4))], 32)
    assert h.tolist() == [[1, 2]] and t.tolist() == [[3, 4]]
    for bad, frag in [("", "no points"), ("1,2", "expected x,y>x,y"), ("1,2>3", "is not x,y"),
                      ("a,b>1,2", "not two numbers"), ("nan,1>2,3", "finite"), ("1,2>>3,4", "expected x,y>x,y")]:
        with pytest.raises(LatentlabError, match=frag):
            parse_points(bad)
    for bad, frag in [([], "at least one"), ([((1, 2), (40, 4))], "outside the 32 x 32"),
                      ([((1, float("nan")), (3, 4))], "NaN"), ([((1, 2, 3), (3, 4, 5))], "pairs of"),
                      ([((1, 2), (3, 4))] * 129, "at most 128"), ("1,2>3,4", "pairs of")]:
        with pytest.raises(LatentlabError, match=frag):
            check_points(bad, 32)
    with pytest.raises(LatentlabError, match="must be 32x32"):
        check_mask(np.ones((16, 16), bool), 32)
    with pytest.raises(LatentlabError, match="empty"):
        check_mask(np.zeros((32, 32), np.uint8), 32)
    assert check_mask(np.full((32, 32, 3), 255, np.uint8), 32).all()


# ------------------------------------------------------------------------------ the drag
@pytest.mark.parametrize("follow", ["line", "track"])
def test_a_drag_moves_the_handle_to_its_target_and_moves_only_the_coarse_rows(G, sample, follow):
    out, res = drag(G, sample, POINTS, config=DragConfig(**TINY, follow=follow))
    assert res.stopped == "arrived" and res.distances()[0] <= 1.0  # 1 px at 512 px scale, at least 1 px
    assert drag_rows(G, DragConfig(**TINY)) == COARSE
    moved = (out.ws - sample.ws).abs().amax(dim=2)[0]
    assert (moved[COARSE] > 0).any() and (moved[5:] == 0).all()
    op = out.history[-1]
    assert op["op"] == "drag" and op["steps"] == res.steps and op["stopped"] == "arrived"
    assert op["points"] == [[[10.0, 12.0], [16.0, 12.0]]] and len(res.handles) == res.steps + 1
    again, _ = drag(G, sample, POINTS, config=DragConfig(**TINY, follow=follow))
    assert torch.equal(again.ws, out.ws)  # deterministic


def test_a_line_drag_holds_a_handle_already_on_its_target(G, sample):
    cfg = DragConfig(**{**TINY, "max_steps": 40})
    held = ((21.0, 20.0), (21.0, 20.0))
    alone, _ = drag(G, sample, POINTS, config=cfg)
    both, res = drag(G, sample, [*POINTS, held], config=cfg)
    assert (res.handles[:, 1] == [21.0, 20.0]).all()  # it never moves
    disc = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, -1.0], [-1.0, 0.0], [0.0, 1.0]])
    with torch.no_grad():
        f0, f_alone, f_both = (G.synthesis_features(x.ws, 16) for x in (sample, alone, both))
    p = torch.tensor([held[0]])
    template = sample_features(f0, p + disc, 32)[None]
    # the other handle's move changes the features there; holding it keeps them nearer the start
    assert template_distance(f_both, p, template, disc, 32) < 0.7 * template_distance(f_alone, p, template, disc, 32)


def _best_match(G, latent, feature: torch.Tensor) -> tuple[list[float], float]:
    """Where in the 32 px image (every pixel searched) the 16 px block's features are nearest (L1)
    to ``feature`` [1, C], and that distance."""
    with torch.no_grad():
        f = G.synthesis_features(latent.ws, 16)
        ys, xs = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
        pts = torch.stack([xs.flatten(), ys.flatten()], dim=1)
        d = (sample_features(f, pts, 32) - feature).abs().sum(dim=1)
    return pts[d.argmin()].tolist(), float(d.min())


def test_a_line_drag_moves_the_content_along_the_line_one_sub_goal_at_a_time(G, sample):
    cfg = DragConfig(**TINY)
    out, res = drag(G, sample, POINTS, config=cfg)
    trail = res.handles[:, 0]
    np.testing.assert_allclose(trail[:, 1], 12.0)  # on the line from (10, 12) to (16, 12)
    steps = np.diff(trail[:, 0])
    assert (steps >= 0).all() and set(np.round(steps, 6)) <= {0.0, 1.0}  # sub-goals 1 px apart, forward only
    assert trail[-1].tolist() == [16.0, 12.0] and res.stopped == "arrived"
    held = np.diff(np.flatnonzero(np.r_[1.0, steps, 1.0]))  # steps spent on each sub-goal
    assert held.max() <= cfg.line_budget
    # the content under the handle went toward the target: searched over the whole image, the
    # feature nearest to the handle's initial one lies further right than the handle, and the
    # disc of the target is nearer the handle's initial disc than before the drag
    with torch.no_grad():
        f0 = G.synthesis_features(sample.ws, 16)
        f1 = G.synthesis_features(out.ws, 16)
    h, t = torch.tensor([POINTS[0][0]]), torch.tensor([POINTS[0][1]])
    assert _best_match(G, sample, sample_features(f0, h, 32))[0] == [10.0, 12.0]
    (x, y), _ = _best_match(G, out, sample_features(f0, h, 32))
    assert x >= 12 and abs(y - 12) <= 1
    disc = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, -1.0], [-1.0, 0.0], [0.0, 1.0]])
    template = sample_features(f0, h + disc, 32)[None]
    assert template_distance(f1, t, template, disc, 32) < 0.8 * template_distance(f0, t, template, disc, 32)


def test_a_mask_keeps_the_features_outside_it(G, sample):
    free, _ = drag(G, sample, POINTS, config=DragConfig(**{**TINY, "max_steps": 30, "patience": 0}))
    region = np.zeros((32, 32), bool)
    region[6:18, 6:22] = True
    held, _ = drag(G, sample, POINTS, mask=region, config=DragConfig(**{**TINY, "max_steps": 30, "patience": 0,
                                                                        "mask_weight": 50.0}))
    with torch.no_grad():
        f0, f_free, f_held = (G.synthesis_features(x.ws, 16) for x in (sample, free, held))
    outside = F.interpolate(torch.from_numpy(~region).float()[None, None], size=(16, 16), mode="area") == 1
    change = lambda f: float(((f - f0).abs() * outside).sum())  # noqa: E731
    assert change(f_held) < 0.7 * change(f_free)


def test_a_tuned_latent_is_dragged_in_its_tuned_generator(G, sample):
    base = dict(G.synthesis_network.named_parameters())
    other = dict(make_tiny(5, noise=True).synthesis_network.named_parameters())
    tuning = Tuning.from_delta({k: other[k].detach() - base[k].detach() for k in base}, dtype="float32")
    tuned = sample.replace(tuning=tuning)
    out, _ = drag(G, tuned, POINTS, config=DragConfig(**{**TINY, "max_steps": 5, "patience": 0}))
    other_G = make_tiny(5, noise=True)
    other_G.load_state_dict({k: v for k, v in G.state_dict().items() if k.endswith("noise_const")}, strict=False)
    ref, _ = drag(other_G, sample, POINTS, config=DragConfig(**{**TINY, "max_steps": 5, "patience": 0}))
    assert out.tuning is tuning
    torch.testing.assert_close(out.ws, ref.ws, rtol=0, atol=1e-5)  # the same drag as in that generator


# ------------------------------------------------------------------------------ API, CLI, UI
@pytest.fixture(scope="module")
def env(tmp_path_factory, G, sample):
    root = tmp_path_factory.mktemp("drag")
    net = save_tiny(G, root / "tiny.safetensors")
    save_latent(sample.replace(network=str(net)), root / "s.npz")
    return {"root": root, "net": str(net)}


def _cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_api_cli_and_ui_give_the_same_drag(env, tmp_path):
    from latentlab.ui.core import Studio

    G = ll.load_generator(env["net"])
    s = ll.load_latent(env["root"] / "s.npz", G)
    cfg = {k: v for k, v in TINY.items() if k != "max_steps"}
    api = s.drag(POINTS, coords="aligned", steps=TINY["max_steps"], **cfg)
    res = _cli("drag", env["root"] / "s.npz", "--points", "10,12>16,12", "--coords", "aligned", "--steps", 120,
               "--line-step", 16, "--lr", 0.02, "--feature-resolution", 16, "--drag-rows", "rows:0-5",
               "--network", env["net"], "--outdir", tmp_path, "--name", "d")
    assert res.exit_code == 0, res.output
    assert "stopped: arrived" in res.output
    cli = ll.load_latent(tmp_path / "d.npz", G)
    assert torch.equal(cli.ws, api.ws) and (tmp_path / "d.png").is_file()
    session = Studio(G, env["net"]).new_session()
    lid = session.latents.put(s)
    job = session.wait(session.start_drag(lid, [[10, 12, 16, 12]], steps=120, lr=0.02, rows="rows:0-5",
                                              line_step=16.0), timeout=120)
    assert job.status == "done", job.error
    ui = session.latents.need(job.result["latent"])
    assert torch.equal(ui.ws, api.ws) and job.result["stopped"] == "arrived"
    assert job.to_dict()["handles"] == job.result["handles"] == api.history[-1]["handles_final"]
    assert np.abs(session.images.need(job.result["image"]).astype(int) - api.array.astype(int)).max() <= 1
    with pytest.raises(LatentlabError, match="feature resolution 64 px"):
        s.drag(POINTS, coords="aligned", feature_resolution=64)


def test_hostile_drag_inputs_are_one_line_and_write_nothing(env, tmp_path):
    base = ["drag", env["root"] / "s.npz", "--network", env["net"], "--outdir", tmp_path / "o", "--coords", "aligned",
            "--feature-resolution", 16]  # (also the default on a 32 px model)
    for pts, frag in [("99,1>2,3", "outside the 32 x 32"), ("nan,1>2,3", "finite"), ("1,2", "expected x,y>x,y"),
                      (";".join(["1,2>3,4"] * 200), "at most 128")]:
        res = CliRunner().invoke(main, [*map(str, base), "--points", pts])
        assert res.exit_code != 0 and frag in res.output, res.output
        assert "Traceback" not in res.output and not (tmp_path / "o").exists()
    save_image(np.full((8, 8, 3), 255, np.uint8), tmp_path / "m.png")
    res = CliRunner().invoke(main, [*map(str, base), "--points", "1,2>3,4", "--mask", str(tmp_path / "m.png")])
    assert res.exit_code == 1 and "must be 32x32" in res.output and not (tmp_path / "o").exists()
    # a tuned latent whose delta is missing
    G = ll.load_generator(env["net"])
    tuned = ll.load_latent(env["root"] / "s.npz", G).latent
    params = dict(G.synthesis_network.named_parameters())
    name = sorted(params)[0]
    t = tuned.replace(tuning=Tuning.from_delta({name: torch.ones_like(params[name])}))
    save_latent(t, tmp_path / "t.npz")
    delta_path_for(tmp_path / "t.npz").unlink()
    res = CliRunner().invoke(main, ["drag", str(tmp_path / "t.npz"), "--points", "1,2>3,4", "--network", env["net"],
                                    "--outdir", str(tmp_path / "o2"), "--coords", "aligned"])
    assert res.exit_code == 1 and "tuning delta not found" in res.output and not (tmp_path / "o2").exists()


def test_ui_refuses_bad_drag_requests_before_starting(env):
    from latentlab.ui.core import Studio

    G = ll.load_generator(env["net"])
    session = Studio(G, env["net"]).new_session()
    lid = session.latents.put(ll.load_latent(env["root"] / "s.npz", G))
    for points, mask, frag in [([[1, 2, 3]], None, "four numbers"), ([[1, 2, 3, float("nan")]], None, "NaN"),
                               ([[1, 2, 300, 4]], None, "outside"), ([], None, "non-empty"),
                               ([[1, 2, 3, 4]], [[1, 2]], "three finite numbers"),
                               ([[1, 2, 3, 4]], [[1, 2, 1e9]], "outside the 32 px image")]:
        with pytest.raises(LatentlabError, match=frag):
            session.start_drag(lid, points, mask)
    assert not session.jobs
