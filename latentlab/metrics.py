"""Reconstruction metrics that the projector does not optimise.

The projector minimises the shift-tolerant VGG16 LPIPS of :mod:`latentlab.losses.lpips` (plus,
optionally, a pixel MSE), so a score from that network flatters its own result. The metrics here
come from formulas or networks it never sees:

==============  =======================================================================  ========
key             definition                                                               better
==============  =======================================================================  ========
``psnr``        ``10 log10(1 / MSE)`` of images scaled to [0, 1] (data range 1), in dB    higher
``mse``         mean squared error of images in **[-1, 1]** (see below)                   lower
``ms_ssim``     MS-SSIM (Wang, Simoncelli & Bovik 2003) on [0, 1] images, RGB mean         higher
``lpips_alex``  LPIPS with the shift-tolerant AlexNet of ST-LPIPS                         lower
==============  =======================================================================  ========

Conventions, all images torch tensors [N, 3, H, W] with values in [-1, 1] (a reference may be
[1, 3, H, W] and is compared with every image of the batch); every metric returns float32 [N]:

* **MSE scale.** The GAN-inversion literature (pSp, e4e, ReStyle, HyperStyle, PTI's tables and the
  GANInverter benchmark) computes ``MSELoss`` on the ``Normalize(0.5, 0.5)`` tensors, i.e. on
  [-1, 1] images at 256x256; :func:`mse` follows it, so its value is **4x the MSE of the same
  images scaled to [0, 1]**. PSNR does not depend on the scale: data range 2 on [-1, 1] equals
  data range 1 on [0, 1]. (GANInverter prints ``10 log10(2 / mse)``, 3.01 dB below this PSNR.)
* **MS-SSIM** is the standard definition: 5 scales with weights (0.0448, 0.2856, 0.3001, 0.2363,
  0.1333), 11x11 Gaussian window of sigma 1.5 over the "valid" region, K1 = 0.01, K2 = 0.03, data
  range 1 on [0, 1] images, contrast-structure terms at every scale and the luminance term at the
  coarsest only, 2x2 average pooling between scales. It is computed per RGB channel and averaged
  over the channels (as ``pytorch-msssim``, which computes it, does). It needs images of at least
  :data:`MS_SSIM_MIN_SIZE` = 161 px (the coarsest scale must still hold the 11 px window);
  :func:`ms_ssim` raises a :class:`~latentlab.errors.LatentlabError` below that rather than
  report a number with fewer scales that no paper could be compared with, and
  :func:`image_metrics` reports ``None`` for it.
* **Resolution.** :func:`image_metrics` first shrinks both images by area averaging to
  ``resolution`` px on the longer side (256 by default, the literature's size), as
  :func:`latentlab.losses.lpips.downsample_area` does, and clamps them to [-1, 1] (what an image
  file holds); there is no uint8 rounding.

Identity: :func:`identity_metrics_dlib` reports dlib's descriptor distance and
:func:`identity_metrics_faceres` the FaceRes embeddings' cosine; dlib's cosine is deliberately
absent (two different people score about 0.94, so it says nothing).

Texture: :func:`texture_metrics` compares the skin of the two cheeks at full resolution, where the
256 px metrics (and the projector's loss) cannot see: the high-frequency energy of the
reconstruction over the photo's (``texture_hf_ratio``, 1 = as much fine detail as the photo) and
the largest ratio of their high-pass power spectra (``texture_peak_ratio``: a periodic pattern the
photo lacks stands out as a peak far above 1).

For reference only, :func:`loss_lpips_vgg` exposes the projector's own loss network; a metrics
dict names it ``lpips_vgg_loss_net`` so it is never mistaken for an independent score.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import torch

from .errors import LatentlabError
from .losses.lpips import check_images

#: Default resolution (longer side, px) at which :func:`image_metrics` compares images.
METRIC_RESOLUTION = 256
#: MS-SSIM scale weights (Wang et al. 2003), finest scale first.
MS_SSIM_WEIGHTS: tuple[float, ...] = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
MS_SSIM_WIN_SIZE = 11
MS_SSIM_SIGMA = 1.5
MS_SSIM_K: tuple[float, float] = (0.01, 0.03)
#: Smallest image side MS-SSIM accepts: after 4 halvings the 11 px window must fit,
#: (11 - 1) * 2**4 + 1.
MS_SSIM_MIN_SIZE = (MS_SSIM_WIN_SIZE - 1) * 2 ** (len(MS_SSIM_WEIGHTS) - 1) + 1
#: dlib's rule: descriptor distance below this means "same person".
DLIB_SAME_PERSON_DISTANCE = 0.6


# --------------------------------------------------------------------------------------------
# input checks


def _check_pair(x: torch.Tensor, y: torch.Tensor, fn: str) -> None:
    """x [N, 3, H, W], y [N or 1, 3, H, W], float, same H, W and device."""
    for name, t in (("x", x), ("y", y)):
        check_images(t, name, fn, min_size=1)
    if x.shape[2:] != y.shape[2:]:
        raise LatentlabError(f"{fn}: x is {x.shape[2]}x{x.shape[3]} but y is {y.shape[2]}x{y.shape[3]}")
    if y.shape[0] not in (1, x.shape[0]):
        raise LatentlabError(f"{fn}: y has batch {y.shape[0]}; expected 1 or {x.shape[0]}")
    if x.device != y.device:
        raise LatentlabError(f"{fn}: x is on {x.device} but y is on {y.device}")


def _wide(t: torch.Tensor) -> torch.Tensor:
    """float64 where the device has it (MPS has not: float32 there)."""
    return t.to(torch.float32 if t.device.type == "mps" else torch.float64)


# --------------------------------------------------------------------------------------------
# pixel metrics


def mse(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error per image of x [N, 3, H, W] and y [N or 1, 3, H, W], both in [-1, 1].

    Computed on the [-1, 1] values, the GAN-inversion literature's convention (pSp / e4e /
    ReStyle / HyperStyle / GANInverter): 4x the MSE of the images scaled to [0, 1]. Range [0, 4].
    Returns float32 [N] (accumulated in float64).
    """
    _check_pair(x, y, "mse")
    with torch.autocast(device_type=x.device.type, enabled=False):
        return (_wide(x) - _wide(y)).square().mean(dim=(1, 2, 3)).float()


def psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image of x [N, 3, H, W], y [N or 1, 3, H, W] in [-1, 1].

    ``10 log10(1 / MSE_[0,1])`` with data range 1 on the images scaled to [0, 1], which equals
    ``10 log10(4 / mse(x, y))`` (data range 2 on [-1, 1]). Identical images give +inf.
    Returns float32 [N].
    """
    _check_pair(x, y, "psnr")
    with torch.autocast(device_type=x.device.type, enabled=False):
        m = (_wide(x) - _wide(y)).square().mean(dim=(1, 2, 3))
        return (10.0 * torch.log10(4.0 / m)).float()


def ms_ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """MS-SSIM per image of x [N, 3, H, W] and y [N or 1, 3, H, W], both in [-1, 1] -> float32 [N].

    The standard 5-scale definition (see the module docstring) on the images scaled to [0, 1]
    (data range 1), per RGB channel, averaged over channels; 1 for identical images, lower is
    worse (in [0, 1]: negative contrast-structure terms are clipped to 0 before the weighted
    product, as the reference implementations do). Computed in float64 (float32 on MPS) with
    any autocast switched off, by ``pytorch_msssim.ms_ssim``. Needs H, W >= 161
    (:data:`MS_SSIM_MIN_SIZE`); smaller images raise :class:`LatentlabError`.
    """
    _check_pair(x, y, "ms_ssim")
    if min(x.shape[2:]) < MS_SSIM_MIN_SIZE:
        raise LatentlabError(
            f"ms_ssim: images are {x.shape[2]}x{x.shape[3]}; MS-SSIM needs at least {MS_SSIM_MIN_SIZE} px "
            f"(5 scales with an {MS_SSIM_WIN_SIZE} px window)"
        )
    try:
        from pytorch_msssim import ms_ssim as _library_ms_ssim
    except ImportError:
        raise LatentlabError("ms_ssim needs pytorch-msssim: pip install pytorch-msssim") from None
    with torch.autocast(device_type=x.device.type, enabled=False):
        a = (_wide(x) + 1) / 2
        b = (_wide(y) + 1) / 2
        if b.shape[0] != a.shape[0]:
            b = b.expand_as(a)
        val = _library_ms_ssim(
            a, b, data_range=1.0, size_average=False, win_size=MS_SSIM_WIN_SIZE,
            win_sigma=MS_SSIM_SIGMA, weights=list(MS_SSIM_WEIGHTS), K=MS_SSIM_K,
        )
    return val.float()


# --------------------------------------------------------------------------------------------
# perceptual metrics (cached networks, one per device)

_models: dict[tuple[str, str], torch.nn.Module] = {}
_models_lock = threading.Lock()


def _cached_model(kind: str, device: torch.device) -> torch.nn.Module:
    key = (kind, str(device))
    with _models_lock:
        model = _models.get(key)
        if model is None:
            if kind == "alex":
                from .losses.lpips_alex import LPIPSAlex

                model = LPIPSAlex()
            else:
                from .losses.lpips import LPIPS

                model = LPIPS()
            model = model.to(device).eval()
            _models[key] = model
    return model


def loss_network(device: "torch.device | str") -> torch.nn.Module:
    """The projector's loss network (:class:`latentlab.losses.LPIPS`, VGG16) on ``device``, loaded
    once per device and shared by inversion and :func:`loss_lpips_vgg`."""
    return _cached_model("vgg", torch.device(device))


def lpips_alex(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """LPIPS (shift-tolerant AlexNet, ST-LPIPS weights) of x [N, 3, H, W] and y [N or 1, 3, H, W].

    Images in [-1, 1], H, W >= 21 (256 is the usual size). Returns float32 [N], lower is closer:
    0 for identical images; at 256 px, e.g., 0.04 for an FFHQ face against itself shifted by
    3 px and 0.76 for two different FFHQ faces.
    The network (:class:`latentlab.losses.lpips_alex.LPIPSAlex`) is loaded once per device and
    always runs in float32, autocast or not.
    """
    _check_pair(x, y, "lpips_alex")
    return _cached_model("alex", x.device)(x, y)


def loss_lpips_vgg(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The projector's own loss network, the shift-tolerant VGG16 LPIPS -> float32 [N].

    **Not an independent metric**: projection minimises exactly this, so it flatters projection
    results. For reference only (metrics dicts call it ``lpips_vgg_loss_net``). x [N, 3, H, W],
    y [N or 1, 3, H, W] in [-1, 1], H, W >= 32.
    """
    _check_pair(x, y, "loss_lpips_vgg")
    with torch.autocast(device_type=x.device.type, enabled=False):
        return _cached_model("vgg", x.device)(x.float(), y.float())


# --------------------------------------------------------------------------------------------
# everything at once


def image_metrics(
    recon: torch.Tensor,
    target: torch.Tensor,
    *,
    resolution: int = METRIC_RESOLUTION,
    include_loss_net: bool = False,
) -> list[dict[str, Any]]:
    """PSNR, MSE, MS-SSIM and LPIPS-Alex of each reconstruction against its target.

    recon: [N, 3, H, W] and target: [N or 1, 3, H', W'], values in [-1, 1], on one device. Both
    are area-downsampled to ``resolution`` px on the longer side (images already that small are
    kept) and clamped to [-1, 1]; they must then have the same size. Returns one dict per image
    with exactly the keys

    * ``psnr`` (float, dB, data range 1 on [0, 1]; +inf for identical images),
    * ``mse`` (float, on [-1, 1] values),
    * ``ms_ssim`` (float, or ``None`` when the images are smaller than 161 px at the metric
      resolution),
    * ``lpips_alex`` (float, or ``None`` when smaller than 21 px),
    * ``metric_resolution`` (int, the longer side of the images the metrics were computed on),

    plus ``lpips_vgg_loss_net`` (the projector's own loss network, reference only) when
    ``include_loss_net`` is true. Runs without gradients.
    """
    from .losses.lpips import downsample_area
    from .losses.lpips_alex import MIN_SIZE as LPIPS_ALEX_MIN_SIZE

    _check_pair_shapes_only(recon, target)
    if not isinstance(resolution, int) or resolution < 1:
        raise LatentlabError(f"image_metrics: resolution must be a positive int, got {resolution!r}")
    with torch.no_grad():
        r = downsample_area(recon.float(), resolution).clamp(-1, 1)
        t = downsample_area(target.float(), resolution).clamp(-1, 1)
        if r.shape[2:] != t.shape[2:]:
            raise LatentlabError(
                f"image_metrics: at resolution {resolution} the reconstruction is "
                f"{r.shape[2]}x{r.shape[3]} but the target is {t.shape[2]}x{t.shape[3]}"
            )
        n = r.shape[0]
        side = min(r.shape[2:])
        values: dict[str, list[float | None]] = {
            "psnr": psnr(r, t).tolist(),
            "mse": mse(r, t).tolist(),
            "ms_ssim": ms_ssim(r, t).tolist() if side >= MS_SSIM_MIN_SIZE else [None] * n,
            "lpips_alex": lpips_alex(r, t).tolist() if side >= LPIPS_ALEX_MIN_SIZE else [None] * n,
        }
        if include_loss_net:
            values["lpips_vgg_loss_net"] = loss_lpips_vgg(r, t).tolist() if side >= 32 else [None] * n
    res = int(max(r.shape[2:]))
    out = []
    for i in range(n):
        d: dict[str, Any] = {k: v[i] for k, v in values.items()}
        d["metric_resolution"] = res
        out.append(d)
    return out


def _check_pair_shapes_only(recon: torch.Tensor, target: torch.Tensor) -> None:
    """recon [N, 3, H, W] and target [N or 1, 3, H', W'] (sizes may differ before downsampling)."""
    for name, t in (("recon", recon), ("target", target)):
        check_images(t, name, "image_metrics", min_size=1)
    if target.shape[0] not in (1, recon.shape[0]):
        raise LatentlabError(f"image_metrics: target has batch {target.shape[0]}; expected 1 or {recon.shape[0]}")
    if recon.device != target.device:
        raise LatentlabError(f"image_metrics: recon is on {recon.device} but target is on {target.device}")


# --------------------------------------------------------------------------------------------
# identity


def identity_metrics_dlib(target_uint8: np.ndarray, recon_uint8: np.ndarray) -> dict[str, Any]:
    """dlib face-recognition distance between the largest face of each image.

    target_uint8, recon_uint8: uint8 RGB arrays [H, W, 3] (any size; the face is detected in each
    image on its own, so a reconstruction that no longer looks like a face is not measured at the
    target's landmarks). Returns

    * ``dlib_distance``: euclidean distance of the two 128-d descriptors (float; dlib's faces of
      one person are usually below 0.6), or ``None`` when either image has no detectable face;
    * ``dlib_same_person``: ``dlib_distance < 0.6`` (bool), or ``None`` likewise.

    No cosine: for dlib's descriptors it is uninformative (different people score ~0.94).
    """
    from .faces.identity import compare_embeddings, face_embedding
    from .faces.landmarks import NoFaceError

    for name, a in (("target_uint8", target_uint8), ("recon_uint8", recon_uint8)):
        arr = np.asarray(a)
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
            raise LatentlabError(
                f"identity_metrics_dlib: {name} must be uint8 RGB [H, W, 3], got {arr.dtype} {list(arr.shape)}"
            )
    try:
        e_target = face_embedding(np.ascontiguousarray(target_uint8))
        e_recon = face_embedding(np.ascontiguousarray(recon_uint8))
    except NoFaceError:
        return {"dlib_distance": None, "dlib_same_person": None}
    dist = compare_embeddings(e_target, e_recon).distance
    return {"dlib_distance": dist, "dlib_same_person": bool(dist < DLIB_SAME_PERSON_DISTANCE)}


def identity_metrics_faceres(target_uint8: np.ndarray, recon_uint8: np.ndarray) -> dict[str, Any]:
    """ID cosine: FaceRes identity embeddings (:mod:`latentlab.faces.faceres`, HSE's MobileNet face
    descriptor, neither dlib's nor the projector's network) of the largest face of each image.

    Each image's face is located by its own dlib landmarks and cropped FaceRes's way. Returns
    ``id_cosine`` (float in [-1, 1]; different people score 0.38 on average) and ``id_same_person``
    (``id_cosine > faceres.SAME_PERSON_COSINE``, the equal-error threshold measured on
    ../shared/photos), or ``None`` values when either image has no detectable face.
    """
    import torch

    from .faces.faceres import SAME_PERSON_COSINE, identity_embedding_faceres
    from .faces.landmarks import NoFaceError, detect_landmarks
    from .imageio import image_to_tensor

    embs = []
    for name, a in (("target_uint8", target_uint8), ("recon_uint8", recon_uint8)):
        arr = np.asarray(a)
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
            raise LatentlabError(f"identity_metrics_faceres: {name} must be uint8 RGB [H, W, 3], got "
                                 f"{arr.dtype} {list(arr.shape)}")
        try:
            face = detect_landmarks(np.ascontiguousarray(arr), source=name)
        except NoFaceError:
            return {"id_cosine": None, "id_same_person": None}
        with torch.no_grad():
            embs.append(identity_embedding_faceres(image_to_tensor(arr), face.landmarks[None].astype(np.float64)))
    cos = float((embs[0] * embs[1]).sum())
    return {"id_cosine": cos, "id_same_person": bool(cos > SAME_PERSON_COSINE)}


#: Side of the square skin patches of :func:`texture_metrics`, in pixels of a 1024 px aligned face
#: (scaled with the image).
TEXTURE_PATCH = 64
#: Gaussian sigma (pixels at 1024 px, scaled likewise) of the blur whose residual is the high-pass band.
TEXTURE_SIGMA = 1.5


def texture_metrics(target_uint8: np.ndarray, recon_uint8: np.ndarray,
                    landmarks: np.ndarray | None = None) -> dict[str, Any]:
    """Fine texture of the reconstruction against the photo, on the skin of both cheeks.

    target_uint8, recon_uint8: aligned uint8 RGB [H, W, 3] of the same size, at full resolution.
    landmarks: the photo's 68 dlib points [68, 2] (default: detected). Each cheek patch (side
    :data:`TEXTURE_PATCH` x H / 1024, centred midway between jaw point 2 / 14 and nose point 31 /
    35) is taken in grey, its high-pass band is the patch minus its Gaussian blur
    (:data:`TEXTURE_SIGMA`), and its power spectrum is that band's |FFT|^2 under a Hann window.
    Returns ``texture_hf_ratio``: mean squared high-pass of the reconstruction over the photo's;
    ``texture_peak_ratio``: how far the reconstruction's spectrum peaks above the photo's, as
    max_f P_recon(f) / R(|f|) over max_f P_photo(f) / R(|f|), where P are the power spectra averaged
    over the patches and over 3 x 3 neighbouring frequencies, R(|f|) is the photo's mean power on
    the ring of f's distance from the origin, and f runs over 1/8 cycle per pixel and above (1: no
    sharper peak than the photo's own; a periodic pattern the photo lacks scores far above 1).
    ``None`` values when the photo has no detectable face or the patches do not fit.
    """
    import cv2

    none = {"texture_hf_ratio": None, "texture_peak_ratio": None}
    a, b = np.asarray(target_uint8), np.asarray(recon_uint8)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3 or a.shape != b.shape or b.dtype != np.uint8:
        raise LatentlabError(f"texture_metrics: two uint8 RGB images [H, W, 3] of one size needed, got "
                             f"{a.dtype} {list(a.shape)} and {b.dtype} {list(b.shape)}")
    if landmarks is None:
        from .faces.landmarks import NoFaceError, detect_landmarks

        try:
            landmarks = detect_landmarks(np.ascontiguousarray(a), source="photo").landmarks
        except NoFaceError:
            return none
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (68, 2) or not np.isfinite(lm).all():
        raise LatentlabError(f"texture_metrics: landmarks must be 68 finite points [68, 2], got {list(lm.shape)}")
    H, W = a.shape[:2]
    side = int(round(TEXTURE_PATCH * H / 1024))
    if side < 16:
        return none
    sigma = TEXTURE_SIGMA * H / 1024
    luma = np.array([0.299, 0.587, 0.114])
    grey = [x.astype(np.float64) @ luma for x in (a, b)]
    window = np.outer(np.hanning(side), np.hanning(side))
    energy = [0.0, 0.0]
    power = [np.zeros((side, side)), np.zeros((side, side))]
    used = 0
    for jaw, nose in ((2, 31), (14, 35)):
        cx, cy = (lm[jaw] + lm[nose]) / 2
        x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
        if x0 < 0 or y0 < 0 or x0 + side > W or y0 + side > H:
            continue
        used += 1
        for k in range(2):
            patch = grey[k][y0:y0 + side, x0:x0 + side]
            high = patch - cv2.GaussianBlur(patch, (0, 0), sigma, borderType=cv2.BORDER_REFLECT_101)
            energy[k] += float(np.mean(high ** 2))
            power[k] += np.abs(np.fft.fft2(high * window)) ** 2
    if not used:
        return none
    smooth = [sum(np.roll(p, (dy, dx), axis=(0, 1)) for dy in (-1, 0, 1) for dx in (-1, 0, 1)) / 9 for p in power]
    f = np.fft.fftfreq(side)
    radius = np.hypot(*np.meshgrid(f, f, indexing="ij"))
    ring = np.minimum(np.round(radius * side).astype(int), side // 2)
    band = radius >= 1 / 8
    # the photo's power at each frequency's distance from the origin: what an isotropic texture has
    counts = np.bincount(ring.ravel(), minlength=side // 2 + 1)
    radial = (np.bincount(ring.ravel(), smooth[0].ravel(), minlength=side // 2 + 1) / np.maximum(counts, 1))[ring]
    radial = np.maximum(radial, 1e-12)
    peak_photo = float(np.max(smooth[0][band] / radial[band]))
    peak_recon = float(np.max(smooth[1][band] / radial[band]))
    return {"texture_hf_ratio": energy[1] / max(energy[0], 1e-12), "texture_peak_ratio": peak_recon / peak_photo}


__all__ = [
    "METRIC_RESOLUTION",
    "TEXTURE_PATCH",
    "TEXTURE_SIGMA",
    "texture_metrics",
    "MS_SSIM_MIN_SIZE",
    "MS_SSIM_WEIGHTS",
    "loss_network",
    "DLIB_SAME_PERSON_DISTANCE",
    "mse",
    "psnr",
    "ms_ssim",
    "lpips_alex",
    "loss_lpips_vgg",
    "image_metrics",
    "identity_metrics_dlib",
    "identity_metrics_faceres",
]
