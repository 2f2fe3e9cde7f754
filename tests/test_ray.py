"""The Ray engine (``--engine ray``): projection on Ray Data equals the local engine, failures and
resume behave the same, Ctrl-C keeps finished photos; direction samples rendered and scored as Ray
tasks equal the local ones. One local Ray (2 CPUs) for the module; a tiny 32 px generator."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'latentlab[ray]'")

from latentlab.cli import main  # noqa: E402

STEPS = ["--preset", "paper", "--num-steps", "1", "--device", "cpu", "--no-align", "--threads-per-worker", "1"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=True)


def manifest(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def env(tmp_path_factory, shared_dir):
    """A cache with links to the real LPIPS / dlib wheels, a tiny generator, three photos, and a
    local Ray started once for the module (workers inherit LATENTLAB_CACHE)."""
    from conftest import tiny_photo_env

    e = tiny_photo_env(tmp_path_factory.mktemp("ray"), shared_dir)
    net, photos, root, cache = e["net"], e["photos"], e["root"], e["cache"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LATENTLAB_CACHE", str(cache))
        mp.setenv("RAY_AUTH_MODE", "disabled")
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            yield {"net": net, "photos": photos, "root": root}
        finally:
            ray.shutdown()


def _last_error(res) -> str:
    lines = [ln for ln in res.stderr.replace("\r", "\n").splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("latentlab: error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0] and "Traceback" not in res.output, res.output
    return errors[0]


def test_ray_projection_equals_local_and_reports_a_corrupt_photo(env, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for p in env["photos"].iterdir():
        (src / p.name).write_bytes(p.read_bytes())
    (src / "bad.jpg").write_text("not a photo")
    outs = {}
    for engine in ("ray", "local"):
        out = outs[engine] = tmp_path / engine
        res = run("project", src, "--network", env["net"], "--outdir", out, *STEPS, "--engine", engine,
                  "--ray-workers", "2")
        assert res.exit_code == 1, res.output
        assert "3 done, 1 failed, 0 skipped" in res.stdout, res.stdout
        assert "bad.jpg" in _last_error(res) and "not an image" in _last_error(res)
    from latentlab.latent import load_latent

    for i in range(3):
        ws = [load_latent(outs[e] / f"p{i}" / "latent.npz").ws.numpy() for e in ("ray", "local")]
        assert np.array_equal(ws[0], ws[1]), np.abs(ws[0] - ws[1]).max()
        files = [sorted(p.name for p in (outs[e] / f"p{i}").iterdir()) for e in ("ray", "local")]
        assert files[0] == files[1] and "pasted.png" in files[0]
        m = [json.loads((outs[e] / f"p{i}" / "metrics.json").read_text()) for e in ("ray", "local")]
        assert m[0]["psnr"] == pytest.approx(m[1]["psnr"], abs=1e-4)
    rows = manifest(outs["ray"])
    assert {r["name"]: r["status"] for r in rows} == {"p0": "done", "p1": "done", "p2": "done", "bad": "failed"}
    assert all(r["node_id"] and r["pid"] != os.getpid() for r in rows), rows  # ran in Ray workers
    assert all(r["node_id"] is None for r in manifest(outs["local"]))
    assert not [p for p in outs["ray"].iterdir() if p.name.startswith(".")]


def test_ray_ctrl_c_keeps_finished_photos_and_a_rerun_skips_them(env, tmp_path, monkeypatch):
    from latentlab.engine import folder

    out = tmp_path / "out"
    real_done = folder.Recorder.done
    calls = {"n": 0}

    def done(self, *a, **k):  # Ctrl-C reaches the driver while the second photo's result arrives
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_done(self, *a, **k)

    with monkeypatch.context() as mp:
        mp.setattr(folder.Recorder, "done", done)
        res = run("project", env["photos"], "--network", env["net"], "--outdir", out, *STEPS, "--engine", "ray",
                  "--ray-workers", "1")
    assert res.exit_code == 130, res.output
    assert "latentlab: interrupted: 1 photo(s) written, 2 not written; rerun the same command" in res.stderr
    first = [r for r in manifest(out)]
    assert len(first) == 1 and first[0]["status"] == "done"
    assert sum((out / f"p{i}" / "latent.npz").is_file() for i in range(3)) == 1
    res = run("project", env["photos"], "--network", env["net"], "--outdir", out, *STEPS, "--engine", "ray",
              "--ray-workers", "1")
    assert res.exit_code == 0, res.output
    assert "2 done, 0 failed, 1 skipped" in res.stdout
    rows = manifest(out)[1:]
    assert [r["name"] for r in rows if r["status"] == "skipped"] == [first[0]["name"]]
    assert all((out / f"p{i}" / "latent.npz").is_file() for i in range(3))


def test_direction_samples_on_ray_equal_local(env, tmp_path):
    from latentlab.editing.fit import collect_samples, fit_direction
    from latentlab.engine.ray_engine import ray_chunk_runner
    from latentlab.registry import load_generator

    G = load_generator(env["net"], "cpu", progress=False)

    def redness(images: np.ndarray) -> dict[str, np.ndarray]:  # an image measurement as the attribute
        x = images.astype(np.float64)
        return {"red": (x[..., 0] - x[..., 2]).mean(axis=(1, 2))}

    kw = dict(seed=3, truncation_psi=0.7, scorer=redness, scorer_id="redness-test", model="tiny", progress=False)
    ray_runner = ray_chunk_runner(network=str(env["net"]), workers=2, threads_per_worker=1)
    remote = collect_samples(G, 80, compute_chunks=ray_runner, **kw)  # 3 chunks as Ray tasks, cached
    local = collect_samples(G, 80, cache=False, **kw)
    assert np.array_equal(remote.w, local.w)
    assert np.allclose(remote.scores["red"], local.scores["red"], atol=1e-9)
    cached = collect_samples(G, 80, **kw)  # from the cache the Ray run wrote
    assert np.array_equal(cached.w, local.w) and np.array_equal(cached.scores["red"], remote.scores["red"])
    d_remote = fit_direction(G, "red", samples=remote, seed=3)
    d_local = fit_direction(G, "red", samples=local, seed=3)
    assert np.allclose(d_remote.vector, d_local.vector, atol=1e-6)


def test_engine_options_on_every_command():
    for args in (["project", "--help"], ["directions", "fit", "--help"]):
        res = run(*args)
        assert res.exit_code == 0 and "--engine [local|ray]" in res.stdout and "--ray-address" in res.stdout


def _ray_workers_named(fragment: str) -> list[int]:
    """PIDs of this machine's processes whose command line contains ``fragment`` (Ray names its
    worker processes ``ray::<ActorClass>...``)."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if fragment in cmd:
            pids.append(int(d.name))
    return pids


def test_a_killed_worker_loses_no_photo(env, tmp_path):
    """SIGKILL of a projection worker mid-run (a pre-empted node, the OOM killer): Ray retries its
    batch on a new worker, whose attempt writes into a fresh scratch folder; every photo is done
    once in the same run, exit 0, one manifest row each."""
    import signal
    import threading
    import time

    src = tmp_path / "in"
    src.mkdir()
    for k in range(4):
        for p in sorted(env["photos"].iterdir()):
            (src / f"{k}_{p.name}").write_bytes(p.read_bytes())
            break
    out = tmp_path / "out"
    killed: list[int] = []

    def killer() -> None:  # once the first photo is recorded, kill a busy projection worker
        deadline = time.time() + 120
        while time.time() < deadline and not killed:
            rows = manifest(out) if (out / "manifest.jsonl").is_file() else []
            pids = _ray_workers_named("ray::MapBatches(Projector)") or _ray_workers_named("Projector")
            if rows and pids:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=killer, daemon=True)
    watcher.start()
    res = run("project", src, "--network", env["net"], "--outdir", out, "--preset", "paper", "--num-steps", "60",
              "--device", "cpu", "--no-align", "--threads-per-worker", "1", "--engine", "ray", "--ray-workers", "2")
    watcher.join(timeout=5)
    assert killed, "no projection worker was found to kill"
    assert res.exit_code == 0, res.output
    assert "4 done, 0 failed, 0 skipped" in res.stdout, res.stdout
    rows = manifest(out)
    assert sorted(r["name"] for r in rows) == sorted(p.stem for p in src.iterdir())  # one row per photo
    assert all(r["status"] == "done" for r in rows)
    for p in src.iterdir():
        assert (out / p.stem / "latent.npz").is_file()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_a_killed_direction_task_is_retried_and_loses_no_sample(env, tmp_path, monkeypatch):
    """SIGKILL of a worker while it renders and scores a chunk of direction samples: Ray runs the
    task again and the samples equal the local ones."""
    import signal
    import threading
    import time

    from latentlab.editing.fit import collect_samples
    from latentlab.engine.ray_engine import ray_chunk_runner
    from latentlab.registry import load_generator

    monkeypatch.setenv("LATENTLAB_CACHE", str(tmp_path / "cache"))  # nothing cached: every chunk is a task
    G = load_generator(env["net"], "cpu", progress=False)
    killed: list[int] = []

    def killer() -> None:
        deadline = time.time() + 120
        while time.time() < deadline and not killed:
            pids = _ray_workers_named("ray::_render_score_task")
            if pids:
                time.sleep(0.3)  # inside the task's second of scoring
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
                return
            time.sleep(0.02)

    def slow_redness(images: np.ndarray) -> dict[str, np.ndarray]:  # 1 s a chunk: time to be killed mid-task
        import time

        time.sleep(1.0)
        x = images.astype(np.float64)
        return {"red": (x[..., 0] - x[..., 2]).mean(axis=(1, 2))}

    kw = dict(seed=4, truncation_psi=0.7, scorer=slow_redness, scorer_id="slow-redness-test", model="tiny",
              progress=False)
    watcher = threading.Thread(target=killer, daemon=True)
    watcher.start()
    remote = collect_samples(G, 96, compute_chunks=ray_chunk_runner(network=str(env["net"]), workers=2,
                                                                    threads_per_worker=1), **kw)
    watcher.join(timeout=5)
    assert killed, "no direction task was found to kill"
    local = collect_samples(G, 96, cache=False, **kw)
    assert np.array_equal(remote.w, local.w)
    assert np.allclose(remote.scores["red"], local.scores["red"], atol=1e-9)
