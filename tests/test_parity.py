"""CLI, UI and API give the same result for the same inputs and seed: one test per command, and
every front end inverts a photo through the one entry point, ``latentlab.inversion.invert``.

Each test runs the command line (in process, ``latentlab ...``), the Python API (``latentlab.api``)
and, where the web UI has the operation, the UI's core (:class:`latentlab.ui.core.Studio` /
``Session``, what the web layer calls) on the same inputs, and checks that the latents are exactly
equal and the images within one level of each other. The expected latents come from the formulas
(NVIDIA's seed -> z convention, ``ws + s * d`` on the default rows, row mixing), not from either
implementation. A tiny StyleGAN2 (32 px, 8 W+ rows) keeps the file well under a minute.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from conftest import make_tiny, save_tiny

import latentlab as ll
from latentlab.cli import main
from latentlab.editing.directions import Direction
from latentlab.editing.layers import parse_layers
from latentlab.faces import FaceTransform
from latentlab.imageio import load_image, save_image
from latentlab.latent import Latent, save_latent

PHOTO_HW = (120, 100)
QUAD = np.array([[30.0, 20.0], [30.0, 60.0], [70.0, 60.0], [70.0, 20.0]])


def _transform() -> FaceTransform:
    """Aligned 32 px frame -> the 40 px square QUAD of a 120 x 100 photo."""
    s = 40.0 / 32.0
    matrix = np.array([[s, 0, 30.0 - 0.5 + 0.5 * s], [0, s, 20.0 - 0.5 + 0.5 * s], [0, 0, 1]])
    return FaceTransform(matrix, 32, PHOTO_HW, QUAD.copy(), None)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("parity")
    net = save_tiny(make_tiny(7, w_avg=torch.linspace(-0.3, 0.3, 16)), root / "tiny.safetensors")
    G = ll.load_generator(net)
    photo = np.random.RandomState(0).randint(0, 255, (*PHOTO_HW, 3)).astype(np.uint8)
    save_image(photo, root / "photo.png")
    gen = torch.Generator().manual_seed(1)
    ws = {}
    for name in ("a", "b", "c"):
        ws[name] = torch.randn(1, G.num_ws, G.w_dim, generator=gen)
        save_latent(Latent(ws[name], transform=_transform(), network=str(net)), root / f"{name}.npz")
    dirs = root / "dirs"
    vecs = {"smile": np.random.RandomState(2).randn(16).astype(np.float32),
            "age": np.random.RandomState(4).randn(16).astype(np.float32)}
    # age stores its own range; smile stores none ("all"): every front end must then use the default smile rows
    Direction("smile", vecs["smile"], layers="all", model="tiny",
              meta={"projection_std": 0.28, "truncation_psi": 0.7}).save(dirs / "tiny" / "smile.npz")  # sigma 0.4
    Direction("age", vecs["age"], layers="rows:1-3", model="tiny").save(dirs / "tiny" / "age.npz")
    return {"root": root, "net": str(net), "G": G, "ws": ws, "dirs": dirs, "vecs": vecs}


def _cli(env, tmp_path, *args) -> None:
    res = CliRunner().invoke(main, [*map(str, args), "--network", env["net"]], catch_exceptions=False)
    assert res.exit_code == 0, res.output


def _sample_cli(env, tmp_path, seed: int, trunc: float = 0.7) -> Path:
    """``latentlab sample`` of one seed; returns its samples.npz (a latent every command reads)."""
    out = tmp_path / f"s{seed}"
    _cli(env, tmp_path, "sample", "--seeds", seed, "--trunc", trunc, "--outdir", out)
    return out / "samples.npz"


def _npz_ws(path: Path) -> torch.Tensor:
    with np.load(path) as z:
        return torch.from_numpy(np.asarray(z["ws"], np.float32))


def _within_one(a: np.ndarray, b: np.ndarray) -> None:
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape and a.dtype == b.dtype == np.uint8
    assert int(np.abs(a.astype(int) - b.astype(int)).max()) <= 1


def _seed_ws(G, seed: int, psi: float) -> torch.Tensor:
    """NVIDIA's convention, independently: z = RandomState(seed).randn(1, z_dim), w = mapping(z),
    w_avg + psi (w - w_avg) on every row."""
    z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim).astype(np.float32))
    with torch.no_grad():
        w = G.mapping(z, None, truncation_psi=1.0)
    return G.w_avg + psi * (w - G.w_avg)


def _ui(env, **kw):
    from latentlab.ui.core import Studio

    studio = Studio(env["G"], env["net"], direction_dirs=[env["dirs"]], **kw)
    return studio, studio.new_session()


def _ui_result(sess, job) -> tuple[torch.Tensor, np.ndarray]:
    sess.wait(job, timeout=60)
    assert job.status == "done", job.error
    return sess.latents.need(job.result["latent"]).ws, sess.images.need(job.result["image"])


# ----------------------------------------------------------------------------------------- sample
def test_sample_parity(env, tmp_path):
    G = env["G"]
    npz = _sample_cli(env, tmp_path, 5)
    api = ll.sample(G, [5], trunc=0.7)[0]
    _, sess = _ui(env)
    ui = sess.latents.need(sess.sample_latent(5, 0.7))
    cli_ws = _npz_ws(npz)
    assert torch.equal(cli_ws, api.ws) and torch.equal(ui.ws, api.ws)
    torch.testing.assert_close(api.ws, _seed_ws(G, 5, 0.7).expand_as(api.ws), rtol=0, atol=1e-6)
    _within_one(load_image(tmp_path / "s5" / "seed0005.png", min_size=1), api.array)


# ----------------------------------------------------------------------------------------- edit
def test_edit_parity_and_one_default_range(env, tmp_path):
    """age (its file's range) and smile (no stored range: the default smile rows 0-5) through the CLI
    flags, the API's keywords and the UI's sliders: the same latent and image."""
    G = env["G"]
    npz = _sample_cli(env, tmp_path, 3)
    out = tmp_path / "edit"
    _cli(env, tmp_path, "edit", npz, "--smile", "1.5", "--age", "-2", "--directions-dir", env["dirs"],
         "--outdir", out, "--name", "e")
    api = ll.sample(G, [3], trunc=0.7)[0].edit(smile=1.5, age=-2, directions_dirs=[env["dirs"]])
    _, sess = _ui(env)
    ui_ws, ui_img = _ui_result(sess, sess.start_render(sess.sample_latent(3, 0.7), {"smile": 1.5, "age": -2}))

    expect = _seed_ws(G, 3, 0.7).clone()
    expect[:, parse_layers("0-5", G)] += 1.5 * torch.from_numpy(env["vecs"]["smile"])
    expect[:, parse_layers("rows:1-3", G)] -= 2 * torch.from_numpy(env["vecs"]["age"])
    assert parse_layers("0-5", G) != list(range(G.num_ws))  # the default smile range is not "all" here
    torch.testing.assert_close(api.ws, expect, rtol=0, atol=1e-5)
    assert torch.equal(_npz_ws(out / "e.npz"), api.ws) and torch.equal(ui_ws, api.ws)
    _within_one(load_image(out / "e.png", min_size=1), api.array)
    _within_one(ui_img, api.array)


def test_edit_pasted_parity_with_photo(env, tmp_path):
    """A latent with --photo / photo=: the pasted result is the same photo in CLI and API."""
    r = env["root"]
    out = tmp_path / "edit"
    d = tmp_path / "d.npy"
    np.save(d, env["vecs"]["smile"])
    _cli(env, tmp_path, "edit", r / "a.npz", "--direction", f"{d}:2@rows:0-4", "--photo", r / "photo.png",
         "--outdir", out)
    a = ll.load_latent(r / "a.npz", env["G"], photo=r / "photo.png")
    api = a.edit(directions={str(d): 2}, layers={"d": "rows:0-4"})
    assert torch.equal(_npz_ws(out / "a_edit.npz"), api.ws)
    _within_one(load_image(out / "a_edit.png", min_size=1), api.array)
    _within_one(load_image(out / "a_edit_pasted.png", min_size=1), api.paste().array)


def test_edit_parity_for_every_request_form_and_unit(env, tmp_path):
    """The one parser: CLI flags, the CLI's --edit text, the API's keywords, the API's text and the
    UI's sliders (W units) give the same latent; sigma units (1s = 0.4 W units here) and a SeFa
    component through every form too."""
    G = env["G"]
    npz = _sample_cli(env, tmp_path, 4)
    out = tmp_path / "forms"
    _cli(env, tmp_path, "edit", npz, "--smile", "2.5s", "--sefa", "1:-1.5", "--age", "0.5@rows:2-4",
         "--directions-dir", env["dirs"], "--outdir", out, "--name", "flags")
    _cli(env, tmp_path, "edit", npz, "--edit", "smile=2.5s, sefa:1=-1.5, age=0.5@rows:2-4",
         "--directions-dir", env["dirs"], "--outdir", out, "--name", "text")
    base = ll.sample(G, [4], trunc=0.7)[0]
    api_kw = base.edit(smile="2.5s", sefa={1: -1.5}, age="0.5@rows:2-4", directions_dirs=[env["dirs"]])
    api_text = base.edit("smile=2.5s, sefa:1=-1.5, age=0.5@rows:2-4", directions_dirs=[env["dirs"]])
    api_w = base.edit(smile=1.0, sefa={1: -1.5}, age=0.5, layers={"age": "rows:2-4"}, directions_dirs=[env["dirs"]])
    expect = _seed_ws(G, 4, 0.7).clone()
    expect[:, parse_layers("0-5", G)] += 1.0 * torch.from_numpy(env["vecs"]["smile"])  # 2.5 sigma = 1.0 W
    expect[:, parse_layers("rows:2-4", G)] += 0.5 * torch.from_numpy(env["vecs"]["age"])
    sefa = base.edit(sefa={1: -1.5}).ws - base.ws  # the component's own step, checked against eigh in test_api
    torch.testing.assert_close(api_kw.ws, expect + sefa, rtol=0, atol=1e-5)
    for other in (api_text.ws, _npz_ws(out / "flags.npz"), _npz_ws(out / "text.npz")):
        assert torch.equal(other, api_kw.ws)
    torch.testing.assert_close(api_w.ws, api_kw.ws, rtol=0, atol=1e-6)  # 2.5 x (0.28 / 0.7) is 1.0 up to rounding
    _, sess = _ui(env)
    ui_ws, ui_img = _ui_result(sess, sess.start_render(sess.sample_latent(4, 0.7), {"smile": 1.0, "age": 0.5},
                                                      layers={"age": "rows:2-4"}))
    assert torch.equal(ui_ws, base.edit(smile=1.0, age=0.5, layers={"age": "rows:2-4"},
                                        directions_dirs=[env["dirs"]]).ws)


# ----------------------------------------------------------------------------------------- style
def test_style_parity(env, tmp_path):
    G = env["G"]
    c_npz, s_npz = _sample_cli(env, tmp_path, 3), _sample_cli(env, tmp_path, 9)
    out = tmp_path / "style"
    _cli(env, tmp_path, "style", c_npz, s_npz, "--layers", "9-18", "--outdir", out)
    content, style = ll.sample(G, [3, 9], trunc=0.7)
    api = ll.style(content, style, layers="9-18")
    _, sess = _ui(env)
    lid_c, lid_s = sess.sample_latent(3, 0.7), sess.sample_latent(9, 0.7)
    ui_ws, ui_img = _ui_result(sess, sess.start_render(lid_c, style={"latent": lid_s, "layers": "9-18"}))

    rows = parse_layers("9-18", G)
    expect = _seed_ws(G, 3, 0.7).clone()
    expect[:, rows] = _seed_ws(G, 9, 0.7)[:, rows]
    torch.testing.assert_close(api.ws, expect, rtol=0, atol=1e-6)
    written = next(out.glob("*_x_*.npz"))
    assert torch.equal(_npz_ws(written), api.ws) and torch.equal(ui_ws, api.ws)
    _within_one(load_image(written.with_suffix(".png"), min_size=1), api.array)
    _within_one(ui_img, api.array)


# ----------------------------------------------------------------------------------------- swap
def test_swap_parity(env, tmp_path):
    G = env["G"]
    a_npz, b_npz = _sample_cli(env, tmp_path, 3), _sample_cli(env, tmp_path, 9)
    out = tmp_path / "swap"
    _cli(env, tmp_path, "swap", a_npz, b_npz, "--identity-layers", "0-7", "--outdir", out)
    face, onto = ll.sample(G, [3, 9], trunc=0.7)
    api = ll.swap(face, onto, identity_layers="0-7")
    _, sess = _ui(env)
    lid_a, lid_b = sess.sample_latent(3, 0.7), sess.sample_latent(9, 0.7)
    ui_ws, ui_img = _ui_result(sess, sess.start_swap(lid_b, lid_a, "0-7"))

    rows = parse_layers("0-7", G)
    expect = _seed_ws(G, 9, 0.7).clone()
    expect[:, rows] = _seed_ws(G, 3, 0.7)[:, rows]
    torch.testing.assert_close(api.ws, expect, rtol=0, atol=1e-6)
    written = next(p for p in out.glob("*_on_*.npz"))
    assert torch.equal(_npz_ws(written), api.ws) and torch.equal(ui_ws, api.ws)
    _within_one(load_image(written.with_suffix(".png"), min_size=1), api.array)
    _within_one(ui_img, api.array)


# ----------------------------------------------------------------------------------------- transfer
def test_transfer_parity(env, tmp_path):
    r, G = env["root"], env["G"]
    out = tmp_path / "transfer"
    _cli(env, tmp_path, "transfer", r / "a.npz", "--from", r / "b.npz", "--to", r / "c.npz", "--strength", "0.75",
         "--layers", "0-5", "--photo", r / "photo.png", "--outdir", out)
    t = ll.load_latent(r / "a.npz", G, photo=r / "photo.png")
    api = ll.transfer(t, ll.load_latent(r / "b.npz", G), ll.load_latent(r / "c.npz", G), 0.75, layers="0-5")
    expect = env["ws"]["a"].clone()
    rows = parse_layers("0-5", G)
    expect[:, rows] += 0.75 * (env["ws"]["c"] - env["ws"]["b"])[:, rows]
    torch.testing.assert_close(api.ws, expect, rtol=0, atol=1e-6)
    assert torch.equal(_npz_ws(out / "a_transfer.npz"), api.ws)
    _within_one(load_image(out / "a_transfer.png", min_size=1), api.array)
    _within_one(load_image(out / "a_transfer_pasted.png", min_size=1), api.paste().array)


# ----------------------------------------------------------------------------------------- morph
def test_morph_parity(env, tmp_path):
    """The CLI's strip (frames 0, 2, 4 of 5) equals the API's frames, and frame k renders
    A + (k / 4) (B - A)."""
    from latentlab.figures import strip
    from latentlab.latent import render_ws

    r, G = env["root"], env["G"]
    _cli(env, tmp_path, "morph", r / "a.npz", r / "b.npz", "--frames", 5, "--size", 32, "--out", tmp_path / "m.gif",
         "--photo", r / "photo.png")
    frames = ll.morph(ll.load_latent(r / "a.npz", G, photo=r / "photo.png"), ll.load_latent(r / "b.npz", G), frames=5)
    assert len(frames) == 5
    for k in range(5):
        expect = env["ws"]["a"] + (k / 4) * (env["ws"]["b"] - env["ws"]["a"])
        torch.testing.assert_close(frames.projections[k].ws, expect, rtol=0, atol=1e-6)
        _within_one(frames[k].array, render_ws(G, expect)[0])
    cli_strip = load_image(tmp_path / "m_strip.png", min_size=1)
    api_strip = strip([frames[k].array for k in range(5)])
    _within_one(cli_strip, api_strip)
    assert (tmp_path / "m_pasted.gif").is_file()


# ----------------------------------------------------------------------------------------- one home
def test_projection_starts_from_the_generators_w_avg_and_leaves_the_allocator_alone(env, monkeypatch):
    """project() starts from G.w_avg (not a sample mean of its own), and a library call never
    switches glibc's allocator; the command line does, for the commands that project."""
    import latentlab.ops.cpu as cpu
    from latentlab.cli import PROJECTING_COMMANDS
    from latentlab.inversion import ProjectorConfig, project

    calls = []
    monkeypatch.setattr(cpu, "set_glibc_allocator", lambda mode: calls.append(mode) or True)
    monkeypatch.setattr(cpu, "_state", {})
    G = env["G"]
    cfg = ProjectorConfig(num_steps=1, w_avg_samples=100, lpips_weight=0.0, rec_weight=1.0, loss_resolution=32,
                          initial_noise_factor=0.0, optimize_noise=False)
    res = project(G, torch.zeros(1, 3, 32, 32), cfg)  # one step: the best is the start
    assert res.best_step == [0]
    assert torch.equal(res.ws, G.w_avg.view(1, 1, -1).expand(1, G.num_ws, -1))
    assert calls == []
    res = CliRunner().invoke(main, ["models", "list"])
    assert res.exit_code == 0 and calls == []  # a command that projects nothing leaves it alone
    assert {"project", "edit", "swap", "demo", "ui"} <= PROJECTING_COMMANDS
    res = CliRunner().invoke(main, ["edit", "no-such.npz", "--sefa", "0:1", "--network", env["net"]])
    assert res.exit_code == 1 and calls == ["tuned"]


# ----------------------------------------------------------------------------------------- one inversion
def test_every_front_end_inverts_through_invert_and_gets_the_same_latent(env, tmp_path, monkeypatch):
    """The same photo, preset and seed through the API, ``latentlab project`` (the folder engine),
    ``latentlab evaluate`` and the UI's projection job: each calls ``invert()`` once per photo and
    they produce bit-identical latents (W+ codes, noise maps and the tuning delta). The Ray engine
    is checked against the folder engine in tests/test_ray.py."""
    import latentlab.inversion
    from latentlab.latent import load_latent

    real = latentlab.inversion.invert
    calls: list[str] = []

    def counting(photos, *a, **k):
        calls.append("invert")
        return real(photos, *a, **k)

    monkeypatch.setattr(latentlab.inversion, "invert", counting)
    G = env["G"]
    photo = np.random.RandomState(3).randint(0, 255, (64, 64, 3)).astype(np.uint8)
    path = save_image(photo, tmp_path / "face.png")
    opts = dict(num_steps=3, w_avg_samples=100, loss_resolution=32, tuning_num_steps=2)
    flags = ["--num-steps", 3, "--w-avg-samples", 100, "--loss-res", 32, "--pti-steps", 2, "--no-align",
             "--device", "cpu"]
    found = {}
    found["api"] = ll.project(path, G, "pti", align=False, cache=False, progress=False, **opts).latent
    _cli(env, tmp_path, "project", path, "--preset", "pti", "--outdir", tmp_path / "cli", *flags)
    found["cli"] = load_latent(tmp_path / "cli" / "face" / "latent.npz", G)
    _cli(env, tmp_path, "evaluate", path, "--preset", "pti", "--outdir", tmp_path / "eval", *flags)
    found["evaluate"] = load_latent(tmp_path / "eval" / "pti" / "face" / "latent.npz", G)
    studio, sess = _ui(env, preset="pti")
    monkeypatch.setitem(ll.PRESETS, "pti", ll.PRESETS["pti"].replace(
        w_avg_samples=100, loss_resolution=32, tuning=ll.PRESETS["pti"].tuning.replace(num_steps=2)))
    pid = sess.add_photo(path.read_bytes(), "face.png", align=False)["photo"]
    job = sess.wait(sess.start_projection(pid, num_steps=3), timeout=300)
    assert job.status == "done", job.error
    found["ui"] = sess.latents.need(job.result["latent"]).latent
    assert calls == ["invert"] * 4
    ref = found["api"]
    assert ref.tuning is not None and ref.metrics["tuning_steps"] == 2
    for where, lat in found.items():
        assert torch.equal(lat.ws, ref.ws), where
        assert sorted(lat.noise) == sorted(ref.noise) and all(torch.equal(lat.noise[k], ref.noise[k]) for k in ref.noise)
        assert sorted(lat.tuning.delta) == sorted(ref.tuning.delta), where
        assert all(torch.equal(lat.tuning.delta[k], v) for k, v in ref.tuning.delta.items()), where
        assert lat.metrics["psnr"] == pytest.approx(ref.metrics["psnr"], abs=1e-6), where
