#!/usr/bin/env bash
# libra-train and libra-evaluate end to end on a Fashion-MNIST subset (seconds):
# flag errors and exit codes, a short run whose loss falls and whose accuracy beats
# chance, metrics.json / loss.csv, resume in a new process (bitwise the same checkpoint
# as an uninterrupted run), evaluation of the checkpoint, and damaged checkpoints.
set -euo pipefail
bin=${LIBRA_BINARY_DIR:?}
train="$bin/libra-train" eval="$bin/libra-evaluate"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "e2e_train: $*" >&2; exit 1; }

fm=${LIBRA_FMNIST_DIR:-/usr/share/datasets/fashion-mnist}
[[ -r "$fm/train-images-idx3-ubyte.gz" ]] ||
  fail "Fashion-MNIST not found in $fm (install the Debian package dataset-fashion-mnist)"

# expect CODE PATTERN cmd...: exit status CODE and PATTERN in stderr
expect() {
  local code=$1 pat=$2; shift 2
  set +e; "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?; set -e
  [[ $rc -eq $code ]] || fail "$* exited $rc, expected $code; stderr: $(cat "$tmp/err")"
  grep -qF -- "$pat" "$tmp/err" || fail "$*: stderr lacks '$pat': $(cat "$tmp/err")"
}

echo "-- flags"
"$train" --help | grep -- "--epochs" >/dev/null || fail "--help does not list --epochs"
"$eval" --help | grep -- "--model" >/dev/null || fail "libra-evaluate --help does not list --model"
expect 2 "--epochs: 'abc' is not an integer" "$train" --epochs abc
expect 2 "--lr: 'fast' is not a number" "$train" --lr fast
expect 2 "--batch: 0 is outside" "$train" --batch 0
expect 2 "rmsprop" "$train" --optimizer rmsprop
expect 2 "unrecognized option '--bogus'" "$train" --bogus
expect 2 "--loss" "$train" --loss nosuchloss
expect 2 "--epochs and --steps" "$train" --epochs 2 --steps 10
expect 2 "imbalance 'longtail:0.5'" "$train" --steps 1 --imbalance longtail:0.5 --quiet
expect 2 "--model FILE is required" "$eval"
expect 1 "not found" "$train" --steps 1 --data folder:"$tmp/none" --quiet

# 3,000 training images (300 per class), a narrow reference CNN, 240 steps of 32
common=(--imbalance counts:300,300,300,300,300,300,300,300,300,300 --arch smallcnn:c1=8,c2=16,fc=32
        --batch 32 --seed 7 --log-every 10 --monitor none --quiet)

echo "-- a short run learns"
"$train" "${common[@]}" --steps 240 --out "$tmp/run" --save "$tmp/full.ckpt" >"$tmp/full.out"
cat "$tmp/full.out"
[[ -s "$tmp/run/metrics.json" && -s "$tmp/run/loss.csv" ]] || fail "--out did not write metrics.json and loss.csv"
ls "$tmp/run" | grep -q tmp && fail "a temporary file was left in --out"
acc=$(sed -n 's/^  "accuracy": \([0-9.]*\),$/\1/p' "$tmp/run/metrics.json")
for key in balanced_accuracy per_class_recall confusion steps seed wall_seconds images_per_second; do
  grep -q "\"$key\"" "$tmp/run/metrics.json" || fail "metrics.json lacks $key"
done
awk -v a="$acc" 'BEGIN { exit !(a > 0.6) }' || fail "test accuracy $acc does not clearly beat chance (0.1)"
# mean of the first three loss points against the last three
awk -F, 'NR > 1 { v[n++] = $2 } END { f = (v[0] + v[1] + v[2]) / 3; l = (v[n-1] + v[n-2] + v[n-3]) / 3;
         printf "loss %.3f -> %.3f\n", f, l; exit !(n == 24 && l < 0.6 * f) }' "$tmp/run/loss.csv" ||
  fail "the loss did not fall (or loss.csv has not 24 points)"

echo "-- resume in a new process"
"$train" "${common[@]}" --steps 100 --save "$tmp/half.ckpt" >/dev/null
# the checkpoint's settings are the resumed run's defaults: only the budget is given
"$train" --resume "$tmp/half.ckpt" --steps 240 --save "$tmp/resumed.ckpt" --quiet >"$tmp/resumed.out"
cmp "$tmp/full.ckpt" "$tmp/resumed.ckpt" || fail "100 + 140 steps differ from 240 steps in one run"
expect 1 "sampler 'shuffle'" "$train" --resume "$tmp/half.ckpt" --steps 240 --sampler balanced --quiet

echo "-- evaluate the checkpoint"
"$eval" --model "$tmp/full.ckpt" --out "$tmp/eval.json" >"$tmp/eval.out"
cmp "$tmp/eval.out" "$tmp/eval.json" || fail "--out differs from stdout"
eacc=$(sed -n 's/^  "accuracy": \([0-9.]*\),$/\1/p' "$tmp/eval.out")
[[ "$eacc" == "$acc" ]] || fail "libra-evaluate accuracy $eacc differs from training's $acc"
grep -q '"steps": 240' "$tmp/eval.out" || fail "libra-evaluate does not report the checkpoint's steps"

echo "-- damaged checkpoints"
head -c 1000 "$tmp/full.ckpt" >"$tmp/trunc.ckpt"
expect 1 "truncated" "$eval" --model "$tmp/trunc.ckpt"
cp "$tmp/full.ckpt" "$tmp/flip.ckpt"
printf '\x5a' | dd of="$tmp/flip.ckpt" bs=1 seek=5000 conv=notrunc status=none
expect 1 "CRC mismatch" "$eval" --model "$tmp/flip.ckpt"
printf 'not a checkpoint at all, just some text........' >"$tmp/text.ckpt"
expect 1 "not a libra checkpoint" "$eval" --model "$tmp/text.ckpt"
expect 1 "different architecture" "$train" --resume "$tmp/half.ckpt" --arch smallcnn --steps 240 --quiet
echo "e2e_train: ok"
