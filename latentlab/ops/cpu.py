"""CPU runtime settings that make the ops faster without changing any result.

PyTorch's CPU allocator takes every tensor from the C library's ``malloc``. glibc serves
blocks over its mmap threshold (at most 32 MiB) with fresh ``mmap`` calls and returns them to the
kernel on ``free``, so each large activation (a [1, 32, 1024, 1024] float32 map is 128 MiB) is
page-faulted in again on every use: on a 2-core machine a 1024-px elementwise multiply then costs
~150 ms instead of ~35 ms. :func:`tune_cpu_allocator` makes glibc keep freed memory in its heap
for reuse (``M_MMAP_MAX = 0``, ``M_TRIM_THRESHOLD`` = 1 GiB). The process keeps its peak resident
memory instead of returning it between steps; set ``LATENTLAB_NO_MALLOC_TUNING=1`` to opt out.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_state: dict[str, bool] = {}


def tune_cpu_allocator() -> bool:
    """Make glibc reuse freed heap memory instead of unmapping it (process-wide, idempotent).

    Returns True when the setting is active; False on non-glibc platforms, when
    ``LATENTLAB_NO_MALLOC_TUNING`` is set, or if ``mallopt`` refuses. Never raises.
    """
    if "active" in _state:
        return _state["active"]
    active = False
    if sys.platform.startswith("linux") and not os.environ.get("LATENTLAB_NO_MALLOC_TUNING"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            mallopt = libc.mallopt
            mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
            active = bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 1 << 30))
        except (OSError, AttributeError):
            active = False
    _state["active"] = active
    return active
