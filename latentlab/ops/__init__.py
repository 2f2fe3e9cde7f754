"""Pure-PyTorch reference ops used by the StyleGAN2 generator.

Everything here is plain ``torch`` (CPU or CUDA, whatever device the inputs live on); nothing
is compiled at import time.

* :func:`upfirdn2d` - upsample, FIR-filter and downsample a batch of images (with padding).
* :func:`upsample2d`, :func:`downsample2d`, :func:`filter2d` - the common special cases.
* :func:`setup_filter` - turn ``[1, 3, 3, 1]`` into a normalised 2-D FIR kernel.
* :func:`bias_act` - bias + activation + gain + clamp, as NVIDIA's ``bias_act``.
* :func:`conv2d_resample` - a 2-D convolution fused with FIR up/down-sampling.
* :func:`tune_cpu_allocator` - let glibc reuse freed memory (large tensors stop page-faulting);
  :func:`release_free_memory` - hand the free part back to the system; :func:`share_one_heap` - one
  heap for every thread (a server's freed memory can then be handed back).
* :func:`resolve_precision` - ``"auto"`` -> bf16 where this device computes bf16 natively, else fp32.

Each resampling op takes ``impl='ref'`` (the plain definition, default) or ``'fast'`` (an
equivalent formulation with less memory traffic; equal to ~1e-6, see tests/test_fast_paths.py).
"""

from .bias_act import ACTIVATIONS, bias_act
from .conv2d_resample import conv2d_resample
from .cpu import fast_bfloat16, release_free_memory, resolve_precision, share_one_heap, tune_cpu_allocator
from .upfirdn2d import IMPLS, downsample2d, filter2d, setup_filter, upfirdn2d, upsample2d

__all__ = [
    "ACTIVATIONS",
    "IMPLS",
    "bias_act",
    "conv2d_resample",
    "downsample2d",
    "fast_bfloat16",
    "filter2d",
    "resolve_precision",
    "setup_filter",
    "upfirdn2d",
    "tune_cpu_allocator",
    "release_free_memory",
    "share_one_heap",
    "upsample2d",
]
