"""Losses and metrics for projection: LPIPS (shift-tolerant VGG16), noise regularisation, pixel metrics."""

from .lpips import LPIPS, downsample_area
from .noise_reg import noise_regularization, normalize_noise_
from .pixel import mse, psnr, ssim

__all__ = [
    "LPIPS",
    "downsample_area",
    "noise_regularization",
    "normalize_noise_",
    "mse",
    "psnr",
    "ssim",
]
