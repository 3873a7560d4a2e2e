#!/usr/bin/env bash
# Valgrind memcheck over Check suites.
#   usage: scripts/valgrind.sh BUILD_DIR [test names...]
# Names are "tensor" or "test_tensor". Default: test_tensor, plus test_data and test_losses
# when the build has them. Configures BUILD_DIR if it has no CMakeCache.txt and builds the
# test binaries it needs. Exits non-zero on any memcheck error, definite or indirect leak,
# or failing test. CK_FORK=no keeps every test in the process valgrind watches.
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
if [ $# -gt 0 ]; then
    for t in "$@"; do tests+=("test_${t#test_}"); done
else
    tests=(test_tensor)
    for t in test_data test_losses; do
        if [ -f "$src/tests/$t.c" ] || [ -x "$build/tests/$t" ]; then tests+=("$t"); fi
    done
fi

for t in "${tests[@]}"; do
    cmake --build "$build" --target "$t" -j"${JOBS:-2}" >/dev/null
done

failed=()
for t in "${tests[@]}"; do
    echo "== valgrind $t"
    # run where ctest runs it, with the environment ctest gives it
    if ! (cd "$build/tests" && CK_FORK=no LIBRA_SOURCE_DIR="$src" LIBRA_BINARY_DIR="$build" \
        valgrind --quiet --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=1 \
        "./$t"); then
        failed+=("$t")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "valgrind.sh: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "valgrind.sh: ${#tests[@]} suite(s) clean: ${tests[*]}"
