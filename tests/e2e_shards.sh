#!/usr/bin/env bash
# libra-train --shards (data-parallel shards of each batch, one process): the flag's refusals
# (exit 2, before any data is loaded), two runs of --shards 4 give the same checkpoint byte
# for byte, --shards 4 learns about as well as --shards 1 (a different rounding of the same
# gradient, not the same bits), metrics.json records shards and ranks, a sharded run resumes
# to the same bytes, and a checkpoint's shards are part of its run.
set -euo pipefail
bin=${LIBRA_BINARY_DIR:?}
train="$bin/libra-train"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "e2e_shards: $*" >&2; exit 1; }

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

echo "-- refusals"
"$train" --help | grep -- "--shards S" >/dev/null || fail "--help does not list --shards"
expect 2 "--shards: shards=3 is not a power of two" "$train" --shards 3 --batch 30
expect 2 "--shards: shards=4 does not divide the batch of 30" "$train" --shards 4 --batch 30
expect 2 "--shards: 0 is outside" "$train" --shards 0
expect 2 "batchnorm2d_1" "$train" --shards 2 --arch smallcnn:bn
grep -c -- "--shards" "$tmp/err" | grep -qx 1 || fail "the message names --shards more than once: $(cat "$tmp/err")"

# 2,000 training images, a narrow reference CNN with dropout and augmentation, 150 steps of 32
common=(--imbalance counts:200,200,200,200,200,200,200,200,200,200 --arch smallcnn:dropout=0.25,c1=8,c2=16,fc=32
        --batch 32 --crop-pad 2 --hflip --seed 3 --log-every 10 --monitor none --quiet)

echo "-- --shards 4 twice: the same bytes"
"$train" "${common[@]}" --shards 4 --steps 150 --save "$tmp/a.ckpt" --out "$tmp/a" >"$tmp/a.out"
"$train" "${common[@]}" --shards 4 --steps 150 --save "$tmp/b.ckpt" >/dev/null
cmp "$tmp/a.ckpt" "$tmp/b.ckpt" || fail "two runs of --shards 4 wrote different checkpoints"
grep -q '"shards": 4,' "$tmp/a/metrics.json" || fail "metrics.json lacks \"shards\": 4"
grep -q '"ranks": 1,' "$tmp/a/metrics.json" || fail "metrics.json lacks \"ranks\": 1"

echo "-- --shards 1: a little different, as good"
"$train" "${common[@]}" --shards 1 --steps 150 --save "$tmp/one.ckpt" >"$tmp/one.out"
cmp -s "$tmp/a.ckpt" "$tmp/one.ckpt" && fail "--shards 4 and --shards 1 wrote the same checkpoint"
acc4=$(sed -n 's/^test accuracy \([0-9.]*\) .*/\1/p' "$tmp/a.out")
acc1=$(sed -n 's/^test accuracy \([0-9.]*\) .*/\1/p' "$tmp/one.out")
echo "test accuracy: --shards 4 $acc4, --shards 1 $acc1"
awk -v a="$acc4" -v b="$acc1" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a > 0.5 && b > 0.5 && d < 0.05) }' ||
  fail "test accuracy of --shards 4 ($acc4) and --shards 1 ($acc1) differ by more than 0.05 (or do not learn)"

echo "-- resume a sharded run"
"$train" "${common[@]}" --shards 4 --steps 70 --save "$tmp/half.ckpt" >/dev/null
"$train" --resume "$tmp/half.ckpt" --steps 150 --save "$tmp/resumed.ckpt" --quiet >/dev/null
cmp "$tmp/a.ckpt" "$tmp/resumed.ckpt" || fail "70 + 80 steps of --shards 4 differ from 150 in one run"
expect 1 "trained with shards '4', this run asks for '2'" "$train" --resume "$tmp/half.ckpt" --steps 150 --shards 2 --quiet
echo "e2e_shards: ok"
