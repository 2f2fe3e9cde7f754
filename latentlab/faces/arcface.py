"""ArcFace-style face crops: the 5-point template, the 5 points from dlib's 68, and a
differentiable similarity-warp crop.

Face-identity networks trained on InsightFace's aligned crops (ArcFace, MobileFaceNet) take a face
warped so that its eye centres, nose tip and mouth corners land on :data:`ARCFACE_TEMPLATE_112`;
FaceRes (:mod:`latentlab.faces.faceres`) uses the same warp onto a looser template. The crop is
differentiable with respect to the image, so identity losses can flow back into a generator.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import LatentlabError, ShapeError

#: Side of the standard ArcFace crop (px).
CROP_SIZE = 112

ARCFACE_TEMPLATE_112 = np.array([[38.2946, 51.6963],   # left eye (image left)
                                 [73.5318, 51.5014],   # right eye
                                 [56.0252, 71.7366],   # nose tip
                                 [41.5493, 92.3655],   # left mouth corner
                                 [70.7299, 92.2041]],  # right mouth corner
                                dtype=np.float64)
"""The standard 5-point ArcFace template of a 112x112 crop, ``(x, y)`` with pixel centres on
integers (OpenCV's ``warpAffine`` convention)."""


def five_points(landmarks68: "np.ndarray | torch.Tensor") -> "np.ndarray | torch.Tensor":
    """ArcFace's 5 points ``[..., 5, 2]`` from dlib's 68 ``[..., 68, 2]`` (same type/dtype): eye
    centres (means of 36-41 and 42-47), nose tip (30), mouth corners (48, 54)."""
    if landmarks68.shape[-2:] != (68, 2):
        raise ShapeError(f"five_points expects [..., 68, 2] landmarks, got "
                         f"{tuple(landmarks68.shape)}")
    lm = landmarks68
    parts = [lm[..., 36:42, :].mean(-2), lm[..., 42:48, :].mean(-2), lm[..., 30, :],
             lm[..., 48, :], lm[..., 54, :]]
    if isinstance(lm, torch.Tensor):
        return torch.stack(parts, dim=-2)
    return np.stack(parts, axis=-2)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation; no reflection) mapping
    ``src`` [K, 2] onto ``dst`` [K, 2] (Umeyama 1991). Returns float64 ``[2, 3]`` ``M`` with
    ``dst ~= src @ M[:, :2].T + M[:, 2]``."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    if src.ndim != 2 or src.shape[1] != 2 or src.shape != dst.shape or src.shape[0] < 2:
        raise ShapeError(f"similarity_transform needs two [K, 2] point sets (K >= 2), got "
                         f"{src.shape} and {dst.shape}")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s0, d0 = src - mu_s, dst - mu_d
    var_s = (s0 ** 2).sum() / len(src)
    if var_s < 1e-12:
        raise LatentlabError("similarity_transform: the source points all coincide")
    cov = d0.T @ s0 / len(src)
    u, sig, vt = np.linalg.svd(cov)
    d = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1, 1] = -1.0
    rot = u @ d @ vt
    scale = float((sig * np.diag(d)).sum() / var_s)
    m = np.empty((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - m[:, :2] @ mu_s
    return m


def _pool_factor(scale: float) -> int:
    """The integer area-downsampling factor that brings a warp of ``scale`` closest to 1."""
    return max(1, int(round(1.0 / scale))) if scale > 0 else 1


def arcface_crop(images: torch.Tensor, points5: torch.Tensor,
                 size: int = CROP_SIZE, *, template: np.ndarray | None = None) -> torch.Tensor:
    """ArcFace-aligned crops ``[N, 3, size, size]`` of ``images`` [N, 3, H, W] (any range; [-1, 1]
    for the identity networks), given 5 points ``[N, 5, 2]`` in pixel coordinates of ``images``
    (pixel centres on integers, dlib/OpenCV convention).

    Each image is warped by the similarity transform that best maps its points onto
    :data:`ARCFACE_TEMPLATE_112` (scaled by ``size / 112``), with bilinear sampling; outside the
    image reads as -1 (black, like OpenCV's default border in ArcFace training data).
    ``template``: other target points ``[5, 2]`` in crop pixels (default: the ArcFace template
    scaled to ``size``), e.g. a looser crop for another network.
    Differentiable with respect to ``images``. When the face is much larger than the crop (e.g. a
    1024x1024 generator image), the image is first area-downsampled by the integer factor that
    brings the warp's scale closest to 1, so the bilinear sampling does not alias.
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise ShapeError(f"arcface_crop expects images [N, 3, H, W], got {tuple(images.shape)}")
    pts = torch.as_tensor(points5).detach().to("cpu", torch.float64)
    if pts.shape != (images.shape[0], 5, 2):
        raise ShapeError(f"arcface_crop expects points5 [{images.shape[0]}, 5, 2], got "
                         f"{tuple(pts.shape)}")
    n, _, h, w = images.shape
    # sampling coordinates need float32 or better (bf16 would misplace a 1024 px face by pixels)
    out_dtype = images.dtype if images.is_floating_point() else torch.float32
    work_dtype = torch.float64 if images.dtype == torch.float64 else torch.float32
    if template is None:
        template = ARCFACE_TEMPLATE_112 * (size / 112.0)
    template = np.asarray(template, np.float64)
    if template.shape != (5, 2):
        raise ShapeError(f"arcface_crop expects a [5, 2] template, got {template.shape}")
    mats = [similarity_transform(p, template) for p in pts.numpy()]
    factors = [min(_pool_factor(float(np.sqrt(abs(np.linalg.det(m[:, :2]))))), h, w)
               for m in mats]
    out: list[torch.Tensor | None] = [None] * n
    for f in sorted(set(factors)):
        idx = [i for i in range(n) if factors[i] == f]
        src = images[idx].to(work_dtype)
        if f > 1:
            src = F.avg_pool2d(src, f, f)
        hs, ws = src.shape[-2:]
        thetas = []
        for i in idx:
            m = mats[i].copy()
            if f > 1:  # pooled pixel j covers original pixels j*f .. j*f+f-1: x = f*j + (f-1)/2
                m[:, :2] = m[:, :2] * f
                m[:, 2] = mats[i][:, 2] + mats[i][:, :2] @ np.full(2, (f - 1) / 2.0)
            a = np.vstack([m, [0.0, 0.0, 1.0]])
            inv = np.linalg.inv(a)  # crop pixel -> source pixel
            # normalised coords (align_corners=False): u_n = (2u + 1) / size - 1
            to_pix = np.array([[size / 2.0, 0, (size - 1) / 2.0], [0, size / 2.0, (size - 1) / 2.0],
                               [0, 0, 1.0]])
            to_norm = np.array([[2.0 / ws, 0, 1.0 / ws - 1.0], [0, 2.0 / hs, 1.0 / hs - 1.0],
                                [0, 0, 1.0]])
            thetas.append((to_norm @ inv @ to_pix)[:2])
        theta = torch.as_tensor(np.stack(thetas), dtype=work_dtype, device=images.device)
        # affine_grid(align_corners=False) written out elementwise (no matmul, so no TF32)
        u = (torch.arange(size, dtype=work_dtype, device=images.device) * 2 + 1) / size - 1
        gx = theta[:, 0, 0, None, None] * u + theta[:, 0, 1, None, None] * u[:, None] \
            + theta[:, 0, 2, None, None]
        gy = theta[:, 1, 0, None, None] * u + theta[:, 1, 1, None, None] * u[:, None] \
            + theta[:, 1, 2, None, None]
        grid = torch.stack([gx, gy], dim=-1)
        crop = F.grid_sample(src + 1.0, grid, mode="bilinear", padding_mode="zeros",
                             align_corners=False) - 1.0
        for j, i in enumerate(idx):
            out[i] = crop[j]
    return torch.stack(out).to(out_dtype)  # type: ignore[arg-type]


__all__ = ["ARCFACE_TEMPLATE_112", "CROP_SIZE", "arcface_crop", "five_points", "similarity_transform"]
