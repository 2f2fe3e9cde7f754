"""Does expression transfer (Image2StyleGAN's ``w1 + lambda (w3 - w2)``) carry a smile? Measured.

From a set of projected photos (``latent.npz`` files written by ``latentlab project``), takes the
face whose reconstruction smiles least as FROM and the one that smiles most as TO (dlib mouth
geometry, the same score that fitted the smile direction), adds ``lambda * (TO - FROM)`` to every
other face on the smile rows (0-5 of the 18-row layout, mapped by resolution) for each ``--strengths`` value,
renders, and reports per lambda: the mean smile score, the share of faces whose score rises
strictly with lambda, and identity (dlib embedding) against the unedited render. Writes
``summary.json`` and ``strip.png`` (rows: the first ``--show`` faces; columns: lambda).

    python benchmarks/eval_transfer.py --latents out/portraits/*/latent.npz --out out/eval_transfer
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--latents", type=Path, nargs="+", required=True, help="latent.npz files (>= 3)")
    ap.add_argument("--network", default="ffhq-mobile")
    ap.add_argument("--layers", default="0-5", help="layer range of the transfer (reference rows by default)")
    ap.add_argument("--strengths", default="0,0.5,1,1.5")
    ap.add_argument("--show", type=int, default=6, help="faces in strip.png")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", type=Path, default=Path("out/eval_transfer"))
    args = ap.parse_args()

    import torch
    from PIL import Image
    from tqdm import tqdm

    from latentlab.editing.fit import render_small
    from latentlab.editing.layers import parse_layers
    from latentlab.editing.mixing import expression_transfer
    from latentlab.faces.attributes import score_attributes
    from latentlab.faces.identity import compare_embeddings, face_embedding
    from latentlab.faces.landmarks import NoFaceError
    from latentlab.latent import load_latent
    from latentlab.registry import load_generator, resolve_device

    if len(args.latents) < 3:
        ap.error("give at least 3 latents (FROM, TO and a target)")
    G = load_generator(args.network, resolve_device(args.device))
    rows = parse_layers(args.layers, G)
    lambdas = [float(s) for s in args.strengths.split(",")]
    t0 = time.perf_counter()

    def smile_of(img: np.ndarray) -> float:
        try:
            return float(score_attributes(img, ["smile"], upsample=0)["smile"][0])
        except NoFaceError:
            return float("nan")

    faces = [(p.parent.name, load_latent(p, G).ws[:1]) for p in args.latents]
    base = {}
    for label, ws in tqdm(faces, desc="unedited"):
        img = render_small(G, ws)[0]
        base[label] = (img, smile_of(img))
    ranked = sorted((s, lbl) for lbl, (_, s) in base.items() if np.isfinite(s))
    src_from, src_to = ranked[0][1], ranked[-1][1]
    ws_of = dict(faces)
    targets = [(lbl, ws) for lbl, ws in faces if lbl not in (src_from, src_to)]

    per_face = []
    strip_rows = []
    for label, ws in tqdm(targets, desc="transfer"):
        emb0 = face_embedding(base[label][0], upsample=0)
        scores, cos, dist, imgs = [], [], [], []
        for lam in lambdas:
            out = expression_transfer(ws, ws_of[src_from], ws_of[src_to], lam, rows)
            img = render_small(G, out)[0]
            imgs.append(img)
            scores.append(smile_of(img))
            try:
                sim = compare_embeddings(emb0, face_embedding(img, upsample=0))
                cos.append(sim.cosine)
                dist.append(sim.distance)
            except NoFaceError:
                cos.append(float("nan"))
                dist.append(float("nan"))
        per_face.append({"face": label, "smile": scores, "identity_cosine": cos, "identity_distance": dist})
        if len(strip_rows) < args.show:
            strip_rows.append(np.concatenate(imgs, axis=1))

    smile = np.array([f["smile"] for f in per_face])
    mono = float(np.mean([np.all(np.diff(s) > 0) for s in smile]))
    summary = {
        "network": args.network, "layers": args.layers, "rows": rows, "from": src_from, "to": src_to,
        "from_smile": base[src_from][1], "to_smile": base[src_to][1], "targets": len(targets),
        "strengths": lambdas, "mean_smile": np.nanmean(smile, axis=0).tolist(), "monotone_share": mono,
        "mean_identity_cosine": np.nanmean([f["identity_cosine"] for f in per_face], axis=0).tolist(),
        "mean_identity_distance": np.nanmean([f["identity_distance"] for f in per_face], axis=0).tolist(),
        "seconds": time.perf_counter() - t0, "faces": per_face,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    Image.fromarray(np.concatenate(strip_rows, axis=0)).save(args.out / "strip.png")
    print(f"FROM {src_from} (smile {summary['from_smile']:.3f}) -> TO {src_to} (smile {summary['to_smile']:.3f}), "
          f"rows {rows}, {len(targets)} targets, {summary['seconds']:.0f} s")
    print(f"{'lambda':>7} {'smile':>7} {'id cos':>7} {'id dist':>8}")
    for i, lam in enumerate(lambdas):
        print(f"{lam:>7.2f} {summary['mean_smile'][i]:>7.3f} {summary['mean_identity_cosine'][i]:>7.3f} "
              f"{summary['mean_identity_distance'][i]:>8.3f}")
    print(f"smile rises strictly with lambda on {mono:.0%} of the faces")


if __name__ == "__main__":
    main()
