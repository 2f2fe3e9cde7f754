"""Pivotal tuning: it fits what projection cannot, the locality regulariser keeps far latents,
the delta file round-trips and is refused when hostile, and every command renders a tuned latent
with its tuned generator (checked against an independent base + delta render)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from conftest import make_tiny, save_tiny

from latentlab.cli import main
from latentlab.errors import LatentlabError
from latentlab.faces import as_aligned
from latentlab.imageio import load_image, save_image, tensor_to_images
from latentlab.inversion import ProjectorConfig, TuningConfig, pivotal_tuning, project
from latentlab.inversion.pti import locality_latents
from latentlab.latent import Latent, Tuning, apply_tuning, blend, delta_path_for, read_delta, save_latent
from latentlab.models.base import override_noise


def _tiny(seed: int):
    return make_tiny(seed)


def save_delta(path: Path, delta: dict, *, model: str = "tiny", dtype: str = "float32") -> str:
    """Write a delta file beside nothing (for the reader's tests); its SHA-256."""
    import hashlib

    data = Tuning.from_delta(delta, dtype=dtype).file_bytes(model)
    if path.exists() or path.is_symlink():
        raise LatentlabError(f"{path}: already exists (use --force to overwrite)")
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


# fp32 pinned: the default "auto" would run bf16 on CPUs that have it, fp32 elsewhere
PIXEL_TUNE = TuningConfig(num_steps=40, learning_rate=3e-3, lpips_weight=0.0, l2_weight=1.0, locality_weight=0.0,
                          precision="fp32")


def _target_outside(G) -> torch.Tensor:
    """An image the tiny generator cannot draw exactly: another generator's sample."""
    other = _tiny(99)
    z = torch.from_numpy(np.random.RandomState(4).randn(1, other.z_dim).astype(np.float32))
    return other(z).clamp(-1, 1)


def test_tuning_fits_what_projection_cannot_and_leaves_the_base_untouched():
    G = _tiny(3)
    before = {k: v.clone() for k, v in G.state_dict().items()}
    target = _target_outside(G)
    pivot = project(G, target, ProjectorConfig(num_steps=30, w_avg_samples=200, lpips_weight=0.0, rec_weight=1.0,
                                               loss_resolution=32, optimize_noise=False))
    proj_mse = float((G.synthesis(pivot.ws) - target).square().mean())
    tr = pivotal_tuning(G, target, pivot.ws, {}, PIXEL_TUNE)
    tuned_mse = float((tr.G.synthesis(pivot.ws) - target).square().mean())
    assert tuned_mse < 0.5 * proj_mse
    assert tr.mse[0] == pytest.approx(float((tr.G.synthesis(pivot.ws) - target).square().mean()), rel=0.5)
    for k, v in G.state_dict().items():  # the base generator is never modified
        assert torch.equal(v, before[k]), k
    # the delta is exactly what changed: base + delta == the tuned copy, rounded as its file stores it
    tuned = dict(tr.G.synthesis_network.named_parameters())
    base = dict(G.synthesis_network.named_parameters())
    delta = tr.tuning.delta
    assert delta and set(delta) <= set(base) and tr.tuning.dtype == "float16"
    for k, d in delta.items():
        assert torch.equal(d, d.half().float())
        torch.testing.assert_close(base[k] + d, tuned[k], rtol=0, atol=1e-6)
    for k in set(base) - set(delta):
        assert torch.equal(base[k], tuned[k])


def test_convs_mode_keeps_the_style_affines():
    G = _tiny(3)
    target = _target_outside(G)
    ws = G.mapping(torch.zeros(1, G.z_dim))
    tr = pivotal_tuning(G, target, ws, {}, PIXEL_TUNE.replace(num_steps=3, tune="convs"))
    assert tr.tuning.delta and not any(".affine." in f".{k}" for k in tr.tuning.delta)
    assert not any(k.endswith("noise_strength") for k in tr.tuning.delta)


def test_learning_rate_ramps_down_by_the_cosine_formula():
    G = _tiny(3)
    target = _target_outside(G)
    pivot = G.w_avg.reshape(1, 1, -1).repeat(1, G.num_ws, 1)
    n, lr = 10, PIXEL_TUNE.learning_rate
    flat = pivotal_tuning(G, target, pivot, {}, PIXEL_TUNE.replace(num_steps=n))
    ramp = pivotal_tuning(G, target, pivot, {}, PIXEL_TUNE.replace(num_steps=n, lr_rampdown_length=1.0))
    assert [h["lr"] for h in flat.history] == pytest.approx([lr] * n)
    # over the whole run: lr_k = lr * (1 + cos(pi * k / n)) / 2
    assert [h["lr"] for h in ramp.history] == pytest.approx([lr * (1 + math.cos(math.pi * k / n)) / 2 for k in range(n)])
    # Adam moves each weight by about lr per step, so the ramped run moves the weights about half as far
    moved = lambda tr: max(float(d.abs().max()) for d in tr.tuning.delta.values())  # noqa: E731
    assert moved(ramp) < 0.75 * moved(flat)


def test_locality_latents_follow_the_formula():
    G = _tiny(3)
    pivot = G.mapping(torch.randn(2, G.z_dim))
    gen = torch.Generator().manual_seed(5)
    w_r = locality_latents(G, pivot, 30.0, gen)
    z = torch.randn((2, G.z_dim), generator=torch.Generator().manual_seed(5))
    w_z = G.mapping(z)[:, :1]
    d = w_z - pivot
    expected = pivot + 30.0 * d / d.norm(dim=-1, keepdim=True)
    torch.testing.assert_close(w_r, expected)
    assert torch.allclose((w_r - pivot).norm(dim=-1), torch.full((2, G.num_ws), 30.0), rtol=1e-5)


def test_locality_regulariser_keeps_far_latents_closer_to_the_base():
    G = _tiny(3)
    target = _target_outside(G)
    ws = G.mapping(torch.zeros(1, G.z_dim))
    probe = G.mapping(torch.from_numpy(np.random.RandomState(8).randn(16, G.z_dim).astype(np.float32)))
    base_img = G.synthesis(probe)
    drift = {}
    for weight in (0.0, 10.0):
        cfg = PIXEL_TUNE.replace(num_steps=25, locality_weight=weight, locality_alpha=3.0)
        tr = pivotal_tuning(G, target, ws, {}, cfg)
        drift[weight] = float((tr.G.synthesis(probe) - base_img).square().mean())
    assert drift[10.0] < 0.7 * drift[0.0]


class _SpyLoss(torch.nn.Module):
    """An L1 stand-in for LPIPS that records the resolution of every image it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, int]] = []

    def features(self, y: torch.Tensor) -> list[torch.Tensor]:
        return [y]

    def distance_from_features(self, x: torch.Tensor, feats: list[torch.Tensor]) -> torch.Tensor:
        self.seen.append(("photo", x.shape[-1]))
        return (x - feats[0]).abs().mean(dim=(1, 2, 3))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        assert x.shape == y.shape
        self.seen.append(("locality", x.shape[-1]))
        return (x - y).abs().mean(dim=(1, 2, 3))


@pytest.mark.parametrize("locality_resolution, expected", [(None, 32), (16, 16)])
def test_locality_term_runs_at_its_own_resolution_every_k_steps(locality_resolution, expected):
    G = _tiny(3)
    ws = G.mapping(torch.zeros(1, G.z_dim))
    spy = _SpyLoss()
    cfg = PIXEL_TUNE.replace(num_steps=6, lpips_weight=1.0, loss_resolution=32, locality_weight=1.0,
                             locality_every=3, locality_resolution=locality_resolution)
    pivotal_tuning(G, _target_outside(G), ws, {}, cfg, lpips_model=spy)
    assert [r for kind, r in spy.seen if kind == "photo"] == [32] * 6  # the photo's loss stays at loss_resolution
    assert [r for kind, r in spy.seen if kind == "locality"] == [expected] * 2  # steps 0 and 3


def test_coarse_steps_see_the_photo_at_the_coarse_resolution_first():
    G = _tiny(3)
    ws = G.mapping(torch.zeros(1, G.z_dim))
    spy = _SpyLoss()
    cfg = PIXEL_TUNE.replace(num_steps=8, lpips_weight=1.0, loss_resolution=32, coarse_fraction=0.25,
                             coarse_resolution=16)
    pivotal_tuning(G, _target_outside(G), ws, {}, cfg, lpips_model=spy)
    assert [r for kind, r in spy.seen if kind == "photo"] == [16, 16] + [32] * 6


class _CropSpy(_SpyLoss):
    """The L1 stand-in, also keeping every image ``features`` is given (the photo's crops)."""

    def __init__(self) -> None:
        super().__init__()
        self.targets: list[torch.Tensor] = []

    def features(self, y: torch.Tensor) -> list[torch.Tensor]:
        self.targets.append(y.detach().clone())
        return [y]


def test_texture_term_compares_full_resolution_crops_of_the_face():
    G = _tiny(3)  # 32 px: crops of 32 // 4 = 8 px
    ws = G.mapping(torch.zeros(1, G.z_dim))
    target = _target_outside(G)
    spy = _CropSpy()
    steps = 12
    cfg = PIXEL_TUNE.replace(num_steps=steps, lpips_weight=1.0, loss_resolution=16, texture_weight=2.0,
                             texture_crop=128)
    r = pivotal_tuning(G, target, ws, {}, cfg, lpips_model=spy)
    assert [res for kind, res in spy.seen if kind == "photo"] == [16, 8] * steps
    crops = spy.targets[1:]  # the first call is the whole photo at the loss resolution
    assert len(crops) == steps
    origins = []
    for c in crops:  # find each crop in the photo: full resolution, inside the central half
        hits = [(y, x) for y in range(32 - 7) for x in range(32 - 7)
                if torch.equal(target[..., y:y + 8, x:x + 8], c)]
        assert len(hits) == 1
        (y, x), = hits
        assert 8 <= y and y + 8 <= 24 and 8 <= x and x + 8 <= 24
        origins.append((y, x))
    assert len(set(origins)) > 3  # drawn anew each step
    with torch.no_grad():  # step 0: the render is the base generator's
        img = G.synthesis(ws, noise_mode="const")
    y, x = origins[0]
    expected = (img[..., y:y + 8, x:x + 8] - crops[0]).abs().mean().item()
    assert r.history[0]["texture"] == pytest.approx(expected, rel=1e-5)
    again = pivotal_tuning(G, target, ws, {}, cfg, lpips_model=_CropSpy())
    assert [h["texture"] for h in again.history] == [h["texture"] for h in r.history]  # seeded
    without = pivotal_tuning(G, target, ws, {}, cfg.replace(texture_weight=0.0), lpips_model=_SpyLoss())
    assert "texture" not in without.history[0]
    assert not torch.equal(without.G.synthesis(ws, noise_mode="const"), r.G.synthesis(ws, noise_mode="const"))


@pytest.mark.parametrize("native_bf16", [True, False])
def test_auto_precision_is_bf16_only_where_the_cpu_computes_it_and_tunes_as_well(native_bf16, monkeypatch):
    from latentlab.ops import fast_bfloat16, resolve_precision

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    assert fast_bfloat16("cpu") is native_bf16 and not fast_bfloat16(torch.device("cuda"))
    assert resolve_precision("auto", "cpu") == ("bf16" if native_bf16 else "fp32")
    assert resolve_precision("auto", "cuda") == "fp32" and resolve_precision("fp32", "cpu") == "fp32"
    G = _tiny(3)
    target = _target_outside(G)
    ws = G.mapping(torch.from_numpy(np.random.RandomState(2).randn(1, G.z_dim).astype(np.float32)))
    start_mse = float((G.synthesis(ws) - target).square().mean())
    fp32 = pivotal_tuning(G, target, ws, {}, PIXEL_TUNE)
    auto = pivotal_tuning(G, target, ws, {}, PIXEL_TUNE.replace(precision="auto"))
    assert auto.config.precision == ("bf16" if native_bf16 else "fp32")  # what ran is what is recorded
    auto_mse = float((auto.G.synthesis(ws) - target).square().mean())  # rendered in fp32
    fp32_mse = float((fp32.G.synthesis(ws) - target).square().mean())
    assert auto_mse < 0.5 * start_mse and auto_mse < 1.5 * fp32_mse
    assert all(v.dtype == torch.float32 for v in auto.tuning.delta.values())
    if not native_bf16:  # fp32 either way: the same numbers
        assert auto_mse == pytest.approx(fp32_mse, rel=1e-6)


@pytest.mark.parametrize("capability, isa, expected", [
    ("AVX512", None, True), ("AVX2", None, False), ("AVX512", "AVX2", False), ("AVX512", "AVX512_CORE", False),
    ("AVX512", "AVX512_CORE_BF16", True), ("AVX512", "AVX512_CORE_AMX", True), ("AVX512", "ALL", True)])
def test_auto_precision_keeps_fp32_where_bf16_kernels_are_capped(capability, isa, expected, monkeypatch):
    """ATEN_CPU_CAPABILITY=avx2 / ONEDNN_MAX_CPU_ISA=AVX2 (how a CPU without AVX-512 is approximated)
    leave bf16 on emulated kernels: "auto" must then choose fp32 even on a CPU that has AVX512-BF16."""
    from latentlab.ops import resolve_precision

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    if isa is None:
        monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    else:
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", isa)
    assert resolve_precision("auto", "cpu") == ("bf16" if expected else "fp32")


def test_bad_tuning_configs_and_inputs_are_clear_errors():
    G = _tiny(3)
    for bad in ({"num_steps": -1}, {"learning_rate": float("nan")}, {"l2_weight": -1.0}, {"tune": "mapping"},
                {"lpips_weight": 0.0, "l2_weight": 0.0}, {"locality_every": 0}, {"delta_dtype": "int8"},
                {"precision": "fp16"}, {"locality_resolution": 8}, {"locality_resolution": 64.5},
                {"coarse_fraction": 1.5}, {"coarse_resolution": 8}, {"texture_weight": float("inf")},
                {"texture_weight": -0.5}, {"texture_crop": 16}, {"texture_crop": True}):
        with pytest.raises(LatentlabError):
            TuningConfig(**bad)
    with pytest.raises(LatentlabError, match="targets must be"):
        pivotal_tuning(G, torch.zeros(1, 3, 16, 16), G.mapping(torch.zeros(1, 16)), {}, PIXEL_TUNE)
    with pytest.raises(LatentlabError, match="pivot must be"):
        pivotal_tuning(G, torch.zeros(1, 3, 32, 32), torch.zeros(1, 3, 16), {}, PIXEL_TUNE)
    with pytest.raises(LatentlabError, match="identity"):
        pivotal_tuning(G, torch.zeros(1, 3, 32, 32), G.mapping(torch.zeros(1, 16)), {},
                       PIXEL_TUNE.replace(id_weight=1.0))


# ------------------------------------------------------------------------------------------ delta files


@pytest.fixture(scope="module")
def tuned():
    G = _tiny(3)
    target = _target_outside(G)
    ws = G.mapping(torch.from_numpy(np.random.RandomState(2).randn(1, G.z_dim).astype(np.float32)))
    tr = pivotal_tuning(G, target, ws, {}, PIXEL_TUNE.replace(num_steps=15))
    return G, ws, tr


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_delta_round_trip(tuned, tmp_path, dtype):
    G, ws, tr = tuned
    path = tmp_path / "latent.pti.safetensors"
    digest = save_delta(path, tr.tuning.delta, dtype=dtype)
    back = read_delta(path, G, sha256=digest)
    assert set(back.delta) == set(tr.tuning.delta) and back.sha256 == digest and back.dtype == dtype
    for k, v in back.delta.items():  # float16 holds the tuning's float16 values exactly
        assert torch.equal(v, tr.tuning.delta[k])
    Gt = apply_tuning(G, back)
    assert torch.equal(Gt.synthesis(ws), tr.G.synthesis(ws))  # the file draws exactly what the tuning drew
    assert float((Gt.synthesis(ws) - G.synthesis(ws)).abs().max()) > 1e-3  # the delta does something
    with pytest.raises(LatentlabError, match="already exists"):
        save_delta(path, tr.tuning.delta)
    # the same tuning gives the same bytes every time, so its recorded SHA-256 identifies it
    assert back.file_bytes("tiny") == path.read_bytes() == Tuning.from_delta(back.delta, dtype=dtype).file_bytes("tiny")
    if dtype == "float16":  # half the bytes of float32, only the changed tensors
        n = sum(d.numel() for d in tr.tuning.delta.values())
        assert path.stat().st_size < 2 * n + 64 * 1024


def test_blend_is_the_weighted_sum(tuned):
    _, _, tr = tuned
    a = tr.tuning.delta
    b = {k: torch.ones_like(v) for k, v in list(a.items())[:2]}
    out = blend([tr.tuning, Tuning.from_delta(b, dtype="float32")], [0.25, 0.75])
    assert out.dtype == "float32" and set(out.delta) == set(a)
    for k, v in a.items():
        expected = 0.25 * v + (0.75 * b[k] if k in b else 0)
        torch.testing.assert_close(out.delta[k], expected)
    half = blend([tr.tuning, None], [0.5, 0.5])  # no tuning counts as the base generator
    assert half.dtype == "float16" and all(torch.equal(half.delta[k], (0.5 * v).half().float()) for k, v in a.items())
    assert blend([None, None], [0.5, 0.5]) is None


def _write_safetensors(path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, str] | None) -> None:
    from safetensors.torch import save_file

    save_file(tensors, str(path), metadata=meta)


@pytest.mark.parametrize("case", ["wrong_sha", "unknown_name", "wrong_shape", "nan", "int_dtype", "not_a_delta",
                                  "missing", "directory", "symlink", "too_big", "garbage"])
def test_hostile_deltas_are_refused_in_one_line(tuned, tmp_path, case, monkeypatch):
    G, _, tr = tuned
    path = tmp_path / "d.pti.safetensors"
    meta = {"format": "latentlab-pti-delta", "version": "1", "model": "tiny", "config": "{}"}
    name, value = next(iter(tr.tuning.delta.items()))
    sha = None
    if case == "wrong_sha":
        save_delta(path, tr.tuning.delta, model="tiny")
        sha = "0" * 64
    elif case == "unknown_name":
        _write_safetensors(path, {"evil.weight": torch.zeros(2)}, meta)
    elif case == "wrong_shape":
        _write_safetensors(path, {name: torch.zeros(value.numel() + 1)}, meta)
    elif case == "nan":
        _write_safetensors(path, {name: torch.full_like(value, float("nan"))}, meta)
    elif case == "int_dtype":
        _write_safetensors(path, {name: torch.zeros_like(value, dtype=torch.int32)}, meta)
    elif case == "not_a_delta":
        _write_safetensors(path, {name: torch.zeros_like(value)}, {"format": "something-else"})
    elif case == "directory":
        path.mkdir()
    elif case == "symlink":
        save_delta(tmp_path / "real.safetensors", tr.tuning.delta, model="tiny")
        path.symlink_to(tmp_path / "real.safetensors")
    elif case == "too_big":
        save_delta(path, tr.tuning.delta, model="tiny")
        monkeypatch.setattr("latentlab.latent.tuning.MAX_DELTA_BYTES", 100)
    elif case == "garbage":
        path.write_bytes(b"\xff" * 64)
    with pytest.raises(LatentlabError) as err:
        read_delta(path, G, sha256=sha)
    assert "\n" not in str(err.value)


# ------------------------------------------------------------------------------ every command, tuned


@pytest.fixture(scope="module")
def env(tmp_path_factory, tuned):
    """Latents a (tuned), b (tuned differently), c (plain) of a tiny checkpoint, with the photo."""
    G, _, tr = tuned
    root = tmp_path_factory.mktemp("pti_cli")
    net = save_tiny(G, root / "tiny.safetensors")
    photo = np.random.RandomState(0).randint(0, 255, (96, 80, 3)).astype(np.uint8)
    save_image(photo, root / "photo.png")
    face = as_aligned(photo, 32)
    gen = torch.Generator().manual_seed(1)
    deltas = {"a": tr.tuning.delta, "b": {k: -0.5 * v for k, v in tr.tuning.delta.items()}, "c": None}
    lats = {}
    for name, delta in deltas.items():
        ws = torch.randn(1, G.num_ws, G.w_dim, generator=gen) * 0.5 + G.mapping(torch.zeros(1, G.z_dim))
        tuning = Tuning.from_delta(delta, dtype="float32") if delta is not None else None
        save_latent(Latent(ws, transform=face.transform, tuning=tuning, network=str(net)), root / f"{name}.npz")
        assert (tuning is not None) == delta_path_for(root / f"{name}.npz").is_file()
        lats[name] = ws
    return {"root": root, "net": str(net), "G": G, "ws": lats, "delta": deltas}


def _run(env, *args):
    return CliRunner().invoke(main, [*map(str, args), "--network", env["net"]], catch_exceptions=False)


def _npz_ws(path: Path) -> torch.Tensor:
    with np.load(path) as z:
        return torch.from_numpy(z["ws"])


def _render(G, ws, delta, noise=None) -> np.ndarray:
    """Independent render: the base generator's parameters plus the delta, written by hand (with the
    given noise maps in place of the constant ones)."""
    import copy

    Gt = copy.deepcopy(G)
    if delta:
        params = dict(Gt.synthesis_network.named_parameters())
        with torch.no_grad():
            for k, d in delta.items():
                params[k] += d
    with torch.no_grad(), override_noise(Gt, noise or {}):
        return tensor_to_images(Gt.synthesis(ws, noise_mode="const").clamp(-1, 1))[0]


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    return int(np.abs(a.astype(int) - b.astype(int)).max()) <= 1


def test_edit_renders_with_the_tuned_generator_and_carries_the_tuning(env, tmp_path):
    r, G = env["root"], env["G"]
    d = np.random.RandomState(5).randn(16).astype(np.float32)
    np.save(tmp_path / "d.npy", d)
    res = _run(env, "edit", r / "a.npz", "--direction", f"{tmp_path / 'd.npy'}:1.5@rows:0-3", "--outdir", tmp_path / "o")
    assert res.exit_code == 0, res.output
    ws = _npz_ws(tmp_path / "o" / "a_edit.npz")
    img = load_image(tmp_path / "o" / "a_edit.png", min_size=1)
    assert _close(img, _render(G, ws, env["delta"]["a"]))
    assert not _close(img, _render(G, ws, None))  # not the base generator's picture
    # the written latent carries the tuning: editing it again still renders tuned
    settings = json.loads(str(np.load(tmp_path / "o" / "a_edit.npz")["settings"]))
    assert settings["tuning"]["file"] == "a_edit.pti.safetensors"
    res = _run(env, "edit", tmp_path / "o" / "a_edit.npz", "--direction", f"{tmp_path / 'd.npy'}:0@rows:0-1",
               "--outdir", tmp_path / "o2")
    assert res.exit_code == 0, res.output
    assert _close(load_image(tmp_path / "o2" / "a_edit_edit.png", min_size=1), img)


def test_style_and_transfer_use_the_content_and_target_generators(env, tmp_path):
    r, G, ws, delta = env["root"], env["G"], env["ws"], env["delta"]
    res = _run(env, "style", r / "a.npz", r / "b.npz", "--layers", "rows:2-5", "--outdir", tmp_path)
    assert res.exit_code == 0, res.output
    mixed = _npz_ws(tmp_path / "a_x_b.npz")
    assert _close(load_image(tmp_path / "a_x_b.png", min_size=1), _render(G, mixed, delta["a"]))  # content's


    res = _run(env, "transfer", r / "c.npz", "--from", r / "a.npz", "--to", r / "b.npz", "--outdir", tmp_path)
    assert res.exit_code == 0, res.output
    out = tmp_path / "c_transfer.npz"  # the target is plain: the base generator draws it
    assert _close(load_image(out.with_suffix(".png"), min_size=1), _render(G, _npz_ws(out), None))
    res = _run(env, "transfer", r / "a.npz", "--from", r / "c.npz", "--to", r / "b.npz", "--outdir", tmp_path)
    assert res.exit_code == 0, res.output
    out = tmp_path / "a_transfer.npz"  # a tuned target: its generator
    assert _close(load_image(out.with_suffix(".png"), min_size=1), _render(G, _npz_ws(out), delta["a"]))


def _swap_deltas(delta) -> dict:
    """What each --tuning choice should draw with: the deltas written by hand."""
    mix = lambda t: {k: t * delta["a"][k] + (1 - t) * delta["b"][k] for k in delta["a"]}  # noqa: E731
    return {"blend": mix(0.5), "0.7": mix(0.7), "b": delta["b"], "a": delta["a"], "none": None}


@pytest.mark.parametrize("tuning", ["blend", "0.7", "b", "a", "none"])
def test_swap_draws_with_the_chosen_tuning_and_its_latent_carries_it(env, tmp_path, tuning):
    r, G, delta = env["root"], env["G"], env["delta"]
    choices = _swap_deltas(delta)
    expected = choices[tuning]
    args = ("--tuning", tuning) if tuning != "blend" else ()  # blend is the default
    res = _run(env, "swap", r / "a.npz", r / "b.npz", *args, "--outdir", tmp_path)
    assert res.exit_code == 0, res.output
    sw = _npz_ws(tmp_path / "a_on_b.npz")
    img = load_image(tmp_path / "a_on_b.png", min_size=1)
    assert _close(img, _render(G, sw, expected))
    for other in set(choices) - {tuning}:  # and not any other choice's picture
        assert not _close(img, _render(G, sw, choices[other])), other
    # the written latent carries that tuning: a zero edit of it draws the same picture
    np.save(tmp_path / "d.npy", np.ones(16, np.float32))
    res = _run(env, "edit", tmp_path / "a_on_b.npz", "--direction", f"{tmp_path / 'd.npy'}:0", "--outdir", tmp_path / "e")
    assert res.exit_code == 0, res.output
    assert _close(load_image(tmp_path / "e" / "a_on_b_edit.png", min_size=1), img)
    assert (tmp_path / "a_on_b.pti.safetensors").exists() == (expected is not None)


def test_masked_swap_optimises_in_the_generator_that_draws_it(env, tmp_path, monkeypatch):
    import latentlab.editing.swap as swap_mod

    r, G, delta = env["root"], env["G"], env["delta"]
    seen = []
    real = swap_mod.masked_swap

    def spy(Gx, *args, **kwargs):
        seen.append(Gx)
        return real(Gx, *args, **kwargs)

    monkeypatch.setattr(swap_mod, "masked_swap", spy)
    res = _run(env, "swap", r / "a.npz", r / "b.npz", "--method", "masked", "--steps", 2, "--outdir", tmp_path)
    assert res.exit_code == 0, res.output
    blend = _swap_deltas(delta)["blend"]
    tuned = dict(seen[0].synthesis_network.named_parameters())
    for k, v in G.synthesis_network.named_parameters():  # the optimised generator is base + the blend
        torch.testing.assert_close(tuned[k], v + blend[k] if k in blend else v, rtol=0, atol=1e-6)
    sw = _npz_ws(tmp_path / "a_on_b.npz")
    assert _close(load_image(tmp_path / "a_on_b.png", min_size=1), _render(G, sw, blend))


def test_swap_blend_with_one_untuned_input_halves_the_other_tuning(env, tmp_path):
    r, G, delta = env["root"], env["G"], env["delta"]
    res = _run(env, "swap", r / "c.npz", r / "a.npz", "--outdir", tmp_path)  # c carries no tuning
    assert res.exit_code == 0, res.output
    half = {k: 0.5 * v for k, v in delta["a"].items()}
    assert _close(load_image(tmp_path / "c_on_a.png", min_size=1), _render(G, _npz_ws(tmp_path / "c_on_a.npz"), half))
    for bad in ("bogus", "1.5", "-0.1", "nan"):
        res = _run(env, "swap", r / "c.npz", r / "a.npz", "--tuning", bad, "--outdir", tmp_path / "x")
        assert res.exit_code == 2 and bad in res.output and "Traceback" not in res.output
    assert not (tmp_path / "x").exists()


def test_ui_swap_draws_with_the_chosen_tuning_and_serves_it(env, tmp_path):
    import latentlab as ll
    from latentlab.ui.core import Studio

    G, ws, delta = env["G"], env["ws"], env["delta"]
    session = Studio(G, env["net"], default_steps=3).new_session()
    ids = {n: session.latents.put(ll.load_latent(env["root"] / f"{n}.npz", G, network=env["net"]))
           for n in ("a", "b")}
    choices = _swap_deltas(delta)
    for tuning, expected in ((None, choices["blend"]), ("0.7", choices["0.7"]), (0.7, choices["0.7"]),
                             ("b", delta["b"]), (0, delta["b"]), ("none", None)):
        job = session.wait(session.start_swap(ids["b"], ids["a"], "rows:0-4", tuning), timeout=60)
        assert job.status == "done", job.error
        entry = session.latents.need(job.result["latent"])
        torch.testing.assert_close(entry.ws[:, :4], ws["a"][:, :4])  # rows 0-4: rows 0..3 from A
        torch.testing.assert_close(entry.ws[:, 4:], ws["b"][:, 4:])
        shown = session.images.need(job.result["image"])
        assert _close(shown, _render(G, entry.ws, expected)) and job.result["tuned"] == (expected is not None)
        if expected is None:
            continue
        # the downloads give every command the same tuned swap
        (tmp_path / "s.npz").write_bytes(session.latent_npz(job.result["latent"]))
        (tmp_path / session.delta_file_name(job.result["latent"])).write_bytes(session.latent_delta(job.result["latent"]))
        lat = ll.load_latent(tmp_path / "s.npz", G, network=env["net"])
        assert _close(lat.image.array, shown) and _close(_render(G, lat.ws, lat.tuning.delta), shown)
    for bad in ("both", 2.0, True):
        with pytest.raises(LatentlabError, match="unknown swap tuning"):
            session.start_swap(ids["b"], ids["a"], None, bad)


def test_morph_blends_the_generators(env, tmp_path):
    r, G, ws, delta = env["root"], env["G"], env["ws"], env["delta"]
    res = _run(env, "morph", r / "a.npz", r / "c.npz", "--frames", 3, "--out", tmp_path / "m.gif", "--size", 32)
    assert res.exit_code == 0, res.output
    import imageio.v2 as iio

    frames = iio.mimread(tmp_path / "m.gif")
    first, mid = np.asarray(frames[0])[..., :3].astype(int), np.asarray(frames[1])[..., :3].astype(int)

    def err(img, ref):
        return float(np.abs(img - ref.astype(int)).mean())

    # GIF palettes are lossy, so each frame must be far closer to the blended-generator render than
    # to the same latent drawn by the base generator.
    assert err(first, _render(G, ws["a"], delta["a"])) < 0.5 * err(first, _render(G, ws["a"], None))
    mid_ws = 0.5 * (ws["a"] + ws["c"])
    half = {k: 0.5 * v for k, v in delta["a"].items()}
    assert err(mid, _render(G, mid_ws, half)) < 0.5 * min(err(mid, _render(G, mid_ws, None)),
                                                         err(mid, _render(G, mid_ws, delta["a"])))


def test_a_replaced_or_missing_delta_is_one_line(env, tmp_path):
    import shutil

    r = env["root"]
    shutil.copy(r / "a.npz", tmp_path / "a.npz")
    np.save(tmp_path / "d.npy", np.ones(16, np.float32))
    edit = ("--direction", f"{tmp_path / 'd.npy'}:1")
    res = _run(env, "edit", tmp_path / "a.npz", *edit, "--outdir", tmp_path / "o")
    assert res.exit_code == 1 and "tuning delta not found" in res.output
    save_delta(tmp_path / "a.pti.safetensors", env["delta"]["b"], model="x")
    res = _run(env, "edit", tmp_path / "a.npz", *edit, "--outdir", tmp_path / "o")
    assert res.exit_code == 1 and "SHA-256" in res.output
    assert "Traceback" not in res.output


def test_ui_tunes_with_the_pti_preset_and_its_downloads_carry_the_tuning(tmp_path, tmp_cache):
    import latentlab as ll
    from latentlab.inversion import PRESETS
    from latentlab.ui.core import Studio, png_bytes

    G = _tiny(3)
    studio = Studio(G, "tiny", default_steps=3, preset="pti")
    session = studio.new_session()
    photo = (np.random.RandomState(0).rand(80, 80, 3) * 255).astype(np.uint8)
    pid = session.add_photo(png_bytes(photo), "me.png", align=False)["photo"]
    job = session.wait(session.start_projection(pid, num_steps=3), timeout=600)
    assert job.status == "done", job.error
    res = job.result
    assert res["tuned"] and res["metrics"]["tuning_steps"] == PRESETS["pti"].tuning.num_steps
    entry = session.latents.need(res["latent"])
    assert torch.equal(entry.ws, entry.ws[:, :1].expand_as(entry.ws))  # the preset's W pivot, as on the CLI
    assert studio.info()["space"] == "w"
    shown = session.images.need(res["image"])
    delta = entry.tuning.delta
    assert _close(shown, _render(G, entry.ws, delta, entry.noise))  # the page shows the tuned render
    assert not _close(shown, _render(G, entry.ws, None, entry.noise))
    # the two downloads, saved side by side, give every command the same tuned latent
    (tmp_path / "me.npz").write_bytes(session.latent_npz(res["latent"]))
    (tmp_path / session.delta_file_name(res["latent"])).write_bytes(session.latent_delta(res["latent"]))
    lat = ll.load_latent(tmp_path / "me.npz", G, network="tiny")
    assert lat.tuning is not None and lat.generator is not G
    assert _close(_render(G, lat.ws, lat.tuning.delta, lat.noise), shown) and _close(lat.image.array, shown)
    # an edit of a tuned latent renders tuned too
    edit = session.wait(session.start_render(res["latent"], {"smile": 0.0}) if session.directions else
                        session.start_render(res["latent"]), timeout=60)
    assert edit.status == "done" and edit.result["tuned"]
    assert _close(session.images.need(edit.result["image"]), shown)


def test_project_pti_preset_then_evaluate_side_by_side(env, tmp_path):
    """`latentlab project --preset pti` writes the delta beside the latent and its reconstruction is
    the tuned render; `latentlab evaluate` tables presets, with PSNR checked against the PNGs."""
    import csv

    G = env["G"]
    photos = tmp_path / "photos"
    rng = np.random.RandomState(0)
    for name in ("p1", "p2"):
        save_image((rng.rand(64, 64, 3) * 255).astype(np.uint8), photos / f"{name}.png")
    (photos / "broken.png").write_bytes(b"not a png")
    fast = ("--num-steps", 3, "--w-avg-samples", 50, "--loss-res", 32)
    res = _run(env, "project", photos / "p1.png", "--preset", "pti", *fast, "--pti-steps", 4, "--no-align",
               "--outdir", tmp_path / "proj")
    assert res.exit_code == 0, res.output
    d = tmp_path / "proj" / "p1"
    settings = json.loads(str(np.load(d / "latent.npz")["settings"]))
    assert settings["tuning"]["file"] == "latent.pti.safetensors" and (d / "latent.pti.safetensors").is_file()
    assert settings["config"]["tuning"]["num_steps"] == 4
    delta = read_delta(d / "latent.pti.safetensors", G, sha256=settings["tuning"]["sha256"]).delta
    with np.load(d / "latent.npz") as z:
        ws = torch.from_numpy(z["ws"])
        noise = {k[len("noise/"):]: torch.from_numpy(z[k]) for k in z.files if k.startswith("noise/")}
    assert _close(load_image(d / "reconstruction.png", min_size=1), _render(G, ws, delta, noise))
    assert json.loads((d / "metrics.json").read_text())["tuning_steps"] == 4
    # the pivot is in W (PTI's choice): one w on every row, unless --space w+ asks otherwise
    assert settings["config"]["space"] == "w" and torch.equal(ws, ws[:, :1].expand_as(ws))
    res = _run(env, "project", photos / "p1.png", "--preset", "pti", "--space", "w+", *fast, "--pti-steps", 1,
               "--no-align", "--outdir", tmp_path / "proj_wplus")
    assert res.exit_code == 0, res.output
    with np.load(tmp_path / "proj_wplus" / "p1" / "latent.npz") as z:
        assert not torch.equal(torch.from_numpy(z["ws"][:, :1]).expand(*z["ws"].shape), torch.from_numpy(z["ws"]))

    res = _run(env, "evaluate", photos, "--preset", "fast,pti", *fast, "--pti-steps", 4, "--no-align",
               "--outdir", tmp_path / "ev")
    assert res.exit_code == 1 and "broken.png" in res.output  # reported, the others finished
    rows = list(csv.DictReader(open(tmp_path / "ev" / "results.csv")))
    assert [(r["preset"], r["photo"]) for r in rows] == [(p, f) for p in ("fast", "pti")
                                                         for f in ("broken.png", "p1.png", "p2.png")]
    for r in rows:
        if r["photo"] == "broken.png":
            assert r["error"] and not r["psnr"]
            continue
        aligned = load_image(tmp_path / "ev" / r["preset"] / r["photo"][:-4] / "aligned.png", min_size=1)
        recon = load_image(tmp_path / "ev" / r["preset"] / r["photo"][:-4] / "reconstruction.png", min_size=1)
        mse = np.mean(((aligned.astype(float) - recon.astype(float)) / 127.5) ** 2)  # on [-1, 1]
        assert float(r["psnr"]) == pytest.approx(10 * np.log10(4 / mse), abs=0.3)
        assert (r["tuning_steps"] == "4") == (r["preset"] == "pti")
        # the tiny model has no smile direction: no figure, but the strip of its reconstruction
        assert "smile_gain_pct" in r and not r["smile_gain_pct"] and r["texture_hf_ratio"] == ""
        strip = load_image(tmp_path / "ev" / r["preset"] / r["photo"][:-4] / "edits.png", min_size=1)
        assert strip.shape == (256, 256 * 5, 3)
    summary = json.loads((tmp_path / "ev" / "results.json").read_text())["summary"]
    assert summary["pti"]["photos"] == 2 and summary["pti"]["failed"] == 1
    mean_psnr = np.mean([float(r["psnr"]) for r in rows if r["preset"] == "pti" and r["psnr"]])
    assert summary["pti"]["psnr"] == pytest.approx(mean_psnr, rel=1e-6)
    assert "<img" in (tmp_path / "ev" / "report.html").read_text()
    # a rerun keeps what is done (the same numbers) without --force
    again = _run(env, "evaluate", photos / "p1.png", "--preset", "pti", *fast, "--pti-steps", 4, "--no-align",
                 "--outdir", tmp_path / "ev")
    assert again.exit_code == 0, again.output
    rows2 = list(csv.DictReader(open(tmp_path / "ev" / "results.csv")))
    assert rows2[0]["psnr"] == next(r["psnr"] for r in rows if r["preset"] == "pti" and r["photo"] == "p1.png")


def test_identity_loss_enters_projection_and_tuning():
    """--id-weight / --pti-id-weight: the identity loss is called on (render, photo) and its gradient
    moves the result (a stand-in loss here; the FaceRes loss itself is tested in test_metrics)."""
    G = _tiny(3)
    target = _target_outside(G)
    calls = []

    def fake_id(render, photo):
        calls.append((tuple(render.shape), tuple(photo.shape)))
        return (render - photo).abs().mean(dim=(1, 2, 3))

    cfg = ProjectorConfig(num_steps=5, w_avg_samples=100, lpips_weight=0.0, rec_weight=1.0, loss_resolution=32,
                          optimize_noise=False, initial_noise_factor=0.0)
    plain = project(G, target, cfg)
    with_id = project(G, target, cfg.replace(id_weight=5.0), identity_loss=fake_id)
    assert calls and calls[0] == ((1, 3, 32, 32), (1, 3, 32, 32))
    assert not torch.allclose(plain.ws, with_id.ws)
    calls.clear()
    tr = pivotal_tuning(G, target, plain.ws, {}, PIXEL_TUNE.replace(num_steps=3, id_weight=1.0),
                        identity_loss=fake_id)
    assert len(calls) == 3 and "id_loss" in tr.history[0]
