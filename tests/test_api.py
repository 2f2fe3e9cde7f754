"""The Python API (latentlab.api) on a tiny StyleGAN2 checkpoint: the README snippet runs as written,
and every result equals the formula it implements (edits, style, transfer, swap, morph), pasting
only touches the face's crop, latents round-trip, samples equal ``latentlab sample``'s PNGs."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from conftest import make_tiny, save_tiny

import latentlab as ll
import latentlab.api
from latentlab.editing.directions import Direction
from latentlab.errors import LatentlabError
from latentlab.faces import FaceTransform
from latentlab.imageio import load_image, save_image
from latentlab.latent import Latent, Tuning, save_latent

REPO = Path(__file__).resolve().parents[1]

PHOTO_HW = (120, 100)
#: The face's crop square in the photo: x 30..70, y 20..60 (TL, BL, BR, TR).
QUAD = np.array([[30.0, 20.0], [30.0, 60.0], [70.0, 60.0], [70.0, 20.0]])


def _transform() -> FaceTransform:
    """Aligned 32 px frame -> the 40 px square QUAD of a 120 x 100 photo (independent of the aligner)."""
    s = 40.0 / 32.0
    matrix = np.array([[s, 0, 30.0 - 0.5 + 0.5 * s], [0, s, 20.0 - 0.5 + 0.5 * s], [0, 0, 1]])
    return FaceTransform(matrix, 32, PHOTO_HW, QUAD.copy(), None)


def _real_cache() -> Path:
    from latentlab.assets import cache_dir

    return cache_dir()


@pytest.fixture()
def api_cache(tmp_path, monkeypatch) -> Path:
    """An empty LATENTLAB_CACHE for projections that still sees the downloaded wheels (dlib models)."""
    real = _real_cache()
    cache = tmp_path / "cache"
    cache.mkdir()
    for sub in ("wheels", "pypi", "npm"):
        if (real / sub).is_dir():
            (cache / sub).symlink_to(real / sub)
    monkeypatch.setenv("LATENTLAB_CACHE", str(cache))
    return cache


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("api")
    net = save_tiny(make_tiny(3), root / "tiny.safetensors")
    G = ll.load_generator(net)
    photo = np.random.RandomState(0).randint(0, 255, (*PHOTO_HW, 3)).astype(np.uint8)
    save_image(photo, root / "photo.png")
    gen = torch.Generator().manual_seed(1)
    ws = {}
    for name in ("a", "b", "c"):
        ws[name] = torch.randn(1, G.num_ws, G.w_dim, generator=gen)
        save_latent(Latent(ws[name], transform=_transform(), network=str(net),
                           settings={"photo": str(root / "photo.png")}), root / f"{name}.npz")
    dirs = root / "dirs"
    vecs = {"smile": np.random.RandomState(2).randn(16).astype(np.float32),
            "age": np.random.RandomState(4).randn(16).astype(np.float32)}
    Direction("smile", vecs["smile"], layers="rows:1-3", model="tiny",
              meta={"projection_std": 0.35, "truncation_psi": 0.7}).save(dirs / "tiny" / "smile.npz")  # sigma 0.5
    Direction("age", vecs["age"], layers="all", model="tiny").save(dirs / "tiny" / "age.npz")
    return {"root": root, "net": str(net), "G": G, "ws": ws, "photo": photo, "dirs": dirs, "vecs": vecs}


@pytest.fixture()
def dirs_env(env, monkeypatch):
    monkeypatch.setenv("LATENTLAB_DIRECTIONS", str(env["dirs"]))
    return env


def _reference_image(G, ws: torch.Tensor) -> np.ndarray:
    """uint8 [R, R, 3] straight from G.synthesis with its constant noise: round((x + 1) * 127.5)."""
    with torch.no_grad():
        x = G.synthesis(ws, noise_mode="const")[0].clamp(-1, 1)
    return ((x + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


def _load(env, name: str):
    return ll.load_latent(env["root"] / f"{name}.npz", env["G"], photo=env["root"] / "photo.png")


# ----------------------------------------------------------------------------------- surface
def test_public_names_exist_and_have_docstrings():
    for name in ll.api.__all__:
        obj = getattr(ll, name)
        assert (obj.__doc__ or "").strip(), f"latentlab.{name} has no docstring"
    for cls in (ll.Projection, ll.Image, ll.Frames, ll.Batch):
        for attr, member in vars(cls).items():
            if not attr.startswith("_") and (callable(member) or isinstance(member, property)):
                assert (member.__doc__ or "").strip(), f"{cls.__name__}.{attr} has no docstring"
    with pytest.raises(AttributeError):
        ll.no_such_name  # noqa: B018


def test_import_is_lazy():
    code = "import sys, latentlab; assert 'torch' not in sys.modules; latentlab.project; assert 'torch' in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


# ----------------------------------------------------------------------------------- edits
def test_edit_adds_directions_on_their_rows_and_renders_lazily(dirs_env):
    env = dirs_env
    me = _load(env, "a")
    assert me.network == env["net"] and me.can_paste
    edited = me.edit(smile=1.5, age=-1)
    a = env["ws"]["a"]
    expected = a.clone()
    expected[:, 1:3] += 1.5 * torch.from_numpy(env["vecs"]["smile"])  # the file's own range rows:1-3
    # age stores "all": the default age range 0-9 (4-64 px) applies, i.e. every row of a 32 px model
    expected[:, :] -= torch.from_numpy(env["vecs"]["age"])
    torch.testing.assert_close(edited.ws, expected, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(me.ws, a, rtol=0, atol=0)  # the input is unchanged
    assert not edited.image.rendered  # nothing rendered before an image is asked for
    img = edited.image.array
    assert edited.image.rendered and img.shape == (32, 32, 3) and img.dtype == np.uint8
    assert np.abs(img.astype(int) - _reference_image(env["G"], expected).astype(int)).max() <= 1
    hist = edited.settings["history"]
    assert hist[-1]["op"] == "edit" and [e["label"] for e in hist[-1]["edits"]] == ["smile", "age"]
    assert edited.settings["photo"] == str(env["root"] / "photo.png")
    # the same request as text, and as a mapping with a sigma-free W strength, is the same edit
    torch.testing.assert_close(me.edit("smile=1.5, age=-1").ws, edited.ws, rtol=0, atol=0)
    torch.testing.assert_close(me.edit({"smile": "1.5", "age": -1.0}).ws, edited.ws, rtol=0, atol=0)
    # sigma units: smile's sigma is 0.35 / 0.7 = 0.5 W units, so 3 sigma is 1.5 W units
    torch.testing.assert_close(me.edit("smile=3s, age=-1").ws, edited.ws, rtol=1e-6, atol=1e-6)
    with pytest.raises(LatentlabError, match="records no spread"):
        me.edit(smile=3, age=-2, unit="sigma")  # age's file records no sigma
    assert edited._repr_png_().startswith(b"\x89PNG")


def test_edit_layers_files_and_components(dirs_env, tmp_path):
    env = dirs_env
    me = _load(env, "b")
    d = np.random.RandomState(5).randn(16).astype(np.float32)
    np.save(tmp_path / "d.npy", d)
    out = me.edit({tmp_path / "d.npy": 2.0}, smile=-2, layers={"smile": "rows:7", "d": "rows:0-2"})
    expected = env["ws"]["b"].clone()
    expected[:, 7] -= 2 * torch.from_numpy(env["vecs"]["smile"])
    expected[:, 0:2] += 2 * torch.from_numpy(d)
    torch.testing.assert_close(out.ws, expected, rtol=1e-6, atol=1e-6)
    # SeFa component 0 of all rows: a unit vector, eigenvector of the stacked normalised affines
    s = me.edit(sefa={0: 1.5})
    step = (s.ws - me.ws)[0]
    assert torch.allclose(step, step[:1].expand_as(step), atol=1e-6)
    mats = [w / np.linalg.norm(w, axis=1, keepdims=True) for w in
            (m.weight.detach().double().numpy() for n, m in env["G"].named_modules() if n.endswith(".affine"))]
    A = np.concatenate(mats)
    vals, vecs = np.linalg.eigh(A.T @ A)
    assert abs(step[0].double().numpy() @ vecs[:, -1]) == pytest.approx(1.5, rel=1e-4)


def test_edit_equals_the_cli(dirs_env, tmp_path):
    from latentlab.cli import main

    env = dirs_env
    res = CliRunner().invoke(main, ["edit", str(env["root"] / "c.npz"), "--smile", "1.5", "--sefa", "1:-2",
                                    "--photo", str(env["root"] / "photo.png"), "--network", env["net"],
                                    "--outdir", str(tmp_path)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    api = _load(env, "c").edit(smile=1.5, sefa={1: -2})
    with np.load(tmp_path / "c_edit.npz") as z:
        torch.testing.assert_close(api.ws, torch.from_numpy(z["ws"]), rtol=0, atol=0)
    assert np.array_equal(api.image.array, load_image(tmp_path / "c_edit.png", min_size=1))
    assert np.array_equal(api.paste().array, load_image(tmp_path / "c_edit_pasted.png"))


# ----------------------------------------------------------------------------------- paste
def test_paste_returns_the_photo_changed_only_under_the_face(env):
    from latentlab.faces import paste_back

    me = _load(env, "a")
    pasted = me.paste()
    assert not pasted.rendered
    arr = pasted.array
    assert arr.shape == (*PHOTO_HW, 3) and arr.dtype == np.uint8
    photo = env["photo"]
    outside = np.ones(PHOTO_HW, bool)
    outside[20 - 2:60 + 3, 30 - 2:70 + 3] = False  # the crop square plus the resampling margin
    assert np.array_equal(arr[outside], photo[outside])
    assert (arr[25:55, 35:65] != photo[25:55, 35:65]).any()
    assert np.array_equal(arr, paste_back(photo, me.image.array, _transform()))
    assert np.array_equal(np.asarray(pasted), arr)


def test_paste_without_a_photo_is_a_one_line_error(env):
    s = ll.sample(env["G"], [1])[0]
    with pytest.raises(LatentlabError, match="no original photo to paste into"):
        s.paste()


# ----------------------------------------------------------------------------------- files
def test_save_and_load_round_trip(env, tmp_path):
    me = _load(env, "a").edit(sefa={0: 1.0})
    path = me.save(tmp_path / "me.npz")
    back = ll.load_latent(path, env["G"], photo=env["root"] / "photo.png")
    torch.testing.assert_close(back.ws, me.ws, rtol=0, atol=0)
    assert np.array_equal(back.transform.matrix, me.transform.matrix)
    assert np.array_equal(back.original, env["photo"])
    assert np.array_equal(back.image.array, me.image.array)
    assert back.history == me.history
    with pytest.raises(LatentlabError, match="already exists"):
        me.save(path)
    me.save(path, force=True)
    with pytest.raises(LatentlabError, match="must end in .npz"):
        me.save(tmp_path / "me.txt")
    img = tmp_path / "x.png"
    me.image.save(img)
    with pytest.raises(LatentlabError, match="already exists"):
        me.image.save(img)
    assert np.array_equal(load_image(img, min_size=1), me.image.array)
    # the photo path stored in the file is never opened: without photo= only the aligned result exists
    bare = ll.load_latent(path, env["G"])
    assert not bare.can_paste and np.array_equal(bare.image.array, me.image.array)
    with pytest.raises(LatentlabError, match="loaded without photo="):
        bare.paste()
    other = save_image(np.zeros((80, 80, 3), np.uint8), tmp_path / "other.png")
    with pytest.raises(LatentlabError, match="aligned from a 100x120 photo"):
        ll.load_latent(path, env["G"], photo=other)
    # project() reads a latent file the same way
    again = ll.project(path, env["G"], original=env["root"] / "photo.png")
    torch.testing.assert_close(again.ws, me.ws, rtol=0, atol=0)
    assert np.array_equal(again.paste().array, me.paste().array)


# ----------------------------------------------------------------------------------- other operations
def test_style_transfer_swap_follow_their_formulas(env):
    a, b, c = (_load(env, n) for n in "abc")
    wa, wb, wc = (env["ws"][n] for n in "abc")
    mixed = ll.style(a, b, layers="rows:2-5")
    expected = wa.clone()
    expected[:, 2:5] = wb[:, 2:5]
    torch.testing.assert_close(mixed.ws, expected, rtol=0, atol=0)
    default = ll.style(a, b)  # seed 9-18 (128-1024 px) clamps to this 32 px model's finest rows 5..7
    expected = wa.clone()
    expected[:, 5:] = wb[:, 5:]
    torch.testing.assert_close(default.ws, expected, rtol=0, atol=0)

    t = ll.transfer(a, b, c, 0.5, layers="rows:0-2")
    expected = wa.clone()
    expected[:, 0:2] += 0.5 * (wc[:, 0:2] - wb[:, 0:2])
    torch.testing.assert_close(t.ws, expected, rtol=1e-6, atol=1e-6)

    s = ll.swap(a, b, identity_layers="rows:0-5", keep_layers="rows:0")
    expected = wb.clone()
    expected[:, 1:5] = wa[:, 1:5]
    torch.testing.assert_close(s.ws, expected, rtol=0, atol=0)
    assert s.name == "a_on_b" and s.history[-1]["op"] == "swap"
    assert s.paste().shape == (*PHOTO_HW, 3)
    assert ll.swap(a, b).history[-1]["identity_rows"] == [0, 1, 2, 3, 4, 5, 6, 7]  # seed 0-7 = 4-32 px


def test_masked_swap_moves_towards_a(env, monkeypatch):
    import latentlab.faces as faces

    def no_face(*a, **k):
        raise LatentlabError("no face")  # what dlib says on these random 32 px faces, without loading it

    monkeypatch.setattr(faces, "detect_landmarks", no_face)
    a, b = _load(env, "a"), _load(env, "b")
    out = ll.swap(a, b, method="masked", steps=3, progress=False)  # from B (step 0 has lr 0: the ramp-up)
    h = out.history[-1]
    assert out.ws.shape == b.ws.shape and h["steps"] == 3 and h["init"] == "b"
    assert not torch.equal(out.ws, b.ws)  # a later step beat the start (B itself) on the masked loss
    assert out.name == "a_on_b" and out.paste().shape == (*PHOTO_HW, 3)


def test_morph_frames_and_video(env, tmp_path):
    import imageio.v2 as iio

    a, b = _load(env, "a"), _load(env, "b")
    frames = ll.morph(a, b, 5)
    assert len(frames) == 5
    wa, wb = env["ws"]["a"], env["ws"]["b"]
    for k, p in enumerate(frames.projections):
        torch.testing.assert_close(p.ws, wa + (k / 4) * (wb - wa), rtol=1e-6, atol=1e-6)
    assert frames[0].shape == (32, 32, 3)
    assert np.array_equal(frames[0].array, a.image.array)
    path = frames.save(tmp_path / "m.mp4", fps=5, size=64)
    with iio.get_reader(str(path)) as rd:
        assert rd.count_frames() == 5
    pasted = frames.paste()
    assert pasted[2].shape == (*PHOTO_HW, 3)
    strip = frames.save(tmp_path / "m.png", count=3)
    assert load_image(strip).shape == (256, 3 * 256 + 2 * 4, 3)


def test_sweep(dirs_env):
    me = _load(dirs_env, "a")
    fr = me.sweep("smile", [-2, 0, 2])
    vec = torch.from_numpy(dirs_env["vecs"]["smile"])
    for p, v in zip(fr.projections, (-2, 0, 2)):
        expected = dirs_env["ws"]["a"].clone()
        expected[:, 1:3] += v * vec
        torch.testing.assert_close(p.ws, expected, rtol=1e-6, atol=1e-6)


def test_sample_equals_the_cli(env, tmp_path):
    from latentlab.cli import main

    res = CliRunner().invoke(main, ["sample", "--network", env["net"], "--seeds", "3,7", "--trunc", "0.7",
                                    "--outdir", str(tmp_path), "--device", "cpu"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    batch = ll.sample(env["G"], "3,7", 0.7)
    assert [p.name for p in batch] == ["seed0003", "seed0007"]
    with np.load(tmp_path / "samples.npz") as z:
        torch.testing.assert_close(torch.cat([p.ws for p in batch]), torch.from_numpy(z["ws"]), rtol=0, atol=0)
    for p, seed in zip(batch, (3, 7)):
        assert np.array_equal(p.image.array, load_image(tmp_path / f"seed{seed:04d}.png", min_size=1))
    assert batch.grid().shape == (32, 64, 3)


def _tuning_of(G, other_seed: int) -> Tuning:
    """A tuning that turns G's synthesis weights into those of another tiny generator (float32)."""
    base = dict(G.synthesis_network.named_parameters())
    other = dict(make_tiny(other_seed).synthesis_network.named_parameters())
    return Tuning.from_delta({k: other[k].detach() - base[k].detach() for k in base}, dtype="float32")


def test_tuned_generator_renders_when_the_projection_carries_one(env):
    """A tuned latent is drawn by base + its delta: rendering and edits must use that generator."""
    me = _load(env, "a")
    tuned_me = me.with_latent(me.latent.replace(tuning=_tuning_of(env["G"], 11)))
    assert tuned_me.generator is not env["G"] and tuned_me.generator is tuned_me.generator  # built once, kept
    edited = tuned_me.edit(sefa={0: 1.0})
    assert edited.tuning is tuned_me.tuning and edited.generator is tuned_me.generator
    expected = _reference_image(make_tiny(11), edited.ws)  # an independent generator with those weights
    assert np.abs(edited.image.array.astype(int) - expected.astype(int)).max() <= 1


def test_a_pivotal_tuning_is_saved_and_loaded_with_the_latent(env, tmp_path):
    me = _load(env, "a")
    G = env["G"]
    params = dict(G.synthesis_network.named_parameters())
    name = sorted(params)[0]
    delta = {name: 0.3 * torch.randn(params[name].shape, generator=torch.Generator().manual_seed(9))}
    me = me.with_latent(me.latent.replace(tuning=Tuning.from_delta(delta)))
    edited = me.edit(sefa={1: 1.0})
    assert not np.array_equal(edited.image.array, _reference_image(G, edited.ws))  # the tuning shows
    path = edited.save(tmp_path / "tuned.npz")
    assert (tmp_path / "tuned.pti.safetensors").is_file()
    back = ll.load_latent(path, G)
    assert back.generator is not G and back.tuning.sha256
    assert np.array_equal(back.image.array, edited.image.array)  # the file holds exactly the delta drawn
    with pytest.raises(LatentlabError, match="already exists"):
        edited.save(path)
    files = edited.file_bytes("dl")  # a download: the same bytes, the npz pinning the delta's hash
    assert sorted(files) == ["dl.npz", "dl.pti.safetensors"]
    assert files["dl.pti.safetensors"] == (tmp_path / "tuned.pti.safetensors").read_bytes()


# ----------------------------------------------------------------------------------- bad input
def test_bad_input_is_a_one_line_error(dirs_env, tmp_path):
    env = dirs_env
    me = _load(env, "a")
    cases = [
        (lambda: me.edit(), "nothing to edit"),
        (lambda: me.edit(grin=1), "no direction 'grin' for model tiny; available: age, smile"),
        (lambda: me.edit(smile=float("nan")), "not a finite number"),
        (lambda: me.edit(smile=1e9), "out of range"),
        (lambda: me.edit("smile"), "expected TARGET=STRENGTH"),
        (lambda: me.edit("smile=1x"), "is not a number"),
        (lambda: me.edit(sefa={0: "1s"}), "components have no recorded sigma"),
        (lambda: me.edit(sefa={99: 1}), "component 99 does not exist"),
        (lambda: me.edit(smile=1, layers={"age": "0-3"}), "layers given for age"),
        (lambda: ll.style(me, "b.npz"), "style must be a Projection"),
        (lambda: ll.style(me, me, layers="rows:9"), "outside this model's 8 W+ rows"),
        (lambda: ll.transfer(me, me, me, strength=float("inf")), "not a finite number"),
        (lambda: ll.swap(me, me, method="glue"), "unknown swap method"),
        (lambda: ll.morph(me, me, 1), "at least 2 frames"),
        (lambda: ll.project(env["root"] / "photo.png", env["G"], num_stepz=3), "unknown projector setting 'num_stepz'"),
        (lambda: ll.project(env["root"] / "photo.png", env["G"], preset="slow"), "unknown projection preset"),
        (lambda: ll.project(env["root"] / "a.npz", env["G"], num_steps=3), "projector settings (num_steps) are for photos"),
        (lambda: ll.project(tmp_path / "missing.jpg", env["G"]), "no such file"),
        (lambda: ll.load_latent(tmp_path / "missing.npz", env["G"]), "no such latent file"),
        (lambda: ll.sample(env["G"], "5-1"), "descending"),
        (lambda: ll.sample(env["G"], [0], trunc=float("nan")), "not a finite number"),
        (lambda: me.with_ws(torch.zeros(1, 3, 16)), "ws must be [1, 8, 16]"),
        (lambda: ll.project("x.jpg", object()), "expected a generator"),
    ]
    for fn, fragment in cases:
        with pytest.raises(LatentlabError) as info:
            fn()
        msg = str(info.value)
        assert fragment in msg, (fragment, msg)
        assert "\n" not in msg


# ----------------------------------------------------------------------------------- the snippet
def _readme_snippet() -> str:
    text = (REPO / "README.md").read_text()
    m = re.search(r"### Python API.*?```python\n(.*?)```", text, flags=re.S)
    assert m, "README has no Python API snippet"
    return m.group(1)


def test_readme_snippet_runs_on_real_photos(shared_dir, env, api_cache, tmp_path, monkeypatch):
    """The README snippet, as written, on two portraits from ../shared (the tiny model in place of
    ffhq-mobile and a 3-step projector with 2 tuning steps in place of the pti preset)."""
    from latentlab.inversion import PRESETS, ProjectorConfig, TuningConfig

    portraits = shared_dir / "photos" / "portraits"
    photos = sorted(portraits.glob("*.jpg"))[:2] if portraits.is_dir() else []
    if len(photos) < 2:
        pytest.skip(f"no portraits in {portraits}")
    shutil.copy(photos[0], tmp_path / "me.jpg")
    shutil.copy(photos[1], tmp_path / "you.jpg")
    monkeypatch.setenv("LATENTLAB_DIRECTIONS", str(env["dirs"]))
    tune = TuningConfig(num_steps=2, lpips_weight=0.0, l2_weight=1.0, locality_weight=0.0, precision="fp32")
    monkeypatch.setitem(PRESETS, "pti", ProjectorConfig(num_steps=3, w_avg_samples=200, lpips_weight=0.0,
                                                       rec_weight=1.0, loss_resolution=32, tuning=tune))
    monkeypatch.chdir(tmp_path)
    code = _readme_snippet()
    assert 'll.load_generator("ffhq-mobile")' in code
    scope: dict = {}
    exec(compile(code.replace('"ffhq-mobile"', repr(env["net"])), "README snippet", "exec"), scope)

    me_photo, you_photo = load_image(tmp_path / "me.jpg"), load_image(tmp_path / "you.jpg")
    smiling, swapped = load_image(tmp_path / "me_smiling.jpg"), load_image(tmp_path / "you_on_me.jpg")
    assert smiling.shape == me_photo.shape and swapped.shape == me_photo.shape
    assert load_image(tmp_path / "me_dragged.jpg").shape == me_photo.shape
    me, G = scope["me"], scope["G"]  # the latent loaded back from me.npz, with me.jpg given as its photo
    assert isinstance(me, ll.Projection) and me.can_paste and me.tuning is not None
    first = ll.project(tmp_path / "me.jpg", G)  # the cached projection: the same latent and tuning
    torch.testing.assert_close(me.ws, first.ws, rtol=0, atol=0)
    assert np.array_equal(me.image.array, first.image.array)
    assert len(list((api_cache / "projections").glob("*.npz"))) == 2  # me and you, each projected once
    assert np.array_equal(first.original, me_photo) and you_photo.shape[2] == 3
    # far from the face (above the crop square) the result is the photo itself (up to JPEG)
    top = int(np.floor(first.transform.quad[:, 1].min())) - 2
    assert top > 20
    assert np.abs(smiling[:top].astype(int) - me_photo[:top].astype(int)).mean() < 2.0
    assert np.abs(swapped[:top].astype(int) - me_photo[:top].astype(int)).mean() < 2.0
    assert ll.load_latent("me.npz", G, photo="me.jpg").paste().shape == me_photo.shape
    assert not ll.load_latent("me.npz", G).can_paste  # a photo path stored in the file is not followed


def test_follow_moves_only_the_named_rows_and_keeps_the_start(env):
    """`follow(b, photo, layers=...)` starts at b's latent and moves only those rows (how fast it
    meets a second photo is tested in test_inversion on reachable targets); the result lives in the
    new photo and transfer() carries exactly the rows' change."""
    b = _load(env, "b")
    pixel = dict(lpips_weight=0.0, rec_weight=1.0, loss_resolution=32, w_avg_samples=50)
    after = ll.follow(b, env["photo"], layers="rows:0-2", steps=5, align=False, progress=False, **pixel)
    assert torch.equal(after.ws[:, 2:], b.ws[:, 2:]) and not torch.equal(after.ws[:, :2], b.ws[:, :2])
    assert after.settings["start"] == b.name and after.tuning is b.tuning and after.metrics["steps"] == 5
    a = _load(env, "a")
    t = ll.transfer(a, b, after, 1.0, layers="rows:0-2")
    torch.testing.assert_close(t.ws[:, :2] - a.ws[:, :2], after.ws[:, :2] - b.ws[:, :2], rtol=0, atol=1e-6)
    for kw, msg in [({"layers": "rows:0-2", "space": "w"}, "W projection|W\\+ projection"), ({"layers": "rows:99"}, "row")]:
        with pytest.raises(ll.LatentlabError, match=msg):
            ll.follow(b, env["photo"], align=False, progress=False, steps=2, **pixel, **kw)
    with pytest.raises(ll.LatentlabError, match="is a latent"):
        ll.follow(b, env["root"] / "a.npz", progress=False)
