"""``latentlab models list | info | convert``."""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path
from typing import Any

import click

from .. import api
from ._common import device_option


@click.group("models")
def command() -> None:
    """List, inspect and convert generator checkpoints."""


def _source(model: dict[str, Any]) -> str:
    if model.get("url") is None:
        return "PyPI random-face (converted locally)"
    return urllib.parse.urlparse(model["url"]).netloc


@command.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_cmd(as_json: bool) -> None:
    """Named models: resolution, whether cached, and where they come from."""
    models = api.list_models()
    if as_json:
        click.echo(json.dumps(models, indent=2))
        return
    header = ("NAME", "RES", "CACHED", "SOURCE")
    rows = [(m["name"], str(m["resolution"]), "yes" if m["cached"] else "no", _source(m)) for m in models]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


@command.command("info")
@click.argument("model", metavar="NAME_OR_PATH")
@click.option("--json", "as_json", is_flag=True, help="Print the layout as JSON.")
@device_option
def info_cmd(model: str, as_json: bool, device: str) -> None:
    """Print a model's layout: dimensions and the W+ rows with their resolutions and layers.

    A registry name is downloaded (or built) first if it is not cached yet.
    """
    doc = api.describe_model(model, device, progress=True)
    if as_json:
        click.echo(json.dumps({k: v for k, v in doc.items() if k != "layer_ranges_text"}, indent=2, default=str))
        return
    click.echo(api.format_model(doc))


@command.command("convert")
@click.argument("src", metavar="SRC")
@click.argument("dest", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite DEST (and its .json) if they exist.")
def convert_cmd(src: str, dest: Path, force: bool) -> None:
    """Convert any supported checkpoint (name, path or URL) to latentlab's .safetensors format.

    The weights are loaded strictly into the generator first, so only a checkpoint that works is
    written. DEST gets a readable DEST.json beside it.
    """
    info = api.convert_model(src, dest, force=force, progress=True)
    click.echo(f"wrote {dest} ({info['family']}, {info['img_resolution']} px, from {info['source_format']})")
