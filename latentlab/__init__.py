"""latentlab: StyleGAN latent-space toolkit for faces.

```python
import latentlab as ll
G = ll.load_generator("ffhq-mobile")
me = ll.project("me.jpg", G, preset="fast")       # aligns, projects; a Projection
me.edit(smile=1.5, age=-1).paste().save("me_smiling.jpg")
ll.swap(ll.project("you.jpg", G), me).paste().save("you_on_me.jpg")
me.save("me.npz"); me = ll.load_latent("me.npz", G)
```

The one entry point for models is :func:`latentlab.load_generator`; the functions above live in
:mod:`latentlab.api` (see there for every name, with shapes and ranges). Nothing heavy is imported
until a name is used: ``import latentlab`` does not import torch.
"""

from __future__ import annotations

__version__ = "0.1.0"

#: Public names served lazily from latentlab.api (which imports torch).
_API = ("Batch", "Frames", "Image", "Projection", "attributes", "list_models", "load_generator", "load_latent",
        "morph", "network_of", "project", "sample", "style", "swap", "transfer")


def __getattr__(name: str):
    # Lazy so that `import latentlab` does not import torch until a model is needed.
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'latentlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))


# No ``__all__`` here: the public names are latentlab.api.__all__ (served lazily above); an
# ``__all__`` of lazy names would hide the subpackages from the reference docs (pdoc lists only
# what ``__all__`` names when it is defined).
