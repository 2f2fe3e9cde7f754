"""Runs over many photos: folder inversion (``latentlab project``) and evaluation (``latentlab evaluate``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import LatentlabError
from ..models.base import Generator
from ..progress import ProgressArg


def collect_photos(paths: Sequence["str | Path"]) -> list[Path]:
    """Photo files from files and folders (a folder's image files, sorted; hidden files left out).
    One-line errors for a missing path, an empty folder or two photos with the same name."""
    from ..engine.outputs import collect_photos as collect

    return collect(paths)


def project_photos(photos: Sequence["str | Path"], outdir: "str | Path", preset: str = "pti", *,
                   network: str | None = None, G: Generator | None = None, align: bool = True, face_index: int = 0,
                   batch: int | None = None, save_video: bool = False, compare_methods: bool = False,
                   force: bool = False, skip_existing: bool = False, device: str = "auto",
                   engine: str = "local", ray_address: str | None = None, ray_workers: int | None = None,
                   threads_per_worker: int | None = None, progress: ProgressArg = True,
                   on_result: Callable[[dict[str, Any]], None] | None = None, **config: Any) -> Any:
    """Invert photos (files or folders) into ``outdir`` as ``latentlab project`` does: one folder
    per photo (aligned.png, reconstruction.png, compare.png, pasted.png, latent.npz (+ its tuning),
    metrics.json), ``outdir/manifest.jsonl`` with one row per photo, resume (``skip_existing``),
    per-photo isolation of failures, Ctrl-C keeping what is done. ``preset`` and ``config`` as in
    :func:`~latentlab.api.project`; ``engine="ray"`` runs on a Ray cluster. ``compare_methods``: the
    paper's pixel-loss and feature-loss methods side by side (``outdir/method1``, ``method2``,
    ``compare_methods.png``). Returns the run's :class:`~latentlab.engine.folder.RunSummary`."""
    from ..engine.runs import compare_methods as compare
    from ..engine.runs import project_folder
    from ..inversion import preset_config

    from ..registry import DEFAULT_MODEL, network_name

    network = network or (network_name(G) if G is not None else DEFAULT_MODEL)
    cfg = preset_config(preset, **config)
    files = collect_photos(photos)
    run = compare if compare_methods else project_folder
    return run(files, network=network, config=cfg, outdir=Path(outdir), preset=preset, align=align,
               face_index=face_index, batch=batch, save_video=save_video, force=force, skip_existing=skip_existing,
               device=device, G=G, progress=progress, on_result=on_result, engine=engine, ray_address=ray_address,
               ray_workers=ray_workers, threads_per_worker=threads_per_worker)


def evaluate(photos: Sequence["str | Path"], presets: Sequence[str], outdir: "str | Path", *,
             network: str | None = None, G: Generator | None = None, device: str = "auto", force: bool = False,
             align: bool = True, engine: str = "local", ray_address: str | None = None, ray_workers: int | None = None,
             threads_per_worker: int | None = None, progress: ProgressArg = True, edits: bool = True,
             **config: Any) -> Any:
    """Invert every photo with each preset and measure them side by side, as ``latentlab
    evaluate`` does: ``outdir/<preset>/<photo>/`` (the outputs of a folder run), ``results.csv``,
    ``results.json`` (rows and per-preset means, the dlib same-person rate) and ``report.html``.
    ``config``: ProjectorConfig fields applied to every preset (``tuning_*`` only to presets that
    tune). ``edits``: also measure smile +1 sigma per reconstruction and draw the report's edit
    strips and 1:1 crops. Without ``force`` a rerun into the same ``outdir`` keeps the photos
    already done. Returns the :class:`~latentlab.engine.evaluate.Evaluation`."""
    from ..engine.evaluate import evaluate as run
    from ..registry import DEFAULT_MODEL, network_name

    network = network or (network_name(G) if G is not None else DEFAULT_MODEL)
    if not presets:
        raise LatentlabError("no presets given")
    eng = {"engine": engine, "ray_address": ray_address, "ray_workers": ray_workers,
           "threads_per_worker": threads_per_worker}
    return run(collect_photos(photos), list(presets), outdir=Path(outdir), network=network, device=device,
               force=force, progress=progress, G=G, overrides={k: v for k, v in config.items() if v is not None},
               align=align, engine=eng, edits=edits)


__all__ = ["collect_photos", "evaluate", "project_photos"]
