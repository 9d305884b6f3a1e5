"""The phone workflow checked against another onnxruntime release (issue 13, item 6).

A phone runs another onnxruntime than the machine with mobile-nas. This benchmark stands a
separate virtualenv with a clearly different onnxruntime release in for the phone and runs
the user's workflow end to end:

  setup   a virtualenv (default runs/other_runtime/venv, ignored by git) with only numpy and
          onnxruntime==VERSION (default 1.17.3, with numpy<2 as that release needs); checks
          that nothing of mobile-nas is importable there and that run_lut.py --help works
  bundle  'mobile-nas lut bundle --space fmnist28' (every layer key, default calibration
          networks) -> bundle.zip, and a check bundle of whole networks only (the same
          make_bundle, 'arch:<string>' models): the space's references and --check-n random
          networks (--check-seed) that are none of bundle.zip's networks -> check.zip
  run     for each runtime (other: the virtualenv; project: this Python), each bundle's own
          run_lut.py, started with 'python -I' in a clean environment (no PYTHONPATH) from a
          temporary folder outside the repository, with --resume (a killed run loses only
          the chunk in flight); then 'mobile-nas lut import' of bundle.zip's results -> that
          runtime's table, and the check results validated against check.zip's manifest
  report  the check networks predicted by each imported table against their end-to-end
          wall-clock medians measured by each runtime: MAPE, within +-5% / +-10%, Spearman,
          one row per network -> benchmarks/results/bundle_other_runtime.{json,md}
  all     the four in order

Every phase is resumable: what is complete is kept (delete runs/other_runtime to start
over). Only 'run' times anything: run it on a quiet machine (the load average is recorded
before and after). Example:

    .venv/bin/python benchmarks/bundle_other_runtime.py all
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DEFAULT_WORK = ROOT / "runs" / "other_runtime"
SPACE = "fmnist28"
#: The stand-in phone's onnxruntime: 15 releases before the project's 1.32 (cp311 wheels).
OTHER_ONNXRUNTIME = "1.17.3"
CHECK_N = 20
CHECK_SEED = 7  # not lut bundle's calibration seed (0)
CHECK_ROUNDS = 30
RUNTIMES = ("other", "project")
#: Issue 13's bar: shares of held-out networks within +-10% and +-5%; Spearman of item 3.
BAR = {"within_10": 0.95, "within_5": 0.80}
SPEARMAN_BAR = 0.95

PROBE = """
import importlib.util, json, os, platform, sys
def version(name):
    if importlib.util.find_spec(name) is None:
        return None
    return getattr(__import__(name), "__version__", "?")
print(json.dumps({"python": platform.python_version(), "executable": sys.executable,
                  "onnxruntime": version("onnxruntime"), "numpy": version("numpy"),
                  "mobile_nas": importlib.util.find_spec("mobile_nas") is not None,
                  "torch": importlib.util.find_spec("torch") is not None,
                  "cwd": os.getcwd(), "pythonpath": os.environ.get("PYTHONPATH"),
                  "sys_path": sys.path}))
"""


class PhaseError(Exception):
    """Bad input or a failed step: one line on stderr, exit 2."""


# --- the work folder ---------------------------------------------------------------------

class Work:
    """Where the phases keep their files (default runs/other_runtime)."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root).resolve()
        self.venv = self.root / "venv"
        self.setup = self.root / "setup.json"
        self.bundle = self.root / "bundle.zip"
        self.check = self.root / "check.zip"
        self.bundles = self.root / "bundles.json"

    @property
    def venv_python(self) -> Path:
        return self.venv / "bin" / "python"

    def runtime(self, name: str) -> Path:
        return self.root / name

    def bundle_results(self, name: str) -> Path:
        return self.runtime(name) / "bundle_results.json"

    def check_results(self, name: str) -> Path:
        return self.runtime(name) / "check_results.json"

    def table(self, name: str) -> Path:
        return self.runtime(name) / "table.json"

    def run_record(self, name: str) -> Path:
        return self.runtime(name) / "run.json"


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise PhaseError(f"{path} is missing: {what}") from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PhaseError(f"{path} is unreadable ({exc}); delete it and rerun the phase "
                         f"that writes it") from None


def _write_json(path: Path, data: Any) -> None:
    from mobile_nas.atomic import atomic_write_json

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, data)


# --- a clean process for the "device" ----------------------------------------------------

def clean_env(python: str | os.PathLike) -> dict[str, str]:
    """The whole environment of a device process: the interpreter's folder and the system's
    on PATH, a locale and TMPDIR (run_lut.py extracts the bundle there); no PYTHONPATH,
    PYTHONHOME, VIRTUAL_ENV or anything else of this process."""
    env = {"PATH": f"{Path(python).parent}{os.pathsep}/usr/bin{os.pathsep}/bin",
           "LANG": "C.UTF-8"}
    if os.environ.get("TMPDIR"):
        env["TMPDIR"] = os.environ["TMPDIR"]
    return env


def outside_repo_dir() -> Path:
    """A new temporary folder outside the repository (the device process's working folder)."""
    d = Path(tempfile.mkdtemp(prefix="mobile-nas-device-")).resolve()
    if d == ROOT or ROOT in d.parents:
        shutil.rmtree(d, ignore_errors=True)
        raise PhaseError(f"the temporary folder {d} is inside the repository; set TMPDIR to a "
                         f"folder outside {ROOT}")
    return d


def runner_command(python: str | os.PathLike, script: str | os.PathLike,
                   bundle: str | os.PathLike, out: str | os.PathLike) -> list[str]:
    """``python -I run_lut.py BUNDLE --out OUT --resume``: isolated mode (no PYTHON*
    variables, no user site, neither the script's folder nor the working folder on
    sys.path), absolute paths so the working folder can be anywhere."""
    return [str(python), "-I", str(Path(script).resolve()), str(Path(bundle).resolve()),
            "--out", str(Path(out).resolve()), "--resume"]


def device_process(argv: Sequence[str], python: str | os.PathLike,
                   cwd: Path) -> subprocess.CompletedProcess:
    """Runs ``argv`` as the device would: :func:`clean_env`, working folder ``cwd`` (outside
    the repository), progress on this process's stderr."""
    return subprocess.run(list(argv), env=clean_env(python), cwd=cwd, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, text=True)


def probe(python: str | os.PathLike) -> dict[str, Any]:
    """What ``python`` sees from a clean process outside the repository: versions, whether
    mobile_nas or torch would import, sys.path."""
    d = outside_repo_dir()
    try:
        proc = device_process([str(python), "-I", "-c", PROBE], python, d)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    if proc.returncode != 0:
        raise PhaseError(f"{python} did not start cleanly (exit {proc.returncode})")
    return json.loads(proc.stdout)


def run_device_bundle(python: str | os.PathLike, bundle: Path, out: Path) -> None:
    """The bundle's own run_lut.py, copied out of the zip into a temporary folder outside the
    repository and run there by ``python`` (:func:`runner_command`)."""
    d = outside_repo_dir()
    try:
        with zipfile.ZipFile(bundle) as zf:
            (d / "run_lut.py").write_bytes(zf.read("run_lut.py"))
        proc = subprocess.run(runner_command(python, d / "run_lut.py", bundle, out),
                              env=clean_env(python), cwd=d, stdin=subprocess.DEVNULL)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    if proc.returncode != 0:
        raise PhaseError(f"run_lut.py of {bundle.name} under {python} failed (exit "
                         f"{proc.returncode}); rerun 'run' to resume")


# --- setup -------------------------------------------------------------------------------

def numpy_requirement(onnxruntime_version: str) -> str:
    """onnxruntime wheels before 1.19 are built against numpy 1.x."""
    try:
        major, minor = (int(x) for x in onnxruntime_version.split(".")[:2])
    except ValueError:
        raise PhaseError(f"--onnxruntime {onnxruntime_version!r} is not a release number "
                         f"like 1.17.3") from None
    return "numpy<2" if (major, minor) < (1, 19) else "numpy"


def setup(work: Work, version: str, numpy_spec: str | None) -> dict[str, Any]:
    import onnxruntime

    if version == onnxruntime.__version__:
        raise PhaseError(f"--onnxruntime {version} is the project's own release; choose "
                         f"another, e.g. {OTHER_ONNXRUNTIME}")
    numpy_spec = numpy_spec or numpy_requirement(version)
    work.root.mkdir(parents=True, exist_ok=True)
    python = work.venv_python
    if not python.exists():
        print(f"creating {work.venv}", file=sys.stderr)
        proc = subprocess.run([sys.executable, "-m", "venv", "--clear", str(work.venv)])
        if proc.returncode != 0:
            raise PhaseError(f"python -m venv {work.venv} failed (exit {proc.returncode})")
    seen = probe(python)
    if seen["onnxruntime"] != version or seen["numpy"] is None:
        print(f"installing onnxruntime=={version} and {numpy_spec} into {work.venv}",
              file=sys.stderr)
        env = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        d = outside_repo_dir()
        try:
            proc = subprocess.run([str(python), "-m", "pip", "install", "--quiet",
                                   f"onnxruntime=={version}", numpy_spec], env=env, cwd=d)
        finally:
            shutil.rmtree(d, ignore_errors=True)
        if proc.returncode != 0:
            raise PhaseError(f"pip install onnxruntime=={version} {numpy_spec} failed (exit "
                             f"{proc.returncode}); try another --onnxruntime release")
        seen = probe(python)
    if seen["onnxruntime"] != version:
        raise PhaseError(f"{python} imports onnxruntime {seen['onnxruntime']}, not {version}")
    if seen["mobile_nas"] or seen["torch"]:
        raise PhaseError(f"{python} can import mobile_nas or torch; the device must have only "
                         f"numpy and onnxruntime (delete {work.venv} and rerun setup)")
    # the runner that bundles carry (run_lut.py is a verbatim copy of runner.py)
    from mobile_nas.cost.latency import runner

    d = outside_repo_dir()
    try:
        shutil.copy(runner.__file__, d / "run_lut.py")
        proc = device_process([str(python), "-I", str(d / "run_lut.py"), "--help"], python, d)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    if proc.returncode != 0 or "results.json" not in proc.stdout:
        raise PhaseError(f"run_lut.py --help failed under onnxruntime {version} (exit "
                         f"{proc.returncode})")
    freeze = subprocess.run([str(python), "-m", "pip", "freeze", "--all"],
                            env=clean_env(python), capture_output=True, text=True).stdout
    record = {"onnxruntime": version, "numpy": seen["numpy"], "numpy_requirement": numpy_spec,
              "python": seen["python"], "venv": str(work.venv),
              "packages": sorted(freeze.split()), "mobile_nas_importable": False,
              "torch_importable": False, "run_lut_help": "ok",
              "project_onnxruntime": onnxruntime.__version__,
              "date": time.strftime("%Y-%m-%dT%H:%M:%S")}
    _write_json(work.setup, record)
    print(f"setup: {work.venv} has onnxruntime {version} and numpy {seen['numpy']} (Python "
          f"{seen['python']}), nothing of mobile-nas; run_lut.py --help works", file=sys.stderr)
    return record


# --- bundle ------------------------------------------------------------------------------

def bundle_networks(manifest: dict) -> list[str]:
    """Architecture strings of a bundle's whole networks (fit and held-out alike)."""
    from mobile_nas.cost.latency.bundle import ARCH_PREFIX

    return [m["id"][len(ARCH_PREFIX):] for m in manifest["models"] if m.get("kind") == "arch"]


def check_networks(space, exclude: Sequence[str], *, n: int = CHECK_N,
                   seed: int = CHECK_SEED) -> list[dict[str, Any]]:
    """The space's references (role ``reference``; ``in_bundle`` says whether the bundle has
    them, as lut bundle's calibration does by default), then ``n`` distinct random networks
    drawn with ``seed`` that are neither in ``exclude`` nor references (role ``held_out``)."""
    import numpy as np

    from mobile_nas.space.reference import REFERENCE_ARCHS

    exclude = set(exclude)
    nets: list[dict[str, Any]] = []
    for name in REFERENCE_ARCHS.names():
        ref = REFERENCE_ARCHS.get(name)
        if ref.space == space.name:
            text = space.decode(ref.arch).to_string()
            nets.append({"name": name, "arch": text, "role": "reference",
                         "in_bundle": text in exclude})
    taken = exclude | {x["arch"] for x in nets}
    rng = np.random.default_rng(seed)
    picked = 0
    for _ in range(1000 * max(n, 1)):
        if picked >= n:
            break
        text = space.sample(rng).to_string()
        if text not in taken:
            taken.add(text)
            nets.append({"name": f"random{picked}", "arch": text, "role": "held_out",
                         "in_bundle": False})
            picked += 1
    if picked < n:
        raise PhaseError(f"space {space.name} has fewer than {n} networks outside the bundle")
    return nets


def _quiet_cli(argv: Sequence[str]) -> tuple[int, str, str]:
    """``mobile-nas ARGV`` in this process; (exit code, stdout, stderr)."""
    from mobile_nas.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 2
    return code, out.getvalue(), err.getvalue()


def make_bundles(work: Work, *, n: int, seed: int, rounds: int) -> dict[str, Any]:
    from mobile_nas.cost.latency.bundle import make_bundle, read_manifest
    from mobile_nas.cost.latency.runner import sha256_bytes
    from mobile_nas.space import get_space

    work.root.mkdir(parents=True, exist_ok=True)
    space = get_space(SPACE)
    old = _read_json(work.bundles, "") if work.bundles.exists() else {}
    command = ["lut", "bundle", "--space", SPACE, "--out", str(work.bundle), "--json"]
    seconds = old.get("export_seconds") or {}
    t0 = time.monotonic()
    if work.bundle.exists():
        print(f"bundle: keeping {work.bundle}", file=sys.stderr)
        record = old.get("bundle_record")
        bundle_seconds = seconds.get("bundle")
    else:
        print(f"bundle: mobile-nas {' '.join(command)}", file=sys.stderr)
        progress = [] if sys.stderr.isatty() else ["--no-progress"]
        from mobile_nas.cli import main

        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main([*command, *progress])
        if code != 0:
            raise PhaseError("mobile-nas lut bundle failed (its error is above)")
        record = json.loads(out.getvalue())
        bundle_seconds = round(time.monotonic() - t0, 1)
    manifest, raw = read_manifest(work.bundle)
    nets = check_networks(space, bundle_networks(manifest), n=n, seed=seed)
    t0 = time.monotonic()
    if work.check.exists():
        check_manifest, _ = read_manifest(work.check)
        if (bundle_networks(check_manifest) != [x["arch"] for x in nets]
                or check_manifest["protocol"]["rounds"] != rounds):
            raise PhaseError(f"{work.check} holds other networks or rounds than --check-n {n} "
                             f"--check-seed {seed} --check-rounds {rounds} choose; delete it "
                             f"(and */check_results.json under {work.root}) or pass the "
                             f"options it was made with")
        print(f"bundle: keeping {work.check}", file=sys.stderr)
        check_seconds = seconds.get("check")
    else:
        print(f"bundle: {len(nets)} whole networks -> {work.check}", file=sys.stderr)
        make_bundle(space, (), work.check, held_out=[space.decode(x["arch"]) for x in nets],
                    rounds=rounds, seed=seed, progress=sys.stderr.isatty())
        check_manifest, _ = read_manifest(work.check)
        check_seconds = round(time.monotonic() - t0, 1)
    _, check_raw = read_manifest(work.check)
    data = {"space": SPACE, "bundle": str(work.bundle),
            "bundle_command": "mobile-nas " + " ".join(command[:4]),
            "bundle_record": record, "bundle_manifest_sha256": sha256_bytes(raw),
            "bundle_networks": bundle_networks(manifest),
            "bundle_protocol": manifest["protocol"],
            "check": str(work.check), "check_manifest_sha256": sha256_bytes(check_raw),
            "check_n": n, "check_seed": seed, "check_rounds": rounds,
            "check_protocol": check_manifest["protocol"], "check_networks": nets,
            "export_seconds": {"bundle": bundle_seconds, "check": check_seconds}}
    _write_json(work.bundles, data)
    print(f"bundle: {len(manifest['models'])} models in {work.bundle.name}, {len(nets)} "
          f"networks in {work.check.name}", file=sys.stderr)
    return data


# --- run ---------------------------------------------------------------------------------

def results_complete(results: Path, bundle: Path) -> bool:
    """Whether ``results`` holds every model of ``bundle``, measured on that very bundle."""
    from mobile_nas.cost.latency.bundle import read_manifest
    from mobile_nas.cost.latency.runner import sha256_bytes

    if not results.exists():
        return False
    try:
        data = json.loads(results.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return False
    manifest, raw = read_manifest(bundle)
    entries = data.get("entries") or {}
    return (data.get("manifest_sha256") == sha256_bytes(raw)
            and all(m["id"] in entries for m in manifest["models"]))


def import_table(work: Work, name: str) -> dict[str, Any]:
    """``mobile-nas lut import`` of the runtime's bundle results (the user's command), and
    the check results validated against check.zip's manifest by the same code."""
    from mobile_nas.cost.latency.bundle import import_results
    from mobile_nas.errors import MobileNasError

    code, out, err = _quiet_cli(["lut", "import", str(work.bundle_results(name)), "--bundle",
                                 str(work.bundle), "--out", str(work.table(name)), "--json"])
    if code != 0:
        raise PhaseError(err.strip().splitlines()[-1] if err.strip() else
                         f"lut import failed (exit {code})")
    try:
        import_results(work.check_results(name), bundle=work.check)
    except MobileNasError as exc:
        raise PhaseError(str(exc)) from None
    return json.loads(out)


def run_runtime(work: Work, name: str, python: str, expect_version: str | None) -> None:
    rt = work.runtime(name)
    rt.mkdir(parents=True, exist_ok=True)
    record = _read_json(work.run_record(name), "") if work.run_record(name).exists() else {}
    timed = []
    load_before, t0 = os.getloadavg()[0], time.monotonic()
    for bundle, out in ((work.bundle, work.bundle_results(name)),
                        (work.check, work.check_results(name))):
        if results_complete(out, bundle):
            print(f"run [{name}]: {out.name} is complete", file=sys.stderr)
            continue
        print(f"run [{name}]: {bundle.name} with {python}", file=sys.stderr)
        run_device_bundle(python, bundle, out)
        timed.append(bundle.name)
    load_after, seconds = os.getloadavg()[0], time.monotonic() - t0
    reported = {}
    for out in (work.bundle_results(name), work.check_results(name)):
        md = _read_json(out, "rerun 'run'").get("metadata") or {}
        reported[out.name] = md.get("onnxruntime")
        if expect_version and md.get("onnxruntime") != expect_version:
            raise PhaseError(f"{out} reports onnxruntime {md.get('onnxruntime')}, not "
                             f"{expect_version}; delete it and rerun 'run'")
    imported = import_table(work, name)
    invocations = list(record.get("invocations", []))
    if timed:
        invocations.append({"timed": timed, "load_before": load_before,
                            "load_after": load_after, "seconds": round(seconds, 1),
                            "date": time.strftime("%Y-%m-%dT%H:%M:%S")})
    md = _read_json(work.bundle_results(name), "rerun 'run'")["metadata"]
    _write_json(work.run_record(name), {
        "runtime": name, "python": python, "onnxruntime": reported,
        "device": {k: md.get(k) for k in ("device", "cpu", "cpu_count", "os", "python",
                                          "onnxruntime", "threads", "provider")},
        "invocations": invocations, "import": imported})
    held = imported.get("held_out_check") or {}
    print(f"run [{name}]: onnxruntime {reported[work.bundle_results(name).name]}; imported "
          f"{work.table(name)} ({imported['num_keys']} keys; its own held-out check: MAPE "
          f"{held.get('mape')}%)", file=sys.stderr)


def run(work: Work, runtimes: Sequence[str]) -> None:
    for path, what in ((work.bundles, "run 'bundle' first"), (work.bundle, "run 'bundle'"),
                       (work.check, "run 'bundle'")):
        if not path.exists():
            raise PhaseError(f"{path} is missing: {what}")
    setup_rec = None
    if "other" in runtimes:
        setup_rec = _read_json(work.setup, "run 'setup' first")
        if not work.venv_python.exists():
            raise PhaseError(f"{work.venv_python} is missing: run 'setup'")
    for name in runtimes:
        if name == "other":
            run_runtime(work, name, str(work.venv_python), setup_rec["onnxruntime"])
        else:
            import onnxruntime

            run_runtime(work, name, sys.executable, onnxruntime.__version__)


# --- report ------------------------------------------------------------------------------

def compare(networks: Sequence[dict[str, Any]], predicted: dict[str, float],
            measured: dict[str, float]) -> dict[str, Any]:
    """Per-network errors of ``predicted`` against ``measured`` (ms, by arch string) and
    the summary over the ``held_out`` networks (references are rows only)."""
    from mobile_nas.cost.latency.check import summarize_errors

    rows = [{"name": x["name"], "role": x["role"], "predicted_ms": predicted[x["arch"]],
             "measured_ms": measured[x["arch"]],
             "error_pct": 100 * (predicted[x["arch"]] - measured[x["arch"]])
             / measured[x["arch"]]} for x in networks]
    held = [r for r in rows if r["role"] == "held_out"]
    check = summarize_errors([r["predicted_ms"] for r in held], [r["measured_ms"] for r in held])
    check["networks"] = len(held)
    check["meets_bar"] = bool(all(check[k] >= v for k, v in BAR.items()))
    check["spearman_meets_bar"] = bool(check["spearman"] >= SPEARMAN_BAR)
    return {"rows": rows, "check": check}


def check_medians(results: Path, networks: Sequence[dict[str, Any]]) -> dict[str, float]:
    from mobile_nas.cost.latency.bundle import ARCH_PREFIX

    entries = _read_json(results, "rerun 'run'")["entries"]
    try:
        return {x["arch"]: float(entries[ARCH_PREFIX + x["arch"]]["median_ms"])
                for x in networks}
    except KeyError as exc:
        raise PhaseError(f"{results} has no measurement of {exc}; rerun 'run'") from None


def build_report(work: Work) -> dict[str, Any]:
    from mobile_nas.cost.latency import LatencyPredictor, LatencyTable
    from mobile_nas.space import get_space

    bundles = _read_json(work.bundles, "run 'bundle' first")
    nets = bundles["check_networks"]
    space = get_space(bundles["space"])
    have = [n for n in RUNTIMES if work.run_record(n).exists() and work.table(n).exists()]
    if "other" not in have:
        raise PhaseError(f"no imported table of the other runtime under {work.root}: run "
                         f"'run' first")
    measured, predicted, runtimes = {}, {}, {}
    for name in have:
        rec = _read_json(work.run_record(name), "rerun 'run'")
        table = LatencyTable.load(work.table(name))
        pred = LatencyPredictor(table)
        predicted[name] = {x["arch"]: pred.predict(space.decode(x["arch"])).total_ms
                           for x in nets}
        measured[name] = check_medians(work.check_results(name), nets)
        cal = table.calibration
        if cal is None or cal.held_out is None:
            raise PhaseError(f"{work.table(name)} has no calibration with a held-out check "
                             f"(lut import fits one on the bundle's networks): rerun 'run'")
        md = table.metadata
        runtimes[name] = {
            "python": rec["python"], "onnxruntime": md.get("onnxruntime"),
            "reported_by_results": rec["onnxruntime"], "device": rec["device"],
            "invocations": rec["invocations"], "table": str(work.table(name)),
            "table_predicts": table.predicts, "num_keys": len(table),
            "calibration": {"overhead_ms": cal.overhead_ms, "scale": cal.scale,
                            "per_layer_ms": cal.per_layer_ms,
                            "coefficients": cal.coefficients, "fit_mape": cal.fit_mape,
                            "networks": len(cal.archs),
                            "held_out": {k: v for k, v in cal.held_out.to_json().items()
                                         if k in ("n", "mape", "within_5", "within_10")}}}
    comparisons = [{"table": "other", "measured": "other", "headline": True,
                    **compare(nets, predicted["other"], measured["other"])}]
    if "project" in have:
        comparisons += [
            {"table": "project", "measured": "project", "headline": False,
             **compare(nets, predicted["project"], measured["project"])},
            {"table": "project", "measured": "other", "headline": False,
             **compare(nets, predicted["project"], measured["other"])}]
    rows = []
    for x in nets:
        row = {"name": x["name"], "role": x["role"], "in_bundle": x["in_bundle"],
               "arch": x["arch"]}
        for name in have:
            row[f"measured_{name}_ms"] = measured[name][x["arch"]]
            row[f"predicted_{name}_table_ms"] = predicted[name][x["arch"]]
        rows.append(row)
    setup_rec = _read_json(work.setup, "run 'setup' first") if work.setup.exists() else {}
    return {"schema_version": 1, "benchmark": "bundle_other_runtime",
            "date": time.strftime("%Y-%m-%dT%H:%M:%S"), "space": bundles["space"],
            "bundle_command": bundles["bundle_command"],
            "bundle_models": (bundles.get("bundle_record") or {}).get("manifest_models"),
            "bundle_networks": len(bundles["bundle_networks"]),
            "bundle_fit": (bundles.get("bundle_record") or {}).get("fit_models"),
            "bundle_held_out": (bundles.get("bundle_record") or {}).get("held_out_models"),
            "bundle_protocol": bundles["bundle_protocol"],
            "check_protocol": bundles["check_protocol"], "check_n": bundles["check_n"],
            "check_seed": bundles["check_seed"],
            "other_onnxruntime": setup_rec.get("onnxruntime"),
            "project_onnxruntime": runtimes["project"]["onnxruntime"] if "project" in runtimes
            else setup_rec.get("project_onnxruntime"),
            "other_packages": setup_rec.get("packages"),
            "platform": platform.platform(), "runtimes": runtimes,
            "comparisons": comparisons, "rows": rows, "bar": BAR,
            "spearman_bar": SPEARMAN_BAR}


def _pct(x: float) -> str:
    return f"{x:.0%}"


def markdown(r: dict[str, Any]) -> str:
    rts = r["runtimes"]
    other = rts["other"]
    head = next(c for c in r["comparisons"] if c["headline"])["check"]
    verdict = "meets" if head["meets_bar"] else "does not meet"
    dev = other["device"]
    L = ["# The phone workflow against another onnxruntime release", "",
         f"Generated by `benchmarks/bundle_other_runtime.py` ({r['date']}) from "
         f"`bundle_other_runtime.json`; nothing here is edited by hand. Issue 13, item 6.", "",
         f"A separate virtualenv ({', '.join(r['other_packages'] or [])}; nothing of "
         f"mobile-nas) stands in for the phone: onnxruntime **{other['onnxruntime']}** (as "
         f"its results report it) against the project's **{r['project_onnxruntime']}**. "
         f"`{r['bundle_command']} --out bundle.zip` ({r['bundle_models']} models: every layer "
         f"key, {r['bundle_fit']} networks to calibrate on and {r['bundle_held_out']} to check "
         f"the calibration; {r['bundle_protocol']['rounds']} "
         f"rounds x {r['bundle_protocol']['runs_per_round']} runs, layers timed by the "
         f"{r['bundle_protocol']['clock']} clock, {r['bundle_protocol']['statistic']}) was "
         f"timed by its own `run_lut.py` under that interpreter (`python -I`, clean "
         f"environment, outside the repository) and imported with `mobile-nas lut import "
         f"results.json --bundle bundle.zip`. A second bundle of whole networks only (the "
         f"space's references and {r['check_n']} random networks, seed {r['check_seed']}, "
         f"none of them among bundle.zip's networks; {r['check_protocol']['rounds']} rounds "
         f"x {r['check_protocol']['runs_per_round']} runs, wall clock) measured their "
         f"end-to-end median with the same runner.", "",
         f"Machine: {dev.get('cpu')} ({dev.get('cpu_count')} cores), {dev.get('os')}, Python "
         f"{dev.get('python')}, {dev.get('threads')} thread(s), {dev.get('provider')}."]
    for name, rt in rts.items():
        for inv in rt["invocations"]:
            L.append(f"- {name} runtime ({rt['onnxruntime']}): timed {', '.join(inv['timed'])} "
                     f"in {inv['seconds']:.0f} s on {inv['date']}; 1-minute load average "
                     f"{inv['load_before']:.2f} before, {inv['load_after']:.2f} after")
    L += ["", "One run of each bundle per runtime; the issue saw this workflow swing from 0% to "
          "83% within ±10% between runs, so rerun 'run' and 'report' (after deleting the "
          "runtime folders under the work folder) with another --out before trusting one "
          "verdict.",
          "", f"**Headline: the table imported from onnxruntime {other['onnxruntime']} "
          f"predicts that runtime's end-to-end latency of {head['networks']} held-out "
          f"networks with MAPE {head['mape']:.2f}%, {_pct(head['within_5'])} within ±5%, "
          f"{_pct(head['within_10'])} within ±10%, Spearman {head['spearman']:.3f}: it "
          f"{verdict} issue 13's bar** ({_pct(r['bar']['within_10'])} within ±10% and "
          f"{_pct(r['bar']['within_5'])} within ±5%; Spearman {r['spearman_bar']} "
          f"{'reached' if head['spearman_meets_bar'] else 'not reached'}).", "",
          "| table imported from | predicting latency measured by | held-out networks | "
          "MAPE | within ±5% | within ±10% | Spearman | bar |",
          "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for c in r["comparisons"]:
        k = c["check"]
        L.append(f"| {c['table']} ({rts[c['table']]['onnxruntime']}) | {c['measured']} "
                 f"({rts[c['measured']]['onnxruntime']}) | {k['networks']} | {k['mape']:.2f}% "
                 f"| {_pct(k['within_5'])} | {_pct(k['within_10'])} | {k['spearman']:.3f} | "
                 f"{'met' if k['meets_bar'] else 'not met'} |")
    L += ["", "The imported tables' own calibration (fitted on bundle.zip's networks) and "
          "its held-out check on bundle.zip's held-out networks, as `lut import` printed it:",
          "", "| runtime | keys | calibration | fit MAPE | held-out | MAPE | within ±5% | "
          "within ±10% |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, rt in rts.items():
        c, h = rt["calibration"], rt["calibration"]["held_out"]
        L.append(f"| {name} ({rt['onnxruntime']}) | {rt['num_keys']} | {c['scale']:.4f} x "
                 f"sum {c['overhead_ms']:+.4f} ms {c['per_layer_ms']:+.4f} ms/layer "
                 f"({c['coefficients']} coef., {c['networks']} networks) | "
                 f"{c['fit_mape']:.2f}% | {h['n']} | {h['mape']:.2f}% | "
                 f"{_pct(h['within_5'])} | {_pct(h['within_10'])} |")
    names = list(rts)
    cols = [f"{n} measured ms | {n} table predicts | error" for n in names]
    L += ["", "Per network (references are in bundle.zip's calibration by default and are "
          "not counted in the held-out figures):", "",
          "| network | role | " + " | ".join(cols) + " |",
          "| --- | --- | " + " | ".join(["--- | --- | ---"] * len(names)) + " |"]
    for row in r["rows"]:
        cells = []
        for n in names:
            m, p = row[f"measured_{n}_ms"], row[f"predicted_{n}_table_ms"]
            cells.append(f"{m:.4f} | {p:.4f} | {100 * (p - m) / m:+.1f}%")
        role = row["role"] + (" (in bundle)" if row["in_bundle"] else "")
        L.append(f"| {row['name']} | {role} | " + " | ".join(cells) + " |")
    return "\n".join(L) + "\n"


def report(work: Work, out: Path) -> dict[str, Any]:
    from mobile_nas.atomic import atomic_write_text

    result = build_report(work)
    out.parent.mkdir(parents=True, exist_ok=True)
    _write_json(out.with_suffix(".json"), result)
    atomic_write_text(out.with_suffix(".md"), markdown(result))
    print(out.with_suffix(".md").read_text())
    return result


# --- command line ------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    """A usage error is one line on stderr, exit 2 (as mobile-nas's own commands)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--work", default=str(DEFAULT_WORK.relative_to(ROOT)),
                        help="folder of the virtualenv, bundles and results (default "
                             "runs/other_runtime, ignored by git; relative to the repository)")
    o_setup = argparse.ArgumentParser(add_help=False)
    o_setup.add_argument("--onnxruntime", default=OTHER_ONNXRUNTIME, metavar="VERSION",
                         help=f"the stand-in device's onnxruntime release (default "
                              f"{OTHER_ONNXRUNTIME}); any other than the project's")
    o_setup.add_argument("--numpy", metavar="SPEC",
                         help="numpy requirement (default numpy<2 for onnxruntime before "
                              "1.19, else numpy)")
    o_bundle = argparse.ArgumentParser(add_help=False)
    o_bundle.add_argument("--check-n", type=int, default=CHECK_N,
                          help=f"random held-out networks in check.zip (default {CHECK_N})")
    o_bundle.add_argument("--check-seed", type=int, default=CHECK_SEED,
                          help=f"seed that draws them (default {CHECK_SEED})")
    o_bundle.add_argument("--check-rounds", type=int, default=CHECK_ROUNDS,
                          help=f"interleaved rounds of 3 runs that time each check network "
                               f"(default {CHECK_ROUNDS})")
    o_run = argparse.ArgumentParser(add_help=False)
    o_run.add_argument("--runtimes", nargs="+", choices=RUNTIMES, default=list(RUNTIMES),
                       help="other: the virtualenv's onnxruntime (the stand-in phone); "
                            "project: this Python's, for comparison (default both)")
    o_report = argparse.ArgumentParser(add_help=False)
    o_report.add_argument("--out", default=str((RESULTS / "bundle_other_runtime")
                                               .relative_to(ROOT)),
                          help="prefix of the .json and .md written (default "
                               "benchmarks/results/bundle_other_runtime)")
    p = _Parser(
        prog="bundle_other_runtime.py", description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="phase", metavar="PHASE", required=True)
    phases = {
        "setup": ([o_setup], "create the stand-in device's virtualenv (pip install, no "
                             "timing); idempotent"),
        "bundle": ([o_bundle], "export bundle.zip (lut bundle --space fmnist28) and check.zip "
                               "(held-out whole networks); keeps what exists"),
        "run": ([o_run], "time both bundles with each runtime's run_lut.py (--resume) and "
                         "lut import the results; TIMING: run on a quiet machine"),
        "report": ([o_report], "compare predictions with the measured check networks; writes "
                               "the .json and the generated .md"),
        "all": ([o_setup, o_bundle, o_run, o_report], "setup, bundle, run and report"),
    }
    for name, (parents, text) in phases.items():
        sub.add_parser(name, parents=[common, *parents], help=text, description=text)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    work = Work(ROOT / args.work)
    try:
        if args.phase in ("setup", "all"):
            setup(work, args.onnxruntime, args.numpy)
        if args.phase in ("bundle", "all"):
            if args.check_n < 2 or args.check_rounds < 1:
                raise PhaseError("--check-n must be at least 2 and --check-rounds at least 1")
            make_bundles(work, n=args.check_n, seed=args.check_seed, rounds=args.check_rounds)
        if args.phase in ("run", "all"):
            run(work, args.runtimes)
        if args.phase in ("report", "all"):
            report(work, ROOT / args.out)
    except PhaseError as exc:
        print(f"bundle_other_runtime: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        from mobile_nas.errors import MobileNasError

        if not isinstance(exc, MobileNasError):
            raise
        print(f"bundle_other_runtime: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
