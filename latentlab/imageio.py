"""Reading and writing photos, and converting between images and generator tensors.

:func:`load_image` always returns ``uint8 [H, W, 3]`` RGB, or raises :class:`LatentlabError` with
one line naming the file. What it does with each kind of input:

* missing file, directory, unreadable file, not an image, empty file -> error;
* truncated or corrupt data -> error (the whole image is decoded up front, so a broken file never
  slips through as a half-grey picture). Note: if some other code set Pillow's global
  ``ImageFile.LOAD_TRUNCATED_IMAGES = True``, Pillow itself hides truncation and so does this;
* smaller side below ``min_size`` (default :data:`MIN_IMAGE_SIZE` = 64 px, after EXIF rotation)
  -> error: face alignment needs a face of at least a few dozen pixels;
* EXIF orientation -> applied (the pixels are rotated/flipped the way a photo viewer shows them);
* grayscale (``L``, ``1``) -> replicated to RGB;
* transparency (``RGBA``, ``LA``, ``PA``, ``P``/``L``/``RGB`` with a ``transparency`` key) ->
  composited over **white** (``out = a*rgb + (1-a)*255``), since StyleGAN faces have no alpha and a
  cut-out portrait on white is what a user expects to see;
* 16-bit (``I;16*``, ``I`` with values <= 65535, 16-bit RGB/RGBA PNG) -> scaled to 8 bit with
  ``round(v * 255 / 65535)`` (Pillow alone would keep only the high byte of 16-bit RGB PNGs, so those
  are decoded with OpenCV);
* CMYK, YCbCr, LAB, HSV -> converted to RGB by Pillow (no ICC colour management);
* 32-bit float (``F``) or integer images above 16 bit -> error (no defined display range);
* multi-frame files (GIF, TIFF pages) -> the first frame.

Tensors follow NVIDIA's convention: float ``[N, C, H, W]`` with values in ``[-1, 1]``;
:func:`image_to_tensor` and :func:`tensor_to_image` convert, ``uint8 = round((x + 1) * 127.5)``.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING, Sequence, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import LatentlabError

if TYPE_CHECKING:
    import torch

MIN_IMAGE_SIZE = 64
"""Default smallest accepted image side in pixels (after EXIF orientation)."""

PathLike = Union[str, os.PathLike]


def _name(path: PathLike) -> str:
    return os.fspath(path)


#: Largest image file read (bytes) and largest image decoded (pixels), checked before reading /
#: decoding: a photo of 100 megapixels is far beyond any camera's face crop, and decoding one takes
#: 300 MB as uint8 RGB.
MAX_IMAGE_BYTES = 200 * 2**20
MAX_IMAGE_PIXELS = 100_000_000


def _read_bytes(path: PathLike) -> bytes:
    """The bytes of a regular file of at most MAX_IMAGE_BYTES (devices, FIFOs and sockets are
    refused before anything is read: ``/dev/zero`` behind a ``.jpg`` name would never end)."""
    import stat

    p = Path(path)
    if not p.exists():
        raise LatentlabError(f"{_name(path)}: no such file")
    if p.is_dir():
        raise LatentlabError(f"{_name(path)}: is a directory, not an image file")
    try:
        if not stat.S_ISREG(os.stat(p).st_mode):  # before open(): opening a FIFO blocks
            raise LatentlabError(f"{_name(path)}: not a regular file (a device, pipe or socket), not an image")
        with open(p, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise LatentlabError(f"{_name(path)}: not a regular file (a device, pipe or socket), not an image")
            if st.st_size > MAX_IMAGE_BYTES:
                raise LatentlabError(f"{_name(path)}: file is {st.st_size / 2**20:.0f} MiB; images over "
                                     f"{MAX_IMAGE_BYTES // 2**20} MiB are refused")
            data = f.read(MAX_IMAGE_BYTES + 1)
    except OSError as e:
        raise LatentlabError(f"{_name(path)}: cannot read file ({e.strerror or e})") from None
    if len(data) > MAX_IMAGE_BYTES:  # grew while being read
        raise LatentlabError(f"{_name(path)}: file is over {MAX_IMAGE_BYTES // 2**20} MiB; refused")
    return data


def _png_bit_depth(data: bytes) -> int | None:
    """Bit depth from a PNG's IHDR chunk, or None if ``data`` is not a PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or len(data) < 33 or data[12:16] != b"IHDR":
        return None
    return data[24]


def _decode_png16(data: bytes, name: str) -> np.ndarray:
    """A 16-bit RGB/RGBA PNG as uint8 RGB(A), scaled correctly (Pillow keeps the high byte only)."""
    import cv2

    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None or arr.dtype != np.uint16:
        raise LatentlabError(f"{name}: cannot decode 16-bit PNG (corrupt or truncated?)")
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.shape[2] == 3:
        arr = arr[..., ::-1]  # BGR -> RGB
    elif arr.shape[2] == 4:
        arr = arr[..., [2, 1, 0, 3]]  # BGRA -> RGBA
    return _scale16(arr)


def _scale16(arr: np.ndarray) -> np.ndarray:
    return np.rint(arr.astype(np.float64) * (255.0 / 65535.0)).astype(np.uint8)


def _composite_on_white(rgba: np.ndarray) -> np.ndarray:
    """uint8 [H, W, 4] -> uint8 [H, W, 3]: ``a*rgb + (1-a)*255`` with a = alpha/255."""
    rgb = rgba[..., :3].astype(np.float32)
    a = rgba[..., 3:4].astype(np.float32) / 255.0
    return np.rint(rgb * a + 255.0 * (1.0 - a)).astype(np.uint8)


def _to_rgb(im: Image.Image, name: str) -> np.ndarray:
    """A decoded Pillow image (any mode) -> uint8 [H, W, 3] RGB, following the module rules."""
    mode = im.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        arr = np.asarray(im)
        if mode == "I" and (arr.min() < 0 or arr.max() > 65535):
            raise LatentlabError(f"{name}: {mode} image with values outside 0..65535 is not supported")
        g = _scale16(arr)
        return np.repeat(g[..., None], 3, axis=2)
    if mode == "F":
        raise LatentlabError(f"{name}: 32-bit float images are not supported (save as 8/16-bit PNG)")
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info
    if has_alpha:
        return _composite_on_white(np.asarray(im.convert("RGBA")))
    if mode != "RGB":
        im = im.convert("RGB")
    return np.asarray(im)


def load_image(path: PathLike, *, min_size: int = MIN_IMAGE_SIZE, max_side: int | None = None) -> np.ndarray:
    """Read a photo as uint8 RGB ``[H, W, 3]``; see the module docstring for every case handled.

    ``max_side``: shrink it (Lanczos, aspect ratio kept) so that its longer side is at most this,
    while it is still Pillow's image: a JPEG is decoded at a reduced scale to begin with, and no
    full-size array is ever made of an 8-bit RGB or grey photo (the memory a large upload costs).

    Raises :class:`LatentlabError` (one line naming the file) for a missing, unreadable,
    non-image, truncated or too-small file (smaller side < ``min_size`` px).
    """
    name = _name(path)
    data = _read_bytes(path)
    if not data:
        raise LatentlabError(f"{name}: empty file, not an image")
    try:
        im = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise LatentlabError(f"{name}: not an image file (or a format Pillow cannot read)") from None
    except Image.DecompressionBombError as e:
        raise LatentlabError(f"{name}: image too large ({e})") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise LatentlabError(f"{name}: cannot read image header ({e})") from None
    w0, h0 = im.size
    if w0 * h0 > MAX_IMAGE_PIXELS:
        im.close()
        raise LatentlabError(f"{name}: image is {w0}x{h0} px ({w0 * h0 / 1e6:.0f} megapixels); images over "
                             f"{MAX_IMAGE_PIXELS // 1_000_000} megapixels are refused before decoding")
    try:
        with im:
            im.seek(0)
            if max_side and im.format == "JPEG" and max(w0, h0) > max_side:
                im.draft("RGB", (max_side, max_side))  # DCT scaling: decodes at 1/2, 1/4 or 1/8 size
            im.load()  # full decode: truncated/corrupt data raises here
            arr16 = None
            if im.format == "PNG" and _png_bit_depth(data) == 16 and im.mode in ("RGB", "RGBA"):
                arr16 = _decode_png16(data, name)
            exif_orientation = im.getexif().get(0x0112, 1)
            if arr16 is not None:
                rgb = _composite_on_white(arr16) if arr16.shape[2] == 4 else arr16
                rgb = _apply_orientation(rgb, exif_orientation)
            elif max_side and im.mode in ("RGB", "L") and "transparency" not in im.info:
                # shrink first, then turn the small array: no full-size copy of the photo is made
                rgb = _apply_orientation(_to_rgb(_shrink(im, max_side), name), exif_orientation)
            else:
                rgb = _to_rgb(ImageOps.exif_transpose(im), name)
            if max_side and max(rgb.shape[:2]) > max_side:
                rgb = np.asarray(_shrink(Image.fromarray(np.ascontiguousarray(rgb)), max_side))
    except LatentlabError:
        raise
    except Image.DecompressionBombError as e:
        raise LatentlabError(f"{name}: image too large ({e})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise LatentlabError(f"{name}: corrupt or truncated image ({msg})") from None
    h, w = rgb.shape[:2]
    if min(h, w) < min_size:
        raise LatentlabError(f"{name}: image is {w}x{h} px; at least {min_size} px per side is needed")
    return np.ascontiguousarray(rgb)


def _shrink(im: "Image.Image", max_side: int) -> "Image.Image":
    """A Pillow image with its longer side at most ``max_side`` (Lanczos, aspect ratio kept)."""
    w, h = im.size
    if max(w, h) <= max_side:
        return im
    scale = max_side / max(w, h)
    return im.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.LANCZOS,
                     reducing_gap=3.0)


def _apply_orientation(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation tag (1..8) to an [H, W, C] array, as a viewer would show it."""
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: np.swapaxes(a, 0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: np.swapaxes(a, 0, 1)[::-1, ::-1],
        8: lambda a: np.rot90(a, 1),
    }
    op = ops.get(int(orientation))
    return np.ascontiguousarray(op(arr)) if op else arr


# --------------------------------------------------------------------------- tensors


def image_to_tensor(image: np.ndarray, *, device: "torch.device | str | None" = None,
                    dtype: "torch.dtype | None" = None) -> "torch.Tensor":
    """uint8 ``[H, W, C]`` (or ``[H, W]``) -> float ``[1, C, H, W]`` in ``[-1, 1]``."""
    import torch

    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise LatentlabError(f"image_to_tensor expects uint8 pixels, got {arr.dtype}")
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3:
        raise LatentlabError(f"image_to_tensor expects [H, W, C], got shape {tuple(arr.shape)}")
    if not arr.flags.writeable or not arr.flags.c_contiguous:
        arr = np.array(arr, copy=True, order="C")  # torch wants writable, contiguous memory
    t = torch.from_numpy(arr).to(device=device)
    t = t.permute(2, 0, 1).unsqueeze(0).to(dtype or torch.float32)
    return t / 127.5 - 1.0


def tensor_to_images(t: "torch.Tensor") -> list[np.ndarray]:
    """float ``[N, C, H, W]`` in ``[-1, 1]`` -> N uint8 ``[H, W, C]`` arrays (values clamped)."""
    import torch

    if not isinstance(t, torch.Tensor) or t.ndim != 4:
        shape = tuple(t.shape) if hasattr(t, "shape") else type(t).__name__
        raise LatentlabError(f"expected an image tensor [N, C, H, W], got {shape}")
    u8 = ((t.detach().float() + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)
    u8 = u8.permute(0, 2, 3, 1).cpu().numpy()
    return [np.ascontiguousarray(x) for x in u8]


def tensor_to_image(t: "torch.Tensor") -> np.ndarray:
    """float ``[C, H, W]`` or ``[1, C, H, W]`` in ``[-1, 1]`` -> uint8 ``[H, W, C]``."""
    if getattr(t, "ndim", None) == 3:
        t = t.unsqueeze(0)
    if getattr(t, "ndim", None) != 4 or t.shape[0] != 1:
        shape = tuple(t.shape) if hasattr(t, "shape") else type(t).__name__
        raise LatentlabError(f"tensor_to_image expects [C, H, W] or [1, C, H, W], got {shape} "
                             "(use tensor_to_images for a batch)")
    return tensor_to_images(t)[0]


# --------------------------------------------------------------------------- saving


def _as_uint8_hwc(image) -> np.ndarray:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        torch = None
    if torch is not None and isinstance(image, torch.Tensor):
        arr = tensor_to_image(image)
    else:
        arr = np.asarray(image)
        if arr.dtype != np.uint8:
            raise LatentlabError(
                f"save_image expects uint8 pixels or a [-1, 1] tensor, got a {arr.dtype} array")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))):
        raise LatentlabError(f"save_image expects [H, W], [H, W, 3] or [H, W, 4], got {arr.shape}")
    return np.ascontiguousarray(arr)


def save_image(image: "np.ndarray | torch.Tensor", path: PathLike, *, force: bool = False,
               quality: int = 95) -> Path:
    """Write uint8 ``[H, W, 3|4|1]`` / ``[H, W]`` pixels, or a ``[-1, 1]`` tensor ``[C, H, W]`` /
    ``[1, C, H, W]``, to ``path``; the format comes from the extension (``.png``, ``.jpg``, ...).

    Never overwrites an existing file unless ``force`` (raises :class:`LatentlabError`).
    Parent folders are created. ``quality`` applies to JPEG/WebP. Returns the path written.
    """
    p = Path(path)
    ext = p.suffix.lower()
    fmt = Image.registered_extensions().get(ext)
    if fmt is None or fmt not in Image.SAVE:
        raise LatentlabError(f"{_name(path)}: unknown image extension {ext or '(none)'!r}; "
                             "use .png or .jpg")
    arr = _as_uint8_hwc(image)
    im = Image.fromarray(arr)
    if fmt == "JPEG" and im.mode == "RGBA":
        raise LatentlabError(f"{_name(path)}: JPEG cannot store transparency; use .png")
    if p.is_dir() and not p.is_symlink():
        raise LatentlabError(f"{_name(path)}: is a directory")
    refuse_existing([p], force)
    params = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    buf = io.BytesIO()
    im.save(buf, format=fmt, **params)
    write_bytes_atomic(p, buf.getvalue(), force=force)
    return p


def json_safe(value: "object") -> "object":
    """``value`` with NaN and infinite floats as None, tuples as lists, keys as text: data that
    strict JSON (``allow_nan=False``) can hold."""
    import math

    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def plain_file_name(name: str, what: str = "--name") -> str:
    """``name`` as a plain file name inside an output folder; one-line LatentlabError for a path
    (``../x``, ``a/b``), ``.``/``..``, a hidden name, control characters or over 200 characters."""
    if (not isinstance(name, str) or not name or name in (".", "..") or name.startswith(".")
            or any(c in name for c in "/\\\0") or any(ord(c) < 32 for c in name) or len(name) > 200):
        raise LatentlabError(f"{what} {name!r}: must be a plain file name (no folders, not hidden); "
                             "choose the folder with --outdir")
    return name


def refuse_existing(paths: "Sequence[PathLike]", force: bool) -> None:
    """The one overwrite rule of every writer: unless ``force``, a one-line LatentlabError naming
    the first of ``paths`` that exists (a dangling symbolic link counts: it is never followed).
    Callers check all the paths of a result before writing any of them."""
    if force:
        return
    existing = [Path(p) for p in paths if Path(p).exists() or Path(p).is_symlink()]
    if existing:
        more = f" (and {len(existing) - 1} more output files)" if len(existing) > 1 else ""
        raise LatentlabError(f"{_name(existing[0])}{more}: already exists (use --force to overwrite or choose "
                             "another output)")


def write_bytes_atomic(path: PathLike, data: "bytes | str", *, force: bool = False) -> Path:
    """Write ``data`` (str: UTF-8) to ``path`` via a temporary name beside it, then move it into place.

    The name itself is replaced: a symbolic link planted there is replaced, never followed, and an
    interrupted write leaves nothing half-written under the real name. Without ``force`` an existing
    file (or link) is refused, also one that appears during the write. Parent folders are created.
    """
    p = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    if p.is_dir() and not p.is_symlink():
        raise LatentlabError(f"{_name(path)}: is a directory")
    refuse_existing([p], force)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise LatentlabError(f"{_name(p.parent)}: cannot create the folder ({e.strerror or e})") from None
    tmp = p.with_name(f".{p.name}.{os.getpid()}.part")
    try:
        with open(tmp, "xb") as f:
            f.write(data)
        if force:
            os.replace(tmp, p)
        else:
            os.link(tmp, p)  # fails if p appeared since the check above: never overwrite
    except FileExistsError:
        raise LatentlabError(f"{_name(path)}: already exists (use --force to overwrite)") from None
    except OSError as e:
        raise LatentlabError(f"{_name(path)}: cannot write ({e.strerror or e})") from None
    finally:
        if tmp.exists() or tmp.is_symlink():
            tmp.unlink()
    return p


def save_video(frames: "Sequence[np.ndarray]", path: PathLike, fps: float = 12, *, force: bool = False) -> Path:
    """Write uint8 frames [H, W, 3] as MP4 (H.264) or GIF, by the extension of ``path``.

    Encoded in a private temporary folder, then put in place with :func:`write_bytes_atomic`: an
    interrupted encode leaves no truncated file under ``path``, and a symbolic link planted there
    is replaced, never written through. Refuses an existing ``path`` unless ``force``. MP4 frames
    are cropped to even sides (H.264 needs them)."""
    import tempfile

    import imageio.v2 as iio

    p = Path(path)
    ext = p.suffix.lower()
    if ext not in (".mp4", ".gif"):
        raise LatentlabError(f"{_name(p)}: video output must end in .mp4 or .gif")
    if not (isinstance(fps, (int, float)) and np.isfinite(fps) and fps > 0):
        raise LatentlabError(f"fps must be a positive number, got {fps!r}")
    refuse_existing([p], force)
    if not len(frames):
        raise LatentlabError(f"{_name(p)}: no frames to write")
    with tempfile.TemporaryDirectory(prefix="latentlab-video-") as d:
        tmp = Path(d) / f"video{ext}"
        if ext == ".gif":
            iio.mimsave(str(tmp), [np.ascontiguousarray(f) for f in frames], duration=1.0 / fps, loop=0)
        else:
            h, w = frames[0].shape[:2]
            with iio.get_writer(str(tmp), fps=fps, codec="libx264", quality=8, macro_block_size=1) as wr:
                for f in frames:
                    wr.append_data(np.ascontiguousarray(f[: h - h % 2, : w - w % 2]))
        write_bytes_atomic(p, tmp.read_bytes(), force=force)
    return p


__all__ = [
    "write_bytes_atomic",
    "refuse_existing",
    "plain_file_name",
    "json_safe",
    "save_video",
    "MIN_IMAGE_SIZE",
    "load_image",
    "save_image",
    "image_to_tensor",
    "tensor_to_image",
    "tensor_to_images",
]
