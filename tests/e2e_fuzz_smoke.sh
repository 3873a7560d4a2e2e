#!/usr/bin/env bash
# CI smoke run of the fuzzers: scripts/fuzz.sh --runs 30000 (every target, ASan + UBSan,
# leaks detected) in a build folder inside this ctest build. A fixed number of executions
# from the committed seeds with a fixed seed, so it tries the same inputs on every machine
# and its verdict does not depend on how loaded the machine is (a time budget did: on a
# busy machine it explored less, and a 10 s per-input limit could fire). Fails on any
# crash, leak, OOM or an input taking over 120 s; the log says which input did it.
#
# The fuzzers carry their own sanitizers, so this belongs to the release ctest pass only: in
# a LIBRA_SANITIZE build it exits early (ctest shows it as passed, with the note below).
set -euo pipefail
src=${LIBRA_SOURCE_DIR:?} bin=${LIBRA_BINARY_DIR:?}
if grep -q '^LIBRA_SANITIZE:BOOL=ON' "$bin/CMakeCache.txt" 2>/dev/null; then
  echo "fuzz smoke: not run in a sanitizer build (the release pass runs it)"
  exit 0
fi
command -v clang >/dev/null || { echo "fuzz smoke: clang is needed (apt-get install -y clang libclang-rt-14-dev)"; exit 1; }
jobs=1
[[ $(nproc) -ge 4 ]] && jobs=2
"$src/scripts/fuzz.sh" --runs 30000 --jobs "$jobs" --build-dir "$bin/fuzz-smoke"
