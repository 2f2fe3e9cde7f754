"""2-D convolution fused with FIR up- or down-sampling (reference implementation)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .upfirdn2d import filter_size, upfirdn2d


def conv2d_resample(
    x: torch.Tensor,
    w: torch.Tensor,
    f: torch.Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: int = 0,
    groups: int = 1,
    flip_weight: bool = True,
    flip_filter: bool = False,
    impl: str = "ref",
) -> torch.Tensor:
    """Convolve ``x`` [N, C*groups.., H, W] with ``w`` [O, I/groups, kh, kw], resampling by ``up``/``down``.

    Semantics: ``up`` inserts zeros and low-passes with ``f`` (gain ``up**2``) before the
    convolution; ``down`` low-passes with ``f`` and subsamples after it. ``padding`` is the
    convolution's padding at the (upsampled) resolution. ``flip_weight=True`` is a correlation
    (what ``torch.nn.functional.conv2d`` computes); False is a true convolution.
    Upsampling with a kernel larger than 1x1 runs as a transposed convolution followed by the
    FIR filter, which equals the upsample-then-convolve definition without the zero work.
    ``impl='fast'`` runs the FIR steps through :func:`upfirdn2d`'s fast path (same result to ~1e-6).
    """
    if up > 1 and down > 1:
        raise ValueError("conv2d_resample supports up- or down-sampling, not both at once")
    if (up > 1 or down > 1) and f is None:
        raise ValueError("resampling needs an FIR filter f")
    out_ch, in_per_group, kh, kw = w.shape
    fw, fh = filter_size(f)
    if not flip_weight:
        w = w.flip([2, 3])  # a correlation with the flipped kernel is a convolution

    if up == 1 and down == 1:
        return F.conv2d(x, w, padding=padding, groups=groups)

    if down > 1:
        # Filter with padding, then a strided correlation does the subsampling.
        px0 = padding + (fw - down + 1) // 2
        px1 = padding + (fw - down) // 2
        py0 = padding + (fh - down + 1) // 2
        py1 = padding + (fh - down) // 2
        if kw == 1 and kh == 1:
            x = upfirdn2d(x, f, down=down, padding=[px0, px1, py0, py1], flip_filter=flip_filter, impl=impl)
            return F.conv2d(x, w, groups=groups)
        x = upfirdn2d(x, f, padding=[px0, px1, py0, py1], flip_filter=flip_filter, impl=impl)
        return F.conv2d(x, w, stride=down, groups=groups)

    # Upsampling. Padding of the zero-inserted signal before the FIR filter:
    px0 = padding + (fw + up - 1) // 2
    px1 = padding + (fw - up) // 2
    py0 = padding + (fh + up - 1) // 2
    py1 = padding + (fh - up) // 2
    if kw == 1 and kh == 1:
        x = upfirdn2d(x, f, up=up, padding=[px0, px1, py0, py1], gain=up * up, flip_filter=flip_filter, impl=impl)
        return F.conv2d(x, w, groups=groups)

    # conv_transpose2d(x, w, stride=up) is a true convolution of the zero-inserted signal with
    # w, so flip w first to keep conv2d's correlation semantics. Weight layout for the
    # transposed conv is [I, O/groups, kh, kw].
    w = w.flip([2, 3])
    w = w.reshape(groups, out_ch // groups, in_per_group, kh, kw).transpose(1, 2)
    w = w.reshape(groups * in_per_group, out_ch // groups, kh, kw)
    # The transposed conv already grows the signal by (k - 1) (left) and (k - up) (right).
    px0 -= kw - 1
    px1 -= kw - up
    py0 -= kh - 1
    py1 -= kh - up
    pxt = max(min(-px0, -px1), 0)
    pyt = max(min(-py0, -py1), 0)
    x = F.conv_transpose2d(x, w, stride=up, padding=[pyt, pxt], groups=groups)
    return upfirdn2d(x, f, padding=[px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt], gain=up * up,
                     flip_filter=flip_filter, impl=impl)
