#!/usr/bin/env bash
# The remedies of round two through libra-train on a small Fashion-MNIST-LT subset (seconds):
# synthetic oversampling (the same seed makes the same run, its warnings reach stderr), batch
# mixing (a run resumed in a new process is bitwise the uninterrupted one), and their flag
# errors; and a two-stage study through libra-compare (each stage is a variant of one model).
set -euo pipefail
bin=${LIBRA_BINARY_DIR:?}
train="$bin/libra-train" compare="$bin/libra-compare"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "e2e_remedies: $*" >&2; exit 1; }

fm=${LIBRA_FMNIST_DIR:-/usr/share/datasets/fashion-mnist}
[[ -r "$fm/train-images-idx3-ubyte.gz" ]] ||
  fail "Fashion-MNIST not found in $fm (install the Debian package dataset-fashion-mnist)"

expect() {
  local code=$1 pat=$2; shift 2
  set +e; "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?; set -e
  [[ $rc -eq $code ]] || fail "$* exited $rc, expected $code; stderr: $(cat "$tmp/err")"
  grep -qF -- "$pat" "$tmp/err" || fail "$*: stderr lacks '$pat': $(cat "$tmp/err")"
}

echo "-- flags"
expect 2 "--mix: mix 'cutmix': unknown" "$train" --mix cutmix
expect 2 "alpha" "$train" --mix mixup:alpha=0
expect 2 "--sampler" "$train" --sampler smote:k=-1
expect 2 "kappa" "$compare" --strategies "ce~remix:kappa=0.1" --out "$tmp/x"
expect 2 "+nosuch" "$compare" --strategies "ce+nosuch" --out "$tmp/x"

# 10 classes of 200 down to 4 training images, a narrow CNN, 60 steps of 32
common=(--imbalance counts:200,120,80,50,30,20,12,8,6,4 --arch smallcnn:c1=8,c2=16,fc=32 --batch 32 --seed 3
        --monitor none --quiet)

echo "-- smote: the same seed, the same run; a class of 4 images warns"
"$train" "${common[@]}" --sampler smote --steps 60 --save "$tmp/s1.ckpt" >"$tmp/s1.out" 2>"$tmp/s1.err"
"$train" "${common[@]}" --sampler smote --steps 60 --save "$tmp/s2.ckpt" >/dev/null 2>&1
cmp "$tmp/s1.ckpt" "$tmp/s2.ckpt" || fail "two smote runs of one seed differ"
grep -q "neighbour" "$tmp/s1.err" || fail "no warning about a class with fewer than k+1 images: $(cat "$tmp/s1.err")"
"$train" "${common[@]}" --sampler smote --seed 4 --steps 60 --save "$tmp/s3.ckpt" >/dev/null 2>&1
cmp -s "$tmp/s1.ckpt" "$tmp/s3.ckpt" && fail "smote runs of two seeds are the same"
for s in borderline_smote adasyn ros_noise:shrinkage=0.5; do
  "$train" "${common[@]}" --sampler "$s" --steps 20 >/dev/null 2>"$tmp/e" || { cat "$tmp/e"; fail "--sampler $s"; }
done

echo "-- remix with class weights: resumed in a new process, bitwise the same"
mix=(--loss wce:weights=inverse --mix remix)  # (a DRW switch depends on the budget, which a resume changes)
"$train" "${common[@]}" "${mix[@]}" --steps 60 --save "$tmp/full.ckpt" >/dev/null
"$train" "${common[@]}" "${mix[@]}" --steps 30 --save "$tmp/half.ckpt" >/dev/null
"$train" --resume "$tmp/half.ckpt" --steps 60 --save "$tmp/resumed.ckpt" --quiet >/dev/null
cmp "$tmp/full.ckpt" "$tmp/resumed.ckpt" || fail "30 + 30 mixed steps (a multiple of the loss-curve window) differ from 60 in one run"
expect 1 "mix" "$train" --resume "$tmp/half.ckpt" --steps 60 --mix mixup --quiet

echo "-- a two-stage study: ce, ce+crt and ce+taunorm are one model"
"$compare" --data fmnist --imbalance counts:200,120,80,50,30,20,12,8,6,4 --arch smallcnn:c1=8,c2=16,fc=32 \
  --steps 40 --seeds 1 --jobs 1 --strategies "ce;ce+crt;ce+taunorm;ce+lws;ce+fsmote:k=3" --out "$tmp/st" \
  --quiet >"$tmp/st.out" 2>"$tmp/st.err" || { cat "$tmp/st.err"; fail "two-stage study"; }
n=$(ls "$tmp/st/runs/"*.json | wc -l)
[[ $n -eq 1 ]] || fail "five strategies of one model trained $n models"
for v in crt taunorm lws fsmote:k=3; do
  grep -q "\"name\": \"$v\"" "$tmp/st/results.json" || fail "results.json has no $v variant"
done
grep -q '"start_step": 36' "$tmp/st/results.json" || fail "crt did not start at step 36 of 40 (10% counted in the budget)"
echo "e2e_remedies: ok"
