"""Runs the reliability suite and records what it observed in benchmarks/results/.

    python benchmarks/reliability.py        # writes reliability.json and reliability.md

Runs tests/reliability (bad input, fuzzing, SIGKILL during lut build / train / export,
four workers on PostgreSQL with one killed) and the search's own kill/resume and two-worker
tests; every figure in the record comes from that run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _shared import REPO, RESULTS
from mobile_nas.cost.latency.runner import this_machine

TESTS = ["tests/reliability", "tests/search/test_runner.py"]


def _junit_summary(path: Path) -> str:
    """'N passed, F failed, S skipped' from pytest's JUnit XML."""
    import xml.etree.ElementTree as ET

    if not path.exists():
        return "no test report"
    suite = ET.parse(path).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    total, failed, errors, skipped = (int(suite.get(k, 0)) for k in
                                      ("tests", "failures", "errors", "skipped"))
    return (f"{total - failed - errors - skipped} passed, {failed + errors} failed, "
            f"{skipped} skipped")


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        log, junit = Path(tmp) / "record.jsonl", Path(tmp) / "junit.xml"
        t0 = time.time()
        proc = subprocess.run([sys.executable, "-m", "pytest", *TESTS, "-m", "", "-q",
                               f"--junitxml={junit}", "-p", "no:cacheprovider"], cwd=REPO,
                              env={**os.environ, "MOBILE_NAS_RECORD": str(log)},
                              capture_output=True, text=True)
        seconds = time.time() - t0
        records = [json.loads(line) for line in log.read_text().splitlines()] \
            if log.exists() else []
        summary = _junit_summary(junit)
    bad = [r for r in records if r["kind"] == "bad_input"]
    faults = [r for r in records if r["kind"] == "fault"]
    scale = [r for r in records if r["kind"] == "scale_out"]
    machine = this_machine()
    result = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": f"{machine.cpu}, {machine.cpu_count} cores, {machine.os}",
        "pytest": summary, "exit_code": proc.returncode, "seconds": round(seconds, 1),
        "bad_inputs": bad, "faults": faults, "scale_out": scale,
        "crashes": sum(r["exit_code"] not in (2,) for r in bad),
        "files_written_outside_target": sum(bool(r["files_changed"]) for r in bad),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "reliability.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# Reliability (benchmarks/reliability.py)", "",
        f"Run {result['date']} on {result['machine']}: `pytest {' '.join(TESTS)}` -> "
        f"**{summary}** ({seconds:.0f} s).", "",
        f"Crashes (bad input not answered with exit 2): **{result['crashes']}**; "
        f"bad inputs that wrote files: **{result['files_written_outside_target']}**.", "",
        "## Faults injected", "", "| fault | observed |", "|---|---|",
    ]
    for r in faults:
        detail = ", ".join(f"{k}={v}" for k, v in r.items() if k not in ("kind", "fault"))
        lines.append(f"| {r['fault']} | {detail} |")
    lines += ["", "## Scale-out", "", "| storage | workers | killed | target | complete | "
              "failed (heartbeat) | distinct trial numbers |", "|---|---|---|---|---|---|---|"]
    for r in scale:
        lines.append(f"| {r['storage']} | {r['workers']} | {r['killed_workers']} | "
                     f"{r['target_trials']} | {r['complete']} | {r['failed']} | "
                     f"{r['distinct_numbers']} |")
    lines += ["", "## Bad inputs and how each was answered", "",
              "| case | exit | stderr (one line) |", "|---|---|---|"]
    for r in bad:
        err = r["stderr"].replace("|", "\\|")
        lines.append(f"| {r['case']} | {r['exit_code']} | {err[:160]} |")
    (RESULTS / "reliability.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
