"""FIR up/down-sampling of image batches: upsample by zero insertion, pad, filter, downsample.

The filter convention is NVIDIA's: ``f`` is a convolution kernel (flipped before the
correlation that ``conv2d`` performs, unless ``flip_filter=True``), a 1-D ``f`` is applied
separably, and ``gain`` scales the overall output. Pure PyTorch, any device.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

Padding = int | Sequence[int]
#: Implementations every op here accepts: the plain reference and the faster equivalent.
IMPLS = ("ref", "fast")


def setup_filter(
    f: Sequence[float] | torch.Tensor | None,
    device: torch.device | str = "cpu",
    normalize: bool = True,
    flip_filter: bool = False,
    gain: float = 1.0,
    separable: bool | None = None,
) -> torch.Tensor:
    """Build a float32 FIR kernel from taps, e.g. ``[1, 3, 3, 1]`` -> [4, 4] (sums to 1).

    A 1-D list becomes the outer product with itself unless ``separable`` (default: only for
    8 taps or more). ``normalize`` divides by the sum; ``gain`` scales the total response.
    """
    if f is None:
        f = [1]
    f = torch.as_tensor(f, dtype=torch.float32, device=device)
    if f.ndim == 0:
        f = f.reshape(1)
    if f.ndim not in (1, 2) or f.numel() == 0:
        raise ValueError(f"FIR filter must be 1-D or 2-D and non-empty, got shape {list(f.shape)}")
    if separable is None:
        separable = f.ndim == 1 and f.numel() >= 8
    if f.ndim == 1 and not separable:
        f = torch.outer(f, f)
    if normalize:
        f = f / f.sum()
    if flip_filter:
        f = f.flip(list(range(f.ndim)))
    f = f * (gain ** (f.ndim / 2))
    return f


def _parse_padding(padding: Padding) -> tuple[int, int, int, int]:
    """int -> all sides; [px, py]; or [x0, x1, y0, y1]."""
    if isinstance(padding, int):
        return padding, padding, padding, padding
    p = [int(v) for v in padding]
    if len(p) == 2:
        return p[0], p[0], p[1], p[1]
    if len(p) == 4:
        return p[0], p[1], p[2], p[3]
    raise ValueError(f"padding must be an int, [px, py] or [x0, x1, y0, y1], got {padding!r}")


def filter_size(f: torch.Tensor | None) -> tuple[int, int]:
    if f is None:
        return 1, 1
    if f.ndim == 1:
        return f.shape[0], f.shape[0]
    return f.shape[1], f.shape[0]  # (width, height)


def _pad_or_crop(x: torch.Tensor, x0: int, x1: int, y0: int, y1: int) -> torch.Tensor:
    """Zero-pad positive amounts, crop negative amounts (on the last two dims)."""
    x = F.pad(x, [max(x0, 0), max(x1, 0), max(y0, 0), max(y1, 0)])
    h, w = x.shape[-2], x.shape[-1]
    return x[..., max(-y0, 0): h - max(-y1, 0), max(-x0, 0): w - max(-x1, 0)]


def upfirdn2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    up: int | Sequence[int] = 1,
    down: int | Sequence[int] = 1,
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1.0,
    impl: str = "ref",
) -> torch.Tensor:
    """Upsample by zero insertion, pad, FIR-filter and downsample ``x`` [N, C, H, W].

    Args:
        f: [fh, fw] kernel, [fw] separable kernel, or None (identity).
        up, down: integer factors (one int, or [x, y]).
        padding: applied after upsampling; negative values crop.
        gain: overall scale (e.g. ``up**2`` keeps the mean when upsampling).
        impl: ``'ref'`` (zero insertion, explicit padding, one depthwise conv) or ``'fast'``
            (the same result, about 1e-6 relative: upsampling as a strided transposed
            convolution that never builds the zero-filled image, and padding done by the conv).

    Returns [N, C, (H*up_y + y0 + y1 - fh) // down_y + 1, (W*up_x + x0 + x1 - fw) // down_x + 1].
    """
    if x.ndim != 4:
        raise ValueError(f"x must be [N, C, H, W], got {list(x.shape)}")
    upx, upy = (up, up) if isinstance(up, int) else (int(up[0]), int(up[1]))
    downx, downy = (down, down) if isinstance(down, int) else (int(down[0]), int(down[1]))
    if min(upx, upy, downx, downy) < 1:
        raise ValueError("up and down factors must be >= 1")
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    x0, x1, y0, y1 = _parse_padding(padding)
    if impl == "fast":
        out = _upfirdn2d_fast(x, f, upx, upy, downx, downy, x0, x1, y0, y1, flip_filter, gain)
        if out is not None:
            return out
    n, c, h, w = x.shape

    # Upsample by inserting (up - 1) zeros after every sample.
    if upx > 1 or upy > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, upx - 1, 0, 0, 0, upy - 1])
        x = x.reshape(n, c, h * upy, w * upx)

    x = _pad_or_crop(x, x0, x1, y0, y1)

    # Filter (a true convolution unless flip_filter), one kernel per channel.
    if f is not None:
        f = f.to(device=x.device, dtype=x.dtype)
        f = f * (gain ** (f.ndim / 2))
        if not flip_filter:
            f = f.flip(list(range(f.ndim)))
        if f.ndim == 2:
            x = F.conv2d(x, f[None, None].repeat(c, 1, 1, 1), groups=c)
        else:
            x = F.conv2d(x, f[None, None, None, :].repeat(c, 1, 1, 1), groups=c)
            x = F.conv2d(x, f[None, None, :, None].repeat(c, 1, 1, 1), groups=c)
    elif gain != 1:
        x = x * gain

    if downx > 1 or downy > 1:
        x = x[:, :, ::downy, ::downx]
    return x


def _kernel2d(f: torch.Tensor, x: torch.Tensor, flip_filter: bool, gain: float) -> torch.Tensor:
    """The 2-D true-convolution kernel [fh, fw] that ``upfirdn2d`` applies (gain included)."""
    f = f.to(device=x.device, dtype=x.dtype)
    if f.ndim == 1:
        f = torch.outer(f, f)
    f = f * gain
    return f.flip([0, 1]) if flip_filter else f


def _upfirdn2d_fast(x: torch.Tensor, f: torch.Tensor | None, upx: int, upy: int, downx: int, downy: int,
                    x0: int, x1: int, y0: int, y1: int, flip_filter: bool, gain: float) -> torch.Tensor | None:
    """Cases with a cheaper exact formulation; None means "use the reference code".

    * up only: a zero-inserted signal convolved with ``f`` is ``conv_transpose2d(x, f, stride=up)``
      (the full output) cropped by ``fh - 1 - y0`` on top / ``fh - up - y1`` at the bottom (same in x).
    * no resampling with symmetric non-negative padding: ``conv2d(..., padding=p)``, no padded copy.
    """
    if f is None:
        return None
    n, c, h, w = x.shape
    if (upx > 1 or upy > 1) and downx == 1 and downy == 1:
        k = _kernel2d(f, x, flip_filter, gain)
        fh, fw = k.shape
        cy0, cy1, cx0, cx1 = fh - 1 - y0, fh - upy - y1, fw - 1 - x0, fw - upx - x1
        if min(cy0, cy1, cx0, cx1) < 0:
            return None
        py, px = min(cy0, cy1), min(cx0, cx1)
        # conv_transpose2d computes sum_i x[i] k[t - up*i]: the true convolution, no flip needed.
        out = F.conv_transpose2d(x, k[None, None].expand(c, 1, fh, fw), stride=(upy, upx),
                                 padding=(py, px), groups=c)
        hh, ww = out.shape[-2:]
        return out[..., cy0 - py: hh - (cy1 - py), cx0 - px: ww - (cx1 - px)]
    if upx == upy == downx == downy == 1 and x0 == x1 >= 0 and y0 == y1 >= 0:
        k = _kernel2d(f, x, not flip_filter, gain)  # conv2d correlates: flip for a true convolution
        fh, fw = k.shape
        return F.conv2d(x, k[None, None].expand(c, 1, fh, fw), padding=(y0, x0), groups=c)
    return None


def filter2d(x: torch.Tensor, f: torch.Tensor, padding: Padding = 0, flip_filter: bool = False,
             gain: float = 1.0, impl: str = "ref") -> torch.Tensor:
    """Filter ``x`` [N, C, H, W] with ``f`` keeping the size (plus ``padding``)."""
    fw, fh = filter_size(f)
    x0, x1, y0, y1 = _parse_padding(padding)
    pad = [x0 + fw // 2, x1 + (fw - 1) // 2, y0 + fh // 2, y1 + (fh - 1) // 2]
    return upfirdn2d(x, f, padding=pad, flip_filter=flip_filter, gain=gain, impl=impl)


def upsample2d(x: torch.Tensor, f: torch.Tensor, up: int = 2, padding: Padding = 0,
               flip_filter: bool = False, gain: float = 1.0, impl: str = "ref") -> torch.Tensor:
    """Upsample ``x`` [N, C, H, W] by ``up`` with FIR filter ``f`` -> [N, C, H*up, W*up]."""
    fw, fh = filter_size(f)
    x0, x1, y0, y1 = _parse_padding(padding)
    pad = [x0 + (fw + up - 1) // 2, x1 + (fw - up) // 2, y0 + (fh + up - 1) // 2, y1 + (fh - up) // 2]
    return upfirdn2d(x, f, up=up, padding=pad, flip_filter=flip_filter, gain=gain * up * up, impl=impl)


def downsample2d(x: torch.Tensor, f: torch.Tensor, down: int = 2, padding: Padding = 0,
                 flip_filter: bool = False, gain: float = 1.0, impl: str = "ref") -> torch.Tensor:
    """Downsample ``x`` [N, C, H, W] by ``down`` with FIR filter ``f`` -> [N, C, H/down, W/down]."""
    fw, fh = filter_size(f)
    x0, x1, y0, y1 = _parse_padding(padding)
    pad = [x0 + (fw - down + 1) // 2, x1 + (fw - down) // 2, y0 + (fh - down + 1) // 2, y1 + (fh - down) // 2]
    return upfirdn2d(x, f, down=down, padding=pad, flip_filter=flip_filter, gain=gain, impl=impl)
