"""``pip install .`` (not editable): the installed copy finds its shipped tables and supernet.

Builds the wheel from a copy of the source, installs it into a fresh virtualenv that reaches
the test interpreter's dependencies through a ``.pth`` path line (such lines do not run the
``.pth`` files of that folder, so an editable ``mobile_nas`` installed there stays out of
sight), then costs ``fmnist28_mnasnet`` with the installed copy.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ARCH, SPACE = "fmnist28_mnasnet", "fmnist28"

CHECK = """
import json
import mobile_nas
from mobile_nas.cost.latency import shipped_table_path
from mobile_nas.export.metadata import predicted_latency
from mobile_nas.pretrained import pretrained_supernet_path
from mobile_nas.space import load_arch

print(json.dumps({"file": mobile_nas.__file__, "table": str(shipped_table_path("fmnist28")),
                  "supernet": str(pretrained_supernet_path("fmnist28")),
                  "predicted": predicted_latency(load_arch("fmnist28_mnasnet", "fmnist28"))}))
"""


def _run(cmd: list, cwd: Path, env: dict[str, str]) -> str:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def _first_json(text: str):
    return json.JSONDecoder().raw_decode(text)[0]


def _setuptools_77() -> bool:
    try:
        from setuptools import __version__
    except ImportError:
        return False
    return int(__version__.split(".")[0]) >= 77


def test_installed_wheel_ships_tables_and_supernet(tmp_path):
    # No PYTHON* variables: conftest's PYTHONWARNINGS=ignore would hide setuptools' warnings.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONNOUSERSITE"] = "1"

    # Build from a copy, so that build/ and *.egg-info stay out of the checkout.
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO / "mobile_nas", src / "mobile_nas", symlinks=True, ignore=ignore)
    shutil.copytree(REPO / "latency_tables", src / "latency_tables", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    isolation = ["--no-build-isolation"] if _setuptools_77() else []
    log = _run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-cache-dir",
                *isolation, "-w", tmp_path / "dist", src], tmp_path, env)
    assert not [line for line in log.splitlines()
                if "licen" in line.lower() and "deprecat" in line.lower()], log
    (wheel,) = (tmp_path / "dist").glob("mobile_nas-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    tables = sorted((REPO / "latency_tables").glob("*.json"))
    assert {f"mobile_nas/latency_tables/{t.name}" for t in tables} <= names
    assert "mobile_nas/pretrained/fmnist28_supernet.safetensors" in names

    # A fresh venv: the wheel first (pip must not see the dependencies' site-packages and
    # the mobile-nas installed there), then the dependencies as a plain path line.
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], tmp_path, env)
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index",
          "--no-cache-dir", wheel], tmp_path, env)
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     tmp_path, env).strip())
    deps = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    (site / "_test_dependencies.pth").write_text("".join(f"{d}\n" for d in deps))

    # the JSON document first (stderr may follow: the shipped schema-1 tables warn once)
    out = _first_json(_run([python, "-c", CHECK], tmp_path, env))
    for key in ("file", "table", "supernet"):
        assert Path(out[key]).resolve().is_relative_to(site.resolve()), out
    assert Path(out["table"]).read_bytes() == (REPO / "latency_tables/fmnist28.json").read_bytes()
    assert Path(out["supernet"]).is_file()

    from mobile_nas.cost.latency import LatencyPredictor, LatencyTable
    from mobile_nas.export.metadata import predicted_latency
    from mobile_nas.space import load_arch

    arch = load_arch(ARCH, SPACE)
    repo_table = LatencyTable.load(REPO / "latency_tables" / f"{SPACE}.json")
    assert out["predicted"]["latency_ms"] == predicted_latency(arch)["latency_ms"]
    assert out["predicted"]["table"] == out["table"]

    # The console script of the installed copy.
    record = _first_json(_run([venv / "bin" / "mobile-nas", "cost", ARCH, "--space", SPACE,
                                "--table", out["table"], "--json"], tmp_path, env))
    assert record["latency_ms"] == round(LatencyPredictor(repo_table).predict(arch).total_ms, 4)
