"""Would Winograd convolution pay off for StyleGAN2's layers on this machine? A probe, not a fast path.

Winograd's F(2x2, 3x3) computes a 3x3 convolution with 16 instead of 36 multiplies per 2x2 output
tile (2.25x fewer), at the price of transforming every 4x4 input tile and 4x4 output tile. oneDNN in
PyTorch's CPU build convolves directly, so this script writes F(2x2, 3x3) with PyTorch ops (the tile
transforms as matrix products, the 16 per-position products as one batched matmul), checks it
against ``torch.nn.functional.conv2d`` and times both on config-f's layer shapes (forward only,
batch 1, fp32, channels-last).

    python benchmarks/probe_winograd.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
import torch.nn.functional as F

# F(2x2, 3x3) (Lavin & Gray, 2015): Y = A^T [(G g G^T) * (B^T d B)] A on 4x4 input tiles d.
_BT = torch.tensor([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=torch.float32)
_G = torch.tensor([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=torch.float32)
_AT = torch.tensor([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=torch.float32)


def winograd_conv3x3(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """conv2d(x, w, padding=1) for x [N, C, H, W] (H, W even) and w [O, C, 3, 3] -> [N, O, H, W]."""
    n, c, h, wd = x.shape
    o = w.shape[0]
    u = torch.einsum("ai,ocij,bj->abco", _G, w, _G).reshape(16, c, o)  # transformed filters
    xp = F.pad(x.permute(0, 2, 3, 1), (0, 0, 1, 1, 1, 1))  # NHWC, zero border
    tiles = xp.unfold(1, 4, 2).unfold(2, 4, 2)  # [N, H/2, W/2, C, 4, 4], overlapping views
    d = tiles.permute(4, 5, 0, 1, 2, 3).reshape(16, -1)  # [16, tiles * C] (a copy)
    v = (torch.kron(_BT, _BT) @ d).view(16, -1, c)  # B^T d B for every tile and channel
    m = torch.bmm(v, u).view(16, -1)  # [16, tiles * O]
    y = (torch.kron(_AT, _AT) @ m).view(2, 2, n, h // 2, wd // 2, o)  # A^T m A
    # interleave the 2x2 outputs as NHWC, returned as a channels-last [N, O, H, W] view
    return y.permute(2, 3, 0, 4, 1, 5).reshape(n, h, wd, o).permute(0, 3, 1, 2)


def _median_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from latentlab.ops import tune_cpu_allocator

    tune_cpu_allocator()  # as projection runs
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'layer':<12} {'direct ms':>10} {'winograd ms':>12} {'x':>6} {'max rel err':>12}")
    gen = torch.Generator().manual_seed(0)
    for ch, res in ((32, 1024), (64, 512), (128, 256), (256, 128), (512, 64)):
        x = torch.randn(1, ch, res, res, generator=gen).contiguous(memory_format=torch.channels_last)
        w = torch.randn(ch, ch, 3, 3, generator=gen) / (9 * ch) ** 0.5
        ref = F.conv2d(x, w, padding=1)
        err = float((winograd_conv3x3(x, w) - ref).abs().max() / ref.abs().max())
        t_direct = _median_ms(lambda: F.conv2d(x, w, padding=1), args.repeats)
        t_wino = _median_ms(lambda: winograd_conv3x3(x, w), args.repeats)
        print(f"{f'{ch}ch@{res}':<12} {t_direct:>10.1f} {t_wino:>12.1f} {t_direct / t_wino:>6.2f} {err:>12.1e}",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
