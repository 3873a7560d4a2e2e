#!/usr/bin/env bash
# Reliability end to end, on the bundled sample folder (about a minute on 2 busy cores):
#   1. determinism: libra-train twice (1 and 2 threads) and libra-compare with --jobs 2, 2
#      again and 1 give the same metrics;
#   2. libra-compare killed with SIGKILL (the whole process group) mid-study, then
#      --resume: the same results as the uninterrupted study;
#   3. libra-train --save-every 1 killed with SIGKILL at random moments, 24 times: the
#      checkpoint always loads, its step never goes back, temporary files do not pile up;
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

echo "-- 2. libra-compare: SIGKILL mid-study, then --resume"
# setsid: the study and its forked runs get a process group of their own to kill at once
setsid "$compare" "${study[@]}" --jobs 2 --out killed --quiet >/dev/null 2>&1 &
bg=$!
for _ in $(seq 1 1500); do # up to 30 s: wait for the first finished run
  compgen -G "killed/runs/*-s[0-9]*.json" >/dev/null && break
  sleep 0.02
done
kill -9 -- "-$bg" || fail "could not kill the study's process group"
{ wait "$bg"; } 2>/dev/null
bg=""
[[ ! -e killed/results.json ]] || fail "the study finished before the kill; the test needs a longer study"
done_before=$(compgen -G "killed/runs/*-s[0-9]*.json" | wc -l)
[[ $done_before -ge 1 && $done_before -lt 4 ]] || fail "$done_before runs finished before the kill, expected 1..3"
"$compare" "${study[@]}" --jobs 2 --out killed --resume >/dev/null 2>"resume.log" ||
  fail "--resume after SIGKILL failed: $(cat resume.log)"
grep -q -- "--resume: $done_before finished runs reused" resume.log || fail "resume did not reuse: $(cat resume.log)"
diff <(strip_times ref/results.json) <(strip_times killed/results.json) >/dev/null ||
  fail "the resumed study differs from the uninterrupted one: $(diff ref/results.json killed/results.json | head -20)"
echo "   killed with $done_before of 4 runs done; resumed to the same results"

echo "-- 3. libra-train --save-every 1: SIGKILL at random moments"
# the full-width CNN: a 6.5 MB checkpoint, so that many kills land inside a write
mkdir ck
F=ck/model.ckpt
"$train" --preset sample-folder --steps 1 --save "$F" --quiet >/dev/null 2>k.err || fail "first checkpoint: $(cat k.err)"
last=1 mid_write=0 kills=0
RANDOM=12345
while ((kills < 24 || (mid_write == 0 && kills < 48))); do
  "$train" --resume "$F" --steps 1000000 --save "$F" --save-every 1 --quiet >/dev/null 2>&1 &
  pid=$!
  sleep "0.$(printf '%03d' $((150 + RANDOM % 800)))"
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  kills=$((kills + 1))
  temps=$(count_temps ck)
  ((temps > 0)) && mid_write=$((mid_write + 1)) # its temporary file: killed inside a save
  ((temps <= 1)) || fail "kill $kills: $temps temporary files pile up in ck/: $(ls ck)"
  step=$(steps_of "$F")
  [[ -n "$step" ]] || fail "kill $kills: the checkpoint does not load: $(cat "$tmp/eval.err")"
  ((step >= last)) || fail "kill $kills: the checkpoint went back from step $last to $step"
  last=$step
done
((mid_write > 0)) || fail "none of $kills kills landed inside a checkpoint write"
# the next save removes the dead writer's temporary file
"$train" --resume "$F" --steps $((last + 1)) --save "$F" --quiet >/dev/null 2>k.err || fail "resume after kills: $(cat k.err)"
[[ $(count_temps ck) -eq 0 ]] || fail "a temporary file survived the next save: $(ls ck)"
[[ $(steps_of "$F") -eq $((last + 1)) ]] || fail "the final checkpoint is not at step $((last + 1))"
echo "   $kills kills ($mid_write inside a write): the checkpoint always loaded, reached step $last"

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
"$train" --help | grep -q -- "--no-nan-check" || fail "--help does not list --no-nan-check"
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
