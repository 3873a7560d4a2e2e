#!/usr/bin/env bash
# libra-compare end to end on the bundled image folder: outputs, grid tuning, --resume,
# and the errors a user can cause.
set -uo pipefail
bin=${LIBRA_BINARY_DIR:?}/libra-compare
src=${LIBRA_SOURCE_DIR:?}
tmp=$(mktemp -d)
trap 'chmod -R u+w "$tmp"; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
cd "$src"

"$bin" --help | grep -- "--strategies" >/dev/null || fail "--help does not list --strategies"

args=(--preset sample-folder --arch smallcnn:c1=8,c2=8,fc=16 --steps 40 --seeds 2 --jobs 2
      --strategies "ce;focal:gamma=0|2;ce@oversample+posthoc")
"$bin" "${args[@]}" --out "$tmp/a" 2>"$tmp/a.log" >"$tmp/a.out" || { cat "$tmp/a.log"; fail "study failed"; }
for f in results.json results.csv report.html; do [[ -s "$tmp/a/$f" ]] || fail "missing $f"; done
grep -q "report:  $tmp/a/report.html" "$tmp/a.out" || fail "no report path printed"
ls "$tmp/a/curves/"*.csv >/dev/null || fail "no per-run curves"
# 3 strategies x 2 seeds; raw rows only
rows=$(grep -c ',raw,' "$tmp/a/results.csv")
[[ $rows -eq 6 ]] || fail "results.csv has $rows raw rows, expected 6"
grep -q '"grid"' "$tmp/a/results.json" || fail "grid results not kept"
grep -q 'prior_correction' "$tmp/a/results.json" || fail "post-hoc variants missing"
grep -q "grid focal:gamma=0|2: chose" "$tmp/a.log" || fail "grid choice not reported"

# --resume after losing the final files and one run: only that run is redone, results identical
cp "$tmp/a/results.json" "$tmp/first.json"
rm "$tmp/a/results.json" "$tmp/a/report.html"
rm "$(ls "$tmp/a/runs/"ce@shuffle-s2.json)"
"$bin" "${args[@]}" --out "$tmp/a" --resume 2>"$tmp/b.log" >/dev/null || { cat "$tmp/b.log"; fail "resume failed"; }
grep -q -- "--resume: 5 finished runs reused" "$tmp/b.log" || { cat "$tmp/b.log"; fail "resume did not reuse runs"; }
# wall times and images/s differ between runs; every metric must not
strip() { grep -v -E '"(wall_seconds|images_per_sec)"' "$1"; }
diff <(strip "$tmp/first.json") <(strip "$tmp/a/results.json") >/dev/null || fail "resumed results differ"

# resuming with other settings is refused
"$bin" "${args[@]}" --steps 41 --out "$tmp/a" --resume 2>"$tmp/c.log" && fail "resume with other settings accepted"
grep -q "other settings" "$tmp/c.log" || fail "no message for changed settings"

# bad flags: exit 2 naming the flag
"$bin" --bogus 2>"$tmp/e" ; [[ $? -eq 2 ]] || fail "unknown flag: exit status"
"$bin" --seeds zero 2>"$tmp/e" ; [[ $? -eq 2 ]] && grep -q -- "--seeds" "$tmp/e" || fail "--seeds zero"
"$bin" --preset sample-folder --strategies "ce;nosuchloss" --out "$tmp/x" 2>"$tmp/e"; [[ $? -eq 2 ]] && grep -q "nosuchloss" "$tmp/e" || fail "unknown loss"
"$bin" --preset sample-folder --strategies "ce+later" --out "$tmp/x" 2>"$tmp/e"; [[ $? -eq 2 ]] || fail "bad suffix"
# an output directory that cannot be written: refused before training
mkdir -p "$tmp/ro"; chmod a-w "$tmp/ro"
if [[ $(id -u) -ne 0 ]]; then
  "$bin" --preset sample-folder --out "$tmp/ro/study" 2>"$tmp/e"; [[ $? -eq 1 ]] && grep -q -- "--out" "$tmp/e" || fail "read-only --out"
fi
: > "$tmp/file"
"$bin" --preset sample-folder --out "$tmp/file/study" 2>"$tmp/e"; [[ $? -eq 1 ]] && grep -q -- "--out" "$tmp/e" || { cat "$tmp/e"; fail "--out under a file"; }
"$bin" --data folder:"$tmp/nothing" --out "$tmp/y" 2>"$tmp/e"; [[ $? -eq 1 ]] && grep -q "nothing" "$tmp/e" || { cat "$tmp/e"; fail "missing folder"; }
# rerunning into the folder of a study of other settings is refused without --resume, and
# --force replaces that study whole (a CSV once held 50-step and 300-step runs)
"$bin" "${args[@]}" --steps 41 --out "$tmp/a" 2>"$tmp/e" && fail "a study of other settings was overwritten"
grep -q "holds a study with other settings (steps: '40' there, '41' here)" "$tmp/e" || { cat "$tmp/e"; fail "no message for another study"; }
"$bin" "${args[@]}" --steps 41 --out "$tmp/a" --force 2>"$tmp/e" >/dev/null || { cat "$tmp/e"; fail "--force"; }
grep -q '^steps=41$' "$tmp/a/runs/settings.txt" || fail "--force did not replace the settings"
! grep -l '"steps": 40,' "$tmp/a/runs/"*.json >/dev/null || fail "--force left runs of the old study"

# changed images are noticed: --resume after one image of the folder changed is refused
cp -r "$src/datasets/sample-folder" "$tmp/folder"
small=(--data "folder:$tmp/folder" --arch linear --steps 5 --seeds 1 --strategies "ce" --jobs 1)
"$bin" "${small[@]}" --out "$tmp/f" 2>"$tmp/e" >/dev/null || { cat "$tmp/e"; fail "folder study"; }
first=$(ls "$tmp/folder/circle" | head -1) second=$(ls "$tmp/folder/circle" | sed -n 2p)
cp "$tmp/folder/circle/$second" "$tmp/folder/circle/$first"
"$bin" "${small[@]}" --out "$tmp/f" --resume 2>"$tmp/e" >/dev/null && fail "--resume on changed images accepted"
grep -q "data_fingerprint" "$tmp/e" || { cat "$tmp/e"; fail "no message naming the data's fingerprint"; }

# more than 64 classes (libra-compare once read past 64-entry arrays): 70 classes of 4x4
# images, written as IDX files here
be32() { printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 >> 24 & 255)) $(($1 >> 16 & 255)) $(($1 >> 8 & 255)) $(($1 & 255)); }
idx_pair() { # IMG LAB N: N images of 4x4 (bytes from a counter), label i % 70
  local labels="" i
  for ((i = 0; i < $3; i++)); do labels+=$(printf '\\x%02x' $((i % 70))); done
  { printf '\x00\x00\x08\x03'; printf "$(be32 "$3")$(be32 4)$(be32 4)"
    for ((i = 0; i < $3 * 16; i++)); do printf "\\x$(printf %02x $(((i * 37) % 256)))"; done; } >"$1"
  { printf '\x00\x00\x08\x01'; printf "$(be32 "$3")"; printf "$labels"; } >"$2"
}
idx_pair "$tmp/tr-img" "$tmp/tr-lab" 280
idx_pair "$tmp/te-img" "$tmp/te-lab" 70
"$bin" --data "idx:$tmp/tr-img,$tmp/tr-lab,$tmp/te-img,$tmp/te-lab" --val-fraction 0.25 --arch linear --steps 3 \
  --seeds 1 --strategies "ce;wce:weights=inverse" --jobs 1 --out "$tmp/many" 2>"$tmp/e" >/dev/null ||
  { cat "$tmp/e"; fail "a study of 70 classes"; }
grep -q '"n_classes": 70' "$tmp/many/results.json" || fail "results.json does not hold 70 classes"
[[ $(grep -c '"name": "69"' "$tmp/many/results.json") -eq 1 ]] || fail "class 69 is missing from results.json"

echo "compare: ok"
