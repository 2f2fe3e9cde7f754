"""Every fast path against latentlab's reference path.

Tolerances (float32 on CPU; the two paths differ only in the order of floating-point operations):

| what | tolerance |
|---|---|
| ``upfirdn2d`` / ``upsample2d`` / ``conv2d_resample`` ``impl='fast'`` vs ``'ref'`` | 1e-5 abs (inputs ~N(0, 1)) |
| StyleGAN2 / MobileStyleGAN ``synthesis`` images, fast vs ref | 1e-5 abs |
| gradients of the projection loss w.r.t. ws and noise maps | 1e-4 relative (to the max abs) |
| projection loss value | 1e-3 relative (observed ~1e-6) |
| MobileStyleGAN ``synthesis_lowres`` vs area-downsampled full image (an exact identity) | 1e-5 abs |

The references are the plain definitions (zero insertion + padding + depthwise FIR, NVIDIA's op
order); their own correctness against NVIDIA/OpenVINO outputs is tested in test_stylegan2.py and
test_mobilestylegan.py.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from latentlab.errors import LatentlabError
from latentlab.inversion import ProjectorConfig
from latentlab.inversion.project import project, resize_to, synthesize_for_loss
from latentlab.models.mobilestylegan import MobileStyleGANGenerator
from latentlab.models.stylegan2 import StyleGAN2Generator
from latentlab.ops import conv2d_resample, setup_filter, tune_cpu_allocator, upfirdn2d, upsample2d


def _naive_upfirdn2d(x, f, up, pad, gain):
    """Textbook definition with explicit loops over taps (independent of both implementations)."""
    n, c, h, w = x.shape
    u = torch.zeros(n, c, h * up, w * up, dtype=torch.float64)
    u[:, :, ::up, ::up] = x.double()
    x0, x1, y0, y1 = pad
    u = F.pad(u, [max(x0, 0), max(x1, 0), max(y0, 0), max(y1, 0)])
    u = u[:, :, max(-y0, 0): u.shape[2] - max(-y1, 0), max(-x0, 0): u.shape[3] - max(-x1, 0)]
    f2 = (torch.outer(f, f) if f.ndim == 1 else f).double() * gain
    fh, fw = f2.shape
    oh, ow = u.shape[2] - fh + 1, u.shape[3] - fw + 1
    out = torch.zeros(n, c, oh, ow, dtype=torch.float64)
    for i in range(fh):  # true convolution: out[p] = sum_k f[k] u[p + fh - 1 - k]
        for j in range(fw):
            out += f2[fh - 1 - i, fw - 1 - j] * u[:, :, i:i + oh, j:j + ow]
    return out


@pytest.mark.parametrize("up", [1, 2, 3])
@pytest.mark.parametrize("pad", [[0, 0, 0, 0], [2, 1, 2, 1], [1, 1, 1, 1], [3, 2, 1, 0], [-1, 0, 1, 1]])
def test_upfirdn2d_fast_equals_ref_and_definition(up, pad):
    g = torch.Generator().manual_seed(up)
    x = torch.randn(2, 3, 7, 9, generator=g)
    for f in (setup_filter([1, 3, 3, 1]), torch.rand(4, 3, generator=g)):
        ref = upfirdn2d(x, f, up=up, padding=pad, gain=2.0)
        fast = upfirdn2d(x, f, up=up, padding=pad, gain=2.0, impl="fast")
        assert fast.shape == ref.shape
        assert (fast - ref).abs().max() < 1e-5
        assert torch.allclose(ref.double(), _naive_upfirdn2d(x, f, up, pad, 2.0), atol=1e-5)
    f = torch.rand(3, 4, generator=g)
    flip_ref = upfirdn2d(x, f, up=up, padding=pad, flip_filter=True)
    flip_fast = upfirdn2d(x, f, up=up, padding=pad, flip_filter=True, impl="fast")
    assert (flip_fast - flip_ref).abs().max() < 1e-5
    assert torch.allclose(flip_ref.double(), _naive_upfirdn2d(x, f.flip([0, 1]), up, pad, 1.0), atol=1e-5)
    with pytest.raises(ValueError):
        upfirdn2d(x, f, impl="fastest")


def test_resampling_ops_fast_equals_ref():
    g = torch.Generator().manual_seed(0)
    f = setup_filter([1, 3, 3, 1])
    x = torch.randn(2, 8, 6, 6, generator=g)
    assert (upsample2d(x, f, impl="fast") - upsample2d(x, f)).abs().max() < 1e-5
    w = torch.randn(5, 8, 3, 3, generator=g)
    for up, flip in ((1, True), (2, False)):
        ref = conv2d_resample(x, w, f, up=up, padding=1, flip_weight=flip)
        fast = conv2d_resample(x, w, f, up=up, padding=1, flip_weight=flip, impl="fast")
        assert (fast - ref).abs().max() < 1e-5 * ref.abs().max()


def _sg2(architecture: str = "skip") -> StyleGAN2Generator:
    torch.manual_seed(0)
    G = StyleGAN2Generator(z_dim=32, w_dim=32, img_resolution=32, img_channels=3, mapping_kwargs={"num_layers": 2},
                           synthesis_kwargs={"channel_base": 512, "channel_max": 32, "architecture": architecture})
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.2)
            if name.endswith(".bias") and "synthesis" in name:
                p.normal_(0, 0.1)
    return G.eval().requires_grad_(False)


def _msg() -> MobileStyleGANGenerator:
    torch.manual_seed(0)
    G = MobileStyleGANGenerator(z_dim=32, w_dim=32, num_mapping_layers=2, channels=(32, 32, 16, 16))
    with torch.no_grad():
        for name, p in G.named_parameters():
            p.normal_(0, 0.3 if "weight" in name else 0.1)
        for b in G.noise_buffers().values():
            b.normal_()
    return G.eval().requires_grad_(False)


def _loss_and_grads(G, impl, ws, noise, target, shortcut="none"):
    from latentlab.models.base import override_noise

    G.impl = impl
    ws = ws.clone().requires_grad_(True)
    noise = {k: v.clone().requires_grad_(True) for k, v in noise.items()}
    with override_noise(G, noise):
        _, small = synthesize_for_loss(G, ws, target.shape[-1], shortcut)
    loss = (small - target).square().mean() + (small * target).mean()
    loss.backward()
    return float(loss.detach()), ws.grad, {k: v.grad for k, v in noise.items()}


@pytest.mark.parametrize("make", [lambda: _sg2("skip"), lambda: _sg2("resnet"), lambda: _sg2("orig"), _msg])
def test_generator_fast_equals_ref_images_and_gradients(make):
    G = make()
    g = torch.Generator().manual_seed(1)
    ws = G.mapping(torch.randn(2, G.z_dim, generator=g))
    ws = ws + 0.3 * torch.randn(ws.shape, generator=g)  # distinct rows (W+)
    for fused in ([None, True, False] if isinstance(G, StyleGAN2Generator) else [None]):
        kw = {"fused_modconv": fused} if fused is not None else {}
        with torch.no_grad():
            ref = G.synthesis(ws, impl="ref", **kw)
            fast = G.synthesis(ws, impl="fast", **kw)
        assert fast.shape == ref.shape and fast.is_contiguous()
        assert (fast - ref).abs().max() < 1e-5, fused
        with torch.no_grad():  # a batch of 1 takes the per-sample-weight branch
            assert (G.synthesis(ws[:1], impl="fast") - G.synthesis(ws[:1], impl="ref")).abs().max() < 1e-5
    with pytest.raises(ValueError):
        G.synthesis(ws, impl="nope")

    noise = {k: torch.randn((2, 1, *b.shape), generator=g) for k, b in G.noise_buffers().items()}
    target = torch.rand(2, 3, G.img_resolution // 2, G.img_resolution // 2, generator=g) * 2 - 1
    l_ref, gw_ref, gn_ref = _loss_and_grads(G, "ref", ws, noise, target)
    l_fast, gw_fast, gn_fast = _loss_and_grads(G, "fast", ws, noise, target, "exact")
    assert l_fast == pytest.approx(l_ref, rel=1e-3)
    assert (gw_fast - gw_ref).abs().max() <= 1e-4 * gw_ref.abs().max()
    # float32 sums in another order (AVX2 and AVX-512 kernels differ) reach ~4e-4 of the largest
    # noise gradient on the small maps; a wrong fast path is off by the gradients' own size
    scale = max(float(v.abs().max()) for v in gn_ref.values())
    for k in gn_ref:
        assert (gn_fast[k] - gn_ref[k]).abs().max() <= 1e-3 * scale + 1e-12, k
    G.impl = "fast"


def test_mobilestylegan_one_sample_folds_styles_with_the_same_weight_gradients():
    # One sample (a projection or pivotal tuning of one photo): the fast path folds each style into
    # its conv weight instead of scaling the activations. Tuning needs the parameter gradients.
    G = _msg()
    g = torch.Generator().manual_seed(2)
    ws = G.mapping(torch.randn(1, G.z_dim, generator=g)) + 0.3 * torch.randn(1, G.num_ws, G.w_dim, generator=g)
    target = torch.rand(1, 3, G.img_resolution, G.img_resolution, generator=g) * 2 - 1
    grads = {}
    for impl in ("ref", "fast"):
        G.requires_grad_(True).zero_grad(set_to_none=True)
        img = G.synthesis(ws, impl=impl)
        low = G.synthesis_lowres(ws, G.img_resolution // 4, impl=impl)
        ((img - target).square().mean() + (low * F.avg_pool2d(target, 4)).mean()).backward()
        grads[impl] = {n: p.grad.clone() for n, p in G.synthesis_network.named_parameters() if p.grad is not None}
        G.requires_grad_(False)
    assert grads["fast"].keys() == grads["ref"].keys() and len(grads["ref"]) == len(list(G.synthesis_network.parameters()))
    for n, ref in grads["ref"].items():
        assert (grads["fast"][n] - ref).abs().max() <= 1e-4 * ref.abs().max() + 1e-10, n
    G.impl = "fast"


@pytest.mark.parametrize("make", [lambda: _sg2("skip"), _msg])
def test_bf16_autocast_keeps_activations_in_bf16(make):
    # Projection's opt-in bf16 mode: every modulated conv layer must hand the next one bfloat16
    # (a float32 addend such as a noise map would silently promote the rest of the network to
    # float32 and lose the speed), and the image must stay close to float32's.
    from latentlab.models.base import override_noise
    from latentlab.models.mobilestylegan import ModulatedConv
    from latentlab.models.stylegan2 import SynthesisLayer

    G = make()
    g = torch.Generator().manual_seed(3)
    ws = G.mapping(torch.randn(1, G.z_dim, generator=g))
    noise = {k: torch.randn((1, 1, *b.shape), generator=g) for k, b in G.noise_buffers().items()}
    dtypes = []
    hooks = [m.register_forward_hook(lambda _m, _i, out: dtypes.append(out.dtype))
             for m in G.modules() if isinstance(m, (SynthesisLayer, ModulatedConv))]
    try:
        with torch.no_grad(), override_noise(G, noise):
            ref = G.synthesis(ws, impl="fast")
            dtypes.clear()
            with torch.autocast("cpu", dtype=torch.bfloat16):
                low = G.synthesis(ws, impl="fast")
    finally:
        for h in hooks:
            h.remove()
    assert len(dtypes) >= 4 and set(dtypes) == {torch.bfloat16}, dtypes
    assert (low.float() - ref).abs().max() < 0.1 * ref.abs().max()


def test_mobilestylegan_lowres_is_the_area_downsampled_image():
    G = _msg()
    ws = G.mapping(torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(2)))
    with torch.no_grad():
        full = G.synthesis(ws, impl="ref")
        for r in (G.img_resolution // 2, G.img_resolution // 4):
            assert (G.synthesis_lowres(ws, r) - resize_to(full, r)).abs().max() < 1e-5
        assert G.synthesis_lowres(ws, G.img_resolution) is None  # nothing to save
        assert G.synthesis_lowres(ws, 24) is None  # does not divide


def test_stylegan2_early_exit_is_opt_in():
    G = _sg2()
    ws = G.mapping(torch.randn(1, G.z_dim))
    assert G.synthesis_lowres(ws, 16) is None  # no exact shortcut for StyleGAN2
    with torch.no_grad():
        img16 = G.synthesis_lowres(ws, 16, approximate=True)
        assert img16.shape == (1, 3, 16, 16)
        # It is the skip image of block 16: the final image minus everything the 32 block adds
        # is its upsampled version, so their area averages agree only roughly (an approximation).
        full = G.synthesis(ws)
        assert (img16 - resize_to(full, 16)).abs().mean() < full.abs().mean()


def test_projection_loss_same_for_shortcut_and_reference():
    G = _msg()
    target = torch.rand(1, 3, G.img_resolution, G.img_resolution, generator=torch.Generator().manual_seed(3)) * 2 - 1
    cfg = ProjectorConfig(num_steps=5, w_avg_samples=200, lpips_weight=0.0, rec_weight=1.0,
                          loss_resolution=G.img_resolution // 4)
    G.impl = "ref"
    ref = project(G, target, cfg.replace(synthesis_shortcut="none"), progress=False)
    G.impl = "fast"
    fast = project(G, target, cfg, progress=False)
    for a, b in zip(ref.history, fast.history):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-3)
        assert b["mse"] == pytest.approx(a["mse"], rel=1e-3)


def test_config_rejects_bad_fast_options():
    with pytest.raises(LatentlabError):
        ProjectorConfig(synthesis_shortcut="sometimes")
    with pytest.raises(LatentlabError):
        ProjectorConfig(time_budget=-1)


def test_time_budget_stops_the_loop():
    G = _msg()
    target = torch.zeros(1, 3, G.img_resolution, G.img_resolution)
    cfg = ProjectorConfig(num_steps=10_000, w_avg_samples=100, lpips_weight=0.0, rec_weight=1.0,
                          loss_resolution=16, time_budget=1.0)
    res = project(G, target, cfg, progress=False)
    assert 1 <= res.steps_run < 10_000
    assert res.seconds < 10
    # On the step fraction alone (t <= steps / 10 000) the lr would still be ramping up (< 0.2 x);
    # on the budget fraction the ramp-up (5 % of it) is over within 0.05 s.
    assert max(h["lr"] for h in res.history) > 0.5 * res.config.initial_learning_rate


def test_tune_cpu_allocator_is_idempotent():
    first = tune_cpu_allocator()
    assert tune_cpu_allocator() is first
