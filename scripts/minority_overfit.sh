#!/usr/bin/env bash
# Does synthesis overfit? Trains seed S of ce, ce@oversample and ce@smote on Fashion-MNIST-LT
# (rho = 100, the study's settings), then prints each model's recall of the tail classes on
# their real training images, on the SMOTE images of that seed, on the validation split and on
# the test split (docs/strategies.md, "Does synthesis overfit?"). About 4 minutes on one core.
#   scripts/minority_overfit.sh [BUILD_DIR (default build/release)] [SEED (default 1)]
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
bin=$(cd "${1:-$src/build/release}" && pwd) seed=${2:-1}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
data=(--imbalance longtail:100)
"$bin/libra-resample" "${data[@]}" --sampler smote --seed "$seed" --out "$work/rs" --quiet
# the validation files as a source of their own (its test part), with the class names
mkdir "$work/val"
for p in train test; do
  cp "$work/rs/val-images-idx3-ubyte.gz" "$work/val/$p-images-idx3-ubyte.gz"
  cp "$work/rs/val-labels-idx1-ubyte.gz" "$work/val/$p-labels-idx1-ubyte.gz"
done
cp "$work/rs/classes.txt" "$work/val/"
n_orig=$(awk -F, '$3 == "original"' "$work/rs/provenance.csv" | wc -l)
# recall of the four tail classes in a libra-predict CSV; rows: all, orig (< n_orig) or syn
recall() {
  awk -F, -v rows="$2" -v n="$n_orig" -v what="$3" '
    NR == 1 { next }
    rows == "orig" && $1 >= n { next }
    rows == "syn" && $1 < n { next }
    { tot[$2]++; if ($2 == $3) hit[$2]++ }
    END { split("Shirt,Sneaker,Bag,Ankle boot", t, ","); m = 0; line = what
          for (i = 1; i <= 4; i++) { r = tot[t[i]] ? 100 * hit[t[i]] / tot[t[i]] : 0; m += r / 4
                                     line = line sprintf(" | %.1f", r) }
          printf "%s | %.1f |\n", line, m }' "$1"
}
echo "| model (seed $seed) | images | Shirt | Sneaker | Bag | Ankle boot | mean of the 4 |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for s in shuffle oversample smote; do
  name=$([[ $s == shuffle ]] && echo ce || echo "ce@$s")
  "$bin/libra-train" "${data[@]}" --sampler "$s" --steps 1500 --seed "$seed" --threads 1 --save "$work/$s.ckpt" \
    --quiet >"$work/$s.log"
  for part in train test; do
    "$bin/libra-predict" --model "$work/$s.ckpt" --data "idx:$work/rs" --part $part --out "$work/$s-$part.csv" --quiet
  done
  "$bin/libra-predict" --model "$work/$s.ckpt" --data "idx:$work/val" --part test --out "$work/$s-val.csv" --quiet
  recall "$work/$s-train.csv" orig "| \`$name\` | training (real)"
  recall "$work/$s-train.csv" syn "| \`$name\` | SMOTE images"
  recall "$work/$s-val.csv" all "| \`$name\` | validation"
  recall "$work/$s-test.csv" all "| \`$name\` | test"
done
