"""Size guards run before a checkpoint's data is allocated: declared sizes against the bytes present.

A hostile file can *declare* far more data than it holds (a torch storage of 2**40 elements in a
100-byte blob, a zip entry that inflates to gigabytes, a safetensors header pointing past the end
of the file, a tensor view whose shape and strides cover more elements than its storage). Every
check here compares what a file declares with what it physically contains, without unpickling
anything, and raises a one-line :class:`~latentlab.errors.CheckpointError` naming the offender:

* :func:`check_torch_legacy` - a pre-zip ``torch.save`` stream (rosinality ``.pt`` files, and the
  storage blobs inside NVIDIA pickles): the storages its pickle declares must fit in the stream.
* :func:`check_torch_zip` - a ``torch.save`` zip archive: entries stored uncompressed, within the
  archive, and each storage's declared size within its record.
* :func:`check_safetensors_header` - a safetensors header: known dtypes, shapes whose byte size
  equals the data range, ranges inside the file.
* :func:`check_tensor_fits_storage` - a tensor's elements must fit in its storage (no zero-stride
  or overlapping view that a later ``.contiguous()`` would blow up).
"""

from __future__ import annotations

import io
import json
import math
import pickletools
import struct
import zipfile
from pathlib import Path
from typing import Any, NamedTuple

import torch

from ..errors import CheckpointError

#: Largest safetensors header accepted (a real StyleGAN2's is ~50 KB).
MAX_SAFETENSORS_HEADER = 16 * 1024**2
#: Most tensors (or zip entries) a generator checkpoint may hold (config-f has ~400).
MAX_ENTRIES = 100_000

# Element size of each storage class torch writes into a pickle; unknown ones count as 16 bytes
# (the largest), so a declared size is never under-estimated.
_STORAGE_BYTES = {
    "FloatStorage": 4, "DoubleStorage": 8, "HalfStorage": 2, "BFloat16Storage": 2,
    "LongStorage": 8, "IntStorage": 4, "ShortStorage": 2, "CharStorage": 1, "ByteStorage": 1,
    "BoolStorage": 1, "ComplexFloatStorage": 8, "ComplexDoubleStorage": 16, "UntypedStorage": 1,
}

_SAFETENSORS_BYTES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
    "BOOL": 1, "U16": 2, "U32": 4, "U64": 8, "F8_E4M3": 1, "F8_E5M2": 1,
}


class _Global(NamedTuple):
    module: str
    name: str


_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_MARK = object()
_ANY = object()
_CONST_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "STRING", "BINSTRING",
              "SHORT_BINSTRING", "BININT", "BININT1", "BININT2", "INT", "LONG", "LONG1", "LONG4",
              "NONE", "NEWTRUE", "NEWFALSE", "BINFLOAT", "FLOAT"}


def persistent_ids(stream: Any) -> list[Any]:
    """The persistent ids the next pickle in ``stream`` passes to ``persistent_load``."""
    return _scan(stream)[0]


def _scan(stream: Any) -> tuple[list[Any], Any]:
    """(persistent ids, the pickle's value when it is a constant) for the next pickle in ``stream``.

    Walks the opcodes with :mod:`pickletools` (nothing is executed) and follows the stack just
    far enough to rebuild tuples of constants and globals; anything else becomes an opaque marker.
    The stream is left just after the pickle's STOP.
    """
    stack: list[Any] = []
    memo: dict[Any, Any] = {}
    pids: list[Any] = []

    def pop_to_mark() -> list[Any]:
        items: list[Any] = []
        while stack:
            v = stack.pop()
            if v is _MARK:
                return items[::-1]
            items.append(v)
        raise CheckpointError("corrupt pickle (MARK missing)")

    def pop() -> Any:
        if not stack:
            raise CheckpointError("corrupt pickle (stack underflow)")
        return stack.pop()

    for op, arg, _pos in pickletools.genops(stream):
        name = op.name
        if name == "STOP":
            return pids, (stack[-1] if stack else _ANY)
        if name == "MARK":
            stack.append(_MARK)
        elif name in _CONST_OPS:
            stack.append(arg)
        elif name == "GLOBAL":
            module, _, attr = str(arg).partition(" ")
            stack.append(_Global(module, attr))
        elif name == "STACK_GLOBAL":
            attr, module = pop(), pop()
            stack.append(_Global(module, attr) if isinstance(module, str) and isinstance(attr, str) else _ANY)
        elif name == "EMPTY_TUPLE":
            stack.append(())
        elif name == "TUPLE":
            stack.append(tuple(pop_to_mark()))
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            n = int(name[-1])
            items = [pop() for _ in range(n)][::-1]
            stack.append(tuple(items))
        elif name == "MEMOIZE":
            memo[len(memo)] = stack[-1] if stack else _ANY
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[arg] = stack[-1] if stack else _ANY
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            stack.append(memo.get(arg, _ANY))
        elif name == "BINPERSID":
            pids.append(pop())
            stack.append(_ANY)
        elif name == "PERSID":
            pids.append(arg)
            stack.append(_ANY)
        else:  # any other opcode: consume and produce what pickletools says, as opaque values
            before = op.stack_before
            if pickletools.markobject in before:
                pop_to_mark()
                for _ in range(before.index(pickletools.markobject)):
                    pop()
            else:
                for _ in before:
                    pop()
            stack.extend(_ANY for _ in op.stack_after)
    raise CheckpointError("corrupt pickle (no STOP)")


def _storage_bytes(pid: Any, where: str) -> tuple[Any, int] | None:
    """(key, declared bytes) of a ``('storage', type, key, location, numel, ...)`` id, else None."""
    if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
        return None
    storage_type, key, numel = pid[1], pid[2], pid[4]
    if not isinstance(numel, int) or numel < 0:
        raise CheckpointError(f"{where}: a tensor storage with an impossible size")
    name = storage_type.name if isinstance(storage_type, _Global) else ""
    return key, numel * _STORAGE_BYTES.get(name, 16)


def _declared_storages(pids: list[Any], where: str) -> dict[Any, int]:
    out: dict[Any, int] = {}
    for pid in pids:
        got = _storage_bytes(pid, where)
        if got is not None:
            key, nbytes = got
            try:
                out[key] = max(out.get(key, 0), nbytes)
            except TypeError:  # an unhashable key: torch refuses it too
                raise CheckpointError(f"{where}: a tensor storage with an unusable key") from None
    return out


def check_torch_legacy(stream: Any, available: int, where: str) -> None:
    """The storages a pre-zip ``torch.save`` stream declares must fit in its ``available`` bytes.

    ``stream`` is positioned at the start (the magic number pickle); it is read, not rewound. A
    stream that does not open with torch's magic number is left to torch, which refuses it before
    allocating anything.
    """
    try:
        if _scan(stream)[1] != _TORCH_LEGACY_MAGIC:
            return
        for _ in range(2):  # protocol version, sys_info
            persistent_ids(stream)
        declared = _declared_storages(persistent_ids(stream), where)
    except CheckpointError:
        raise
    except (ValueError, EOFError, UnicodeDecodeError, OverflowError) as exc:
        raise CheckpointError(f"{where}: truncated or corrupt torch data ({_first_line(exc)})") from None
    if len(declared) > MAX_ENTRIES:
        raise CheckpointError(f"{where}: {len(declared)} tensor storages, more than {MAX_ENTRIES}")
    total = sum(declared.values())
    if total > available:
        raise CheckpointError(f"{where}: its tensors claim {total:,} bytes but it holds only {available:,}")


def check_torch_zip(source: str | Path | io.BytesIO, where: str) -> None:
    """A ``torch.save`` zip archive may only declare data it physically holds.

    Every entry must be stored uncompressed (``torch.save`` never compresses, so a deflated entry
    can only be an inflation bomb), the entries together no larger than the archive, and each
    storage the pickle declares no larger than its ``data/<key>`` record.
    """
    try:
        size = source.getbuffer().nbytes if isinstance(source, io.BytesIO) else Path(source).stat().st_size
        with zipfile.ZipFile(source) as zf:
            infos = zf.infolist()
            if len(infos) > MAX_ENTRIES:
                raise CheckpointError(f"{where}: a zip archive of {len(infos)} entries, more than {MAX_ENTRIES}")
            records: dict[str, int] = {}
            for info in infos:
                if info.compress_type != zipfile.ZIP_STORED:
                    raise CheckpointError(f"{where}: zip entry {info.filename} is compressed; torch.save "
                                          "never compresses, so this is not a genuine torch checkpoint")
                records[info.filename] = info.file_size
            total = sum(records.values())
            if total > size:
                raise CheckpointError(f"{where}: its zip entries claim {total:,} bytes but the archive "
                                      f"holds only {size:,}")
            pkl = [n for n in records if n == "data.pkl" or n.endswith("/data.pkl")]
            if len(pkl) != 1:
                raise CheckpointError(f"{where}: a zip archive that is not a torch checkpoint (no single data.pkl)")
            prefix = pkl[0][: -len("data.pkl")]
            with zf.open(pkl[0]) as f:
                declared = _declared_storages(persistent_ids(io.BytesIO(f.read())), where)
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, ValueError, EOFError, OSError, UnicodeDecodeError, OverflowError,
            NotImplementedError, RuntimeError) as exc:
        raise CheckpointError(f"{where}: not a readable torch checkpoint ({_first_line(exc)})") from None
    for key, nbytes in declared.items():
        record = f"{prefix}data/{key}"
        if record not in records:
            raise CheckpointError(f"{where}: tensor storage {key!s:.40} has no data record")
        if nbytes > records[record]:
            raise CheckpointError(f"{where}: tensor storage {key!s:.40} claims {nbytes:,} bytes but its "
                                  f"record holds {records[record]:,}")


def check_tensor_fits_storage(t: torch.Tensor, name: str, where: str) -> torch.Tensor:
    """``t`` unchanged when its elements fit in its storage; CheckpointError naming ``name`` otherwise.

    A zero-stride or overlapping view can describe billions of elements on a few bytes; copying
    it (``contiguous()``, ``reshape``) would allocate them all.
    """
    if not isinstance(t, torch.Tensor):
        raise CheckpointError(f"{where}: {name} is not a tensor")
    try:
        have = t.untyped_storage().nbytes()
    except (RuntimeError, NotImplementedError):
        return t  # no storage to compare with (not produced by a loader)
    need = t.numel() * t.element_size()
    if need > have:
        raise CheckpointError(f"{where}: {name} claims {need:,} bytes of values ({list(t.shape)}) "
                              f"on a storage of {have:,}")
    return t


def check_safetensors_header(path: str | Path) -> dict[str, Any]:
    """Parse and check a safetensors header against the file; returns the header dict.

    The header must be a JSON object no larger than :data:`MAX_SAFETENSORS_HEADER`; each tensor a
    known dtype whose shape times element size equals its data range, inside the file.
    """
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{path}: truncated safetensors file")
        (n,) = struct.unpack("<Q", head)
        if n > min(MAX_SAFETENSORS_HEADER, size - 8):
            raise CheckpointError(f"{path}: safetensors header claims {n:,} bytes; the file holds {size - 8:,} "
                                  f"after the length (limit {MAX_SAFETENSORS_HEADER:,})")
        raw = f.read(n)
    try:
        header = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise CheckpointError(f"{path}: corrupt safetensors header ({_first_line(exc)})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: safetensors header is not a JSON object")
    if len(header) > MAX_ENTRIES:
        raise CheckpointError(f"{path}: {len(header)} tensors, more than {MAX_ENTRIES}")
    data_size = size - 8 - n
    for key, info in header.items():
        if key == "__metadata__":
            if not isinstance(info, dict) or not all(isinstance(v, str) for v in info.values()):
                raise CheckpointError(f"{path}: safetensors metadata is not a string-to-string map")
            continue
        if not isinstance(info, dict):
            raise CheckpointError(f"{path}: tensor {key:.60} has no header entry")
        dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if dtype not in _SAFETENSORS_BYTES:
            raise CheckpointError(f"{path}: tensor {key:.60} has an unknown dtype {str(dtype):.20}")
        if not (isinstance(shape, list) and len(shape) <= 8
                and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):
            raise CheckpointError(f"{path}: tensor {key:.60} has a malformed shape")
        if not (isinstance(offsets, list) and len(offsets) == 2
                and all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)):
            raise CheckpointError(f"{path}: tensor {key:.60} has malformed data offsets")
        begin, end = offsets
        need = math.prod(shape) * _SAFETENSORS_BYTES[dtype]
        if not 0 <= begin <= end <= data_size:
            raise CheckpointError(f"{path}: tensor {key:.60} points outside the file (bytes {begin}..{end} "
                                  f"of {data_size})")
        if end - begin != need:
            raise CheckpointError(f"{path}: tensor {key:.60} declares {need:,} bytes ({dtype} {shape}) but "
                                  f"its data range holds {end - begin:,}")
    return header


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


__all__ = [
    "MAX_ENTRIES",
    "MAX_SAFETENSORS_HEADER",
    "check_safetensors_header",
    "check_tensor_fits_storage",
    "check_torch_legacy",
    "check_torch_zip",
    "persistent_ids",
]
