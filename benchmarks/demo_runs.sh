#!/usr/bin/env bash
# N fresh-clone `make demo` runs in a row (issue 24's acceptance check): each run clones this
# repository's HEAD into a new temporary folder, installs its own .venv (make's first step)
# and runs `make demo` there; each demo's output is copied to OUT/demoI.log with the commit.
# Run it on a quiet machine (nothing else running: the demo times latency), e.g.
#     benchmarks/demo_runs.sh 5 benchmarks/results/demo_runs/$(date +%F)
# With CLONES=DIR the clones are made (and installed) in DIR/dI and kept: `PREPARE=1` only
# makes them (installs need no quiet machine), a later run with the same CLONES times the
# demos in them and removes them.
set -euo pipefail
N=${1:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${2:-$ROOT/benchmarks/results/demo_runs/$(date +%F)}
mkdir -p "$OUT"
clone() {  # DIR: a fresh clone of HEAD with its .venv installed
  git clone -q "$ROOT" "$1/mobile-nas"
  (cd "$1/mobile-nas" && make .venv/.installed > /dev/null 2>&1)
}
for i in $(seq 1 "$N"); do
  if [ -n "${CLONES:-}" ]; then
    d="$CLONES/d$i"
    [ -x "$d/mobile-nas/.venv/bin/python" ] || { rm -rf "$d"; mkdir -p "$d"; clone "$d"; }
    [ -n "${PREPARE:-}" ] && continue
  else
    d=$(mktemp -d)
    clone "$d"
  fi
  {
    echo "commit $(git -C "$d/mobile-nas" rev-parse --short HEAD); $(date -u +%FT%TZ); $(uptime)"
    (cd "$d/mobile-nas" && make demo 2>&1) || echo "make demo failed: exit $?"
    echo "done $(date -u +%FT%TZ); $(uptime)"
  } > "$OUT/demo$i.log"
  rm -rf "$d"
done
