"""``latentlab ui``: serve the local web UI (see :mod:`latentlab.ui`)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import click

from ..errors import LatentlabError
from ._common import device_option, load_model, network_option


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command("ui")
@network_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind. Anything but a loopback address exposes the UI to your network.")
@click.option("--port", type=click.IntRange(0, 65535), default=7860, show_default=True,
              help="Port (0: any free port).")
@click.option("--directions", "direction_dirs", multiple=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Extra folder of <model>/<name>.npz directions (repeatable).")
@click.option("--steps", type=click.IntRange(1, 5000), default=100, show_default=True,
              help="Projection steps the page proposes.")
@click.option("--preset", type=click.Choice(["seed", "nvidia", "fast"]), default="seed", show_default=True,
              help="Projection settings (the page sets steps and space).")
@device_option
def command(network: str, host: str, port: int, direction_dirs: tuple[Path, ...], steps: int, preset: str,
            device: str) -> None:
    """Serve a local web app: upload a photo, watch alignment and projection (step, LPIPS),
    edit with sliders on each direction's layer range, mix styles, swap faces, and download the
    image and latent (.npz). Makes no outside request. Stop it with Ctrl-C."""
    import logging

    from ..ui.app import make_server
    from ..ui.core import Studio

    if not _is_loopback(host):
        click.echo(f"latentlab ui: warning: binding to {host} makes the UI reachable from other machines", err=True)
    G = load_model(network, device)
    studio = Studio(G, network, direction_dirs=direction_dirs, default_steps=steps, preset=preset)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    try:
        server = make_server(studio, host, port)
    except OSError as exc:
        raise LatentlabError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); try --port 0") from None
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"latentlab ui: {network} with {len(studio.directions)} direction(s); "
               f"open http://{shown}:{server.server_port}/ (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("latentlab ui: stopped")
    finally:
        server.server_close()
