"""latentlab: StyleGAN latent-space toolkit for faces.

```python
import latentlab as ll
G = ll.load_generator("ffhq-mobile")
me = ll.project("me.jpg", G)                       # aligns, inverts (pivotal tuning): a Projection
me.edit(smile="1s", age=-1).paste().save("me_smiling.jpg")
ll.swap(ll.project("you.jpg", G), me).paste().save("you_on_me.jpg")
me.save("me.npz"); me = ll.load_latent("me.npz", G, photo="me.jpg")
```

The one entry point for models is :func:`latentlab.load_generator`; the functions above live in
:mod:`latentlab.api` (see there for every name, with shapes and ranges). Nothing heavy is imported
until a name is used: ``import latentlab`` does not import torch.
"""

from __future__ import annotations

__version__ = "0.1.0"

def _api():
    import importlib

    return importlib.import_module("latentlab.api")


def __getattr__(name: str):
    # Lazy so that `import latentlab` does not import torch until a model is needed.
    if not name.startswith("_") and name != "api":
        api = _api()
        if name in api.__all__:
            return getattr(api, name)
    raise AttributeError(f"module 'latentlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_api().__all__))


# No ``__all__`` here: the public names are latentlab.api.__all__ (served lazily above); an
# ``__all__`` of lazy names would hide the subpackages from the reference docs (pdoc lists only
# what ``__all__`` names when it is defined).
