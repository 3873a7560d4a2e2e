#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds with warnings as errors, runs every
# Check suite and end-to-end test under ctest (including a 20 s smoke run of each fuzzer, and
# the tests under mpirun when Open MPI is installed), then the unit suites and the programs'
# tests of a build without MPI, then again in an ASan+UBSan build, then valgrind memcheck over the tensor, data, loss and
# reliability suites and one short training run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --test
jobs=$(nproc)
passed() { echo "-- $1 passed in $SECONDS s"; SECONDS=0; }
SECONDS=0

echo "== release build (-Werror) =="
cmake -S . -B build/test -DCMAKE_BUILD_TYPE=Release -DLIBRA_WERROR=ON >/dev/null
cmake --build build/test -j"$jobs"
ctest --test-dir build/test --output-on-failure -j"$jobs"
passed "release pass"

echo "== build without MPI (LIBRA_MPI=OFF): every program builds and runs; unit suites and the programs' tests =="
cmake -S . -B build/nompi -DCMAKE_BUILD_TYPE=Release -DLIBRA_WERROR=ON -DLIBRA_MPI=OFF >/dev/null
cmake --build build/nompi -j"$jobs"
ctest --test-dir build/nompi --output-on-failure -j"$jobs" -L unit
ctest --test-dir build/nompi --output-on-failure -j"$jobs" -R "e2e_(shares|contract|compare|symbols|install)"
passed "no-MPI pass"

echo "== sanitizer build (address + undefined); install and fuzz smoke run in the release pass only =="
cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLIBRA_SANITIZE=ON -DLIBRA_WERROR=ON >/dev/null
cmake --build build/asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build/asan --output-on-failure -j"$jobs" -E "fuzz_smoke|e2e_install"
passed "sanitizer pass"

echo "== valgrind memcheck =="
scripts/valgrind.sh build/test
passed "valgrind pass"
