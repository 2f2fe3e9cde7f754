"""Options and helpers shared by the CLI subcommands."""

from __future__ import annotations

import math

import click

from ..errors import LatentlabError

NOISE_MODES = ("const", "random", "none")

# One home for these (re-exported for the commands): the strength limit, the number check and the
# overwrite guard live in the library, so the CLI, the UI and the API refuse the same inputs.
from ..editing.pipeline import MAX_STRENGTH, finite_number  # noqa: E402
from ..editing.render import refuse as refuse_existing  # noqa: E402


def output_name(name: str) -> str:
    """``--name`` as a plain file name inside the output folder; one-line LatentlabError for a
    path (``../x``, ``a/b``), ``.``/``..``, a hidden name or control characters."""
    if (not name or name in (".", "..") or name.startswith(".") or any(c in name for c in "/\\\0")
            or any(ord(c) < 32 for c in name)):
        raise LatentlabError(f"--name {name!r}: must be a plain file name (no folders, not hidden); "
                             "choose the folder with --outdir")
    return name


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
    return click.option("--network", "network", default="ffhq-mobile", show_default=True,
                        metavar="NAME|PATH|URL",
                        help="Registry name (latentlab models list), checkpoint file, or http(s) URL.")(f)


def truncation_options(f):
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
    """Load a generator for a command; errors are LatentlabError (printed as one line)."""
    from ..registry import load_generator, resolve_device

    dev = resolve_device(device)
    return load_generator(network, dev, w_avg_samples=w_avg_samples, progress=True)


def check_truncation(G, truncation_cutoff: int | None) -> None:
    if truncation_cutoff is not None and truncation_cutoff > G.num_ws:
        raise LatentlabError(f"--trunc-cutoff {truncation_cutoff} exceeds the {G.num_ws} W+ rows of this model")
