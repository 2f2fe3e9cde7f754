"""Named attribute directions (``--smile 1.5``): where shipped and user directions are looked up.

A named attribute ``ATTR`` of model ``MODEL`` is the direction file ``<dir>/<MODEL>/<ATTR>.npz``
(format: :mod:`latentlab.editing.directions`), searched in this order:

1. the folders in ``$LATENTLAB_DIRECTIONS`` (``os.pathsep``-separated) and any passed explicitly;
2. ``<cache_dir()>/directions`` (where ``latentlab directions fit`` may save its results);
3. the directions shipped in the package, ``latentlab/data/directions``.

MODEL is the registry name (``ffhq-mobile``) or, for a checkpoint file, its file name without
the extension.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from ..errors import LatentlabError

ENV_VAR = "LATENTLAB_DIRECTIONS"
PACKAGE_DIR = Path(__file__).resolve().parent.parent / "data" / "directions"


def model_key(network: str) -> str:
    """The folder name for a model: a registry name as is; a file path's stem; a URL's file stem."""
    text = str(network).rstrip("/")
    if "/" in text or "\\" in text or Path(text).suffix:
        return Path(text.split("?")[0]).stem
    return text


def search_dirs(extra: Sequence["str | Path"] = ()) -> list[Path]:
    """The folders searched for ``<model>/<attr>.npz``, first match wins."""
    from ..assets import cache_dir

    dirs: list[Path] = [Path(p) for p in extra]
    env = os.environ.get(ENV_VAR, "")
    dirs += [Path(p) for p in env.split(os.pathsep) if p]
    dirs += [cache_dir() / "directions", PACKAGE_DIR]
    return dirs


def available_attributes(network: str, extra: Sequence["str | Path"] = ()) -> dict[str, Path]:
    """attribute name -> file for a model, over all search folders (earlier folders win)."""
    key = model_key(network)
    found: dict[str, Path] = {}
    for d in search_dirs(extra):
        folder = d / key
        if folder.is_dir():
            for f in sorted(folder.glob("*.npz")):
                found.setdefault(f.stem, f)
    return found


def models_with_directions(extra: Sequence["str | Path"] = ()) -> list[str]:
    """Model folders that hold at least one direction file."""
    names: set[str] = set()
    for d in search_dirs(extra):
        if d.is_dir():
            names.update(p.name for p in d.iterdir() if p.is_dir() and any(p.glob("*.npz")))
    return sorted(names)


def find_attribute(name: str, network: str, extra: Sequence["str | Path"] = ()) -> Path:
    """The direction file of attribute ``name`` for ``network``; a one-line error listing what
    exists otherwise."""
    attrs = available_attributes(network, extra)
    if name in attrs:
        return attrs[name]
    key = model_key(network)
    if attrs:
        raise LatentlabError(f"no direction {name!r} for model {key}; available: {', '.join(sorted(attrs))}")
    others = models_with_directions(extra)
    hint = f"directions exist for: {', '.join(others)}" if others else "no directions are installed"
    raise LatentlabError(f"model {key} has no named directions (looked for {name!r} in "
                         f"{', '.join(str(d / key) for d in search_dirs(extra))}); {hint}; "
                         "pass a file with --direction FILE:STRENGTH")


__all__ = ["ENV_VAR", "PACKAGE_DIR", "available_attributes", "find_attribute", "model_key",
           "models_with_directions", "search_dirs"]
