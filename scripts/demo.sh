#!/usr/bin/env bash
# The main job: installs what is missing, builds libra, and runs the imbalance study demo
# (libra-compare --quick on Fashion-MNIST-LT, rho = 100). Extra arguments go to libra-compare.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DLIBRA_TESTS=OFF >/dev/null
echo "libra: building (build/release) ..." >&2
cmake --build build/release -j"$(nproc)" >build/release/build.log 2>&1 || { cat build/release/build.log; exit 1; }
out=${LIBRA_DEMO_OUT:-results/quick}
build/release/libra-compare --preset fmnist-lt100 --quick --out "$out" "$@"
echo
echo "report: $(realpath "$out")/report.html"
