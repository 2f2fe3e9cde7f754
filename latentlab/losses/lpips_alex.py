"""LPIPS distance with the shift-tolerant (anti-aliased) AlexNet of ST-LPIPS, used as a metric.

The projector minimises the VGG16 LPIPS of :mod:`latentlab.losses.lpips`; a score from that same
network flatters its own optimum. This module gives an independent perceptual distance: the
AlexNet variant of ST-LPIPS (Ghildyal & Liu, ECCV 2022), whose weights are the
``alex_shift_tolerant.pth`` checkpoint shipped in the PyPI wheel ``stlpips-pytorch==0.0.2``
(BSD-2-Clause): a complete AlexNet trunk, trained with ImageNet-style anti-aliasing, plus the five
LPIPS linear heads. Only the data file is read; the package's code is never imported.

The trunk (input in the LPIPS-scaled space, see below)::

    conv1  3 -> 64, 11x11, stride 1, zero pad 2 -> blur-down -> ReLU                 = f1
    max pool 3x3 stride 1 -> blur-down -> conv2  64 -> 192, 5x5, pad 2 -> ReLU        = f2
    max pool 3x3 stride 1 -> blur-down -> conv3 192 -> 384, 3x3, pad 1 -> ReLU        = f3
    conv4 384 -> 256, 3x3, pad 1 -> ReLU                                              = f4
    conv5 256 -> 256, 3x3, pad 1 -> ReLU                                              = f5

where "blur-down" (the anti-aliased stride-2 step) is a reflect pad of 2 pixels on every side
followed by the [1,2,1] x [1,2,1] / 16 binomial filter applied with stride 2, per channel.
(The original AlexNet strides its first conv by 4 and max-pools with stride 2; here every
stride is moved into a blur.) The trunk's final pool is not part of LPIPS and is left out.

Distance, for images in [-1, 1]::

    x' = (x - shift) / scale                                    # the LPIPS scaling layer
    d(x, y) = sum_l mean_hw sum_c w_lc * (f_l(x')/|f_l(x')| - f_l(y')/|f_l(y')|)^2

with |.| the L2 norm over channels at each pixel (plus 1e-10). Smallest accepted image side:
:data:`MIN_SIZE` (21 px, the last reflect pad needs 3 pixels); 64 px and up is meaningful,
256 px is what LPIPS is usually reported at.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError, LatentlabError
from .lpips import unit_normalize, check_images, read_state_dict

STLPIPS_DIST = "stlpips-pytorch"
STLPIPS_VERSION = "0.0.2"
STLPIPS_ALEX_MEMBER = "stlpips_pytorch/weights/vST0.0/alex_shift_tolerant.pth"

#: (in, out, kernel, padding) of AlexNet's five convolutions (all stride 1 in this variant).
ALEX_CONVS: tuple[tuple[int, int, int, int], ...] = (
    (3, 64, 11, 2),
    (64, 192, 5, 2),
    (192, 384, 3, 1),
    (384, 256, 3, 1),
    (256, 256, 3, 1),
)
#: The checkpoint's key prefix of each conv (``net.slice{s}.{i}``: slice s, index i in the flat
#: layer list of the package's trunk).
_CKPT_CONVS = ("net.slice1.0", "net.slice2.5", "net.slice3.9", "net.slice4.11", "net.slice5.13")
#: The checkpoint's blur-down kernels: key -> number of channels.
_CKPT_BLURS = {"net.slice1.1.filt": 64, "net.slice2.4.filt": 64, "net.slice3.8.filt": 192}
#: The activations LPIPS compares (one per conv, after its ReLU).
LPIPS_LAYERS = ("relu1", "relu2", "relu3", "relu4", "relu5")
#: Smallest image side the trunk accepts: conv1 leaves H - 6, and each later blur-down reflects
#: 2 pixels, which needs at least 3 (21 px in gives 3 px before the third blur-down).
MIN_SIZE = 21


def _binomial_3x3() -> torch.Tensor:
    """[1, 2, 1] x [1, 2, 1] / 16, shape [1, 1, 3, 3]."""
    a = torch.tensor([1.0, 2.0, 1.0])
    k = torch.outer(a, a)
    return (k / k.sum())[None, None]


class BlurDown(nn.Module):
    """Anti-aliased stride-2 step: reflect pad 2 (all sides), 3x3 binomial blur with stride 2.

    [N, C, H, W] -> [N, C, (H + 1) // 2 + 1, (W + 1) // 2 + 1]; needs H, W >= 3.
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("kernel", _binomial_3x3(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        w = self.kernel.to(x.dtype).expand(c, 1, 3, 3)
        return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), w, stride=2, groups=c)


def default_weights_path(*, quiet: bool = False) -> Path:
    """Local path of ``alex_shift_tolerant.pth`` (from the installed or cached ``stlpips-pytorch``
    wheel, downloaded with pip once if needed)."""
    from ..assets import pypi_file

    return pypi_file(STLPIPS_DIST, STLPIPS_VERSION, STLPIPS_ALEX_MEMBER, quiet=quiet)


def convert_stlpips_alex_state_dict(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map the tensors of ST-LPIPS' ``alex_shift_tolerant.pth`` onto :class:`LPIPSAlex`'s keys.

    Checkpoint layout: ``scaling_layer.{shift,scale}`` [1, 3, 1, 1]; the five convs at
    ``net.slice1.0``, ``net.slice2.5``, ``net.slice3.9``, ``net.slice4.11``, ``net.slice5.13``
    (``.weight``, ``.bias``); three fixed blur kernels ``net.slice{1.1,2.4,3.8}.filt`` [C, 1, 3, 3];
    heads ``lin{0..4}.model.1.weight`` [1, C, 1, 1]. Anything else, a missing tensor, a wrong
    shape or a blur that is not the 3x3 binomial raises :class:`CheckpointError`.
    """
    for key in ("scaling_layer.shift", "scaling_layer.scale"):
        if key not in sd:
            raise CheckpointError(f"not an ST-LPIPS AlexNet checkpoint: missing {key}")
    expected: dict[str, tuple[int, ...]] = {
        "scaling_layer.shift": (1, 3, 1, 1),
        "scaling_layer.scale": (1, 3, 1, 1),
    }
    rename: dict[str, str] = {"scaling_layer.shift": "shift", "scaling_layer.scale": "scale"}
    for i, (prefix, (cin, cout, k, _)) in enumerate(zip(_CKPT_CONVS, ALEX_CONVS)):
        expected[f"{prefix}.weight"] = (cout, cin, k, k)
        expected[f"{prefix}.bias"] = (cout,)
        rename[f"{prefix}.weight"] = f"convs.{i}.weight"
        rename[f"{prefix}.bias"] = f"convs.{i}.bias"
        expected[f"lin{i}.model.1.weight"] = (1, cout, 1, 1)
        rename[f"lin{i}.model.1.weight"] = f"lin.{i}"
    for key, c in _CKPT_BLURS.items():
        expected[key] = (c, 1, 3, 3)

    for key in sd:
        if key not in expected:
            raise CheckpointError(f"unexpected tensor {key} in ST-LPIPS AlexNet checkpoint")
    out: dict[str, torch.Tensor] = {}
    for key, shape in expected.items():
        t = sd.get(key)
        if not isinstance(t, torch.Tensor):
            raise CheckpointError(f"ST-LPIPS AlexNet checkpoint: missing {key}")
        if tuple(t.shape) != shape:
            raise CheckpointError(
                f"ST-LPIPS AlexNet checkpoint: {key} has shape {list(t.shape)}, expected {list(shape)}"
            )
        if key in _CKPT_BLURS:
            # The blur kernels are fixed; the checkpoint must hold the binomial we compute.
            if not torch.allclose(t.float(), _binomial_3x3().expand(shape), atol=1e-7):
                raise CheckpointError(f"ST-LPIPS AlexNet checkpoint: {key} is not the 3x3 binomial blur")
            continue
        t = t.float()
        if key.startswith("lin"):
            t = t.reshape(-1)
        out[rename[key]] = t
    return out


@functools.lru_cache(maxsize=2)
def _read_checkpoint(path: str) -> dict[str, torch.Tensor]:
    return convert_stlpips_alex_state_dict(read_state_dict(path, "LPIPS-Alex"))


def _check_images(x: torch.Tensor, name: str) -> None:
    check_images(x, name, "LPIPS-Alex", MIN_SIZE)


class LPIPSAlex(nn.Module):
    """LPIPS (AlexNet, shift-tolerant ST-LPIPS weights) between RGB images in [-1, 1].

    ``LPIPSAlex()(x, y)`` -> float32 [N] distances for x [N, 3, H, W] and y [N or 1, 3, H, W]
    (same H, W >= :data:`MIN_SIZE`; 256x256 is the usual reporting size). Always computed in
    float32: an enclosing ``torch.autocast`` is switched off inside, and float64 inputs are cast
    down (on CUDA, convolutions follow PyTorch's ``torch.backends.cudnn.allow_tf32``, on by
    default, which moves the distance by up to ~1e-3 relative; turn it off for bit-level
    comparisons). The network is frozen and in eval mode; gradients still flow to the inputs. For many
    images against one target, cache the target with :meth:`features` and use
    :meth:`distance_from_features`.
    """

    def __init__(self, weights: str | Path | None = None) -> None:
        """weights: path of ``alex_shift_tolerant.pth``; default: fetched from the PyPI wheel."""
        super().__init__()
        self.register_buffer("shift", torch.zeros(1, 3, 1, 1))
        self.register_buffer("scale", torch.ones(1, 3, 1, 1))
        self.convs = nn.ModuleList(
            nn.Conv2d(cin, cout, kernel_size=k, padding=p) for cin, cout, k, p in ALEX_CONVS
        )
        self.blur = BlurDown()
        self.lin = nn.ParameterList(nn.Parameter(torch.zeros(cout)) for _, cout, _, _ in ALEX_CONVS)
        path = Path(weights) if weights is not None else default_weights_path()
        self.load_state_dict(_read_checkpoint(str(path)))
        self.requires_grad_(False)
        self.eval()

    def _check_device(self, x: torch.Tensor) -> None:
        if x.device != self.shift.device:
            raise LatentlabError(
                f"LPIPS-Alex is on {self.shift.device} but the images are on {x.device}; "
                "move one with .to(device)"
            )

    def _trunk(self, h: torch.Tensor) -> list[torch.Tensor]:
        c1, c2, c3, c4, c5 = self.convs
        f1 = F.relu(self.blur(c1(h)))
        f2 = F.relu(c2(self.blur(F.max_pool2d(f1, kernel_size=3, stride=1))))
        f3 = F.relu(c3(self.blur(F.max_pool2d(f2, kernel_size=3, stride=1))))
        f4 = F.relu(c4(f3))
        f5 = F.relu(c5(f4))
        return [f1, f2, f3, f4, f5]

    def features(self, y: torch.Tensor) -> list[torch.Tensor]:
        """Unit-normalised AlexNet features of images y [N, 3, H, W] in [-1, 1].

        Returns 5 float32 tensors [N, C_l, H_l, W_l] (relu1 ... relu5, C = 64, 192, 384, 256, 256),
        each divided by its per-pixel channel norm, as :meth:`distance_from_features` expects.
        """
        _check_images(y, "images")
        self._check_device(y)
        with torch.autocast(device_type=y.device.type, enabled=False):
            h = (y.float() - self.shift) / self.scale
            return [unit_normalize(f) for f in self._trunk(h)]

    def distance_from_features(self, x: torch.Tensor, feats_y: list[torch.Tensor]) -> torch.Tensor:
        """LPIPS-Alex between images x [N, 3, H, W] in [-1, 1] and cached target features -> [N].

        feats_y comes from :meth:`features` on images of the same H, W; batch N or 1 (broadcast).
        """
        if not isinstance(feats_y, (list, tuple)) or len(feats_y) != len(self.convs):
            raise LatentlabError(
                f"LPIPS-Alex: feats_y must be the list of {len(self.convs)} tensors from features()"
            )
        feats_x = self.features(x)
        with torch.autocast(device_type=x.device.type, enabled=False):
            total = torch.zeros(x.shape[0], device=x.device)
            for fx, fy, w in zip(feats_x, feats_y, self.lin):
                if fy.ndim != 4 or fy.shape[1:] != fx.shape[1:] or fy.shape[0] not in (1, fx.shape[0]):
                    raise LatentlabError(
                        f"LPIPS-Alex: target features {list(fy.shape)} do not match the images' "
                        f"{list(fx.shape)} (same H, W and batch N or 1 needed)"
                    )
                # mean over space of the 1x1 linear head == head applied to the spatial mean
                total = total + ((fx - fy.float()).square().mean(dim=(2, 3)) * w).sum(dim=1)
        return total

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """LPIPS-Alex between x [N, 3, H, W] and y [N or 1, 3, H, W], both in [-1, 1] -> float32 [N]."""
        _check_images(x, "x")
        _check_images(y, "y")
        if y.shape[2:] != x.shape[2:]:
            raise LatentlabError(
                f"LPIPS-Alex: x is {x.shape[2]}x{x.shape[3]} but y is {y.shape[2]}x{y.shape[3]}"
            )
        if y.shape[0] not in (1, x.shape[0]):
            raise LatentlabError(f"LPIPS-Alex: y has batch {y.shape[0]}; expected 1 or {x.shape[0]}")
        return self.distance_from_features(x, self.features(y))


__all__ = [
    "LPIPSAlex",
    "MIN_SIZE",
    "BlurDown",
    "convert_stlpips_alex_state_dict",
    "default_weights_path",
]
