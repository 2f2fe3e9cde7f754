"""Folder runs of ``latentlab project`` (local engine): per-photo isolation, the manifest, resume,
Ctrl-C, atomic outputs. A tiny 32 px StyleGAN2 and 64 px crops of ../shared photos (--no-align)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from latentlab.cli import main

STEPS = ["--preset", "paper", "--num-steps", "1", "--device", "cpu", "--no-align"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=True)


def one_line_error(res, code: int) -> str:
    assert res.exit_code == code, (res.exit_code, res.output)
    assert "Traceback" not in res.output and (res.exception is None or isinstance(res.exception, SystemExit))
    # progress bars may come before it on stderr; the error itself is one line, the last one
    lines = [ln for ln in res.stderr.replace("\r", "\n").splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("latentlab: error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], res.stderr
    return errors[0]


def manifest(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def env(tmp_path_factory, shared_dir):
    """A cache holding only links to the real LPIPS and dlib wheels, a tiny 32 px generator (LPIPS's
    smallest input) and three 64 px photos."""
    from conftest import tiny_photo_env

    e = tiny_photo_env(tmp_path_factory.mktemp("folder_runs"), shared_dir)
    net, photos, root, cache = e["net"], e["photos"], e["root"], e["cache"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LATENTLAB_CACHE", str(cache))
        yield {"net": net, "photos": photos, "root": root}


def _folder(env, tmp_path, bad: bool = True) -> Path:
    d = tmp_path / "in"
    d.mkdir()
    for p in env["photos"].iterdir():
        (d / p.name).write_bytes(p.read_bytes())
    if bad:
        (d / "bad.jpg").write_text("not a photo at all")
    (d / "._p0.png").write_bytes(b"\0\5\26\7 AppleDouble")  # macOS metadata: not a photo, left out
    return d


def test_corrupt_photo_is_reported_and_the_rest_finish_then_a_rerun_skips_them(env, tmp_path):
    src, out = _folder(env, tmp_path), tmp_path / "out"
    res = run("project", src, "--network", env["net"], "--outdir", out, *STEPS)
    err = one_line_error(res, 1)
    assert "bad.jpg" in err and "not an image" in err
    assert "3 done, 1 failed, 0 skipped" in res.stdout
    assert "latentlab: failed: " in res.stdout and "bad.jpg" in res.stdout
    rows = manifest(out)
    assert sorted((Path(r["photo"]).name, r["status"]) for r in rows) == [
        ("bad.jpg", "failed"), ("p0.png", "done"), ("p1.png", "done"), ("p2.png", "done")]
    for r in rows:
        assert r["seconds"] >= 0 and r["pid"] == os.getpid() and r["host"] and r["settings"]
        if r["status"] == "done":
            assert r["metrics"]["steps"] == 1 and np.isfinite(r["metrics"]["psnr"])
            assert json.loads((out / r["name"] / "metrics.json").read_text())["psnr"] == r["metrics"]["psnr"]
        else:
            assert "not an image" in r["error"] and "metrics" not in r
    for i in range(3):
        assert {p.name for p in (out / f"p{i}").iterdir()} == {
            "aligned.png", "reconstruction.png", "compare.png", "pasted.png", "latent.npz", "metrics.json"}
    assert not (out / "bad").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no scratch folders left

    # Rerun after fixing the bad photo: the three done photos are skipped (files untouched), only it runs.
    stamps = {i: (out / f"p{i}" / "latent.npz").stat().st_mtime_ns for i in range(3)}
    (src / "bad.jpg").unlink()
    Image.open(env["photos"] / "p1.png").save(src / "bad.jpg")
    res = run("project", src, "--network", env["net"], "--outdir", out, *STEPS)
    assert res.exit_code == 0, res.output
    assert "1 done, 0 failed, 3 skipped" in res.stdout
    assert {i: (out / f"p{i}" / "latent.npz").stat().st_mtime_ns for i in range(3)} == stamps
    assert (out / "bad" / "latent.npz").is_file()
    rows = manifest(out)
    assert [r["status"] for r in rows[4:]].count("skipped") == 3 and rows[-1]["status"] in ("done", "skipped")

    # A third run does nothing; other settings or --no-skip-existing refuse in one line.
    res = run("project", src, "--network", env["net"], "--outdir", out, *STEPS)
    assert res.exit_code == 0 and "0 done, 0 failed, 4 skipped" in res.stdout
    err = one_line_error(run("project", src, "--network", env["net"], "--outdir", out, *STEPS, "--lr", "0.05"), 1)
    assert "other settings" in err and "--force" in err
    err = one_line_error(run("project", src, "--network", env["net"], "--outdir", out, *STEPS, "--no-skip-existing"), 1)
    assert "already exists" in err


def test_outputs_equal_a_direct_projection(env, tmp_path):
    """What the folder run writes is the projector's own result on the same target (lazy
    per-batch preparation and the scratch-folder commit change nothing)."""
    from latentlab.imageio import image_to_tensor
    from latentlab.inversion import PRESETS, project
    from latentlab.latent import load_latent
    from latentlab.losses import LPIPS
    from latentlab.registry import load_generator

    out = tmp_path / "out"
    res = run("project", env["photos"] / "p2.png", "--network", env["net"], "--outdir", out, *STEPS)
    assert res.exit_code == 0, res.output
    G = load_generator(env["net"], "cpu", progress=False)
    aligned = image_to_tensor(np.asarray(Image.open(out / "p2" / "aligned.png")))
    assert aligned.shape == (1, 3, 32, 32)
    ref = project(G, aligned, PRESETS["paper"].replace(num_steps=1), lpips_model=LPIPS().eval())
    assert torch.allclose(load_latent(out / "p2" / "latent.npz").ws, ref.ws, atol=1e-6)


def _interrupting(monkeypatch, at_call: int, how: str):
    """Make the ``at_call``-th batch of a run see Ctrl-C: ``raise`` (KeyboardInterrupt out of the
    batch's inversion) or ``callback`` (the optimiser's progress callback raises it at its first
    step; project() returns the best latent so far, marked interrupted)."""
    import latentlab.inversion
    from latentlab.inversion import inverter

    calls = {"n": 0}
    real_invert, real_project = inverter.invert, inverter.project

    def invert(*a, **k):
        calls["n"] += 1
        if calls["n"] == at_call and how == "raise":
            raise KeyboardInterrupt
        return real_invert(*a, **k)

    def proj(G, targets, cfg, *, progress=None, **k):
        def cb(ev):
            if progress is not None:
                progress(ev)
            if calls["n"] == at_call:  # at its first step
                raise KeyboardInterrupt
        return real_project(G, targets, cfg, progress=cb, **k)

    monkeypatch.setattr(latentlab.inversion, "invert", invert)
    monkeypatch.setattr(inverter, "project", proj)
    return calls


@pytest.mark.parametrize("how", ["raise", "callback"])
def test_ctrl_c_keeps_finished_photos_and_a_rerun_continues(env, tmp_path, monkeypatch, how):
    src, out = _folder(env, tmp_path, bad=False), tmp_path / "out"
    with monkeypatch.context() as mp:
        _interrupting(mp, 2, how)
        res = run("project", src, "--network", env["net"], "--outdir", out, *STEPS)
    assert res.exit_code == 130, res.output
    assert "latentlab: interrupted: 1 photo(s) written, 2 not written; rerun the same command" in res.stderr
    assert "1 done, 0 failed, 0 skipped, 2 not run (interrupted)" in res.stdout
    assert [(r["name"], r["status"]) for r in manifest(out)] == [("p0", "done")]
    assert (out / "p0" / "latent.npz").is_file()
    assert not (out / "p1").exists() and not (out / "p2").exists()  # the interrupted photo is not half-written
    res = run("project", src, "--network", env["net"], "--outdir", out, *STEPS)
    assert res.exit_code == 0 and "2 done, 0 failed, 1 skipped" in res.stdout
    assert [(r["name"], r["status"]) for r in manifest(out)][1:] == [("p0", "skipped"), ("p1", "done"), ("p2", "done")]


def test_library_returns_the_summary_and_marks_ctrl_c(env, tmp_path, monkeypatch):
    import latentlab as ll

    src = _folder(env, tmp_path)
    files = ll.collect_photos([src])
    assert [f.name for f in files] == ["bad.jpg", "p0.png", "p1.png", "p2.png"]
    kw = dict(network=str(env["net"]), align=False, device="cpu", progress=False, num_steps=1)
    s = ll.project_photos(files, tmp_path / "a", "paper", **kw)
    assert [Path(m["photo"]).name for m in s.metrics] == ["p0.png", "p1.png", "p2.png"]  # done photos, input order
    assert [Path(p).name for p, _ in s.failed] == ["bad.jpg"] and s.line() == "3 done, 1 failed, 0 skipped"
    with monkeypatch.context() as mp:
        _interrupting(mp, 1, "raise")
        s = ll.project_photos(files[1:], tmp_path / "b", "paper", **kw)
    assert s.interrupted and s.done == 0 and s.not_written == 3
    assert [p.name for p in (tmp_path / "b").iterdir()] == []  # nothing half-written, no lock left


def test_a_photo_that_fails_to_project_is_isolated(env, tmp_path, monkeypatch):
    """An error inside the projection of one batch fails that batch's photos only."""
    import latentlab.inversion

    real = latentlab.inversion.invert

    def invert(photos, *a, **k):
        if photos[0].path.name == "p1.png":
            raise RuntimeError("simulated failure\nwith a second line")
        return real(photos, *a, **k)

    monkeypatch.setattr(latentlab.inversion, "invert", invert)
    out = tmp_path / "out"
    res = run("project", _folder(env, tmp_path, bad=False), "--network", env["net"], "--outdir", out, *STEPS)
    err = one_line_error(res, 1)
    assert "p1.png" in err and "RuntimeError: simulated failure with a second line" in err
    assert "2 done, 1 failed, 0 skipped" in res.stdout
    assert {r["name"]: r["status"] for r in manifest(out)} == {"p0": "done", "p1": "failed", "p2": "done"}


def test_several_failures_summarised_and_unsafe_manifest_refused(env, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for n in ("a.png", "b.jpg"):
        (src / n).write_text("text")
    out = tmp_path / "out"
    err = one_line_error(run("project", src, "--network", env["net"], "--outdir", out, *STEPS), 1)
    assert "2 of 2 photos failed; first: " in err and "manifest.jsonl" in err
    # a manifest planted as a symbolic link is neither read nor written through
    out2 = tmp_path / "out2"
    out2.mkdir()
    (out2 / "manifest.jsonl").symlink_to(tmp_path / "elsewhere.jsonl")
    err = one_line_error(run("project", env["photos"] / "p0.png", "--network", env["net"], "--outdir", out2, *STEPS), 1)
    assert "symbolic link" in err and not (tmp_path / "elsewhere.jsonl").exists()


def test_engine_ray_without_ray_says_how_to_install(env, tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *a, **k):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    err = one_line_error(run("project", env["photos"] / "p0.png", "--network", env["net"], "--outdir", tmp_path / "o",
                             *STEPS, "--engine", "ray"), 1)
    assert "pip install 'latentlab[ray]'" in err


def test_a_second_run_into_the_same_folder_refuses_in_one_line(env, tmp_path):
    """Two runs sharing an output folder by mistake: the second refuses while the first holds it."""
    from latentlab.engine.folder import RunLock

    out = tmp_path / "out"
    out.mkdir()
    with RunLock(out):  # a run in progress (another process in practice: the lock is per open file)
        err = one_line_error(run("project", env["photos"] / "p0.png", "--network", env["net"], "--outdir", out,
                                 *STEPS), 1)
        assert "another latentlab run is writing into this folder" in err and f"pid {os.getpid()}" in err
        assert not (out / "p0").exists() and not (out / "manifest.jsonl").exists()
    res = run("project", env["photos"] / "p0.png", "--network", env["net"], "--outdir", out, *STEPS)
    assert res.exit_code == 0, res.output  # the lock went with its holder


def test_a_dead_attempts_scratch_folder_does_not_block_its_retry(env, tmp_path):
    """A worker killed mid-photo leaves its attempt's scratch folder behind; the photo's next attempt
    writes into a fresh one, is committed once, and the stale folder is removed."""
    out = tmp_path / "out"
    dead = out / ".latentlab-partial-p0-99999-deadbeef"
    dead.mkdir(parents=True)
    (dead / "aligned.png").write_bytes(b"half-written")
    res = run("project", env["photos"] / "p0.png", "--network", env["net"], "--outdir", out, *STEPS)
    assert res.exit_code == 0, res.output
    assert [(r["name"], r["status"]) for r in manifest(out)] == [("p0", "done")]
    assert (out / "p0" / "aligned.png").read_bytes() != b"half-written"
    assert not [p for p in out.iterdir() if p.name.startswith(".latentlab-partial")]
