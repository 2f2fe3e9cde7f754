"""The ``latentlab`` command line.

Subcommands live in their own modules, each exposing a click command or group named ``command``.
To add one, append its module to :data:`COMMAND_MODULES`.

Errors: every :class:`~latentlab.errors.LatentlabError` (and an ``OSError`` such as a missing or
unwritable user file) is printed as one line ``latentlab: error: ...`` on stderr with exit code 1;
click's own usage errors exit with 2. Running out of memory is one line with advice (exit 1);
Ctrl-C is ``latentlab: error: interrupted`` (exit 130); any other exception is one line
``latentlab: error: unexpected <Type>: <message> (run with --debug for the traceback)`` (exit 1).
``latentlab --debug ...`` (or ``LATENTLAB_DEBUG=1``) shows the traceback of unexpected errors instead.
``latentlab --allow-http ...`` (or ``LATENTLAB_ALLOW_HTTP=1``) lets downloads use plain http.
"""

from __future__ import annotations

import importlib
import os
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
    "latentlab.cli.evaluate",
    "latentlab.cli.setup_weights",
    "latentlab.cli.demo",
    "latentlab.cli.ui",
    "latentlab.cli.style",
    "latentlab.cli.edit",
    "latentlab.cli.transfer",
    "latentlab.cli.swap",
    "latentlab.cli.morph",
    "latentlab.cli.drag",
    "latentlab.cli.directions",
]


#: Subcommands that may project photos (and so switch glibc's allocator, :func:`latentlab.api.tune_cpu_allocator`).
PROJECTING_COMMANDS = frozenset({"project", "evaluate", "demo", "ui", "style", "edit", "transfer", "swap", "morph",
                                 "drag"})


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def fail(message: str, code: int = 1) -> None:
    """Print ``latentlab: error: message`` on stderr and exit with ``code``."""
    click.echo(f"latentlab: error: {message}", err=True)
    sys.exit(code)


OOM_ADVICE = "try a smaller --batch, --device cpu, fewer --num-steps or a smaller model"


def _debug(ctx: click.Context) -> bool:
    return bool(ctx.params.get("debug")) or os.environ.get("LATENTLAB_DEBUG", "") not in ("", "0")


def _is_oom(exc: BaseException) -> bool:
    """True for Python's MemoryError, torch's OutOfMemoryError and allocator failures that torch
    reports as a plain RuntimeError ("DefaultCPUAllocator: can't allocate memory", "out of memory")."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    if isinstance(exc, RuntimeError):
        text = str(exc)
        return "can't allocate memory" in text or "out of memory" in text.lower()
    return False


class LatentlabGroup(click.Group):
    """A click group that turns every failure into one line on stderr (see the module docstring)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except LatentlabError as exc:
            click.echo(f"latentlab: error: {_one_line(exc)}", err=True)
            ctx.exit(1)
        except KeyboardInterrupt:
            click.echo("latentlab: error: interrupted", err=True)
            ctx.exit(130)
        except Exception as exc:  # noqa: BLE001 - the one place every other failure becomes one line
            if _is_oom(exc):
                where = "GPU memory" if "cuda" in str(exc).lower() or "GPU" in str(exc) else "memory"
                click.echo(f"latentlab: error: out of {where} ({OOM_ADVICE})", err=True)
                ctx.exit(1)
            if isinstance(exc, OSError):
                click.echo(f"latentlab: error: {_one_line(exc)}", err=True)
                ctx.exit(1)
            if _debug(ctx):
                raise
            msg = _one_line(exc)
            msg = msg if len(msg) <= 300 else msg[:297] + "..."
            click.echo(f"latentlab: error: unexpected {type(exc).__name__}: {msg} "
                       "(run with --debug for the traceback)", err=True)
            ctx.exit(1)


@click.group(cls=LatentlabGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="latentlab")
@click.option("--debug", is_flag=True, envvar="LATENTLAB_DEBUG",
              help="Show the Python traceback of unexpected errors (also LATENTLAB_DEBUG=1).")
@click.option("--allow-http", is_flag=True,
              help="Allow model downloads over plain http (default: https only; also LATENTLAB_ALLOW_HTTP=1).")
@click.pass_context
def main(ctx: click.Context, debug: bool, allow_http: bool) -> None:
    """latentlab: StyleGAN latent-space toolkit for faces.

    Models are named (see `latentlab models list`), or given as a checkpoint path or URL.
    """
    if allow_http:
        os.environ["LATENTLAB_ALLOW_HTTP"] = "1"
    if ctx.invoked_subcommand in PROJECTING_COMMANDS:
        # The command line owns its process: let glibc reuse freed memory (same results, faster CPU
        # projection; see latentlab.api.tune_cpu_allocator). Library calls never change their host process.
        from .. import api

        api.tune_cpu_allocator()


def _register() -> None:
    for module_name in COMMAND_MODULES:
        module = importlib.import_module(module_name)
        main.add_command(module.command)


_register()

__all__ = ["COMMAND_MODULES", "OOM_ADVICE", "LatentlabGroup", "fail", "main"]
