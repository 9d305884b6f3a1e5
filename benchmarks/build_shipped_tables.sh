#!/usr/bin/env bash
# How the tables in latency_tables/ were built (onnxruntime CPU, 1 thread, fp32, opset 17).
# The machine was a shared 2-core VM, hence --clock cpu --statistic min (see
# latency_tables/README.md). Run from the repository root; each build resumes if killed.
set -euo pipefail
BIN=${BIN:-.venv/bin}
COMMON=(--threads 1 --clock cpu --statistic min)

# fmnist28: the full space (1269 layer keys), calibrated on 12 random networks.
"$BIN/mobile-nas" lut build --space fmnist28 --out latency_tables/fmnist28.json \
  "${COMMON[@]}" --calibrate 12 --resume

# mobile224: restricted to 8 calibration networks, the two reference networks and 50 test
# networks (seed 2026); the full space has 5251 keys.
mapfile -t ARCHS < <("$BIN/mobile-nas" space sample --space mobile224 --n 58 --seed 2026)
ARGS=()
for a in "${ARCHS[@]:0:8}" mobilenet_v2 mnasnet1_0 "${ARCHS[@]:8}"; do ARGS+=(--arch "$a"); done
"$BIN/mobile-nas" lut build --space mobile224 --out latency_tables/mobile224.json \
  "${COMMON[@]}" --calibrate 8 --resume "${ARGS[@]}"

# nasnet and nb201: the full cell spaces (72 and 13 layer keys), calibrated on 12 networks.
for space in nasnet nb201; do
  "$BIN/mobile-nas" lut build --space "$space" --out "latency_tables/$space.json" \
    "${COMMON[@]}" --calibrate 12 --resume
done
