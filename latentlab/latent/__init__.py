"""The latent value and its files.

* :class:`Latent`: one face as a W+ latent with its noise maps, alignment, photo, pivotal tuning
  and record; what inversion returns, what every editing operation takes and returns, what latent
  files hold, what the UI keeps and the engines write.
* :class:`Tuning`: a pivotal tuning as a weight delta; :func:`generator_for` is the one rule of
  which generator draws a latent (the base one plus its tuning).
* :func:`load_latent` / :func:`save_latent`: the hardened ``.npz`` reader and the writer (with the
  ``.pti.safetensors`` delta beside a tuned latent).
"""

from .files import MAX_FILE_BYTES, latent_npz_bytes, load_latent, read_latent_file, same_model, save_latent
from .render import generator_for, render, render_ws, tuned_generator
from .tuning import DELTA_SUFFIX, Tuning, apply_tuning, blend, delta_path_for, read_delta
from .value import KEEP, Latent

__all__ = ["DELTA_SUFFIX", "KEEP", "Latent", "MAX_FILE_BYTES", "Tuning", "apply_tuning", "blend", "delta_path_for",
           "generator_for", "latent_npz_bytes", "load_latent", "read_delta", "read_latent_file", "render",
           "render_ws", "same_model", "save_latent", "tuned_generator"]
