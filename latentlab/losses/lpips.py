"""LPIPS distance with the shift-tolerant (anti-aliased) VGG16 of ST-LPIPS.

The weights are the ``vgg_shift_tolerant.pth`` checkpoint shipped in the PyPI wheel
``stlpips-pytorch==0.0.2`` (Ghildyal & Liu, ECCV 2022; BSD-2-Clause). It holds a complete VGG16
trunk whose pooling layers are anti-aliased ("blur pool", Zhang 2019: a stride-1 2x2 max pool
followed by a reflect-padded [1,2,1]x[1,2,1]/16 blur with stride 2) plus the five LPIPS linear
heads. Only the data file is read; the package's code is never imported.

Distance, for images in [-1, 1]::

    x' = (x - shift) / scale                                   # the LPIPS scaling layer
    f_l = relu output of VGG16 stage l (relu1_2 ... relu5_3)
    d(x, y) = sum_l mean_hw sum_c w_lc * (f_l(x)/|f_l(x)| - f_l(y)/|f_l(y)|)^2

where |.| is the L2 norm over channels at each pixel (plus 1e-10).
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError, LatentlabError

STLPIPS_DIST = "stlpips-pytorch"
STLPIPS_VERSION = "0.0.2"
STLPIPS_VGG_MEMBER = "stlpips_pytorch/weights/vST0.0/vgg_shift_tolerant.pth"

#: VGG16 conv widths per stage; stages 2..5 start with an anti-aliased downsampling.
VGG16_STAGES: tuple[tuple[int, ...], ...] = (
    (64, 64),
    (128, 128),
    (256, 256, 256),
    (512, 512, 512),
    (512, 512, 512),
)
#: The VGG16 activations LPIPS compares, one per stage.
LPIPS_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
#: Smallest image side the trunk accepts (the last blur pool needs a few pixels to reflect).
MIN_SIZE = 32
_EPS = 1e-10


def _binomial_blur_3x3() -> torch.Tensor:
    """The [1, 2, 1] x [1, 2, 1] / 16 blur kernel, shape [1, 1, 3, 3]."""
    a = torch.tensor([1.0, 2.0, 1.0])
    k = a[:, None] * a[None, :]
    return (k / k.sum())[None, None]


class BlurPool(nn.Module):
    """Anti-aliased downsampling: 2x2 max pool (stride 1), reflect pad 2, 3x3 binomial blur, stride 2.

    [N, C, H, W] -> [N, C, H // 2 + 1, W // 2 + 1] (for even H, W).
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("filt", _binomial_blur_3x3(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(x, kernel_size=2, stride=1)
        x = F.pad(x, (2, 2, 2, 2), mode="reflect")
        c = x.shape[1]
        weight = self.filt.to(x.dtype).expand(c, 1, 3, 3).contiguous()
        return F.conv2d(x, weight, stride=2, groups=c)


class _Stage(nn.Module):
    def __init__(self, in_ch: int, widths: tuple[int, ...], downsample: bool) -> None:
        super().__init__()
        self.pool = BlurPool() if downsample else None
        convs = []
        for w in widths:
            convs.append(nn.Conv2d(in_ch, w, kernel_size=3, padding=1))
            in_ch = w
        self.convs = nn.ModuleList(convs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool is not None:
            x = self.pool(x)
        for conv in self.convs:
            x = F.relu(conv(x))
        return x


def unit_normalize(f: torch.Tensor) -> torch.Tensor:
    """Divide each pixel's feature vector by its L2 norm over channels (+1e-10)."""
    return f / (f.square().sum(dim=1, keepdim=True).sqrt() + _EPS)


def default_weights_path(*, quiet: bool = False) -> Path:
    """Local path of ``vgg_shift_tolerant.pth`` (from the installed or cached ``stlpips-pytorch``
    wheel, downloaded with pip once if needed)."""
    from ..assets import pypi_file

    return pypi_file(STLPIPS_DIST, STLPIPS_VERSION, STLPIPS_VGG_MEMBER, quiet=quiet)


def convert_stlpips_state_dict(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map the keys of ST-LPIPS' ``vgg_shift_tolerant.pth`` onto :class:`LPIPS`'s own.

    Checkpoint layout: ``scaling_layer.{shift,scale}``; ``net.slice{1..5}.{i}.{weight,bias}`` for the
    13 convs (``i`` = index in the original flat layer list); ``net.slice{2..5}.{i}.filt`` for the
    blur kernels; ``lin{0..4}.model.1.weight`` [1, C, 1, 1] for the heads.
    """
    for key in ("scaling_layer.shift", "scaling_layer.scale"):
        if key not in sd:
            raise CheckpointError(f"not an ST-LPIPS VGG checkpoint: missing {key}")
    out: dict[str, torch.Tensor] = {
        "shift": sd["scaling_layer.shift"].reshape(1, 3, 1, 1),
        "scale": sd["scaling_layer.scale"].reshape(1, 3, 1, 1),
    }
    blur = _binomial_blur_3x3()
    for stage in range(len(VGG16_STAGES)):
        prefix = f"net.slice{stage + 1}."
        conv_idx: set[int] = set()
        filts: list[str] = []
        for key in sd:
            if not key.startswith(prefix):
                continue
            idx, _, leaf = key[len(prefix):].partition(".")
            if not idx.isdigit():
                raise CheckpointError(f"unexpected tensor {key} in ST-LPIPS checkpoint")
            if leaf in ("weight", "bias"):
                conv_idx.add(int(idx))
            elif leaf == "filt":
                filts.append(key)
            else:
                raise CheckpointError(f"unexpected tensor {key} in ST-LPIPS checkpoint")
        order = sorted(conv_idx)
        if len(order) != len(VGG16_STAGES[stage]):
            raise CheckpointError(
                f"ST-LPIPS checkpoint: stage {stage + 1} has {len(order)} convs, "
                f"expected {len(VGG16_STAGES[stage])}"
            )
        if len(filts) != (1 if stage > 0 else 0):
            raise CheckpointError(f"ST-LPIPS checkpoint: unexpected blur layers in stage {stage + 1}")
        for key in filts:
            # The blur kernels are fixed; the checkpoint must hold the 3x3 binomial we compute.
            f = sd[key]
            if f.ndim != 4 or tuple(f.shape[1:]) != (1, 3, 3) or not torch.allclose(
                f.float(), blur.expand_as(f), atol=1e-7
            ):
                raise CheckpointError(f"ST-LPIPS checkpoint: {key} is not the 3x3 binomial blur")
        for j, idx in enumerate(order):
            for leaf in ("weight", "bias"):
                key = f"{prefix}{idx}.{leaf}"
                if key not in sd:
                    raise CheckpointError(f"ST-LPIPS checkpoint: missing {key}")
                out[f"stages.{stage}.convs.{j}.{leaf}"] = sd[key]
    for layer in range(len(LPIPS_LAYERS)):
        key = f"lin{layer}.model.1.weight"
        if key not in sd:
            raise CheckpointError(f"ST-LPIPS checkpoint: missing {key}")
        out[f"lin.{layer}"] = sd[key].reshape(-1)
    return out


def read_state_dict(path: str, what: str = "LPIPS") -> dict[str, torch.Tensor]:
    """A ``.pth`` state dict read with ``weights_only=True``; one-line CheckpointError otherwise."""
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError) as e:
        raise CheckpointError(f"cannot read {what} weights {path}: {e}") from e
    if not isinstance(sd, dict):
        raise CheckpointError(f"{path} is not a state dict")
    return sd


@functools.lru_cache(maxsize=2)
def _read_checkpoint(path: str) -> dict[str, torch.Tensor]:
    return convert_stlpips_state_dict(read_state_dict(path, "LPIPS"))


def check_images(x: torch.Tensor, name: str, what: str = "LPIPS", min_size: int = MIN_SIZE) -> None:
    """One-line LatentlabError unless x is a float RGB batch [N, 3, H, W] of at least min_size px."""
    if not isinstance(x, torch.Tensor):
        raise LatentlabError(f"{what}: {name} must be a tensor, got {type(x).__name__}")
    if x.ndim != 4 or x.shape[1] != 3:
        raise LatentlabError(f"{what}: {name} must be RGB images [N, 3, H, W], got {list(x.shape)}")
    if not x.is_floating_point():
        raise LatentlabError(f"{what}: {name} must be a float tensor in [-1, 1], got {x.dtype}")
    if min(x.shape[2:]) < min_size:
        raise LatentlabError(f"{what}: {name} is {x.shape[2]}x{x.shape[3]}; need at least {min_size} px")


_check_images = check_images


class LPIPS(nn.Module):
    """LPIPS (VGG16, shift-tolerant ST-LPIPS weights) between RGB images in [-1, 1].

    ``LPIPS()(x, y)`` -> [N] distances for x, y [N, 3, H, W] (y may also be [1, 3, H, W]).
    The network is frozen (``requires_grad=False``) and in eval mode; gradients flow to the
    inputs. Typical input size is 256x256 (see :func:`downsample_area`).
    For projection, compute the target's features once with :meth:`features` and compare many
    images with :meth:`distance_from_features`.
    """

    def __init__(self, weights: str | Path | None = None) -> None:
        """weights: path of ``vgg_shift_tolerant.pth``; default: fetched from the PyPI wheel."""
        super().__init__()
        self.register_buffer("shift", torch.zeros(1, 3, 1, 1))
        self.register_buffer("scale", torch.ones(1, 3, 1, 1))
        stages = []
        in_ch = 3
        for i, widths in enumerate(VGG16_STAGES):
            stages.append(_Stage(in_ch, widths, downsample=i > 0))
            in_ch = widths[-1]
        self.stages = nn.ModuleList(stages)
        self.lin = nn.ParameterList(
            [nn.Parameter(torch.zeros(w[-1])) for w in VGG16_STAGES]
        )
        path = Path(weights) if weights is not None else default_weights_path()
        self.load_state_dict(_read_checkpoint(str(path)))
        self.requires_grad_(False)
        self.eval()

    def _check_device(self, x: torch.Tensor) -> None:
        if x.device != self.shift.device:
            raise LatentlabError(
                f"LPIPS is on {self.shift.device} but the images are on {x.device}; "
                "move one with .to(device)"
            )

    def features(self, y: torch.Tensor) -> list[torch.Tensor]:
        """Unit-normalised VGG16 features of images y [N, 3, H, W] in [-1, 1].

        Returns 5 float32 tensors [N, C_l, H_l, W_l] (relu1_2 ... relu5_3), each divided by its
        per-pixel channel norm: the form :meth:`distance_from_features` expects. Cache them for a
        fixed target.
        """
        _check_images(y, "images")
        self._check_device(y)
        h = (y.to(self.shift.dtype) - self.shift) / self.scale  # computed in the network's dtype
        feats = []
        for stage in self.stages:
            h = stage(h)
            # The distance head runs in float32 even when the convolutions run in bfloat16
            # (autocast): the norms, differences and means lose most of the loss's precision otherwise.
            feats.append(unit_normalize(h.float()))
        return feats

    def distance_from_features(self, x: torch.Tensor, feats_y: list[torch.Tensor]) -> torch.Tensor:
        """LPIPS between images x [N, 3, H, W] in [-1, 1] and cached target features -> [N].

        feats_y comes from :meth:`features` on images of the same H, W; batch N or 1 (broadcast).
        """
        if not isinstance(feats_y, (list, tuple)) or len(feats_y) != len(self.stages):
            raise LatentlabError(f"LPIPS: feats_y must be the list of {len(self.stages)} tensors from features()")
        feats_x = self.features(x)
        total = None
        for fx, fy, w in zip(feats_x, feats_y, self.lin):
            if fy.ndim != 4 or fy.shape[1:] != fx.shape[1:] or fy.shape[0] not in (1, fx.shape[0]):
                raise LatentlabError(
                    f"LPIPS: target features {list(fy.shape)} do not match the images' "
                    f"{list(fx.shape)} (same H, W and batch N or 1 needed)"
                )
            # mean over space of the 1x1 linear head == head applied to the spatial mean
            # (elementwise product and sum rather than ``@``: autocast would run a matmul in bfloat16)
            d = ((fx - fy.float()).square().mean(dim=(2, 3)) * w.float()).sum(dim=1)
            total = d if total is None else total + d
        return total

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """LPIPS distance between x [N, 3, H, W] and y [N or 1, 3, H, W], both in [-1, 1] -> [N]."""
        _check_images(x, "x")
        _check_images(y, "y")
        if y.shape[2:] != x.shape[2:]:
            raise LatentlabError(
                f"LPIPS: x is {x.shape[2]}x{x.shape[3]} but y is {y.shape[2]}x{y.shape[3]}"
            )
        return self.distance_from_features(x, self.features(y))


def downsample_area(images: torch.Tensor, size: int = 256) -> torch.Tensor:
    """Shrink images [N, C, H, W] so the longer side is ``size``, by area averaging.

    This is how NVIDIA's projector feeds 1024 px images to its perceptual loss
    ([N, 3, 1024, 1024] -> [N, 3, 256, 256], each output pixel the mean of a 4x4 block).
    Images already no larger than ``size`` are returned unchanged. Values keep their range.
    """
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        shape = list(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise LatentlabError(f"downsample_area: expected images [N, C, H, W], got {shape}")
    if size < 1:
        raise LatentlabError(f"downsample_area: size must be positive, got {size}")
    h, w = images.shape[2:]
    if max(h, w) <= size:
        return images
    s = size / max(h, w)
    out_hw = (max(1, round(h * s)), max(1, round(w * s)))
    return F.interpolate(images, size=out_hw, mode="area")
