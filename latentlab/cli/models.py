"""``latentlab models list | info | convert``."""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path

import click

from ..errors import LatentlabError
from ._common import device_option, refuse_existing


@click.group("models")
def command() -> None:
    """List, inspect and convert generator checkpoints."""


def _source(info) -> str:
    if info.url is None:
        return "PyPI random-face (converted locally)"
    return urllib.parse.urlparse(info.url).netloc


@command.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_cmd(as_json: bool) -> None:
    """Named models: resolution, whether cached, and where they come from."""
    from ..registry import is_cached, list_models, model_path

    models = list_models()
    if as_json:
        rows = [{**m.to_dict(), "cached": is_cached(m.name), "path": str(model_path(m.name))} for m in models]
        click.echo(json.dumps(rows, indent=2))
        return
    header = ("NAME", "RES", "CACHED", "SOURCE")
    rows = [(m.name, str(m.resolution), "yes" if is_cached(m.name) else "no", _source(m)) for m in models]
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
    from ..registry import MODELS, load_generator, resolve_device

    G = load_generator(model, resolve_device(device), progress=True)
    desc = G.describe()
    entry = MODELS.get(model)
    if as_json:
        doc = {"model": model, "file": getattr(G, "checkpoint_path", None),
               "source_format": getattr(G, "source_format", None), **desc}
        if entry is not None:
            doc["registry"] = entry.to_dict()
        from ..editing.layers import layer_table

        doc["layer_ranges"] = layer_table(G)
        click.echo(json.dumps(doc, indent=2))
        return
    lines = [("model", model)]
    if entry is not None:
        lines += [("description", entry.description), ("licence", entry.licence), ("url", entry.url or "-")]
    lines += [("file", getattr(G, "checkpoint_path", "?")), ("format", getattr(G, "source_format", "?"))]
    for key in ("family", "z_dim", "c_dim", "w_dim", "num_ws", "img_resolution", "img_channels",
                "num_noise_buffers"):
        if key in desc:
            lines.append((key, str(desc[key])))
    width = max(len(k) for k, _ in lines) + 1
    for k, v in lines:
        click.echo(f"{(k + ':').ljust(width)} {v}")
    from ..editing.layers import format_layer_table

    click.echo("")
    click.echo(format_layer_table(G))
    rows = desc.get("ws_rows", [])
    click.echo("")
    click.echo(f"W+ rows ({len(rows)}):")
    click.echo("  ROW   RES  LAYERS")
    for r in rows:
        layers = r["layers"] if isinstance(r["layers"], str) else ", ".join(map(str, r["layers"]))
        click.echo(f"  {r['row']:>3}  {r['resolution']:>4}  {layers}")


def _jsonable(extra: dict) -> dict:
    out = {}
    for k, v in (extra or {}).items():
        try:
            json.dumps(v)
        except (TypeError, ValueError):
            continue
        out[str(k)] = v
    return out


@command.command("convert")
@click.argument("src", metavar="SRC")
@click.argument("dest", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite DEST (and its .json) if they exist.")
def convert_cmd(src: str, dest: Path, force: bool) -> None:
    """Convert any supported checkpoint (name, path or URL) to latentlab's .safetensors format.

    The weights are loaded strictly into the generator first, so only a checkpoint that works is
    written. DEST gets a readable DEST.json beside it.
    """
    from ..checkpoints import read_checkpoint
    from ..checkpoints.native import save_native
    from ..registry import generator_from_checkpoint, resolve_checkpoint

    if dest.suffix != ".safetensors":
        raise LatentlabError(f"{dest}: the destination must end in .safetensors")
    refuse_existing([dest, dest.with_suffix(".json")], force)
    path = resolve_checkpoint(src, progress=True)
    data = read_checkpoint(path)
    G = generator_from_checkpoint(data, path)
    extra = {**_jsonable(data.extra), "converted_from": str(src), "source_format": data.source_format}
    config = getattr(G, "config", None) or data.config
    save_native(data.family, config, G.state_dict(), dest, extra=extra)
    click.echo(f"wrote {dest} ({data.family}, {G.img_resolution} px, from {data.source_format})")
