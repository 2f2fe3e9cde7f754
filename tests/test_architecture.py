"""The code's shape: layers that import only downward, front ends on the public API, no module
reaching into another's private names, one home per job, and text that describes the code rather
than its history."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "latentlab"


def _sources(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def _module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(module: str, level: int, target: str | None, is_package: bool) -> str:
    if level == 0:
        return target or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def test_import_contracts_hold():
    """``lint-imports`` (import-linter, contracts in pyproject.toml): the layers, the front ends on
    the public API only, no cycles between the modules of a package."""
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    if exe is None:
        pytest.fail("lint-imports (import-linter) is not installed; `pip install -e .[test]` installs it")
    res = subprocess.run([exe, "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert "0 broken" in res.stdout


def test_no_module_imports_another_modules_private_names():
    offenders = []
    for path in _sources(PACKAGE):
        mod = _module_name(path)
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                source = _resolve(mod, node.level, node.module, path.name == "__init__.py")
                if source == mod:
                    continue
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        offenders.append(f"{mod} imports {source}.{alias.name} (line {node.lineno})")
    assert not offenders, "\n".join(offenders)


def test_one_projection_driver_and_one_latent_type():
    """project() and pivotal_tuning() are called only by the one inversion entry point (and by the
    masked swap's own optimiser, which is no projection of a photo); the latent file's members are
    built only by the latent package."""
    callers = {}
    for path in _sources(PACKAGE):
        text = path.read_text()
        for fn in ("project(G", "pivotal_tuning(", "np.savez(buf, **arrays)"):
            if fn in text and not text.count(f"def {fn.split('(')[0]}("):
                callers.setdefault(fn, []).append(str(path.relative_to(REPO)))
    assert callers.get("project(G", []) == ["latentlab/inversion/inverter.py"], callers
    assert callers.get("pivotal_tuning(", []) == ["latentlab/inversion/inverter.py"], callers
    assert callers.get("np.savez(buf, **arrays)", []) == ["latentlab/latent/files.py"], callers
    classes = [p for p in _sources(PACKAGE) if re.search(r"^class (?!Latentlab)\w*Latent\w*\b", p.read_text(), re.M)]
    assert [str(p.relative_to(REPO)) for p in classes] == ["latentlab/latent/value.py"]


#: Phrases that tell how or when the project was developed rather than what it does.
HISTORY = re.compile(r"\b(?:developer|coding|work|previous|earlier|last|next) session|\bsession \d+"
                     r"|\bused to (?:be|exit|write|read|run|have|give|take|fail|hang|crash|return)\b"
                     r"|\bno longer (?:reported|used|shipped|supported)\b|\bissue \d+|\bwas renamed\b|\bformerly\b"
                     r"|\bthe old (?:default|name|version|behaviou?r)\b", re.IGNORECASE)


def _texts() -> list[Path]:
    files = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    files += _sources(PACKAGE) + _sources(REPO / "examples") + _sources(REPO / "tests")
    files += sorted((PACKAGE / "data").rglob("*.md"))
    return [f for f in files if f.is_file()]


def test_text_describes_the_code_not_its_history():
    hits = []
    for path in _texts():
        if path.name == "test_architecture.py":
            continue
        for i, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            m = HISTORY.search(line)
            if m:
                hits.append(f"{path.relative_to(REPO)}:{i}: {m.group(0)!r}: {line.strip()[:120]}")
    assert not hits, "\n".join(hits)


def test_readme_is_short_and_starts_with_the_two_commands():
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= 200, len(lines)
    block = lines[:4]
    assert block[0] == "```bash" and block[3] == "```", block
    assert block[1].startswith("./setup.sh") and "pytest" in block[2]
