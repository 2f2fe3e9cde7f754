"""Pixel-space losses and metrics: MSE, PSNR, SSIM.

All take image batches [N, C, H, W] and return one value per image, shape [N]. The value range is
explicit: ``data_range`` is max - min of the pixel scale, **2.0 for latentlab's [-1, 1] images**
(the default), 1.0 for [0, 1], 255.0 for uint8-scale values.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import LatentlabError


def _check_pair(x: torch.Tensor, y: torch.Tensor, fn: str) -> None:
    for name, t in (("x", x), ("y", y)):
        if not isinstance(t, torch.Tensor) or t.ndim != 4:
            desc = list(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise LatentlabError(f"{fn}: {name} must be images [N, C, H, W], got {desc}")
        if not t.is_floating_point():
            raise LatentlabError(f"{fn}: {name} must be a float tensor, got {t.dtype}")
    if x.shape[1:] != y.shape[1:] or y.shape[0] not in (1, x.shape[0]):
        raise LatentlabError(
            f"{fn}: shapes {list(x.shape)} and {list(y.shape)} differ (y may have batch 1)"
        )


def _check_range(data_range: float, fn: str) -> None:
    if not data_range > 0:
        raise LatentlabError(f"{fn}: data_range must be positive, got {data_range}")


def mse(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error per image: x, y [N, C, H, W] (y may be [1, C, H, W]) -> [N]."""
    _check_pair(x, y, "mse")
    return (x - y).square().mean(dim=(1, 2, 3))


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 2.0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image -> [N].

    ``10 * log10(data_range^2 / mse)``; data_range 2.0 for images in [-1, 1] (default), 1.0 for
    [0, 1]. Identical images give +inf.
    """
    _check_pair(x, y, "psnr")
    _check_range(data_range, "psnr")
    return 10.0 * torch.log10(data_range**2 / mse(x, y))


def gaussian_window(win_size: int = 11, sigma: float = 1.5, *, dtype=torch.float32, device=None) -> torch.Tensor:
    """Normalised 1-D Gaussian taps [win_size], centred, ``exp(-t^2 / (2 sigma^2))``."""
    t = torch.arange(win_size, dtype=torch.float64) - (win_size - 1) / 2
    g = torch.exp(-(t**2) / (2 * sigma**2))
    return (g / g.sum()).to(dtype=dtype, device=device)


def ssim(
    x: torch.Tensor,
    y: torch.Tensor,
    data_range: float = 2.0,
    *,
    win_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004) with a Gaussian window, per image -> [N].

    Local means, variances and covariance are Gaussian-weighted (11 taps, sigma 1.5, population
    statistics); the SSIM map is computed where the window fits inside the image ("valid"
    region, no padding) and averaged over it and over channels. data_range 2.0 for images in
    [-1, 1] (default), 1.0 for [0, 1]. Same definition as
    ``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, channel_axis=...)``. Images need H, W >= win_size.
    """
    _check_pair(x, y, "ssim")
    _check_range(data_range, "ssim")
    if win_size < 1 or win_size % 2 == 0:
        raise LatentlabError(f"ssim: win_size must be odd and positive, got {win_size}")
    if min(x.shape[2:]) < win_size:
        raise LatentlabError(f"ssim: images are {x.shape[2]}x{x.shape[3]}, smaller than the {win_size} px window")
    if y.shape[0] != x.shape[0]:
        y = y.expand_as(x)
    n, c = x.shape[:2]
    g = gaussian_window(win_size, sigma, dtype=x.dtype, device=x.device)
    wh = g.view(1, 1, win_size, 1).expand(c, 1, win_size, 1)
    ww = g.view(1, 1, 1, win_size).expand(c, 1, 1, win_size)

    def blur(t: torch.Tensor) -> torch.Tensor:  # separable Gaussian, valid region only
        return F.conv2d(F.conv2d(t, wh, groups=c), ww, groups=c)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x.square()
    var_y = blur(y * y) - mu_y.square()
    cov = blur(x * y) - mu_x * mu_y
    c1 = (k1 * data_range) ** 2
    c2 = (k2 * data_range) ** 2
    num = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    den = (mu_x.square() + mu_y.square() + c1) * (var_x + var_y + c2)
    return (num / den).mean(dim=(1, 2, 3))


__all__ = ["mse", "psnr", "ssim", "gaussian_window"]
