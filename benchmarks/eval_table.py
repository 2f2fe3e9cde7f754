"""Markdown tables from a ``latentlab evaluate`` run: one row per photo, means per photo group.

Reads ``OUTDIR/results.json`` and prints, for each preset, PSNR, LPIPS-Alex, MS-SSIM, FaceRes ID
cosine, dlib distance, the skin texture ratios, smile +1 sigma's mouth widening and its dlib
distance, and seconds per photo; for presets that tune, the pivot's value comes first
(``pivot -> tuned``). Photos are grouped by name prefix (``--groups``, default: ``portrait_`` and
``ref_``, the two sets of the README's table) with a mean row per group and one for all photos, and
the dlib / FaceRes same-person counts below.

    .venv/bin/python benchmarks/eval_table.py out/eval20
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path


def _mean(values: list[float]) -> float:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return sum(vals) / len(vals) if vals else float("nan")


def _cell(row: dict, key: str, fmt: str, pivot: bool) -> str:
    v = row.get(key)
    s = "–" if v is None else format(v, fmt)
    p = row.get(f"pivot_{key}")
    return f"{format(p, fmt)} → {s}" if pivot and p is not None else s


COLUMNS = [("PSNR (dB)", "psnr", ".1f"), ("LPIPS-Alex", "lpips_alex", ".3f"), ("MS-SSIM", "ms_ssim", ".3f"),
           ("ID cosine (FaceRes)", "id_cosine", ".3f"), ("dlib distance", "dlib_distance", ".3f"),
           ("skin HF", "texture_hf_ratio", ".2f"), ("skin peak", "texture_peak_ratio", ".1f"),
           ("smile +1σ %", "smile_gain_pct", "+.1f"), ("smile dlib", "smile_dlib_distance", ".3f"),
           ("s", "seconds", ".0f")]
#: Columns that have no pivot value.
NO_PIVOT = ("ms_ssim", "seconds", "texture_hf_ratio", "texture_peak_ratio", "smile_gain_pct", "smile_dlib_distance")


def table(rows: list[dict], groups: list[str]) -> str:
    pivot = any(r.get("pivot_psnr") is not None for r in rows)
    out = ["| photo | " + " | ".join(c[0] + (" pivot → tuned" if pivot and c[1] not in NO_PIVOT
                                           else "") for c in COLUMNS) + " |",
           "|---" * (len(COLUMNS) + 1) + "|"]
    for r in sorted(rows, key=lambda r: r["photo"]):
        cells = [_cell(r, k, f, pivot and k not in NO_PIVOT) for _, k, f in COLUMNS]
        out.append(f"| {Path(r['photo']).stem} | " + " | ".join(cells) + " |")
    sets = [(g.rstrip("_"), [r for r in rows if r["photo"].startswith(g)]) for g in groups]
    for name, members in [*sets, ("all", rows)]:
        if not members:
            continue
        mean = {k: _mean([m.get(k) for m in members]) for _, k, _ in COLUMNS}
        mean.update({f"pivot_{k}": _mean([m.get(f"pivot_{k}") for m in members]) for _, k, _ in COLUMNS}
                    if pivot else {})
        cells = [_cell(mean, k, f, pivot and k not in NO_PIVOT) for _, k, f in COLUMNS]
        out.append(f"| **mean, {name} ({len(members)})** | " + " | ".join(cells) + " |")
    same = sum(bool(r.get("dlib_same_person")) for r in rows)
    same_id = sum(bool(r.get("id_same_person")) for r in rows)
    worst = [(r.get("psnr"), r.get("lpips_alex"), r.get("dlib_distance")) for r in rows if r.get("psnr") is not None]
    lines = ["\n".join(out), "",
             f"same person: dlib {same}/{len(rows)}, FaceRes {same_id}/{len(rows)}"]
    if worst:
        lines.append(f"worst photo: PSNR {min(w[0] for w in worst):.1f} dB, LPIPS-Alex {max(w[1] for w in worst):.3f},"
                     f" dlib {max(w[2] for w in worst):.3f}")
    smiles = [(r["smile_gain_pct"], r.get("smile_dlib_distance")) for r in rows if r.get("smile_gain_pct") is not None]
    if smiles:
        strong = sum(g >= 10 for g, _ in smiles)
        kept = sum(d is not None and d <= 0.30 for _, d in smiles)
        lines.append(f"smile +1σ: mouth at least 10% wider on {strong}/{len(smiles)}, dlib to the photo at most 0.30 on "
                     f"{kept}/{len(smiles)}")
    if pivot:
        pv = sum(bool(r.get("pivot_dlib_same_person")) for r in rows)
        lines.append(f"pivots the same person by dlib: {pv}/{len(rows)}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir", type=Path, help="a latentlab evaluate --outdir")
    ap.add_argument("--groups", default="portrait_,ref_", help="comma-separated photo-name prefixes")
    args = ap.parse_args()
    data = json.loads((args.outdir / "results.json").read_text())
    groups = [g for g in args.groups.split(",") if g]
    for preset in data["settings"]["presets"]:
        rows = [r for r in data["rows"] if r["preset"] == preset]
        print(f"## {preset}\n\n{table(rows, groups)}\n")


if __name__ == "__main__":
    main()
