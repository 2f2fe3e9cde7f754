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

For MobileFaceNet as shipped (``mfn``), MobileFaceNet with its depthwise PReLUs restored
(``mfn-prelu``, see :mod:`latentlab.faces.mobilefacenet`), a diagnostic ``mfn-centred`` (the
shipped embeddings minus the mean embedding of the photos of the *other* sets) and dlib's ResNet
(``dlib``: cosine, and its euclidean distance with dlib's 0.6 rule) it prints the score distributions, the
equal-error-rate threshold, the threshold at a 0.1% false-accept rate, the rates at the library
thresholds, the mirror-image cosine, per-change statistics, and CPU timings.

    python benchmarks/eval_identity.py                 # all photos
    python benchmarks/eval_identity.py --max-photos 20 # a quick look
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--photos", type=Path, default=REPO.parent / "shared" / "photos")
    ap.add_argument("--max-photos", type=int, default=0, help="use only the first N (0 = all)")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/latentlab_eval_identity.npz"),
                    help="landmarks/embeddings cache (delete to recompute)")
    ap.add_argument("--no-dlib", action="store_true", help="skip dlib's embeddings")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import torch

    from latentlab.faces.identity import SAME_PERSON_DISTANCE, face_embedding
    from latentlab.faces.landmarks import detect_faces
    from latentlab.faces.mobilefacenet import (SAME_PERSON_COSINE, arcface_crop, five_points,
                                               load_mobilefacenet)
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
    scorers = [(m, "cosine") for m in models] + [("mfn-centred", "cosine")]
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
