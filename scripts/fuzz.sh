#!/usr/bin/env bash
# Builds libra's libFuzzer targets (fuzz/CMakeLists.txt, clang, ASan + UBSan) and runs each
# for a fixed time, then prints executions and coverage per target. Fails if any target
# crashes, leaks, runs out of memory or times out; the input that did it is kept in
# BUILD/artifacts/<target>/ and the log in BUILD/logs/<target>.log.
#
#   scripts/fuzz.sh [--seconds N | --runs N] [--jobs J] [--build-dir DIR] [--no-build] [--keep-going] [TARGET...]
#     --seconds N    run time per target (default 60)
#     --runs N       instead of a time, N executions per target from the seeds alone, with a
#                    fixed seed (-seed=1) and a 120 s limit per input: the same inputs on any
#                    machine, however loaded; `--runs 30000` is the CI smoke run
#     --jobs J       targets run at the same time (default 1; each fuzzer uses one core)
#     --build-dir D  where to build and keep the growing corpora (default ./build-fuzz)
#     --keep-going   libFuzzer's fork mode: record every finding and fuzz on until the time is
#                    up (for long runs; the script still fails if anything was found)
#     TARGET         checkpoint csv folder idx predictions preset record spec (default: all of fuzz/fuzz_*.c)
#
# New inputs go to BUILD/corpus/<target>/; the committed seeds in fuzz/corpus/<target>/ are
# only read. To replay one input: BUILD/fuzz_<target> FILE.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
seconds=60 runs=0 jobs=1 build="$src/build-fuzz" do_build=1 keep_going=0 targets=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --build-dir) build=$2; shift 2 ;;
    --no-build) do_build=0; shift ;;
    --keep-going) keep_going=1; shift ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[[ $seconds =~ ^[0-9]+$ && $seconds -ge 1 ]] || { echo "fuzz.sh: --seconds needs a positive integer" >&2; exit 2; }
[[ $runs =~ ^[0-9]+$ ]] || { echo "fuzz.sh: --runs needs a positive integer" >&2; exit 2; }
[[ $jobs =~ ^[0-9]+$ && $jobs -ge 1 ]] || { echo "fuzz.sh: --jobs needs a positive integer" >&2; exit 2; }
if [[ ${#targets[@]} -eq 0 ]]; then
  for f in "$src"/fuzz/fuzz_*.c; do n=$(basename "$f" .c); targets+=("${n#fuzz_}"); done
fi

if [[ $do_build == 1 ]]; then
  if ! command -v clang >/dev/null; then
    echo "fuzz.sh: clang not found (Debian: apt-get install -y clang libclang-rt-14-dev)" >&2
    exit 1
  fi
  cmake -S "$src/fuzz" -B "$build" -DCMAKE_C_COMPILER=clang >/dev/null
  cmake --build "$build" -j2 >/dev/null || cmake --build "$build" -j1
fi

# Runs one target; its exit status is the fuzzer's.
run_one() {
  local t=$1 exe="$build/fuzz_$1"
  local work="$build/corpus/$t" art="$build/artifacts/$t/" log="$build/logs/$t.log"
  mkdir -p "$work" "$art" "$build/logs"
  local extra=()
  [[ -f "$src/fuzz/dict/$t.dict" ]] && extra+=(-dict="$src/fuzz/dict/$t.dict")
  [[ $keep_going == 1 ]] && extra+=(-fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1)
  local budget=(-max_total_time="$seconds" -timeout=10)
  if [[ $runs -gt 0 ]]; then # a fixed, reproducible run: fresh corpus, fixed seed, no clock
    rm -rf "$work" && mkdir -p "$work"
    budget=(-runs="$runs" -seed=1 -timeout=120)
  fi
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ASAN_OPTIONS=detect_leaks=1 \
    "$exe" "$work" "$src/fuzz/corpus/$t" "${extra[@]}" "${budget[@]}" \
    -rss_limit_mb=2048 -detect_leaks=1 -print_final_stats=1 -artifact_prefix="$art" >"$log" 2>&1
}

# One summary line from a finished log.
summary() {
  local t=$1 rc=$2 log="$build/logs/$1.log" status=ok
  # what this run found: artifacts newer than its start (older ones are kept, not counted)
  local found
  found=$(find "$build/artifacts/$t" -type f -newer "$build/.fuzz-start" \( -name 'crash-*' -o -name 'leak-*' \
          -o -name 'oom-*' -o -name 'timeout-*' \) 2>/dev/null | sort)
  if [[ $rc != 0 || -n $found ]]; then
    status=FAILED
    grep -q "ERROR: LeakSanitizer" "$log" && status=LEAK
    grep -q "libFuzzer: timeout" "$log" && status=TIMEOUT
    grep -q "libFuzzer: out-of-memory\|malloc(.*) exceeds limit\|allocation-size-too-big" "$log" && status=OOM
    grep -q "ERROR: AddressSanitizer\|runtime error:\|deadly signal\|fuzz invariant failed" "$log" && status=CRASH
    [[ $keep_going == 1 && -n $found ]] && status="FOUND:$(wc -l <<<"$found")"
  fi
  local execs cov ft corp rate last
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | grep ' cov: ' | tail -1 || true)  # "#N: cov:" in fork mode
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\(\/[0-9]*[a-zA-Z]*\)\{0,1\}\).*/\1/p' <<<"$last")
  [[ -z $execs ]] && execs=$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$last")
  [[ -z $rate ]] && rate=$(sed -n 's/.* exec\/s:\{0,1\} \([0-9]*\).*/\1/p' <<<"$last")
  printf '%-11s %-8s execs %-10s exec/s %-7s cov %-6s ft %-6s corpus %s\n' "$t" "$status" "${execs:-?}" \
    "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}"
  if [[ $status != ok ]]; then
    echo "    log: $log"
    grep -m3 -E "ERROR:|runtime error:|fuzz invariant failed|SUMMARY:|Test unit written to" "$log" | sed 's/^/    /'
    [[ -n $found ]] && head -5 <<<"$found" | sed 's/^/    artifact: /'
    [[ -n $found && $(wc -l <<<"$found") -gt 5 ]] && echo "    ... $(($(wc -l <<<"$found") - 5)) more in $build/artifacts/$t/"
  fi
  [[ $status == ok ]]
}

if [[ $runs -gt 0 ]]; then what="$runs runs each, seed 1"; else what="${seconds}s each"; fi
echo "fuzzing ${targets[*]} for $what (jobs $jobs), build $build"
# The targets' scratch files: a crashing process cannot clean up after itself.
scratch=$(mktemp -d /dev/shm/libra-fuzz-run.XXXXXX 2>/dev/null || mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export LIBRA_FUZZ_SCRATCH=$scratch
mkdir -p "$build"
touch "$build/.fuzz-start"
sleep 1  # artifacts of this run are strictly newer than the stamp
declare -A rcs
pending=("${targets[@]}")
running=()
declare -A pids
while [[ ${#pending[@]} -gt 0 || ${#running[@]} -gt 0 ]]; do
  while [[ ${#pending[@]} -gt 0 && ${#running[@]} -lt $jobs ]]; do
    t=${pending[0]}
    pending=("${pending[@]:1}")
    [[ -x "$build/fuzz_$t" ]] || { echo "fuzz.sh: no fuzzer $build/fuzz_$t" >&2; exit 1; }
    run_one "$t" &
    pids[$t]=$!
    running+=("$t")
  done
  sleep 1
  still=()
  for t in "${running[@]}"; do
    if kill -0 "${pids[$t]}" 2>/dev/null; then still+=("$t"); else
      wait "${pids[$t]}" && rcs[$t]=0 || rcs[$t]=$?
    fi
  done
  running=("${still[@]}")
done

failed=0
for t in "${targets[@]}"; do summary "$t" "${rcs[$t]}" || failed=1; done
if [[ $failed != 0 ]]; then
  echo "fuzz.sh: a target failed; replay with $build/fuzz_TARGET ARTIFACT" >&2
  exit 1
fi
echo "fuzz.sh: all targets ran $what without a finding"
