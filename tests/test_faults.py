"""Faults a shared or long-running installation meets: a killed folder run resumed, a full disk,
two browsers at once, and the web UI's resident memory under uploads far larger than its budget.
(A Ray worker killed mid-run: tests/test_ray.py.)"""

from __future__ import annotations

import errno
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import make_tiny, save_tiny
from PIL import Image

from latentlab.cli import main
from latentlab.errors import LatentlabError

LATENTLAB = Path(sys.executable).parent / "latentlab"


def _photos(folder: Path, n: int, size: int = 64) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        px = np.random.RandomState(i).randint(0, 255, (size, size, 3)).astype(np.uint8)
        Image.fromarray(px).save(folder / f"p{i}.png")
    return folder


def _manifest(out: Path) -> list[dict]:
    if not (out / "manifest.jsonl").is_file():
        return []
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def net(tmp_path_factory) -> Path:
    return save_tiny(make_tiny(0), tmp_path_factory.mktemp("faults") / "tiny.safetensors")


# ------------------------------------------------------------------------------ a killed run, resumed
def test_sigkill_of_a_local_run_then_a_rerun_loses_nothing(net, tmp_path):
    src, out = _photos(tmp_path / "in", 4), tmp_path / "out"
    cmd = [str(LATENTLAB), "project", str(src), "--network", str(net), "--outdir", str(out), "--preset", "paper",
           "--num-steps", "150", "--w-avg-samples", "200", "--loss-res", "32", "--lpips-weight", "0",
           "--no-align", "--device", "cpu"]
    env = {**os.environ, "LATENTLAB_NO_MALLOC_TUNING": "1"}
    run = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and run.poll() is None and not any(r["status"] == "done" for r in _manifest(out)):
        time.sleep(0.05)
    assert run.poll() is None, "the run ended before it could be killed (make its photos slower)"
    os.killpg(run.pid, signal.SIGKILL)
    run.wait(timeout=30)
    before = _manifest(out)
    assert any(r["status"] == "done" for r in before) and len(before) < 4
    # a 'done' row counts once its outputs are in place (the kill may land between the two)
    first = [r["name"] for r in before if r["status"] == "done" and (out / r["name"] / "latent.npz").is_file()]
    # the killed attempt left its scratch folder and maybe its lock; neither blocks the rerun
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    rows = _manifest(out)[len(before):]
    done = [r["name"] for r in rows if r["status"] == "done"]
    skipped = [r["name"] for r in rows if r["status"] == "skipped"]
    assert sorted(done + skipped) == ["p0", "p1", "p2", "p3"]  # each photo once, none lost
    assert sorted(skipped) == sorted(first)  # what was finished is kept, not redone
    assert all((out / f"p{i}" / "latent.npz").is_file() for i in range(4))
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


# ------------------------------------------------------------------------------ a full disk
def test_a_full_disk_is_one_line_and_leaves_no_partial_file(net, tmp_path, monkeypatch):
    """Every write under the output folder fails as a full disk does (ENOSPC): a folder run records
    each photo as failed with one line and leaves no file behind; an editing command says so in
    one line and writes nothing."""
    import builtins

    out = tmp_path / "out"
    real_open = builtins.open

    class Full(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, b) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    def open_(file, mode="r", *a, **k):
        if any(c in mode for c in "wxa") and str(file).startswith(str(out)):
            real_open(file, mode, *a, **k).close()  # the file appears, as on a real disk, then fills up
            return Full()
        return real_open(file, mode, *a, **k)

    src = _photos(tmp_path / "in", 2)
    monkeypatch.setattr(builtins, "open", open_)
    res = CliRunner().invoke(main, ["project", str(src), "--network", str(net), "--outdir", str(out), "--preset",
                                    "paper", "--num-steps", "1", "--no-align", "--device", "cpu"])
    assert res.exit_code == 1, res.output
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("latentlab: error: ")]
    assert len(errors) == 1 and "No space left on device" in errors[0], res.stderr
    assert "Traceback" not in res.output
    left = [p.relative_to(out) for p in out.rglob("*") if p.is_file() and p.name != "manifest.jsonl"]
    assert left == [] and not [p for p in out.iterdir() if p.is_dir()]
    # an editing command: one line, nothing written
    from latentlab.latent import Latent, save_latent

    monkeypatch.setattr(builtins, "open", real_open)
    save_latent(Latent(make_tiny(0).mapping(__import__("torch").zeros(1, 16)), network=str(net)), tmp_path / "s.npz")
    monkeypatch.setattr(builtins, "open", open_)
    res = CliRunner().invoke(main, ["edit", str(tmp_path / "s.npz"), "--sefa", "0:1", "--network", str(net),
                                    "--outdir", str(out / "edit")])
    assert res.exit_code == 1 and "No space left on device" in res.stderr and "Traceback" not in res.output
    assert not [p for p in (out / "edit").rglob("*") if p.is_file()] if (out / "edit").exists() else True


# ------------------------------------------------------------------------------ two browsers at once
def test_two_sessions_at_once_queue_cleanly_and_see_only_their_own(net, tmp_path):
    import latentlab as ll
    from latentlab.ui.core import BusyError, Studio, png_bytes

    G = ll.load_generator(net)
    studio = Studio(G, str(net), preset="paper", default_steps=40)
    a, b = studio.new_session(), studio.new_session()
    photos = {}
    for s, seed in ((a, 1), (b, 2)):
        px = np.random.RandomState(seed).randint(0, 255, (64, 64, 3)).astype(np.uint8)
        photos[s.id] = s.add_photo(png_bytes(px), f"face{seed}.png", align=False)
    results: dict[str, object] = {}

    def start(s):
        try:
            results[s.id] = s.start_projection(photos[s.id]["photo"], num_steps=40)
        except BusyError as exc:
            results[s.id] = exc

    threads = [threading.Thread(target=start, args=(s,)) for s in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    started = [s for s in (a, b) if not isinstance(results[s.id], Exception)]
    refused = [s for s in (a, b) if isinstance(results[s.id], Exception)]
    assert len(started) == 1 and len(refused) == 1  # one runs; the other is told, never mixed in
    assert "busy with another session's job; try again" in str(results[refused[0].id])
    assert refused[0].info()["busy_elsewhere"] and not refused[0].jobs  # it sees no job of the other's
    job = started[0].wait(results[started[0].id], timeout=300)
    assert job.status == "done", job.error
    job2 = refused[0].wait(refused[0].start_projection(photos[refused[0].id]["photo"], num_steps=40), timeout=300)
    assert job2.status == "done", job2.error
    for s, j in ((started[0], job), (refused[0], job2)):
        lat = s.latents.need(j.result["latent"])
        assert lat.name == photos[s.id]["name"]  # each result is its own photo's
        assert [x["id"] for x in s.info()["jobs"]] == [j.id]
        other = refused[0] if s is started[0] else started[0]
        with pytest.raises(LatentlabError):
            other.job(j.id)


# ------------------------------------------------------------------------------ the UI's memory
def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads the resident size from /proc")
def test_ui_resident_memory_stays_within_its_budget_under_huge_uploads(net, tmp_path):
    import urllib.request
    from http.cookiejar import CookieJar

    budget_mib = 64  # the least --memory-budget accepts
    w = h = 5000  # 72 MiB decoded, more than the budget per upload; kept downscaled to 2048 px (12 MiB)
    ramp = np.linspace(0, 255, w, dtype=np.float32)
    img = np.empty((h, w, 3), np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = ramp[None, :], ramp[:, None], 90
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    png = buf.getvalue()
    server = subprocess.Popen([str(LATENTLAB), "ui", "--network", str(net), "--port", "0", "--memory-budget",
                               f"{budget_mib}M", "--device", "cpu", "--preset", "paper"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        base = None
        while base is None:
            line = server.stdout.readline()
            assert line, f"the UI did not start: exit {server.poll()}"
            m = re.search(r"open (http://[^/]+)/", line)
            base = m.group(1) if m else None
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
        hdr = {"Origin": base, "Sec-Fetch-Site": "same-origin"}
        with opener.open(urllib.request.Request(base + "/api/session", headers=hdr), timeout=60) as r:
            hdr["X-CSRF-Token"] = json.loads(r.read())["csrf_token"]
        with opener.open(urllib.request.Request(base + "/api/info", headers=hdr), timeout=60) as r:
            from latentlab.inversion import PRESETS

            # without --steps the page proposes the preset's own projection steps
            assert json.loads(r.read())["default_steps"] == PRESETS["paper"].num_steps

        def upload(data: bytes, name: str) -> int:
            bd = uuid.uuid4().hex
            body = (f"--{bd}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"{name}\"\r\n"
                    "Content-Type: image/png\r\n\r\n").encode() + data + f"\r\n--{bd}--\r\n".encode()
            req = urllib.request.Request(base + "/api/photos?align=0", data=body, method="POST",
                                         headers={**hdr, "Content-Type": f"multipart/form-data; boundary={bd}"})
            with opener.open(req, timeout=300) as r:
                return r.status

        small = io.BytesIO()
        Image.fromarray(img[:200, :200]).save(small, format="PNG")
        assert upload(small.getvalue(), "warm.png") == 200  # the first request loads the decoders
        start = _rss_mib(server.pid)
        growth = []
        for i in range(8):
            assert upload(png, f"big{i}.png") == 200
            growth.append(_rss_mib(server.pid) - start)
        assert max(growth) <= 1.3 * budget_mib, growth  # eight uploads of ~a budget each: held to the budget
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGINT)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)

