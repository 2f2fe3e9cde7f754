"""latentlab: StyleGAN latent-space toolkit for faces.

The one entry point for models is :func:`latentlab.load_generator`.
"""

from __future__ import annotations

__version__ = "0.1.0"


def __getattr__(name: str):
    # Lazy so that `import latentlab` does not import torch until a model is needed.
    if name in ("load_generator", "list_models"):
        from . import registry

        return getattr(registry, name)
    raise AttributeError(f"module 'latentlab' has no attribute {name!r}")


__all__ = ["__version__", "load_generator", "list_models"]
