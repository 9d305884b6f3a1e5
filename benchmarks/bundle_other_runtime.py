"""The phone workflow checked against another onnxruntime release (issues 13 and 24, item 6).

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
          the chunk in flight): bundle.zip once, then check.zip in 3 separate runs
          (alternating the runtimes); then 'mobile-nas lut import' of bundle.zip's results
          -> that runtime's table, and each check run validated against check.zip's manifest
  report  on the relative protocol (issue 24): in every check run, each held-out network's
          measured median over the space's reference's (fmnist28_mnasnet, timed interleaved
          in the same run) against the imported table's predicted ratio: MAPE, within
          +-5% / +-10%, Spearman, per run; milliseconds beside (the table's fraction of the
          anchor times the anchor's median in that run) ->
          benchmarks/results/bundle_other_runtime.{json,md}
  all     the four in order

The bar (issue 24, item 6): the predicted ratio within +-10% of the measured one for at least
90% of the 20 held-out networks in each of the 3 runs.

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

from _shared import REPO, result_path, run_main

DEFAULT_WORK = REPO / "runs" / "other_runtime"
SPACE = "fmnist28"
#: The stand-in phone's onnxruntime: 15 releases before the project's 1.32 (cp311 wheels).
OTHER_ONNXRUNTIME = "1.17.3"
CHECK_N = 20
CHECK_SEED = 7  # not lut bundle's calibration seed (0)
#: 200 rounds x 3 runs (about 6 s per run here): with 30 rounds the measured ratios of
#: separate runs were 5.6% apart (mean absolute deviation), with 200 1.5% (2026-12-07).
CHECK_ROUNDS = 200
#: Separate runs of check.zip per runtime (the bar must hold in each).
CHECK_RUNS = 3
RUNTIMES = ("other", "project")
#: Issue 24's bar (item 6): share of held-out networks whose predicted ratio to the reference
#: is within +-10% of the measured one, in every run.
BAR = {"within_10": 0.90}

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

    def check_results(self, name: str, run: int) -> Path:
        """Results of check.zip's ``run``-th separate run (1, 2, ...) on runtime ``name``."""
        return self.runtime(name) / f"check_results_{run}.json"

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
    if d == REPO or REPO in d.parents:
        shutil.rmtree(d, ignore_errors=True)
        raise PhaseError(f"the temporary folder {d} is inside the repository; set TMPDIR to a "
                         f"folder outside {REPO}")
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
                             f"(and */check_results_*.json under {work.root}) or pass the "
                             f"options it was made with")
        print(f"bundle: keeping {work.check}", file=sys.stderr)
        check_seconds = seconds.get("check")
    else:
        print(f"bundle: {len(nets)} whole networks -> {work.check}", file=sys.stderr)
        make_bundle(space, (), work.check, held_out=[space.decode(x["arch"]) for x in nets],
                    rounds=rounds, seed=seed, arch_repeats=1, progress=sys.stderr.isatty())
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
    every check run's results validated against check.zip's manifest by the same code."""
    from mobile_nas.cost.latency.bundle import import_results
    from mobile_nas.errors import MobileNasError

    code, out, err = _quiet_cli(["lut", "import", str(work.bundle_results(name)), "--bundle",
                                 str(work.bundle), "--out", str(work.table(name)), "--json"])
    if code != 0:
        raise PhaseError(err.strip().splitlines()[-1] if err.strip() else
                         f"lut import failed (exit {code})")
    try:
        for i in range(1, CHECK_RUNS + 1):
            import_results(work.check_results(name, i), bundle=work.check)
    except MobileNasError as exc:
        raise PhaseError(str(exc)) from None
    return json.loads(out)


def _result_files(work: Work, name: str) -> list[Path]:
    return [work.bundle_results(name),
            *(work.check_results(name, i) for i in range(1, CHECK_RUNS + 1))]


def _time_bundle(python: str, bundle: Path, out: Path, name: str, timed: list[str]) -> None:
    """One run of ``bundle`` by ``python``'s run_lut.py into ``out``, unless complete."""
    if results_complete(out, bundle):
        print(f"run [{name}]: {out.name} is complete", file=sys.stderr)
        return
    print(f"run [{name}]: {bundle.name} -> {out.name} with {python}", file=sys.stderr)
    out.parent.mkdir(parents=True, exist_ok=True)
    run_device_bundle(python, bundle, out)
    timed.append(out.name)


def _record_runtime(work: Work, name: str, python: str, expect_version: str | None,
                    invocation: dict[str, Any] | None) -> None:
    """Checks the versions the results report, imports the table, writes run.json."""
    record = _read_json(work.run_record(name), "") if work.run_record(name).exists() else {}
    reported = {}
    for out in _result_files(work, name):
        md = _read_json(out, "rerun 'run'").get("metadata") or {}
        reported[out.name] = md.get("onnxruntime")
        if expect_version and md.get("onnxruntime") != expect_version:
            raise PhaseError(f"{out} reports onnxruntime {md.get('onnxruntime')}, not "
                             f"{expect_version}; delete it and rerun 'run'")
    imported = import_table(work, name)
    invocations = list(record.get("invocations", []))
    if invocation is not None:
        invocations.append(invocation)
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
    """bundle.zip once per runtime, then check.zip's separate runs, alternating the runtimes
    (run 1 on each, run 2 on each, ...); what is complete is not timed again."""
    for path, what in ((work.bundles, "run 'bundle' first"), (work.bundle, "run 'bundle'"),
                       (work.check, "run 'bundle'")):
        if not path.exists():
            raise PhaseError(f"{path} is missing: {what}")
    pythons: dict[str, tuple[str, str | None]] = {}
    for name in runtimes:
        if name == "other":
            setup_rec = _read_json(work.setup, "run 'setup' first")
            if not work.venv_python.exists():
                raise PhaseError(f"{work.venv_python} is missing: run 'setup'")
            pythons[name] = (str(work.venv_python), setup_rec["onnxruntime"])
        else:
            import onnxruntime

            pythons[name] = (sys.executable, onnxruntime.__version__)
    timed: dict[str, list[str]] = {name: [] for name in runtimes}
    load_before, t0 = os.getloadavg()[0], time.monotonic()
    for name in runtimes:
        _time_bundle(pythons[name][0], work.bundle, work.bundle_results(name), name,
                     timed[name])
    for i in range(1, CHECK_RUNS + 1):
        for name in runtimes:
            _time_bundle(pythons[name][0], work.check, work.check_results(name, i), name,
                         timed[name])
    load_after, seconds = os.getloadavg()[0], time.monotonic() - t0
    for name in runtimes:
        invocation = {"timed": timed[name], "load_before": load_before,
                      "load_after": load_after, "seconds": round(seconds, 1),
                      "date": time.strftime("%Y-%m-%dT%H:%M:%S")} if timed[name] else None
        _record_runtime(work, name, *pythons[name], invocation)


# --- report ------------------------------------------------------------------------------

def reference_network(networks: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The check networks' reference for ratios: the space's first reference (by name), as
    ``lut check`` chooses it."""
    refs = [x for x in networks if x["role"] == "reference"]
    if not refs:
        raise PhaseError("check.zip has no reference network of the space to take ratios to")
    return min(refs, key=lambda x: x["name"])


def check_run(results: Path, networks: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """One check run: each network's measured median ms and its chunk's anchor median ms."""
    from mobile_nas.cost.latency.bundle import ARCH_PREFIX

    entries = _read_json(results, "rerun 'run'")["entries"]
    out = {}
    for x in networks:
        e = entries.get(ARCH_PREFIX + x["arch"])
        if e is None or "anchor_ms" not in e:
            raise PhaseError(f"{results} has no anchored measurement of {x['name']}; delete it "
                             f"and rerun 'run'")
        out[x["arch"]] = {"median_ms": float(e["median_ms"]), "anchor_ms": float(e["anchor_ms"])}
    return out


def retest_pct(per_run: Sequence[Sequence[float]]) -> float:
    """Test-retest of values measured in several runs (rows: runs): the mean absolute
    deviation of a run's value from the median over the runs, in % (as ``lut check``)."""
    import numpy as np

    v = np.asarray(per_run, float)
    return float(np.mean(np.abs(v / np.median(v, axis=0) - 1)) * 100)


def compare(networks: Sequence[dict[str, Any]], predicted: dict[str, dict[str, float]],
            runs: Sequence[dict[str, dict[str, float]]]) -> dict[str, Any]:
    """Predicted against measured ratios to the reference, in every run.

    ``predicted`` maps arch strings to ``{"ratio", "fraction"}`` (the table's ratio to the
    reference and fraction of the anchor); ``runs`` are :func:`check_run` results. Rows give
    every network's ratios per run; ``runs`` the summary over the held-out networks per run
    (ratios, and milliseconds: the table's fraction times the anchor's median in that run);
    ``meets_bar`` whether every run meets :data:`BAR`."""
    from mobile_nas.cost.latency.check import summarize_errors

    ref = reference_network(networks)["arch"]
    measured = [{a: m[a]["median_ms"] / m[ref]["median_ms"] for a in m} for m in runs]
    rows = []
    for x in networks:
        p = predicted[x["arch"]]["ratio"]
        rows.append({"name": x["name"], "role": x["role"], "predicted_ratio": p,
                     "measured_ratio": [r[x["arch"]] for r in measured],
                     "ratio_error_pct": [100 * (p / r[x["arch"]] - 1) for r in measured]})
    held = [x["arch"] for x in networks if x["role"] == "held_out"]
    per_run = []
    for m, r in zip(runs, measured, strict=True):
        k = summarize_errors([predicted[a]["ratio"] for a in held], [r[a] for a in held])
        anchor_ms = float(sorted(m[a]["anchor_ms"] for a in held)[len(held) // 2])
        ms = summarize_errors([predicted[a]["fraction"] * m[a]["anchor_ms"] for a in held],
                              [m[a]["median_ms"] for a in held])
        per_run.append({**k, "meets_bar": bool(all(k[b] >= v for b, v in BAR.items())),
                        "anchor_ms": anchor_ms, "reference_ms": m[ref]["median_ms"],
                        "ms_mape": ms["mape"], "ms_within_10": ms["within_10"]})
    return {"reference": reference_network(networks)["name"], "networks": len(held),
            "rows": rows, "runs": per_run,
            "ratio_retest_pct": retest_pct([[r[a] for a in held] for r in measured])
            if len(runs) > 1 else None,
            "meets_bar": bool(per_run and all(r["meets_bar"] for r in per_run))}


def build_report(work: Work) -> dict[str, Any]:
    from mobile_nas.cost.latency import LatencyPredictor, LatencyTable
    from mobile_nas.space import get_space

    bundles = _read_json(work.bundles, "run 'bundle' first")
    nets = bundles["check_networks"]
    ref = reference_network(nets)
    space = get_space(bundles["space"])
    have = [n for n in RUNTIMES if work.run_record(n).exists() and work.table(n).exists()]
    if "other" not in have:
        raise PhaseError(f"no imported table of the other runtime under {work.root}: run "
                         f"'run' first")
    runs, predicted, runtimes = {}, {}, {}
    for name in have:
        rec = _read_json(work.run_record(name), "rerun 'run'")
        table = LatencyTable.load(work.table(name))
        pred = LatencyPredictor(table)
        cal = table.calibration
        if cal is None or cal.held_out is None or not cal.relative:
            raise PhaseError(f"{work.table(name)} has no calibration in fractions of the "
                             f"anchor with a held-out check (lut import of an anchored "
                             f"bundle fits one): rerun 'bundle' and 'run'")
        p = {x["arch"]: pred.predict(space.decode(x["arch"])) for x in nets}
        predicted[name] = {a: {"ratio": v.total_ms / p[ref["arch"]].total_ms,
                               "fraction": v.anchor_fraction, "ms": v.total_ms}
                           for a, v in p.items()}
        runs[name] = [check_run(work.check_results(name, i), nets)
                      for i in range(1, CHECK_RUNS + 1)]
        md = table.metadata
        runtimes[name] = {
            "python": rec["python"], "onnxruntime": md.get("onnxruntime"),
            "reported_by_results": rec["onnxruntime"], "device": rec["device"],
            "invocations": rec["invocations"], "table": str(work.table(name)),
            "table_predicts": table.predicts, "num_keys": len(table),
            "anchor_ms": table.anchor_timebase_ms,
            "calibration": {"model": "per-op network model" if cal.weights else "linear",
                            "fit_mape": cal.fit_mape, "loo_mape": cal.loo_mape,
                            "networks": len(cal.archs), "retest_pct": cal.retest_pct,
                            "held_out": {k: v for k, v in cal.held_out.to_json().items()
                                         if k in ("n", "mape", "within_5", "within_10")}}}
    comparisons = [{"table": "other", "measured": "other", "headline": True,
                    **compare(nets, predicted["other"], runs["other"])}]
    if "project" in have:
        comparisons += [
            {"table": "project", "measured": "project", "headline": False,
             **compare(nets, predicted["project"], runs["project"])},
            {"table": "project", "measured": "other", "headline": False,
             **compare(nets, predicted["project"], runs["other"])}]
    rows = []
    for x in nets:
        row = {"name": x["name"], "role": x["role"], "in_bundle": x["in_bundle"],
               "arch": x["arch"]}
        for name in have:
            row[f"{name}_measured_ms"] = [r[x["arch"]]["median_ms"] for r in runs[name]]
            row[f"{name}_anchor_ms"] = [r[x["arch"]]["anchor_ms"] for r in runs[name]]
            row[f"{name}_table_fraction"] = predicted[name][x["arch"]]["fraction"]
            row[f"{name}_table_ratio"] = predicted[name][x["arch"]]["ratio"]
        rows.append(row)
    setup_rec = _read_json(work.setup, "run 'setup' first") if work.setup.exists() else {}
    return {"schema_version": 2, "benchmark": "bundle_other_runtime",
            "date": time.strftime("%Y-%m-%dT%H:%M:%S"), "space": bundles["space"],
            "reference": ref["name"], "check_runs": CHECK_RUNS,
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
            "comparisons": comparisons, "rows": rows, "bar": BAR}


def _pct(x: float) -> str:
    return f"{x:.0%}"


def _fmt(x: float | None, spec: str, missing: str = "-") -> str:
    return missing if x is None else format(x, spec)


def markdown(r: dict[str, Any]) -> str:
    rts = r["runtimes"]
    other = rts["other"]
    head = next(c for c in r["comparisons"] if c["headline"])
    verdict = "meets" if head["meets_bar"] else "does not meet"
    dev = other["device"]
    bar = _pct(r["bar"]["within_10"])
    L = ["# The phone workflow against another onnxruntime release", "",
         f"Generated by `benchmarks/bundle_other_runtime.py` ({r['date']}) from "
         f"`bundle_other_runtime.json`; nothing here is edited by hand. Issue 24, item 6 "
         f"(the relative protocol; issue 13 made the workflow).", "",
         f"A separate virtualenv ({', '.join(r['other_packages'] or [])}; nothing of "
         f"mobile-nas) stands in for the phone: onnxruntime **{other['onnxruntime']}** (as "
         f"its results report it) against the project's **{r['project_onnxruntime']}**. "
         f"`{r['bundle_command']} --out bundle.zip` ({r['bundle_models']} models: every layer "
         f"key, {r['bundle_fit']} networks to calibrate on, {r['bundle_held_out']} to check "
         f"the calibration, and the anchor timed in every chunk; "
         f"{r['bundle_protocol']['rounds']} rounds x {r['bundle_protocol']['runs_per_round']} "
         f"runs, layers timed by the {r['bundle_protocol']['clock']} clock, "
         f"{r['bundle_protocol']['statistic']}) was timed by its own `run_lut.py` under that "
         f"interpreter (`python -I`, clean environment, outside the repository) and imported "
         f"with `mobile-nas lut import results.json --bundle bundle.zip`. A second bundle of "
         f"whole networks only (the space's references and {r['check_n']} random networks, "
         f"seed {r['check_seed']}, none of them among bundle.zip's networks; "
         f"{r['check_protocol']['rounds']} rounds x {r['check_protocol']['runs_per_round']} "
         f"runs, wall clock, interleaved with the anchor) was timed in {r['check_runs']} "
         f"separate runs per runtime (alternating the runtimes).", "",
         f"Each held-out network's **ratio to {r['reference']}**, measured in the same run, is "
         f"compared with the imported table's predicted ratio; milliseconds beside are the "
         f"table's fraction of the anchor times the anchor's median in that run.", "",
         f"Machine: {dev.get('cpu')} ({dev.get('cpu_count')} cores), {dev.get('os')}, Python "
         f"{dev.get('python')}, {dev.get('threads')} thread(s), {dev.get('provider')}."]
    for name, rt in rts.items():
        for inv in rt["invocations"]:
            L.append(f"- {name} runtime ({rt['onnxruntime']}): timed {', '.join(inv['timed'])} "
                     f"({inv['seconds']:.0f} s for all runtimes) on {inv['date']}; 1-minute "
                     f"load average {inv['load_before']:.2f} before, {inv['load_after']:.2f} "
                     f"after")
    worst = min(k["within_10"] for k in head["runs"])
    L += ["", f"**Headline: the table imported from onnxruntime {other['onnxruntime']} "
          f"predicts that runtime's ratios to {r['reference']} of {head['networks']} held-out "
          f"networks within ±10% for {_pct(worst)} of them in its worst of {len(head['runs'])} "
          f"runs (" + ", ".join(_pct(k["within_10"]) for k in head["runs"]) + "): it "
          f"{verdict} the bar** ({bar} within ±10% in every run). The measured ratios "
          f"repeat within {_fmt(head['ratio_retest_pct'], '.2f')}% between runs (mean "
          f"absolute deviation from their median).", "",
          "| table imported from | predicting ratios measured by | run | held-out | ratio MAPE "
          "| within ±5% | within ±10% | Spearman | anchor ms | reference ms | ms MAPE | bar |",
          "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for c in r["comparisons"]:
        for i, k in enumerate(c["runs"], 1):
            L.append(f"| {c['table']} ({rts[c['table']]['onnxruntime']}) | {c['measured']} "
                     f"({rts[c['measured']]['onnxruntime']}) | {i} | {c['networks']} | "
                     f"{k['mape']:.2f}% | {_pct(k['within_5'])} | {_pct(k['within_10'])} | "
                     f"{k['spearman']:.3f} | {k['anchor_ms']:.4f} | {k['reference_ms']:.4f} | "
                     f"{k['ms_mape']:.2f}% | {'met' if k['meets_bar'] else 'not met'} |")
    L += ["", "The imported tables' own calibration (fitted on bundle.zip's networks, in "
          "fractions of the anchor) and its held-out check on bundle.zip's held-out networks, "
          "as `lut import` printed it:", "",
          "| runtime | keys | anchor ms | model | networks | fit MAPE | leave-one-out MAPE | "
          "held-out | MAPE | within ±5% | within ±10% |",
          "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, rt in rts.items():
        c, h = rt["calibration"], rt["calibration"]["held_out"]
        L.append(f"| {name} ({rt['onnxruntime']}) | {rt['num_keys']} | "
                 f"{_fmt(rt['anchor_ms'], '.4f')} | {c['model']} | {c['networks']} | "
                 f"{c['fit_mape']:.2f}% | {_fmt(c['loo_mape'], '.2f')}% | {h['n']} | "
                 f"{h['mape']:.2f}% | {_pct(h['within_5'])} | {_pct(h['within_10'])} |")
    names = list(rts)
    cols = [f"{n} table ratio | {n} measured ratio (runs) | {n} error (runs)" for n in names]
    by_table = {c["table"]: c for c in r["comparisons"] if c["table"] == c["measured"]}
    L += ["", f"Per network, ratios to {r['reference']} (references are in bundle.zip's "
          f"calibration by default and are not counted in the held-out figures):", "",
          "| network | role | " + " | ".join(cols) + " |",
          "| --- | --- | " + " | ".join(["--- | --- | ---"] * len(names)) + " |"]
    for i, row in enumerate(r["rows"]):
        cells = []
        for n in names:
            cr = by_table[n]["rows"][i]
            cells.append(f"{cr['predicted_ratio']:.3f} | "
                         + " / ".join(f"{m:.3f}" for m in cr["measured_ratio"]) + " | "
                         + " / ".join(f"{e:+.1f}%" for e in cr["ratio_error_pct"]))
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
    common.add_argument("--work", default=str(DEFAULT_WORK.relative_to(REPO)),
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
    o_report.add_argument("--out", default=str(result_path("bundle_other_runtime")
                                               .relative_to(REPO)),
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
        "run": ([o_run], "time bundle.zip once and check.zip in 3 separate runs with each "
                         "runtime's run_lut.py (--resume) and lut import the results; "
                         "TIMING: run on a quiet machine"),
        "report": ([o_report], "compare predictions with the measured check networks; writes "
                               "the .json and the generated .md"),
        "all": ([o_setup, o_bundle, o_run, o_report], "setup, bundle, run and report"),
    }
    for name, (parents, text) in phases.items():
        sub.add_parser(name, parents=[common, *parents], help=text, description=text)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_main(lambda: _phases(Work(REPO / args.work), args),
                    prog="bundle_other_runtime", also=(PhaseError,))


def _phases(work: Work, args: argparse.Namespace) -> None:
    if args.phase in ("setup", "all"):
        setup(work, args.onnxruntime, args.numpy)
    if args.phase in ("bundle", "all"):
        if args.check_n < 2 or args.check_rounds < 1:
            raise PhaseError("--check-n must be at least 2 and --check-rounds at least 1")
        make_bundles(work, n=args.check_n, seed=args.check_seed, rounds=args.check_rounds)
    if args.phase in ("run", "all"):
        run(work, args.runtimes)
    if args.phase in ("report", "all"):
        report(work, REPO / args.out)


if __name__ == "__main__":
    raise SystemExit(main())
