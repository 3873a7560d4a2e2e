#!/usr/bin/env bash
# Valgrind memcheck over Check suites and one short training run.
#   usage: scripts/valgrind.sh BUILD_DIR [test names...]
# Names are "tensor" or "test_tensor". Default: test_tensor, plus test_data, test_csv, test_losses,
# test_reliability, test_synth, test_mix, test_stage, test_shards and test_dense_study when the build has them, and then two
# short libra-train runs (20 steps of a narrow CNN on the bundled sample folder: one with --save
# and --out, started from an empty directory; one with SMOTE images and Remix) unless test
# names are given. Configures BUILD_DIR if it has no CMakeCache.txt
# and builds the binaries it needs. Exits non-zero on any memcheck error, definite or
# indirect leak, or failing test. CK_FORK=no keeps every test in the process valgrind watches.
# About a minute in all on 2 cores (a full-width CNN under valgrind would take many minutes).
set -euo pipefail

if [ $# -lt 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
    echo "usage: $0 BUILD_DIR [test names...]" >&2
    exit 2
fi
src=$(cd "$(dirname "$0")/.." && pwd)
build=$1
shift
command -v valgrind >/dev/null || { echo "valgrind.sh: valgrind is not installed" >&2; exit 2; }

if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
# valgrind cannot run AddressSanitizer binaries
if grep -q '^LIBRA_SANITIZE:BOOL=ON' "$build/CMakeCache.txt"; then
    echo "valgrind.sh: $build is a sanitizer build (LIBRA_SANITIZE=ON); use a plain build dir" >&2
    exit 2
fi
build=$(cd "$build" && pwd)

tests=()
train_run=0
if [ $# -gt 0 ]; then
    for t in "$@"; do tests+=("test_${t#test_}"); done
else
    tests=(test_tensor)
    train_run=1
    for t in test_data test_csv test_losses test_reliability test_synth test_mix test_stage test_shards test_dense_study; do
        if [ -f "$src/tests/$t.c" ] || [ -x "$build/tests/$t" ]; then tests+=("$t"); fi
    done
fi

for t in "${tests[@]}"; do
    cmake --build "$build" --target "$t" -j"${JOBS:-2}" >/dev/null
done
if [ $train_run -eq 1 ]; then
    cmake --build "$build" --target libra-train -j"${JOBS:-2}" >/dev/null
fi
# The programs restart themselves with OPENBLAS_NUM_THREADS=1 when it is not set (see
# examples/common/cli.c); valgrind does not follow that exec, so it is set here and the
# process valgrind starts is the one that runs.
export OPENBLAS_NUM_THREADS=1
vg=(valgrind --quiet --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=1)

failed=()
for t in "${tests[@]}"; do
    echo "== valgrind $t"
    # run where ctest runs it, with the environment ctest gives it
    if ! (cd "$build/tests" && CK_FORK=no LIBRA_SOURCE_DIR="$src" LIBRA_BINARY_DIR="$build" "${vg[@]}" "./$t"); then
        failed+=("$t")
    fi
done

if [ $train_run -eq 1 ]; then
    echo "== valgrind libra-train (20 steps, sample folder)"
    work=$(mktemp -d)
    # an empty cwd: the preset must be found through the source tree, not ./datasets
    if (cd "$work" && "${vg[@]}" "$build/libra-train" --preset sample-folder --arch smallcnn:c1=8,c2=8,fc=16 \
        --batch 16 --steps 20 --save-every 10 --save model.ckpt --out out --quiet) &&
        [ -s "$work/model.ckpt" ] && [ -s "$work/out/metrics.json" ]; then
        tests+=(libra-train)
    else
        failed+=(libra-train)
    fi
    echo "== valgrind libra-train (20 steps, SMOTE images and Remix)"
    if (cd "$work" && "${vg[@]}" "$build/libra-train" --preset sample-folder --arch smallcnn:c1=8,c2=8,fc=16 \
        --batch 16 --steps 20 --sampler smote --mix remix --quiet); then
        tests+=(libra-train-smote-remix)
    else
        failed+=(libra-train-smote-remix)
    fi
    rm -rf "$work"
fi

if [ ${#failed[@]} -gt 0 ]; then
    echo "valgrind.sh: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "valgrind.sh: ${#tests[@]} program(s) clean: ${tests[*]}"
