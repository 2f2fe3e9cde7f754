"""Drag editing measured as DragGAN measures it (face landmark manipulation), and on real photos.

**Generated faces** (DragGAN, Pan et al. 2023, Sec. 4.2): pairs of faces (A, B) from the
generator; A's dlib landmarks are the handles, B's the targets (1, 5 or all 68 points; the 1 and
5 are drawn at random per pair). After the drag, dlib finds the landmarks again on the result;
MD is the mean distance of the dragged landmarks to their targets, in pixels of a 512 px image;
"no edit" is that distance before the drag. Also seconds per drag.

**Real photos** (``--photos``): each portrait is inverted with the default preset (pivotal
tuning), then its mouth corners (landmarks 48, 54) are dragged up and its chin (8) down by
``--shift`` px of the photo. Reported: how far the re-detected landmarks end from their targets,
as a share of where they started (target: at most a third), and the identity of the result
(dlib distance to the photo, same person below 0.6; FaceRes cosine).

Prints tables and, with ``--json``, writes every row::

    python benchmarks/drag_landmarks.py --pairs 20 --points 1,5,68 --json out/drag.json
    python benchmarks/drag_landmarks.py --pairs 0 --photos ../shared/photos/portraits --limit 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

#: DragGAN's Table 1 (MD at 512 px; lower is better).
DRAGGAN = {1: 2.44, 5: 3.18, 68: 4.73}
DRAGGAN_NO_EDIT = {1: 12.93, 5: 11.66, 68: 16.02}


def landmarks(image: np.ndarray) -> np.ndarray | None:
    from latentlab.faces import detect_landmarks
    from latentlab.errors import LatentlabError

    try:
        return detect_landmarks(image).landmarks
    except LatentlabError:
        return None


def generated_pairs(args, G) -> list[dict]:
    import latentlab as ll

    rows = []
    rng = np.random.RandomState(args.seed)
    scale = 512.0 / G.img_resolution
    pair, seed = 0, args.first_seed
    while pair < args.pairs:
        a, b = ll.sample(G, [seed, seed + 1], trunc=args.trunc)
        seed += 2
        la, lb = landmarks(a.array), landmarks(b.array)
        if la is None or lb is None:
            print(f"seeds {seed - 2},{seed - 1}: no face found, skipped")
            continue
        pair += 1
        for n in args.points:
            idx = np.arange(68) if n >= 68 else np.sort(rng.choice(68, n, replace=False))
            points = [((float(la[i, 0]), float(la[i, 1])), (float(lb[i, 0]), float(lb[i, 1]))) for i in idx]
            t0 = time.perf_counter()
            out = a.drag(points, coords="aligned", steps=args.steps, **args.config)
            seconds = time.perf_counter() - t0
            op = out.history[-1]
            lr = landmarks(out.array)
            before = float(np.linalg.norm(la[idx] - lb[idx], axis=1).mean()) * scale
            after = float(np.linalg.norm(lr[idx] - lb[idx], axis=1).mean()) * scale if lr is not None else None
            tracked = float(np.linalg.norm(np.asarray(op["handles_final"]) - lb[idx], axis=1).mean()) * scale
            rows.append({"kind": "generated", "seeds": [seed - 2, seed - 1], "points": int(n), "md_no_edit": before,
                         "md": after, "md_tracked": tracked, "seconds": seconds, "steps": op["steps"],
                         "stopped": op["stopped"], "face_found": lr is not None})
            print(f"pair {pair} ({seed - 2},{seed - 1}) {n:>2} points: MD {before:6.2f} -> "
                  f"{'n/a' if after is None else f'{after:6.2f}'} (tracked {tracked:.2f}) in {seconds:.1f} s, "
                  f"{op['steps']} steps, {op['stopped']}")
    return rows


def real_photos(args, G) -> list[dict]:
    import latentlab as ll
    from latentlab.metrics import identity_metrics_dlib, identity_metrics_faceres

    photos = sorted(p for p in Path(args.photos).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    rows = []
    for path in photos[: args.limit]:
        t0 = time.perf_counter()
        me = ll.project(path, G, cache=True, progress=False)
        invert_s = time.perf_counter() - t0
        lm_photo = me.transform.landmarks  # the photo's own 68 landmarks, in photo pixels
        if lm_photo is None:
            print(f"{path.name}: no landmarks recorded, skipped")
            continue
        moves = {48: (0.0, -args.shift), 54: (0.0, -args.shift), 8: (0.0, args.shift)}
        points = [((float(lm_photo[i, 0]), float(lm_photo[i, 1])),
                   (float(lm_photo[i, 0] + dx), float(lm_photo[i, 1] + dy))) for i, (dx, dy) in moves.items()]
        t0 = time.perf_counter()
        out = me.drag(points, steps=args.steps, **args.config)
        seconds = time.perf_counter() - t0
        # the landmarks before and after, found again on the aligned images, mapped into the photo
        tf = me.transform.at_resolution(G.img_resolution)
        before_al, after_al = landmarks(me.array), landmarks(out.array)
        if before_al is None or after_al is None:
            print(f"{path.name}: dlib found no face on the result, skipped")
            continue
        before, after = tf.to_original(before_al), tf.to_original(after_al)
        targets = np.array([p[1] for p in points])
        idx = list(moves)
        start = np.linalg.norm(before[idx] - targets, axis=1)
        end = np.linalg.norm(after[idx] - targets, axis=1)
        ident = {**identity_metrics_dlib(me.target.array, out.array), **identity_metrics_faceres(me.target.array, out.array)}
        row = {"kind": "photo", "photo": path.name, "shift": args.shift, "start_px": start.tolist(),
               "end_px": end.tolist(), "ratio": float(end.mean() / max(start.mean(), 1e-6)), "seconds": seconds,
               "invert_seconds": invert_s, "steps": out.history[-1]["steps"], "stopped": out.history[-1]["stopped"],
               **ident}
        rows.append(row)
        if args.save:
            Path(args.save).mkdir(parents=True, exist_ok=True)
            out.paste().save(Path(args.save) / f"{path.stem}_drag_pasted.jpg", force=True)
            me.paste().save(Path(args.save) / f"{path.stem}_pasted.jpg", force=True)
        print(f"{path.name}: landmarks {start.mean():.1f} -> {end.mean():.1f} px from their targets "
              f"(ratio {row['ratio']:.2f}) in {seconds:.1f} s; dlib {ident['dlib_distance']}, "
              f"FaceRes {ident['id_cosine']}")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--network", default="ffhq-mobile")
    ap.add_argument("--pairs", type=int, default=20, help="generated pairs (0: none)")
    ap.add_argument("--points", default="1,5,68", help="handle counts per drag")
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--trunc", type=float, default=0.7)
    ap.add_argument("--seed", type=int, default=0, help="draws the 1- and 5-point subsets")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--photos", type=Path, default=None, help="a folder of real photos")
    ap.add_argument("--limit", type=int, default=10)
    ap.add_argument("--shift", type=float, default=20.0, help="photo pixels the mouth corners and chin move")
    ap.add_argument("--save", type=Path, default=None, help="write the real photos' results here")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--follow", choices=["line", "track"], default=None, help="DragConfig.follow")
    ap.add_argument("--line-step", type=float, default=None, help="DragConfig.line_step")
    ap.add_argument("--feature-resolution", type=int, default=None, help="DragConfig.feature_resolution")
    ap.add_argument("--lr", type=float, default=None, help="DragConfig.lr")
    ap.add_argument("--r1", type=float, default=None, help="DragConfig.r1")
    ap.add_argument("--r2", type=float, default=None, help="DragConfig.r2")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    args.config = {k: v for k in ("follow", "line_step", "feature_resolution", "lr", "r1", "r2")
                   if (v := getattr(args, k)) is not None}
    args.points = [int(x) for x in args.points.split(",") if x]

    import torch

    import latentlab as ll

    ll.tune_cpu_allocator()
    if args.threads:
        torch.set_num_threads(args.threads)
    G = ll.load_generator(args.network, ll.resolve_device("auto"))
    rows = generated_pairs(args, G) if args.pairs else []
    if args.photos:
        rows += real_photos(args, G)

    gen = [r for r in rows if r["kind"] == "generated"]
    if gen:
        print(f"\nGenerated faces ({len(gen) // max(1, len(args.points))} pairs, {args.network}, MD in px at 512):")
        print(f"{'points':>6} {'no edit':>8} {'DragGAN no edit':>16} {'MD':>7} {'DragGAN':>8} {'tracked':>8} "
              f"{'s / drag':>9} {'arrived':>8} {'face lost':>10}")
        for n in args.points:
            rs = [r for r in gen if r["points"] == n]
            found = [r["md"] for r in rs if r["md"] is not None]
            print(f"{n:>6} {statistics.fmean(r['md_no_edit'] for r in rs):>8.2f} {DRAGGAN_NO_EDIT.get(n, float('nan')):>16.2f} "
                  f"{statistics.fmean(found) if found else float('nan'):>7.2f} {DRAGGAN.get(n, float('nan')):>8.2f} "
                  f"{statistics.fmean(r['md_tracked'] for r in rs):>8.2f} {statistics.fmean(r['seconds'] for r in rs):>9.1f} "
                  f"{sum(r['stopped'] == 'arrived' for r in rs):>5}/{len(rs):<2} {len(rs) - len(found):>10}")
    real = [r for r in rows if r["kind"] == "photo"]
    if real:
        print(f"\nReal photos ({len(real)}, pivotal-tuned; mouth corners up, chin down by {args.shift:g} px):")
        print(f"{'photo':<14} {'start px':>9} {'end px':>7} {'ratio':>6} {'dlib':>6} {'same':>5} {'FaceRes':>8} {'s':>6}")
        for r in real:
            print(f"{r['photo']:<14} {np.mean(r['start_px']):>9.1f} {np.mean(r['end_px']):>7.1f} {r['ratio']:>6.2f} "
                  f"{r['dlib_distance'] or float('nan'):>6.3f} {str(r['dlib_same_person']):>5} "
                  f"{r['id_cosine'] or float('nan'):>8.3f} {r['seconds']:>6.1f}")
        print(f"{'mean':<14} {'':>9} {'':>7} {statistics.fmean(r['ratio'] for r in real):>6.2f} "
              f"{statistics.fmean(r['dlib_distance'] for r in real if r['dlib_distance'] is not None):>6.3f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2, default=float) + "\n")


if __name__ == "__main__":
    main()
