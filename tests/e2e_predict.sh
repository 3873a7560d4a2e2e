#!/usr/bin/env bash
# libra-predict end to end on a tiny folder with one corrupt file: the CSV (one row per
# readable image, the columns, probabilities that sum to 1, the argmax or the threshold's
# decision), the corrupt file reported by name, unlabelled image files, the deployment prior,
# the operating point for a target recall on the checkpoint's validation scores, --keep best,
# and bad input (exit 2 for flags, 1 for files and data).
set -uo pipefail
bin=${LIBRA_BINARY_DIR:?}
src=${LIBRA_SOURCE_DIR:?}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "e2e_predict: $*" >&2; exit 1; }
has() { grep -qF -- "$2" "$1" || fail "$1 lacks '$2': $(head -c 3000 "$1")"; }
cd "$tmp" || exit 1

# 40 circles and 12 squares of the sample folder, one text file named .png among the squares
mkdir -p tiny/circle tiny/square
ls "$src/datasets/sample-folder/circle" | head -40 | while read -r f; do cp "$src/datasets/sample-folder/circle/$f" tiny/circle/; done
ls "$src/datasets/sample-folder/square" | head -12 | while read -r f; do cp "$src/datasets/sample-folder/square/$f" tiny/square/; done
echo "not an image" >tiny/square/broken.png

echo "-- a model with --keep best"
"$bin/libra-train" --data folder:tiny --arch "conv:4,3;relu;pool:2;conv:8,3;relu;gap;dense" --steps 40 --eval-every 5 \
  --val-fraction 0.25 --keep best --save m.ckpt --out run >out.txt 2>err.txt || fail "libra-train: $(cat err.txt)"
has out.txt "kept the model of step"
grep -qF '"keep": "last"' run/metrics.json && fail "metrics.json says keep last"
has run/metrics.json '"keep": "best"'

echo "-- predict the folder"
"$bin/libra-predict" --model m.ckpt --data folder:tiny --out p.csv >out.txt 2>err.txt || fail "predict: $(cat err.txt)"
has err.txt "1 image file skipped"
has err.txt "tiny/square/broken.png: not a readable image"
[[ $(head -1 p.csv | tr -d '\r') == "path,label,predicted,p_circle,p_square" ]] || fail "header: $(head -1 p.csv)"
[[ $(($(wc -l <p.csv) - 1)) -eq 52 ]] || fail "$(wc -l <p.csv) lines for 52 readable images"
grep -q "broken.png" p.csv && fail "the corrupt file has a row"
# every row: probabilities sum to 1, predicted is the more probable class, label from the folder
awk -F, 'NR > 1 { s = $4 + $5; if (s < 0.9999 || s > 1.0001) { print "sum " s; exit 1 }
                  want = $4 >= $5 ? "circle" : "square"; if ($3 != want) { print "row " NR ": " $0; exit 1 }
                  if (index($1, "/" $2 "/") == 0) { print "label of " $1; exit 1 } }' p.csv || fail "rows wrong"
has out.txt "predicted 52 images"
has out.txt "balanced accuracy"

echo "-- image files without labels"
"$bin/libra-predict" --model m.ckpt --out f.csv tiny/circle/*.png tiny/square/broken.png >out.txt 2>err.txt || fail "files: $(cat err.txt)"
[[ $(head -1 f.csv | tr -d '\r') == "path,predicted,p_circle,p_square" ]] || fail "files header: $(head -1 f.csv)"
[[ $(($(wc -l <f.csv) - 1)) -eq 40 ]] || fail "$(wc -l <f.csv) lines for 40 files"
has err.txt "broken.png"

echo "-- a deployment prior"
# the training prior itself changes nothing (to the CSV's 6 digits)
counts=$(sed -n 's/.*"train_counts": \[\([0-9]*\), \([0-9]*\)\].*/\1 \2/p' run/metrics.json)
read -r nc ns <<<"$counts"
[[ -n "$nc" ]] || fail "no train_counts in metrics.json"
"$bin/libra-predict" --model m.ckpt --data folder:tiny --out same.csv --prior "circle=$nc,square=$ns" >/dev/null 2>&1 || fail "prior"
cmp -s p.csv same.csv || paste -d, p.csv same.csv | awk -F, 'NR > 1 { d = $4 - $10; if (d > 2e-6 || d < -2e-6) { print; exit 1 } }' \
  || fail "the training prior changed the probabilities"
# a square-heavy prior: p'(square)/p'(circle) = p(square)/p(circle) * (0.9/0.1) / (ns/nc)
"$bin/libra-predict" --model m.ckpt --data folder:tiny --out sq.csv --prior "circle=0.1,square=0.9" >/dev/null 2>&1 || fail "prior 2"
paste -d, p.csv sq.csv | awk -F, -v nc="$nc" -v ns="$ns" 'NR > 1 && $4 > 1e-3 && $5 > 1e-3 && $10 > 1e-3 && $11 > 1e-3 {
    want = ($5 / $4) * 9 * nc / ns; got = $11 / $10; r = got / want; if (r < 0.99 || r > 1.01) { print NR, got, want; exit 1 } }' \
  || fail "prior shift does not match p(y|x) * pi_deploy / pi_train"

echo "-- an operating point for a target recall"
"$bin/libra-predict" --model m.ckpt --data folder:tiny --out r.csv --target-recall square=1 >out.txt 2>err.txt || fail "recall: $(cat err.txt)"
has err.txt "threshold for square:"
has err.txt "images of the validation split kept in the checkpoint"
t=$(sed -n 's/.*threshold for square: \([0-9.e-]*\) .*/\1/p' err.txt)
awk -F, -v t="$t" 'NR > 1 { want = $5 >= t ? "square" : "circle"; if ($3 != want) { print NR, $0; exit 1 } }' r.csv \
  || fail "decisions do not follow the threshold $t"
"$bin/libra-predict" --model m.ckpt --data folder:tiny --out r2.csv --threshold square=0.999999 >/dev/null 2>&1 || fail "threshold"
awk -F, 'NR > 1 && $3 == "square" && $5 < 0.999999 { exit 1 }' r2.csv || fail "--threshold not applied"

echo "-- bad input"
expect() { # code, message, command...
  local code=$1 msg=$2
  shift 2
  "$@" >/dev/null 2>err.txt
  local rc=$?
  [[ $rc -eq $code ]] || fail "$* exited $rc, expected $code: $(cat err.txt)"
  has err.txt "$msg"
}
expect 2 "--model FILE is required" "$bin/libra-predict" --out x.csv tiny/circle/*.png
expect 2 "--out FILE is required" "$bin/libra-predict" --model m.ckpt --data folder:tiny
expect 2 "--threshold: 'oval' is not a class of the model (circle, square)" "$bin/libra-predict" --model m.ckpt --out x.csv --threshold oval=0.5 --data folder:tiny
expect 2 "--prior: class 'square' is missing" "$bin/libra-predict" --model m.ckpt --out x.csv --prior circle=1 --data folder:tiny
expect 2 "--target-recall: 1.5 is outside" "$bin/libra-predict" --model m.ckpt --out x.csv --target-recall square=1.5 --data folder:tiny
expect 2 "give --data SOURCE or image files, not both" "$bin/libra-predict" --model m.ckpt --out x.csv --data folder:tiny a.png
expect 1 "nothing.ckpt" "$bin/libra-predict" --model nothing.ckpt --out x.csv --data folder:tiny
expect 1 "class 'triangle' is not a class of the model" "$bin/libra-predict" --model m.ckpt --out x.csv --data "folder:$src/datasets/sample-folder"
expect 1 "--out" "$bin/libra-predict" --model m.ckpt --out /proc/nope/x.csv --data folder:tiny
# a model trained without a validation split keeps no scores to choose on
"$bin/libra-train" --data folder:tiny --arch "conv:4,3;relu;gap;dense" --steps 5 --val-fraction 0 --save noval.ckpt --quiet >/dev/null 2>&1 || fail "noval"
expect 1 "give --calibrate-on SOURCE" "$bin/libra-predict" --model noval.ckpt --out x.csv --target-recall square=0.9 --data folder:tiny
"$bin/libra-predict" --model noval.ckpt --out c.csv --target-recall square=0.9 --calibrate-on folder:tiny --data folder:tiny >/dev/null 2>err.txt \
  || fail "--calibrate-on: $(cat err.txt)"
has err.txt "on 52 images of folder:tiny"
[[ ! -e x.csv ]] || fail "a failed run left x.csv"
echo "e2e_predict: ok"
