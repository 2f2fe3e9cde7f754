"""An independent NumPy interpreter for TensorFlow.js graph models, used only by tests.

It reads ``model.json`` and its weight shards itself (no latentlab code) and executes the graph
node by node, in float64, driven only by each node's ``op`` and ``attr`` values: NHWC layout,
TensorFlow's SAME / VALID / EXPLICIT padding rules, strides, dilations, and the fused ops that the
TFJS converter produces (``_FusedConv2D``, ``FusedDepthwiseConv2dNative``, ``_FusedMatMul`` with
``BiasAdd`` / ``Relu`` / ``Relu6`` / ``Prelu`` / ``LeakyRelu`` / ``Elu`` / ``FusedBatchNorm``), and the
elementwise / reduction ops of Keras MobileNet and MXNet-converted graphs (``Softmax``, ``Mean``,
explicit ``Pad`` + VALID convolutions).
Unknown ops raise ``NotImplementedError`` naming the op, so a new graph never runs half-executed.

It exists to check latentlab's hand-written PyTorch ports against an execution of the graph
that shares no code and no layer-structure assumptions with them.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any, Callable

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

_FILE_DTYPES = {"float32": "<f4", "int32": "<i4", "bool": "u1"}
_QUANT = {"uint8": "u1", "uint16": "<u2", "float16": "<f2"}


def load_model(json_path: str | Path) -> tuple[dict, dict[str, np.ndarray]]:
    """``(model_json, weights)``: the parsed JSON and its weights by name (float64 / int64)."""
    json_path = Path(json_path)
    doc = json.loads(json_path.read_text())
    weights: dict[str, np.ndarray] = {}
    for group in doc.get("weightsManifest", []):
        blob = b"".join((json_path.parent / p).read_bytes() for p in group["paths"])
        pos = 0
        for w in group["weights"]:
            quant = w.get("quantization")
            stored = _QUANT[quant["dtype"]] if quant else _FILE_DTYPES[w["dtype"]]
            count = int(np.prod(w["shape"], dtype=np.int64))
            arr = np.frombuffer(blob, dtype=stored, count=count, offset=pos)
            pos += count * np.dtype(stored).itemsize
            if quant and quant["dtype"] != "float16":
                arr = arr.astype(np.float64) * quant["scale"] + quant["min"]
            arr = arr.reshape(w["shape"])
            weights[w["name"]] = arr.astype(np.int64 if w["dtype"] == "int32" else np.float64)
        assert pos == len(blob), f"{json_path}: weights use {pos} of {len(blob)} shard bytes"
    return doc, weights


def _attr(node: dict, key: str, default: Any = None) -> Any:
    raw = node.get("attr", {}).get(key)
    if raw is None:
        return default
    if "list" in raw:
        lst = raw["list"]
        if "i" in lst:
            return [int(v) for v in lst["i"]]
        if "s" in lst:
            return [base64.b64decode(v).decode() for v in lst["s"]]
        if "f" in lst:
            return [float(v) for v in lst["f"]]
        return []
    if "s" in raw:
        return base64.b64decode(raw["s"]).decode()
    if "i" in raw:
        return int(raw["i"])
    if "f" in raw:
        return float(raw["f"])
    if "b" in raw:
        return bool(raw["b"])
    return raw


def _pads(node: dict, in_hw: tuple[int, int], k_hw: tuple[int, int], strides: list[int],
          dil: list[int]) -> list[tuple[int, int]]:
    """Per spatial dim (before, after) padding, following TensorFlow's rules."""
    padding = _attr(node, "padding", "VALID")
    if padding == "VALID":
        return [(0, 0), (0, 0)]
    if padding == "EXPLICIT":
        ep = _attr(node, "explicit_paddings", [])  # NHWC: [n0, n1, h0, h1, w0, w1, c0, c1]
        return [(ep[2], ep[3]), (ep[4], ep[5])]
    if padding != "SAME":
        raise NotImplementedError(f"padding {padding}")
    out = []
    for size, k, s, d in zip(in_hw, k_hw, strides, dil):
        eff = (k - 1) * d + 1
        n_out = -(-size // s)
        total = max((n_out - 1) * s + eff - size, 0)
        out.append((total // 2, total - total // 2))
    return out


def _windows(node: dict, x: np.ndarray, kh: int, kw: int) -> np.ndarray:
    """Patches ``[N, Ho, Wo, C, kh, kw]`` of NHWC ``x`` for the node's padding/strides/dilations."""
    if _attr(node, "data_format", "NHWC") != "NHWC":
        raise NotImplementedError("data_format other than NHWC")
    strides = _attr(node, "strides", [1, 1, 1, 1])[1:3]
    dil = _attr(node, "dilations", [1, 1, 1, 1])[1:3]
    (pt, pb), (pl, pr) = _pads(node, x.shape[1:3], (kh, kw), strides, dil)
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    eh, ew = (kh - 1) * dil[0] + 1, (kw - 1) * dil[1] + 1
    win = sliding_window_view(xp, (eh, ew), axis=(1, 2))  # [N, H', W', C, eh, ew]
    return win[:, ::strides[0], ::strides[1], :, ::dil[0], ::dil[1]]


def conv2d(node: dict, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """TF Conv2D: x NHWC, w [kh, kw, Cin, Cout]."""
    win = _windows(node, x, w.shape[0], w.shape[1])
    return np.einsum("nhwcij,ijco->nhwo", win, w, optimize=True)


def depthwise_conv2d(node: dict, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """TF DepthwiseConv2dNative: x NHWC, w [kh, kw, C, M] -> C*M channels (c-major)."""
    win = _windows(node, x, w.shape[0], w.shape[1])
    out = np.einsum("nhwcij,ijcm->nhwcm", win, w, optimize=True)
    return out.reshape(*out.shape[:3], -1)


def _apply_fused(node: dict, y: np.ndarray, extra: list[np.ndarray]) -> np.ndarray:
    """Apply a fused node's ``fused_ops`` list to the conv/matmul result ``y``."""
    ops = _attr(node, "fused_ops", [])
    args = list(extra)
    for op in ops:
        if op == "BiasAdd":
            y = y + args.pop(0)
        elif op == "FusedBatchNorm":
            scale, offset, mean, var = (args.pop(0) for _ in range(4))
            eps = _attr(node, "epsilon", 0.0)
            y = (y - mean) / np.sqrt(var + eps) * scale + offset
        elif op == "Relu":
            y = np.maximum(y, 0.0)
        elif op == "Relu6":
            y = np.clip(y, 0.0, 6.0)
        elif op == "Elu":
            y = np.where(y > 0, y, np.expm1(np.minimum(y, 0.0)))
        elif op == "LeakyRelu":
            y = np.where(y > 0, y, y * _attr(node, "leakyrelu_alpha", 0.2))
        elif op == "Prelu":
            alpha = args.pop(0)
            y = np.where(y > 0, y, y * alpha)
        elif op == "Sigmoid":
            y = 1.0 / (1.0 + np.exp(-y))
        elif op == "Tanh":
            y = np.tanh(y)
        else:
            raise NotImplementedError(f"fused op {op} in {node['name']}")
    return y


def _softmax(x: np.ndarray) -> np.ndarray:
    """TF Softmax over the last axis."""
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _reduce_axes(x: np.ndarray, axes: np.ndarray) -> tuple[int, ...]:
    return tuple(int(a) % x.ndim for a in np.atleast_1d(axes))


def _matmul(node: dict, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if _attr(node, "transpose_a", False):
        a = a.T
    if _attr(node, "transpose_b", False):
        b = b.T
    return a @ b


def _squeeze(node: dict, x: np.ndarray) -> np.ndarray:
    dims = _attr(node, "squeeze_dims", None) or _attr(node, "axis", None)
    if not dims:
        return np.squeeze(x)
    return np.squeeze(x, axis=tuple(int(d) % x.ndim for d in dims))


_ELEMENTWISE: dict[str, Callable[..., np.ndarray]] = {
    "Add": np.add, "AddV2": np.add, "Sub": np.subtract, "Mul": np.multiply,
    "RealDiv": np.divide, "Div": np.divide, "Maximum": np.maximum, "Minimum": np.minimum,
    "SquaredDifference": lambda a, b: (a - b) ** 2, "Pow": np.power,
    "Abs": np.abs, "Neg": np.negative, "Square": np.square, "Sqrt": np.sqrt,
    "Rsqrt": lambda a: 1.0 / np.sqrt(a), "Exp": np.exp, "Log": np.log,
    "Relu": lambda a: np.maximum(a, 0.0), "Relu6": lambda a: np.clip(a, 0.0, 6.0),
    "Sigmoid": lambda a: 1.0 / (1.0 + np.exp(-a)), "Tanh": np.tanh,
    "Identity": lambda a: a, "StopGradient": lambda a: a,
    "Prelu": lambda a, alpha: np.where(a > 0, a, a * alpha),
    "Softmax": lambda a: _softmax(a),
}


def run_node(node: dict, args: list[np.ndarray]) -> np.ndarray:
    """Execute one node on its evaluated inputs."""
    op = node["op"]
    if op in _ELEMENTWISE:
        return _ELEMENTWISE[op](*args)
    if op == "AddN":
        return np.sum(np.stack(args), axis=0)
    if op == "Conv2D":
        return conv2d(node, args[0], args[1])
    if op == "DepthwiseConv2dNative":
        return depthwise_conv2d(node, args[0], args[1])
    if op == "_FusedConv2D":
        return _apply_fused(node, conv2d(node, args[0], args[1]), args[2:])
    if op in ("FusedDepthwiseConv2dNative", "_FusedDepthwiseConv2dNative"):
        return _apply_fused(node, depthwise_conv2d(node, args[0], args[1]), args[2:])
    if op == "BiasAdd":
        return args[0] + args[1]
    if op == "MatMul":
        return _matmul(node, args[0], args[1])
    if op == "_FusedMatMul":
        return _apply_fused(node, _matmul(node, args[0], args[1]), args[2:])
    if op in ("Sum", "Mean", "Max", "Min", "Prod"):
        fn = {"Sum": np.sum, "Mean": np.mean, "Max": np.max, "Min": np.min, "Prod": np.prod}[op]
        return fn(args[0], axis=_reduce_axes(args[0], args[1]),
                  keepdims=bool(_attr(node, "keep_dims", False)))
    if op == "Squeeze":
        return _squeeze(node, args[0])
    if op == "Reshape":
        return args[0].reshape([int(v) for v in np.atleast_1d(args[1])])
    if op == "ExpandDims":
        return np.expand_dims(args[0], int(args[1]))
    if op == "Transpose":
        return np.transpose(args[0], [int(v) for v in args[1]])
    if op == "Pad":
        return np.pad(args[0], [(int(a), int(b)) for a, b in args[1]])
    if op == "ConcatV2":
        return np.concatenate(args[:-1], axis=int(args[-1]))
    raise NotImplementedError(f"op {op} ({node['name']}) is not in the NumPy reference")


def execute(doc: dict, weights: dict[str, np.ndarray], feeds: dict[str, np.ndarray],
            outputs: list[str] | None = None) -> dict[str, np.ndarray]:
    """Run the graph of ``doc`` on ``feeds`` (placeholder name -> NHWC array); returns the values
    of ``outputs`` (default: nodes that no other node consumes), computed in float64."""
    nodes = {n["name"]: n for n in doc["modelTopology"]["node"]}

    def src(name: str) -> str:
        return name.split(":")[0].lstrip("^")

    if outputs is None:
        used = {src(i) for n in nodes.values() for i in n.get("input", [])}
        outputs = [name for name, n in nodes.items() if name not in used and n["op"] != "Const"]
    values: dict[str, np.ndarray] = {}
    for name in outputs:  # iterative post-order evaluation
        stack = [(src(name), False)]
        while stack:
            cur, expanded = stack.pop()
            if cur in values:
                continue
            node = nodes[cur]
            ins = [src(i) for i in node.get("input", []) if not i.startswith("^")]
            if not expanded:
                stack.append((cur, True))
                stack.extend((i, False) for i in ins if i not in values)
                continue
            if node["op"] == "Const":
                values[cur] = weights[cur]
            elif node["op"] == "Placeholder":
                values[cur] = np.asarray(feeds[cur], dtype=np.float64)
            else:
                values[cur] = run_node(node, [values[i] for i in ins])
    return {name: values[src(name)] for name in outputs}
