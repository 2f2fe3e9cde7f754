"""The same edit on many photos: project each (cached), edit, paste back, and a before/after grid.

    python examples/batch.py [PHOTO_OR_FOLDER ...] [--smile 1s] [--network ffhq-mobile]

Writes <outdir>/<name>_pasted.jpg per photo (<name>_edit.png for a latent .npz input) and
<outdir>/grid.png (top row: projections; bottom: edits).
"""

import argparse
from pathlib import Path

import latentlab as ll

PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "photos"
SUFFIXES = {".jpg", ".jpeg", ".png", ".npz"}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("inputs", nargs="*", type=Path,
                    default=[PHOTOS / "portraits" / n for n in ("003f.jpg", "008f.jpg", "010f.jpg")])
    ap.add_argument("--smile", default="1s", help="W units (1.5) or sigma (1s)")
    ap.add_argument("--network", default="ffhq-mobile")
    ap.add_argument("--num-steps", type=int, default=None, help="projection steps (default: the preset's)")
    ap.add_argument("--outdir", type=Path, default=Path("out/examples/batch"))
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args(argv)

    files = []
    for p in args.inputs:
        files += sorted(q for q in p.iterdir() if q.suffix.lower() in SUFFIXES) if p.is_dir() else [p]
    G = ll.load_generator(args.network)
    steps = {"num_steps": args.num_steps} if args.num_steps else {}
    before, after = ll.Batch(), ll.Batch()
    for f in files:
        me = ll.project(f, G, progress=False, **steps)
        edited = me.edit(smile=args.smile)
        out = args.outdir / (f"{me.name}_pasted.jpg" if edited.can_paste else f"{me.name}_edit.png")
        (edited.paste() if edited.can_paste else edited.image).save(out, force=args.force)
        before.append(me)
        after.append(edited)
        print(f"{f} -> {out}")
    ll.Batch(before + after).grid(cols=len(files)).save(args.outdir / "grid.png", force=args.force)


if __name__ == "__main__":
    main()
