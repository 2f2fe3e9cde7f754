"""Options and helpers shared by the editing commands (style, edit, transfer, swap, morph)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from .. import api
from ..errors import LatentlabError
from ._common import (
    DEFAULT_PRESET,
    PRESET_HELP,
    device_option,
    load_model,
    network_option,
    preset_choice,
)

SPEC_HELP = api.SPEC_HELP
INPUT_HELP = ("Inputs are photos (aligned and projected on the fly with --preset, default pti; the result is "
              "cached and reused) or latent .npz files from `latentlab project` or another editing command.")
PHOTO_HELP = ("Original photo of the latent .npz input that results are pasted into ({which}), for the "
              "_pasted outputs; without it a latent input gives aligned results only (photo paths stored "
              "inside latent files are never opened). Photo inputs need no --photo.")
#: File suffix of latent inputs; anything else is a photo.
LATENT_SUFFIX = ".npz"


def is_latent_input(arg: str | Path) -> bool:
    """True when ``arg`` names a latent file (``.npz``), False for a photo."""
    return Path(arg).suffix.lower() == LATENT_SUFFIX


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
        f = click.option("--preset", type=preset_choice(), default=DEFAULT_PRESET, show_default=True,
                         help="Projection preset for photo inputs. " + PRESET_HELP)(f)
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
        self.network = network
        self.G = load_model(network, device)
        self.preset = preset
        self.num_steps = num_steps
        self.cache = not no_cache
        self.face_index = face_index
        self.rows_exact = rows_exact
        self.photo = photo  # --photo: the original photo of the input results are pasted into
        self.notes: list[str] = []

    @classmethod
    def from_kwargs(cls, kw: dict[str, Any]) -> Session:
        """A session from the keywords of :func:`editing_options` (removed from ``kw``)."""
        return cls(kw.pop("network"), kw.pop("device"), kw.pop("preset"), kw.pop("num_steps"), kw.pop("no_cache"),
                   kw.pop("face_index"), kw.pop("rows_exact"), kw.pop("photo", None))

    def projection(self, arg: str | Path, *, paste_into: bool = False) -> api.Projection:
        """``arg`` (a photo, projected with the session's preset, or a latent .npz) as a
        :class:`latentlab.api.Projection` (:func:`latentlab.api.project`). With ``paste_into`` it
        is the input results are pasted into: it gets ``--photo`` (refused for a photo input, which
        is its own original), and a latent input without one notes that aligned results only are
        written (:meth:`echo_notes`)."""
        latent = is_latent_input(arg)
        photo = self.photo if paste_into else None
        if photo is not None and not latent:
            raise LatentlabError(f"--photo is for a latent .npz input; {arg} is a photo, its own original")
        config = {"num_steps": self.num_steps} if self.num_steps is not None and not latent else {}
        p = api.project(arg, self.G, preset=self.preset, network=self.network, cache=self.cache,
                        face_index=self.face_index, original=photo, progress=True, **config)
        if paste_into and latent and not p.can_paste and p.transform is not None:
            how = ("it names a photo path, which is never opened; pass --photo PATH to use it"
                   if p.settings.get("photo") else "pass --photo PATH to paste results into it")
            self.notes.append(f"latentlab: {arg}: no original photo given ({how}); writing aligned results only")
        return p

    def echo_notes(self) -> None:
        """Print the notes gathered while reading inputs (on stderr), once, before outputs are written."""
        for note in self.notes:
            click.echo(note, err=True)
        self.notes = []

    def refuse_photo(self, why: str) -> None:
        """One-line error when --photo was given to a mode that pastes nothing (``why``)."""
        if self.photo is not None:
            raise LatentlabError(f"--photo is not used {why}")

    def describe(self, spec: str) -> str:
        """A layer-range spec resolved on the model, as text (``rows:0-4 (4-16 px)``); one-line
        errors for a bad spec."""
        return api.describe_layers(self.G, spec, rows_exact=self.rows_exact)

    def describe_rows(self, rows: Sequence[int]) -> str:
        """W+ row indices of the model, as text (``rows:0-4 (4-16 px)``)."""
        return api.describe_layers(self.G, "rows:" + ",".join(str(int(r)) for r in rows))


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
    """``click.command(name)`` whose options ``greedy`` take several values (:class:`GreedyListCommand`)."""
    cls = type(f"Greedy_{name}", (GreedyListCommand,), {"greedy": greedy})
    return click.command(name, cls=cls, **kwargs)


__all__ = ["INPUT_HELP", "PHOTO_HELP", "SPEC_HELP", "Session", "editing_options", "greedy_command",
           "is_latent_input"]
