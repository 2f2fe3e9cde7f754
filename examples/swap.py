"""Face swap: put A's face on B, pasted into B's photo.

    python examples/swap.py [A] [B] [--method mix|masked] [--network ffhq-mobile]

Writes <outdir>/<a>_on_<b>.png (aligned), _pasted.jpg (B's photo, for a photo input) and the morph
A -> B as an MP4.
"""

import argparse
from pathlib import Path

import latentlab as ll

PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "photos"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a", nargs="?", default=PHOTOS / "portraits" / "008f.jpg", type=Path, help="the face")
    ap.add_argument("b", nargs="?", default=PHOTOS / "portraits" / "003f.jpg", type=Path, help="the photo it goes on")
    ap.add_argument("--method", choices=["mix", "masked"], default="mix")
    ap.add_argument("--steps", type=int, default=100, help="masked: optimisation steps")
    ap.add_argument("--frames", type=int, default=24, help="frames of the morph video")
    ap.add_argument("--network", default="ffhq-mobile")
    ap.add_argument("--num-steps", type=int, default=None, help="projection steps (default: the preset's)")
    ap.add_argument("--outdir", type=Path, default=Path("out/examples/swap"))
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args(argv)

    G = ll.load_generator(args.network)
    steps = {"num_steps": args.num_steps} if args.num_steps else {}
    a, b = ll.project(args.a, G, **steps), ll.project(args.b, G, **steps)
    swapped = ll.swap(a, b, method=args.method, steps=args.steps)
    out = args.outdir / swapped.name
    swapped.image.save(f"{out}.png", force=args.force)
    if swapped.can_paste:
        swapped.paste().save(f"{out}_pasted.jpg", force=args.force)
    ll.morph(a, b, args.frames).save(args.outdir / f"{a.name}_to_{b.name}.mp4", fps=12, force=args.force)
    print(f"wrote {out}* and the morph video")


if __name__ == "__main__":
    main()
