#!/usr/bin/env bash
# libra-compare's shares of a study without MPI: --plan, --only I/N (two shares at once in one
# folder, then again for the grid's phase 2), --aggregate, and the flag errors; in a build
# without MPI, the refusal to run as one of several processes of an MPI launcher.
set -uo pipefail
bin=${LIBRA_BINARY_DIR:?}/libra-compare
src=${LIBRA_SOURCE_DIR:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
cd "$src"
# results.json apart from how the study ran: timings, the rank of each run, the ranks flag
strip() { grep -v -E '"(wall_seconds|images_per_sec|rank|ranks)"' "$1"; }

args=(--preset sample-folder --arch linear --steps 30 --seeds 2 --quiet
      --strategies "ce;focal:gamma=0|2;ce@oversample+posthoc")
"$bin" "${args[@]}" --jobs 1 --out "$tmp/one" >/dev/null 2>"$tmp/e" || { cat "$tmp/e"; fail "--jobs 1"; }

# --plan: phase 1's jobs and what phase 2 adds; nothing is left on disk
"$bin" "${args[@]}" --plan --only 2/2 --out "$tmp/plan" >"$tmp/plan.txt" 2>"$tmp/e" || { cat "$tmp/e"; fail "--plan"; }
grep -q "^phase 1: 6 jobs (3 strategies x 2 seeds" "$tmp/plan.txt" || { cat "$tmp/plan.txt"; fail "--plan: no phase 1"; }
grep -Eq "^ +3  1 +2  focal:gamma=2@shuffle .*focal:gamma=0\|2 \(point 2/2\)" "$tmp/plan.txt" ||
  { cat "$tmp/plan.txt"; fail "--plan: job 3 (share 2, grid point 2)"; }
grep -q "^phase 2: after phase 1, each grid's point .* seeds 2..2 (1 job" "$tmp/plan.txt" || fail "--plan: phase 2"
[[ ! -e "$tmp/plan" ]] || fail "--plan left $tmp/plan"

# share 1 alone: phase 1's jobs 0, 2, 4; the grid lacks job 3 (share 2's), so phase 2 waits
"$bin" "${args[@]}" --only 1/2 --out "$tmp/sh" >/dev/null 2>"$tmp/e" || { cat "$tmp/e"; fail "--only 1/2"; }
grep -q "share 1/2 ran its phase-1 jobs; phase 2 needs 1 grid record of the other shares" "$tmp/e" ||
  { cat "$tmp/e"; fail "share 1 does not say that phase 2 waits"; }
[[ ! -e "$tmp/sh/results.json" ]] || fail "a share wrote results.json"
[[ $(ls "$tmp/sh/runs" | grep -c 'json$') -eq 3 ]] || fail "share 1 ran: $(ls "$tmp/sh/runs")"
# --aggregate now: exit 1, naming the missing jobs
"$bin" "${args[@]}" --aggregate --out "$tmp/sh" >/dev/null 2>"$tmp/e"; [[ $? -eq 1 ]] || fail "--aggregate with jobs missing"
grep -q -- "--aggregate: 3 runs of the study have no record in $tmp/sh/runs: ce@shuffle-s2 (job 1), focal_gamma_2@shuffle-s1 (job 3), ce@oversample-s2 (job 5)" "$tmp/e" ||
  { cat "$tmp/e"; fail "--aggregate does not name the missing jobs"; }
"$bin" "${args[@]}" --only 2/2 --out "$tmp/sh" >/dev/null 2>"$tmp/e" || { cat "$tmp/e"; fail "--only 2/2"; }
grep -q "share 2/2 is done" "$tmp/e" || { cat "$tmp/e"; fail "share 2"; }
"$bin" "${args[@]}" --only 1/2 --resume --out "$tmp/sh" >/dev/null 2>"$tmp/e" || { cat "$tmp/e"; fail "share 1 again"; }
"$bin" "${args[@]}" --aggregate --out "$tmp/sh" >/dev/null 2>"$tmp/e" || { cat "$tmp/e"; fail "--aggregate"; }
diff <(strip "$tmp/one/results.json") <(strip "$tmp/sh/results.json") >/dev/null || fail "the shares' results differ from --jobs 1"

# two shares at once into one folder (records, curves and settings.txt written side by side),
# each run again with --resume for what the grid's phase 2 still needs, then --aggregate
"$bin" "${args[@]}" --only 1/2 --out "$tmp/par" >/dev/null 2>"$tmp/s1" & p1=$!
"$bin" "${args[@]}" --only 2/2 --out "$tmp/par" >/dev/null 2>"$tmp/s2" & p2=$!
wait $p1 || { cat "$tmp/s1"; fail "--only 1/2 beside 2/2"; }
wait $p2 || { cat "$tmp/s2"; fail "--only 2/2 beside 1/2"; }
[[ -z "$(find "$tmp/par" -name '*.tmp*')" ]] || fail "temporary files left: $(find "$tmp/par" -name '*.tmp*')"
for i in 1 2; do
  "$bin" "${args[@]}" --only $i/2 --resume --out "$tmp/par" >/dev/null 2>"$tmp/e" || { cat "$tmp/e"; fail "share $i again"; }
done
"$bin" "${args[@]}" --aggregate --out "$tmp/par" >/dev/null 2>"$tmp/e" || { cat "$tmp/e"; fail "--aggregate (side by side)"; }
diff <(strip "$tmp/one/results.json") <(strip "$tmp/par/results.json") >/dev/null || fail "side-by-side shares differ from --jobs 1"
grep -q '"ranks": "1"' "$tmp/sh/results.json" || fail "results.json lacks the ranks flag"
! grep -q '"rank":' "$tmp/sh/results.json" || fail "a run without MPI records a rank"

# six shares started at once into a folder three levels deep that none of them finds: each
# one makes the levels it lacks, and one that another made in between is not an error (CI
# once failed here with "cannot create '.../par': File exists")
for round in 1 2 3; do
  pids=()
  for i in 1 2 3 4 5 6; do
    "$bin" "${args[@]}" --only $i/6 --out "$tmp/race$round/a/b" >/dev/null 2>"$tmp/r$i" & pids+=($!)
  done
  for i in 1 2 3 4 5 6; do
    wait ${pids[$((i - 1))]} || { cat "$tmp/r$i"; fail "round $round: --only $i/6 beside the others"; }
  done
done

# flag errors: exit 2 naming the flag, nothing loaded
for bad in "--only 0/2" "--only 3/2" "--only 2" "--only x/y" "--only 1/2 --force" "--aggregate --force" \
           "--aggregate --only 1/2"; do
  # shellcheck disable=SC2086
  "$bin" --preset sample-folder $bad --out "$tmp/x" >/dev/null 2>"$tmp/e"; rc=$?
  [[ $rc -eq 2 ]] || fail "$bad: exit $rc"
  grep -q -- "${bad%% *}" "$tmp/e" || { cat "$tmp/e"; fail "$bad: flag not named"; }
done
[[ ! -e "$tmp/x" ]] || fail "a refused command left $tmp/x"

# a build without MPI started as one of 3 processes of a launcher refuses (exit 2), once
if [[ ${LIBRA_HAVE_MPI:-0} == 0 ]]; then
  OMPI_COMM_WORLD_SIZE=3 OMPI_COMM_WORLD_RANK=0 "$bin" "${args[@]}" --out "$tmp/mpi" >/dev/null 2>"$tmp/e"; rc=$?
  [[ $rc -eq 2 ]] || fail "without MPI under a launcher: exit $rc"
  grep -q "one of 3 processes started by an MPI launcher" "$tmp/e" || { cat "$tmp/e"; fail "no message"; }
  OMPI_COMM_WORLD_SIZE=3 OMPI_COMM_WORLD_RANK=1 "$bin" "${args[@]}" --out "$tmp/mpi" >/dev/null 2>"$tmp/e"; rc=$?
  [[ $rc -eq 2 && ! -s "$tmp/e" ]] || fail "rank 1 without MPI: exit $rc, '$(cat "$tmp/e")'"
  [[ ! -e "$tmp/mpi" ]] || fail "the refusal left $tmp/mpi"
  PMI_SIZE=1 "$bin" "${args[@]}" --steps 2 --out "$tmp/np1" >/dev/null 2>"$tmp/e" || { cat "$tmp/e"; fail "one rank of one"; }
fi
echo "shares: ok"
