"""``latentlab directions fit | list``: supervised attribute directions (InterFaceGAN-style)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .. import api
from ..errors import LatentlabError
from ._common import (
    MAX_STRENGTH,
    FiniteFloat,
    device_option,
    load_model,
    network_option,
)
from .engine_options import engine_options


@click.group("directions")
def command() -> None:
    """Fit attribute directions in W and list the installed ones."""


def _names(spec: str | None, what: str) -> list[str]:
    if not spec:
        return []
    names = [n.strip().replace("-", "_") for n in spec.split(",") if n.strip()]
    if not names:
        raise LatentlabError(f"{what}: no attribute names in {spec!r}")
    return names


@command.command("fit")
@network_option
@click.option("--attribute", "attributes", required=True, metavar="NAME[,NAME...]",
              help="Attribute(s) to fit: smile, age, gender, yaw, pitch, roll, eyes_open, mouth_width, "
                   "mouth_corner_lift. Several share one sampling run.")
@click.option("--samples", "num_samples", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Number of sampled faces (renders and scores are cached, so a larger N reuses a smaller run).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the latents: z = RandomState(seed).randn(N, z_dim).")
@click.option("--trunc", "truncation_psi", type=FiniteFloat(-MAX_STRENGTH, MAX_STRENGTH), default=0.7, show_default=True,
              help="Truncation psi of the sampled latents.")
@click.option("--condition", default=None, metavar="NAME[,NAME...]",
              help="Project these attributes' fitted directions out (conditional manipulation).")
@click.option("--fraction", type=FiniteFloat(0, 0.5, min_open=True), default=0.25, show_default=True,
              help="Top and bottom fraction of scored samples used as the two classes.")
@click.option("--val-fraction", type=FiniteFloat(0, 1, min_open=True, max_open=True), default=0.2,
              show_default=True, help="Held-out share of the two classes for the validation accuracy.")
@click.option("--method", type=click.Choice(["svm", "logistic"]), default="svm", show_default=True,
              help="Linear classifier: scikit-learn LinearSVC or LogisticRegression.")
@click.option("--layers", default=None, help="Default layer range stored in the file (default: per attribute, "
                                             "e.g. smile 0-5, age 0-9, yaw/pitch 0-6).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Output .npz (one attribute).")
@click.option("--outdir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder for <attribute>.npz (default: the user directions folder "
                   "<cache>/directions/<model>/, where `latentlab edit` finds them).")
@click.option("--batch", type=click.IntRange(min=1), default=4, show_default=True, help="Images per forward pass.")
@click.option("--no-cache", is_flag=True, help="Do not read or write the render/score cache.")
@click.option("--force", is_flag=True, help="Overwrite existing output files.")
@engine_options
@device_option
def fit_cmd(network: str, attributes: str, num_samples: int, seed: int, truncation_psi: float,
            condition: str | None, fraction: float, val_fraction: float, method: str, layers: str | None,
            out: Path | None, outdir: Path | None, batch: int, no_cache: bool, force: bool, engine: str,
            ray_address: str | None, ray_workers: int | None, threads_per_worker: int | None, device: str) -> None:
    """Fit linear attribute boundaries in W on the generator's own samples.

    Samples N latents, renders them (shrunk to 256 px), scores each face with dlib landmarks and the
    age/gender networks, keeps the top and bottom --fraction, fits a linear classifier in W and
    saves its unit normal with metadata. Renders and scores are cached per (model, seed, psi), so
    fitting more attributes, or rerunning after an interruption, does not render again.

    With --engine ray, the chunks of seeds missing from the cache are rendered and scored as Ray
    tasks (--network must be loadable on every node: a registry name or a shared path); the cache
    is written here and the classifier is fitted here, with the same result as --engine local.
    """
    def on_samples(n: int, faces: int | None) -> None:
        if faces is not None:
            click.echo(f"{n} samples, a face found in {faces}")

    fitted = api.fit_directions(network, _names(attributes, "--attribute"), num_samples=num_samples, seed=seed,
                                truncation_psi=truncation_psi, condition=_names(condition, "--condition"),
                                fraction=fraction, val_fraction=val_fraction, method=method, layers=layers, out=out,
                                outdir=outdir, cache=not no_cache, batch=batch, force=force, device=device,
                                engine=engine, ray_address=ray_address, ray_workers=ray_workers,
                                threads_per_worker=threads_per_worker, progress=True, on_samples=on_samples)
    for d in fitted:
        m = d.meta
        cond = f", conditioned on {','.join(m['condition'])}" if m.get("condition") else ""
        click.echo(f"{d.attribute}: validation accuracy {m['val_accuracy']:.3f} ({m['n_val']} held out of "
                   f"{m['n_used']}), layers {d.layers}{cond} -> {d.path}")


@command.command("list")
@click.option("--network", default=None, metavar="NAME|PATH",
              help="Only this model's directions (default: every model with directions).")
@click.option("--directions-dir", "directions_dirs", multiple=True, type=click.Path(file_okay=False, path_type=Path),
              help="Extra folder with <model>/<attribute>.npz files (also $LATENTLAB_DIRECTIONS).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_cmd(network: str | None, directions_dirs: tuple[Path, ...], as_json: bool) -> None:
    """Shipped and user directions with their metadata (first folder wins for a name)."""
    rows = api.list_directions(network, directions_dirs)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo(f"no directions for {api.model_key(network)}" if network else "no directions installed")
        return
    header = ("MODEL", "ATTRIBUTE", "LAYERS", "SAMPLES", "VAL_ACC", "SOURCE", "PATH")
    table = [(r["model"], r["attribute"] + (f" | {','.join(r['condition'])}" if r["condition"] else ""),
              r["layers"], "" if r["samples"] is None else str(r["samples"]),
              "" if r["val_accuracy"] is None else f"{r['val_accuracy']:.3f}", r["source"], r["path"])
             for r in rows]
    widths = [max(len(t[i]) for t in [header, *table]) for i in range(len(header))]
    for t in [header, *table]:
        click.echo("  ".join(c.ljust(w) for c, w in zip(t, widths)).rstrip())


@command.command("components")
@network_option
@click.option("--method", type=click.Choice(["sefa", "ganspace"]), default="sefa", show_default=True,
              help="SeFa: eigenvectors of the stacked style-affine weights of LAYERS (closed form). "
                   "GANSpace: PCA of sampled W, applied on LAYERS.")
@click.option("--layers", default="all", show_default=True,
              help="Layer range the components are computed for and act on (reference rows, a name, or px).")
@click.option("--num", "num_components", type=click.IntRange(min=1), default=10, show_default=True,
              help="How many components to list, strongest first.")
@click.option("--samples", "num_samples", type=click.IntRange(min=2), default=20000, show_default=True,
              help="W samples for GANSpace's PCA.")
@device_option
def components_cmd(network: str, method: str, layers: str, num_components: int, num_samples: int,
                   device: str) -> None:
    """Unsupervised directions (SeFa, GANSpace) with the W+ rows each acts on.

    Use one with `latentlab edit --sefa K:S@LAYERS` or `--ganspace K:S@LAYERS`.
    """
    G = load_model(network, device)
    _, table = api.components(G, method, layers, num_components=num_components, num_samples=num_samples)
    click.echo(f"{method} components of {network} on layers {layers}:")
    click.echo(table)
