"""Editing library: layer ranges and their mapping, W+ arithmetic, SeFa / GANSpace, attribute
lookup, latent inputs, masked swap. References are hand-built tables, hand-computed values and
numpy's own eigen-decompositions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_tiny

from latentlab.editing.attributes import available_attributes, find_attribute, model_key
from latentlab.editing.directions import Direction
from latentlab.editing.layers import (REFERENCE_RESOLUTIONS, describe_rows, format_layer_table, format_rows,
                                      layer_table, parse_layers)
from latentlab.editing.mixing import apply_offset, expression_transfer, lerp_ws, row_mask, style_mix
from latentlab.editing.unsupervised import ganspace, pca, sefa, sefa_from_weights, style_affines
from latentlab.errors import LatentlabError
from latentlab.latent import Latent, save_latent
from latentlab.models.mobilestylegan import MobileStyleGANGenerator

# MobileStyleGAN-1024's 23 rows, written out by hand from its architecture: b4.conv1 (4 px), then
# up/conv0/conv1 of blocks 8..512, then b512.torgb (512 px; its wavelets become the 1024 px image).
MOBILE_RES = [4] + [8] * 3 + [16] * 3 + [32] * 3 + [64] * 3 + [128] * 3 + [256] * 3 + [512] * 3 + [512]
# StyleGAN2-256: 14 rows.
SG256_RES = [4, 8, 8, 16, 16, 32, 32, 64, 64, 128, 128, 256, 256, 256]


def _tiny_sg2():
    return make_tiny(3)


@pytest.fixture(scope="module")
def tiny_mobile() -> MobileStyleGANGenerator:
    torch.manual_seed(0)
    G = MobileStyleGANGenerator(z_dim=8, w_dim=8, num_mapping_layers=2, channels=(8,) * 8)
    with torch.no_grad():
        for p in G.parameters():
            p.normal_()
    return G.eval().requires_grad_(False)


# ------------------------------------------------------------------------------------ layers
def test_mobile_layout_matches_hand_table(tiny_mobile):
    assert tiny_mobile.ws_resolutions == MOBILE_RES
    assert tiny_mobile.num_ws == 23


@pytest.mark.parametrize("spec,expected", [
    ("9-18", list(range(13, 23))),      # default style rows 128-1024 px -> 128, 256, 512 (1024 clamped to 512)
    ("0-5", list(range(0, 7))),         # default smile rows (4, 8, 16 px)
    ("0-9", list(range(0, 13))),        # default age rows (4 .. 64 px)
    ("0-6", list(range(0, 10))),        # default pose rows (4 .. 32 px)
    ("3", [4, 5, 6]),                   # reference row 3 = 16 px
    ("0-5,9", list(range(0, 7)) + [13, 14, 15]),
    ("15-18", [19, 20, 21, 22]),        # 1024 px -> the finest (512 px) rows
    ("coarse", [0, 1, 2, 3]),
    ("middle", list(range(4, 10))),
    ("fine", list(range(10, 23))),
    ("all", list(range(23))),
    ("64-1024", list(range(10, 23))),
    ("16px", [4, 5, 6]),
    ("4-8px", [0, 1, 2, 3]),
    ("4-8", list(range(4, 13))),        # bare numbers <= 18: reference rows 4..7 (16, 32, 64 px)
    ("rows:19-23", [19, 20, 21, 22]),
    ("rows:2", [2]),
    ("coarse, 512px", [0, 1, 2, 3, 19, 20, 21, 22]),
])
def test_default_ranges_on_mobile_layout(spec, expected):
    assert parse_layers(spec, MOBILE_RES) == expected


def test_real_mobile_generator_is_parsed_through_its_resolutions(tiny_mobile):
    assert parse_layers("9-18", tiny_mobile) == list(range(13, 23))


def test_rows_exact_reads_bare_numbers_as_model_rows():
    assert parse_layers("19-23", MOBILE_RES, rows_exact=True) == [19, 20, 21, 22]
    assert parse_layers("0-2,22", MOBILE_RES, rows_exact=True) == [0, 1, 22]
    assert parse_layers("fine", MOBILE_RES, rows_exact=True) == list(range(10, 23))


def test_stylegan2_1024_rows_are_used_as_written():
    G = make_tiny(0, z_dim=8, w_dim=8, img_resolution=1024, mapping_kwargs={"num_layers": 1},
                  synthesis_kwargs={"channel_base": 2048, "channel_max": 2})
    assert G.ws_resolutions == list(REFERENCE_RESOLUTIONS)
    assert parse_layers("9-18", G) == list(range(9, 18))
    assert parse_layers("0-6", G) == list(range(0, 6))
    assert parse_layers("5", G) == [5]
    assert parse_layers("fine", G) == list(range(7, 18))


def test_lower_resolution_model_clamps_to_its_finest_rows():
    assert parse_layers("15-18", SG256_RES) == [11, 12, 13]
    assert parse_layers("9-18", SG256_RES) == list(range(9, 14))
    assert parse_layers("fine", SG256_RES) == list(range(7, 14))
    assert parse_layers("1024px", SG256_RES) == [11, 12, 13]
    assert parse_layers("0-5", SG256_RES) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("spec,message", [
    ("9-20", "outside the 18-row"),
    ("18", "row 18 is outside"),
    ("5-5", "is empty"),
    ("7-3", "is empty"),
    ("rows:23", "outside this model's 23"),
    ("rows:20-24", "outside this model's 23"),
    ("48px", "not a power-of-two"),
    ("1024-64", "wrong order"),
    ("smiles", "not a row range"),
    ("0-5,", "empty item"),
    ("", "empty layer range"),
])
def test_bad_layer_specs_raise_one_line_errors(spec, message):
    with pytest.raises(LatentlabError, match=message) as exc:
        parse_layers(spec, MOBILE_RES)
    assert "\n" not in str(exc.value)


def test_format_rows_round_trips():
    rows = [0, 1, 2, 5, 9, 10]
    assert format_rows(rows) == "rows:0-3,5,9-11"
    assert parse_layers(format_rows(rows), MOBILE_RES) == rows
    assert describe_rows([4, 5, 6], MOBILE_RES) == "rows:4-7 (16 px)"


def test_layer_table_lists_every_reference_row_and_named_range():
    table = layer_table(MOBILE_RES)
    by_spec = {(e["kind"], e["spec"]): e["rows"] for e in table}
    assert by_spec[("reference row", "0")] == [0]
    assert by_spec[("reference row", "17")] == [19, 20, 21, 22]
    assert by_spec[("default style", "9-18")] == list(range(13, 23))
    text = format_layer_table(MOBILE_RES)
    assert "rows:13-23 (128-512 px)" in text and "a..b-1" in text


# ------------------------------------------------------------------------------------ arithmetic
def _ws(values):
    return torch.tensor(values, dtype=torch.float32)


def test_style_mix_copies_only_the_chosen_rows():
    content = _ws([[[1, 1], [2, 2], [3, 3], [4, 4]]])
    style = _ws([[[-1, -1], [-2, -2], [-3, -3], [-4, -4]]])
    out = style_mix(content, style, [1, 3])
    assert out.tolist() == [[[1, 1], [-2, -2], [3, 3], [-4, -4]]]
    assert content.tolist()[0][1] == [2, 2]  # input unchanged


def test_expression_transfer_formula():
    target = _ws([[[0, 0], [1, 1], [2, 2]]])
    neutral = _ws([[[1, 0], [1, 0], [1, 0]]])
    smiling = _ws([[[1, 2], [3, 0], [1, 0]]])
    out = expression_transfer(target, neutral, smiling, 0.5, [0, 1])
    # rows 0, 1: target + 0.5 * (to - from) = [0,0]+0.5*[0,2], [1,1]+0.5*[2,0]; row 2 unchanged
    assert out.tolist() == [[[0, 1], [2, 1], [2, 2]]]


def test_apply_offset_vector_and_per_row_directions():
    ws = torch.zeros(1, 3, 2)
    assert apply_offset(ws, _ws([1, -1]), 2.0, [2]).tolist() == [[[0, 0], [0, 0], [2, -2]]]
    per_row = _ws([[1, 0], [0, 1], [1, 1]])
    assert apply_offset(ws, per_row, -1.0, [0, 1]).tolist() == [[[-1, 0], [0, -1], [0, 0]]]
    with pytest.raises(LatentlabError, match="does not fit"):
        apply_offset(ws, _ws([1, 2, 3]), 1.0)


def test_lerp_and_mask_and_shape_errors():
    a, b = torch.zeros(1, 2, 2), torch.ones(1, 2, 2) * 4
    assert lerp_ws(a, b, 0.25).tolist() == [[[1, 1], [1, 1]]]
    assert row_mask([1], 3).flatten().tolist() == [0, 1, 0]
    with pytest.raises(LatentlabError, match="different W\\+ layouts"):
        style_mix(torch.zeros(1, 3, 2), torch.zeros(1, 4, 2), [0])
    with pytest.raises(LatentlabError, match="outside"):
        style_mix(a, b, [5])


# ------------------------------------------------------------------------------------ SeFa / GANSpace
def test_sefa_on_a_hand_built_matrix():
    # rows normalise to e0, e1, e1 -> A^T A = diag(1, 2, 0): eigenvalues 2, 1, 0 with e1, e0, e2.
    values, dirs = sefa_from_weights([np.array([[3.0, 0, 0]]), np.array([[0, 1.0, 0], [0, -2.0, 0]])])
    np.testing.assert_allclose(values, [2, 1, 0], atol=1e-12)
    np.testing.assert_allclose(np.abs(dirs), np.eye(3)[[1, 0, 2]], atol=1e-12)


def test_sefa_matches_numpy_eig_of_a_random_matrix():
    rng = np.random.RandomState(0)
    mats = [rng.randn(5, 6), rng.randn(3, 6) * 10]
    values, dirs = sefa_from_weights(mats)
    A = np.concatenate(mats)
    A = A / np.linalg.norm(A, axis=1, keepdims=True)
    ref_vals, ref_vecs = np.linalg.eig(A.T @ A)
    order = np.argsort(ref_vals.real)[::-1]
    np.testing.assert_allclose(values, ref_vals.real[order], atol=1e-10)
    for k in range(6):
        assert abs(dirs[k] @ ref_vecs[:, order[k]].real) == pytest.approx(1.0, abs=1e-8)
        assert np.abs(dirs[k]).argmax() == np.argmax(np.abs(dirs[k])) and dirs[k][np.abs(dirs[k]).argmax()] > 0


def test_style_affines_follow_the_row_layout():
    G = _tiny_sg2()
    found = style_affines(G)
    # every styled layer of NVIDIA's layout, at its row
    expected = sorted((row, f"{name}.affine") for name, row, _ in G.layer_rows())
    assert sorted((r, n) for r, n, _ in found) == expected
    rows = parse_layers("rows:2-5", G)
    comps = sefa(G, "rows:2-5")
    modules = dict(G.named_modules())
    mats = [modules[n].weight.numpy().astype(np.float64) for r, n, _ in found if r in rows]
    A = np.concatenate([m / np.linalg.norm(m, axis=1, keepdims=True) for m in mats])
    ref_vals = np.linalg.eigvalsh(A.T @ A)
    np.testing.assert_allclose([c.value for c in comps], ref_vals[::-1], rtol=1e-5, atol=1e-6)
    assert all(c.rows == rows for c in comps)


def test_style_affines_on_mobilestylegan(tiny_mobile):
    found = style_affines(tiny_mobile)
    assert [r for r, _, _ in found] == list(range(23))
    assert found[0][1] == "synthesis.b4.conv1.affine" and found[-1][1] == "synthesis.b512.torgb.affine"
    assert len(sefa(tiny_mobile, "coarse", num_components=3)) == 3


def test_pca_matches_covariance_eigendecomposition():
    rng = np.random.RandomState(1)
    x = rng.randn(500, 4) @ np.diag([3.0, 2.0, 1.0, 0.5]) @ np.linalg.qr(rng.randn(4, 4))[0]
    mean, var, comps = pca(x)
    ref_vals, ref_vecs = np.linalg.eigh(np.cov(x, rowvar=False))
    np.testing.assert_allclose(var, ref_vals[::-1], rtol=1e-10)
    for k in range(4):
        assert abs(comps[k] @ ref_vecs[:, 3 - k]) == pytest.approx(1.0, abs=1e-8)
    np.testing.assert_allclose(mean, x.mean(0))


def test_ganspace_components_are_unit_and_ordered():
    G = _tiny_sg2()
    comps = ganspace(G, "coarse", num_samples=400, num_components=5)
    assert len(comps) == 5 and comps[0].rows == parse_layers("coarse", G)
    assert all(abs(np.linalg.norm(c.direction) - 1) < 1e-5 for c in comps)
    assert [c.value for c in comps] == sorted([c.value for c in comps], reverse=True)


# ------------------------------------------------------------------------------------ attributes
def test_attribute_lookup_from_env_folder(tmp_path, monkeypatch, tmp_cache):
    folder = tmp_path / "dirs"
    Direction("smile", np.ones(16, np.float32) / 4, layers="0-5", model="tiny").save(folder / "tiny" / "smile.npz")
    monkeypatch.setenv("LATENTLAB_DIRECTIONS", str(folder))
    assert find_attribute("smile", "/some/where/tiny.safetensors") == folder / "tiny" / "smile.npz"
    assert list(available_attributes("tiny")) == ["smile"]
    with pytest.raises(LatentlabError, match="no direction 'age' for model tiny; available: smile"):
        find_attribute("age", "tiny")
    with pytest.raises(LatentlabError, match="model other has no named directions.*directions exist for: .*tiny"):
        find_attribute("smile", "other")


def test_model_key():
    assert model_key("ffhq-mobile") == "ffhq-mobile"
    assert model_key("/x/y/net.safetensors") == "net"
    assert model_key("https://host/a/b/model.pkl?x=1") == "model"


# ------------------------------------------------------------------------------------ inputs
def _save(path: Path, ws: torch.Tensor, model: str):
    save_latent(Latent(ws, network=model), path, force=True)


def test_latent_inputs_check_shape_and_model(tmp_path, tiny_G):
    import latentlab as ll

    G = tiny_G
    good = tmp_path / "good.npz"
    _save(good, torch.randn(1, G.num_ws, G.w_dim), "tiny-a")
    lat = ll.project(good, G, network="tiny-a")
    assert lat.ws.shape == (1, G.num_ws, G.w_dim) and lat.transform is None and lat.original is None
    with pytest.raises(LatentlabError, match="made with model 'tiny-a', not 'tiny-b'"):
        ll.project(good, G, network="tiny-b")
    bad = tmp_path / "bad.npz"
    _save(bad, torch.randn(1, G.num_ws + 2, G.w_dim), "big")
    with pytest.raises(LatentlabError, match=r"ws is \[10, 16\] but this generator takes \[8, 16\] \(it was made with big\)"):
        ll.project(bad, G, network="big")
    with pytest.raises(LatentlabError, match="no such file"):
        ll.project(tmp_path / "missing.png", G, network="x")


def test_photo_projection_is_cached_and_reused(shared_dir, tmp_cache, tiny_G):
    import latentlab as ll

    G = tiny_G
    kw = dict(num_steps=3, w_avg_samples=200, lpips_weight=0.0, rec_weight=1.0, loss_resolution=32)
    photo = shared_dir / "photos" / "ffhq" / "00000.png"
    logs: list[str] = []

    def log(ev):
        if ev.message:
            logs.append(ev.message)

    first = ll.project(photo, G, "fast", network="tiny", progress=log, **kw)
    cached = list((tmp_cache / "projections").glob("*.npz"))
    assert len(cached) == 1 and first.can_paste and first.original.shape == (256, 256, 3)
    second = ll.project(photo, G, "fast", network="tiny", progress=log, **kw)
    assert "reusing the cached projection" in logs[-1]
    torch.testing.assert_close(first.ws, second.ws, rtol=0, atol=0)
    assert second.can_paste and np.array_equal(second.original, first.original)
    third = ll.project(photo, G, "fast", network="tiny", progress=log, **{**kw, "num_steps": 4})
    assert "reusing" not in logs[-1] and len(list((tmp_cache / "projections").glob("*.npz"))) == 2
    assert third.ws.shape == first.ws.shape
    # a cancelled projection is returned but not cached
    ll.project(photo, G, "fast", network="tiny", progress=False, cancel=lambda: True, **{**kw, "num_steps": 5})
    assert len(list((tmp_cache / "projections").glob("*.npz"))) == 2


# ------------------------------------------------------------------------------------ masked swap
def test_masked_swap_pulls_each_region_towards_its_target():
    from latentlab.editing.swap import masked_swap, mix_swap

    G = _tiny_sg2()
    torch.manual_seed(0)
    ws_a, ws_b = G.mapping(torch.randn(2, G.z_dim)).chunk(2)
    img_a, img_b = G.synthesis(ws_a), G.synthesis(ws_b)  # unclamped targets: B is matched exactly at the start
    face = np.zeros((32, 32), np.float32)
    face[8:24, 8:24] = 1
    bg = 1 - np.pad(np.ones((20, 20), np.float32), 6)
    res = masked_swap(G, ws_b, img_a, img_b, face, bg, num_steps=12, lr=0.1, lpips_weight=0.0)
    h = res.history
    assert h[0]["background_mse"] == pytest.approx(0.0, abs=1e-10)
    assert h[0]["face_mse"] > 0.01
    assert min(r["face_mse"] for r in h) < 0.5 * h[0]["face_mse"]
    out = G.synthesis(res.ws)
    d_a = (out - img_a)[..., 8:24, 8:24].abs().mean()
    d_b = (out - img_b)[..., 8:24, 8:24].abs().mean()
    assert d_a < d_b
    mixed = mix_swap(ws_a, ws_b, [0, 1, 2], keep_rows=[0])
    assert torch.equal(mixed[:, 1:3], ws_a[:, 1:3]) and torch.equal(mixed[:, 0], ws_b[:, 0])
    assert torch.equal(mixed[:, 3:], ws_b[:, 3:])


# ------------------------------------------------------------------------------------ the edit parser
def test_one_parser_reads_text_mappings_and_pairs_alike():
    from latentlab.editing.edits import EditSpec, parse_edits

    expected = [EditSpec("smile", 1.5, "sigma", None), EditSpec("age", -1.0, "w", "0-3,5"),
                EditSpec("sefa:2", 3.0, "w", None), EditSpec("d.npz", 2.0, "w", "rows:1")]
    text = parse_edits("smile=1.5s, age=-1@0-3,5; sefa2=3, d.npz=2@rows:1")
    mapping = parse_edits({"smile": "1.5s", "age": "-1@0-3,5", "sefa:2": 3, "d.npz": "2@rows:1"})
    pairs = parse_edits([("smile", 1.5), ("age", -1), ("sefa2", 3.0), ("d.npz", 2)], unit="w",
                        layers={"age": "0-3,5", "d": "rows:1"})
    assert text == expected and mapping == expected
    assert pairs[0] == EditSpec("smile", 1.5, "w", None) and pairs[1:] == expected[1:]
    assert parse_edits({"smile": 1.5}, unit="sigma") == [EditSpec("smile", 1.5, "sigma", None)]
    assert parse_edits("smile=0") == [EditSpec("smile", 0.0, "w", None)]


@pytest.mark.parametrize("request_, fragment", [
    ("smile", "expected TARGET=STRENGTH"),
    ("=2", "missing the target"),
    ("smile=", "is not a number"),
    ("smile=abc", "is not a number"),
    ("smile=nan", "not a finite number"),
    ("smile=inf", "not a finite number"),
    ("smile=101", "out of range"),
    ("smile=1@", "empty layer range"),
    ("", "empty edit request"),
    ({"smile": True}, "is not a number"),
    ({"smile": None}, "is not a number"),
    ({3: 1.0}, "a target must be"),
])
def test_malformed_edit_requests_are_one_line_errors(request_, fragment):
    from latentlab.editing.edits import parse_edits

    with pytest.raises(LatentlabError) as info:
        parse_edits(request_)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_layer_overrides_must_name_an_edit_and_units_must_exist():
    from latentlab.editing.edits import parse_edits

    with pytest.raises(LatentlabError, match="layers given for age"):
        parse_edits({"smile": 1}, layers={"age": "0-3"})
    with pytest.raises(LatentlabError, match="unknown strength unit"):
        parse_edits({"smile": 1}, unit="px")
