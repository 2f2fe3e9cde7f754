"""StyleGAN2: reproduce the reference outputs of NVIDIA's and rosinality's own code from each
checkpoint file alone; gradients, truncation, layout and the pure-torch ops."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from latentlab.checkpoints import read_checkpoint
from latentlab.checkpoints.native import save_native
from latentlab.models import build_generator
from latentlab.models.stylegan2 import StyleGAN2Generator, normalize_config
from latentlab.ops import bias_act, conv2d_resample, setup_filter, upfirdn2d, upsample2d

IMG_TOL = 1e-5  # the fixture README's suggestion (correct implementations differ by ~1.2e-6)
W_TOL = 1e-6

# file, reference, source_format, whether the file stores w_avg
FIXTURES = [
    ("nvidia_tiny.pkl", "nvidia_tiny_ref.npz", "nvidia-pkl", True),
    ("nvidia_tiny_tf.pkl", "nvidia_tiny_tf_ref.npz", "nvidia-tf-pkl", True),
    ("rosinality_tiny_converted.pt", "rosinality_tiny_ref.npz", "rosinality-pt", True),
    ("rosinality_tiny.pt", "rosinality_tiny_ref.npz", "rosinality-pt", False),
]


def _maxabs(a: torch.Tensor, b: np.ndarray) -> float:
    return float((a.detach().cpu() - torch.from_numpy(np.asarray(b))).abs().max())


def _load(path) -> StyleGAN2Generator:
    ck = read_checkpoint(path)
    G = build_generator(ck.family, ck.config)
    G.load_state_dict(ck.state_dict, strict=True)
    return G.eval()


def _ref_noise_name(npz_key: str, G: StyleGAN2Generator) -> str:
    """npz ``buf.*`` key -> our buffer name (rosinality's noises.noise_i by its documented order)."""
    name = npz_key.removeprefix("buf.")
    if name.startswith("noises.noise_"):
        i = int(name.rsplit("_", 1)[1])
        return list(G.noise_buffers())[i]  # layer order: b4.conv1, b8.conv0, b8.conv1, ...
    return name


@pytest.mark.shared
@pytest.mark.parametrize("fname,refname,fmt,has_w_avg", FIXTURES, ids=[f[0] for f in FIXTURES])
def test_reproduces_reference(shared_dir, device, fname, refname, fmt, has_w_avg):
    folder = shared_dir / "fixtures" / "stylegan2"
    ref = np.load(folder / refname)
    ck = read_checkpoint(folder / fname)
    assert ck.family == "stylegan2" and ck.source_format == fmt
    G = build_generator(ck.family, ck.config)
    G.load_state_dict(ck.state_dict, strict=True)
    G = G.eval().to(device)
    assert (G.num_ws, G.img_resolution, G.img_channels, G.z_dim, G.w_dim) == tuple(
        int(ref[k]) for k in ("num_ws", "resolution", "img_channels", "z_dim", "w_dim"))
    json.dumps(G.config)  # config is plain data

    # Noise buffers are the checkpoint's, in the documented layer order.
    noise = G.noise_buffers()
    bufs = [k for k in ref.files if k.startswith("buf.")]
    assert len(bufs) == len(noise) == 7
    for key in bufs:
        assert _maxabs(noise[_ref_noise_name(key, G)], ref[key].reshape(noise[_ref_noise_name(key, G)].shape)) == 0

    # W+ row usage matches the reference's layer table.
    rows = {n.removeprefix("synthesis."): (i, r) for n, i, r in G.layer_rows()}
    if fmt != "rosinality-pt":
        for name, idx, res in zip(ref["layer_names"], ref["layer_ws_index"], ref["layer_resolution"]):
            assert rows[str(name).removeprefix("synthesis.")] == (int(idx), int(res))
    assert [i for i, _ in sorted(rows.values())] == sorted(int(i) for i in ref["layer_ws_index"])

    T = lambda k: torch.from_numpy(ref[k]).to(device)  # noqa: E731
    with torch.no_grad():
        ws = G.mapping(T("z"), T("c") if "c" in ref.files else None)
        assert _maxabs(ws[:, 0], ref["w"]) <= W_TOL
        assert _maxabs(ws, ref["ws"]) <= W_TOL
        ws_mix = torch.stack([G.mapping(T("zmix")[:, l])[:, 0] for l in range(G.num_ws)], dim=1)
        assert _maxabs(ws_mix, ref["ws_mix"]) <= W_TOL

        if has_w_avg:
            assert _maxabs(G.w_avg, ref["w_avg"]) == 0  # read, not recomputed
        else:
            # train.py checkpoints carry no mean W: estimated from mapping samples, noted in extra.
            assert "estimated" in ck.extra["w_avg"]
            assert _maxabs(G.w_avg, ref["w_avg"]) < 0.1
            assert _maxabs(G.w_avg, ref["w_avg"]) > 0
            G.w_avg.copy_(T("w_avg"))
        psi = float(ref["psi"])
        ws_psi = G.mapping(T("z"), truncation_psi=psi)
        assert _maxabs(ws_psi, ref["ws_psi"]) <= W_TOL
        assert _maxabs(ws_psi[:, 0], ref["w_psi"]) <= W_TOL

        for fused in (True, False):
            assert _maxabs(G.synthesis(T("ws"), "const", fused_modconv=fused), ref["img_const"]) <= IMG_TOL
            assert _maxabs(G.synthesis(T("ws_psi"), "const", fused_modconv=fused), ref["img_const_psi"]) <= IMG_TOL
            assert _maxabs(G.synthesis(T("ws"), "none", fused_modconv=fused), ref["img_none"]) <= IMG_TOL
            assert _maxabs(G.synthesis(T("ws_mix"), "const", fused_modconv=fused), ref["img_mix_const"]) <= IMG_TOL
        # The whole forward (mapping + truncation + synthesis) too.
        assert _maxabs(G(T("z"), truncation_psi=psi), ref["img_const_psi"]) <= IMG_TOL


@pytest.mark.shared
def test_picks_g_ema_and_native_round_trip(shared_dir, tmp_path):
    G = _load(shared_dir / "fixtures" / "stylegan2" / "nvidia_tiny.pkl")
    ck = read_checkpoint(shared_dir / "fixtures" / "stylegan2" / "nvidia_tiny.pkl")
    assert ck.extra["network"] == "G_ema"
    path = save_native(G.family, G.config, G.state_dict(), tmp_path / "tiny.safetensors")
    ck2 = read_checkpoint(path)
    assert ck2.source_format == "native" and ck2.config == G.config
    G2 = build_generator(ck2.family, ck2.config)
    G2.load_state_dict(ck2.state_dict, strict=True)
    z = torch.from_numpy(np.random.RandomState(5).randn(2, G.z_dim).astype(np.float32))
    with torch.no_grad():
        assert torch.equal(G(z, truncation_psi=0.5), G2.eval()(z, truncation_psi=0.5))


# ---------------------------------------------------------------------------- tiny random models
def _tiny(**synthesis) -> StyleGAN2Generator:
    c_dim = synthesis.pop("c_dim", 0)
    torch.manual_seed(1)
    G = StyleGAN2Generator(z_dim=16, c_dim=c_dim, w_dim=16, img_resolution=16, img_channels=3,
                           mapping_kwargs={"num_layers": 2},
                           synthesis_kwargs={"channel_base": 128, "channel_max": 16, **synthesis})
    with torch.no_grad():  # non-zero biases and noise strengths, like a trained model
        for name, p in G.named_parameters():
            if name.endswith("bias") or name.endswith("noise_strength"):
                p.add_(0.1 * torch.randn_like(p))
    return G


@pytest.mark.parametrize("arch", ["skip", "orig", "resnet"])
def test_every_parameter_gets_a_gradient(arch):
    G = _tiny(architecture=arch, c_dim=3).train()
    z = torch.randn(2, 16)
    c = torch.eye(3)[:2]
    img = G(z, c, noise_mode="const")
    assert img.shape == (2, 3, 16, 16)
    img.square().mean().backward()
    for name, p in G.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name
    assert {n.split(".")[-2] for n, _ in G.named_parameters() if n.startswith("mapping.embed")} == {"embed"}
    if arch == "resnet":
        assert "synthesis.b8.skip.weight" in dict(G.named_parameters())
    if arch == "orig":
        assert not any("b8.torgb" in n for n, _ in G.named_parameters())


def test_fused_and_unfused_modconv_agree(device):
    G = _tiny().to(device).eval()
    ws = torch.randn(3, G.num_ws, 16, device=device)
    with torch.no_grad():
        a = G.synthesis(ws, fused_modconv=True)
        b = G.synthesis(ws, fused_modconv=False)
    assert float((a - b).abs().max()) < 1e-5
    if device.type != "cpu":  # the same weights on the CPU give the same image
        with torch.no_grad():
            c = G.cpu().synthesis(ws.cpu())
        assert float((a.cpu() - c).abs().max()) < 1e-4


def test_truncation_cutoff_hand_formula():
    G = _tiny().eval()
    with torch.no_grad():
        G.w_avg.copy_(torch.randn(16))
        z = torch.randn(3, 16)
        w = G.mapping(z)[:, 0]
        psi, cutoff = 0.6, 3
        ws = G.mapping(z, truncation_psi=psi, truncation_cutoff=cutoff)
    assert ws.shape == (3, G.num_ws, 16)
    for row in range(G.num_ws):
        want = G.w_avg + psi * (w - G.w_avg) if row < cutoff else w
        assert float((ws[:, row] - want).abs().max()) < 1e-6, row
    with torch.no_grad():  # no cutoff: every row truncated
        ws_all = G.mapping(z, truncation_psi=psi)
    assert float((ws_all - (G.w_avg + psi * (w - G.w_avg))[:, None]).abs().max()) < 1e-6


def test_layout_conventions():
    with torch.device("meta"):  # config-f 1024 px, built without allocating weights
        G = StyleGAN2Generator()
    assert G.num_ws == 18
    assert G.ws_resolutions == [4, 8, 8, 16, 16, 32, 32, 64, 64, 128, 128, 256, 256, 512, 512, 1024, 1024, 1024]
    names = G.ws_layer_names()
    assert names[0] == "b4.conv1" and names[1] == "b4.torgb+b8.conv0" and names[-1] == "b1024.torgb"
    sd = G.state_dict()
    for key in ("mapping.fc7.weight", "mapping.w_avg", "synthesis.b4.const", "synthesis.b64.conv1.affine.weight",
                "synthesis.b64.conv0.noise_const", "synthesis.b64.conv0.noise_strength",
                "synthesis.b64.conv0.resample_filter", "synthesis.b64.resample_filter"):
        assert key in sd, key
    assert sd["synthesis.b64.conv0.weight"].shape == (512, 512, 3, 3)
    assert sd["synthesis.b1024.conv1.weight"].shape == (32, 32, 3, 3)  # min(32768 // 1024, 512)
    assert len(G.noise_buffers()) == 17
    orig = _tiny(architecture="orig")
    assert orig.num_ws == 6 and orig.ws_resolutions == [4, 8, 8, 16, 16, 16]


def test_noise_modes_and_live_buffers():
    G = _tiny().eval()
    ws = torch.randn(2, G.num_ws, 16)
    with torch.no_grad():
        const = G.synthesis(ws, "const")
        assert torch.equal(const, G.synthesis(ws, "const"))
        r1, r2 = G.synthesis(ws, "random"), G.synthesis(ws, "random")
        assert not torch.equal(r1, r2)
        none = G.synthesis(ws, "none")
        for buf in G.noise_buffers().values():  # the returned buffers are the live ones
            buf.zero_()
        assert torch.equal(G.synthesis(ws, "const"), none)
        assert not torch.equal(const, none)
    with pytest.raises(ValueError, match="noise_mode"):
        G.synthesis(ws, "loud")
    with pytest.raises(ValueError, match="ws must have shape"):
        G.synthesis(ws[:, :3])


def test_conv_clamp_is_applied():
    G = _tiny(architecture="orig", conv_clamp=0.01).eval()
    with torch.no_grad():
        img = G(torch.randn(2, 16))
    assert float(img.abs().max()) <= 0.01 + 1e-7  # 'orig': the image is one clamped toRGB
    free = _tiny(architecture="orig").eval()
    with torch.no_grad():
        assert float(free(torch.randn(2, 16)).abs().max()) > 0.01


def test_config_is_json_and_rebuilds():
    G = _tiny(architecture="resnet", c_dim=2)
    cfg = json.loads(json.dumps(G.config))
    G2 = build_generator("stylegan2", cfg)
    assert G2.config == G.config
    assert {k: v.shape for k, v in G2.state_dict().items()} == {k: v.shape for k, v in G.state_dict().items()}
    with pytest.raises(ValueError, match="unknown StyleGAN2 synthesis_kwargs"):
        normalize_config(synthesis_kwargs={"chanel_base": 3})
    with pytest.raises(ValueError, match="power of two"):
        normalize_config(img_resolution=48)


# ---------------------------------------------------------------------------- ops
def test_upfirdn2d_matches_scipy():
    signal = pytest.importorskip("scipy.signal")
    rng = np.random.RandomState(0)
    x = rng.randn(1, 2, 7, 9).astype(np.float64)
    taps = np.array([1.0, 3.0, 3.0, 1.0])
    for up, down in [(1, 1), (2, 1), (1, 2), (3, 2)]:
        fw = len(taps)
        # scipy.signal.upfirdn is a full convolution of the zero-stuffed signal per axis.
        want = signal.upfirdn(taps, x, up=up, down=down, axis=3)
        want = signal.upfirdn(taps, want, up=up, down=down, axis=2)
        got = upfirdn2d(torch.from_numpy(x), torch.from_numpy(np.outer(taps, taps)), up=up, down=down,
                        padding=[fw - 1, fw - up, fw - 1, fw - up])
        assert got.shape == want.shape, (up, down)
        assert np.abs(got.numpy() - want).max() < 1e-10, (up, down)
        sep = upfirdn2d(torch.from_numpy(x), torch.from_numpy(taps), up=up, down=down,
                        padding=[fw - 1, fw - up, fw - 1, fw - up])
        assert np.abs(sep.numpy() - want).max() < 1e-10


def test_upsample2d_keeps_constants_and_setup_filter():
    f = setup_filter([1, 3, 3, 1])
    assert f.shape == (4, 4) and torch.allclose(f, torch.outer(torch.tensor([1.0, 3, 3, 1]), torch.tensor([1.0, 3, 3, 1])) / 64)
    x = torch.full([1, 1, 6, 6], 2.5)
    y = upsample2d(x, f)
    assert y.shape == (1, 1, 12, 12)
    assert torch.allclose(y[..., 2:-2, 2:-2], torch.full_like(y[..., 2:-2, 2:-2], 2.5))


def test_conv2d_resample_up_equals_upsample_then_conv():
    torch.manual_seed(0)
    x, w, f = torch.randn(2, 4, 5, 6), torch.randn(4, 2, 3, 3), setup_filter([1, 3, 3, 1])
    for flip in (True, False):
        fast = conv2d_resample(x, w, f, up=2, padding=1, groups=2, flip_weight=flip)
        up = upfirdn2d(x, f, up=2, padding=[3, 2, 3, 2], gain=4)  # zero-stuff + low-pass, no conv padding
        slow = torch.nn.functional.conv2d(up, w if flip else w.flip([2, 3]), groups=2)
        assert fast.shape == (2, 4, 10, 12)
        assert float((fast - slow).abs().max()) < 1e-5


def test_bias_act_formula():
    x = torch.randn(2, 3, 4, 4) * 3
    b = torch.randn(3)
    y = bias_act(x, b, act="lrelu", gain=math.sqrt(2) * 0.5, clamp=1.0)
    v = x + b[None, :, None, None]
    want = (torch.where(v >= 0, v, 0.2 * v) * math.sqrt(2) * 0.5).clamp(-1, 1)
    assert torch.allclose(y, want, atol=1e-6)
    assert torch.equal(bias_act(x, b), x + b[None, :, None, None])
    with pytest.raises(ValueError):
        bias_act(x, b, act="gelu-ish")


@pytest.mark.shared
def test_legacy_torch_save_rosinality(shared_dir, tmp_path):
    """Old (pre-zip) torch.save files open with a pickle: sniffed as rosinality-pt, read the same."""
    src = shared_dir / "fixtures" / "stylegan2" / "rosinality_tiny_converted.pt"
    legacy = tmp_path / "legacy.pt"
    torch.save(torch.load(src, weights_only=True), legacy, _use_new_zipfile_serialization=False)
    a, b = read_checkpoint(legacy), read_checkpoint(src)
    assert a.source_format == "rosinality-pt" and a.config == b.config
    assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in b.state_dict)
