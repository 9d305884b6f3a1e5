"""The onnxruntime layer of mobile-nas: the one session factory (:func:`make_session`), the
one interleaved timing loop (:func:`time_interleaved`), the one timing result
(:class:`TimingResult`, computed by :func:`timing_result`) and the one machine description
(:class:`Machine`; this one's: :func:`this_machine`).

This module needs only the standard library, numpy and onnxruntime. ``lut build`` and
``lut check`` import it, and ``lut bundle`` copies this very file into the bundle as
``run_lut.py``, so a phone or a Raspberry Pi times the operators exactly as the host does::

    python run_lut.py bundle.zip --out results.json [--threads 1] [--provider CPUExecutionProvider]

Timing protocol: every model is warmed up, then ``rounds`` rounds visit all models in a
shuffled order, each visit running ``runs_per_round`` inferences; a slow drift of the
machine therefore touches every model alike. Each model gets the median, interquartile
range and count of its ``rounds * runs_per_round`` times in milliseconds (wall clock, or
the CPU time of the timing thread with ``clock='cpu'``, see :func:`_clock`).

A bundle run times each chunk of models with the bundle's anchor (one session for the whole
run) among them; a chunk of layers whose anchor strays from the run's baseline (its first
chunk timed 5 times) by more than the noise floor is timed again, as ``lut build`` does with
its sentinel, and chunks of whole networks are timed in ``arch_repeats`` separate passes.

Everything mobile-nas times goes through here: ``lut build``/``check``/``bundle``, ``bench``,
``cost --measure`` and ``export``'s fp32/INT8 timing; the ONNX files come from the one
exporter, :mod:`mobile_nas.torch_onnx` (not imported here: this file stays standalone).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

RESULTS_SCHEMA_VERSION = 1
MANIFEST_SCHEMA_VERSION = 1
#: The anchor model's id in a bundle manifest: timed in every chunk, its median recorded
#: with each entry of the chunk (``anchor_ms``), so the import has every time as a fraction
#: of it whatever the device's speed did between chunks.
ANCHOR_ID = "anchor"

OPT_LEVELS = ("disable", "basic", "extended", "all")
CLOCKS = ("wall", "cpu")
#: Archive limits: refuse zip bombs before reading or extracting anything.
MAX_ARCHIVE_BYTES = 16 * 2**30  # all entries, uncompressed
MAX_ENTRY_RATIO = 200  # uncompressed / compressed, for entries over 1 MiB


class RunnerError(Exception):
    """Bad input to the runner (missing bundle, unsafe archive, unknown provider)."""


class Session(Protocol):
    """What :func:`time_interleaved` runs: an onnxruntime session, or a fake in tests."""

    def get_inputs(self) -> Any: ...

    def run(self, output_names: Any, feed: Any) -> Any: ...


def make_session(model: bytes | str | os.PathLike[str], *, threads: int = 1,
                 provider: str = "CPUExecutionProvider", opt_level: str = "all",
                 config: Mapping[str, str] | None = None,
                 optimized_model_path: str | os.PathLike[str] | None = None) -> Session:
    """An onnxruntime session of ONNX bytes or an ONNX/ORT-format file, pinned to ``threads``
    intra-op threads (one inter-op thread, sequential execution) and one provider.

    ``config``: session config entries (e.g. ``session.enable_saved_runtime_optimizations``);
    ``optimized_model_path``: where onnxruntime writes the graph it optimized.
    """
    import onnxruntime as ort

    if provider not in ort.get_available_providers():
        raise RunnerError(f"execution provider {provider!r} is not available; available: "
                          f"{', '.join(ort.get_available_providers())}")
    if opt_level not in OPT_LEVELS:
        raise RunnerError(f"unknown graph optimization level {opt_level!r}; "
                          f"choose from {', '.join(OPT_LEVELS)}")
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[opt_level]
    so.log_severity_level = 3
    for key, value in (config or {}).items():
        so.add_session_config_entry(key, value)
    if optimized_model_path is not None:
        so.optimized_model_filepath = os.fspath(optimized_model_path)
    if isinstance(model, os.PathLike):
        model = os.fspath(model)
    session: Session = ort.InferenceSession(model, sess_options=so, providers=[provider])
    return session


def session_feed(session: Session, seed: int = 0) -> dict[str, np.ndarray[Any, Any]]:
    """Random float inputs for every graph input (dynamic dimensions taken as 1)."""
    rng = np.random.default_rng(seed)
    feed: dict[str, np.ndarray[Any, Any]] = {}
    for inp in session.get_inputs():
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in inp.shape]
        dtype = {"tensor(float)": np.float32, "tensor(float16)": np.float16,
                 "tensor(double)": np.float64, "tensor(int64)": np.int64,
                 "tensor(int32)": np.int32, "tensor(uint8)": np.uint8,
                 "tensor(int8)": np.int8}.get(inp.type, np.float32)
        if np.issubdtype(dtype, np.floating):
            feed[inp.name] = rng.random(shape, dtype=np.float32).astype(dtype)
        else:
            feed[inp.name] = np.zeros(shape, dtype=dtype)
    return feed


def time_interleaved(sessions: Mapping[str, Session], *, warmup: int = 5, rounds: int = 10,
                     runs_per_round: int = 3, seed: int = 0, clock_name: str = "wall",
                     on_round: Callable[[int], None] | None = None,
                     timer: Callable[[], int] | None = None) -> dict[str, list[float]]:
    """Milliseconds of every run of every session, rounds interleaved (see module).

    Sessions need ``get_inputs()`` and ``run(None, feed)``. ``timer``: a nanosecond counter
    used instead of the clock named by ``clock_name`` (a fake clock in tests).
    """
    feeds = {name: session_feed(s, seed) for name, s in sessions.items()}
    for name, s in sessions.items():
        for _ in range(warmup):
            s.run(None, feeds[name])
    times: dict[str, list[float]] = {name: [] for name in sessions}
    order = list(sessions)
    rng = np.random.default_rng(seed)
    clock = _clock(clock_name) if timer is None else timer
    for r in range(rounds):
        rng.shuffle(order)
        for name in order:
            s, feed, out = sessions[name], feeds[name], times[name]
            for _ in range(runs_per_round):
                t0 = clock()
                s.run(None, feed)
                out.append((clock() - t0) / 1e6)
        if on_round is not None:
            on_round(r)
    return times


def _clock(name: str) -> Callable[[], int]:
    """``wall``: elapsed time (what a user waits); ``cpu``: CPU time of the calling thread,
    which onnxruntime uses for all work at one intra-op thread, and which ignores time the
    process spends descheduled on a busy machine (only meaningful with ``threads=1``)."""
    if name == "wall":
        return time.perf_counter_ns
    if name == "cpu":
        return time.thread_time_ns
    raise RunnerError(f"unknown clock {name!r}; choose from {', '.join(CLOCKS)}")


@dataclass(frozen=True)
class TimingResult:
    """The distribution of one model's timed runs, in milliseconds.

    Percentiles are numpy's (linear interpolation); ``iqr_ms`` is p75 - p25, ``std_ms`` the
    sample standard deviation (0 for one run). ``clock`` and ``threads`` say how the times
    were taken (``wall`` or ``cpu``, intra-op threads).
    """

    median_ms: float
    iqr_ms: float
    min_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    std_ms: float
    n: int
    clock: str = "wall"
    threads: int = 1

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> dict[str, Any]:
        """``{"median_ms", "iqr_ms", "n", "min_ms"}``: what latency tables and the runner's
        ``results.json`` store per model."""
        return {"median_ms": self.median_ms, "iqr_ms": self.iqr_ms, "n": self.n,
                "min_ms": self.min_ms}

    def percentiles(self) -> dict[str, Any]:
        """``{"p50_ms", "p90_ms", "p99_ms", "mean_ms", "std_ms", "min_ms", "runs"}``: the
        names ``bench`` prints and ``export`` records (``p50_ms`` is the median, ``runs``
        is ``n``)."""
        return {"p50_ms": self.median_ms, "p90_ms": self.p90_ms, "p99_ms": self.p99_ms,
                "mean_ms": self.mean_ms, "std_ms": self.std_ms, "min_ms": self.min_ms,
                "runs": self.n}


def timing_result(times_ms: Sequence[float], *, clock: str = "wall",
                  threads: int = 1) -> TimingResult:
    """The :class:`TimingResult` of raw times (milliseconds; at least one)."""
    a = np.asarray(times_ms, dtype=np.float64)
    if a.size == 0:
        raise RunnerError("no timed runs to summarize")
    q1, med, q3, p90, p99 = (float(q) for q in np.percentile(a, [25, 50, 75, 90, 99]))
    return TimingResult(median_ms=med, iqr_ms=float(q3 - q1), min_ms=float(a.min()),
                        p90_ms=p90, p99_ms=p99, mean_ms=float(a.mean()),
                        std_ms=float(a.std(ddof=1)) if a.size > 1 else 0.0, n=int(a.size),
                        clock=clock, threads=threads)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Machine:
    """What identifies a machine that times models: host name, CPU model, OS (system,
    release, architecture), Python and onnxruntime versions, logical CPUs. Its JSON is the
    machine part of latency tables' metadata and of the runner's ``results.json``."""

    device: str
    cpu: str
    os: str
    python: str
    onnxruntime: str
    cpu_count: int | None

    def to_json(self, *fields: str) -> dict[str, Any]:
        """The record as JSON; only ``fields``, in that order, when any are named."""
        data = asdict(self)
        return {f: data[f] for f in fields} if fields else data


def this_machine() -> Machine:
    """The :class:`Machine` this process runs on."""
    import onnxruntime as ort

    return Machine(device=platform.node() or "unknown", cpu=cpu_model(),
                   os=f"{platform.system()} {platform.release()} {platform.machine()}".strip(),
                   python=platform.python_version(), onnxruntime=ort.__version__,
                   cpu_count=os.cpu_count())


def cpu_model() -> str:
    """The CPU model name (``/proc/cpuinfo`` on Linux/Android, else ``platform``)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Hardware", "Processor", "cpu model"):
                if value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def check_archive(zf: zipfile.ZipFile, source: str) -> None:
    """Refuses entries that would escape the target folder, symbolic links, and archives
    past the size limits (zip bombs); reads no entry's data."""
    total = 0
    for info in zf.infolist():
        name = info.filename
        p = PurePosixPath(name.replace("\\", "/"))
        if name.startswith(("/", "\\")) or ".." in p.parts or (p.parts and ":" in p.parts[0]):
            raise RunnerError(f"{source}: entry {name!r} would escape the target folder; "
                              f"refusing the archive")
        if (info.external_attr >> 16) & 0o170000 == 0o120000:
            raise RunnerError(f"{source}: entry {name!r} is a symbolic link; refusing the "
                              f"archive")
        total += info.file_size
        if info.file_size > 2**20 and info.file_size > MAX_ENTRY_RATIO * max(
                info.compress_size, 1):
            raise RunnerError(f"{source}: entry {name!r} expands {info.file_size} bytes from "
                              f"{info.compress_size} (ratio limit {MAX_ENTRY_RATIO}); refusing "
                              f"a likely zip bomb")
        if total > MAX_ARCHIVE_BYTES:
            raise RunnerError(f"{source}: entries exceed the size limit of "
                              f"{MAX_ARCHIVE_BYTES} bytes; refusing the archive")


def safe_extract(archive: str | os.PathLike[str], dest: str | os.PathLike[str]) -> Path:
    """Extracts a zip into ``dest``, refusing any entry that would land outside it, symbolic
    links and zip bombs (see :func:`check_archive`)."""
    dest = Path(dest).resolve()
    try:
        zf = zipfile.ZipFile(archive)
    except (OSError, zipfile.BadZipFile) as exc:
        raise RunnerError(f"{archive}: not a readable zip archive ({exc})") from None
    with zf:
        check_archive(zf, str(archive))
        for info in zf.infolist():
            target = (dest / info.filename).resolve()
            if target != dest and dest not in target.parents:
                raise RunnerError(f"{archive}: entry {info.filename!r} would escape "
                                  f"the target folder; refusing to extract")
        zf.extractall(dest)
    return dest


def _atomic_json(path: Path, data: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


#: Passes of a run's first chunk of layers that set the anchor's baseline and noise floor;
#: the floor's minimum; re-timings of a chunk whose anchor strays (lut build's sentinel).
ANCHOR_REPEATS = 5
MIN_NOISE_FLOOR_PCT = 2.0
MAX_RETIMES = 2
if TYPE_CHECKING:  # run_lut.py may run on an older Python than the package needs
    #: One interleaved pass of a chunk: each model's times, and the anchor's (None: none).
    _Pass = tuple[dict[str, list[float]], list[float] | None]


class _AnchorWatch:
    """The anchor's baseline over a run's first chunk of layers and the chunks re-timed
    because their anchor strayed from it (the protocol of lut build's sentinel)."""

    def __init__(self, stat: str) -> None:
        self.stat, self.baseline, self.floor = stat, 0.0, 0.0
        self.repeats: list[float] = []
        self.events: list[dict[str, Any]] = []

    def chunk(self, first_id: str, timed: Callable[[int], _Pass]) -> _Pass:
        """The kept pass of a chunk of layers: ``timed(seed)`` -> (times, anchor times)."""
        def value(attempt: _Pass) -> float:
            if attempt[1] is None:
                raise RunnerError(f"chunk {first_id!r} was timed without the anchor")
            return float(getattr(timing_result(attempt[1]), self.stat))

        if not self.repeats:
            attempts = [timed(seed) for seed in range(ANCHOR_REPEATS)]
            self.repeats = [value(a) for a in attempts]
            self.baseline = float(np.median(self.repeats))
            devs = sorted(abs(v / self.baseline - 1) * 100 for v in self.repeats)
            self.floor = max(2 * max(devs[:-1] if len(devs) > 2 else devs),
                             MIN_NOISE_FLOOR_PCT)
        else:
            attempts = [timed(0)]
            while (abs(value(attempts[-1]) / self.baseline - 1) * 100 > self.floor
                   and len(attempts) <= MAX_RETIMES):
                attempts.append(timed(len(attempts)))
            if len(attempts) > 1:
                devs = [round((value(a) / self.baseline - 1) * 100, 3) for a in attempts]
                kept = min(range(len(devs)), key=lambda i: abs(devs[i]))
                self.events.append({"first_id": first_id, "deviation_pct": devs,
                                    "kept": kept, "resolved": abs(devs[kept]) <= self.floor})
        return min(attempts, key=lambda a: abs(value(a) - self.baseline))

    def to_json(self) -> dict[str, Any]:
        return {"baseline_ms": self.baseline, "repeats_ms": self.repeats,
                "noise_floor_pct": round(self.floor, 3), "max_retimes": MAX_RETIMES,
                "retimed": self.events}


def _entry(passes: Sequence[Sequence[float]], anchor_passes: Sequence[Sequence[float]], *,
           layer: bool, statistic: str) -> dict[str, Any]:
    """A results entry from one or more interleaved passes of a model's times (and the
    anchor's in the same passes, if the bundle has one). One pass: the summary of its times
    with the anchor's statistic (layers: the protocol's; networks: the median, as the import
    reads each) as ``anchor_ms``. Several passes (whole networks): ``anchor_ms`` the anchor's
    median over the passes and ``median_ms`` that times the median over the passes of the
    network's fraction of the anchor; ``repeat_fractions`` lists the passes' fractions."""
    entry = timing_result([x for p in passes for x in p]).summary()
    if len(passes) == 1:
        if anchor_passes:
            stat = "min_ms" if layer and statistic == "min" else "median_ms"
            entry["anchor_ms"] = getattr(timing_result(anchor_passes[0]), stat)
        return entry
    medians = [timing_result(p).median_ms for p in passes]
    if not anchor_passes:
        entry["median_ms"] = float(np.median(medians))
        return entry
    anchors = [timing_result(a).median_ms for a in anchor_passes]
    fractions = [m / a for m, a in zip(medians, anchors, strict=True)]
    entry["anchor_ms"] = float(np.median(anchors))
    entry["median_ms"] = float(np.median(fractions)) * entry["anchor_ms"]
    entry["repeat_fractions"] = fractions
    return entry


def run_bundle(bundle: str | os.PathLike[str], out: str | os.PathLike[str], *, threads: int = 1,
               provider: str = "CPUExecutionProvider", opt_level: str | None = None,
               rounds: int | None = None, runs_per_round: int | None = None,
               chunk: int = 32, resume: bool = False, quiet: bool = False) -> dict[str, Any]:
    """Times every model of a bundle (zip or extracted folder) and writes the results JSON.

    Results are written atomically after every chunk of models; ``resume`` keeps the
    entries of an earlier, interrupted run with the same manifest.
    """
    bundle = Path(bundle)
    out = Path(out)
    with tempfile.TemporaryDirectory() as tmp:
        root = safe_extract(bundle, tmp) if bundle.is_file() else bundle
        manifest_bytes = (root / "manifest.json").read_bytes()
        manifest = json.loads(manifest_bytes)
        if manifest.get("schema_version") != MANIFEST_SCHEMA_VERSION:
            raise RunnerError(f"manifest schema_version {manifest.get('schema_version')!r} "
                              f"is not {MANIFEST_SCHEMA_VERSION}")
        proto = manifest["protocol"]
        opt_level = opt_level or proto["opt_level"]
        rounds = rounds or proto["rounds"]
        runs_per_round = runs_per_round or proto["runs_per_round"]
        clock = proto.get("clock", "wall")
        if clock == "cpu" and threads != 1:
            raise RunnerError("the bundle times CPU time, which needs --threads 1")
        results = {
            "schema_version": RESULTS_SCHEMA_VERSION, "kind": "mobile-nas-lut-results",
            "manifest_sha256": sha256_bytes(manifest_bytes), "manifest": manifest,
            "metadata": {**this_machine().to_json(), "provider": provider, "threads": threads,
                         "opt_level": opt_level, "rounds": rounds,
                         "runs_per_round": runs_per_round, "warmup": proto["warmup"],
                         "clock": clock, "statistic": proto.get("statistic", "median"),
                         "runner": "run_lut.py",
                         "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
            "entries": {},
        }
        if resume and out.exists():
            old = json.loads(out.read_text())
            if old.get("manifest_sha256") == results["manifest_sha256"]:
                results["entries"] = old.get("entries", {})
        # layers with the protocol's clock; whole networks (calibration) with arch_clock,
        # the wall clock users measure, in chunks of their own
        arch_clock = proto.get("arch_clock", clock)
        anchor = next((m for m in manifest["models"] if m.get("kind") == "anchor"), None)
        # an entry of an anchored bundle without its chunk's anchor time is not done
        todo = [m for m in manifest["models"] if m.get("kind") != "anchor" and (
            m["id"] not in results["entries"]
            or (anchor is not None and "anchor_ms" not in results["entries"][m["id"]]))]
        parts = []
        for kind_clock, group in ((clock, [m for m in todo if m.get("kind") != "arch"]),
                                  (arch_clock, [m for m in todo if m.get("kind") == "arch"])):
            parts += [(kind_clock, group[i:i + chunk]) for i in range(0, len(group), chunk)]
        start, done = time.monotonic(), 0
        anchor_session = None
        if anchor is not None:  # one session for the whole run, as lut build's sentinel
            data = (root / anchor["file"]).read_bytes()
            anchor_hash = sha256_bytes(data)
            anchor_session = make_session(data, threads=threads, provider=provider,
                                          opt_level=opt_level)
        statistic = proto.get("statistic", "median")
        watch = _AnchorWatch("min_ms" if statistic == "min" else "median_ms")
        for part_clock, part in parts:
            sessions: dict[str, Session] = {}
            hashes: dict[str, str] = {}
            for m in part:
                data = (root / m["file"]).read_bytes()
                hashes[m["id"]] = sha256_bytes(data)
                sessions[m["id"]] = make_session(data, threads=threads, provider=provider,
                                                 opt_level=opt_level)
            if anchor_session is not None:
                sessions[ANCHOR_ID] = anchor_session

            def timed(seed: int, sessions: dict[str, Session] = sessions,
                      part_clock: str = part_clock) -> _Pass:
                times = time_interleaved(sessions, warmup=proto["warmup"], rounds=rounds,
                                         runs_per_round=runs_per_round, seed=seed,
                                         clock_name=part_clock)
                return times, times.pop(ANCHOR_ID) if anchor_session is not None else None

            layer = part[0].get("kind") != "arch"
            if layer and anchor_session is not None:
                # a chunk whose anchor strays from the run's baseline by more than the
                # noise floor is timed again (at most MAX_RETIMES times), as lut build does
                passes = [watch.chunk(part[0]["id"], timed)]
            else:
                # whole networks: ``arch_repeats`` separate interleaved passes (seeds 0,
                # 1, ...), each network's fraction of the anchor the median over the passes
                reps = 1 if layer else max(1, int(proto.get("arch_repeats", 1)))
                passes = [timed(rep) for rep in range(reps)]
            anchor_times = [a for _, a in passes if a is not None]
            for mid in passes[0][0]:
                results["entries"][mid] = {
                    **_entry([t[mid] for t, _ in passes], anchor_times, layer=layer,
                             statistic=statistic),
                    "sha256": hashes[mid], "clock": part_clock}
            if anchor_session is not None:
                results["entries"][ANCHOR_ID] = {
                    **timing_result([x for t in anchor_times for x in t]).summary(),
                    "sha256": anchor_hash, "clock": part_clock}
                results["metadata"]["anchor_watch"] = watch.to_json()
            _atomic_json(out, results)
            done += len(part)
            if not quiet:
                eta = (time.monotonic() - start) / done * (len(todo) - done)
                print(f"{done}/{len(todo)} models timed, about {eta:.0f} s left",
                      file=sys.stderr)
        _atomic_json(out, results)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description="Time the ONNX models of a mobile-nas latency bundle with onnxruntime and "
                    "write results.json for 'mobile-nas lut import'. Needs numpy + onnxruntime.")
    p.add_argument("bundle", help="bundle.zip or its extracted folder")
    p.add_argument("--out", default="results.json", help="results file (default results.json)")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads (default 1)")
    p.add_argument("--provider", default="CPUExecutionProvider", help="execution provider")
    p.add_argument("--opt-level", choices=OPT_LEVELS, help="graph optimization level")
    p.add_argument("--rounds", type=int, help="interleaved rounds (default: the bundle's)")
    p.add_argument("--resume", action="store_true", help="keep entries of an interrupted run")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    args = p.parse_args(argv)
    try:
        res = run_bundle(args.bundle, args.out, threads=args.threads, provider=args.provider,
                         opt_level=args.opt_level, rounds=args.rounds, resume=args.resume,
                         quiet=args.quiet)
    except (RunnerError, OSError, KeyError, ValueError) as exc:
        print(f"run_lut: error: {exc}", file=sys.stderr)
        return 2
    print(f"timed {len(res['entries'])} models; wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
