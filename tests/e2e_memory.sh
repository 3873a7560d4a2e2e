#!/usr/bin/env bash
# Under an address-space limit (ulimit -v) from 60 MB to 400 MB every program ends within
# seconds: exit 0, or exit 1 with a message naming memory; never a signal, never a hang
# (v1 hung forever in OpenBLAS's allocator). Half the runs start without OPENBLAS_NUM_THREADS,
# so the programs' restart that keeps OpenBLAS's own thread pool from starting is exercised.
# Not in sanitizer builds: AddressSanitizer reserves terabytes of address space at start.
set -uo pipefail
bin=${LIBRA_BINARY_DIR:?} src=${LIBRA_SOURCE_DIR:?}
if grep -q '^LIBRA_SANITIZE:BOOL=ON' "$bin/CMakeCache.txt" 2>/dev/null; then
  echo "e2e_memory: not run in a sanitizer build (the release pass runs it)"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "e2e_memory: FAIL: $*" >&2; exit 1; }
cd "$tmp" || exit 1
"$bin/libra-train" --preset sample-folder --arch smallcnn:c1=8,c2=8,fc=16 --steps 3 --save m.ckpt --quiet >/dev/null 2>&1 ||
  fail "could not make a checkpoint"
tiny=(--preset sample-folder --arch smallcnn:c1=8,c2=8,fc=16)
runs=0 ok=0 refused=0
# run LIMIT_MB NAME cmd...: the limit set in a subshell, 60 s at most (a hang is a failure)
run() {
  local mb=$1 name=$2; shift 2
  local unset=()
  ((runs % 2)) && unset=(-u OPENBLAS_NUM_THREADS)
  (ulimit -v $((mb * 1024)); exec timeout -k 5 60 env "${unset[@]}" "$@") >out.txt 2>err.txt
  local rc=$?
  runs=$((runs + 1))
  case $rc in
  0) ok=$((ok + 1)) ;;
  1) grep -qi "memory" err.txt || fail "$name at $mb MB: exit 1 without naming memory: $(tail -2 err.txt)"
     refused=$((refused + 1)) ;;
  124 | 137) fail "$name at $mb MB: still running after 60 s (a hang): $(tail -2 err.txt)" ;;
  *) fail "$name at $mb MB: exit $rc (a signal or a crash): $(tail -2 err.txt)" ;;
  esac
}
for mb in 60 80 100 150 200 250 300 350 400; do
  run "$mb" libra-train "$bin/libra-train" --steps 10 --quiet
  run "$mb" "libra-train --threads 2" "$bin/libra-train" "${tiny[@]}" --steps 10 --threads 2 --save s.ckpt --quiet
  run "$mb" libra-compare "$bin/libra-compare" "${tiny[@]}" --steps 10 --seeds 1 --strategies "ce;ce@oversample" \
    --jobs 2 --out "study$mb" --quiet
  run "$mb" libra-evaluate "$bin/libra-evaluate" --model m.ckpt
  run "$mb" libra-bench "$bin/libra-bench" --batch 32 --threads 1,2 --steps 2 --repeats 1 --warmup 1
  run "$mb" libra-losses "$bin/libra-losses"
  run "$mb" libra-custom-loss "$bin/libra-custom-loss"
done
[[ $ok -gt 0 && $refused -gt 0 ]] || fail "expected some runs to succeed and some to be refused ($ok ok, $refused refused)"
echo "e2e_memory: ok ($runs runs: $ok succeeded, $refused refused naming memory, none hung or crashed)"
