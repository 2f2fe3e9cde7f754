"""load_image / save_image / tensor helpers: every bad or unusual input is a real file on disk."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
import torch
from PIL import Image

from latentlab.errors import LatentlabError
from latentlab.imageio import (MIN_IMAGE_SIZE, image_to_tensor, load_image, save_image,
                               tensor_to_image, tensor_to_images)


def _raises_one_line(path, match: str, **kw) -> str:
    with pytest.raises(LatentlabError, match=match) as ei:
        load_image(path, **kw)
    msg = str(ei.value)
    assert "\n" not in msg
    assert str(path) in msg
    return msg


def _noise(h=120, w=100, seed=0):
    return np.random.RandomState(seed).randint(0, 256, (h, w, 3), dtype=np.uint8)


# --------------------------------------------------------------------------- errors


def test_missing_file(tmp_path):
    _raises_one_line(tmp_path / "nope.jpg", "no such file")


def test_directory(tmp_path):
    _raises_one_line(tmp_path, "directory")


def test_not_an_image(tmp_path):
    p = tmp_path / "notes.png"
    p.write_text("this is not a picture\n" * 20)
    _raises_one_line(p, "not an image")


def test_empty_file(tmp_path):
    p = tmp_path / "empty.jpg"
    p.write_bytes(b"")
    _raises_one_line(p, "empty")


@pytest.mark.parametrize("fmt,ext", [("JPEG", "jpg"), ("PNG", "png")])
def test_truncated(tmp_path, fmt, ext):
    buf = io.BytesIO()
    Image.fromarray(_noise(200, 200)).save(buf, format=fmt)
    data = buf.getvalue()
    p = tmp_path / f"cut.{ext}"
    p.write_bytes(data[: len(data) // 2])
    _raises_one_line(p, "truncated")
    # The intact file loads (the error is about the truncation, not the format).
    q = tmp_path / f"whole.{ext}"
    q.write_bytes(data)
    assert load_image(q).shape == (200, 200, 3)


def test_too_small(tmp_path):
    p = tmp_path / "tiny.png"
    Image.fromarray(_noise(32, 100)).save(p)
    msg = _raises_one_line(p, "at least")
    assert "100x32" in msg and str(MIN_IMAGE_SIZE) in msg
    assert load_image(p, min_size=16).shape == (32, 100, 3)


def test_float_image_refused(tmp_path):
    p = tmp_path / "float.tiff"
    Image.fromarray(np.random.rand(80, 80).astype(np.float32), mode="F").save(p)
    _raises_one_line(p, "float")


# --------------------------------------------------------------------------- conversions


def test_rgb_roundtrip_exact(tmp_path):
    arr = _noise()
    p = tmp_path / "rgb.png"
    Image.fromarray(arr).save(p)
    out = load_image(p)
    assert out.dtype == np.uint8 and out.flags.c_contiguous
    np.testing.assert_array_equal(out, arr)


def test_grayscale_to_rgb(tmp_path):
    g = _noise()[..., 0]
    p = tmp_path / "gray.png"
    Image.fromarray(g, mode="L").save(p)
    np.testing.assert_array_equal(load_image(p), np.stack([g, g, g], -1))


def _white_composite(rgb, a):
    a = a.astype(np.float64)[..., None] / 255.0
    return np.rint(rgb.astype(np.float64) * a + 255.0 * (1 - a)).astype(np.uint8)


def test_rgba_composited_on_white(tmp_path):
    rgba = np.zeros((80, 80, 4), np.uint8)
    rgba[..., 0] = 255            # pure red ...
    rgba[:, :20, 3] = 0           # transparent -> white
    rgba[:, 20:40, 3] = 128       # half -> pink
    rgba[:, 40:, 3] = 255         # opaque -> red
    p = tmp_path / "rgba.png"
    Image.fromarray(rgba, mode="RGBA").save(p)
    out = load_image(p)
    np.testing.assert_array_equal(out[0, 0], [255, 255, 255])
    np.testing.assert_array_equal(out[0, 30], [255, 127, 127])  # 255*(1-128/255) = 127.0
    np.testing.assert_array_equal(out[0, 60], [255, 0, 0])
    np.testing.assert_array_equal(out, _white_composite(rgba[..., :3], rgba[..., 3]))


def test_la_and_palette_transparency(tmp_path):
    la = np.zeros((70, 70, 2), np.uint8)
    la[..., 0] = 40
    la[:35, :, 1] = 0
    la[35:, :, 1] = 200
    p = tmp_path / "la.png"
    Image.fromarray(la, mode="LA").save(p)
    out = load_image(p)
    np.testing.assert_array_equal(out[0, 0], [255] * 3)
    np.testing.assert_array_equal(out[50, 0], [round(40 * 200 / 255 + 255 * 55 / 255)] * 3)

    pal = Image.new("P", (70, 70), 1)
    pal.putpalette([0, 0, 0, 10, 200, 30] + [0] * (256 * 3 - 6))
    pal.paste(0, (0, 0, 70, 35))  # top half uses index 0 ...
    q = tmp_path / "pal.png"
    pal.save(q, transparency=0)  # ... which is transparent
    out = load_image(q)
    np.testing.assert_array_equal(out[0, 0], [255, 255, 255])
    np.testing.assert_array_equal(out[60, 0], [10, 200, 30])


def _scale16(v):
    return np.rint(np.asarray(v, np.float64) * 255.0 / 65535.0).astype(np.uint8)


def test_16bit_gray_png(tmp_path):
    vals = np.array([0, 1000, 1799, 40000, 65535], np.uint16)
    g = np.tile(np.repeat(vals, 16), (80, 1))  # [80, 80]
    p = tmp_path / "g16.png"
    Image.fromarray(g).save(p)
    assert Image.open(p).mode.startswith("I")
    out = load_image(p)
    np.testing.assert_array_equal(out[0, ::16], np.stack([_scale16(vals)] * 3, -1))
    # The correct scaling differs from "keep the high byte" (1000 >> 8 == 3, round(3.89) == 4).
    assert out[0, 16, 0] == 4


def test_16bit_rgb_and_rgba_png(tmp_path):
    import cv2

    rgb = np.zeros((70, 70, 3), np.uint16)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 1000, 30000, 65535
    p = tmp_path / "rgb16.png"
    cv2.imwrite(str(p), rgb[..., ::-1])  # OpenCV writes BGR
    with Image.open(p) as im:  # Pillow alone would drop the low byte
        assert np.asarray(im.convert("RGB"))[0, 0, 0] == 1000 >> 8
    np.testing.assert_array_equal(load_image(p)[0, 0], _scale16([1000, 30000, 65535]))

    rgba = np.zeros((70, 70, 4), np.uint16)
    rgba[..., :3] = 20000
    rgba[:, :35, 3] = 0
    rgba[:, 35:, 3] = 65535
    q = tmp_path / "rgba16.png"
    cv2.imwrite(str(q), rgba[..., [2, 1, 0, 3]])
    out = load_image(q)
    np.testing.assert_array_equal(out[0, 0], [255, 255, 255])
    np.testing.assert_array_equal(out[0, 50], _scale16([20000] * 3))


def test_cmyk(tmp_path):
    cmyk = np.zeros((70, 70, 4), np.uint8)
    cmyk[:35, :, 0] = 255  # pure cyan
    cmyk[35:, :, 3] = 255  # pure black
    p = tmp_path / "cmyk.tiff"
    Image.fromarray(cmyk, mode="CMYK").save(p)
    out = load_image(p)
    np.testing.assert_array_equal(out[0, 0], [0, 255, 255])
    np.testing.assert_array_equal(out[60, 0], [0, 0, 0])


def _exif(orientation: int) -> Image.Exif:
    ex = Image.Exif()
    ex[0x0112] = orientation
    return ex


# For a stored image with a marker in its top-left pixel block: where the viewer shows the marker.
_ORIENT = {1: "tl", 2: "tr", 3: "br", 4: "bl", 5: "tl", 6: "tr", 7: "br", 8: "bl"}


@pytest.mark.parametrize("orientation", [1, 3, 6, 8, 2, 5, 7, 4])
@pytest.mark.parametrize("bits", [8, 16])
def test_exif_orientation(tmp_path, orientation, bits):
    h, w = 100, 160
    arr = np.zeros((h, w, 3), np.uint8)
    arr[:10, :10] = 255
    rotated = orientation in (5, 6, 7, 8)
    p = tmp_path / f"o{orientation}.png"
    if bits == 8:
        Image.fromarray(arr).save(p, exif=_exif(orientation))
    else:  # 16-bit RGB PNG goes through the OpenCV path; add the EXIF chunk with Pillow's writer
        import cv2

        ok, enc = cv2.imencode(".png", arr.astype(np.uint16)[..., ::-1] * 257)
        assert ok
        data = enc.tobytes()
        exif = _exif(orientation).tobytes()
        chunk = _png_chunk(b"eXIf", exif)
        iend = data.rfind(b"IEND") - 4
        p.write_bytes(data[:iend] + chunk + data[iend:])
    out = load_image(p)
    assert out.shape == ((w, h, 3) if rotated else (h, w, 3))
    hh, ww = out.shape[:2]
    corner = {"tl": out[2, 2], "tr": out[2, ww - 3], "bl": out[hh - 3, 2], "br": out[hh - 3, ww - 3]}
    for name, px in corner.items():
        assert (px[0] == 255) == (name == _ORIENT[orientation]), (orientation, name)


@pytest.mark.parametrize("orientation", [1, 6, 3, 5])
@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_max_side_shrinks_as_resizing_the_full_image_would(tmp_path, orientation, fmt):
    """load_image(max_side=) (shrunk while decoding, the orientation applied to the small image)
    matches the full-size image, turned, then resized with Pillow's Lanczos."""
    h, w = 300, 480
    yy, xx = np.mgrid[0:h, 0:w]
    arr = np.stack([xx * 255 // w, yy * 255 // h, (xx // 40 + yy // 40) % 2 * 200], axis=2).astype(np.uint8)
    arr[:30, :30] = 255  # a marker where the stored image starts
    p = tmp_path / f"o{orientation}.{fmt}"
    Image.fromarray(arr).save(p, exif=_exif(orientation), **({"quality": 95} if fmt == "jpeg" else {}))
    full = load_image(p)
    small = load_image(p, max_side=120)
    fh, fw = full.shape[:2]
    want_size = (120, round(fh * 120 / fw)) if fw >= fh else (round(fw * 120 / fh), 120)
    assert (small.shape[1], small.shape[0]) == want_size
    ref = np.asarray(Image.fromarray(full).resize(want_size, Image.Resampling.LANCZOS)).astype(int)
    diff = np.abs(small.astype(int) - ref)
    # PNG: the same filter on the same pixels; JPEG: decoded at 1/2 scale by the DCT first
    assert diff.mean() < (0.5 if fmt == "png" else 3.0) and np.percentile(diff, 99) <= (4 if fmt == "png" else 24)


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    import struct
    import zlib

    return (struct.pack(">I", len(payload)) + kind + payload
            + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))


# --------------------------------------------------------------------------- saving


def test_save_never_overwrites(tmp_path):
    arr = _noise()
    p = tmp_path / "sub" / "out.png"
    save_image(arr, p)  # parent folder is created
    np.testing.assert_array_equal(load_image(p), arr)
    with pytest.raises(LatentlabError, match="already exists") as ei:
        save_image(arr[::-1].copy(), p)
    assert str(p) in str(ei.value)
    np.testing.assert_array_equal(load_image(p), arr)  # untouched
    save_image(arr[::-1].copy(), p, force=True)
    np.testing.assert_array_equal(load_image(p), arr[::-1])


def test_save_bad_inputs(tmp_path):
    with pytest.raises(LatentlabError, match="extension"):
        save_image(_noise(), tmp_path / "x.notanext")
    with pytest.raises(LatentlabError, match="uint8"):
        save_image(np.zeros((64, 64, 3), np.float32), tmp_path / "x.png")
    with pytest.raises(LatentlabError, match="batch"):
        save_image(torch.zeros(2, 3, 64, 64), tmp_path / "x.png")


def test_save_tensor(tmp_path):
    arr = _noise(64, 80)
    t = image_to_tensor(arr)
    p = tmp_path / "t.png"
    save_image(t, p)
    np.testing.assert_array_equal(load_image(p), arr)
    save_image(t[0], p, force=True)  # [C, H, W] too
    np.testing.assert_array_equal(load_image(p), arr)


# --------------------------------------------------------------------------- tensors


def test_tensor_conversion_values():
    arr = np.arange(256, dtype=np.uint8).reshape(16, 16)[..., None].repeat(3, 2)
    t = image_to_tensor(arr)
    assert t.shape == (1, 3, 16, 16) and t.dtype == torch.float32
    assert t.min().item() == -1.0 and t.max().item() == 1.0
    np.testing.assert_allclose(t[0, 0].numpy(), arr[..., 0] / 127.5 - 1.0, atol=1e-6)
    np.testing.assert_array_equal(tensor_to_image(t), arr)  # exact round trip for all 256 levels


def test_tensor_to_image_clamps_and_batches():
    t = torch.tensor([-3.0, -1.0, 0.0, 1.0, 5.0]).view(1, 1, 1, 5).expand(2, 3, 1, 5)
    imgs = tensor_to_images(t)
    assert len(imgs) == 2 and imgs[0].shape == (1, 5, 3)
    np.testing.assert_array_equal(imgs[1][0, :, 0], [0, 0, 128, 255, 255])
    with pytest.raises(LatentlabError, match="tensor_to_images"):
        tensor_to_image(t)


def test_device_behind_an_image_name_is_refused(tmp_path):
    """/dev/zero behind a photo name is refused before it is opened (reading it would never end)."""
    link = tmp_path / "photo.jpg"
    link.symlink_to("/dev/zero")
    with pytest.raises(LatentlabError, match="not a regular file"):
        load_image(link)
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(LatentlabError, match="not a regular file"):
        load_image(fifo)  # must not block waiting for a writer


def test_pixel_and_byte_limits_before_decoding(tmp_path, monkeypatch):
    import latentlab.imageio as lio

    # A small file that declares a huge image: refused from the header, before any decode.
    big = tmp_path / "huge.png"
    Image.new("1", (11000, 11000)).save(big)  # 1-bit: a few KB on disk, 121 megapixels
    assert big.stat().st_size < 2**20
    with pytest.warns(Image.DecompressionBombWarning), \
            pytest.raises(LatentlabError, match="megapixels are refused before decoding"):
        load_image(big)
    monkeypatch.setattr(lio, "MAX_IMAGE_BYTES", 1000)
    ok = tmp_path / "ok.png"
    Image.new("RGB", (300, 300), (1, 2, 3)).save(ok, compress_level=0)
    with pytest.raises(LatentlabError, match="MiB are refused|over"):
        load_image(ok)
