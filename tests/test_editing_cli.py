"""The editing commands (style, edit, transfer, swap, morph) on a tiny StyleGAN2 checkpoint with
latent .npz inputs: outputs exist, the written latents equal the formulas, bad input is one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import make_tiny, save_tiny

from latentlab.cli import main
from latentlab.editing.directions import Direction
from latentlab.faces import as_aligned
from latentlab.imageio import load_image, save_image
from latentlab.latent import Latent, save_latent


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("editing_cli")
    G = make_tiny(3)
    net = save_tiny(G, root / "tiny.safetensors")
    photo = np.random.RandomState(0).randint(0, 255, (96, 80, 3)).astype(np.uint8)
    save_image(photo, root / "photo.png")
    face = as_aligned(photo, 32)
    gen = torch.Generator().manual_seed(1)
    lats = {}
    for name in ("a", "b", "c"):
        ws = torch.randn(1, G.num_ws, G.w_dim, generator=gen)
        save_latent(Latent(ws, transform=face.transform, network=str(net),
                           settings={"photo": str(root / "photo.png")}), root / f"{name}.npz")
        lats[name] = ws
    return {"root": root, "net": str(net), "G": G, "ws": lats}


def _run(env, *args):
    result = CliRunner().invoke(main, [*map(str, args), "--network", env["net"]], catch_exceptions=False)
    return result


def _ws(path: Path) -> torch.Tensor:
    with np.load(path) as z:
        return torch.from_numpy(z["ws"])


def test_style_writes_mix_and_paste(env, tmp_path):
    r = env["root"]
    res = _run(env, "style", r / "a.npz", r / "b.npz", "--layers", "rows:2-5", "--outdir", tmp_path,
               "--photo", r / "photo.png")
    assert res.exit_code == 0, res.output
    a, b = env["ws"]["a"], env["ws"]["b"]
    expected = a.clone()
    expected[:, 2:5] = b[:, 2:5]
    torch.testing.assert_close(_ws(tmp_path / "a_x_b.npz"), expected, rtol=0, atol=0)
    assert load_image(tmp_path / "a_x_b.png", min_size=1).shape == (32, 32, 3)
    assert load_image(tmp_path / "a_x_b_pasted.png").shape == (96, 80, 3)  # original photo size
    assert (tmp_path / "a_x_b_compare.png").is_file()
    # never overwrite without --force
    again = _run(env, "style", r / "a.npz", r / "b.npz", "--layers", "rows:2-5", "--outdir", tmp_path)
    assert again.exit_code == 1 and "already exists" in again.output
    assert _run(env, "style", r / "a.npz", r / "b.npz", "--outdir", tmp_path, "--force").exit_code == 0
    # default rows: seed 9-18 (128-1024 px) clamp to this 32 px model's finest rows 5..7
    expected = a.clone()
    expected[:, 5:] = b[:, 5:]
    torch.testing.assert_close(_ws(tmp_path / "a_x_b.npz"), expected, rtol=0, atol=0)


def test_style_grid(env, tmp_path):
    r = env["root"]
    res = _run(env, "style", "--grid", "--content", r / "a.npz", r / "b.npz", "--style", r / "b.npz", r / "c.npz",
               r / "a.npz", "--tile", 32, "--outdir", tmp_path)
    assert res.exit_code == 0, res.output
    grid = load_image(tmp_path / "style_grid.png")
    assert grid.shape == (3 * 32 + 2 * 4, 4 * 32 + 3 * 4, 3)  # (1 + 2 contents) x (1 + 3 styles)


def _sefa_direction(G, rows: list[int], k: int) -> np.ndarray:
    """Independent SeFa: numpy eigh of the row-normalised stacked affine weights of ``rows``."""
    mats = []
    for name, row, _ in G.layer_rows():
        if row in rows:
            w = dict(G.named_modules())[f"{name}.affine"].weight.detach().double().numpy()
            mats.append(w / np.linalg.norm(w, axis=1, keepdims=True))
    A = np.concatenate(mats)
    vals, vecs = np.linalg.eigh(A.T @ A)
    return vecs[:, np.argsort(vals)[::-1][k]]


def test_edit_directions_and_sefa_follow_the_formula(env, tmp_path):
    r = env["root"]
    d = np.random.RandomState(5).randn(16).astype(np.float32)
    np.save(tmp_path / "d.npy", d)
    res = _run(env, "edit", r / "a.npz", "--direction", f"{tmp_path / 'd.npy'}:2.5@rows:0-3",
               "--sefa", "1:-1.5@rows:5-8", "--outdir", tmp_path / "out", "--photo", r / "photo.png")
    assert res.exit_code == 0, res.output
    out = _ws(tmp_path / "out" / "a_edit.npz")
    expected = env["ws"]["a"].clone().double()
    expected[:, 0:3] += 2.5 * torch.from_numpy(d).double()
    diff = (out.double() - expected)[0]
    assert torch.allclose(diff[3:5], torch.zeros(2, 16, dtype=torch.float64), atol=1e-6)
    ref = _sefa_direction(env["G"], [5, 6, 7], 1)
    for row in (5, 6, 7):
        step = diff[row].numpy()
        assert np.linalg.norm(step) == pytest.approx(1.5, rel=1e-4)
        assert abs(step @ ref) == pytest.approx(1.5, rel=1e-4)  # along the eigenvector (sign convention aside)
    assert torch.allclose(diff[0:3], torch.zeros(3, 16, dtype=torch.float64), atol=1e-6)
    assert (tmp_path / "out" / "a_edit_pasted.png").is_file()


def test_edit_default_range_comes_from_the_direction_file(env, tmp_path, monkeypatch, tmp_cache):
    r = env["root"]
    vec = np.random.RandomState(2).randn(16).astype(np.float32)
    folder = tmp_path / "dirs"
    Direction("smile", vec, layers="rows:1-3", model="tiny").save(folder / "tiny" / "smile.npz")
    monkeypatch.setenv("LATENTLAB_DIRECTIONS", str(folder))
    res = _run(env, "edit", r / "b.npz", "--smile", "1.5", "--outdir", tmp_path / "o")
    assert res.exit_code == 0, res.output
    expected = env["ws"]["b"].clone()
    expected[:, 1:3] += 1.5 * torch.from_numpy(vec)
    torch.testing.assert_close(_ws(tmp_path / "o" / "b_edit.npz"), expected, rtol=1e-6, atol=1e-6)
    # explicit range overrides the file's; negative strengths parse
    res = _run(env, "edit", r / "b.npz", "--smile", "-2@rows:7", "--outdir", tmp_path / "o2")
    assert res.exit_code == 0, res.output
    expected = env["ws"]["b"].clone()
    expected[:, 7] -= 2 * torch.from_numpy(vec)
    torch.testing.assert_close(_ws(tmp_path / "o2" / "b_edit.npz"), expected, rtol=1e-6, atol=1e-6)
    bad = _run(env, "edit", r / "b.npz", "--age", "1", "--outdir", tmp_path / "o3")
    assert bad.exit_code == 1
    assert "no direction 'age' for model tiny; available: smile" in bad.output
    assert len(bad.output.strip().splitlines()) == 1
    listed = _run(env, "edit", r / "b.npz", "--list-attributes")
    assert "smile" in listed.output


def test_edit_strength_in_sigma(env, tmp_path, monkeypatch, tmp_cache):
    """``--smile 2s``: 2 x (projection_std / truncation_psi) W units; the same through the API."""
    import latentlab

    r = env["root"]
    vec = np.random.RandomState(3).randn(16).astype(np.float32)
    vec /= np.linalg.norm(vec)
    folder = tmp_path / "dirs"
    Direction("smile", vec, layers="rows:1-3", model="tiny",
              meta={"projection_std": 0.35, "truncation_psi": 0.7}).save(folder / "tiny" / "smile.npz")
    monkeypatch.setenv("LATENTLAB_DIRECTIONS", str(folder))
    res = _run(env, "edit", r / "b.npz", "--smile", "2s", "--outdir", tmp_path / "o")
    assert res.exit_code == 0, res.output
    expected = env["ws"]["b"].clone()
    expected[:, 1:3] += 1.0 * torch.from_numpy(vec)  # 2 sigma = 2 x 0.35 / 0.7
    torch.testing.assert_close(_ws(tmp_path / "o" / "b_edit.npz"), expected, rtol=1e-6, atol=1e-6)
    assert "smile x 1 (2 sigma)" in res.output
    # a sweep in sigma: the frames' latents are +-1 sigma = +-0.5 W units
    res = _run(env, "edit", r / "b.npz", "--sweep", "smile=-1s:1s:3", "--outdir", tmp_path / "s")
    assert res.exit_code == 0, res.output
    assert "-1..1 sigma = -0.5..0.5" in res.output
    # the API: the same edit, and a sweep's values in W units
    G = latentlab.load_generator(env["net"])
    p = latentlab.load_latent(r / "b.npz", G)
    torch.testing.assert_close(p.edit(smile=2, unit="sigma").ws.cpu(), expected, rtol=1e-6, atol=1e-6)
    assert p.sweep("smile", [-1, 1], unit="sigma").settings["values"] == pytest.approx([-0.5, 0.5])
    # no recorded spread, components, mixed units: one-line errors
    np.save(tmp_path / "d.npy", vec)
    for args, fragment in [
        (["--direction", f"{tmp_path / 'd.npy'}:1s"], "records no spread"),
        (["--sefa", "0:1s"], "components have no recorded sigma"),
        (["--sweep", "smile=-1s:1:3"], "give LO and HI in one unit"),
        (["--smile", "1ss"], "'1ss' is not a number"),
        (["--smile", "200s"], "out of range"),
    ]:
        bad = _run(env, "edit", r / "b.npz", *args, "--outdir", tmp_path / "bad")
        assert bad.exit_code == 1 and fragment in bad.output, (args, bad.output)
        assert len(bad.output.strip().splitlines()) == 1, bad.output


def test_edit_sweep_writes_strip_and_video(env, tmp_path):
    r = env["root"]
    res = _run(env, "edit", r / "a.npz", "--sweep", "sefa:0=-2:2:3", "--outdir", tmp_path, "--photo", r / "photo.png")
    assert res.exit_code == 0, res.output
    strip = load_image(tmp_path / "a_edit_sweep_sefa0.png")
    assert strip.shape == (256, 3 * 256 + 2 * 4, 3)
    assert (tmp_path / "a_edit_sweep_sefa0.mp4").stat().st_size > 0
    assert (tmp_path / "a_edit_sweep_sefa0_pasted.png").is_file()


def test_transfer_formula(env, tmp_path):
    r = env["root"]
    res = _run(env, "transfer", r / "a.npz", "--from", r / "b.npz", "--to", r / "c.npz", "--strength", "0.5",
               "--layers", "rows:0-2", "--outdir", tmp_path, "--photo", r / "photo.png")
    assert res.exit_code == 0, res.output
    a, b, c = env["ws"]["a"], env["ws"]["b"], env["ws"]["c"]
    expected = a.clone()
    expected[:, 0:2] = a[:, 0:2] + 0.5 * (c[:, 0:2] - b[:, 0:2])
    torch.testing.assert_close(_ws(tmp_path / "a_transfer.npz"), expected, rtol=1e-6, atol=1e-6)
    assert (tmp_path / "a_transfer_pasted.png").is_file() and (tmp_path / "a_transfer_compare.png").is_file()


def test_swap_mix_and_chain(env, tmp_path):
    r = env["root"]
    res = _run(env, "swap", r / "a.npz", r / "b.npz", "--identity-layers", "rows:0-5", "--keep-layers", "rows:0",
               "--outdir", tmp_path, "--photo", r / "photo.png")
    assert res.exit_code == 0, res.output
    a, b = env["ws"]["a"], env["ws"]["b"]
    expected = b.clone()
    expected[:, 1:5] = a[:, 1:5]
    torch.testing.assert_close(_ws(tmp_path / "a_on_b.npz"), expected, rtol=0, atol=0)
    assert (tmp_path / "a_on_b_pasted.png").is_file() and (tmp_path / "a_on_b_metrics.json").is_file()
    res = _run(env, "swap", "--chain", r / "a.npz", r / "b.npz", r / "c.npz", "--outdir", tmp_path / "chain")
    assert res.exit_code == 0, res.output
    assert load_image(tmp_path / "chain" / "chain.png").shape == (2 * 256 + 4, 3 * 256 + 2 * 4, 3)
    for name in ("c_on_a", "a_on_b", "b_on_c"):
        assert (tmp_path / "chain" / f"{name}.npz").is_file()


def test_morph_video(env, tmp_path):
    import imageio.v2 as iio

    r = env["root"]
    out = tmp_path / "m.mp4"
    res = _run(env, "morph", r / "a.npz", r / "b.npz", "--frames", 4, "--size", 64, "--out", out,
               "--photo", r / "photo.png")
    assert res.exit_code == 0, res.output
    with iio.get_reader(str(out)) as rd:
        assert rd.count_frames() == 4
    assert (tmp_path / "m_strip.png").is_file() and (tmp_path / "m_pasted.mp4").is_file()


def test_bad_inputs_are_one_line_errors(env, tmp_path):
    r = env["root"]
    # a latent with the right shape but written for another model
    other = tmp_path / "other.npz"
    save_latent(Latent(env["ws"]["a"], network="ffhq-some-other"), other)
    res = _run(env, "style", other, r / "b.npz", "--outdir", tmp_path / "x")
    assert res.exit_code == 1 and "was made with model 'ffhq-some-other'" in res.output
    # a latent whose shape does not fit
    wrong = tmp_path / "wrong.npz"
    save_latent(Latent(torch.zeros(1, 5, 16), network=env["net"]), wrong)
    res = _run(env, "edit", wrong, "--sefa", "0:1", "--outdir", tmp_path / "x")
    assert res.exit_code == 1 and "ws is [5, 16] but this generator takes [8, 16]" in res.output
    # a range outside the model
    res = _run(env, "style", r / "a.npz", r / "b.npz", "--layers", "rows:9", "--outdir", tmp_path / "x")
    assert res.exit_code == 1 and "outside this model's 8 W+ rows" in res.output
    res = _run(env, "style", r / "a.npz", r / "b.npz", "--layers", "0-19", "--outdir", tmp_path / "x")
    assert res.exit_code == 1 and "outside the 18-row" in res.output
    # a direction that does not fit
    np.save(tmp_path / "d7.npy", np.ones(7, np.float32))
    res = _run(env, "edit", r / "a.npz", "--direction", f"{tmp_path / 'd7.npy'}:1", "--outdir", tmp_path / "x")
    assert res.exit_code == 1 and "does not fit" in res.output
    res = _run(env, "edit", r / "a.npz", "--direction", "nope.npy:x", "--outdir", tmp_path / "x")
    assert res.exit_code == 1 and "not a number" in res.output
    res = _run(env, "edit", r / "a.npz", "--sefa", "99:1", "--outdir", tmp_path / "x")
    assert res.exit_code == 1 and "component 99 does not exist" in res.output
    assert len(res.output.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("args, fragment", [
    (("edit", "{a}", "--sefa", "0:nan"), "not a finite number"),
    (("edit", "{a}", "--sefa", "0:inf"), "not a finite number"),
    (("edit", "{a}", "--sefa", "0:1e9"), "out of range"),
    (("edit", "{a}", "--sweep", "sefa0=-1e9:3:3"), "out of range"),
    (("transfer", "{a}", "--from", "{b}", "--to", "{c}", "--strength", "nan"), "not a finite number"),
    (("transfer", "{a}", "--from", "{b}", "--to", "{c}", "--strength", "1e9"), "not in the range"),
    (("morph", "{a}", "{b}", "--fps", "nan"), "not a finite number"),
    (("swap", "{a}", "{b}", "--method", "masked", "--lr", "nan"), "not a finite number"),
])
def test_non_finite_or_huge_numbers_are_refused(env, tmp_path, args, fragment):
    """NaN / inf / absurd magnitudes are refused before anything is drawn (click's own float accepts NaN,
    and such a latent draws black images)."""
    r = env["root"]
    argv = [a.format(a=r / "a.npz", b=r / "b.npz", c=r / "c.npz") for a in args]
    res = _run(env, *argv, "--outdir", tmp_path / "out")
    assert res.exit_code in (1, 2), res.output
    assert "Traceback" not in res.output and fragment in res.output, res.output
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_sample_and_project_refuse_nan(env, tmp_path):
    res = _run(env, "sample", "--seeds", "0", "--trunc", "nan", "--outdir", tmp_path / "s", "--device", "cpu")
    assert res.exit_code == 2 and "not a finite number" in res.output, res.output
    photo = env["root"] / "photo.png"
    res = _run(env, "project", photo, "--lr", "nan", "--outdir", tmp_path / "p", "--device", "cpu")
    assert res.exit_code == 2 and "not a finite number" in res.output, res.output
    assert not (tmp_path / "s").exists() and not (tmp_path / "p").exists()


@pytest.mark.parametrize("name", ["../escaped", "sub/x", "..", ".hidden", "a\\b"])
def test_name_cannot_leave_the_output_folder(env, tmp_path, name):
    r = env["root"]
    out = tmp_path / "out"
    res = _run(env, "transfer", r / "a.npz", "--from", r / "b.npz", "--to", r / "c.npz", "--name", name,
               "--outdir", out)
    assert res.exit_code == 1 and "must be a plain file name" in res.output, res.output
    res = _run(env, "edit", r / "a.npz", "--sefa", "0:1", "--name", name, "--outdir", out)
    assert res.exit_code == 1 and "must be a plain file name" in res.output, res.output
    assert not any(tmp_path.rglob("*.png")) and not any(tmp_path.rglob("*.npz"))


def test_planted_symlink_is_never_followed(env, tmp_path):
    """A dangling link in the output folder pointing outside it is refused, and replaced (never written
    through) with --force."""
    r = env["root"]
    out, outside = tmp_path / "out", tmp_path / "outside.png"
    out.mkdir()
    (out / "a_edit.png").symlink_to(outside)
    res = _run(env, "edit", r / "a.npz", "--sefa", "0:1", "--outdir", out)
    assert res.exit_code == 1 and "already exists" in res.output and not outside.exists(), res.output
    res = _run(env, "edit", r / "a.npz", "--sefa", "0:1", "--outdir", out, "--force")
    assert res.exit_code == 0, res.output
    assert not outside.exists() and not (out / "a_edit.png").is_symlink() and (out / "a_edit.png").is_file()
    assert not list(out.glob(".*.part"))


def test_planted_symlink_on_the_latent_is_never_followed(env, tmp_path):
    r = env["root"]
    out, outside = tmp_path / "out", tmp_path / "outside.npz"
    out.mkdir()
    (out / "a_edit.npz").symlink_to(outside)
    res = _run(env, "edit", r / "a.npz", "--sefa", "0:1", "--outdir", out)
    assert res.exit_code == 1 and "already exists" in res.output, res.output
    res = _run(env, "edit", r / "a.npz", "--sefa", "0:1", "--outdir", out, "--force")
    assert res.exit_code == 0, res.output
    assert not outside.exists() and not (out / "a_edit.npz").is_symlink() and (out / "a_edit.npz").is_file()


# ------------------------------------------------------------------------------------------ --edit
def test_edit_text_gives_the_same_latent_as_the_flags(env, tmp_path, monkeypatch, tmp_cache):
    """``--edit "TARGET=S@L, ..."`` is read by the same parser as the flags: the same latent, bit for
    bit, for files, named attributes (W and sigma units), components and a layer range with a comma."""
    r = env["root"]
    vec = np.random.RandomState(7).randn(16).astype(np.float32)
    vec /= np.linalg.norm(vec)
    folder = tmp_path / "dirs"
    Direction("smile", vec, layers="rows:1-3", model="tiny",
              meta={"projection_std": 0.35, "truncation_psi": 0.7}).save(folder / "tiny" / "smile.npz")
    monkeypatch.setenv("LATENTLAB_DIRECTIONS", str(folder))
    d = tmp_path / "d.npy"
    np.save(d, np.random.RandomState(8).randn(16).astype(np.float32))
    cases = [
        (["--edit", f"{d}=2.5@rows:0-3, smile=1.5s, sefa:1=-1.5@rows:5-8"],
         ["--direction", f"{d}:2.5@rows:0-3", "--smile", "1.5s", "--sefa", "1:-1.5@rows:5-8"]),
        (["--edit", "smile=-2@rows:0-1,3; ganspace:0=1"], ["--smile", "-2@rows:0-1,3", "--ganspace", "0:1"]),
        (["--edit", "smile=0.5", "--edit", "sefa0=1"], ["--attr", "smile=0.5", "--sefa", "0:1"]),
    ]
    for i, (text, flags) in enumerate(cases):
        a = _run(env, "edit", r / "b.npz", *text, "--outdir", tmp_path / f"text{i}")
        b = _run(env, "edit", r / "b.npz", *flags, "--outdir", tmp_path / f"flags{i}")
        assert a.exit_code == 0 and b.exit_code == 0, (a.output, b.output)
        wa, wb = _ws(tmp_path / f"text{i}" / "b_edit.npz"), _ws(tmp_path / f"flags{i}" / "b_edit.npz")
        assert torch.equal(wa, wb), i
        assert not torch.equal(wa, env["ws"]["b"]), i
        np.testing.assert_array_equal(load_image(tmp_path / f"text{i}" / "b_edit.png", min_size=1),
                                      load_image(tmp_path / f"flags{i}" / "b_edit.png", min_size=1))
        assert a.stdout == b.stdout.replace(f"flags{i}", f"text{i}")  # the same edits described
    # the first case by its formula: 2.5 along d on rows 0-2, 1.5 sigma = 0.75 W units along smile on rows 1-2
    out = _ws(tmp_path / "text0" / "b_edit.npz").double()[0] - env["ws"]["b"].double()[0]
    dv = torch.from_numpy(np.load(d)).double()
    expected = torch.zeros_like(out)
    expected[0:3] += 2.5 * dv
    expected[1:3] += 0.75 * torch.from_numpy(vec).double()
    torch.testing.assert_close(out[:5], expected[:5], rtol=0, atol=1e-5)
    assert torch.linalg.vector_norm(out[5:], dim=1).sub(1.5).abs().max() < 1e-4  # sefa1 on rows 5-7


@pytest.mark.parametrize("text, fragment", [
    ("smile", "expected TARGET=STRENGTH[@LAYERS]"),
    ("=1", "missing the target before '='"),
    ("", "an empty edit request"),
    (" , ;", "an empty edit request"),
    ("smile=abc", "'abc' is not a number"),
    ("smile=nan", "not a finite number"),
    ("smile=-1e9", "out of range"),
    ("smile=1@", "empty layer range after '@'"),
    ("smile=1, age", "edit 'age': expected TARGET=STRENGTH"),
    ("sefa:0=1s", "components have no recorded sigma"),
    ("sefa:99=1", "component 99 does not exist"),
    ("nope.npy=1", "nope.npy"),
    ("sefa:0=1@rows:40", "outside this model's 8 W+ rows"),
])
def test_malformed_edit_text_is_one_line_and_writes_nothing(env, tmp_path, text, fragment):
    r = env["root"]
    res = _run(env, "edit", r / "a.npz", "--edit", text, "--outdir", tmp_path / "out")
    assert res.exit_code == 1, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("latentlab: error: ") and fragment in lines[0], res.output
    assert not (tmp_path / "out").exists()


def test_every_output_is_checked_before_anything_is_written(env, tmp_path):
    """An existing sweep video, chain figure or morph strip refuses the whole command up front."""
    r = env["root"]
    out = tmp_path / "out"
    out.mkdir()
    (out / "a_edit_sweep_sefa0.mp4").write_bytes(b"keep")
    res = _run(env, "edit", r / "a.npz", "--sefa", "1:1", "--sweep", "sefa:0=-1:1:3", "--outdir", out)
    assert res.exit_code == 1 and "a_edit_sweep_sefa0.mp4: already exists" in res.output, res.output
    (out / "chain.png").write_bytes(b"keep")
    res = _run(env, "swap", "--chain", r / "a.npz", r / "b.npz", "--outdir", out)
    assert res.exit_code == 1 and "chain.png: already exists" in res.output, res.output
    (out / "b_on_a_metrics.json").write_bytes(b"keep")
    res = _run(env, "swap", r / "b.npz", r / "a.npz", "--method", "masked", "--steps", 1, "--outdir", out)
    assert res.exit_code == 1 and "b_on_a_metrics.json: already exists" in res.output, res.output
    (out / "m_strip.png").write_bytes(b"keep")
    res = _run(env, "morph", r / "a.npz", r / "b.npz", "--frames", 2, "--out", out / "m.gif")
    assert res.exit_code == 1 and "m_strip.png: already exists" in res.output, res.output
    assert sorted(p.name for p in out.iterdir()) == ["a_edit_sweep_sefa0.mp4", "b_on_a_metrics.json", "chain.png",
                                                     "m_strip.png"]
    assert all(p.read_bytes() == b"keep" for p in out.iterdir())
