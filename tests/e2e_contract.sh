#!/usr/bin/env bash
# The contract every libra-* program keeps (docs/architecture.md):
#   --help exits 0; GNU long options, --flag value and --flag=value; a bad value (--steps 2x)
#   or an unknown flag exits 2 before any data is loaded, with a message naming the flag
#   once (--jobs:, never ----jobs:); a runtime error exits 1; SIGINT exits 130 (SIGTERM 143)
#   after keeping what was finished; a failed command leaves nothing behind.
# The signal tests do not depend on when the signal lands: a program killed by it before its
# handler is installed exits 130 / 143 as well.
set -uo pipefail
bin=${LIBRA_BINARY_DIR:?}
: "${LIBRA_SOURCE_DIR:?}"
tmp=$(mktemp -d)
bg=""
cleanup() {
  [[ -n "$bg" ]] && kill -9 "$bg" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "e2e_contract: FAIL: $*" >&2; exit 1; }
cd "$tmp" || exit 1

# expect CODE PATTERN cmd...: exit status CODE, PATTERN in stderr, and never a doubled "----"
expect() {
  local code=$1 pat=$2; shift 2
  "$@" >out.txt 2>err.txt
  local rc=$?
  [[ $rc -eq $code ]] || fail "$* exited $rc, expected $code: $(head -3 err.txt)"
  [[ -z "$pat" ]] || grep -qF -- "$pat" err.txt || fail "$*: stderr lacks '$pat': $(head -3 err.txt)"
  ! grep -q -- "----" err.txt || fail "$*: a doubled dash in: $(head -3 err.txt)"
}

programs=(compare train evaluate losses custom-loss bench resample)
echo "-- --help, unknown flags, --flag=value"
for p in "${programs[@]}"; do
  expect 0 "" "$bin/libra-$p" --help
  grep -q "Usage: libra-$p" out.txt || fail "libra-$p --help prints no usage line"
  expect 2 "--no-such-flag" "$bin/libra-$p" --no-such-flag
  expect 2 "unexpected argument" "$bin/libra-$p" stray
done
# a missing folder makes a program that loaded data exit 1: exit 2 proves the value was refused first
missing=(--data folder:"$tmp/none")
expect 2 "--steps: '2x' is not an integer" "$bin/libra-compare" --steps 2x "${missing[@]}"
expect 2 "--steps: '2x' is not an integer" "$bin/libra-train" --steps 2x "${missing[@]}"
expect 2 "--steps: '2x' is not an integer" "$bin/libra-bench" --steps 2x
expect 2 "--steps: '2x' is not an integer" "$bin/libra-bench" --steps=2x
expect 2 "--jobs: 0 is outside [1, 256]" "$bin/libra-compare" --jobs 0 "${missing[@]}"
expect 2 "--jobs: 0 is outside [1, 256]" "$bin/libra-compare" --jobs=0 "${missing[@]}"
expect 2 "--seeds: 'x' is not an integer" "$bin/libra-compare" --seeds=x "${missing[@]}"
expect 2 "--lr" "$bin/libra-compare" --lr=-1 "${missing[@]}"
expect 2 "--threads" "$bin/libra-compare" --threads 0 "${missing[@]}"
expect 2 "--seed" "$bin/libra-compare" --seed -3 "${missing[@]}"
expect 2 "--batch: 0 is outside" "$bin/libra-evaluate" --model x --batch=0
expect 2 "--step" "$bin/libra-losses" --step=-1
expect 2 "--gamma" "$bin/libra-losses" --gamma=x

echo "-- bad values found before the data is loaded"
expect 2 "--arch: model 'densenet': unknown architecture" "$bin/libra-compare" --arch densenet "${missing[@]}"
expect 2 "--arch: model 'resnet:depth=21': depth=21 must be 6n+2" "$bin/libra-train" --arch resnet:depth=21 "${missing[@]}"
expect 2 "item 3 'dense:x': 'dense:x': size (dense:N) 'x' must be an integer" "$bin/libra-train" --arch 'conv:8,3;relu;dense:x' "${missing[@]}"
expect 2 "--target-recall: 1.5 is outside" "$bin/libra-compare" --target-recall 1.5 "${missing[@]}"
expect 2 "--keep: 'first' is not best or last" "$bin/libra-compare" --keep first "${missing[@]}"
expect 2 "--keep best and --patience choose on the validation split" "$bin/libra-train" --keep best --monitor test "${missing[@]}"
expect 2 "--strategies:" "$bin/libra-compare" --strategies "ce;nosuchloss" "${missing[@]}"
expect 2 "--loss:" "$bin/libra-train" --loss "focal:gama=2" "${missing[@]}"
expect 2 "--sampler:" "$bin/libra-train" --sampler "oversample:q=2" "${missing[@]}"
expect 2 "--imbalance: imbalance 'longtail:0.5'" "$bin/libra-compare" --imbalance longtail:0.5 "${missing[@]}"
# duplicate strategies (the report once counted 'ce;ce' as four runs of one)
expect 2 "is the same as 'ce'" "$bin/libra-compare" --strategies "ce;ce" "${missing[@]}"
expect 2 "is the same as 'ce'" "$bin/libra-compare" --strategies "ce;ce@shuffle" "${missing[@]}"
expect 2 "is the same as 'focal'" "$bin/libra-compare" --strategies "focal;focal:gamma=2" "${missing[@]}"
# with data: a runtime error is 1
expect 1 "none" "$bin/libra-compare" "${missing[@]}" --out "$tmp/nothing"

echo "-- a failed command leaves nothing behind"
[[ ! -e "$tmp/nothing" ]] || fail "a study that could not load its data left $tmp/nothing"
# images of 2x2 are too small for smallcnn's two poolings: the runs fail, and neither the
# folders made for the study nor runs/ and curves/ stay (in-process and forked)
tiny=(--preset sample-folder --size 2x2 --steps 30 --seeds 2 --strategies ce)
for jobs in 1 2; do
  expect 1 "smaller than the 4x4" "$bin/libra-compare" "${tiny[@]}" --jobs $jobs --out "$tmp/blown/study"
  [[ ! -e "$tmp/blown" ]] || fail "a study whose runs failed left: $(find "$tmp/blown")"
done
mkdir keep
expect 1 "smaller than the 4x4" "$bin/libra-compare" "${tiny[@]}" --out keep
[[ -z "$(ls -A keep)" ]] || fail "a failed study left files in an existing folder: $(ls -A keep)"
expect 1 "non-finite" "$bin/libra-train" --preset sample-folder --arch mlp --steps 200 --optimizer sgd --lr 100 \
  --out "$tmp/tr/out"
[[ ! -e "$tmp/tr" ]] || fail "a failed libra-train left $tmp/tr"
# libra-evaluate writes its --out before it prints: nothing is printed for a failed write
"$bin/libra-train" --preset sample-folder --arch linear --steps 3 --save m.ckpt --quiet >/dev/null 2>&1 ||
  fail "a checkpoint for libra-evaluate"
: >afile
expect 1 "--out" "$bin/libra-evaluate" --model m.ckpt --out afile/x.json
[[ ! -s out.txt ]] || fail "libra-evaluate printed results before its --out write failed"

echo "-- SIGINT and SIGTERM: 130 and 143, with what was finished kept"
for sig in INT TERM; do
  rm -f s.ckpt
  "$bin/libra-train" --preset sample-folder --arch smallcnn:c1=4,c2=4,fc=8 --steps 100000000 --save s.ckpt \
    --save-every 1 --quiet >/dev/null 2>sig.err &
  bg=$!
  for _ in $(seq 1 3000); do [[ -e s.ckpt ]] && break; sleep 0.01; done # a checkpoint exists: training runs
  [[ -e s.ckpt ]] || fail "libra-train wrote no checkpoint in 30 s"
  kill -"$sig" "$bg"
  wait "$bg"
  rc=$?
  bg=""
  [[ $sig == INT ]] && want=130 || want=143
  [[ $rc -eq $want ]] || fail "libra-train after SIG$sig exited $rc, expected $want: $(cat sig.err)"
  "$bin/libra-evaluate" --model s.ckpt >/dev/null 2>&1 || fail "the checkpoint after SIG$sig does not load"
  [[ -z "$(find . -maxdepth 1 -name '*.tmp.*')" ]] || fail "SIG$sig left temporary files"
done
"$bin/libra-compare" --preset sample-folder --arch smallcnn:c1=4,c2=4,fc=8 --steps 400 --seeds 4 --jobs 1 \
  --strategies ce --out st >/dev/null 2>st.err &
bg=$!
for _ in $(seq 1 6000); do compgen -G "st/runs/*-s1.json" >/dev/null && break; sleep 0.01; done
compgen -G "st/runs/*-s1.json" >/dev/null || fail "libra-compare stored no run in 60 s"
kill -INT "$bg"
wait "$bg"
rc=$?
bg=""
[[ $rc -eq 130 ]] || fail "libra-compare after SIGINT exited $rc, expected 130: $(cat st.err)"
grep -q "interrupted; finished runs are kept" st.err || fail "no message after SIGINT: $(cat st.err)"
"$bin/libra-compare" --preset sample-folder --arch smallcnn:c1=4,c2=4,fc=8 --steps 400 --seeds 4 --jobs 1 \
  --strategies ce --out st --resume >/dev/null 2>st.err || fail "--resume after SIGINT: $(cat st.err)"
grep -q -- "--resume: [1-4] finished runs reused" st.err || fail "--resume reused nothing: $(cat st.err)"
echo "e2e_contract: ok"
