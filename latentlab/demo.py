"""The demo's steps (``latentlab demo``): sample, align, project, edit, style-transfer and swap on
the embedded default model, written up as one HTML page (``OUTDIR/report.html``).

Steps (each one a section of the report, with its settings, metrics, figures and the exact
``latentlab ...`` commands that reproduce them):

1. sampling: faces from ``ffhq-mobile`` (:func:`latentlab.api.sample`, written as ``latentlab sample``
   writes them);
2. alignment: dlib's 68 landmarks and the FFHQ crop on scikit-image's public-domain ``astronaut``
   photo (not aligned) and on any ``--photos DIR`` (:func:`latentlab.api.load_photo`);
3. projection with both methods of the ``paper`` recipe, pixel MSE (1) and VGG/LPIPS feature loss
   (2) (:func:`latentlab.api.project_photos` with ``compare_methods``, what ``latentlab project
   --compare-methods`` runs), pasted back into the photo;
4. attribute edits (smile, age, head pose) on their layer ranges (:meth:`latentlab.api.Projection.sweep`,
   :func:`latentlab.api.write_sweep`); 5. style transfer (W+ rows 9-18 from a second face,
   :func:`latentlab.api.style`); 6. face swap (:func:`latentlab.api.swap`,
   :func:`latentlab.api.write_swap`). A piece that is missing from this installation is reported
   as *unavailable* with the reason, never faked.

Everything goes through :mod:`latentlab.api`, the functions the commands run, on the same inputs,
so the commands the report prints reproduce its figures (the parity tests,
``tests/test_parity.py``, hold the command line, the API and the UI to the same results).
:mod:`latentlab.cli.demo` parses the command line and calls :func:`run_demo`.
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
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from .errors import LatentlabError
from .progress import ProgressArg, as_callback

if TYPE_CHECKING:
    from .api import Step

NETWORK = "ffhq-mobile"
STYLE_ROWS = "9-18"
#: The projection recipe shown, and the two methods it is split into.
PRESET = "paper"
METHODS = (("method1", "1: pixel MSE"), ("method2", "2: VGG/LPIPS features"))


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr)


def demo_photo(dest: Path) -> Path:
    """Write scikit-image's public-domain ``astronaut`` photo (512x512, not aligned) to ``dest``."""
    from skimage import data

    from . import api

    if not dest.exists():
        api.save_image(data.astronaut(), dest)
    return dest


def command_line(args: Sequence[Any]) -> str:
    """The shell line for ``latentlab ARGS...``."""
    return "latentlab " + shlex.join([str(a) for a in args])


@dataclass
class DemoContext:
    """What the steps share: options, the generator, and results of earlier steps.

    ``progress``: the callback long steps report to (:mod:`latentlab.progress`), or None."""

    outdir: Path
    photos: list[Path]
    quick: bool
    steps: int
    device: str
    echo: Callable[[str], None] = _stderr
    progress: Callable[[Any], None] | None = None
    G: Any = None
    latents: dict[str, Any] = field(default_factory=dict)  # photo stem -> api.Projection (best method)
    methods: dict[str, str] = field(default_factory=dict)  # photo stem -> the best method's folder
    loaded: dict[str, Any] = field(default_factory=dict)  # photo stem -> faces.Photo (original + aligned face)


def landmark_overlay(image: np.ndarray, face: Any) -> np.ndarray:
    """The photo (uint8 [H, W, 3]) with the 68 landmarks (green) and the FFHQ crop square (red) of
    ``face`` (an aligned face: ``quad`` [4, 2], ``landmarks`` [68, 2] or None) drawn on it."""
    import cv2

    out = image.copy()
    s = max(1, round(max(image.shape[:2]) / 400))
    quad = np.round(face.quad).astype(np.int32)
    cv2.polylines(out, [quad.reshape(-1, 1, 2)], True, (230, 30, 30), 2 * s, cv2.LINE_AA)
    if face.landmarks is not None:
        for x, y in face.landmarks:
            cv2.circle(out, (int(round(x)), int(round(y))), s + 1, (40, 220, 40), -1, cv2.LINE_AA)
    return out


def _written(path: Path) -> np.ndarray:
    """An image a step wrote (any size: the generator's resolution may be small), uint8 [H, W, 3]."""
    from . import api

    return api.load_image(path, min_size=1)


def _row(images: list[np.ndarray], height: int = 320) -> np.ndarray:
    """Images scaled to one height, side by side with 4 px white gaps."""
    from . import api

    return api.side_by_side(images, height=height, gap=4)


# ----------------------------------------------------------------------------------- steps
def step_sampling(ctx: DemoContext) -> Step:
    """Sample faces by seed (psi 0.7) and write them as ``latentlab sample`` does."""
    from . import api

    seeds = "0-1" if ctx.quick else "0-3"
    args = ["sample", "--network", NETWORK, "--seeds", seeds, "--trunc", "0.7", "--outdir",
            str(ctx.outdir / "samples"), "--force", "--device", ctx.device]
    api.sample(ctx.G, seeds, 0.7, network=NETWORK).save(ctx.outdir / "samples", force=True)
    return api.Step("Sampling faces from the generator",
                    description=f"Random faces from {NETWORK} (MobileStyleGAN, FFHQ, 1024 px): z from each "
                                "seed's NumPy RandomState, mapped to W with truncation psi 0.7 (towards the mean "
                                "face), rendered with the model's constant noise.",
                    settings={"network": NETWORK, "seeds": seeds, "truncation_psi": 0.7, "noise_mode": "const"},
                    commands=[command_line(args)],
                    figures=[api.Figure("samples/grid.png", _written(ctx.outdir / "samples" / "grid.png"),
                                        "one 1024 px PNG per seed beside it, and samples.npz (z, ws)")])


def step_alignment(ctx: DemoContext) -> Step:
    """Align each photo (dlib landmarks, FFHQ crop) and show the landmarks, the crop and the result."""
    from . import api

    rows, metrics = [], []
    for p in ctx.photos:
        t0 = time.perf_counter()
        photo = api.load_photo(p, ctx.G)
        ctx.loaded[p.stem] = photo
        face = photo.face
        rows.append(_row([landmark_overlay(photo.original, face), photo.aligned]))
        h, w = photo.original.shape[:2]
        metrics.append({"photo": p.name, "size": f"{w}x{h}",
                        "crop side (px in photo)": float(np.linalg.norm(face.quad[3] - face.quad[0])),
                        "seconds": time.perf_counter() - t0})
    return api.Step("Face alignment",
                    description="dlib finds the face and its 68 landmarks; the crop square follows the FFHQ "
                                "recipe (eyes and mouth fix its centre, size and rotation) and is resampled to "
                                f"{ctx.G.img_resolution} px. The transform is kept, so results can be pasted back "
                                "into the original photo.",
                    settings={"resolution": ctx.G.img_resolution, "landmarks": "dlib 68-point",
                              "photos": ", ".join(p.name for p in ctx.photos)},
                    metrics=metrics,
                    notes=["`latentlab project` aligns each photo first and writes it as <photo>/aligned.png "
                           "(see the next step's command)."],
                    figures=[api.Figure("landmarks and FFHQ crop | aligned face", api.stack(rows))])


def step_projection(ctx: DemoContext) -> Step:
    """Project the photos with both methods of the paper recipe; keep the lower-LPIPS latent per photo."""
    from . import api

    outdir = ctx.outdir / "projection"
    args = ["project", *[str(p) for p in ctx.photos], "--network", NETWORK, "--preset", PRESET,
            "--num-steps", str(ctx.steps), "--compare-methods", "--outdir", str(outdir), "--force",
            "--device", ctx.device]
    run = api.project_photos(list(ctx.photos), outdir, PRESET, network=NETWORK, G=ctx.G, compare_methods=True,
                             force=True, device=ctx.device, progress=ctx.progress, num_steps=ctx.steps)
    if run.interrupted:
        raise KeyboardInterrupt
    if run.failed:
        photo, reason = run.failed[0]
        raise LatentlabError(reason if Path(photo).name in reason else f"{photo}: {reason}")
    metrics, pasted = [], []
    for p in ctx.photos:
        best = None
        for method, label in METHODS:
            m = json.loads((outdir / method / p.stem / "metrics.json").read_text())
            metrics.append({"photo": p.name, "method": label, "PSNR dB": m["psnr"],
                            "MS-SSIM": m["ms_ssim"], "LPIPS-Alex": m["lpips_alex"],
                            "dlib distance": m.get("dlib_distance"),
                            "same person (dlib)": m["dlib_same_person"],
                            "FaceRes ID cosine": m.get("id_cosine"),
                            "LPIPS-VGG (loss net)": m["lpips_vgg_loss_net"], "best step": m["best_step"],
                            "steps": m["steps"], "seconds": m["seconds"]})
            if best is None or m["lpips_alex"] < best[1]:
                best = (method, m["lpips_alex"])
        d = outdir / best[0] / p.stem
        ctx.latents[p.stem] = api.load_latent(d / "latent.npz", ctx.G, photo=p, network=NETWORK)
        ctx.methods[p.stem] = best[0]
        original = ctx.loaded[p.stem].original if p.stem in ctx.loaded else api.load_image(p)
        pasted.append(_row([original, _written(d / "pasted.png")]))
    chosen = {p.stem: ctx.methods[p.stem] for p in ctx.photos}
    return api.Step("Projection (GAN inversion), two methods",
                    description="Each aligned face is reconstructed by optimising a W+ latent (one 512-d w per "
                                f"style row, {ctx.G.num_ws} rows) and the noise maps, from the mean latent with "
                                "Adam and NVIDIA's learning-rate and latent-noise schedule: the paper recipe "
                                f"(preset {PRESET}), split into its two losses. Method 1 minimises pixel MSE; "
                                "method 2 minimises the LPIPS distance of VGG16 features. LPIPS, PSNR and SSIM are "
                                "measured at 256 px against the aligned photo; dlib distance compares dlib's "
                                "face-recognition descriptors of photo and reconstruction (same person below "
                                "distance 0.6), FaceRes ID cosine the FaceRes identity embeddings. The later "
                                "steps edit the method with the lower LPIPS: "
                                + ", ".join(f"{k}: {v}" for k, v in chosen.items()) + ".",
                    settings={"preset": PRESET, "space": "W+", "steps": ctx.steps,
                              "method 1": "rec_weight 0.5, lpips 0", "method 2": "rec_weight 0, lpips 1",
                              "noise regularisation": 5e5, "loss resolution": 256},
                    metrics=metrics, commands=[command_line(args)],
                    figures=[api.Figure("projection/compare_methods.png",
                                        _written(outdir / "compare_methods.png"),
                                        "aligned photo | method 1 (pixel loss) | method 2 (VGG feature loss)"),
                             api.Figure("original | pasted.png (best method)", api.stack(pasted),
                                        "the reconstruction warped back and blended into the original photo")])


def _unavailable(title: str, reason: str) -> Step:
    """A report section for a feature this installation lacks, with the reason."""
    from . import api

    return api.Step(title, status="unavailable", reason=reason)


#: Largest edit strength shown when a direction records no spread (W units; see
#: :meth:`latentlab.api.Direction.demo_strength`).
EDIT_STRENGTH = 3.0
#: (attribute file name, label, key of :data:`latentlab.api.DEFAULT_RANGES`) of the edits shown.
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


def step_edits(ctx: DemoContext) -> Step:
    """Sweep the astronaut's latent along smile, age and yaw (+-2 sigma) on their layer ranges."""
    from . import api

    title = "Attribute edits: smile, age, head pose"
    found = api.attributes(ctx.G, network=NETWORK)
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
        d = api.load_direction(found[name], name=name)
        meta = d.meta if isinstance(d.meta, dict) else {}
        spec = api.DEFAULT_RANGES[key]
        lim = d.demo_strength(EDIT_STRENGTH)
        args = ["edit", str(lat), *_astronaut_photo(ctx), "--network", NETWORK, "--sweep",
                f"{name}=-{lim:g}:{lim:g}:{n}@{spec}", "--name", f"astronaut_{name}", "--outdir", str(out), "--force",
                "--device", ctx.device]
        t0 = time.perf_counter()
        base.write(out, f"astronaut_{name}", force=True)  # what the command writes beside its sweep
        stem = out / f"astronaut_{name}_sweep_{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}"
        values = np.linspace(-lim, lim, n)
        api.write_sweep(stem, base.sweep(name, values, layers=spec), force=True)
        commands.append(command_line(args))
        strengths = ", ".join(f"{v:+.1f}" for v in values)
        sigma = d.sigma()
        in_sigma = f" W units (±{lim / sigma:.0f}σ, σ = {sigma:.2f})" if sigma else ""
        figures.append(api.Figure(f"{label}: strength {strengths}{in_sigma}", _written(stem.with_suffix(".png"))))
        pasted = stem.parent / f"{stem.name}_pasted.png"
        if pasted.exists():
            figures.append(api.Figure(f"{label}, pasted into the photo", _written(pasted)))
        metrics.append({"edit": label, "direction file": found[name].name, "method": meta.get("method"),
                        "fit samples": meta.get("samples"), "val accuracy": meta.get("val_accuracy"),
                        "layers (18-row layout)": spec, "rows here": api.describe_layers(ctx.G, spec),
                        "strengths": f"-{lim:g} .. +{lim:g} ({n})", "sigma": sigma,
                        "seconds": time.perf_counter() - t0})
    step = api.Step(title,
                    description="Each edit moves the projected latent along a unit direction in W, only on the W+ "
                                "rows of the layer range for that attribute (ranges written for StyleGAN2-1024's "
                                "18 rows and mapped by resolution onto this model's rows), from -2 to +2 sigma of "
                                "the generator's faces along it. The middle frame is the unedited projection.",
                    settings={"latent": str(lat), "frames per edit": n,
                              **{f"{lbl} layers": api.DEFAULT_RANGES[k] for _, lbl, k in todo}},
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


def step_style(ctx: DemoContext) -> Step:
    """Style mixing: the astronaut with the fine rows (9-18) of a generated face."""
    from . import api

    lat, src = _base_latent(ctx), _style_source(ctx)
    out = ctx.outdir / "style"
    args = ["style", str(lat), str(src), *_astronaut_photo(ctx), "--network", NETWORK, "--layers", STYLE_ROWS,
            "--outdir", str(out), "--force", "--device", ctx.device]
    content, style = ctx.latents["astronaut"], api.load_latent(src, ctx.G, network=NETWORK)
    name = f"astronaut_x_{src.parent.name}"
    api.style(content, style, STYLE_ROWS).write(out, name, force=True, compare=[content.array, style.array])
    figs = [api.Figure(f"style/{name}_compare.png", _written(out / f"{name}_compare.png"),
                       "content (astronaut projection) | style source (generated face, seed 5) | result")]
    if (out / f"{name}_pasted.png").exists():
        figs.append(api.Figure(f"style/{name}_pasted.png", _written(out / f"{name}_pasted.png"),
                               "the result pasted into the photo"))
    return api.Step(f"Style transfer (W+ rows {STYLE_ROWS})",
                    description="Style mixing: the astronaut's latent keeps its coarse and middle rows (pose, face "
                                "shape, features) and takes the fine rows from a second face, so colours, lighting "
                                "and skin texture follow that face. The second face is generated by the model "
                                "(seed 5), so no other photo needs to be shipped.",
                    settings={"content": str(lat), "style": str(src), "layers (18-row layout)": STYLE_ROWS,
                              "rows here": api.describe_layers(ctx.G, STYLE_ROWS)},
                    commands=[SOURCE_CMD.format(n=NETWORK, d=src.parent), command_line(args)], figures=figs)


def step_swap(ctx: DemoContext) -> Step:
    """Row-mixing face swap: the generated face's identity rows on the astronaut."""
    from . import api

    lat, src = _base_latent(ctx), _style_source(ctx)
    out = ctx.outdir / "swap"
    args = ["swap", str(src), str(lat), *_astronaut_photo(ctx), "--network", NETWORK, "--method", "mix", "--outdir",
            str(out), "--force", "--device", ctx.device]
    face, onto = api.load_latent(src, ctx.G, network=NETWORK), ctx.latents["astronaut"]
    m = api.write_swap(out, face, onto, api.swap(face, onto, method="mix", progress=ctx.progress), force=True)
    name = m["name"]
    face_img = _written(ctx.outdir / "face_seed5" / "seed0005.png")
    recon = _written(lat.parent / "reconstruction.png")
    figs = [api.Figure("face (A) | astronaut projection (B) | A's face on B",
                       api.strip([face_img, recon, _written(out / f"{name}.png")]))]
    if (out / f"{name}_pasted.png").exists():
        figs.append(api.Figure(f"swap/{name}_pasted.png", _written(out / f"{name}_pasted.png"),
                               "pasted into the astronaut photo"))

    def ident(key: str, label: str) -> dict[str, Any]:
        v = m.get(key) or {}
        return {"compared with": label, "identity cosine": v.get("cosine"), "dlib distance": v.get("distance"),
                "same person (< 0.6)": v.get("same_person")}

    return api.Step("Face swap",
                    description="Row mixing: the generated face's identity rows (face shape and features) replace "
                                "the astronaut's, which keeps her rows for colours, lighting and fine texture; the "
                                "result is pasted into the original photo. Identity cosine (dlib) of the result to "
                                "each input says whose face it shows.",
                    settings={"face (A)": str(src), "target (B)": str(lat), "method": "mix",
                              "identity layers": api.DEFAULT_IDENTITY_LAYERS,
                              "rows here": api.describe_layers(ctx.G, api.DEFAULT_IDENTITY_LAYERS)},
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


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("latentlab")
    except PackageNotFoundError:
        return "unknown"


def run_demo(outdir: "str | Path", *, photos_dir: Path | None = None, num_steps: int | None = None,
             quick: bool = False, force: bool = False, device: str = "auto",
             echo: Callable[[str], None] = _stderr, progress: ProgressArg = True,
             steps: "Sequence[tuple[str, Callable[[DemoContext], Any]]] | None" = None) -> tuple[Path, list[str]]:
    """Run every demo step (``steps``, default :data:`STEPS`) and write ``outdir/report.html``;
    returns (report path, failed step names).

    A step that raises is recorded as *failed* with its error in the report (and in the returned
    list); the report is written either way. ``echo`` receives a line per step (default: stderr);
    ``progress`` the long steps' progress (:mod:`latentlab.progress`; default: a bar or log lines
    on stderr from :func:`latentlab.api.reporter`).
    """
    import torch

    from . import api

    steps = list(STEPS if steps is None else steps)
    t_start = time.perf_counter()
    outdir = Path(outdir)
    report_path = outdir / "report.html"
    if outdir.is_dir() and any(outdir.iterdir()) and not force:
        raise LatentlabError(f"{outdir} is not empty; use --force to overwrite the earlier demo or pick --outdir")
    extra = api.collect_photos([photos_dir]) if photos_dir is not None else []
    if any(p.stem == "astronaut" for p in extra):
        raise LatentlabError(f"{photos_dir}: a photo named 'astronaut' would collide with the demo photo")
    outdir.mkdir(parents=True, exist_ok=True)
    n_steps = num_steps or (15 if quick else 100)
    dev = api.resolve_device(device)
    echo(f"latentlab demo: loading {NETWORK} on {dev}")
    ctx = DemoContext(outdir, [demo_photo(outdir / "photos" / "astronaut.png"), *extra], quick, n_steps,
                      str(dev), echo, as_callback(progress))
    ctx.G = api.load_generator(NETWORK, dev, progress=ctx.progress is not None)

    done: list[api.Step] = []
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
            step = api.Step(name.capitalize(), status="failed", reason=msg)
            failed.append(name)
        step.seconds = time.perf_counter() - t0
        done.append(step)
        if step.status == "unavailable":
            echo(f"  unavailable: {step.reason}")
        else:
            echo(f"  {step.status} in {step.seconds:.0f} s")
        if name in failed and name in ESSENTIAL:
            for rest, _ in steps[i:]:
                done.append(api.Step(rest.capitalize(), status="unavailable",
                                     reason=f"skipped because the {name} step failed"))
            break

    total = time.perf_counter() - t_start
    env = {"latentlab": _version(), "torch": torch.__version__, "python": platform.python_version(),
           "device": str(dev), "torch threads": torch.get_num_threads(), "machine": platform.machine(),
           "mode": "quick" if quick else "default", "total seconds": round(total, 1)}
    summary = (f"What latentlab does, on the embedded default model {NETWORK}, run with `latentlab demo"
               f"{' --quick' if quick else ''}` in {total:.0f} s. "
               "The photo is scikit-image's public-domain astronaut (Eileen Collins, NASA), which is not "
               "aligned; it is aligned, projected into the generator's latent space, edited and pasted back."
               "\n\nEvery step lists its settings, metrics and the commands that reproduce its figures. "
               "Steps marked unavailable are features this installation does not provide; nothing in "
               "this page is a placeholder.")
    api.write_report(api.Report("latentlab demo", done, summary, env), report_path, force=True)
    (outdir / "summary.json").write_text(json.dumps(
        {"seconds": total, "steps": ctx.steps, "quick": quick,
         "sections": [{"title": s.title, "status": s.status, "reason": s.reason, "seconds": s.seconds,
                       "metrics": s.metrics} for s in done]}, indent=2, default=str) + "\n", encoding="utf-8")
    return report_path, failed


__all__ = ["DemoContext", "ESSENTIAL", "NETWORK", "PRESET", "STEPS", "command_line", "demo_photo", "run_demo"]
