"""The demo's steps (``latentlab demo``): sample, align, project, edit, style-transfer and swap on
the embedded default model, written up as one HTML page (``OUTDIR/report.html``).

Steps (each one a section of the report, with its settings, metrics, figures and the exact
``latentlab ...`` commands that reproduce them):

1. sampling: faces from ``ffhq-mobile`` (:func:`latentlab.api.sample`, written as ``latentlab sample``
   writes them);
2. alignment: dlib's 68 landmarks and the FFHQ crop on scikit-image's public-domain ``astronaut``
   photo (not aligned) and on any ``--photos DIR``;
3. projection with both of the seed's methods, pixel loss (1) and VGG/LPIPS feature loss (2)
   (:func:`latentlab.engine.folder.run_projection`, the function ``latentlab project
   --compare-methods`` runs), pasted back into the photo;
4. attribute edits (smile, age, head pose) on their layer ranges; 5. style transfer (W+ rows 9-18
   from a second face); 6. face swap -- with :mod:`latentlab.api` (``Projection.sweep``,
   :func:`~latentlab.api.style`, :func:`~latentlab.api.swap`), written by the writers the editing
   commands use (:mod:`latentlab.editing.render`); a piece that is missing from this installation
   is reported as *unavailable* with the reason, never faked.

The commands the report prints run the same library functions on the same inputs (the parity
tests, ``tests/test_parity.py``, hold the command line, the API and the UI to the same results), so
they reproduce the figures. :mod:`latentlab.cli.demo` parses the command line and calls
:func:`run_demo`.
"""

from __future__ import annotations

import json
import platform
import re
import shlex
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .errors import LatentlabError

NETWORK = "ffhq-mobile"
STYLE_ROWS = "9-18"


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr)


def demo_photo(dest: Path) -> Path:
    """Write scikit-image's public-domain ``astronaut`` photo (512x512, not aligned) to ``dest``."""
    from skimage import data

    from .imageio import save_image

    if not dest.exists():
        save_image(data.astronaut(), dest)
    return dest


def command_line(args: Sequence[Any]) -> str:
    """The shell line for ``latentlab ARGS...``."""
    return "latentlab " + shlex.join([str(a) for a in args])


@dataclass
class DemoContext:
    """What the steps share: options, the generator, and results of earlier steps."""

    outdir: Path
    photos: list[Path]
    quick: bool
    steps: int
    device: str
    echo: Callable[[str], None] = _stderr
    G: Any = None
    latents: dict[str, Any] = field(default_factory=dict)  # photo stem -> api.Projection (best method)
    methods: dict[str, str] = field(default_factory=dict)  # photo stem -> the best method's folder
    originals: dict[str, np.ndarray] = field(default_factory=dict)
    aligned: dict[str, Any] = field(default_factory=dict)  # photo stem -> AlignedFace


def thumbnail(image: np.ndarray, size: int = 256) -> np.ndarray:
    """uint8 [H, W, 3] -> [size, size * W / H, 3] (Lanczos)."""
    from PIL import Image

    h, w = image.shape[:2]
    return np.asarray(Image.fromarray(image).resize((max(1, round(size * w / h)), size), Image.LANCZOS))


def hstack(images: list[np.ndarray], size: int = 256, gap: int = 4) -> np.ndarray:
    """Thumbnails of the same height side by side with a white gap."""
    tiles = [thumbnail(im, size) for im in images]
    out: list[np.ndarray] = []
    for t in tiles:
        if out:
            out.append(np.full((size, gap, 3), 255, np.uint8))
        out.append(t)
    return np.concatenate(out, axis=1)


def vstack(images: list[np.ndarray], gap: int = 4) -> np.ndarray:
    width = max(im.shape[1] for im in images)
    rows = []
    for im in images:
        if rows:
            rows.append(np.full((gap, width, 3), 255, np.uint8))
        pad = np.full((im.shape[0], width - im.shape[1], 3), 255, np.uint8)
        rows.append(np.concatenate([im, pad], axis=1))
    return np.concatenate(rows, axis=0)


def landmark_overlay(image: np.ndarray, face: Any) -> np.ndarray:
    """The photo with the 68 landmarks (green) and the FFHQ crop square (red) drawn on it."""
    import cv2

    out = image.copy()
    s = max(1, round(max(image.shape[:2]) / 400))
    quad = np.round(face.quad).astype(np.int32)
    cv2.polylines(out, [quad.reshape(-1, 1, 2)], True, (230, 30, 30), 2 * s, cv2.LINE_AA)
    if face.landmarks is not None:
        for x, y in face.landmarks:
            cv2.circle(out, (int(round(x)), int(round(y))), s + 1, (40, 220, 40), -1, cv2.LINE_AA)
    return out


# ----------------------------------------------------------------------------------- steps
def step_sampling(ctx: DemoContext):
    from . import api
    from .imageio import load_image
    from .report import Figure, Step

    seeds = "0-1" if ctx.quick else "0-3"
    args = ["sample", "--network", NETWORK, "--seeds", seeds, "--trunc", "0.7", "--outdir",
            str(ctx.outdir / "samples"), "--force", "--device", ctx.device]
    api.sample(ctx.G, seeds, 0.7, network=NETWORK).save(ctx.outdir / "samples", force=True)
    return Step("Sampling faces from the generator",
                description=f"Random faces from {NETWORK} (MobileStyleGAN, FFHQ, 1024 px): z from each seed's "
                            "NumPy RandomState, mapped to W with truncation psi 0.7 (towards the mean face), "
                            "rendered with the model's constant noise.",
                settings={"network": NETWORK, "seeds": seeds, "truncation_psi": 0.7, "noise_mode": "const"},
                commands=[command_line(args)],
                figures=[Figure("samples/grid.png", load_image(ctx.outdir / "samples" / "grid.png"),
                                "one 1024 px PNG per seed beside it, and samples.npz (z, ws)")])


def step_alignment(ctx: DemoContext):
    from .faces import align_face
    from .imageio import load_image
    from .report import Figure, Step

    rows, metrics = [], []
    for p in ctx.photos:
        t0 = time.perf_counter()
        img = load_image(p)
        face = align_face(img, ctx.G.img_resolution, source=str(p))
        ctx.originals[p.stem], ctx.aligned[p.stem] = img, face
        rows.append(hstack([landmark_overlay(img, face), face.image], size=320))
        metrics.append({"photo": p.name, "size": f"{img.shape[1]}x{img.shape[0]}",
                        "crop side (px in photo)": float(np.linalg.norm(face.quad[3] - face.quad[0])),
                        "seconds": time.perf_counter() - t0})
    return Step("Face alignment",
                description="dlib finds the face and its 68 landmarks; the crop square follows the FFHQ "
                            "recipe (eyes and mouth fix its centre, size and rotation) and is resampled to "
                            f"{ctx.G.img_resolution} px. The transform is kept, so results can be pasted back "
                            "into the original photo.",
                settings={"resolution": ctx.G.img_resolution, "landmarks": "dlib 68-point",
                          "photos": ", ".join(p.name for p in ctx.photos)},
                metrics=metrics,
                notes=["`latentlab project` aligns each photo first and writes it as <photo>/aligned.png "
                       "(see the next step's command)."],
                figures=[Figure("landmarks and FFHQ crop | aligned face", vstack(rows))])


def step_projection(ctx: DemoContext):
    from . import api
    from .engine.folder import run_projection
    from .imageio import load_image
    from .inversion.project import preset_config
    from .report import Figure, Step

    outdir = ctx.outdir / "projection"
    args = ["project", *[str(p) for p in ctx.photos], "--network", NETWORK, "--preset", "seed",
            "--num-steps", str(ctx.steps), "--compare-methods", "--outdir", str(outdir), "--force",
            "--device", ctx.device]
    run = run_projection(list(ctx.photos), network=NETWORK, config=preset_config("seed", num_steps=ctx.steps),
                         outdir=outdir, compare_methods=True, force=True, device=ctx.device, preset="seed", G=ctx.G)
    if run.interrupted:
        raise KeyboardInterrupt
    if run.failed:
        photo, reason = run.failed[0]
        raise LatentlabError(reason if Path(photo).name in reason else f"{photo}: {reason}")
    metrics, pasted = [], []
    for p in ctx.photos:
        best = None
        for method, label in (("method1", "1: pixel MSE"), ("method2", "2: VGG/LPIPS features")):
            d = outdir / method / p.stem
            m = json.loads((d / "metrics.json").read_text())
            metrics.append({"photo": p.name, "method": label, "PSNR dB": m["psnr"],
                            "MS-SSIM": m["ms_ssim"], "LPIPS-Alex": m["lpips_alex"],
                            "dlib distance": m.get("dlib_distance"),
                            "same person (dlib)": m["dlib_same_person"],
                            "LPIPS-VGG (loss net)": m["lpips_vgg_loss_net"], "best step": m["best_step"],
                            "steps": m["steps"], "seconds": m["seconds"]})
            if best is None or m["lpips_alex"] < best[1]:
                best = (method, m["lpips_alex"])
        d = outdir / best[0] / p.stem
        ctx.latents[p.stem] = api.load_latent(d / "latent.npz", ctx.G, photo=p, network=NETWORK)
        ctx.methods[p.stem] = best[0]
        pasted.append(hstack([ctx.originals[p.stem], load_image(d / "pasted.png")], size=320))
    chosen = {p.stem: ctx.methods[p.stem] for p in ctx.photos}
    return Step("Projection (GAN inversion), two methods",
                description="Each aligned face is reconstructed by optimising a W+ latent (one 512-d w per "
                            f"style row, {ctx.G.num_ws} rows) and the noise maps, from the mean latent with Adam "
                            "and NVIDIA's learning-rate and latent-noise schedule. Method 1 minimises pixel MSE; "
                            "method 2 minimises the LPIPS distance of VGG16 features. LPIPS, PSNR and SSIM are "
                            "measured at 256 px against the aligned photo; identity cosine compares dlib's "
                            "face-recognition descriptors of photo and reconstruction (same person below "
                            "distance 0.6). The later steps edit the method with the lower LPIPS: "
                            + ", ".join(f"{k}: {v}" for k, v in chosen.items()) + ".",
                settings={"preset": "seed", "space": "W+", "steps": ctx.steps, "method 1": "rec_weight 0.5, lpips 0",
                          "method 2": "rec_weight 0, lpips 1", "noise regularisation": 5e5,
                          "loss resolution": 256},
                metrics=metrics, commands=[command_line(args)],
                figures=[Figure("projection/compare_methods.png", load_image(outdir / "compare_methods.png"),
                                "aligned photo | method 1 (pixel loss) | method 2 (VGG feature loss)"),
                         Figure("original | pasted.png (best method)", vstack(pasted),
                                "the reconstruction warped back and blended into the original photo")])


def _unavailable(title: str, reason: str):
    from .report import Step

    return Step(title, status="unavailable", reason=reason)


#: Largest edit strength shown when a direction has no ``demo_strength`` (unit directions in W).
EDIT_STRENGTH = 3.0
#: (attribute file name, label, seed layer-range key) of the edits shown.
EDITS = (("smile", "smile", "smile"), ("age", "age", "age"), ("yaw", "head pose (yaw)", "pose"))


def _astronaut_photo(ctx: DemoContext) -> list[str]:
    """``--photo PATH`` for commands on the astronaut's latent: latents never name the photo to paste
    into themselves (a shared latent must not make a command read local files)."""
    return ["--photo", str(_astronaut_path(ctx))]


def _astronaut_path(ctx: DemoContext) -> Path:
    return next(p for p in ctx.photos if p.stem == "astronaut")


def _base_latent(ctx: DemoContext) -> Path:
    """latent.npz of the astronaut's projection with the lower LPIPS (chosen in the projection step)."""
    if "astronaut" not in ctx.latents:
        raise LatentlabError("the projection step did not produce the astronaut's latent")
    return ctx.outdir / "projection" / ctx.methods["astronaut"] / "astronaut" / "latent.npz"


def step_edits(ctx: DemoContext):
    from .editing.attributes import available_attributes
    from .editing.directions import load_direction
    from .editing.layers import SEED_RANGES, describe_rows, parse_layers
    from .editing.render import write_result, write_sweep
    from .imageio import load_image
    from .report import Figure, Step

    title = "Attribute edits: smile, age, head pose"
    found = available_attributes(NETWORK)
    missing = [name for name, _, _ in EDITS if name not in found]
    todo = [e for e in EDITS if e[0] in found]
    if not todo:
        return _unavailable(title, f"no attribute directions for {NETWORK} are installed (looked for "
                                   f"{', '.join(n for n, _, _ in EDITS)} in latentlab/data/directions/{NETWORK}/, "
                                   "the cache and $LATENTLAB_DIRECTIONS)")
    lat = _base_latent(ctx)
    base = ctx.latents["astronaut"]
    n = 3 if ctx.quick else 5
    out = ctx.outdir / "edits"
    commands, figures, metrics = [], [], []
    for name, label, key in todo:
        d = load_direction(found[name])
        spec = SEED_RANGES[key]
        meta = d.meta if isinstance(d.meta, dict) else {}
        lim = d.demo_strength(EDIT_STRENGTH)
        args = ["edit", str(lat), *_astronaut_photo(ctx), "--network", NETWORK, "--sweep",
                f"{name}=-{lim:g}:{lim:g}:{n}@{spec}", "--name", f"astronaut_{name}", "--outdir", str(out), "--force",
                "--device", ctx.device]
        t0 = time.perf_counter()
        write_result(out, f"astronaut_{name}", base, force=True)  # what the command writes beside its sweep
        stem = out / f"astronaut_{name}_sweep_{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}"
        write_sweep(stem, base.sweep(name, np.linspace(-lim, lim, n), layers=spec), force=True)
        commands.append(command_line(args))
        strengths = ", ".join(f"{v:+.1f}" for v in np.linspace(-lim, lim, n))
        sigma = d.sigma()
        in_sigma = f" W units (±{lim / sigma:.0f}σ, σ = {sigma:.2f})" if sigma else ""
        figures.append(Figure(f"{label}: strength {strengths}{in_sigma}", load_image(stem.with_suffix(".png"))))
        pasted = stem.parent / f"{stem.name}_pasted.png"
        if pasted.exists():
            figures.append(Figure(f"{label}, pasted into the photo", load_image(pasted)))
        rows = parse_layers(spec, ctx.G)
        metrics.append({"edit": label, "direction file": found[name].name, "method": meta.get("method"),
                        "fit samples": meta.get("samples"), "val accuracy": meta.get("val_accuracy"),
                        "seed layers": spec,
                        "rows here": describe_rows(rows, ctx.G), "strengths": f"-{lim:g} .. +{lim:g} ({n})",
                        "sigma": sigma,
                        "seconds": time.perf_counter() - t0})
    step = Step(title,
                description="Each edit moves the projected latent along a unit direction in W, only on the W+ "
                            "rows of the seed's layer range for that attribute (ranges written for StyleGAN2-1024's "
                            "18 rows and mapped by resolution onto this model's rows), from -2 to +2 sigma of the "
                            "generator's faces along it. The middle frame is the unedited projection.",
                settings={"latent": str(lat), "frames per edit": n,
                          **{f"{lbl} layers": SEED_RANGES[k] for _, lbl, k in todo}},
                metrics=metrics, commands=commands, figures=figures)
    if missing:
        step.notes.append(f"not shown, no direction installed: {', '.join(missing)}")
    return step


def _style_source(ctx: DemoContext) -> Path:
    """A single generated face (seed 5, psi 0.7) as a latent file: the second face for style and swap."""
    from . import api

    src = ctx.outdir / "face_seed5" / "samples.npz"
    if not src.exists():
        api.sample(ctx.G, 5, 0.7, network=NETWORK).save(src.parent, force=True)
    return src


SOURCE_CMD = "latentlab sample --network {n} --seeds 5 --trunc 0.7 --outdir {d} --force"


def step_style(ctx: DemoContext):
    from . import api
    from .editing.layers import describe_rows, parse_layers
    from .editing.render import write_result
    from .imageio import load_image
    from .report import Figure, Step

    lat, src = _base_latent(ctx), _style_source(ctx)
    out = ctx.outdir / "style"
    args = ["style", str(lat), str(src), *_astronaut_photo(ctx), "--network", NETWORK, "--layers", STYLE_ROWS,
            "--outdir", str(out), "--force", "--device", ctx.device]
    content, style = ctx.latents["astronaut"], api.load_latent(src, ctx.G, network=NETWORK)
    name = f"astronaut_x_{src.parent.name}"
    write_result(out, name, api.style(content, style, STYLE_ROWS), force=True, compare=[content.array, style.array])
    figs = [Figure(f"style/{name}_compare.png", load_image(out / f"{name}_compare.png"),
                   "content (astronaut projection) | style source (generated face, seed 5) | result")]
    if (out / f"{name}_pasted.png").exists():
        figs.append(Figure(f"style/{name}_pasted.png", load_image(out / f"{name}_pasted.png"),
                           "the result pasted into the photo"))
    return Step(f"Style transfer (W+ rows {STYLE_ROWS})",
                description="Style mixing: the astronaut's latent keeps its coarse and middle rows (pose, face "
                            "shape, features) and takes the fine rows from a second face, so colours, lighting "
                            "and skin texture follow that face. The second face is generated by the model "
                            "(seed 5), so no other photo needs to be shipped.",
                settings={"content": str(lat), "style": str(src), "seed layers": STYLE_ROWS,
                          "rows here": describe_rows(parse_layers(STYLE_ROWS, ctx.G), ctx.G)},
                commands=[SOURCE_CMD.format(n=NETWORK, d=src.parent), command_line(args)], figures=figs)


def step_swap(ctx: DemoContext):
    from . import api
    from .editing.layers import describe_rows, parse_layers
    from .editing.render import strip, write_swap
    from .editing.swap import DEFAULT_IDENTITY_LAYERS
    from .imageio import load_image
    from .report import Figure, Step

    lat, src = _base_latent(ctx), _style_source(ctx)
    out = ctx.outdir / "swap"
    args = ["swap", str(src), str(lat), *_astronaut_photo(ctx), "--network", NETWORK, "--method", "mix", "--outdir",
            str(out), "--force", "--device", ctx.device]
    face, onto = api.load_latent(src, ctx.G, network=NETWORK), ctx.latents["astronaut"]
    m = write_swap(out, face, onto, api.swap(face, onto, method="mix"), force=True)
    name = m["name"]
    face_img = load_image(ctx.outdir / "face_seed5" / "seed0005.png")
    recon = load_image(lat.parent / "reconstruction.png")
    figs = [Figure("face (A) | astronaut projection (B) | A's face on B",
                   strip([face_img, recon, load_image(out / f"{name}.png")]))]
    if (out / f"{name}_pasted.png").exists():
        figs.append(Figure(f"swap/{name}_pasted.png", load_image(out / f"{name}_pasted.png"),
                           "pasted into the astronaut photo"))

    def ident(key: str, label: str) -> dict[str, Any]:
        v = m.get(key) or {}
        return {"compared with": label, "identity cosine": v.get("cosine"), "dlib distance": v.get("distance"),
                "same person (< 0.6)": v.get("same_person")}

    return Step("Face swap",
                description="Row mixing: the generated face's identity rows (face shape and features) replace "
                            "the astronaut's, which keeps her rows for colours, lighting and fine texture; the "
                            "result is pasted into the original photo. Identity cosine (dlib) of the result to "
                            "each input says whose face it shows.",
                settings={"face (A)": str(src), "target (B)": str(lat), "method": "mix",
                          "identity layers": DEFAULT_IDENTITY_LAYERS,
                          "rows here": describe_rows(parse_layers(DEFAULT_IDENTITY_LAYERS, ctx.G), ctx.G)},
                metrics=[ident("identity_vs_a", "A, the generated face"),
                         ident("identity_vs_b", "B, the astronaut photo")],
                commands=[SOURCE_CMD.format(n=NETWORK, d=src.parent), command_line(args)], figures=figs)


STEPS: list[tuple[str, Callable[[DemoContext], Any]]] = [
    ("sampling", step_sampling),
    ("alignment", step_alignment),
    ("projection", step_projection),
    ("edits", step_edits),
    ("style transfer", step_style),
    ("face swap", step_swap),
]
#: Steps that later ones need: when one fails, the demo stops.
ESSENTIAL = {"alignment", "projection"}


def run_demo(outdir: "str | Path", *, photos_dir: Path | None = None, num_steps: int | None = None,
             quick: bool = False, force: bool = False, device: str = "auto",
             echo: Callable[[str], None] = _stderr,
             steps: "Sequence[tuple[str, Callable[[DemoContext], Any]]] | None" = None) -> tuple[Path, list[str]]:
    """Run every demo step (``steps``, default :data:`STEPS`) and write ``outdir/report.html``;
    returns (report path, failed step names).

    A step that raises is recorded as *failed* with its error in the report (and in the returned
    list); the report is written either way. ``echo`` receives progress lines (default: stderr).
    """
    import torch

    from . import __version__
    from .inversion.runner import collect_photos
    from .registry import load_generator, resolve_device
    from .report import Report, Step, write_report

    steps = list(STEPS if steps is None else steps)
    t_start = time.perf_counter()
    outdir = Path(outdir)
    report_path = outdir / "report.html"
    if outdir.is_dir() and any(outdir.iterdir()) and not force:
        raise LatentlabError(f"{outdir} is not empty; use --force to overwrite the earlier demo or pick --outdir")
    extra = collect_photos([photos_dir]) if photos_dir is not None else []
    if any(p.stem == "astronaut" for p in extra):
        raise LatentlabError(f"{photos_dir}: a photo named 'astronaut' would collide with the demo photo")
    outdir.mkdir(parents=True, exist_ok=True)
    n_steps = num_steps or (15 if quick else 100)
    dev = resolve_device(device)
    echo(f"latentlab demo: loading {NETWORK} on {dev}")
    ctx = DemoContext(outdir, [demo_photo(outdir / "photos" / "astronaut.png"), *extra], quick, n_steps,
                      str(dev), echo)
    ctx.G = load_generator(NETWORK, dev, progress=True)

    done: list[Step] = []
    failed: list[str] = []
    for i, (name, fn) in enumerate(steps, 1):
        echo(f"[{i}/{len(steps)}] {name}")
        t0 = time.perf_counter()
        try:
            step = fn(ctx)
        except (LatentlabError, ImportError, RuntimeError, ValueError, OSError, KeyError) as exc:
            msg = " ".join(f"{type(exc).__name__}: {exc}".split())
            echo(f"  {name} failed: {msg}")
            if not isinstance(exc, LatentlabError):
                traceback.print_exc()
            step = Step(name.capitalize(), status="failed", reason=msg)
            failed.append(name)
        step.seconds = time.perf_counter() - t0
        done.append(step)
        if step.status == "unavailable":
            echo(f"  unavailable: {step.reason}")
        else:
            echo(f"  {step.status} in {step.seconds:.0f} s")
        if name in failed and name in ESSENTIAL:
            for rest, _ in steps[i:]:
                done.append(Step(rest.capitalize(), status="unavailable",
                                 reason=f"skipped because the {name} step failed"))
            break

    total = time.perf_counter() - t_start
    env = {"latentlab": __version__, "torch": torch.__version__, "python": platform.python_version(),
           "device": str(dev), "torch threads": torch.get_num_threads(), "machine": platform.machine(),
           "mode": "quick" if quick else "default", "total seconds": round(total, 1)}
    summary = (f"What latentlab does, on the embedded default model {NETWORK}, run with `latentlab demo"
               f"{' --quick' if quick else ''}` in {total:.0f} s. "
               "The photo is scikit-image's public-domain astronaut (Eileen Collins, NASA), which is not "
               "aligned; it is aligned, projected into the generator's latent space, edited and pasted back."
               "\n\nEvery step lists its settings, metrics and the commands that reproduce its figures. "
               "Steps marked unavailable are features this installation does not provide; nothing in "
               "this page is a placeholder.")
    write_report(Report("latentlab demo", done, summary, env), report_path, force=True)
    from .imageio import write_bytes_atomic

    write_bytes_atomic(outdir / "summary.json", json.dumps(
        {"seconds": total, "steps": ctx.steps, "quick": quick,
         "sections": [{"title": s.title, "status": s.status, "reason": s.reason, "seconds": s.seconds,
                       "metrics": s.metrics} for s in done]}, indent=2, default=str) + "\n", force=True)
    return report_path, failed


__all__ = ["DemoContext", "ESSENTIAL", "NETWORK", "STEPS", "command_line", "demo_photo", "run_demo"]
