"""How soon the web UI shows a photo's pivot after Project is pressed, and when the result is done.

Starts ``latentlab ui`` (its default preset, ``pti``) in its own process, opens a session over
HTTP as the page does, uploads each photo (the upload aligns it, before Project is pressed), then
presses Project: posts ``/api/project`` and polls the job every 0.1 s as the page polls it. Per
photo: seconds from the press to the first tuning step (the pivot's preview is set at the
projection's last step, before tuning starts), to the first preview of the tuning, and to the end::

    python benchmarks/ui_pivot.py ../shared/photos/portraits/010f.jpg ../shared/photos/portraits/108m.jpg
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ui_memory import Browser, ui_server  # this folder is on sys.path when run as a script


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("photos", nargs="+", type=Path)
    ap.add_argument("--network", default="ffhq-mobile")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    rows = []
    with ui_server("--network", args.network) as (_server, base):
        b = Browser(base)
        info = b.get_json("/api/info")
        for path in args.photos:
            t0 = time.perf_counter()
            code, photo = b.upload(path.read_bytes(), path.name, align=True)
            if code != 200:
                raise SystemExit(f"{path}: upload refused: {code} {photo}")
            upload_s = time.perf_counter() - t0
            t0 = time.perf_counter()  # Project pressed
            job = b.post_json("/api/project", {"photo": photo["photo"]})
            pivot_s = tuning_preview_s = None
            tuning_started_step = None
            while job["status"] == "running":
                time.sleep(0.1)
                job = b.get_json(f"/api/jobs/{job['id']}")
                now = time.perf_counter() - t0
                if pivot_s is None and job["message"].startswith("pivotal tuning"):
                    pivot_s, tuning_started_step = now, job["step"]
                elif (pivot_s is not None and tuning_preview_s is None and job["has_preview"]
                      and job["step"] > tuning_started_step):
                    tuning_preview_s = now
            total_s = time.perf_counter() - t0
            row = {"photo": path.name, "upload_s": round(upload_s, 1), "pivot_s": pivot_s and round(pivot_s, 1),
                   "first_tuning_preview_s": tuning_preview_s and round(tuning_preview_s, 1),
                   "done_s": round(total_s, 1), "status": job["status"]}
            rows.append(row)
            print(row, flush=True)
        print(f"\nlatentlab ui ({args.network}, preset {info.get('preset', '?')}): seconds after Project is pressed")
        print(f"{'photo':<24} {'upload':>7} {'pivot':>6} {'tuning preview':>15} {'done':>6}")
        for r in rows:
            print(f"{r['photo']:<24} {r['upload_s']:>7} {str(r['pivot_s']):>6} {str(r['first_tuning_preview_s']):>15} "
                  f"{r['done_s']:>6}")
        if args.json:
            args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
