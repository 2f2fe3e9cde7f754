"""Drag points of a face to new places (DragGAN's method) and paste the result back into the photo.

    python examples/drag.py [PHOTO] [--shift 20] [--points "x,y>x,y;..."] [--coords photo|aligned]
                            [--steps 200] [--network ffhq-mobile] [--outdir out/examples/drag]

Without --points, the mouth corners (dlib landmarks 48 and 54, found when the photo was aligned)
move up by --shift photo pixels: a smile drawn by hand. Writes <outdir>/<name>_drag.png (aligned),
<name>_drag_pasted.jpg (the whole photo; for a photo input) and <name>_drag.npz (the dragged latent,
which every command and example takes).
"""

import argparse
from pathlib import Path

import latentlab as ll

PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "photos"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("photo", nargs="?", default=PHOTOS / "portraits" / "003f.jpg", type=Path,
                    help="a photo, or a latent .npz from project.py")
    ap.add_argument("--points", default=None, help='handle>target pairs "x,y>x,y;x,y>x,y" (default: mouth corners up)')
    ap.add_argument("--coords", default="auto", choices=["auto", "photo", "aligned"])
    ap.add_argument("--shift", type=float, default=20.0, help="photo pixels the mouth corners move up")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--network", default="ffhq-mobile")
    ap.add_argument("--outdir", type=Path, default=Path("out/examples/drag"))
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args(argv)

    G = ll.load_generator(args.network)
    me = ll.project(args.photo, G)
    points, coords = args.points, args.coords
    if points is None:
        marks = me.transform.landmarks if me.transform is not None else None
        if marks is None or len(marks) != 68:
            raise SystemExit("no facial landmarks are known for this input: give --points")
        points = [((float(marks[i, 0]), float(marks[i, 1])), (float(marks[i, 0]), float(marks[i, 1] - args.shift)))
                  for i in (48, 54)]
        coords = "photo"
    dragged = me.drag(points, coords=coords, steps=args.steps)
    op = dragged.history[-1]
    out = args.outdir / dragged.name
    dragged.image.save(f"{out}.png", force=args.force)
    dragged.save(f"{out}.npz", force=args.force)
    if dragged.can_paste:
        dragged.paste().save(f"{out}_pasted.jpg", force=args.force)
    print(f"{len(op['points'])} handle(s) in {op['steps']} steps ({op['stopped']}); now at {op['handles_final']}")
    print(f"wrote {out}.png and {out}.npz" + (f" and {out}_pasted.jpg" if dragged.can_paste else ""))


if __name__ == "__main__":
    main()
