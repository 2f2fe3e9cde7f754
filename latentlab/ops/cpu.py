"""CPU runtime settings that make the ops faster without changing any result.

PyTorch's CPU allocator takes every tensor from the C library's ``malloc``. glibc serves
blocks over its mmap threshold (at most 32 MiB) with fresh ``mmap`` calls and returns them to the
kernel on ``free``, so each large activation (a [1, 32, 1024, 1024] float32 map is 128 MiB) is
page-faulted in again on every use: on a 2-core machine a 1024-px elementwise multiply then costs
~150 ms instead of ~35 ms. :func:`tune_cpu_allocator` makes glibc keep freed memory in its heap
for reuse (``M_MMAP_MAX = 0``, ``M_TRIM_THRESHOLD`` = 1 GiB). The process keeps its peak resident
memory instead of returning it between steps; set ``LATENTLAB_NO_MALLOC_TUNING=1`` to opt out.

The setting is process-wide, so only a program that owns its process makes it: the ``latentlab``
command (for the subcommands that project) and the benchmarks. Library calls such as
:func:`latentlab.inversion.project` never change it; a script may call :func:`tune_cpu_allocator`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8
#: mallopt settings: latentlab's ("tuned": no mmap, 1 GiB trim threshold) and glibc's steady state
#: under projection ("stock": its dynamic mmap threshold at the 32 MiB ceiling, trim at twice that).
_SETTINGS = {
    "tuned": ((_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 1 << 30)),
    "stock": ((_M_MMAP_MAX, 65536), (_M_MMAP_THRESHOLD, 32 << 20), (_M_TRIM_THRESHOLD, 64 << 20)),
}
_state: dict[str, bool] = {}


def _glibc() -> "ctypes.CDLL | None":
    """glibc with ``mallopt`` and ``malloc_trim`` declared, or None off Linux / without them."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        return libc
    except (OSError, AttributeError):
        return None


def set_glibc_allocator(mode: str) -> bool:
    """Apply ``"tuned"`` or ``"stock"`` (see ``_SETTINGS``) to glibc's malloc, process-wide.

    ``"stock"`` also trims the heap, so memory kept by the tuned setting is returned. Returns
    True when every setting took; False on non-glibc platforms or if ``mallopt`` refuses.
    Benchmarks switch between the two; the command line calls :func:`tune_cpu_allocator`.
    """
    libc = _glibc()
    if libc is None:
        return False
    ok = all(bool(libc.mallopt(param, value)) for param, value in _SETTINGS[mode])
    if mode == "stock":
        libc.malloc_trim(0)
    return ok


def tune_cpu_allocator() -> bool:
    """Make glibc reuse freed heap memory instead of unmapping it (process-wide, idempotent).

    Returns True when the setting is active; False on non-glibc platforms, when
    ``LATENTLAB_NO_MALLOC_TUNING`` is set, or if ``mallopt`` refuses. Never raises.
    """
    if "active" not in _state:
        _state["active"] = not os.environ.get("LATENTLAB_NO_MALLOC_TUNING") and set_glibc_allocator("tuned")
    return _state["active"]


def release_free_memory() -> bool:
    """Return the C heap's free memory to the system now (glibc's ``malloc_trim``): after a large
    transient allocation (decoding a big photo, a job's activations) the process's resident size
    falls back to what it really holds. Returns False where there is no glibc. Never raises."""
    libc = _glibc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True


def share_one_heap() -> bool:
    """Make every thread allocate from glibc's main heap (``mallopt(M_ARENA_MAX, 1)``, process-wide;
    call it before threads start). For a long-running server whose requests run on new threads
    (``latentlab ui``): what one request frees then returns to the system with
    :func:`release_free_memory`, instead of staying in a per-thread arena (benchmarks/ui_memory.py:
    64 MiB budget, eight 5000 px uploads, resident growth 60 MiB instead of 82-96 MiB). Returns
    False where there is no glibc. Never raises."""
    libc = _glibc()
    return libc is not None and bool(libc.mallopt(_M_ARENA_MAX, 1))


def _bf16_kernels_allowed() -> bool:
    """False when ATen or oneDNN is held below AVX-512 (``ATEN_CPU_CAPABILITY=avx2``,
    ``ONEDNN_MAX_CPU_ISA=AVX2``, as on a CPU without it): bf16 then runs on emulated kernels."""
    import torch

    get = getattr(getattr(torch.backends, "cpu", None), "get_cpu_capability", None)
    if get is not None and not str(get()).upper().startswith("AVX512"):
        return False
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", os.environ.get("DNNL_MAX_CPU_ISA", "")).upper()
    return not isa or isa == "ALL" or "BF16" in isa or "AMX" in isa or isa.startswith("AVX10")


def fast_bfloat16(device: "str | object") -> bool:
    """Whether bfloat16 autocast is expected to be faster than float32 on ``device``.

    CPU: only with native bf16 dot products (AVX512-BF16 or AMX): measured on an AMD EPYC (Zen 4,
    AVX512-BF16) a pivotal-tuning step took 0.74 s in bf16 against 1.5 s in fp32, while on a CPU
    without them bf16 was 1.6x *slower*; also False when ATen or oneDNN is capped below AVX-512 by
    their environment variables. CUDA: False, because a single-photo step is launch-bound
    there (bf16 was 0.9x fp32 on an H200 for projection), so "auto" keeps fp32.
    """
    import torch

    if torch.device(device).type != "cpu":
        return False
    if not _bf16_kernels_allowed():
        return False
    cpu = getattr(torch, "cpu", None)
    checks = [getattr(cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    try:
        return any(bool(f()) for f in checks if f is not None)
    except RuntimeError:  # pragma: no cover - a torch build without the CPU feature queries
        return False


#: Precision settings of projection and pivotal tuning ("auto": :func:`resolve_precision`).
PRECISIONS = ("fp32", "bf16", "auto")


def resolve_precision(precision: str, device: "str | object") -> str:
    """``"fp32"`` / ``"bf16"`` as given; ``"auto"``: bf16 where :func:`fast_bfloat16` says so, else fp32."""
    if precision == "auto":
        return "bf16" if fast_bfloat16(device) else "fp32"
    return precision
