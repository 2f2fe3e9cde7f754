"""``latentlab ui``: serve the local web UI (see :mod:`latentlab.ui`)."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

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


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
#: Smallest --memory-budget: one downscaled photo (2048 px, 12 MiB) with its faces and results fits.
MIN_MEMORY_BUDGET = 64 * 2**20


class ByteSize(click.ParamType):
    """A byte count: ``1073741824``, ``512M``, ``512MiB``, ``1G``, ``1.5GB`` (K/M/G/T are powers of 1024)."""

    name = "size"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            n = value
        else:
            m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*", str(value), re.IGNORECASE)
            if m is None:
                self.fail(f"{value!r} is not a size (examples: 512M, 1G, 2GiB)", param, ctx)
            n = int(float(m.group(1)) * _UNITS[m.group(2).lower()])
        if n < MIN_MEMORY_BUDGET:
            self.fail(f"{value!r} is below the minimum of {MIN_MEMORY_BUDGET // 2**20} MiB", param, ctx)
        return n


def _host_name(ctx, param, values: tuple[str, ...]) -> tuple[str, ...]:
    """--allow-host values: bare host names or IP addresses (no scheme, port, path or wildcard)."""
    for v in values:
        name = v.strip().removeprefix("[").removesuffix("]")
        ok = bool(name) and (re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,252})", name) is not None)
        try:
            ipaddress.ip_address(name)
            ok = True
        except ValueError:
            pass
        if not ok:
            raise click.BadParameter(f"{v!r} is not a host name or IP address (no scheme, port or path)")
    return tuple(v.strip() for v in values)


@click.command("ui")
@network_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind. Anything but a loopback address exposes the UI to your network.")
@click.option("--allow-host", "allow_hosts", multiple=True, callback=_host_name, metavar="NAME",
              help="Another name the browser may use to reach the UI (repeatable). Only 127.0.0.1, "
                   "localhost, ::1 and --host are accepted in the Host header otherwise (DNS rebinding).")
@click.option("--memory-budget", type=ByteSize(), default="1G", show_default=True,
              help="Memory that all sessions' photos, latents and images may keep together; the least "
                   "recently used are dropped beyond it (e.g. 512M, 2G).")
@click.option("--port", type=click.IntRange(0, 65535), default=7860, show_default=True,
              help="Port (0: any free port).")
@click.option("--directions", "direction_dirs", multiple=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Extra folder of <model>/<name>.npz directions (repeatable).")
@click.option("--steps", type=click.IntRange(1, 5000), default=None,
              help="Projection steps the page proposes [default: the preset's own; pti: a 30-step pivot].")
@click.option("--preset", type=preset_choice(), default=DEFAULT_PRESET, show_default=True,
              help="Projection settings (the page sets steps and space). " + PRESET_HELP)
@device_option
def command(network: str, host: str, port: int, allow_hosts: tuple[str, ...], memory_budget: int,
            direction_dirs: tuple[Path, ...], steps: int | None, preset: str, device: str) -> None:
    """Serve a local web app: upload a photo, watch alignment and projection (step, LPIPS),
    edit with sliders on each direction's layer range, mix styles, swap faces, and download the
    image and latent (.npz). Makes no outside request. Stop it with Ctrl-C.

    Each browser gets its own session (cookie); state-changing requests need the page's CSRF
    token; requests naming another host or coming from another site are refused."""
    import logging

    from ..ui.app import make_server
    from ..ui.core import Studio

    if not _is_loopback(host):
        click.echo(f"latentlab ui: warning: binding to {host} makes the UI reachable from other machines", err=True)
        if host in ("0.0.0.0", "::") and not allow_hosts:
            click.echo("latentlab ui: note: browsers must reach it by a name given with --allow-host", err=True)
    api.share_one_heap()  # request threads' freed memory can go back to the system (the budget holds)
    G = load_model(network, device)
    studio = Studio(G, network, direction_dirs=direction_dirs, default_steps=steps, preset=preset,
                    memory_budget=memory_budget)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    try:
        server = make_server(studio, host, port, allow_hosts=allow_hosts)
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
