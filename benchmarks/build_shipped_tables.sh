#!/usr/bin/env bash
# How the tables in latency_tables/ are built: onnxruntime CPU, 1 thread, fp32, opset 17, the
# default (relative) protocol: every layer timed as the wall-clock median in chunks of 128
# seeded-random keys with the anchor, stored as a fraction of it; the per-op network model
# fitted on networks timed with the anchor in 3 separate runs (three per model weight) and
# checked on 16 others. Run it from the repository root on a quiet machine (nothing else
# running: it measures the machine); each build resumes if killed. OUT (default
# latency_tables) is where the tables are written.
set -euo pipefail
BIN=${BIN:-.venv/bin}
OUT=${OUT:-latency_tables}
mkdir -p "$OUT"
COMMON=(--threads 1 --resume --no-progress)

# fmnist28, nasnet and nb201: the full spaces (1269, 72 and 13 layer keys), the default
# calibration (160 networks since 2026-12-07, 'shape' features; the shipped tables were built
# with the earlier default of 39, 63 and 39; 16 held out).
for space in fmnist28 nasnet nb201; do
  "$BIN/mobile-nas" lut build --space "$space" --out "$OUT/$space.json" "${COMMON[@]}"
done

# mobile224: restricted. First the layers of 8 networks and the two reference networks, with
# the default calibration (39 fitted, 16 held out; the build adds the layers of the random
# networks it needs); then, without refitting, the layers of 50 test networks (seed 2026) that
# no calibration saw, which benchmarks/latency_prediction.py checks on. The full space has
# 5251 keys (search adds missing layers on demand). A table of another protocol is not
# resumed: build into a fresh file.
mapfile -t ARCHS < <("$BIN/mobile-nas" space sample --space mobile224 --n 58 --seed 2026)
ARGS=()
for a in "${ARCHS[@]:0:8}" mobilenet_v2 mnasnet1_0; do ARGS+=(--arch "$a"); done
"$BIN/mobile-nas" lut build --space mobile224 --out "$OUT/mobile224.json" "${COMMON[@]}" \
  "${ARGS[@]}"
TEST=()
for a in "${ARCHS[@]:8}"; do TEST+=(--arch "$a"); done
"$BIN/mobile-nas" lut build --space mobile224 --out "$OUT/mobile224.json" "${COMMON[@]}" \
  --calibrate 0 "${TEST[@]}"
