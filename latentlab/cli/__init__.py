"""The ``latentlab`` command line.

Subcommands live in their own modules, each exposing a click command or group named ``command``.
To add one, append its module to :data:`COMMAND_MODULES`.

Errors: every :class:`~latentlab.errors.LatentlabError` (and an ``OSError`` such as a missing or
unwritable user file) is printed as one line ``latentlab: error: ...`` on stderr with exit code 1;
click's own usage errors exit with 2. No traceback is shown for either.
"""

from __future__ import annotations

import importlib
import sys

import click

from .. import __version__
from ..errors import LatentlabError

#: Modules that define a subcommand as ``command``; one line per subcommand.
COMMAND_MODULES: list[str] = [
    "latentlab.cli.models",
    "latentlab.cli.sample",
    "latentlab.cli.interpolate",
    "latentlab.cli.project",
    "latentlab.cli.setup_weights",
    "latentlab.cli.demo",
    "latentlab.cli.ui",
    "latentlab.cli.style",
    "latentlab.cli.edit",
    "latentlab.cli.transfer",
    "latentlab.cli.swap",
    "latentlab.cli.morph",
    "latentlab.cli.directions",
]


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def fail(message: str, code: int = 1) -> None:
    """Print ``latentlab: error: message`` on stderr and exit with ``code``."""
    click.echo(f"latentlab: error: {message}", err=True)
    sys.exit(code)


class LatentlabGroup(click.Group):
    """A click group that turns user-facing errors into one line on stderr."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except LatentlabError as exc:
            click.echo(f"latentlab: error: {_one_line(exc)}", err=True)
            ctx.exit(1)
        except OSError as exc:
            click.echo(f"latentlab: error: {_one_line(exc)}", err=True)
            ctx.exit(1)
        except MemoryError:
            click.echo("latentlab: error: out of memory (try a smaller --batch)", err=True)
            ctx.exit(1)
        except RuntimeError as exc:
            if type(exc).__name__ == "OutOfMemoryError":
                click.echo("latentlab: error: out of GPU memory (try a smaller --batch or --device cpu)",
                           err=True)
                ctx.exit(1)
            raise


@click.group(cls=LatentlabGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="latentlab")
def main() -> None:
    """latentlab: StyleGAN latent-space toolkit for faces.

    Models are named (see `latentlab models list`), or given as a checkpoint path or URL.
    """


def _register() -> None:
    for module_name in COMMAND_MODULES:
        module = importlib.import_module(module_name)
        main.add_command(module.command)


_register()

__all__ = ["COMMAND_MODULES", "LatentlabGroup", "fail", "main"]
