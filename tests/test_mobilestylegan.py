"""MobileStyleGAN FFHQ-1024 (``ffhq-mobile``): the OpenVINO IR reader and the native module,
checked against OpenVINO's own float32 outputs in ../shared/fixtures/mobilestylegan/reference.npz."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from latentlab import assets
from latentlab.checkpoints import read_checkpoint, sniff_format
from latentlab.checkpoints.native import save_native
from latentlab.checkpoints.openvino_ir import (
    CONVERTER_VERSION,
    FFHQ_MOBILE_DIST,
    IRGraph,
    convert_ffhq_mobile,
    read_mobilestylegan_ir,
)
from latentlab.errors import CheckpointError, DownloadError
from latentlab.models import build_generator
from latentlab.models.mobilestylegan import MobileStyleGANGenerator, haar_idwt, haar_idwt_channels_last

NUM_WS = 23


@pytest.fixture(scope="module")
def ir_dir() -> Path:
    """Folder holding the four IR files from the random-face wheel (downloaded once, cached)."""
    try:
        paths = [assets.pypi_file(*FFHQ_MOBILE_DIST, f"random_face/data/{n}", quiet=True)
                 for n in ("MappingNetwork.xml", "MappingNetwork.bin", "SynthesisNetwork.xml", "SynthesisNetwork.bin")]
    except DownloadError as exc:
        pytest.skip(f"random-face wheel unavailable: {exc}")
    folder = paths[0].parent
    if any(p.parent != folder for p in paths):
        pytest.skip("IR files are not in one folder")
    return folder


@pytest.fixture(scope="module")
def ir_data(ir_dir):
    """The IR read directly by the reader (through the format dispatcher on the folder)."""
    return read_checkpoint(ir_dir)


@pytest.fixture(scope="module")
def G(ir_dir) -> MobileStyleGANGenerator:
    """The converted model from the user cache (converted once when missing or stale)."""
    path = assets.cache_dir() / "models" / "ffhq-mobile.safetensors"
    data = read_checkpoint(path) if path.is_file() else None
    if data is None or data.extra.get("converter_version") != CONVERTER_VERSION:
        convert_ffhq_mobile(path, progress=False)
        data = read_checkpoint(path)
    gen = build_generator(data.family, data.config)
    gen.load_state_dict(data.state_dict, strict=True)
    return gen.eval().requires_grad_(False)


@pytest.fixture(scope="module")
def ref(shared_dir):
    with np.load(shared_dir / "fixtures" / "mobilestylegan" / "reference.npz") as f:
        return {k: f[k] for k in f.files}


@pytest.fixture(scope="module")
def imgs_plain_w(G, ref) -> torch.Tensor:
    """G(z) for both fixture seeds: mapping, plain W broadcast to all rows, synthesis."""
    return G(torch.from_numpy(ref["z"]))


# ---------------------------------------------------------------------- layout
def test_layout(G, ref):
    assert G.num_ws == NUM_WS and G.z_dim == 512 and G.w_dim == 512 and G.c_dim == 0
    assert G.img_resolution == 1024 and G.img_channels == 3
    assert G.ws_resolutions == [4] + [r for r in (8, 16, 32, 64, 128, 256, 512) for _ in range(3)] + [512]
    names = G.ws_layer_names()
    assert len(names) == NUM_WS and names[0] == "b4.conv1" and names[1] == "b8.up" and names[-1] == "b512.torgb"
    noise = G.noise_buffers()
    assert len(noise) == 15
    assert sorted({b.shape[0] for b in noise.values()}) == [4, 8, 16, 32, 64, 128, 256, 512]


def test_style_layer_order_matches_fixture(ir_data, ref):
    assert ir_data.extra["style_layer_names"] == [str(s) for s in ref["style_layer_names"]]


# ---------------------------------------------------------------------- numerics vs OpenVINO
def test_mapping_matches_openvino(G, ref):
    w = G.mapping(torch.from_numpy(ref["z"]))
    assert w.shape == (2, NUM_WS, 512)
    np.testing.assert_allclose(w[:, 0].numpy(), ref["w"], rtol=0, atol=2e-5)
    assert torch.equal(w[:, 0:1].expand(-1, NUM_WS, -1), w)


def test_synthesis_matches_openvino(imgs_plain_w, ref):
    expected = ref["img"].astype(np.float32)
    assert imgs_plain_w.shape == expected.shape
    err = np.abs(imgs_plain_w.numpy() - expected).max()
    assert err < 1e-3, f"max abs error {err}"


def test_wplus_mixing_matches_reference(G, ref):
    img = G.synthesis(torch.from_numpy(ref["wplus_mix"]))
    err = np.abs(img.numpy() - ref["img_wplus_mix"].astype(np.float32)).max()
    assert err < 1e-3, f"max abs error {err}"


def test_identical_rows_equal_plain_w():
    # A hand-built W+ whose rows are all w must give exactly the same bits as plain W through
    # G(z) (checked on a small randomly initialised model to keep the test fast; the real model's
    # G(z) is checked against OpenVINO in test_synthesis_matches_openvino).
    torch.manual_seed(0)
    small = MobileStyleGANGenerator(z_dim=32, w_dim=32, num_mapping_layers=2, channels=[16, 16, 8]).eval()
    with torch.no_grad():
        for p in small.parameters():
            p.normal_()
    z = torch.randn(3, 32)
    w = small._map(z, None)
    rows = torch.stack([w] * small.num_ws, dim=1)
    assert small.num_ws == 8 and small.img_resolution == 32
    assert torch.equal(small.synthesis(rows), small(z))
    # ... and each row really feeds its own layer: changing any single row changes the image.
    base = small.synthesis(rows)
    for i in range(small.num_ws):
        other = rows.clone()
        other[:, i] = torch.randn(3, 32)
        assert not torch.allclose(small.synthesis(other), base), i


def test_w_avg_is_mean_of_mapping(G, ir_data):
    # Independent draw (numpy, another seed): the two means agree to sampling error.
    z = torch.from_numpy(np.random.RandomState(123).randn(4000, 512).astype(np.float32))
    mean = G._map(z, None).mean(0)
    assert torch.equal(G.w_avg, ir_data.state_dict["mapping.w_avg"])
    assert (mean - G.w_avg).abs().max() < 0.1
    assert G.w_avg.abs().max() > 0.1  # not left at its zero init


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_openvino(G, ref, monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    gpu = MobileStyleGANGenerator(**G.config).to("cuda").eval()
    gpu.load_state_dict(G.state_dict(), strict=True)
    with torch.no_grad():
        w = gpu.mapping(torch.from_numpy(ref["z"]).cuda())
        img = gpu.synthesis(torch.from_numpy(ref["wplus_mix"]).cuda())
    np.testing.assert_allclose(w[:, 0].cpu().numpy(), ref["w"], rtol=0, atol=2e-5)
    assert np.abs(img.cpu().numpy() - ref["img_wplus_mix"].astype(np.float32)).max() < 1e-3


# ---------------------------------------------------------------------- pieces
def test_haar_idwt_inverts_forward_haar():
    # Forward orthonormal Haar by its definition, then our inverse must restore the image.
    x = torch.randn(2, 3, 8, 6, dtype=torch.float64)
    a, b, c, d = x[:, :, 0::2, 0::2], x[:, :, 0::2, 1::2], x[:, :, 1::2, 0::2], x[:, :, 1::2, 1::2]
    ll, b0 = (a + b + c + d) / 2, (a + b - c - d) / 2  # b0: high-pass along H
    b1, b2 = (a - b + c - d) / 2, (a - b - c + d) / 2  # b1: along W, b2: both
    high = torch.stack([b0, b1, b2], dim=2).flatten(1, 2)
    torch.testing.assert_close(haar_idwt(torch.cat([ll, high], 1)), x, rtol=0, atol=1e-12)


def test_haar_idwt_channels_last_is_the_same_transform():
    # The fast path's NHWC version: the same additions in the same order, so bit-identical values,
    # returned channels-last for the convolutions after it; NCHW input works too.
    x = torch.randn(3, 4 * 5, 6, 4)
    ref = haar_idwt(x)
    for inp in (x, x.contiguous(memory_format=torch.channels_last)):
        out = haar_idwt_channels_last(inp)
        assert out.shape == ref.shape == (3, 5, 12, 8)
        assert out.is_contiguous(memory_format=torch.channels_last)
        assert torch.equal(out, ref)


def test_native_round_trip(ir_data, G, tmp_path):
    path = save_native(ir_data.family, ir_data.config, ir_data.state_dict, tmp_path / "m.safetensors",
                       extra=ir_data.extra)
    assert sniff_format(path) == "native"
    back = read_checkpoint(path)
    assert back.family == "mobilestylegan" and back.config == ir_data.config
    assert back.state_dict.keys() == ir_data.state_dict.keys()
    for k, v in ir_data.state_dict.items():
        assert torch.equal(back.state_dict[k], v), k
        assert torch.equal(G.state_dict()[k], v), k  # the cached conversion is the same data


# ---------------------------------------------------------------------- bad input
def test_swapped_networks_fail_clearly(ir_dir):
    with pytest.raises(CheckpointError):
        read_mobilestylegan_ir(ir_dir / "SynthesisNetwork.xml", ir_dir / "MappingNetwork.xml")


def test_truncated_bin_fails_clearly(ir_dir, tmp_path):
    shutil.copy(ir_dir / "MappingNetwork.xml", tmp_path / "MappingNetwork.xml")
    data = (ir_dir / "MappingNetwork.bin").read_bytes()
    (tmp_path / "MappingNetwork.bin").write_bytes(data[: len(data) // 2])
    g = IRGraph(tmp_path / "MappingNetwork.xml")
    with pytest.raises(CheckpointError, match="does not fit"):
        for layer in g.by_type("Const"):
            g.const(layer)
    with pytest.raises(CheckpointError, match="does not fit"):
        read_mobilestylegan_ir(tmp_path / "MappingNetwork.xml", ir_dir / "SynthesisNetwork.xml")


def test_not_an_ir_fails_clearly(tmp_path):
    (tmp_path / "x.xml").write_text("<html></html>")
    (tmp_path / "x.bin").write_bytes(b"")
    with pytest.raises(CheckpointError, match="not an OpenVINO IR"):
        IRGraph(tmp_path / "x.xml")
    with pytest.raises(CheckpointError, match="no such file"):
        IRGraph(tmp_path / "missing.xml")


def test_bad_ws_and_noise_mode(G):
    with pytest.raises(ValueError):
        G.synthesis(torch.zeros(1, 18, 512))
    with pytest.raises(ValueError):
        G.synthesis(torch.zeros(1, NUM_WS, 512), noise_mode="loud")


@pytest.mark.parametrize("attribute", ["smile", "age", "yaw"])
def test_shipped_direction_sigma_is_the_generators_spread(G, attribute):
    """Direction.sigma (the fit's projection_std over psi-0.7 samples, divided by psi) matches the
    spread of 4000 fresh untruncated W samples along the shipped direction."""
    from latentlab.editing.attributes import find_attribute
    from latentlab.editing.directions import load_direction

    d = load_direction(find_attribute(attribute, "ffhq-mobile"))
    z = torch.randn(4000, 512, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        w = G.mapping(z)[:, 0].double().numpy()
    spread = float(np.std(w @ d.vector.astype(np.float64)))
    assert d.sigma() == pytest.approx(spread, rel=0.05)
    assert d.sigma() > 1.3 * d.meta["projection_std"]  # not the truncated samples' spread
    assert d.demo_strength() == pytest.approx(2 * d.sigma(), abs=0.05)
