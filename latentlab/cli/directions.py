"""``latentlab directions fit | list``: supervised attribute directions (InterFaceGAN-style)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import LatentlabError
from ..engine.options import engine_options
from ._common import MAX_STRENGTH, FiniteFloat, device_option, network_option, refuse_existing


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
    from ..assets import cache_dir
    from ..editing.attributes import model_key
    from ..editing.fit import collect_samples, fit_direction
    from ..faces.attributes import ATTRIBUTES
    from ._common import load_model

    names = _names(attributes, "--attribute")
    conds = _names(condition, "--condition")
    for n in names + conds:
        if n not in ATTRIBUTES:
            raise LatentlabError(f"unknown attribute {n!r}; known: {', '.join(ATTRIBUTES)}")
    if out is not None and (outdir is not None or len(names) != 1):
        raise LatentlabError("--out takes one attribute; use --outdir for several")
    key = model_key(network)
    if out is not None:
        paths = {names[0]: out}
    else:
        folder = outdir if outdir is not None else cache_dir() / "directions" / key
        paths = {n: folder / f"{n}.npz" for n in names}
    refuse_existing(list(paths.values()), force)

    G = load_model(network, device)
    compute_chunks = None
    if engine == "ray":
        from ..engine.ray_engine import ray_chunk_runner, require_ray

        require_ray()
        compute_chunks = ray_chunk_runner(network=str(network), device=device, address=ray_address,
                                          workers=ray_workers, threads_per_worker=threads_per_worker)
    samples = collect_samples(G, num_samples, seed=seed, truncation_psi=truncation_psi, model=key,
                              cache=not no_cache, batch=batch, progress=True, compute_chunks=compute_chunks)
    if "face_found" in samples.scores:
        click.echo(f"{len(samples)} samples, a face found in {int(samples.scores['face_found'].sum())}")
    for n in names:
        d = fit_direction(G, n, samples=samples, seed=seed, truncation_psi=truncation_psi,
                          condition=[c for c in conds if c != n], fraction=fraction, val_fraction=val_fraction,
                          method=method, model=key, layers=layers, progress=False)
        d.save(paths[n], force=force)
        m = d.meta
        cond = f", conditioned on {','.join(m['condition'])}" if m["condition"] else ""
        click.echo(f"{n}: validation accuracy {m['val_accuracy']:.3f} ({m['n_val']} held out of {m['n_used']}), "
                   f"layers {d.layers}{cond} -> {paths[n]}")


@command.command("list")
@click.option("--network", default=None, metavar="NAME|PATH",
              help="Only this model's directions (default: every model with directions).")
@click.option("--directions-dir", "directions_dirs", multiple=True, type=click.Path(file_okay=False, path_type=Path),
              help="Extra folder with <model>/<attribute>.npz files (also $LATENTLAB_DIRECTIONS).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_cmd(network: str | None, directions_dirs: tuple[Path, ...], as_json: bool) -> None:
    """Shipped and user directions with their metadata (first folder wins for a name)."""
    from ..editing.attributes import PACKAGE_DIR, available_attributes, model_key, models_with_directions
    from ..editing.directions import load_direction

    models = [model_key(network)] if network else models_with_directions(directions_dirs)
    rows = []
    for m in models:
        for name, path in sorted(available_attributes(m, directions_dirs).items()):
            try:
                d = load_direction(path)
                meta = d.meta if isinstance(d.meta, dict) else {}
                layers = d.layers
            except LatentlabError as exc:
                meta, layers = {"error": str(exc)}, "?"
            shipped = PACKAGE_DIR in path.resolve().parents
            rows.append({"model": m, "attribute": name, "layers": layers, "samples": meta.get("samples"),
                         "val_accuracy": meta.get("val_accuracy"), "condition": meta.get("condition", []),
                         "source": "shipped" if shipped else "user", "path": str(path), "meta": meta})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo(f"no directions for {model_key(network)}" if network else "no directions installed")
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
              help="Layer range the components are computed for and act on (seed rows, a name, or px).")
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
    from ..editing.unsupervised import format_components, ganspace, sefa
    from ._common import load_model

    G = load_model(network, device)
    comps = (sefa(G, layers, num_components=num_components) if method == "sefa"
             else ganspace(G, layers, num_samples=num_samples, num_components=num_components))
    click.echo(f"{method} components of {network} on layers {layers}:")
    click.echo(format_components(comps, G, limit=num_components))
