"""Edit a face photo along named attributes (smile, age, ...) and paste the result back.

    python examples/edit.py [PHOTO] [--smile 1s] [--age -1] [--network ffhq-mobile] [--outdir out/examples/edit]

Strengths are W units (-1) or, with a trailing s, multiples of the attribute's sigma (1s). Writes
<outdir>/<name>_edit.png (aligned), <name>_edit_pasted.jpg (the whole photo; for a photo input) and
<name>_smile_sweep.png (smile from -2 to 2 sigma).
"""

import argparse
from pathlib import Path

import latentlab as ll

PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "photos"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("photo", nargs="?", default=PHOTOS / "portraits" / "003f.jpg", type=Path,
                    help="a photo, or a latent .npz from project.py")
    ap.add_argument("--smile", default="1s")
    ap.add_argument("--age", default="-1")
    ap.add_argument("--network", default="ffhq-mobile")
    ap.add_argument("--num-steps", type=int, default=None, help="projection steps (default: the preset's)")
    ap.add_argument("--outdir", type=Path, default=Path("out/examples/edit"))
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args(argv)

    G = ll.load_generator(args.network)
    steps = {"num_steps": args.num_steps} if args.num_steps else {}
    me = ll.project(args.photo, G, **steps)
    edited = me.edit(smile=args.smile, age=args.age)
    out = args.outdir / edited.name
    edited.image.save(f"{out}.png", force=args.force)
    if edited.can_paste:  # a photo input (a latent .npz has no photo unless given with original=)
        edited.paste().save(f"{out}_pasted.jpg", force=args.force)
    me.sweep("smile", [-2, -1, 0, 1, 2], unit="sigma").save(args.outdir / f"{me.name}_smile_sweep.png",
                                                            force=args.force)
    for e in edited.history[-1]["edits"]:
        print(f"{e['label']} x {e['strength']:.3g} W units on rows {e['rows']}")
    print(f"wrote {out}.png" + (f" and {out}_pasted.jpg" if edited.can_paste else ""))


if __name__ == "__main__":
    main()
