"""The inversion protocol of the literature's tables, on any folder of photos, presets side by side.

:func:`evaluate` inverts every photo with each preset (``pti``, ``fast``, ``paper``, ...) as a
folder run (:func:`latentlab.engine.runs.project_folder`, so every output of ``latentlab project`` is
kept under ``outdir/<preset>/<photo>/``), then collects per photo and per preset:

* ``psnr``, ``mse``, ``ms_ssim``, ``lpips_alex`` of reconstruction vs aligned photo at 256 px
  (:mod:`latentlab.metrics`: networks and formulas the projector does not optimise);
* ``id_cosine``, ``id_same_person``: FaceRes identity embeddings' cosine and its verdict
  (:func:`latentlab.metrics.identity_metrics_faceres`);
* ``dlib_distance`` and ``dlib_same_person`` (dlib's rule: distance < 0.6);
* ``texture_hf_ratio``, ``texture_peak_ratio``: the cheeks' fine texture at full resolution
  against the photo's (:func:`latentlab.metrics.texture_metrics`);
* ``seconds``: wall time of projection and tuning for that photo;
* with ``edits`` (the default): ``smile_gain_pct``, how much wider the mouth of the reconstruction
  gets with smile +1 sigma (dlib mouth corners over the eye distance, in %), and
  ``smile_dlib_distance``, the edit's dlib distance to the photo.

It writes ``results.csv`` (one row per photo and preset), ``results.json`` (rows and the per-preset
summary: means and the dlib same-person rate) and ``report.html`` (a summary table and, per photo,
the strip photo | reconstruction of each preset, then per preset the edits age -/+2 sigma and yaw
-/+2 sigma, and 1:1 crops of eye and cheek: photo | reconstruction | smile +1 sigma).
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import LatentlabError
from ..progress import ProgressArg

#: Columns of results.csv after ``photo`` and ``preset``, in order.
METRIC_KEYS = ("psnr", "mse", "ms_ssim", "lpips_alex", "id_cosine", "id_same_person", "dlib_distance",
               "dlib_same_person", "texture_hf_ratio", "texture_peak_ratio", "seconds", "steps", "tuning_steps",
               "smile_gain_pct", "smile_dlib_distance",
               # presets that tune: the same measures of the pivot drawn by the base generator
               "pivot_psnr", "pivot_lpips_alex", "pivot_ms_ssim", "pivot_id_cosine", "pivot_dlib_distance",
               "pivot_dlib_same_person")
#: Lower is better for these (for the report's highlighting).
LOWER_IS_BETTER = {"mse", "lpips_alex", "dlib_distance", "seconds", "smile_dlib_distance"}
#: The edit measured on every reconstruction (sigma of the untruncated generator along the direction).
SMILE_EDIT = ("smile", 1.0)
#: The edits shown per photo and preset in the report.
STRIP_EDITS = (("age", -2.0), ("age", 2.0), ("yaw", -2.0), ("yaw", 2.0))
#: Side of the 1:1 crops in the report, in pixels of a 1024 px face (scaled with the model).
CROP_SIDE = 256


@dataclass
class Evaluation:
    """rows: one dict per photo and preset (``photo``, ``preset`` and :data:`METRIC_KEYS`);
    summary: preset -> means of the numeric keys plus ``dlib_same_person_rate`` and ``photos``."""

    rows: list[dict[str, Any]]
    summary: dict[str, dict[str, Any]]
    outdir: Path
    files: dict[str, Path] = field(default_factory=dict)


def _mean(values: Sequence[Any]) -> float | None:
    vals = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)
            and math.isfinite(float(v))]
    return sum(vals) / len(vals) if vals else None


def summarize(rows: list[dict[str, Any]], presets: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per preset: the mean of every numeric metric over its photos, the dlib same-person rate (photos
    where dlib found both faces and said "same"; a photo where it found none counts as not the same)."""
    out: dict[str, dict[str, Any]] = {}
    for preset in presets:
        mine = [r for r in rows if r["preset"] == preset and not r.get("error")]
        s: dict[str, Any] = {"photos": len(mine), "failed": sum(1 for r in rows if r["preset"] == preset
                                                                 and r.get("error"))}
        for k in METRIC_KEYS:
            if k in ("dlib_same_person", "id_same_person", "pivot_dlib_same_person"):
                continue
            s[k] = _mean([r.get(k) for r in mine])
        for k in ("dlib_same_person", "id_same_person", "pivot_dlib_same_person"):
            s[f"{k}_rate"] = sum(1 for r in mine if r.get(k) is True) / len(mine) if mine else None
        out[preset] = s
    return out


def evaluate(files: Sequence[Path], presets: Sequence[str], *, outdir: Path, network: str = "ffhq-mobile",
             device: str = "auto", force: bool = False, progress: ProgressArg = None, G: Any = None,
             overrides: dict[str, Any] | None = None, tuning_overrides: dict[str, Any] | None = None,
             align: bool = True, engine: dict[str, Any] | None = None, edits: bool = True) -> Evaluation:
    """Project ``files`` with every preset and write results.csv, results.json and report.html.

    ``overrides``: ProjectorConfig fields applied on top of every preset (e.g. ``num_steps``;
    ``tuning_*`` ones only to presets that tune); ``tuning_overrides``: TuningConfig fields for
    presets that tune; ``engine``: ``engine``, ``ray_address``, ... keywords of
    :func:`~latentlab.engine.runs.project_folder`. ``edits``: measure smile +1 sigma on every
    reconstruction and draw the report's edit strips and 1:1 crops (``edits.json``,
    ``edits.png`` and ``crops.png`` beside each latent). Without ``force`` a rerun into the same
    ``outdir`` keeps the photos already done (their manifest says so) and projects the rest.
    A photo that fails is a row with its ``error``; the others go on. Returns the :class:`Evaluation`.
    """
    from ..inversion import preset_config
    from .runs import project_folder

    if not presets:
        raise LatentlabError("no presets given")
    if len(set(presets)) != len(presets):
        raise LatentlabError(f"a preset is named twice in {','.join(presets)}")
    outdir = Path(outdir)
    # Flags for pivotal tuning (``tuning_*``) apply only to the presets that tune.
    plain = {k: v for k, v in (overrides or {}).items() if not k.startswith("tuning_")}
    tuned = {**{k: v for k, v in (overrides or {}).items() if k.startswith("tuning_")},
             **{f"tuning_{k}": v for k, v in (tuning_overrides or {}).items()}}
    configs = {p: preset_config(p, **plain, **(tuned if _preset_tunes(p) else {})) for p in presets}
    out_files = {"csv": outdir / "results.csv", "json": outdir / "results.json", "html": outdir / "report.html"}
    if G is None and (engine or {}).get("engine", "local") == "local":
        from ..registry import load_generator, resolve_device

        G = load_generator(network, resolve_device(device), progress=bool(progress))

    rows: list[dict[str, Any]] = []
    for preset in presets:
        failures: dict[str, str] = {}

        def on_result(row: dict[str, Any]) -> None:
            if row.get("status") == "failed":
                failures[Path(str(row.get("photo"))).name] = str(row.get("error"))

        summary = project_folder(list(files), network=network, config=configs[preset], outdir=outdir / preset,
                                 preset=preset, align=align, force=force, device=device, G=G, progress=progress,
                                 skip_existing=not force, on_result=on_result, **(engine or {}))
        if summary.interrupted:
            raise KeyboardInterrupt(f"interrupted: {summary.line()}")
        for f in files:
            row: dict[str, Any] = {"photo": Path(f).name, "preset": preset}
            metrics_file = outdir / preset / Path(f).stem / "metrics.json"
            if metrics_file.is_file():
                m = json.loads(metrics_file.read_text())
                if edits:
                    if G is None:
                        from ..registry import load_generator, resolve_device

                        G = load_generator(network, resolve_device(device), progress=bool(progress))
                    m.update(edit_outputs(G, network, metrics_file.parent, force=force))
                row.update({k: m.get(k) for k in METRIC_KEYS})
            else:
                row.update({k: None for k in METRIC_KEYS})
                row["error"] = failures.get(Path(f).name, "no outputs (the projection did not finish)")
            rows.append(row)
    summary = summarize(rows, presets)
    ev = Evaluation(rows, summary, outdir, out_files)
    _write_csv(rows, out_files["csv"])
    from ..imageio import write_bytes_atomic

    settings = {"network": network, "presets": list(presets), "overrides": overrides or {},
                "tuning_overrides": tuning_overrides or {},
                "configs": {p: _asdict(c) for p, c in configs.items()}}
    write_bytes_atomic(out_files["json"], json.dumps({"settings": settings, "summary": summary, "rows": rows},
                                                     indent=2, default=str) + "\n", force=True)
    write_html(ev, presets, out_files["html"])
    return ev


def edit_outputs(G: Any, network: str, folder: Path, *, force: bool = False) -> dict[str, Any]:
    """Smile +1 sigma on the latent in ``folder`` (a ``latentlab project`` output) and the report's
    pictures: writes ``edits.json`` (``smile_gain_pct``, ``smile_dlib_distance``), ``edits.png``
    (reconstruction, then :data:`STRIP_EDITS`) and ``crops.png`` (1:1 crops of eye and cheek:
    photo | reconstruction | smile). Reuses an ``edits.json`` already there unless ``force``.
    Values are None when the model has no such direction or a face is not found."""
    from ..editing.edits import edit, parse_edits, resolve_edits
    from ..faces.attributes import mouth_measures
    from ..faces.landmarks import NoFaceError, detect_landmarks
    from ..imageio import load_image, save_image, write_bytes_atomic
    from ..latent import load_latent, render
    from ..metrics import identity_metrics_dlib

    done = folder / "edits.json"
    empty = {"smile_gain_pct": None, "smile_dlib_distance": None}
    if done.is_file() and not force:
        return {**empty, **{k: v for k, v in json.loads(done.read_text()).items() if k in empty}}
    latent_file, aligned_file, recon_file = folder / "latent.npz", folder / "aligned.png", folder / "reconstruction.png"
    if not latent_file.is_file() or not aligned_file.is_file():
        return empty
    lat = load_latent(latent_file, G, network=network)
    photo = load_image(aligned_file, min_size=1)
    # the reconstruction `latentlab project` saved is this latent's render; draw it only when absent
    recon = load_image(recon_file, min_size=1) if recon_file.is_file() else render(G, lat)

    directions: dict = {}

    def edited(name: str, sigmas: float) -> np.ndarray | None:
        try:
            ed = resolve_edits(G, network, parse_edits([(name, sigmas)], unit="sigma"), cache=directions,
                               warn=lambda _m: None)
        except LatentlabError:
            return None
        return render(G, edit(lat, ed))

    def mouth(img: np.ndarray) -> float | None:
        try:
            return mouth_measures(detect_landmarks(img).landmarks)["mouth_width"]
        except NoFaceError:
            return None

    smiled = edited(*SMILE_EDIT)
    out = dict(empty)
    if smiled is not None:
        m0, m1 = mouth(recon), mouth(smiled)
        if m0 and m1 is not None:
            out["smile_gain_pct"] = 100.0 * (m1 / m0 - 1.0)
        out["smile_dlib_distance"] = identity_metrics_dlib(photo, smiled)["dlib_distance"]
    # a model without one of the directions shows its reconstruction in that place
    tiles = [_tile(recon)] + [_tile(recon if img is None else img) for img in (edited(n, v) for n, v in STRIP_EDITS)]
    save_image(np.concatenate(tiles, axis=1), folder / "edits.png", force=True)
    try:
        lm = detect_landmarks(photo).landmarks
    except NoFaceError:
        lm = None
    if lm is not None:
        crops = [_crop(x, lm) for x in (photo, recon, smiled) if x is not None]
        save_image(np.concatenate(crops, axis=1), folder / "crops.png", force=True)
    write_bytes_atomic(done, json.dumps(out, indent=1) + "\n", force=True)
    return out


def _crop(img: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """A 1:1 square of ``img`` over the eye and cheek of the photo's 68 ``landmarks`` (midway between
    outer eye corner 36 and nose 31), side :data:`CROP_SIDE` scaled to the image."""
    lm = landmarks
    H, W = img.shape[:2]
    side = max(16, int(round(CROP_SIDE * H / 1024)))
    cx, cy = (lm[36] + lm[31]) / 2
    x0 = int(np.clip(round(cx - side / 2), 0, W - side))
    y0 = int(np.clip(round(cy - side / 2), 0, H - side))
    return img[y0:y0 + side, x0:x0 + side]


def _preset_tunes(name: str) -> bool:
    """Whether preset ``name`` includes pivotal tuning."""
    from ..inversion import PRESETS

    return name in PRESETS and PRESETS[name].tuning is not None


def _asdict(cfg: Any) -> Any:
    import dataclasses

    return dataclasses.asdict(cfg) if cfg is not None else None


def _write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    import io

    from ..imageio import write_bytes_atomic

    buf = io.StringIO()
    cols = ["photo", "preset", *METRIC_KEYS, "error"]
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in cols})
    write_bytes_atomic(path, buf.getvalue(), force=True)


def write_html(ev: Evaluation, presets: Sequence[str], path: Path) -> None:
    """The report page: the per-preset summary, then per photo its strip (photo | each preset)."""
    from ..imageio import load_image
    from ..report import Figure, Report, Step, write_report

    summary_rows = [{"preset": p, **{k: v for k, v in ev.summary[p].items()}} for p in presets]
    steps = [Step("Summary", description="Means over the photos of each preset; metrics at 256 px against the "
                  "aligned photo (latentlab.metrics); dlib_same_person_rate: share of reconstructions dlib "
                  "calls the same person (distance < 0.6).", metrics=summary_rows)]
    photos = list(dict.fromkeys(r["photo"] for r in ev.rows))
    for photo in photos:
        stem = Path(photo).stem
        tiles = []
        aligned = ev.outdir / presets[0] / stem / "aligned.png"
        if aligned.is_file():
            tiles.append(_tile(load_image(aligned, min_size=1)))
        for p in presets:
            rec = ev.outdir / p / stem / "reconstruction.png"
            if rec.is_file():
                tiles.append(_tile(load_image(rec, min_size=1)))
        rows = [r for r in ev.rows if r["photo"] == photo]
        figs = [Figure("photo | " + " | ".join(presets), np.concatenate(tiles, axis=1), max_side=256 * len(tiles))] \
            if tiles else []
        for p in presets:
            folder = ev.outdir / p / stem
            if (folder / "edits.png").is_file():
                strip = load_image(folder / "edits.png", min_size=1)
                figs.append(Figure(f"{p}: reconstruction | " + " | ".join(f"{n} {v:+g} sigma" for n, v in STRIP_EDITS),
                                   strip, max_side=strip.shape[1]))
            if (folder / "crops.png").is_file():
                crops = load_image(folder / "crops.png", min_size=1)
                figs.append(Figure(f"{p}, 1:1: photo | reconstruction | smile {SMILE_EDIT[1]:+g} sigma", crops,
                                   max_side=crops.shape[1]))
        steps.append(Step(photo, metrics=rows, figures=figs))
    write_report(Report("latentlab evaluate", steps=steps), path, force=True)


def _tile(img: np.ndarray, size: int = 256) -> np.ndarray:
    import cv2

    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)


__all__ = ["CROP_SIDE", "Evaluation", "LOWER_IS_BETTER", "METRIC_KEYS", "SMILE_EDIT", "STRIP_EDITS", "edit_outputs",
           "evaluate", "summarize", "write_html"]
