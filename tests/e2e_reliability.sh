#!/usr/bin/env bash
# Reliability end to end, on the bundled sample folder (about a minute on 2 busy cores):
#   1. determinism: libra-train twice (1 and 2 threads) and libra-compare with --jobs 2, 2
#      again and 1 give the same metrics;
#   2. libra-compare killed with SIGKILL (the whole process group) at 20 moments, then
#      --resume: the same results as the uninterrupted study (grids and post-hoc included);
#   3. libra-train --save-every 1 killed with SIGKILL inside a checkpoint write, at each stage
#      of it: the checkpoint always loads, temporary files do not pile up;
#   4. unwritable --out / --save refused before training; a full disk (RLIMIT_FSIZE)
#      fails the write naming the file, and the previous file stays whole;
#   5. a run that blows up (NaN/Inf) stops with exit 1 naming the step and the layer, and
#      the checkpoint of the step before is in place: resuming it fails at the same step.
# See docs/reliability.md.
set -uo pipefail
bin=${LIBRA_BINARY_DIR:?}
: "${LIBRA_SOURCE_DIR:?}"
train=$bin/libra-train eval=$bin/libra-evaluate compare=$bin/libra-compare
tmp=$(mktemp -d)
bg=""
cleanup() {
  [[ -n "$bg" ]] && kill -9 -- "-$bg" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "e2e_reliability: FAIL: $*" >&2; exit 1; }
# run from an empty directory: presets are found through the source tree
cd "$tmp" || exit 1

tiny=(--preset sample-folder --arch smallcnn:c1=8,c2=8,fc=16)
# timings and the job count are the only fields allowed to differ between equal runs
strip_times() { grep -v -E '"(wall_seconds|train_seconds|images_per_second|images_per_sec|jobs)"' "$1"; }
count_temps() { find "$1" -maxdepth 1 -name '*.tmp*' | wc -l; }
steps_of() { "$eval" --model "$1" 2>"$tmp/eval.err" | sed -n 's/^  "steps": \([0-9]*\),$/\1/p'; }

echo "-- 1. determinism: libra-train"
for th in 1 2; do
  for k in a b; do
    "$train" "${tiny[@]}" --steps 60 --seed 3 --threads $th --out "d$th$k" --quiet >/dev/null 2>"d.err" ||
      fail "libra-train --threads $th: $(cat d.err)"
  done
  diff <(strip_times "d${th}a/metrics.json") <(strip_times "d${th}b/metrics.json") >/dev/null ||
    fail "two libra-train runs with --threads $th differ: $(diff "d${th}a/metrics.json" "d${th}b/metrics.json")"
  cmp -s "d${th}a/loss.csv" "d${th}b/loss.csv" || fail "two libra-train runs with --threads $th: loss.csv differs"
done
grep -q '"balanced_accuracy"' d1a/metrics.json || fail "metrics.json has no metrics to compare"

echo "-- 1. determinism: libra-compare --jobs 2, 2, 1"
study=("${tiny[@]}" --quick --strategies "ce;focal:gamma=2")
for run in ref:2 again:2 j1:1; do
  "$compare" "${study[@]}" --jobs "${run#*:}" --out "${run%:*}" --quiet >/dev/null 2>"c.err" ||
    fail "libra-compare --jobs ${run#*:}: $(cat c.err)"
done
[[ $(grep -c '"strategy"' ref/results.json) -ge 4 ]] || fail "results.json lacks the 2 x 2 runs"
diff <(strip_times ref/results.json) <(strip_times again/results.json) >/dev/null ||
  fail "two studies with --jobs 2 differ: $(diff ref/results.json again/results.json | head -20)"
diff <(strip_times ref/results.json) <(strip_times j1/results.json) >/dev/null ||
  fail "--jobs 1 and --jobs 2 differ: $(diff ref/results.json j1/results.json | head -20)"

echo "-- 2. libra-compare: SIGKILL of the whole study at 20 moments, then --resume"
# grids (phase 1, the choice, phase 2) and post-hoc variants included. Whenever a kill lands
# (loading, training, a record's write, the final files), what is stored is whole: the last
# --resume must give the uninterrupted study's results. The moments come from a fixed seed,
# but the test does not depend on where they land.
gstudy=("${tiny[@]}" --quick --strategies "ce+posthoc;focal:gamma=0|2")
"$compare" "${gstudy[@]}" --jobs 2 --out gref --quiet >/dev/null 2>"g.err" || fail "the reference study: $(cat g.err)"
RANDOM=4242
records() { find killed/runs -name '*-s[0-9]*.json' 2>/dev/null | wc -l; }
for k in $(seq 1 20); do
  # setsid: the study and its forked runs get a process group of their own to kill at once
  setsid "$compare" "${gstudy[@]}" --jobs 2 --out killed --resume --quiet >/dev/null 2>&1 &
  bg=$!
  # each round waits for one more stored record (or the study's end), then kills a moment
  # later: every kill lands after some progress, wherever that is on this machine
  have=$(records)
  for _ in $(seq 1 30000); do
    [[ $(records) -gt $have || -e killed/results.json ]] && break
    kill -0 "$bg" 2>/dev/null || break
    sleep 0.01
  done
  sleep "0.$(printf '%03d' $((RANDOM % 400)))"
  kill -9 -- "-$bg" 2>/dev/null
  { wait "$bg"; } 2>/dev/null
  bg=""
  temps=$(find killed -name '*.tmp.*' 2>/dev/null | wc -l)
  ((temps <= 3)) || fail "kill $k: $temps temporary files pile up: $(find killed -name '*.tmp.*')"
done
stored=$(records)
"$compare" "${gstudy[@]}" --jobs 2 --out killed --resume >/dev/null 2>"resume.log" ||
  fail "--resume after 20 kills failed: $(cat resume.log)"
diff <(strip_times gref/results.json) <(strip_times killed/results.json) >/dev/null ||
  fail "the resumed study differs from the uninterrupted one: $(diff gref/results.json killed/results.json | head -20)"
echo "   20 kills ($stored of 5 records stored before the last --resume); resumed to the same results"

echo "-- 3. libra-train: SIGKILL inside a checkpoint write, at each of its stages"
# LIBRA_TEST_PAUSE_WRITE makes the writer stop at a stage of the atomic write and wait there
# (docs/reliability.md), so every kill lands inside a write: none depends on timing.
mkdir ck
F=ck/model.ckpt
"$train" "${tiny[@]}" --steps 1 --save "$F" --quiet >/dev/null 2>k.err || fail "first checkpoint: $(cat k.err)"
kills=0
for stage in open half written synced renamed; do
  for round in 1 2; do
    before=$(steps_of "$F")
    LIBRA_TEST_PAUSE_WRITE="$stage:model.ckpt" "$train" --resume "$F" --steps 1000000 --save "$F" --save-every 1 \
      --quiet >/dev/null 2>k.err &
    pid=$!
    for _ in $(seq 1 12000); do [[ -e "$F.paused" ]] || ! kill -0 "$pid" 2>/dev/null || sleep 0.01; [[ -e "$F.paused" ]] && break; done
    [[ -e "$F.paused" ]] || fail "stage $stage: the writer never reached it: $(cat k.err)"
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    kills=$((kills + 1))
    rm -f "$F.paused"
    step=$(steps_of "$F")
    [[ -n "$step" ]] || fail "kill inside '$stage': the checkpoint does not load: $(cat "$tmp/eval.err")"
    want=$before
    [[ $stage == renamed ]] && want=$((before + 1))
    [[ $step -eq $want ]] || fail "kill inside '$stage': the checkpoint is of step $step, expected $want"
    temps=$(count_temps ck)
    ((temps <= 1)) || fail "kill inside '$stage': $temps temporary files pile up: $(ls ck)"
  done
done
# the next save removes the dead writer's temporary file
last=$(steps_of "$F")
"$train" --resume "$F" --steps $((last + 1)) --save "$F" --quiet >/dev/null 2>k.err || fail "resume after kills: $(cat k.err)"
[[ $(count_temps ck) -eq 0 ]] || fail "a temporary file survived the next save: $(ls ck)"
[[ $(steps_of "$F") -eq $((last + 1)) ]] || fail "the final checkpoint is not at step $((last + 1))"
echo "   $kills kills, each inside a write: the checkpoint always loaded, old before the rename and new after it"

echo "-- 4. outputs that cannot be written"
# expect_early FLAG-TEXT cmd...: exit 1, the message names the flag, and no training ran
# (the budget is a million steps: only a check before training returns in time)
expect_early() {
  local pat=$1; shift
  timeout 60 "$@" >out.txt 2>err.txt
  local rc=$?
  [[ $rc -eq 1 ]] || fail "$* exited $rc, expected 1: $(cat err.txt)"
  grep -qF -- "$pat" err.txt || fail "$*: the message lacks '$pat': $(cat err.txt)"
  grep -q "test accuracy" out.txt && fail "$*: trained before failing"
  return 0
}
: >afile
expect_early "--out afile/out" "$train" "${tiny[@]}" --steps 1000000 --out afile/out --quiet
expect_early "--save nodir/m.ckpt" "$train" "${tiny[@]}" --steps 1000000 --save nodir/m.ckpt --quiet
mkdir adir
expect_early "is a directory" "$train" "${tiny[@]}" --steps 1000000 --save adir --quiet
if [[ $(id -u) -ne 0 ]]; then # root writes anywhere
  mkdir ro && chmod a-w ro
  expect_early "--out ro/out" "$train" "${tiny[@]}" --steps 1000000 --out ro/out --quiet
  chmod u+w ro
fi

echo "-- 4. a full disk (RLIMIT_FSIZE, SIGXFSZ ignored: writes fail with EFBIG)"
# full_disk KBYTES cmd...: runs cmd with files limited to KBYTES
full_disk() { (trap '' XFSZ; ulimit -f "$1" && shift && exec "$@"); }
"$train" "${tiny[@]}" --steps 5 --save fd.ckpt --out fdout --quiet >/dev/null 2>fd.err || fail "$(cat fd.err)"
cp fd.ckpt fd.before
cp fdout/metrics.json metrics.before
# the checkpoint (110 kB) does not fit in 50 kB
full_disk 50 "$train" "${tiny[@]}" --steps 10 --save fd.ckpt --quiet >fd.out 2>fd.err
rc=$?
[[ $rc -eq 1 ]] || fail "checkpoint on a full disk: exit $rc, expected 1: $(cat fd.err)"
grep -q "fd.ckpt: write failed: File too large" fd.err || fail "the message does not name the checkpoint: $(cat fd.err)"
cmp -s fd.ckpt fd.before || fail "the previous checkpoint was changed"
[[ $(count_temps .) -eq 0 ]] || fail "a temporary file was left: $(ls)"
[[ $(steps_of fd.ckpt) -eq 5 ]] || fail "the previous checkpoint does not load"
# metrics.json (1.4 kB) does not fit in 1 kB; the write test before training does
full_disk 1 "$train" "${tiny[@]}" --steps 10 --out fdout --quiet >fd.out 2>fd.err
rc=$?
[[ $rc -eq 1 ]] || fail "metrics.json on a full disk: exit $rc, expected 1: $(cat fd.err)"
grep -q "fdout/metrics.json: write failed: File too large" fd.err || fail "the message does not name metrics.json: $(cat fd.err)"
cmp -s fdout/metrics.json metrics.before || fail "the previous metrics.json was changed"
[[ $(count_temps fdout) -eq 0 ]] || fail "a temporary file was left in --out: $(ls -a fdout)"

echo "-- 5. NaN/Inf stops the run at the step it appears"
"$train" --help | grep -- "--no-nan-check" >/dev/null || fail "--help does not list --no-nan-check"
# plain SGD at lr 100 on the MLP overflows within a few dozen steps (the step depends on
# the numerics; the test only needs it to happen after the first checkpoint)
blowup=(--preset sample-folder --arch mlp --optimizer sgd --lr 100 --steps 200 --quiet)
"$train" "${blowup[@]}" --save nan.ckpt --save-every 1 >nan.out 2>nan.err
rc=$?
[[ $rc -eq 1 ]] || fail "a blow-up exited $rc, expected 1: $(cat nan.err)"
n=$(sed -n 's/^libra-train: step \([0-9]*\): .*non-finite.*/\1/p' nan.err | head -1)
[[ -n "$n" && $n -gt 1 ]] || fail "the message names no step and non-finite value: $(cat nan.err)"
grep -q "layer [a-z0-9_]*" nan.err || fail "the message names no layer: $(cat nan.err)"
grep -q "the last checkpoint written, nan.ckpt, is of step $((n - 1))" nan.err ||
  fail "the last good checkpoint (step $((n - 1))) is not reported: $(cat nan.err)"
# the kept checkpoint loads and is the state just before the failing step: resuming it
# (bit-exact) fails again at step n with the same message. (Its parameters are finite, but
# a model this far diverged overflows in evaluation too, so libra-evaluate would refuse.)
"$train" --resume nan.ckpt --steps 200 --quiet >/dev/null 2>resume.err
rc=$?
[[ $rc -eq 1 ]] || fail "resuming the kept checkpoint: exit $rc: $(cat resume.err)"
[[ "$(head -1 resume.err)" == "$(head -1 nan.err)" ]] ||
  fail "resuming the kept checkpoint does not fail at step $n: $(head -1 resume.err) vs $(head -1 nan.err)"
# without the scan the loss check still stops it, at the same step or later
"$train" "${blowup[@]}" --no-nan-check >/dev/null 2>nan2.err
rc=$?
m=$(sed -n 's/^libra-train: step \([0-9]*\): .*/\1/p' nan2.err | head -1)
[[ $rc -eq 1 && -n "$m" ]] && ((m >= n)) || fail "--no-nan-check: exit $rc: $(cat nan2.err)"
echo "   stopped at step $n: $(head -1 nan.err | cut -c1-150)"
echo "e2e_reliability: ok"
