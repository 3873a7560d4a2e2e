#!/usr/bin/env bash
# The dense task through the programs on a few small canvases of Debian's Fashion-MNIST
# (seconds): libra-compare --task dense (results files, heat maps, --resume, shares and
# --aggregate, forked jobs equal to one process), libra-train --task dense (same seed, same
# result), and the flag errors (exit 2, naming the flag).
set -euo pipefail
bin=${LIBRA_BINARY_DIR:?}
train="$bin/libra-train" compare="$bin/libra-compare"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "e2e_dense: $*" >&2; exit 1; }

fm=${LIBRA_FMNIST_DIR:-/usr/share/datasets/fashion-mnist}
[[ -r "$fm/train-images-idx3-ubyte.gz" ]] ||
  fail "Fashion-MNIST not found in $fm (install the Debian package dataset-fashion-mnist)"

expect() {
  local code=$1 pat=$2; shift 2
  set +e; "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?; set -e
  [[ $rc -eq $code ]] || fail "$* exited $rc, expected $code; stderr: $(cat "$tmp/err")"
  grep -qF -- "$pat" "$tmp/err" || fail "$*: stderr lacks '$pat': $(cat "$tmp/err")"
}

data=dense:fmnist,canvas=32,objects=1-2,train=64,test=32
small=(--task dense --data "$data" --arch "conv:8,3;relu;pool:2;conv:8,3;relu;pool:2;conv:8,3;relu;pool:2"
       --steps 12 --batch 8 --eval-every 6 --quiet)

echo "-- flags"
expect 2 "--task: 'nosuch' is not a task" "$compare" --task nosuch
expect 2 "--task dense: give --data dense:" "$compare" --task dense --data fmnist
expect 2 "LOSS or LOSS+noprior" "$compare" "${small[@]}" --strategies "bce+foo" --out "$tmp/x"
expect 2 "alpha" "$compare" "${small[@]}" --strategies "bce:alpha=2" --out "$tmp/x"
expect 2 "--prior: the head's prior of a dense task" "$compare" --prior 0.01
expect 2 "--epochs: a dense study counts steps" "$compare" --task dense --epochs 1
expect 2 "--data: dense: canvas 30x30 is not a multiple of stride=8" "$compare" --task dense --data dense:fmnist,canvas=30
expect 2 "--sampler is not for a dense run" "$train" --task dense --sampler oversample
expect 2 "--prior: the head's prior of a dense task" "$train" --prior 0.01
expect 2 "--prior: 0.9 is outside" "$train" --task dense --prior 0.9

expect 2 "--arch: fcn 'conv:8,3;relu' on 1x32x32 inputs: the trunk ends in [8, 32, 32]; stride 8 on 32x32 inputs needs a 4x4 grid" \
  "$compare" --task dense --data "$data" --arch "conv:8,3;relu" --out "$tmp/failed/deep"
expect 2 "--arch: fcn 'smallcnn'" "$train" --task dense --arch smallcnn
[[ ! -e "$tmp/failed" ]] || fail "a refused study left $(find "$tmp/failed")"

echo "-- a loss the data's 10 classes cannot take: refused after loading, before any folder"
expect 2 "pos_weight has 2 values" "$compare" "${small[@]}" --strategies "bce:pos_weight=1,2" --seeds 1 --out "$tmp/failed/deep"
[[ ! -e "$tmp/failed" ]] || fail "a failed study left $(find "$tmp/failed")"

echo "-- a study: files, heat maps, the foreground share"
S="bce;sigmoid_focal:gamma=2,alpha=0.25+noprior"
"$compare" "${small[@]}" --strategies "$S" --seeds 2 --jobs 2 --out "$tmp/d" >"$tmp/d.out" 2>"$tmp/d.err" ||
  fail "dense study failed: $(cat "$tmp/d.err")"
for f in results.json results.csv report.html runs/bce-s1.json runs/sigmoid_focal_gamma_2_alpha_0.25_noprior-s2.json; do
  [[ -s "$tmp/d/$f" ]] || fail "no $f"
done
[[ $(wc -l <"$tmp/d/results.csv") -eq 5 ]] || fail "results.csv: $(cat "$tmp/d/results.csv")"
grep -q '"foreground_share": 0\.0' "$tmp/d/results.json" || fail "results.json has no foreground_share"
grep -q "Heat maps" "$tmp/d/report.html" || fail "report.html has no heat maps"
grep -q "libra-dense-run" "$tmp/d/runs/bce-s1.json" || fail "a run record lacks its format"

echo "-- the same study in one process: the same records"
"$compare" "${small[@]}" --strategies "$S" --seeds 2 --jobs 1 --out "$tmp/one" >/dev/null 2>&1 || fail "jobs 1 failed"
for r in bce-s1 bce-s2 sigmoid_focal_gamma_2_alpha_0.25_noprior-s1; do
  diff <(grep -v _second "$tmp/d/runs/$r.json") <(grep -v _second "$tmp/one/runs/$r.json") >/dev/null ||
    fail "run $r differs between --jobs 2 and --jobs 1"
done

echo "-- resume and refusal"
expect 1 "--resume to reuse them" "$compare" "${small[@]}" --strategies "$S" --seeds 2 --out "$tmp/d"
"$compare" "${small[@]}" --strategies "$S" --seeds 2 --resume --out "$tmp/d" >/dev/null 2>"$tmp/r.err" ||
  fail "--resume failed: $(cat "$tmp/r.err")"
expect 1 "other settings" "$compare" "${small[@]}" --strategies "$S" --seeds 2 --steps 13 --out "$tmp/d"

echo "-- shares, then --aggregate"
for i in 1 2; do
  "$compare" "${small[@]}" --strategies "$S" --seeds 2 --jobs 1 --only $i/2 --out "$tmp/s" >/dev/null 2>&1 ||
    fail "share $i/2 failed"
done
[[ ! -e "$tmp/s/results.json" ]] || fail "a share wrote results"
"$compare" "${small[@]}" --strategies "$S" --seeds 2 --aggregate --out "$tmp/s" >/dev/null 2>&1 || fail "--aggregate failed"
cmp <(cut -d, -f1-9 "$tmp/s/results.csv") <(cut -d, -f1-9 "$tmp/one/results.csv") || fail "shares differ from one process"

echo "-- SIGINT to the parent: the workers stop, finished runs stay, exit 130, --resume finishes"
"$compare" "${small[@]}" --strategies "$S" --seeds 4 --steps 3000 --jobs 2 --out "$tmp/i" >/dev/null 2>"$tmp/i.err" &
pid=$!
for _ in $(seq 1 200); do [[ -s "$tmp/i/runs/settings.txt" ]] && break; sleep 0.1; done
sleep 1
kill -INT $pid
set +e; wait $pid; rc=$?; set -e
[[ $rc -eq 130 ]] || fail "interrupted study exited $rc, expected 130: $(cat "$tmp/i.err")"
grep -q "interrupted; finished runs are kept" "$tmp/i.err" || fail "no interruption message: $(cat "$tmp/i.err")"
ls "$tmp/i/runs/"*.tmp.* >/dev/null 2>&1 && fail "a temporary record was left behind"

echo "-- libra-train --task dense"
targs=(--task dense --data "$data" --steps 12 --batch 8 --seed 4 --quiet)
"$train" "${targs[@]}" --out "$tmp/t1" >"$tmp/t1.out" 2>&1 || fail "libra-train --task dense failed: $(cat "$tmp/t1.out")"
"$train" "${targs[@]}" >"$tmp/t2.out" 2>&1
grep -q "^mean_ap " "$tmp/t1.out" || fail "no mean_ap line: $(cat "$tmp/t1.out")"
[[ -s "$tmp/t1/dense.json" ]] || fail "no dense.json"
diff <(grep -E "^(mean_ap|T-shirt)" "$tmp/t1.out" | sed 's/| [0-9]* img.*//') \
     <(grep -E "^(mean_ap|T-shirt)" "$tmp/t2.out" | sed 's/| [0-9]* img.*//') || fail "the same seed gave another result"
echo "e2e_dense: ok"
