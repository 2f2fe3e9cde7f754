"""A restricted unpickler for NVIDIA's StyleGAN pickles: data only, never code.

NVIDIA's network pickles (stylegan2-ada-pytorch / stylegan3, and the original TensorFlow
StyleGAN2) embed Python source that their own loader ``exec``s. Here every global a stream may
reference is mapped to a small data-only stand-in written for this module; any other global
raises :class:`~latentlab.errors.UnsafePickleError` *before* anything is called, so a crafted
``__reduce__`` payload never runs.

Stand-ins:

* ``torch_utils.persistence._reconstruct_persistent_obj(meta)`` -> :class:`PersistentObject`
  (``class_name`` + the module ``state`` dict; the embedded ``module_src`` is discarded).
* ``dnnlib.tflib.network.Network`` -> :class:`TFNetwork` (its ``__getstate__`` dict).
* ``dnnlib.util.EasyDict`` -> :class:`EasyDict` (a plain dict subclass).
* torch tensor rebuilding -> tensors whose storages are read with ``torch.load(weights_only=True)``.
* numpy ``dtype`` / ``scalar`` / ``_reconstruct`` / ``ndarray`` -> numeric numpy values only
  (object and structured dtypes are refused).

The unpickler is CPython's pure-Python one with four opcodes tightened: BUILD is honoured only on
instances of the stand-ins that define ``__setstate__`` (which sets that instance's own attributes,
never its class), so a stream cannot modify a class or function it was handed by ``find_class``;
NEWOBJ only creates the stand-ins that need it; the extension-registry opcodes (EXT1/2/4, which
bypass ``find_class`` through a process-wide cache) are refused. Sizes are checked against the
bytes present before anything is allocated (:mod:`latentlab.checkpoints.guards`), and the result
is walked with a memo and a depth limit.

:func:`pickle_kind` decides the format from the globals a stream references, without
unpickling it.
"""

from __future__ import annotations

import collections
import io
import math
import pickle
import pickletools
import re
import struct
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import CheckpointError, UnsafePickleError

#: Streams larger than this are refused (the largest real StyleGAN pickles are ~0.4 GB).
MAX_PICKLE_BYTES = 8 * 1024**3
#: Deepest nesting of containers and network objects accepted in a pickle (real ones: ~30).
MAX_NESTING = 200

# The magic number that opens a legacy (pre-zip) ``torch.save`` file.
_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


# ---------------------------------------------------------------------------- stand-ins
class PersistentObject:
    """What ``torch_utils.persistence`` stores for one network object: its class name and state.

    ``state`` is the pickled ``nn.Module.__dict__`` (``_parameters``, ``_buffers``, ``_modules``,
    ``_init_kwargs``, ...). The embedded source code is dropped, never executed.
    """

    def __init__(self, class_name: str, state: dict[str, Any], version: int) -> None:
        self.class_name = class_name
        self.state = state
        self.version = version

    def __repr__(self) -> str:
        return f"PersistentObject({self.class_name!r})"


def _reconstruct_persistent_obj(meta: Any) -> PersistentObject:
    if not isinstance(meta, dict) or meta.get("type") != "class":
        raise UnsafePickleError("persistent object with unexpected metadata (expected type 'class')")
    class_name = meta.get("class_name")
    state = meta.get("state")
    if not isinstance(class_name, str) or not isinstance(state, dict):
        raise UnsafePickleError("persistent object without a class name or state dict")
    return PersistentObject(class_name, state, int(meta.get("version", 0)))


class TFNetwork:
    """Stand-in for ``dnnlib.tflib.network.Network``: keeps the pickled state dict as data.

    ``state`` holds ``name``, ``static_kwargs``, ``components`` (name -> TFNetwork),
    ``build_func_name`` and ``variables`` ([(tf_name, numpy value)]).
    """

    def __init__(self) -> None:
        self.state: dict[str, Any] = {}

    def __setstate__(self, state: Any) -> None:
        """Sets this instance's ``state`` attribute, nothing else."""
        if not isinstance(state, dict):
            raise UnsafePickleError("TensorFlow Network state is not a dict")
        self.state = state

    def __repr__(self) -> str:
        return f"TFNetwork({self.state.get('name')!r})"


class EasyDict(dict):
    """Stand-in for ``dnnlib.util.EasyDict``: a plain dict (attribute access not needed)."""

    def __setstate__(self, state: Any) -> None:  # EasyDict instances carry no extra state
        if state:
            raise UnsafePickleError("EasyDict with unexpected instance state")


_ALLOWED_DTYPE_KINDS = set("biufc")


class _DType:
    """Stand-in for ``numpy.dtype``: numeric dtypes only. ``.dtype`` is the real numpy dtype."""

    def __init__(self, name: Any, align: Any = False, copy: Any = False) -> None:
        if not isinstance(name, str):
            raise UnsafePickleError(f"numpy dtype given by a non-string spec {type(name).__name__}")
        try:
            dt = np.dtype(name)
        except TypeError as exc:
            raise UnsafePickleError(f"bad numpy dtype {name!r} ({exc})") from None
        if dt.kind not in _ALLOWED_DTYPE_KINDS or dt.fields is not None:
            raise UnsafePickleError(f"refused numpy dtype {name!r}: only numeric dtypes are allowed")
        self.dtype = dt

    def __setstate__(self, state: Any) -> None:
        # numpy's dtype state: (version, byteorder, subdescr, names, fields, elsize, alignment, flags)
        if not isinstance(state, tuple) or len(state) < 2:
            raise UnsafePickleError("bad numpy dtype state")
        if len(state) >= 5 and (state[2] is not None or state[3] is not None or state[4] is not None):
            raise UnsafePickleError("refused structured/sub-array numpy dtype")
        order = state[1]
        if order in ("<", ">"):
            self.dtype = self.dtype.newbyteorder(order)
        elif order not in ("|", "="):
            raise UnsafePickleError(f"bad numpy dtype byte order {order!r}")


def _numpy_scalar(dtype: Any, data: Any = None) -> np.generic:
    if not isinstance(dtype, _DType) or not isinstance(data, bytes):
        raise UnsafePickleError("numpy scalar that is not a numeric value")
    if len(data) != dtype.dtype.itemsize:
        raise CheckpointError("corrupt numpy scalar in pickle")
    return np.frombuffer(data, dtype=dtype.dtype)[0].copy()


class _NDArrayType:
    """Stand-in for the ``numpy.ndarray`` class object (only ever an argument of _reconstruct)."""


class NDArrayBuilder:
    """Stand-in for ``numpy.core.multiarray._reconstruct(ndarray, ...)``; BUILD fills ``array``."""

    def __init__(self) -> None:
        self.array: np.ndarray | None = None

    def __setstate__(self, state: Any) -> None:
        # ndarray state: (version, shape, dtype, is_fortran, raw bytes)
        if not isinstance(state, tuple) or len(state) != 5:
            raise UnsafePickleError("bad numpy array state")
        _, shape, dtype, fortran, raw = state
        if not isinstance(dtype, _DType) or not isinstance(raw, (bytes, bytearray)):
            raise UnsafePickleError("numpy array that is not numeric raw data")
        if not isinstance(shape, tuple) or len(shape) > 32 or \
                not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape):
            raise CheckpointError("corrupt numpy array shape in pickle")
        count = math.prod(shape)  # Python ints: a huge shape cannot wrap around to a small count
        if count * dtype.dtype.itemsize != len(raw):
            raise CheckpointError("corrupt numpy array in pickle (size does not match its shape)")
        arr = np.frombuffer(bytes(raw), dtype=dtype.dtype, count=count)
        self.array = arr.reshape(shape, order="F" if fortran else "C").copy()


def _numpy_reconstruct(cls: Any, shape: Any = None, typecode: Any = None) -> NDArrayBuilder:
    if cls is not _NDArrayType:
        raise UnsafePickleError("numpy _reconstruct of something other than ndarray")
    return NDArrayBuilder()


def weights_only_refusal(exc: BaseException) -> str:
    """One-line reason from the error ``torch.load(weights_only=True)`` raises on a refused global."""
    m = re.search(r"GLOBAL ([\w.]+)", str(exc))
    if m:
        return f"refused to load global '{m.group(1)}': not allowed in a StyleGAN checkpoint (the file may be malicious)"
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip() and "weights_only" not in ln]
    return f"refused by torch's weights-only loader ({lines[0] if lines else type(exc).__name__})"


def _load_storage_from_bytes(data: Any) -> Any:
    if not isinstance(data, bytes):
        raise UnsafePickleError("tensor storage that is not a bytes blob")
    from .guards import check_torch_legacy, check_torch_zip

    # The blob's pickle declares its storages' sizes; they must fit in the blob (checked before
    # torch allocates them).
    if data[:2] == b"PK":
        check_torch_zip(io.BytesIO(data), "tensor storage blob")
    else:
        check_torch_legacy(io.BytesIO(data), len(data), "tensor storage blob")
    try:
        return torch.load(io.BytesIO(data), weights_only=True)
    except pickle.UnpicklingError as exc:
        raise UnsafePickleError(f"tensor storage blob: {weights_only_refusal(exc)}") from None
    except (RuntimeError, EOFError, ValueError) as exc:
        raise CheckpointError(f"corrupt tensor storage in pickle ({type(exc).__name__})") from None


def _rebuild_tensor_v2(storage: Any, storage_offset: Any, size: Any, stride: Any,
                       requires_grad: Any = False, backward_hooks: Any = None, metadata: Any = None) -> torch.Tensor:
    if not isinstance(storage, (torch.UntypedStorage, torch.TypedStorage)):
        raise UnsafePickleError("tensor rebuilt from something other than a storage")
    ints = (storage_offset, *size, *stride) if isinstance(size, tuple) and isinstance(stride, tuple) else ()
    if not ints or len(size) != len(stride) or len(size) > 16 or \
            not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in ints):
        raise CheckpointError("corrupt tensor metadata in pickle")
    try:
        t = torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, False, collections.OrderedDict())
    except (RuntimeError, ValueError, TypeError, OverflowError) as exc:
        raise CheckpointError(f"corrupt tensor in pickle ({str(exc).splitlines()[0][:200]})") from None
    from .guards import check_tensor_fits_storage

    return check_tensor_fits_storage(t, f"a tensor of shape {list(size)}", "pickle")


def _rebuild_parameter(data: Any, requires_grad: Any = False, backward_hooks: Any = None) -> torch.Tensor:
    if not isinstance(data, torch.Tensor):
        raise UnsafePickleError("parameter rebuilt from something other than a tensor")
    return data


# (module, name) -> stand-in. numpy 1.x writes numpy.core, numpy 2.x writes numpy._core.
_ALLOWED: dict[tuple[str, str], Any] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("dnnlib.tflib.network", "Network"): TFNetwork,
    ("dnnlib.util", "EasyDict"): EasyDict,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_storage_from_bytes,
    ("numpy", "dtype"): _DType,
    ("numpy", "ndarray"): _NDArrayType,
}
for _np_mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
    _ALLOWED[(_np_mod, "scalar")] = _numpy_scalar
    _ALLOWED[(_np_mod, "_reconstruct")] = _numpy_reconstruct

_KIND_MARKERS = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): "nvidia-pkl",
    ("dnnlib.tflib.network", "Network"): "nvidia-tf-pkl",
}


# Stand-ins whose instances a stream may BUILD (their __setstate__ sets only instance attributes).
_BUILDABLE = (TFNetwork, EasyDict, _DType, NDArrayBuilder)
# Stand-ins a stream may create with NEWOBJ / NEWOBJ_EX (no arguments: as copyreg.__newobj__ does).
_NEWOBJ_CLASSES = (TFNetwork, EasyDict, collections.OrderedDict)


def _describe_target(obj: Any) -> str:
    if isinstance(obj, type):
        return f"the class {obj.__qualname__}"
    if callable(obj):
        return f"the function {getattr(obj, '__qualname__', type(obj).__name__)}"
    return f"a {type(obj).__name__}"


class RestrictedUnpickler(pickle._Unpickler):  # noqa: SLF001 - the pure-Python unpickler, tightened
    """An unpickler whose ``find_class`` only hands out the data-only stand-ins above.

    Built on CPython's pure-Python unpickler so that the opcodes that could modify or reach
    beyond those stand-ins can be tightened: BUILD (only on :data:`_BUILDABLE` instances),
    NEWOBJ / NEWOBJ_EX (only :data:`_NEWOBJ_CLASSES`, without arguments), INST / OBJ (a plain
    call, like REDUCE) and EXT1/2/4 (refused).
    """

    dispatch = dict(pickle._Unpickler.dispatch)  # noqa: SLF001

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except (KeyError, TypeError):
            raise UnsafePickleError(
                f"refused to load global '{module}.{name}': not allowed in a StyleGAN checkpoint "
                "(the file may be malicious)"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("refused a persistent id in a network pickle")

    def _load_build(self) -> None:
        state = self.stack.pop()
        inst = self.stack[-1]
        if type(inst) not in _BUILDABLE:  # exact type: never a class, function or foreign object
            raise UnsafePickleError(f"refused to set the state of {_describe_target(inst)} (pickle BUILD): "
                                    "only network and array data may be filled in")
        inst.__setstate__(state)

    def _new(self, cls: Any, args: Any, kwargs: Any = None) -> None:
        if cls not in _NEWOBJ_CLASSES:
            raise UnsafePickleError(f"refused to create an instance of {_describe_target(cls)} (pickle NEWOBJ)")
        if args != () or kwargs:
            raise UnsafePickleError(f"refused constructor arguments for {cls.__qualname__} (pickle NEWOBJ)")
        self.append(cls())

    def _load_newobj(self) -> None:
        args = self.stack.pop()
        cls = self.stack.pop()
        self._new(cls, args)

    def _load_newobj_ex(self) -> None:
        kwargs = self.stack.pop()
        args = self.stack.pop()
        cls = self.stack.pop()
        self._new(cls, args, kwargs)

    def _instantiate(self, klass: Any, args: Any) -> None:  # INST / OBJ: a call, as REDUCE makes
        self.append(klass(*args))

    def _refuse_extension(self) -> None:
        raise UnsafePickleError("refused a pickle extension code (EXT opcode): not used by StyleGAN pickles")

    dispatch[pickle.BUILD[0]] = _load_build
    dispatch[pickle.NEWOBJ[0]] = _load_newobj
    dispatch[pickle.NEWOBJ_EX[0]] = _load_newobj_ex
    for _op in (pickle.EXT1, pickle.EXT2, pickle.EXT4):
        dispatch[_op[0]] = _refuse_extension
    del _op


def _resolve(obj: Any, _seen: dict[int, Any] | None = None, _depth: int = 0) -> Any:
    """Replace NDArrayBuilder placeholders by their arrays (in place for lists and dicts).

    Memoised (each object is visited once, shared references stay shared) and depth-limited:
    nesting deeper than :data:`MAX_NESTING` raises CheckpointError instead of RecursionError.
    """
    if isinstance(obj, NDArrayBuilder):
        if obj.array is None:
            raise CheckpointError("corrupt numpy array in pickle (no data)")
        return obj.array
    if not isinstance(obj, (dict, list, tuple, PersistentObject, TFNetwork)):
        return obj
    seen = {} if _seen is None else _seen
    if id(obj) in seen:
        return seen[id(obj)]
    if _depth >= MAX_NESTING:
        raise CheckpointError(f"pickle nested more than {MAX_NESTING} levels deep")
    seen[id(obj)] = obj
    if isinstance(obj, dict):
        for k in list(obj.keys()):
            obj[k] = _resolve(obj[k], seen, _depth + 1)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            obj[i] = _resolve(v, seen, _depth + 1)
    elif isinstance(obj, tuple):
        out = tuple(_resolve(v, seen, _depth + 1) for v in obj)
        if any(a is not b for a, b in zip(out, obj)):
            seen[id(obj)] = out
            return out
    else:  # PersistentObject, TFNetwork
        _resolve(obj.state, seen, _depth + 1)
    return obj


class _BoundedReader:
    """File wrapper whose ``read(n)`` never asks for more than what is left in the file.

    A corrupt length field (e.g. BINBYTES8 claiming 2**60 bytes) then gives a short read and
    a "truncated" error instead of a huge allocation.
    """

    def __init__(self, f: Any, size: int) -> None:
        self._f = f
        self._size = size

    def read(self, n: int = -1) -> bytes:
        left = max(self._size - self._f.tell(), 0)
        return self._f.read(left if n is None or n < 0 else min(n, left))

    def readline(self) -> bytes:
        return self._f.readline()

    def tell(self) -> int:
        return self._f.tell()


def _with_path(exc: CheckpointError, path: Path) -> CheckpointError:
    """The same error class, its message prefixed with the file name (once)."""
    msg = str(exc)
    return exc if msg.startswith(f"{path}:") else type(exc)(f"{path}: {msg}")


def _check_size(path: Path) -> int:
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"{path}: empty file")
    if size > MAX_PICKLE_BYTES:
        raise CheckpointError(f"{path}: {size / 1024**3:.1f} GiB is too large for a generator pickle")
    return size


def load_pickle(path: str | Path) -> Any:
    """Unpickle ``path`` with :class:`RestrictedUnpickler`; returns plain data and stand-ins.

    Raises UnsafePickleError for any global outside the allow-list and CheckpointError (one
    line) for a truncated or corrupt stream.
    """
    path = Path(path)
    size = _check_size(path)
    try:
        with open(path, "rb") as f:
            obj = RestrictedUnpickler(_BoundedReader(f, size)).load()
        return _resolve(obj)
    except CheckpointError as exc:
        raise _with_path(exc, path) from None
    except RecursionError:
        raise CheckpointError(f"{path}: corrupt pickle (nested too deeply)") from None
    except MemoryError:
        raise CheckpointError(f"{path}: corrupt pickle (asks for more memory than available)") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, KeyError,
            IndexError, OverflowError, UnicodeDecodeError, struct.error) as exc:
        msg = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path}: truncated or corrupt pickle ({msg})") from None


# ---------------------------------------------------------------------------- sniffing
_STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "STRING",
               "BINSTRING", "SHORT_BINSTRING"}
_NO_PUSH_OPS = {"PROTO", "FRAME", "MEMOIZE", "PUT", "BINPUT", "LONG_BINPUT", "STOP", "MARK"}


def iter_globals(stream: io.BufferedIOBase, max_opcodes: int | None = None):
    """Yield ``(module, name)`` for each global the first pickle in ``stream`` references.

    Walks opcodes with :func:`pickletools.genops` (nothing is executed). Protocol-4
    ``STACK_GLOBAL`` takes its two strings from the stack; they are tracked through the memo.
    """
    memo: dict[int, Any] = {}
    recent: list[Any] = [None, None]  # the last two pushed values (None = not a string)
    n = 0
    for op, arg, _pos in pickletools.genops(stream):
        n += 1
        if max_opcodes is not None and n > max_opcodes:
            return
        name = op.name
        if name == "GLOBAL":
            module, _, attr = str(arg).partition(" ")
            yield module, attr
            recent = [recent[1], None]
        elif name == "STACK_GLOBAL":
            module, attr = recent
            if not (isinstance(module, str) and isinstance(attr, str)):
                raise UnsafePickleError("pickle builds a global name from computed values")
            yield module, attr
            recent = [None, None]
        elif name in _STRING_OPS:
            recent = [recent[1], arg]
        elif name == "MEMOIZE":
            memo[len(memo)] = recent[1]
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[int(arg)] = recent[1]
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            recent = [recent[1], memo.get(int(arg))]
        elif name not in _NO_PUSH_OPS:
            recent = [recent[1], None]
        if name == "STOP":
            return


def _first_pickle_value(path: Path) -> Any:
    """The value of a tiny leading pickle (the torch legacy magic number), else None."""
    with open(path, "rb") as f:
        head = f.read(32)
    # PROTO 2, LONG1 of 10 bytes: how torch's legacy format writes its magic number.
    if head[:4] == b"\x80\x02\x8a\x0a":
        return int.from_bytes(head[4:14], "little")
    return None


def pickle_kind(path: str | Path) -> str:
    """Return ``"nvidia-pkl"`` or ``"nvidia-tf-pkl"`` from the globals the pickle references.

    Legacy (pre-zip) ``torch.save`` files are reported as ``"rosinality-pt"``. Nothing is
    unpickled. Raises UnsafePickleError on a global outside the allow-list and CheckpointError
    for a truncated, corrupt or unrecognised pickle.
    """
    path = Path(path)
    size = _check_size(path)
    if _first_pickle_value(path) == _TORCH_LEGACY_MAGIC:
        return "rosinality-pt"
    kind = None
    try:
        with open(path, "rb") as f:
            for module, name in iter_globals(_BoundedReader(f, size)):
                if (module, name) not in _ALLOWED:
                    raise UnsafePickleError(
                        f"refused to load global '{module}.{name}': not allowed in a StyleGAN checkpoint "
                        "(the file may be malicious)"
                    )
                kind = kind or _KIND_MARKERS.get((module, name))
    except CheckpointError as exc:
        raise _with_path(exc, path) from None
    except (ValueError, EOFError, pickle.UnpicklingError, UnicodeDecodeError, OverflowError, MemoryError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path}: truncated or corrupt pickle ({msg})") from None
    if kind is None:
        raise CheckpointError(
            f"{path}: a pickle that is neither an NVIDIA PyTorch nor an NVIDIA TensorFlow StyleGAN network pickle"
        )
    return kind


__all__ = [
    "MAX_NESTING",
    "MAX_PICKLE_BYTES",
    "EasyDict",
    "NDArrayBuilder",
    "PersistentObject",
    "RestrictedUnpickler",
    "TFNetwork",
    "iter_globals",
    "load_pickle",
    "pickle_kind",
    "weights_only_refusal",
]
