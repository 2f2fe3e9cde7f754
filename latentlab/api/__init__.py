"""latentlab's Python API: photos in, edited photos out, in a few lines.

```python
import latentlab as ll
G = ll.load_generator("ffhq-mobile")
me = ll.project("me.jpg", G)                       # aligns, inverts (pivotal tuning): a Projection
me.edit(smile="1s", age=-1).paste().save("me_smiling.jpg")
ll.swap(ll.project("you.jpg", G), me).paste().save("you_on_me.jpg")
me.save("me.npz"); me = ll.load_latent("me.npz", G, photo="me.jpg")
```

* :func:`project` turns a photo (or a latent ``.npz``) into a :class:`Projection`: a
  :class:`~latentlab.latent.Latent` (W+ codes [1, num_ws, w_dim], noise maps, alignment, photo,
  pivotal tuning, record) bound to the generator that draws it.
* :meth:`Projection.edit`, :func:`style`, :func:`transfer` and :func:`swap` return new
  :class:`Projection` objects (inputs are never modified); :func:`morph` and
  :meth:`Projection.sweep` return :class:`Frames`; :func:`sample` returns a :class:`Batch`.
* Nothing is drawn until an image is needed: :attr:`Projection.image` (the aligned result, uint8
  [R, R, 3]) and :meth:`Projection.paste` (the whole photo, uint8 [H, W, 3]) are lazy
  :class:`Image` objects that show themselves in Jupyter.
* Runs over many photos: :func:`project_photos` and :func:`evaluate`; models and directions:
  :func:`load_generator`, :func:`list_models`, :func:`describe_model`, :func:`fit_directions`.

This module is the one surface the command line, the web UI and the demo use; bad input raises a
one-line :class:`~latentlab.errors.LatentlabError`. Long calls take ``progress`` and ``cancel``
(:mod:`latentlab.progress`).
"""

from __future__ import annotations

from ..assets import cache_dir
from ..editing.directions import Direction, load_direction
from ..editing.drag import DragConfig, parse_points
from ..editing.drag import check_points as check_drag_points
from ..editing.edits import MAX_STRENGTH, UNITS, finite_number, parse_edit_text, parse_edits
from ..editing.layers import DEFAULT_RANGES, SPEC_HELP
from ..editing.swap import DEFAULT_IDENTITY_LAYERS, SWAP_TUNINGS, check_swap_tuning
from ..engine.runs import ENGINES
from ..errors import LatentlabError
from ..faces.attributes import ATTRIBUTES
from ..faces.photo import Photo
from ..figures import grid, letterbox, resize, side_by_side, stack, strip, thumbnail
from ..imageio import json_safe, load_image, plain_file_name, refuse_existing, save_image, save_video
from ..imageio import tensor_to_image as tensor_image
from ..inversion import PRESETS, ProjectorConfig, TuningConfig, preset_config
from ..latent import Latent, Tuning
from ..ops import release_free_memory, share_one_heap, tune_cpu_allocator
from ..ops.cpu import PRECISIONS
from ..progress import Progress, reporter
from ..registry import DEFAULT_MODEL, load_generator, network_name, resolve_device
from ..report import Figure, Report, Step, write_report
from ..sampling import MAX_SEED, parse_seeds
from .faces import (Projection, attributes, follow, identity, load_latent, load_photo, morph, project, sample, style,
                    swap, swap_paths, sweep_paths, transfer, write_swap, write_sweep)
from .images import Batch, Frames, Image, png_bytes
from .models import (FittedDirection, components, convert_model, describe_attributes, describe_layers, describe_model,
                     fit_directions, format_model, interpolate, list_directions, list_models, model_key, setup_weights)
from .runs import collect_photos, evaluate, project_photos

__all__ = [
    # faces as latents
    "Projection", "Latent", "Tuning", "Photo", "project", "follow", "load_latent", "load_photo", "sample", "style", "transfer",
    "swap", "morph", "attributes", "describe_attributes", "identity",
    # pictures
    "Image", "Frames", "Batch", "png_bytes", "grid", "strip", "resize", "side_by_side", "stack", "letterbox",
    "thumbnail", "load_image", "save_image", "save_video", "tensor_image", "write_sweep", "write_swap", "sweep_paths", "swap_paths",
    "plain_file_name", "refuse_existing", "json_safe", "Report", "Step", "Figure", "write_report",
    # runs
    "project_photos", "evaluate", "collect_photos", "ENGINES",
    # models and directions
    "load_generator", "list_models", "describe_model", "format_model", "convert_model", "setup_weights",
    "network_name", "resolve_device", "DEFAULT_MODEL", "describe_layers", "fit_directions", "FittedDirection",
    "list_directions", "components", "model_key", "interpolate", "Direction", "load_direction", "ATTRIBUTES",
    # settings, parsing and limits
    "PRESETS", "ProjectorConfig", "TuningConfig", "preset_config", "PRECISIONS", "parse_edits", "parse_edit_text",
    "UNITS", "MAX_STRENGTH", "finite_number", "DEFAULT_RANGES", "SPEC_HELP", "DEFAULT_IDENTITY_LAYERS", "SWAP_TUNINGS",
    "check_swap_tuning", "parse_seeds", "MAX_SEED", "cache_dir", "DragConfig", "parse_points", "check_drag_points",
    # errors, progress, process
    "LatentlabError", "Progress", "reporter", "tune_cpu_allocator", "release_free_memory", "share_one_heap",
]
