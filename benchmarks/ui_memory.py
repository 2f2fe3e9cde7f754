"""The web UI's resident memory under large uploads, against its ``--memory-budget``.

Starts ``latentlab ui`` in its own process, opens a browser session over HTTP (cookie and CSRF
token, as the page does), uploads ``--uploads`` photos of ``--size`` x ``--size`` pixels (a PNG of
about a megabyte: a smooth gradient, 3 bytes a pixel once decoded) and reads the server's resident
size (``VmRSS``) after each upload and its peak (``VmHWM``) from ``/proc``. Prints a table and the
growth over the reading after a small warm-up upload, against the budget::

    python benchmarks/ui_memory.py --budget 512M --uploads 8 --size 8000
    python benchmarks/ui_memory.py --budget 512M --uploads 40 --size 8000 --project   # past the budget
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Iterator


def status_mb(pid: int) -> dict[str, float]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            key, value = line.split(":", 1)
            out[key] = int(value.split()[0]) / 1024
    return out


def gradient_png(size: int) -> bytes:
    import numpy as np
    from PIL import Image

    ramp = np.linspace(0, 255, size, dtype=np.float32)
    img = np.empty((size, size, 3), np.uint8)
    img[..., 0] = ramp[None, :]
    img[..., 1] = ramp[:, None]
    img[..., 2] = 128
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG", compress_level=9)
    return buf.getvalue()


class Browser:
    """One browser session of the UI: its cookie, its CSRF token, same-origin requests."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
        self.token = self.get_json("/api/session")["csrf_token"]

    def _headers(self) -> dict[str, str]:
        return {"Origin": self.base, "Sec-Fetch-Site": "same-origin", "X-CSRF-Token": getattr(self, "token", "")}

    def get_json(self, path: str) -> dict:
        req = urllib.request.Request(self.base + path, headers=self._headers())
        with self.opener.open(req, timeout=600) as r:
            return json.loads(r.read())

    def post_json(self, path: str, payload: dict) -> dict:
        req = urllib.request.Request(self.base + path, data=json.dumps(payload).encode(), method="POST",
                                     headers={**self._headers(), "Content-Type": "application/json"})
        with self.opener.open(req, timeout=600) as r:
            return json.loads(r.read())

    def project(self, photo: str, steps: int | None) -> dict:
        """Project an uploaded photo with the studio's preset; wait for the job."""
        job = self.post_json("/api/project", {"photo": photo, **({"steps": steps} if steps else {})})
        while job["status"] == "running":
            time.sleep(1.0)
            job = self.get_json(f"/api/jobs/{job['id']}")
        return job

    def upload(self, data: bytes, name: str, *, align: bool = False) -> tuple[int, dict]:
        """Upload image bytes as the page does (``align``: the server aligns the face): (status, JSON)."""
        boundary = uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"{name}\"\r\n"
                f"Content-Type: image/png\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
        headers = {**self._headers(), "Content-Type": f"multipart/form-data; boundary={boundary}"}
        req = urllib.request.Request(self.base + "/api/photos" + ("" if align else "?align=0"), data=body,
                                     headers=headers, method="POST")
        try:
            with self.opener.open(req, timeout=600) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")


@contextlib.contextmanager
def ui_server(*flags: str) -> Iterator[tuple[subprocess.Popen, str]]:
    """``latentlab ui --port 0 --device cpu FLAGS...`` in its own process group: yields (the process,
    its base URL) once it listens, and stops it (Ctrl-C, then kill) on leaving."""
    exe = Path(sys.executable).parent / "latentlab"
    server = subprocess.Popen([str(exe), "ui", "--port", "0", "--device", "cpu", *flags], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        base = None
        deadline = time.time() + 600
        while base is None and time.time() < deadline:
            line = server.stdout.readline()
            if not line:
                raise SystemExit(f"the UI did not start (exit {server.poll()})")
            m = re.search(r"open (http://[^/]+)/", line)
            if m:
                base = m.group(1)
        if base is None:
            raise SystemExit("the UI did not start within 10 minutes")
        yield server, base
    finally:
        os.killpg(server.pid, signal.SIGINT)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


def parse_size(text: str) -> int:
    m = re.fullmatch(r"(\d+)([KMG]?)", text.strip().upper())
    if not m:
        raise SystemExit(f"bad size {text!r}")
    return int(m.group(1)) * {"": 1, "K": 2**10, "M": 2**20, "G": 2**30}[m.group(2)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--network", default="ffhq-mobile")
    ap.add_argument("--budget", default="512M")
    ap.add_argument("--uploads", type=int, default=8)
    ap.add_argument("--size", type=int, default=8000)
    ap.add_argument("--project", action="store_true",
                    help="project the first upload (the studio's preset, pivotal tuning by default) before the rest")
    ap.add_argument("--project-steps", type=int, default=None, help="its projection steps (default: the preset's)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    png = gradient_png(args.size)
    with ui_server("--network", args.network, "--memory-budget", args.budget) as (server, base):
        b = Browser(base)
        b.get_json("/api/info")
        started = status_mb(server.pid)
        # a small first upload loads what any first upload loads (image plugins, the request parser)
        code, resp = b.upload(gradient_png(256), "warm.png")
        if code != 200:
            raise SystemExit(f"the warm-up upload failed: {code} {resp}")
        rows = [{"upload": 0, **status_mb(server.pid), "status": code}]
        for i in range(args.uploads):
            t0 = time.perf_counter()
            code, resp = b.upload(png, f"big{i}.png")
            secs = time.perf_counter() - t0
            rows.append({"upload": i + 1, **status_mb(server.pid), "status": code, "seconds": round(secs, 2),
                         "size": resp.get("size"), "decoded": resp.get("decoded_size"), "error": resp.get("error")})
            if args.project and i == 0 and code == 200:
                t0 = time.perf_counter()
                job = b.project(resp["photo"], args.project_steps)
                rows.append({"upload": "project", **status_mb(server.pid), "status": job["status"],
                             "seconds": round(time.perf_counter() - t0, 1)})
        first = rows[0]["VmRSS"]
        budget_mb = parse_size(args.budget) / 2**20
        print(f"latentlab ui --memory-budget {args.budget} ({args.network}); {args.uploads} uploads of "
              f"{args.size}x{args.size} PNG ({len(png) / 2**20:.1f} MiB each, {3 * args.size ** 2 / 2**20:.0f} MiB decoded)")
        print(f"RSS {started['VmRSS']:.0f} MiB once started, {rows[0]['VmRSS']:.0f} MiB after a 256 px upload (row 0)")
        print(f"{'upload':>7} {'status':>6} {'s':>6} {'RSS MiB':>8} {'growth':>7} {'peak MiB':>9}")
        for r in rows:
            print(f"{r['upload']:>7} {str(r['status']):>6} {r.get('seconds', 0):>6.1f} {r['VmRSS']:>8.0f} "
                  f"{r['VmRSS'] - first:>7.0f} {r['VmHWM']:>9.0f}")
        growth = max(r["VmRSS"] for r in rows) - first
        print(f"largest growth {growth:.0f} MiB against a budget of {budget_mb:.0f} MiB "
              f"({growth / budget_mb:.0%} of it; the limit asked for is 130%)")
        if args.json:
            args.json.write_text(json.dumps({"started": started, "rows": rows, "budget_mib": budget_mb,
                                             "growth_mib": growth}, indent=2))


if __name__ == "__main__":
    main()
