"""``latentlab evaluate``: the inversion protocol of the literature's tables on any photos, presets side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .. import api
from ..errors import LatentlabError
from ._common import PRESET_NAMES, device_option, network_option
from .engine_options import engine_options
from .project import config_options


@click.command("evaluate")
@click.argument("photos", nargs=-1, required=True, type=click.Path(path_type=Path))
@network_option
@click.option("--preset", "presets", default="fast,pti", show_default=True,
              help=f"Comma-separated projection presets to compare ({', '.join(PRESET_NAMES)}).")
@config_options
@click.option("--outdir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Output folder: results.csv, results.json, report.html and OUTDIR/<preset>/<photo>/ "
                   "(every output of `latentlab project`).")
@click.option("--no-align", is_flag=True, help="Photos are already FFHQ-aligned: only resize them.")
@click.option("--no-edits", is_flag=True, help="Skip the smile +1 sigma measure and the report's edit strips "
                                               "and 1:1 crops.")
@click.option("--force", is_flag=True, help="Project every photo again and overwrite the outputs (without it, "
                                             "a rerun into the same --outdir keeps the photos already done).")
@engine_options
@device_option
def command(photos: tuple[Path, ...], network: str, presets: str, outdir: Path, no_align: bool, no_edits: bool,
            force: bool, engine: str, ray_address: str | None, ray_workers: int | None, threads_per_worker: int | None,
            device: str, optimize_noise: bool | None, **overrides: Any) -> None:
    """Project PHOTO... (files or folders) with each preset and measure every reconstruction.

    Per photo and preset: PSNR, MSE, MS-SSIM and LPIPS-Alex against the aligned photo at 256 px
    (networks and formulas the projector does not optimise), dlib's face-descriptor distance and
    same-person verdict (< 0.6), the FaceRes identity cosine and its verdict, the cheeks' texture at
    full resolution against the photo's (high-frequency energy ratio, spectral peak ratio), how much
    smile +1 sigma widens the mouth and its dlib distance to the photo, and the seconds of
    projection plus tuning. Writes OUTDIR/results.csv (a row per photo and preset),
    results.json (rows, per-preset means, the dlib same-person rate, the exact settings) and
    report.html (the summary table and, per photo, photo | one reconstruction per preset, the
    edits age -/+2 sigma and yaw -/+2 sigma, and 1:1 crops photo | reconstruction | smile).
    Projection flags (--num-steps, --pti-steps, ...) apply to every preset given.
    """
    names = [p.strip() for p in presets.split(",") if p.strip()]
    ev = api.evaluate(photos, names, outdir, network=network, device=device, force=force, align=not no_align,
                      edits=not no_edits, engine=engine, ray_address=ray_address, ray_workers=ray_workers,
                      threads_per_worker=threads_per_worker, progress=True, optimize_noise=optimize_noise,
                      **overrides)
    cols = ("psnr", "lpips_alex", "ms_ssim", "id_cosine", "dlib_distance", "dlib_same_person_rate",
            "texture_hf_ratio", "smile_gain_pct", "seconds")
    click.echo("(means over the photos; dlib_same_person_rate: share of reconstructions dlib calls the same person; "
               "seconds: per photo)")
    click.echo("preset  " + "  ".join(f"{c:>12}" for c in cols))
    for name in names:
        s = ev.summary[name]
        click.echo(f"{name:7s} " + "  ".join(f"{s.get(c):12.4f}" if isinstance(s.get(c), float) else f"{'-':>12}"
                                             for c in cols))
    click.echo(f"latentlab: wrote {ev.files['csv']}, {ev.files['json']} and {ev.files['html']}")
    failed = [r for r in ev.rows if r.get("error")]
    if failed:
        raise LatentlabError(f"{len(failed)} of {len(ev.rows)} photo projections failed; first: "
                             f"{failed[0]['preset']} {failed[0]['photo']}: {failed[0]['error']}")
