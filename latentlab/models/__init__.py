"""Model families. Each family module defines a :class:`~latentlab.models.base.Generator`
subclass whose constructor takes only JSON-able keyword arguments (its ``config``)."""

from __future__ import annotations

import importlib
from typing import Any

from .base import Generator

# family name -> (module, class name); imported lazily so `import latentlab` stays light.
FAMILIES: dict[str, tuple[str, str]] = {
    "stylegan2": ("latentlab.models.stylegan2", "StyleGAN2Generator"),
    "mobilestylegan": ("latentlab.models.mobilestylegan", "MobileStyleGANGenerator"),
}


def generator_class(family: str) -> type[Generator]:
    """Return the Generator subclass for a family name (ValueError if unknown)."""
    if family not in FAMILIES:
        raise ValueError(f"unknown generator family {family!r}; known: {', '.join(sorted(FAMILIES))}")
    module, name = FAMILIES[family]
    return getattr(importlib.import_module(module), name)


def build_generator(family: str, config: dict[str, Any]) -> Generator:
    """Construct an (uninitialised) generator of ``family`` from its config dict."""
    return generator_class(family)(**config)


__all__ = ["FAMILIES", "Generator", "build_generator", "generator_class"]
