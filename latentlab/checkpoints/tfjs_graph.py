"""Reader for TensorFlow.js graph models (``model.json`` + ``.bin`` weight shards).

The format: ``model.json`` is JSON with ``modelTopology.node`` (a TensorFlow GraphDef as JSON:
each node has ``name``, ``op``, ``input`` names and ``attr`` values) and ``weightsManifest``: a
list of groups, each with ``paths`` (shard files beside the JSON, concatenated in order) and
``weights`` (``name``, ``shape``, ``dtype``, optional ``quantization``) packed back to back, little
endian, in the order listed.

Both files are treated as untrusted: the JSON is parsed as data only (size-capped), every declared
weight size is checked against the shard files' sizes before anything is allocated, dtypes are
allow-listed, shard paths may not leave the JSON's folder, and any problem is one line of
:class:`~latentlab.errors.CheckpointError`. Nothing in the graph is ever executed.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import CheckpointError

MAX_JSON_BYTES = 64 << 20
MAX_WEIGHT_BYTES = 2 << 30
MAX_RANK = 8

# TFJS weight dtype -> (numpy dtype, bytes per element). Strings and complex are not accepted.
_DTYPES: dict[str, tuple[str, int]] = {"float32": ("<f4", 4), "int32": ("<i4", 4),
                                        "bool": ("u1", 1)}
# Quantized storage: dtype in the file -> (numpy dtype, bytes per element).
_QUANT_DTYPES: dict[str, tuple[str, int]] = {"uint8": ("u1", 1), "uint16": ("<u2", 2),
                                              "float16": ("<f2", 2)}


@dataclass(frozen=True)
class TfjsNode:
    """One graph node. ``inputs`` are node names (``^name`` control inputs dropped, ``:k`` kept);
    ``attr`` holds decoded values (see :func:`decode_attr`)."""

    name: str
    op: str
    inputs: tuple[str, ...]
    attr: dict[str, Any] = field(default_factory=dict)


@dataclass
class TfjsGraph:
    """A parsed TFJS graph model: nodes in file order, weights by name, and the JSON's metadata."""

    path: Path
    nodes: list[TfjsNode]
    weights: dict[str, np.ndarray]
    format: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    def node(self, name: str) -> TfjsNode:
        for n in self.nodes:
            if n.name == name:
                return n
        raise CheckpointError(f"{self.path}: no node named {name!r}")

    def ops(self) -> dict[str, int]:
        """How many nodes of each op the graph has."""
        out: dict[str, int] = {}
        for n in self.nodes:
            out[n.op] = out.get(n.op, 0) + 1
        return out


def _fail(path: Path, msg: str) -> CheckpointError:
    return CheckpointError(f"{path}: {msg}")


def decode_attr(value: Any) -> Any:
    """Python value of one TF ``AttrValue`` in JSON form: ``s`` (base64) -> str, ``i`` -> int,
    ``f`` -> float, ``b`` -> bool, ``type`` -> str, ``shape`` -> list of dims, ``list`` -> list of
    those; anything else (``tensor``, ``func``) is returned as the raw dict."""
    if not isinstance(value, dict):
        return value
    if "list" in value:
        lst = value["list"] if isinstance(value["list"], dict) else {}
        for key in ("s", "i", "f", "b", "type", "shape"):
            if key in lst:
                items = lst[key] if isinstance(lst[key], list) else []
                return [decode_attr({key: v}) for v in items]
        return []
    if "s" in value:
        raw = base64.b64decode(str(value["s"]), validate=False)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw
    if "i" in value:
        return int(value["i"])
    if "f" in value:
        return float(value["f"])
    if "b" in value:
        return bool(value["b"])
    if "type" in value:
        return str(value["type"])
    if "shape" in value:
        shape = value["shape"] if isinstance(value["shape"], dict) else {}
        if shape.get("unknownRank"):
            return None
        return [int(d.get("size", -1)) for d in shape.get("dim", []) if isinstance(d, dict)]
    return value


def _read_json(path: Path, max_json_bytes: int) -> dict:
    if not path.is_file():
        raise _fail(path, "no such file")
    size = path.stat().st_size
    if size > max_json_bytes:
        raise _fail(path, f"model JSON is {size} bytes, over the {max_json_bytes}-byte limit")
    try:
        text = path.read_bytes().decode("utf-8")
        doc = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise _fail(path, f"not a valid JSON file ({str(exc).splitlines()[0]})") from None
    if not isinstance(doc, dict):
        raise _fail(path, "not a TFJS model (top level is not a JSON object)")
    return doc


def _parse_nodes(path: Path, topo: Any) -> list[TfjsNode]:
    if not isinstance(topo, dict) or not isinstance(topo.get("node"), list):
        raise _fail(path, "not a TFJS graph model (no modelTopology.node list)")
    nodes: list[TfjsNode] = []
    seen: set[str] = set()
    for i, raw in enumerate(topo["node"]):
        if not isinstance(raw, dict):
            raise _fail(path, f"node {i} is not an object")
        name, op = raw.get("name"), raw.get("op")
        if not isinstance(name, str) or not name or not isinstance(op, str) or not op:
            raise _fail(path, f"node {i} has no name or op")
        if name in seen:
            raise _fail(path, f"duplicate node name {name!r}")
        seen.add(name)
        inputs = raw.get("input", [])
        if not isinstance(inputs, list) or not all(isinstance(s, str) for s in inputs):
            raise _fail(path, f"node {name!r}: 'input' is not a list of names")
        attr_raw = raw.get("attr", {})
        if not isinstance(attr_raw, dict):
            raise _fail(path, f"node {name!r}: 'attr' is not an object")
        try:
            attr = {str(k): decode_attr(v) for k, v in attr_raw.items()}
        except (ValueError, TypeError) as exc:
            raise _fail(path, f"node {name!r}: malformed attr ({exc})") from None
        nodes.append(TfjsNode(name=name, op=op,
                              inputs=tuple(s for s in inputs if not s.startswith("^")), attr=attr))
    return nodes


@dataclass(frozen=True)
class _WeightSpec:
    name: str
    shape: tuple[int, ...]
    dtype: str  # output dtype (float32 / int32 / bool)
    stored: str  # numpy dtype in the file
    nbytes: int
    scale: float | None = None
    minimum: float | None = None


def _weight_spec(path: Path, raw: Any) -> _WeightSpec:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise _fail(path, "weightsManifest entry without a name")
    name = raw["name"]
    shape = raw.get("shape")
    if (not isinstance(shape, list) or len(shape) > MAX_RANK
            or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 2**31
                       for d in shape)):
        raise _fail(path, f"weight {name!r}: bad shape {str(shape)[:60]}")
    dtype = raw.get("dtype")
    if dtype not in _DTYPES:
        raise _fail(path, f"weight {name!r}: dtype {str(dtype)[:30]!r} is not supported "
                          f"(allowed: {', '.join(_DTYPES)})")
    count = math.prod(shape)
    quant = raw.get("quantization")
    if quant is None:
        stored, itemsize = _DTYPES[dtype]
        return _WeightSpec(name, tuple(shape), dtype, stored, count * itemsize)
    if not isinstance(quant, dict) or quant.get("dtype") not in _QUANT_DTYPES:
        qd = quant.get("dtype") if isinstance(quant, dict) else quant
        raise _fail(path, f"weight {name!r}: quantization dtype {str(qd)[:30]!r} is not supported "
                          f"(allowed: {', '.join(_QUANT_DTYPES)})")
    stored, itemsize = _QUANT_DTYPES[quant["dtype"]]
    scale = minimum = None
    if quant["dtype"] != "float16":
        scale, minimum = quant.get("scale"), quant.get("min")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                   for v in (scale, minimum)):
            raise _fail(path, f"weight {name!r}: quantization without finite scale and min")
    elif dtype != "float32":
        raise _fail(path, f"weight {name!r}: float16 quantization of a {dtype} weight")
    return _WeightSpec(name, tuple(shape), dtype, stored, count * itemsize,
                       None if scale is None else float(scale),
                       None if minimum is None else float(minimum))


def _shard_path(path: Path, rel: Any) -> Path:
    if not isinstance(rel, str) or not rel or rel.startswith(("/", "\\")) or "\x00" in rel:
        raise _fail(path, f"bad weight shard path {str(rel)[:80]!r}")
    parts = rel.replace("\\", "/").split("/")
    if any(p in ("", ".", "..") for p in parts) or ":" in parts[0]:
        raise _fail(path, f"weight shard path {rel[:80]!r} leaves the model's folder")
    shard = path.parent.joinpath(*parts)
    if not shard.is_file():
        raise _fail(path, f"weight shard {rel} is missing")
    return shard


def read_tfjs_weights(path: str | Path, manifest: Any, *,
                      max_bytes: int = MAX_WEIGHT_BYTES) -> dict[str, np.ndarray]:
    """Decode ``manifest`` (a ``weightsManifest`` list) with shard paths relative to ``path``'s
    folder into ``name -> array`` (float32 / int32 / bool; quantized weights are dequantized)."""
    path = Path(path)
    if not isinstance(manifest, list):
        raise _fail(path, "weightsManifest is not a list")
    out: dict[str, np.ndarray] = {}
    total = 0
    for g, group in enumerate(manifest):
        if not isinstance(group, dict) or not isinstance(group.get("paths"), list) \
                or not isinstance(group.get("weights"), list):
            raise _fail(path, f"weightsManifest group {g} has no paths/weights lists")
        specs = [_weight_spec(path, w) for w in group["weights"]]
        shards = [_shard_path(path, p) for p in group["paths"]]
        declared = sum(s.nbytes for s in specs)
        actual = sum(s.stat().st_size for s in shards)
        total += declared
        if total > max_bytes:
            raise _fail(path, f"weights declare {total} bytes, over the {max_bytes}-byte limit")
        if declared > actual:
            raise _fail(path, f"weight shards are truncated: {actual} bytes for {declared} "
                              f"declared")
        if declared < actual:
            raise _fail(path, f"weight shards hold {actual} bytes but only {declared} are declared")
        blob = b"".join(s.read_bytes() for s in shards) if shards else b""
        if len(blob) != actual:
            raise _fail(path, "weight shards changed while being read")
        offset = 0
        for spec in specs:
            if spec.name in out:
                raise _fail(path, f"duplicate weight name {spec.name!r}")
            count = spec.nbytes // np.dtype(spec.stored).itemsize
            arr = np.frombuffer(blob, dtype=spec.stored, count=count,
                                offset=offset).reshape(spec.shape)
            offset += spec.nbytes
            if spec.scale is not None:
                arr = (arr.astype(np.float32) * np.float32(spec.scale) + np.float32(spec.minimum))
            if spec.dtype == "float32":
                arr = arr.astype(np.float32, copy=True)
            elif spec.dtype == "int32":
                arr = (np.rint(arr) if arr.dtype.kind == "f" else arr).astype(np.int32)
            else:
                arr = arr.astype(bool)
            out[spec.name] = arr
    return out


def read_tfjs_graph(path: str | Path, *, max_json_bytes: int = MAX_JSON_BYTES,
                    max_weight_bytes: int = MAX_WEIGHT_BYTES) -> TfjsGraph:
    """Parse a TFJS graph model: ``path`` is its ``model.json``; shards are read from its folder.

    Raises :class:`CheckpointError` (one line) for a missing, malformed, truncated, oversized or
    unsupported file.
    """
    path = Path(path)
    doc = _read_json(path, max_json_bytes)
    fmt = doc.get("format", "")
    if fmt not in ("graph-model", "", None):
        raise _fail(path, f"format {str(fmt)[:40]!r} is not a TFJS graph model (layers models "
                          f"are not supported)")
    nodes = _parse_nodes(path, doc.get("modelTopology"))
    weights = read_tfjs_weights(path, doc.get("weightsManifest", []), max_bytes=max_weight_bytes)
    meta = doc.get("userDefinedMetadata")
    return TfjsGraph(path=path, nodes=nodes, weights=weights, format=str(fmt or ""),
                     metadata=meta if isinstance(meta, dict) else {})


__all__ = ["TfjsNode", "TfjsGraph", "decode_attr", "read_tfjs_graph", "read_tfjs_weights"]


class ConstantTaker:
    """Takes a graph's float32 constants by name for a port's layers, strictly.

    ``take(name, shape)`` returns the array after checking it exists, has that shape, is float32 and
    finite, and remembers it; :meth:`check_all_used` then refuses a graph with float32 constants the
    port did not use (a different network under the same names). Errors are one-line
    :class:`CheckpointError` naming ``source`` and the network ``what``.
    """

    def __init__(self, weights: dict[str, np.ndarray], source: str, what: str) -> None:
        self.weights, self.source, self.what = weights, source, what
        self.used: set[str] = set()

    def __call__(self, name: str, shape: Sequence[int]) -> np.ndarray:
        if name not in self.weights:
            raise CheckpointError(f"{self.source}: {self.what} weight {name} is missing")
        arr = np.asarray(self.weights[name])
        if tuple(arr.shape) != tuple(shape) or arr.dtype != np.float32:
            raise CheckpointError(f"{self.source}: {name} is {arr.dtype} {tuple(arr.shape)}, "
                                  f"expected float32 {tuple(shape)}")
        if not np.isfinite(arr).all():
            raise CheckpointError(f"{self.source}: {name} has non-finite values")
        self.used.add(name)
        return arr

    def check_all_used(self) -> None:
        unused = sorted(k for k, v in self.weights.items() if k not in self.used
                        and np.asarray(v).dtype == np.float32)
        if unused:
            raise CheckpointError(f"{self.source}: {len(unused)} graph weight(s) not used by {self.what}, "
                                  f"e.g. {unused[0]}")
