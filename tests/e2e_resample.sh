#!/usr/bin/env bash
# libra-resample end to end on the sample folder (201 training images at 16x16): the files of
# the output and what they hold (IDX label counts = provenance rows = the summary's counts,
# each synthetic row made from rows of its own class, a PNG preview), the same seed giving the
# same images, bad usage (exit 2 naming the flag), a missing folder (exit 1, nothing left), an
# output folder that is refused without --force and left as it was; then the output read back
# as an ordinary IDX source by libra-train, as a folder and as six files, its val split used.
set -uo pipefail
bin=${LIBRA_BINARY_DIR:?}
: "${LIBRA_SOURCE_DIR:?}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "e2e_resample: FAIL: $*" >&2; exit 1; }
has() { grep -qF -- "$2" "$1" || fail "$1 lacks '$2': $(head -c 3000 "$1")"; }
cd "$tmp" || exit 1
data=(--preset sample-folder --size 16x16)

# expect CODE PATTERN cmd...: exit status CODE and PATTERN in stderr
expect() {
  local code=$1 pat=$2; shift 2
  "$@" >out.txt 2>err.txt
  local rc=$?
  [[ $rc -eq $code ]] || fail "$* exited $rc, expected $code: $(head -3 err.txt)"
  [[ -z "$pat" ]] || grep -qF -- "$pat" err.txt || fail "$*: stderr lacks '$pat': $(head -3 err.txt)"
}
# the labels of an IDX label file, one a line
labels() { zcat "$1" | tail -c +9 | od -An -v -tu1 | tr -s ' ' '\n' | grep -v '^$'; }

echo "-- smote on the sample folder"
"$bin/libra-resample" "${data[@]}" --sampler smote --seed 7 --out out/smote >out.txt 2>err.txt ||
  fail "libra-resample: $(cat err.txt)"
for f in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz val-images-idx3-ubyte.gz val-labels-idx1-ubyte.gz \
  test-images-idx3-ubyte.gz test-labels-idx1-ubyte.gz classes.txt provenance.csv preview.png; do
  [[ -s out/smote/$f ]] || fail "out/smote/$f is missing or empty"
done
[[ -z "$(find out -name '*.tmp.*')" ]] || fail "temporary files left: $(find out -name '*.tmp.*')"
[[ "$(tr '\n' ' ' <out/smote/classes.txt)" == "circle square triangle " ]] || fail "classes.txt: $(cat out/smote/classes.txt)"
has err.txt "train circle 144, square 43, triangle 14 (201)"
# the summary: every class up to the largest, 231 synthetic images
grep -Eq '^circle +144 +144 +0$' out.txt || fail "summary: $(cat out.txt)"
grep -Eq '^triangle +14 +144 +130$' out.txt || fail "summary: $(cat out.txt)"
grep -Eq '^total +201 +432 +231$' out.txt || fail "summary: $(cat out.txt)"
has out.txt "231 synthetic images"

echo "-- provenance.csv against the IDX labels"
p=out/smote/provenance.csv
[[ "$(head -1 $p)" == "row,label,kind,source,neighbour,gap" ]] || fail "provenance header: $(head -1 $p)"
[[ $(($(wc -l <$p) - 1)) -eq 432 ]] || fail "$(wc -l <$p) lines in provenance.csv for 432 rows"
[[ "$(labels out/smote/train-labels-idx1-ubyte.gz | tr '\n' ' ')" == "$(tail -n +2 $p | cut -d, -f2 | tr '\n' ' ')" ]] ||
  fail "the labels of provenance.csv are not those of train-labels-idx1-ubyte.gz"
[[ "$(labels out/smote/train-labels-idx1-ubyte.gz | sort -n | uniq -c | awk '{print $1}' | tr '\n' ' ')" == "144 144 144 " ]] ||
  fail "train label counts: $(labels out/smote/train-labels-idx1-ubyte.gz | sort -n | uniq -c)"
[[ $(labels out/smote/val-labels-idx1-ubyte.gz | wc -l) -eq 23 ]] || fail "val labels"
[[ $(labels out/smote/test-labels-idx1-ubyte.gz | wc -l) -eq 56 ]] || fail "test labels"
# rows in order; originals first with nothing else; each synthetic row made from two original
# rows of its own class, with a gap in [0, 1)
awk -F, 'NR == 1 { next }
  { r = NR - 2; if ($1 != r) { print "row " $1 " at line " NR; exit 1 }
    lab[r] = $2; kind[r] = $3 }
  $3 == "original" { if (seen_syn || $4 != "" || $5 != "" || $6 != "") { print "original row " $0; exit 1 } next }
  $3 == "synthetic" { seen_syn = 1
    if ($4 == "" || $5 == "" || kind[$4] != "original" || kind[$5] != "original") { print "sources of " $0; exit 1 }
    if (lab[$4] != $2 || lab[$5] != $2) { print "another class in " $0; exit 1 }
    if ($6 == "" || $6 < 0 || $6 >= 1) { print "gap of " $0; exit 1 }
    n++; next }
  { print "kind of " $0; exit 1 }
  END { if (n != 231) { print n " synthetic rows"; exit 1 } }' $p || fail "provenance.csv rows are wrong"

echo "-- preview.png"
# the PNG signature, and its size from the IHDR chunk: 3 columns (source | synthetic |
# neighbour) and 16 rows of 16x16 images scaled x4 with 2-pixel separators: 200 x 1058
[[ "$(head -c 8 out/smote/preview.png | od -An -tx1 | tr -d ' \n')" == "89504e470d0a1a0a" ]] || fail "preview.png is no PNG"
size=$(head -c 24 out/smote/preview.png | tail -c 8 | od -An -tu1 | awk '{print $1*16777216+$2*65536+$3*256+$4 "x" $5*16777216+$6*65536+$7*256+$8}')
[[ "$size" == "200x1058" ]] || fail "preview.png is $size, expected 200x1058"

echo "-- the same seed, the same images; another seed, others"
"$bin/libra-resample" "${data[@]}" --sampler=smote --seed=7 --out=out/again --quiet >/dev/null 2>err.txt || fail "again: $(cat err.txt)"
cmp -s out/smote/train-images-idx3-ubyte.gz out/again/train-images-idx3-ubyte.gz || fail "seed 7 twice made other images"
cmp -s out/smote/provenance.csv out/again/provenance.csv || fail "seed 7 twice made another provenance.csv"
"$bin/libra-resample" "${data[@]}" --sampler smote --seed 8 --out out/seed8 --quiet >/dev/null 2>err.txt || fail "seed 8: $(cat err.txt)"
cmp -s out/smote/provenance.csv out/seed8/provenance.csv && fail "seeds 7 and 8 made the same provenance.csv"
cmp -s out/smote/test-images-idx3-ubyte.gz out/seed8/test-images-idx3-ubyte.gz || fail "the test split depends on --seed"

echo "-- ros_noise: no neighbour"
"$bin/libra-resample" "${data[@]}" --sampler ros_noise --out out/ros --quiet >/dev/null 2>err.txt || fail "ros_noise: $(cat err.txt)"
awk -F, '$3 == "synthetic" && ($4 == "" || $5 != "" || $6 != "") { print; exit 1 }' out/ros/provenance.csv ||
  fail "ros_noise rows have a neighbour or a gap"
size=$(head -c 24 out/ros/preview.png | tail -c 8 | od -An -tu1 | awk '{print $1*16777216+$2*65536+$3*256+$4}')
[[ "$size" == "134" ]] || fail "the ros_noise preview is $size wide, expected 2 columns (134)"

echo "-- bad usage: 2, naming the flag; runtime errors: 1"
missing=(--data folder:"$tmp/none")
expect 0 "" "$bin/libra-resample" --help
has out.txt "Usage: libra-resample"
expect 2 "--no-such-flag" "$bin/libra-resample" --no-such-flag --sampler smote --out x
expect 2 "unexpected argument" "$bin/libra-resample" stray --sampler smote --out x
expect 2 "--out: missing" "$bin/libra-resample" "${missing[@]}" --sampler smote
expect 2 "--sampler: missing" "$bin/libra-resample" "${missing[@]}" --out x
expect 2 "libra-train --sampler oversample" "$bin/libra-resample" "${missing[@]}" --sampler oversample --out x
has err.txt "--sampler: 'oversample' is a plain sampler"
expect 2 "--sampler: 'smote_plus' is not a synthetic sampler" "$bin/libra-resample" "${missing[@]}" --sampler smote_plus --out x
expect 2 "--sampler:" "$bin/libra-resample" "${missing[@]}" --sampler smote:q=3 --out x
expect 2 "--seed: '-1'" "$bin/libra-resample" "${missing[@]}" --sampler smote --seed -1 --out x
expect 2 "--val-fraction" "$bin/libra-resample" "${missing[@]}" --sampler smote --val-fraction 2 --out x
[[ ! -e x ]] || fail "a refused command made its --out"
expect 1 "none" "$bin/libra-resample" "${missing[@]}" --sampler smote --out gone/deeper
[[ ! -e gone ]] || fail "a command that could not load its data left $(find gone)"
# an --out holding the files: refused and left as it was, unless --force
sums=$(cksum out/smote/*)
expect 1 "--force" "$bin/libra-resample" "${data[@]}" --sampler smote --seed 9 --out out/smote
has err.txt "already holds"
[[ "$(cksum out/smote/*)" == "$sums" ]] || fail "a refused --out was changed"
"$bin/libra-resample" "${data[@]}" --sampler smote --seed 8 --out out/smote --force --val-fraction 0 --quiet >/dev/null 2>err.txt ||
  fail "--force: $(cat err.txt)"
cmp -s out/smote/provenance.csv out/seed8/provenance.csv && fail "--val-fraction 0 changed nothing"
[[ ! -e out/smote/val-images-idx3-ubyte.gz ]] || fail "--force kept the earlier run's val files"
: >afile
expect 1 "--out afile" "$bin/libra-resample" "${data[@]}" --sampler smote --out afile

echo "-- read back: libra-train on idx:DIR and on the six files"
small=(--imbalance none --steps 20 --batch 16 --arch smallcnn:c1=4,c2=4,fc=8)
"$bin/libra-train" --data idx:out/again "${small[@]}" >out.txt 2>err.txt || fail "libra-train on idx:DIR: $(cat err.txt)"
has err.txt "validation: the 23 images the source marks as validation"
has err.txt "train circle 144, square 144, triangle 144 (432)"
has err.txt "val   circle 16, square 5, triangle 2 (23)"
has err.txt "test  circle 40, square 12, triangle 4 (56)"
has out.txt "test accuracy"
d=out/again
six="idx:$d/train-images-idx3-ubyte.gz,$d/train-labels-idx1-ubyte.gz,$d/test-images-idx3-ubyte.gz,$d/test-labels-idx1-ubyte.gz,$d/val-images-idx3-ubyte.gz,$d/val-labels-idx1-ubyte.gz"
"$bin/libra-train" --data "$six" "${small[@]}" --classes 0,1,2 >out.txt 2>err.txt || fail "libra-train on six files: $(cat err.txt)"
has err.txt "validation: the 23 images the source marks as validation"
has err.txt "train 0 144, 1 144, 2 144 (432)"
# without val files (resampled with --val-fraction 0: 160 of each class), the validation
# fraction of the training files, as before
"$bin/libra-train" --data idx:out/smote "${small[@]}" --val-fraction 0.25 >out.txt 2>err.txt || fail "libra-train without val: $(cat err.txt)"
grep -qF "the source marks as validation" err.txt && fail "a folder without val files has a validation split of its own"
has err.txt "train circle 120, square 120, triangle 120 (360)"
has err.txt "val   circle 40, square 40, triangle 40 (120)"
echo "e2e_resample: ok"
