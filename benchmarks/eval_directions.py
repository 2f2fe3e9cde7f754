"""Do the shipped attribute directions do what they say? Scores and identity along each edit.

For each face (latents written by ``latentlab project``, and/or sampled seeds) and each direction,
renders ``ws + k * sigma * direction`` on the direction's own layer range for the steps k (sigma =
the direction's ``projection_std``, the spread of the fitted samples along it), then measures with
the same real detectors that fitted the directions (``latentlab.faces.attributes``) and with dlib's
face-embedding ResNet:

* the attribute's own score at every step (mean over faces) and the share of faces whose score
  rises monotonically with k (Spearman rho = 1), plus the mean rho;
* identity against the unedited render (k = 0): dlib cosine similarity and distance at k = +-1 and
  the largest |k| (dlib's "same person" threshold is distance < 0.6);
* the other attributes' change between the extreme steps, in units of their spread over the faces
  (entanglement).

Prints one table, writes everything to JSON and one strip PNG per direction (faces as rows, steps
as columns) to look at.

    .venv/bin/python benchmarks/eval_directions.py --latents out/eval/*/latent.npz --seeds 0-3 \
        --out out/eval_directions
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    if not np.all(np.isfinite(y)):
        return float("nan")
    rx, ry = np.argsort(np.argsort(x)), np.argsort(np.argsort(y))
    rx, ry = rx - rx.mean(), ry - ry.mean()
    den = np.sqrt((rx ** 2).sum() * (ry ** 2).sum())
    return float((rx * ry).sum() / den) if den > 0 else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--latents", nargs="*", type=Path, default=[], help="latent .npz files (latentlab project)")
    ap.add_argument("--seeds", default="", help="also sampled faces, e.g. 0-3 (truncation 0.7)")
    ap.add_argument("--network", default="ffhq-mobile")
    ap.add_argument("--attributes", default="smile,age,gender,yaw,pitch,eyes_open")
    ap.add_argument("--steps", default="-2,-1,0,1,2", help="strengths in units of projection_std")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", type=Path, default=Path("out/eval_directions"))
    args = ap.parse_args()

    import torch
    from PIL import Image
    from tqdm import tqdm

    from latentlab.editing.attributes import find_attribute
    from latentlab.editing.directions import apply_direction, load_direction
    from latentlab.editing.fit import render_small
    from latentlab.editing.layers import parse_layers
    from latentlab.faces.attributes import ATTRIBUTES, score_attributes
    from latentlab.faces.identity import compare_embeddings, face_embedding
    from latentlab.faces.landmarks import NoFaceError
    from latentlab.latent import load_latent
    from latentlab.registry import load_generator, resolve_device
    from latentlab.sampling import parse_seeds, z_from_seeds

    G = load_generator(args.network, resolve_device(args.device))
    steps = [float(s) for s in args.steps.split(",")]
    if 0.0 not in steps:
        steps = sorted(steps + [0.0])
    names = [a.strip() for a in args.attributes.split(",") if a.strip()]

    faces: list[tuple[str, torch.Tensor]] = []
    for p in args.latents:
        faces.append((p.parent.name, load_latent(p, G).ws[:1]))
    if args.seeds:
        seeds = parse_seeds(args.seeds)
        z = z_from_seeds(seeds, G.z_dim)
        with torch.inference_mode():
            ws = G.mapping(z.to(G.device), truncation_psi=0.7).cpu()
        faces += [(f"seed{s}", ws[i:i + 1]) for i, s in enumerate(seeds)]
    if not faces:
        ap.error("give --latents and/or --seeds")
    args.out.mkdir(parents=True, exist_ok=True)

    def measure(ws: torch.Tensor) -> tuple[np.ndarray, dict[str, float], np.ndarray | None]:
        img = render_small(G, ws)[0]
        sc = {k: float(v[0]) for k, v in score_attributes(img, ATTRIBUTES, upsample=0).items()}
        try:
            emb = face_embedding(img, upsample=0)
        except NoFaceError:
            emb = None
        return img, sc, emb

    results: dict[str, dict] = {}
    t0 = time.perf_counter()
    base = {label: measure(ws) for label, ws in tqdm(faces, desc="unedited")}
    for name in names:
        d = load_direction(find_attribute(name, args.network))
        rows = parse_layers(d.layers, G)
        sigma = float(d.meta.get("projection_std", 1.0))
        per_face, strip_rows = [], []
        for label, ws in tqdm(faces, desc=name):
            imgs, scores, ids = [], [], []
            for k in steps:
                if k == 0.0:
                    img, sc, emb = base[label]
                else:
                    img, sc, emb = measure(apply_direction(ws, d.vector, k * sigma, rows))
                imgs.append(img)
                scores.append(sc)
                e0 = base[label][2]
                ids.append(compare_embeddings(e0, emb) if (emb is not None and e0 is not None) else None)
            own = np.array([s[name] for s in scores])
            per_face.append({"face": label, "scores": scores,
                             "own": own.tolist(), "rho": _spearman(np.array(steps), own),
                             "identity_cosine": [None if i is None else i.cosine for i in ids],
                             "identity_distance": [None if i is None else i.distance for i in ids]})
            strip_rows.append(np.concatenate(imgs, axis=1))
        Image.fromarray(np.concatenate(strip_rows, axis=0)).save(args.out / f"{name}.png")

        own = np.array([f["own"] for f in per_face])  # [faces, steps]
        rho = np.array([f["rho"] for f in per_face])

        def ident(k: float, key: str) -> float:
            j = steps.index(k)
            vals = [f[key][j] for f in per_face if f[key][j] is not None]
            return float(np.mean(vals)) if vals else float("nan")

        kmax = max(abs(s) for s in steps)
        hi, lo = steps.index(kmax) if kmax in steps else -1, steps.index(-kmax) if -kmax in steps else 0
        others = {}
        for o in ("smile", "age", "gender", "yaw", "pitch", "eyes_open"):
            if o == name:
                continue
            base_vals = np.array([base[lbl][1][o] for lbl, _ in faces])
            spread = float(np.nanstd(base_vals)) or 1.0
            delta = np.array([f["scores"][hi][o] - f["scores"][lo][o] for f in per_face])
            others[o] = float(np.nanmean(np.abs(delta)) / spread)
        results[name] = {
            "layers": d.layers, "rows": rows, "sigma": sigma, "steps": steps,
            "mean_score": np.nanmean(own, axis=0).tolist(),
            "monotonic_share": float(np.mean(rho > 0.999)), "mean_rho": float(np.nanmean(rho)),
            "identity_cosine": {str(k): ident(k, "identity_cosine") for k in steps},
            "identity_distance": {str(k): ident(k, "identity_distance") for k in steps},
            "other_attribute_change": others, "faces": per_face,
        }
    seconds = time.perf_counter() - t0

    print(f"\n{len(faces)} faces, steps {steps} x sigma, {seconds:.0f} s")
    print(f"{'attribute':<10} {'rows':<12} {'sigma':>6}  {'mean score per step':<44} {'mono':>5} {'rho':>5} "
          f"{'id_cos+-1':>9} {'id_d+-1':>7} {'id_d max':>8}  largest other change (spreads)")
    for name, r in results.items():
        sc = " ".join(f"{v:7.3g}" for v in r["mean_score"])
        d1 = np.nanmean([r["identity_distance"].get(str(k), np.nan) for k in (-1.0, 1.0)])
        c1 = np.nanmean([r["identity_cosine"].get(str(k), np.nan) for k in (-1.0, 1.0)])
        kmax = max(abs(s) for s in steps)
        dmax = np.nanmean([r["identity_distance"].get(str(k), np.nan) for k in (-kmax, kmax)])
        worst = max(r["other_attribute_change"].items(), key=lambda kv: kv[1])
        rows = f"{min(r['rows'])}-{max(r['rows'])}"
        print(f"{name:<10} {rows:<12} {r['sigma']:6.3f}  {sc:<44} {r['monotonic_share']:5.2f} {r['mean_rho']:5.2f} "
              f"{c1:9.3f} {d1:7.3f} {dmax:8.3f}  {worst[0]} {worst[1]:.2f}")
    (args.out / "directions.json").write_text(json.dumps(
        {"network": args.network, "faces": [f for f, _ in faces], "seconds": seconds, "results": results},
        indent=1, default=float))
    print(f"wrote {args.out}/directions.json and one strip per attribute")


if __name__ == "__main__":
    main()
