"""Options and helpers shared by the CLI subcommands."""

from __future__ import annotations

import math

import click

from .. import api
from ..errors import LatentlabError

NOISE_MODES = ("const", "random", "none")
#: The strength limit of edits, transfers and truncation psi (:data:`latentlab.api.MAX_STRENGTH`).
MAX_STRENGTH = api.MAX_STRENGTH
#: Projection presets (:data:`latentlab.api.PRESETS`) and the default of every command.
PRESET_NAMES = tuple(api.PRESETS)
DEFAULT_PRESET = "pti"
PRESET_HELP = ("pti: a short W projection as the pivot, then pivotal tuning of the generator for this person "
               "(results render with the tuned generator; latents carry NAME.pti.safetensors beside them); "
               "fast: at most 200 steps with early stop, no tuning (a lookalike); paper: the paper's recipe "
               "(W+, pixel 0.5 + LPIPS 1, noise reg 5e5, 1000 steps); nvidia: NVIDIA's projector (W, LPIPS "
               "only, noise reg 1e5, 1000 steps).")


def output_name(name: str) -> str:
    """``--name`` as a plain file name inside the output folder (:func:`latentlab.api.plain_file_name`);
    one-line LatentlabError for a path (``../x``, ``a/b``), ``.``/``..``, a hidden name or control
    characters."""
    return api.plain_file_name(name, "--name")


class FiniteFloat(click.FloatRange):
    """A click float option that refuses NaN and +-inf (click's own float type accepts them), with
    optional bounds as :class:`click.FloatRange` takes them."""

    name = "finite float"

    def convert(self, value, param, ctx):
        value = super().convert(value, param, ctx)
        if not math.isfinite(value):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return value


def device_option(f):
    """``--device cpu|cuda|cuda:N|auto`` (default auto: CUDA when available)."""
    return click.option("--device", default="auto", show_default=True, metavar="DEVICE",
                        help="cpu, cuda, cuda:N or auto (CUDA when available).")(f)


def network_option(f):
    """``--network NAME|PATH|URL`` (default: the registry's default model)."""
    return click.option("--network", "network", default=api.DEFAULT_MODEL, show_default=True,
                        metavar="NAME|PATH|URL",
                        help="Registry name (latentlab models list), checkpoint file, or http(s) URL.")(f)


def preset_choice() -> click.Choice:
    """A click choice of the projection presets."""
    return click.Choice(list(PRESET_NAMES))


def truncation_options(f):
    """``--trunc``, ``--trunc-cutoff``, ``--noise-mode``, ``--class``, ``--w-avg-samples``."""
    f = click.option("--w-avg-samples", type=click.IntRange(min=1), default=None,
                     help="Re-estimate w_avg as the mean of mapping(z) over N latents (cached).")(f)
    f = click.option("--class", "class_idx", type=click.IntRange(min=0), default=None,
                     help="Class index, for conditional models.")(f)
    f = click.option("--noise-mode", type=click.Choice(NOISE_MODES), default="const", show_default=True,
                     help="Per-layer noise: the model's stored constant, fresh random, or none.")(f)
    f = click.option("--trunc-cutoff", "truncation_cutoff", type=click.IntRange(min=0), default=None,
                     help="Truncate only the first N W+ rows (default: all).")(f)
    f = click.option("--trunc", "truncation_psi", type=FiniteFloat(-MAX_STRENGTH, MAX_STRENGTH),
                     default=1.0, show_default=True, help="Truncation psi (1 = none, 0 = w_avg).")(f)
    return f


def load_model(network: str, device: str, w_avg_samples: int | None = None):
    """Load a generator for a command (:func:`latentlab.api.load_generator`); errors are
    LatentlabError (printed as one line)."""
    return api.load_generator(network, api.resolve_device(device), w_avg_samples=w_avg_samples, progress=True)


def check_truncation(G, truncation_cutoff: int | None) -> None:
    """One-line error when ``--trunc-cutoff`` exceeds G's W+ rows."""
    if truncation_cutoff is not None and truncation_cutoff > G.num_ws:
        raise LatentlabError(f"--trunc-cutoff {truncation_cutoff} exceeds the {G.num_ws} W+ rows of this model")


__all__ = [
    "DEFAULT_PRESET",
    "MAX_STRENGTH",
    "NOISE_MODES",
    "PRESET_HELP",
    "PRESET_NAMES",
    "FiniteFloat",
    "check_truncation",
    "device_option",
    "load_model",
    "network_option",
    "output_name",
    "preset_choice",
    "truncation_options",
]
