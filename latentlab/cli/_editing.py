"""Options and helpers shared by the editing commands (style, edit, transfer, swap, morph)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..editing.layers import SPEC_HELP
from ..errors import LatentlabError
from ._common import MAX_STRENGTH, device_option, finite_number, network_option

INPUT_HELP = ("Inputs are photos (aligned and projected on the fly with --preset, default fast; the result is "
              "cached and reused) or latent .npz files from `latentlab project` or another editing command.")
PHOTO_HELP = ("Original photo of the latent .npz input that results are pasted into ({which}), for the "
              "_pasted outputs; without it a latent input gives aligned results only (photo paths stored "
              "inside latent files are never opened). Photo inputs need no --photo.")


def editing_options(default_outdir: str, photo_for: str = "the first input"):
    """--network --outdir --force --device --preset --num-steps --no-cache --face-index --rows-exact
    --photo (``photo_for`` names the input whose original photo --photo is, for the help)."""

    def deco(f):
        f = click.option("--photo", type=click.Path(dir_okay=False, path_type=Path), default=None,
                         metavar="PATH", help=PHOTO_HELP.format(which=photo_for))(f)
        f = click.option("--rows-exact", is_flag=True,
                         help="Read bare numbers in layer ranges as this model's own W+ rows (like the rows: "
                              "prefix) instead of rows of StyleGAN2-1024's 18-row layout.")(f)
        f = click.option("--face-index", type=click.IntRange(min=0), default=0, show_default=True,
                         help="Which face of an input photo (0 = largest).")(f)
        f = click.option("--no-cache", is_flag=True, help="Project input photos again even if a cached "
                                                          "projection exists (and do not cache).")(f)
        f = click.option("--num-steps", type=click.IntRange(min=1), default=None,
                         help="Projection steps for photo inputs (default: the preset's).")(f)
        f = click.option("--preset", type=click.Choice(["fast", "seed", "nvidia", "pti"]), default="fast",
                         show_default=True, help="Projection preset for photo inputs (pti: a W projection, "
                                                 "then pivotal tuning of the generator for this person; "
                                                 "results render with the tuned generator).")(f)
        f = device_option(f)
        f = click.option("--force", is_flag=True, help="Overwrite existing outputs.")(f)
        f = click.option("--outdir", type=click.Path(file_okay=False, path_type=Path), default=Path(default_outdir),
                         show_default=True, help="Output folder.")(f)
        f = network_option(f)
        return f

    return deco


class Session:
    """A loaded generator plus the input settings of one command invocation."""

    def __init__(self, network: str, device: str, preset: str, num_steps: int | None, no_cache: bool,
                 face_index: int, rows_exact: bool, photo: Path | None = None) -> None:
        from ._common import load_model

        self.network = network
        self.G = load_model(network, device)
        self.preset = preset
        self.num_steps = num_steps
        self.cache = not no_cache
        self.face_index = face_index
        self.rows_exact = rows_exact
        self.photo = photo  # --photo: the original photo of the input results are pasted into

    @classmethod
    def from_kwargs(cls, kw: dict[str, Any]) -> "Session":
        return cls(kw.pop("network"), kw.pop("device"), kw.pop("preset"), kw.pop("num_steps"), kw.pop("no_cache"),
                   kw.pop("face_index"), kw.pop("rows_exact"), kw.pop("photo", None))

    def config(self):
        """The projector settings for photo inputs (as :func:`latentlab.api.project` builds them)."""
        from ..inversion.project import preset_config

        return preset_config(self.preset, num_steps=self.num_steps)

    def latent(self, arg: "str | Path", *, paste_into: bool = False):
        """``arg`` (photo or latent .npz) resolved; with ``paste_into`` it is the input results are
        pasted into and gets ``--photo`` (refused for a photo input, which is its own original)."""
        from ..editing.inputs import LATENT_SUFFIXES, resolve_latent

        photo = self.photo if paste_into else None
        if photo is not None and Path(arg).suffix.lower() not in LATENT_SUFFIXES:
            raise LatentlabError(f"--photo is for a latent .npz input; {arg} is a photo, its own original")
        return resolve_latent(arg, self.G, network=self.network, config=self.config(), preset=self.preset,
                              cache=self.cache, face_index=self.face_index,
                              log=lambda m: click.echo(m, err=True), photo=photo)

    def projection(self, arg: "str | Path", *, paste_into: bool = False):
        """``arg`` as a :class:`latentlab.api.Projection` (see :meth:`latent`): what the commands
        hand to the API's editing functions."""
        from ..api import Projection

        return Projection(self.G, self.latent(arg, paste_into=paste_into), network=self.network)

    def refuse_photo(self, why: str) -> None:
        """One-line error when --photo was given to a mode that pastes nothing (``why``)."""
        if self.photo is not None:
            raise LatentlabError(f"--photo is not used {why}")

    def rows(self, spec: str) -> list[int]:
        from ..editing.layers import parse_layers

        return parse_layers(spec, self.G, rows_exact=self.rows_exact)

    def describe(self, rows: list[int]) -> str:
        from ..editing.layers import describe_rows

        return describe_rows(rows, self.G)


def strength_value(text: str, what: str) -> tuple[float, str]:
    """``1.5`` -> (1.5, "w"): W units; ``1.5s`` or ``1.5σ`` -> (1.5, "sigma"): multiples of the
    direction's sigma (:meth:`latentlab.editing.directions.Direction.sigma`). One-line errors."""
    body = text.strip()
    unit = "w"
    if body[-1:] in ("s", "S", "σ"):
        body, unit = body[:-1], "sigma"
    try:
        float(body)
    except ValueError:
        raise LatentlabError(f"{what}: {text!r} is not a number (W units, or ending in 's' for sigma: "
                             "1.5 or 1s)") from None
    return finite_number(body, what, MAX_STRENGTH), unit


def split_strength(spec: str, what: str) -> tuple[str, float, str | None, str]:
    """``TARGET:STRENGTH[@LAYERS]`` -> (target, strength, layers or None, unit). One-line errors."""
    body, layers = spec, None
    if "@" in spec:
        body, layers = spec.rsplit("@", 1)
        if not layers:
            raise LatentlabError(f"{what} {spec!r}: empty layer range after '@'")
    if ":" not in body:
        raise LatentlabError(f"{what} {spec!r}: expected TARGET:STRENGTH[@LAYERS], e.g. smile.npz:1.5@0-5")
    target, strength = body.rsplit(":", 1)
    value, unit = strength_value(strength, f"{what} {spec!r}: strength")
    if not target:
        raise LatentlabError(f"{what} {spec!r}: missing the direction before ':'")
    return target, value, layers, unit


def parse_strength(value: str, what: str) -> tuple[float, str | None, str]:
    """``STRENGTH[@LAYERS]`` -> (strength, layers or None, unit); STRENGTH as in :func:`strength_value`."""
    text, layers = (value.split("@", 1) + [None])[:2] if "@" in value else (value, None)
    strength, unit = strength_value(text, what)
    return strength, layers, unit


class GreedyListCommand(click.Command):
    """Lets the options named in ``greedy`` take several values: ``--content A B --style X Y`` is
    read as ``--content A --content B --style X --style Y`` (the options must be ``multiple=True``)."""

    greedy: tuple[str, ...] = ()

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        out: list[str] = []
        current: str | None = None
        for tok in args:
            if tok in self.greedy:
                current = tok
                continue
            if tok.startswith("-") and len(tok) > 1:
                current = None
                out.append(tok)
                continue
            out.extend([current, tok] if current else [tok])
        return super().parse_args(ctx, out)


def greedy_command(name: str, greedy: tuple[str, ...], **kwargs: Any):
    cls = type(f"Greedy_{name}", (GreedyListCommand,), {"greedy": greedy})
    return click.command(name, cls=cls, **kwargs)


__all__ = ["INPUT_HELP", "PHOTO_HELP", "SPEC_HELP", "Session", "editing_options", "greedy_command", "parse_strength",
           "split_strength"]
