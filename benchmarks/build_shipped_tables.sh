#!/usr/bin/env bash
# How the tables in latency_tables/ are built: onnxruntime CPU, 1 thread, fp32, opset 17, the
# default protocol (every layer timed as the wall-clock median, interleaved), each calibration
# fitted on end-to-end measured networks and checked on others. Run it from the repository
# root on a quiet machine (nothing else running: it measures the machine); each build resumes
# if killed. OUT (default latency_tables) is where the tables are written.
set -euo pipefail
BIN=${BIN:-.venv/bin}
OUT=${OUT:-latency_tables}
mkdir -p "$OUT"
COMMON=(--threads 1 --resume --no-progress)

# fmnist28: the full space (1269 layer keys), calibrated on 12 random networks, checked on 12.
# (The shipped fmnist28.json is still the legacy 2026-11-28 build, --clock cpu --statistic min:
# this build, run on 2026-11-30, missed the bar on this VM; see latency_tables/README.md.)
"$BIN/mobile-nas" lut build --space fmnist28 --out "$OUT/fmnist28.json" "${COMMON[@]}" \
  --calibrate 12 --held-out 12

# nasnet and nb201: the full cell spaces (72 and 13 layer keys), calibrated on 12, checked on 12.
for space in nasnet nb201; do
  "$BIN/mobile-nas" lut build --space "$space" --out "$OUT/$space.json" "${COMMON[@]}" \
    --calibrate 12 --held-out 12
done

# mobile224: restricted to 8 calibration networks, the two reference networks and 50 test
# networks (seed 2026); fitted on the first 8, checked on the references and the next 4; the
# full space has 5251 keys (search adds missing layers on demand).
mapfile -t ARCHS < <("$BIN/mobile-nas" space sample --space mobile224 --n 58 --seed 2026)
ARGS=()
for a in "${ARCHS[@]:0:8}" mobilenet_v2 mnasnet1_0 "${ARCHS[@]:8}"; do ARGS+=(--arch "$a"); done
"$BIN/mobile-nas" lut build --space mobile224 --out "$OUT/mobile224.json" "${COMMON[@]}" \
  --calibrate 8 --held-out 6 "${ARGS[@]}"
