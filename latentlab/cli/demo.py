"""``latentlab demo``: argument parsing for the demo; its steps live in :mod:`latentlab.demo`
(imported when the command runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..errors import LatentlabError
from ._common import device_option

#: The demo's steps: None runs :data:`latentlab.demo.STEPS`; a list of (name, step) pairs replaces them.
STEPS: list[tuple[str, Any]] | None = None


def run_demo(outdir: Path, **kwargs: Any) -> tuple[Path, list[str]]:
    """:func:`latentlab.demo.run_demo` with this module's :data:`STEPS` when set (looked up when
    called) and progress lines on the terminal. Returns (report path, failed step names)."""
    from ..demo import run_demo as run

    kwargs.setdefault("echo", click.echo)
    kwargs.setdefault("steps", STEPS)
    return run(outdir, **kwargs)


@click.command("demo")
@click.option("--outdir", type=click.Path(file_okay=False, path_type=Path), default=Path("out/demo"),
              show_default=True)
@click.option("--photos", "photos_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=None, help="Also align and project the photos in this folder.")
@click.option("--num-steps", type=click.IntRange(min=1), default=None,
              help="Projection steps per method (default 100, --quick 15).")
@click.option("--quick", is_flag=True, help="A 2-3 minute run: fewer samples, steps and edit strengths.")
@click.option("--force", is_flag=True, help="Overwrite an earlier demo's files.")
@device_option
def command(outdir: Path, photos_dir: Path | None, num_steps: int | None, quick: bool, force: bool,
            device: str) -> None:
    """The main job: sample, align, project (two methods), edit, style-transfer and swap on
    ffhq-mobile, and write everything to OUTDIR/report.html (one self-contained page)."""
    report_path, failed = run_demo(outdir, photos_dir=photos_dir, num_steps=num_steps, quick=quick,
                                   force=force, device=device)
    click.echo(f"latentlab demo: report written to {report_path.resolve()}")
    if failed:
        raise LatentlabError(f"demo steps failed: {', '.join(failed)} (see {report_path})")
